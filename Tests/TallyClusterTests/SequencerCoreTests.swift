import KernelAPI
// The sequencer's decisions, driven directly (no sockets, no clock): inputs in, actions out.
import TallyCluster
import TallyEngine
import XCTest

final class SequencerCoreTests: XCTestCase {
  func batch(_ client: String, _ number: Int64, _ lines: [String], peer: UInt8 = 9)
    -> SequencerCore.ClientBatch
  {
    SequencerCore.ClientBatch(
      peer: [peer],
      batch: IngestBatch(
        client: Array(client.utf8), batchNumber: number, eventLines: lines.map { Array($0.utf8) }),
      numberFrame: Array(String(number).utf8))
  }

  /// Performs the journal write as the shell does, then reports it done.
  func written(
    _ core: inout SequencerCore, _ store: InMemoryStateStore, _ actions: [SequencerCore.Action],
    nowMs: Int64 = 0
  )
    throws -> [SequencerCore.Action]
  {
    var out: [SequencerCore.Action] = []
    for a in actions {
      if case .writeJournal(let write, _, _) = a {
        try store.commit(write, sync: true)
        out += try core.journalWritten(nowMs: nowMs)
      } else {
        out.append(a)
      }
    }
    return out
  }

  func acks(_ actions: [SequencerCore.Action]) -> [ClosedRange<Int64>] {
    actions.compactMap { if case .ack(_, _, let f, let l) = $0 { return f...l } else { return nil } }
  }

  func served(_ actions: [SequencerCore.Action]) -> [[JournalBatch]] {
    actions.compactMap {
      guard case .batches(_, let encoded) = $0 else { return nil }
      return encoded.map { e in
        var r = ByteReader(e)
        return try! JournalBatch(decoding: &r)
      }
    }
  }

  func testGroupCommitAcksOnlyAfterTheWriteAndDedupesRetries() throws {
    let store = InMemoryStateStore()
    var core = try SequencerCore(store: store, fetchBatchesMax: 8)
    let first = try core.ingest([
      batch("c", 1, ["a", "b"]), batch("c", 2, ["c"]), batch("c", 1, ["a", "b"]),
    ])
    XCTAssertEqual(first.count, 1, "one write for the group, nothing acked before it")
    guard case .writeJournal(_, let batches, let events) = first[0] else { return XCTFail("\(first)") }
    XCTAssertEqual(batches, 2)
    XCTAssertEqual(events, 3)
    XCTAssertTrue(core.isWriting)
    XCTAssertEqual(core.lastSeq, 0, "nothing counts until the write is done")
    let acked = try written(&core, store, first)
    XCTAssertEqual(acks(acked), [1...2, 3...3, 1...2], "the retry inside the group gets its original range")
    XCTAssertEqual(core.lastSeq, 3)
    // A retry later: acked from memory, no write.
    XCTAssertEqual(acks(try core.ingest([batch("c", 2, ["c"])])), [3...3])
    // Another client's batch 1 is a different batch; an empty batch gets 0...0.
    let more = try written(&core, store, try core.ingest([batch("d", 1, ["x"]), batch("d", 2, [])]))
    XCTAssertEqual(acks(more), [4...4, 0...0])
    XCTAssertEqual(core.clientBatchCount, 4)
  }

  func testRestartKeepsJournalAndDedupeInTheStore() throws {
    let store = InMemoryStateStore()
    var core = try SequencerCore(store: store, fetchBatchesMax: 8)
    _ = try written(&core, store, try core.ingest([batch("c", 1, ["a", "b"]), batch("c", 2, ["c"])]))
    // A write done, its acks never sent (a crash): the retry is acked from the store.
    let lost = try core.ingest([batch("c", 3, ["d"])])
    if case .writeJournal(let w, _, _) = lost[0] { try store.commit(w, sync: true) }
    var again = try SequencerCore(store: store, fetchBatchesMax: 8)
    XCTAssertEqual(again.lastSeq, 4)
    XCTAssertEqual(again.batchCount, 3)
    XCTAssertEqual(acks(try again.ingest([batch("c", 3, ["d"])])), [4...4])
    // Today's key layout (docs/STATE-LAYOUT.md).
    XCTAssertNotNil(try store.value(for: [0x10, 0, 0, 0, 0, 0, 0, 0, 1]))
    XCTAssertEqual(try store.value(for: [0x00] + Array("last_seq".utf8)), [4, 0, 0, 0, 0, 0, 0, 0])
    XCTAssertNotNil(try store.value(for: [0x11] + Array("c".utf8) + [0, 0, 0, 0, 0, 0, 0, 0, 3]))
  }

  func testFetchIsAnsweredParkedOrRefused() throws {
    let store = InMemoryStateStore()
    var core = try SequencerCore(store: store, fetchBatchesMax: 2)
    _ = try written(
      &core, store, try core.ingest([batch("c", 1, ["a"]), batch("c", 2, ["b", "c"]), batch("c", 3, ["d"])]))
    // From a batch boundary: at most fetchBatchesMax batches.
    XCTAssertEqual(served(try core.fetch(peer: [1], from: 1, nowMs: 0)).map { $0.map(\.first) }, [[1, 2]])
    XCTAssertEqual(served(try core.fetch(peer: [1], from: 4, nowMs: 0)).map { $0.map(\.first) }, [[4]])
    // Inside a batch: refused.
    guard case .notABoundary(_, 3)? = try core.fetch(peer: [1], from: 3, nowMs: 0).first else {
      return XCTFail("seq 3 is inside a batch")
    }
    // Beyond the journal: parked; answered when the journal gets there...
    XCTAssertTrue(try core.fetch(peer: [2], from: 5, nowMs: 100).isEmpty)
    XCTAssertTrue(try core.fetch(peer: [3], from: 5, nowMs: 200).isEmpty)
    XCTAssertEqual(core.parkedCount, 2)
    XCTAssertTrue(try core.tick(nowMs: 900).isEmpty)
    let answered = try written(&core, store, try core.ingest([batch("c", 4, ["e"])]), nowMs: 1_000)
    XCTAssertEqual(acks(answered), [5...5])
    XCTAssertEqual(served(answered).map { $0.map(\.first) }, [[5], [5]])
    XCTAssertEqual(core.parkedCount, 0)
    // ... or NONE after parkMs.
    _ = try core.fetch(peer: [2], from: 6, nowMs: 2_000)
    XCTAssertTrue(try core.tick(nowMs: 2_000 + SequencerCore.parkMs).isEmpty)
    guard case .none(let peer, 5)? = try core.tick(nowMs: 2_001 + SequencerCore.parkMs).first else {
      return XCTFail("a parked fetch times out with NONE")
    }
    XCTAssertEqual(peer, [2])
  }

  func testParkedFetchesAreBounded() throws {
    var core = try SequencerCore(store: InMemoryStateStore(), fetchBatchesMax: 2)
    for i in 0..<SequencerCore.parkedFetchesMax {
      XCTAssertTrue(try core.fetch(peer: [UInt8(i % 256), UInt8(i / 256)], from: 1, nowMs: 0).isEmpty)
    }
    let over = try core.fetch(peer: [7, 7], from: 1, nowMs: 1)
    guard case .none(let peer, 0)? = over.first else {
      return XCTFail("the oldest is answered NONE: \(over)")
    }
    XCTAssertEqual(peer, [0, 0])
    XCTAssertEqual(core.parkedCount, SequencerCore.parkedFetchesMax)
    XCTAssertEqual(core.parkedDropped, 1)
  }

  func testDedupeCacheIsBoundedAndOlderRetriesAreAnsweredFromTheStore() throws {
    let store = InMemoryStateStore()
    var core = try SequencerCore(store: store, fetchBatchesMax: 8, dedupeCachedMax: 4)
    for n in 1...10 {
      _ = try written(&core, store, try core.ingest([batch("c", Int64(n), ["e\(n)"])]))
      XCTAssertLessThanOrEqual(core.clientBatchCount, 4, "the cache never holds more than its limit")
    }
    XCTAssertEqual(core.clientBatchCount, 4)
    XCTAssertEqual(core.lastSeq, 10)
    // A retry of batch 2 (long out of the cache) gets its original range, from the store, no write.
    let retry = try core.ingest([batch("c", 2, ["e2"])])
    XCTAssertEqual(acks(retry), [2...2])
    XCTAssertEqual(core.dedupeStoreHits, 1)
    XCTAssertEqual(core.lastSeq, 10, "a retry journals nothing")
    // A recent one comes from memory.
    XCTAssertEqual(acks(try core.ingest([batch("c", 9, ["e9"])])), [9...9])
    XCTAssertEqual(core.dedupeStoreHits, 1)
    // After a restart the cache is empty and every retry is still exactly once.
    var again = try SequencerCore(store: store, fetchBatchesMax: 8, dedupeCachedMax: 4)
    XCTAssertEqual(again.clientBatchCount, 0)
    XCTAssertEqual(
      acks(try again.ingest([batch("c", 1, ["e1"]), batch("c", 10, ["e10"])])), [1...1, 10...10])
    let fresh = try written(&again, store, try again.ingest([batch("c", 11, ["e11"])]))
    XCTAssertEqual(acks(fresh), [11...11])
  }
}
