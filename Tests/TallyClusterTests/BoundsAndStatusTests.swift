// The named limits of the voter's maps, and the nodes' typed status.
import Foundation
import KernelAPI
import TallyCluster
import XCTest

final class VoterBoundsTests: XCTestCase {
  let ids = ["r1", "r2", "r3"]

  func vote(_ r: Int, _ first: Int64, _ last: Int64) -> Vote {
    Vote(
      replica: ids[r], kernel: "v1", first: first, last: last,
      outcomes: Array(repeating: 0, count: Int(last - first + 1)),
      effectsDigest: EffectDigest.of([UInt8(truncatingIfNeeded: first)]), stateDigest: [])
  }

  func testPendingVotesAreBoundedButTheWatermarkAlwaysFindsRoom() {
    var core = VoterCore(replicaIds: ids, quorum: 2, repairsMax: 3, watermark: 1, decided: [])
    // r1 runs far ahead: one vote per batch 2...(max+1).
    for s in 2...Int64(VoterCore.pendingBatchesMax + 1) {
      XCTAssertTrue(core.receive(vote(0, s, s), from: 0).isEmpty)
    }
    XCTAssertEqual(core.pending.count, VoterCore.pendingBatchesMax)
    _ = core.receive(vote(0, 100_000, 100_000), from: 0)
    XCTAssertEqual(core.votesDropped, 1, "a new batch beyond the limit is dropped")
    XCTAssertEqual(core.pending.count, VoterCore.pendingBatchesMax)
    // The watermark's votes get in (the farthest batch makes room) and decide.
    _ = core.receive(vote(0, 1, 1), from: 0)
    XCTAssertEqual(core.pending.count, VoterCore.pendingBatchesMax)
    let actions = core.receive(vote(1, 1, 1), from: 1)
    XCTAssertTrue(actions.contains { if case .emit(let d) = $0 { d.first == 1 } else { false } })
    XCTAssertEqual(core.watermark, 2)
    XCTAssertEqual(core.votesDropped, 2, "and the farthest batch's vote counts as dropped")
  }

  func testDecidedKeysAreRetainedUpToTheLimit() {
    let n = VoterCore.decidedRetainedBatchesMax + 10
    let decided = (1...Int64(n)).map {
      DecidedBatch(first: $0, last: $0, outcomes: [0], outputDigest: EffectDigest.of([1]), stateDigest: [])
    }
    let core = VoterCore(replicaIds: ids, quorum: 2, repairsMax: 3, watermark: Int64(n) + 1, decided: decided)
    XCTAssertEqual(core.decidedKeys.count, VoterCore.decidedRetainedBatchesMax)
    XCTAssertNil(core.decidedKeys[10])
    XCTAssertNotNil(core.decidedKeys[11])
    XCTAssertEqual(core.prunableThrough(replica: 0, streamedThrough: Int64(n)), 0, "nothing judged yet")
    // The ten not retained are handed to the shell to delete from its store, once.
    var c = core
    XCTAssertEqual(c.takeForgottenDecided(), Array(1...10))
    XCTAssertEqual(c.takeForgottenDecided(), [])
    // Deciding one more forgets the oldest retained one.
    let next = Int64(n) + 1
    _ = c.receive(vote(0, next, next), from: 0)
    let actions = c.receive(vote(1, next, next), from: 1)
    XCTAssertTrue(actions.contains { if case .emit(let d) = $0 { d.first == next } else { false } })
    XCTAssertEqual(c.takeForgottenDecided(), [11])
    XCTAssertEqual(c.decidedKeys.count, VoterCore.decidedRetainedBatchesMax)
    XCTAssertNil(c.decidedKeys[11])
  }
}

final class NodeStatusTests: XCTestCase {
  func keys(_ json: String) throws -> [String] {
    let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    return object.keys.sorted()
  }

  func testStatusKeepsItsFieldNamesSortedAndDecodes() throws {
    let s = SequencerStatus(lastSeq: 7, batches: 2, clientBatches: 3, refused: 0, ingest: "tcp://h:1")
    XCTAssertTrue(
      s.json.hasPrefix(#"{"batches":2,"client_batches":3,"ingest":"tcp://h:1","last_seq":7,"#), s.json)
    XCTAssertEqual(NodeStatus.decode(SequencerStatus.self, from: s.json), s)
    let stalled = SequencerStatus(
      lastSeq: 7, batches: 2, clientBatches: 3, refused: 0, ingest: "tcp://h:1", journalWriteStallMs: 513)
    XCTAssertTrue(stalled.json.contains(#""journal_write_stall_ms":513"#), stalled.json)
    let sized = SequencerStatus(
      lastSeq: 7, batches: 2, clientBatches: 3, refused: 0, ingest: "tcp://h:1", journalLogBytes: 8_192)
    XCTAssertTrue(sized.json.contains(#""journal_log_bytes":8192"#), sized.json)
    XCTAssertEqual(NodeStatus.decode(SequencerStatus.self, from: sized.json), sized)
    XCTAssertEqual(NodeStatus.decode(SequencerStatus.self, from: stalled.json), stalled)
    let r = ReplicaStatus(
      id: "r1", kernel: "v2", appliedSeq: 9, committedSeq: 5, committedStateDigest: "ab", repairs: 1)
    XCTAssertEqual(
      try keys(r.json),
      ["applied_seq", "committed_seq", "committed_state_digest", "id", "kernel", "repairs", "role"])
    XCTAssertEqual(NodeStatus.decode(ReplicaStatus.self, from: r.json), r)
    let v = VoterStatus(
      watermark: 10, quorum: 2, alerts: 1, halted: nil, lastStateDigest: "", stream: "s", streamReplay: "t",
      streamedThrough: 8,
      replicas: [
        .init(id: "r1", kernel: "v1", appliedSeq: 9, agreed: 3, dissents: 0, quarantined: false, repairs: 0)
      ])
    XCTAssertTrue(v.json.contains(#""decided_through":9"#))
    XCTAssertTrue(v.json.contains(#""halted":null"#), "halted is always there")
    XCTAssertEqual(NodeStatus.decode(VoterStatus.self, from: v.json), v)
    XCTAssertNil(NodeStatus.decode(VoterStatus.self, from: s.json), "a sequencer's status is not a voter's")
  }

  func testStageTimeSumsItsStepsAndTravelsInTheStatuses() throws {
    var t = StageTime()
    XCTAssertNil(t.meanMilliseconds, "no mean before the first step")
    t.add(.microseconds(1_500))
    t.add(.microseconds(500))
    t.add(.nanoseconds(999))  // under a microsecond: counted, adds nothing
    XCTAssertEqual(t, StageTime(count: 3, totalMicroseconds: 2_000))
    XCTAssertEqual(try XCTUnwrap(t.meanMilliseconds), 2.0 / 3, accuracy: 1e-9)

    let s = SequencerStatus(
      lastSeq: 7, batches: 2, clientBatches: 3, refused: 0, ingest: "tcp://h:1", journalCommitTime: t)
    XCTAssertTrue(s.json.contains(#""journal_commit_time":{"count":3,"total_us":2000}"#), s.json)
    XCTAssertEqual(NodeStatus.decode(SequencerStatus.self, from: s.json), s)
    let r = ReplicaStatus(
      id: "r1", kernel: "v1", appliedSeq: 9, committedSeq: 5, committedStateDigest: "ab", repairs: 0,
      applyTime: t)
    XCTAssertTrue(r.json.contains(#""apply_time":{"count":3,"total_us":2000}"#), r.json)
    XCTAssertEqual(NodeStatus.decode(ReplicaStatus.self, from: r.json), r)
    let v = VoterStatus(
      watermark: 10, quorum: 2, alerts: 0, halted: nil, lastStateDigest: "", stream: "s", streamReplay: "t",
      streamedThrough: 8, replicas: [], decisionCommitTime: t)
    XCTAssertTrue(v.json.contains(#""decision_commit_time":{"count":3,"total_us":2000}"#), v.json)
    XCTAssertEqual(NodeStatus.decode(VoterStatus.self, from: v.json), v)
    // A status from before the field decodes, without it.
    let old =
      #"{"batches":2,"client_batches":3,"ingest":"tcp://h:1","last_seq":7,"refused":0,"role":"sequencer"}"#
    XCTAssertNil(try XCTUnwrap(NodeStatus.decode(SequencerStatus.self, from: old)).journalCommitTime)
  }
}
