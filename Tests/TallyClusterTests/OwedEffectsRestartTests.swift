// A replica restarts with the same votes and the same effect records as before its
// crash. A replica (the default) logs no lines: it reopens at its last snapshot and
// applies the journal after it again. A folder that logs lines (replicas before
// 2026-12-03's seventh session): a background commit owes its batches' effect records to
// the next commit (ReplicaCore's `owedEffects`); a replica that stops before paying them
// opens before that commit's log entry and applies those batches again from the
// journal. And a reply of many batches (a catch-up), whose batches after the first are
// split on another thread ahead of their apply, gives the votes and effect records the
// same batches give one reply each, duplicates and a gap in a reply included. The real
// core, the real durable engine of both kernels, an in-memory store standing for the
// folder.
import Foundation
import KernelAPI
import MarketGenerator
import TallyCluster
import TallyEngine
import XCTest

final class OwedEffectsRestartTests: XCTestCase {
  typealias Core = ReplicaCore<DurableBatchApplier>

  func market() throws -> (reference: ReferenceData, lines: [[UInt8]]) {
    let dir = FileManager.default.temporaryDirectory.path + "/tally-owed-\(getpid())-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var options = MarketOptions(
      seed: 11, days: 2, tradesPerDay: 150, accounts: 30, securities: 4, participants: 3)
    options.badLinesPerMillion = 20_000
    _ = try MarketGenerator.generate(options, into: dir)
    let reference = try FileIO.loadReference(dir + "/reference")
    let lines = EmbeddedRun.lines(of: [try FileIO.read(dir + "/events.txt")]).map { Array($0) }
    return (reference, lines)
  }

  func open(
    _ store: InMemoryStateStore, _ reference: ReferenceData, kernel: String, logLines: Bool = true,
    digestEvents: Int64 = 1_000_000, recentEffectsBytesMax: Int? = nil
  ) throws -> Core {
    var settings = Core.Settings(id: "r1", kernel: kernel, checkpointEvents: 100, heartbeatMs: 500)
    settings.digestEvents = digestEvents
    if let recentEffectsBytesMax { settings.recentEffectsBytesMax = recentEffectsBytesMax }
    let applier = try DurableBatchApplier.open(
      store: store, reference: reference, kernel: kernel, logLines: logLines)
    return try Core(settings: settings, applier: applier, store: store)
  }

  func logEntries(_ store: InMemoryStateStore) throws -> Int {
    var n = 0
    try store.scan(prefix: [StateKeys.logEntry(1)[0]]) { _, _ in
      n += 1
      return true
    }
    return n
  }

  func testAReplicaThatLogsNoLinesReopensAtItsLastSnapshot() throws {
    let (reference, lines) = try market()
    XCTAssertGreaterThan(lines.count, 260)
    let journal = batches(lines, through: 260)
    for kernel in ["v1", "v2"] {
      // A snapshot (digest checkpoint) at the batch crossing 200.
      let store = InMemoryStateStore()
      var core = try open(store, reference, kernel: kernel, logLines: false, digestEvents: 200)
      let before = try votesOneBatchAReply(&core, journal)
      try core.applier.finishCommit()
      XCTAssertEqual(core.applier.digestSeq, 200, "\(kernel): the snapshot at 200")
      XCTAssertEqual(try logEntries(store), 0, "\(kernel): no line is logged")
      let recordsOf241 = try XCTUnwrap(try core.effects(first: 241, last: 260))
      let recordsOf161 = try XCTUnwrap(try core.effects(first: 161, last: 200))
      // A crash: memory gone. The folder resumes from the snapshot.
      var reopened = try open(store, reference, kernel: kernel, logLines: false, digestEvents: 200)
      XCTAssertEqual(reopened.appliedSeq, 200, "\(kernel): opened at the last snapshot")
      XCTAssertNil(try reopened.effects(first: 241, last: 260), "not applied again yet")
      XCTAssertEqual(
        try reopened.effects(first: 161, last: 200), recordsOf161,
        "\(kernel): the snapshot's commit logged the records the voter had not streamed")
      let again = try votesOneBatchAReply(&reopened, journal.filter { $0.first > 200 })
      XCTAssertEqual(again, Array(before.suffix(again.count)), "\(kernel): the same votes again")
      XCTAssertEqual(try reopened.effects(first: 241, last: 260), recordsOf241, "\(kernel): the same records")
      // A graceful stop snapshots: the planned restart applies nothing again.
      try reopened.commitForStop()
      let third = try open(store, reference, kernel: kernel, logLines: false, digestEvents: 200)
      XCTAssertEqual(third.appliedSeq, 260, "\(kernel): a stop's snapshot")
      XCTAssertEqual(third.applier.digestSeq, 260)
      XCTAssertEqual(try third.effects(first: 241, last: 260), recordsOf241, "\(kernel): logged at the stop")

      // No snapshot yet: the replica opens at the opening state and applies everything again.
      let fresh = InMemoryStateStore()
      var first = try open(fresh, reference, kernel: kernel, logLines: false)
      let firstVotes = try votesOneBatchAReply(&first, journal)
      try first.applier.finishCommit()
      var second = try open(fresh, reference, kernel: kernel, logLines: false)
      XCTAssertEqual(second.appliedSeq, 0, "\(kernel): no snapshot, no line: the opening state")
      let replayed = try votesOneBatchAReply(&second, journal)
      XCTAssertEqual(replayed, firstVotes, "\(kernel): every vote again, the same")
    }
  }

  func testRecordsLeavingMemoryUnstreamedAreLogged() throws {
    let (reference, lines) = try market()
    let journal = batches(lines, through: 260)
    for kernel in ["v1", "v2"] {
      // Memory for no record: every commit's records leave it at the next commit.
      let store = InMemoryStateStore()
      var core = try open(store, reference, kernel: kernel, logLines: false, recentEffectsBytesMax: 0)
      var records: [Int64: [UInt8]] = [:]
      for b in journal {
        _ = try core.receive([b])
        records[b.first] = try XCTUnwrap(try core.effects(first: b.first, last: b.last))
      }
      try core.applier.finishCommit()
      // Commits at the batches crossing 100 and 200; the second logged the first's records.
      for b in journal where b.last <= 120 {
        XCTAssertEqual(
          try core.effects(first: b.first, last: b.last), records[b.first], "\(kernel): \(b.first)")
      }
      // Streamed records are not logged: with the voter's PRUNE after every batch, a commit
      // logs only the records of the batch it commits at (not streamed yet when it leaves).
      let streamed = InMemoryStateStore()
      var pruned = try open(streamed, reference, kernel: kernel, logLines: false, recentEffectsBytesMax: 0)
      for b in journal {
        _ = try pruned.receive([b])
        pruned.prune(through: b.last)
      }
      try pruned.applier.finishCommit()
      var logged: [UInt8] = []
      try streamed.scan(prefix: [0x21]) { key, _ in
        logged.append(key[8])
        return true
      }
      XCTAssertEqual(logged, [81, 161], "\(kernel): the records of the committing batches only")
    }
  }

  func batches(_ lines: [[UInt8]], through last: Int, size: Int = 40) -> [JournalBatch] {
    stride(from: 0, to: last, by: size).map { start in
      let end = min(start + size, last)
      return JournalBatch(first: Int64(start + 1), last: Int64(end), lines: Array(lines[start..<end]))
    }
  }

  /// The votes of `journal` handed to `core` one batch a reply (as a live replica gets it).
  func votesOneBatchAReply(_ core: inout Core, _ journal: [JournalBatch]) throws -> [Vote] {
    var all: [Vote] = []
    for b in journal { all += votes(try core.receive([b])) }
    return all
  }

  func votes(_ actions: [Core.Action]) -> [Vote] {
    actions.compactMap { if case .vote(let v) = $0 { v } else { nil } }
  }

  func testBatchesSplitAheadGiveTheVotesAndRecordsOfBatchesAppliedOneByOne() throws {
    let (reference, lines) = try market()
    XCTAssertGreaterThan(lines.count, 260)
    let journal = batches(lines, through: 260, size: 20)
    XCTAssertEqual(journal.count, 13)
    for kernel in ["v1", "v2"] {
      let oneByOne = InMemoryStateStore()
      var single = try open(oneByOne, reference, kernel: kernel, logLines: false, digestEvents: 200)
      let expected = try votesOneBatchAReply(&single, journal)
      try single.applier.finishCommit()

      let inReplies = InMemoryStateStore()
      var core = try open(inReplies, reference, kernel: kernel, logLines: false, digestEvents: 200)
      var got: [Vote] = []
      // Six batches; then two duplicates, two new ones and a gap (batch 9 before 8):
      // the two are applied, the rest of the reply dropped; then the rest.
      got += votes(try core.receive(Array(journal[0..<6])))
      let second = try core.receive([journal[4], journal[5], journal[6], journal[7], journal[9], journal[10]])
      got += votes(second)
      XCTAssertTrue(
        second.contains { if case .gap = $0 { true } else { false } }, "\(kernel): the gap is told")
      XCTAssertEqual(core.appliedSeq, journal[7].last, "\(kernel): applied up to the gap")
      got += votes(try core.receive(Array(journal[8...])))
      try core.applier.finishCommit()
      XCTAssertEqual(got, expected, "\(kernel): the same votes (outcomes, effect digests, state digests)")
      XCTAssertGreaterThanOrEqual(core.applier.batchesSplitAhead, 8, "\(kernel): batches were split ahead")
      XCTAssertEqual(single.applier.batchesSplitAhead, 0)
      for b in journal {
        XCTAssertEqual(
          try core.effects(first: b.first, last: b.last), try single.effects(first: b.first, last: b.last),
          "\(kernel): the records of \(b.first)-\(b.last)")
      }
      XCTAssertEqual(core.applier.committedStateDigest, single.applier.committedStateDigest)
    }
  }

  func testAReplicaThatOwesEffectsReopensBeforeItsLastCommit() throws {
    let (reference, lines) = try market()
    XCTAssertGreaterThan(lines.count, 260)
    for kernel in ["v1", "v2"] {
      let store = InMemoryStateStore()
      var core = try open(store, reference, kernel: kernel, logLines: true)
      let journal = batches(lines, through: 260)
      let before = try votesOneBatchAReply(&core, journal)
      try core.applier.finishCommit()
      XCTAssertEqual(
        core.applier.committedSeq, 200, "\(kernel): commits at 120 and 200 (batches crossing 100, 200)")
      let recordsOf161 = try XCTUnwrap(try core.effects(first: 161, last: 200))
      // A crash: memory gone. The last commit (121...200) owed its records.
      var reopened = try open(store, reference, kernel: kernel)
      XCTAssertEqual(reopened.appliedSeq, 120, "\(kernel): opened before the last log entry")
      XCTAssertEqual(reopened.applier.committedSeq, 120)
      XCTAssertNil(try reopened.effects(first: 161, last: 200), "not applied again yet")
      let again = try votesOneBatchAReply(&reopened, journal.filter { $0.first > 120 })
      XCTAssertEqual(again, Array(before.suffix(again.count)), "\(kernel): the same votes again")
      XCTAssertEqual(
        try reopened.effects(first: 161, last: 200), recordsOf161, "\(kernel): the same records again")
      // A graceful stop pays what is owed: the next open is at the applied seq.
      try reopened.commitNow()
      let third = try open(store, reference, kernel: kernel)
      XCTAssertEqual(third.appliedSeq, 260, "\(kernel): nothing owed after a stop")
      XCTAssertEqual(try third.effects(first: 241, last: 260), try reopened.effects(first: 241, last: 260))
    }
  }
}
