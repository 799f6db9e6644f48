// A replica's background commit owes its batches' effect records to the next commit
// (ReplicaCore's `owedEffects`); a replica that stops before paying them opens before
// that commit's log entry and applies those batches again from the journal, with the
// same votes and the same effect records. The real core, the real durable engine of
// both kernels, an in-memory store standing for the folder.
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

  func open(_ store: InMemoryStateStore, _ reference: ReferenceData, kernel: String) throws -> Core {
    var settings = Core.Settings(id: "r1", kernel: kernel, checkpointEvents: 100, heartbeatMs: 500)
    settings.digestEvents = 1_000_000
    let applier = try DurableBatchApplier.open(store: store, reference: reference, kernel: kernel)
    return try Core(settings: settings, applier: applier, store: store)
  }

  func batches(_ lines: [[UInt8]], through last: Int, size: Int = 40) -> [JournalBatch] {
    stride(from: 0, to: last, by: size).map { start in
      let end = min(start + size, last)
      return JournalBatch(first: Int64(start + 1), last: Int64(end), lines: Array(lines[start..<end]))
    }
  }

  func votes(_ actions: [Core.Action]) -> [Vote] {
    actions.compactMap { if case .vote(let v) = $0 { v } else { nil } }
  }

  func testAReplicaThatOwesEffectsReopensBeforeItsLastCommit() throws {
    let (reference, lines) = try market()
    XCTAssertGreaterThan(lines.count, 260)
    for kernel in ["v1", "v2"] {
      let store = InMemoryStateStore()
      var core = try open(store, reference, kernel: kernel)
      let journal = batches(lines, through: 260)
      var before: [Vote] = []
      for b in journal { before += votes(try core.receive([b])) }
      try core.applier.finishCommit()
      XCTAssertEqual(
        core.applier.committedSeq, 200, "\(kernel): commits at 120 and 200 (batches crossing 100, 200)")
      let recordsOf161 = try XCTUnwrap(try core.effects(first: 161, last: 200))
      // A crash: memory gone. The last commit (121...200) owed its records.
      var reopened = try open(store, reference, kernel: kernel)
      XCTAssertEqual(reopened.appliedSeq, 120, "\(kernel): opened before the last log entry")
      XCTAssertEqual(reopened.applier.committedSeq, 120)
      XCTAssertNil(try reopened.effects(first: 161, last: 200), "not applied again yet")
      var again: [Vote] = []
      for b in journal where b.first > 120 { again += votes(try reopened.receive([b])) }
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
