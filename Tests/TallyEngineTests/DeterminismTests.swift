// DESIGN "Determinism": the same inputs give the same bytes and the same digest in
// every process, with either clearing kernel, however Dictionary and Set happen to
// iterate. The child processes run the real `tally` binary with
// SWIFT_DETERMINISTIC_HASHING removed from their environment, so each has its own
// random hash seed.
import Foundation
import KernelAPI
import KernelV1
import MarketGenerator
import TallyEngine
import TallyFormat
import XCTest

final class DeterminismTests: XCTestCase {
  typealias H = PropHarness

  /// A trading week: 5 days × 3,000 trades, with defaults, cures, corporate actions,
  /// cancels and bad lines.
  static func weekOptions(seed: UInt64) -> MarketOptions {
    var options = MarketOptions(
      seed: seed, days: 5, tradesPerDay: 3_000, accounts: 800, securities: 30, participants: 6)
    options.badLinesPerMillion = 5_000
    options.cancelsPerMillion = 5_000
    return options
  }

  func testChildEnvironmentLeavesHashingRandom() {
    XCTAssertNil(H.childEnvironment["SWIFT_DETERMINISTIC_HASHING"])
  }

  // MARK: 1. two separate processes of the real binary

  func testWeekInTwoSeparateProcessesGivesIdenticalBytesAndDigests() throws {
    let dir = try H.temporaryDirectory("week2p")
    defer { H.remove(dir) }
    let market = try H.generate(Self.weekOptions(seed: 20_260_105), into: dir + "/market")
    XCTAssertGreaterThan(market.summary.trades, 14_000)
    XCTAssertGreaterThan(market.summary.expectedDefaults, 0, "the week should exercise a default")

    let runs = try H.runBinary(
      reference: market.referencePath, events: [market.eventsPath], outs: [dir + "/out-a", dir + "/out-b"])
    for run in runs {
      XCTAssertEqual(run.status, 0, "tally run failed: \(run.stderr)")
      XCTAssertEqual(run.digest.utf8.count, 64, "digest line: \(run.stdout)")
    }
    XCTAssertEqual(runs[0].digest, runs[1].digest, "two processes print different digests")
    for name in H.outputNames {
      let a = try H.readBytes(runs[0].outDirectory + "/" + name)
      let b = try H.readBytes(runs[1].outDirectory + "/" + name)
      XCTAssertFalse(a.isEmpty, name)
      XCTAssertEqual(a, b, "\(name) differs between two processes")
    }
    XCTAssertEqual(
      try FileManager.default.contentsOfDirectory(atPath: runs[0].outDirectory).sorted(),
      H.outputNames.sorted())

    // And the in-process engine (this process has yet another hash seed) agrees with both.
    let local = try H.run(reference: market.reference, kernel: "v1", lines: market.lines)
    XCTAssertEqual(local.digest.hexString, runs[0].digest, "in-process digest differs from the binary's")
    for (name, bytes) in local.files {
      XCTAssertEqual(
        bytes, try H.readBytes(runs[0].outDirectory + "/" + name), "\(name): in-process vs binary")
    }
    XCTAssertEqual(local.statistics.events, market.lines.count)
    XCTAssertEqual(local.statistics.rejected, market.summary.badLines)
  }

  // MARK: 1b. kernel v1 vs v2

  func testKernelsV1AndV2GiveIdenticalOutputsAndDigestOnAWeek() throws {
    let dir = try H.temporaryDirectory("weekv1v2")
    defer { H.remove(dir) }
    let market = try H.generate(Self.weekOptions(seed: 77), into: dir)
    let v1 = try H.run(reference: market.reference, kernel: "v1", lines: market.lines)
    let v2 = try H.run(reference: market.reference, kernel: "v2", lines: market.lines)
    XCTAssertEqual(H.differingFiles(v1.files, v2.files), [])
    XCTAssertEqual(v1.digest, v2.digest)
    XCTAssertEqual(v1.statistics, v2.statistics)
    XCTAssertEqual(v1.outcomes, v2.outcomes)
    XCTAssertEqual(v1.engine.selfCheckViolations(), [])

    // The fault-injecting kernel must be told apart by the digest (the digest is not blind).
    let faulty = try H.run(reference: market.reference, kernel: "v1-faulty", lines: market.lines)
    XCTAssertNotEqual(faulty.digest, v1.digest, "a kernel that truncates fees must change the digest")
  }

  // MARK: 1c. the generator is deterministic and the digest is stable

  func testSameMarketGeneratedTwiceIsByteIdenticalAndDigestIsStable() throws {
    let dir = try H.temporaryDirectory("gen2")
    defer { H.remove(dir) }
    let options = Self.weekOptions(seed: 4_242)
    let a = try H.generate(options, into: dir + "/a")
    let b = try H.generate(options, into: dir + "/b")
    XCTAssertEqual(a.summary, b.summary)
    for name in ["calendar", "securities", "participants", "units", "accounts", "holdings"] {
      XCTAssertEqual(
        try H.readBytes(a.referencePath + "/\(name).csv"), try H.readBytes(b.referencePath + "/\(name).csv"),
        name)
    }
    XCTAssertEqual(try H.readBytes(a.eventsPath), try H.readBytes(b.eventsPath))
    XCTAssertTrue(a.reference == b.reference)

    let runA = try H.run(reference: a.reference, kernel: "v1", lines: a.lines)
    let runB = try H.run(reference: b.reference, kernel: "v1", lines: b.lines)
    let runA2 = try H.run(reference: a.reference, kernel: "v1", lines: a.lines)
    XCTAssertEqual(runA.digest.count, 32)
    XCTAssertEqual(runA.digest, runB.digest)
    XCTAssertEqual(runA.digest, runA2.digest)
    XCTAssertEqual(H.differingFiles(runA.files, runB.files), [])
    XCTAssertEqual(H.differingFiles(runA.files, runA2.files), [])
    // The digest is a pure function of the state: computing it twice changes nothing.
    XCTAssertEqual(StateDigest.of(runA.engine.checksum), runA.digest)
    XCTAssertEqual(StateDigest.of(runA.engine.checksum), StateDigest.of(runA.engine.checksum))

    // A different seed is a different market and must give a different digest.
    let c = try H.generate(Self.weekOptions(seed: 4_243), into: dir + "/c")
    let runC = try H.run(reference: c.reference, kernel: "v1", lines: c.lines)
    XCTAssertNotEqual(runC.digest, runA.digest)
  }

  /// The digest covers every table: one more applied or rejected event changes it.
  func testDigestChangesWithEveryEvent() throws {
    let dir = try H.temporaryDirectory("digeststep")
    defer { H.remove(dir) }
    var options = MarketOptions(
      seed: 5, days: 2, tradesPerDay: 60, accounts: 40, securities: 4, participants: 3)
    options.badLinesPerMillion = 50_000
    let market = try H.generate(options, into: dir)
    var engine = Engine<V1Kernel>(reference: market.reference)
    var seen = Set<[UInt8]>([engine.stateDigest])
    for (i, line) in market.lines.enumerated() {
      engine.apply(line: line, seq: Int64(i + 1))
      let inserted = seen.insert(engine.stateDigest).inserted
      XCTAssertTrue(inserted, "digest after seq \(i + 1) repeats an earlier one")
    }
  }

  // MARK: 3. Dictionary/Set order cannot leak

  func testDictionaryOrderCannotLeakAcrossThreeProcesses() throws {
    let dir = try H.temporaryDirectory("three")
    defer { H.remove(dir) }
    // Many accounts and participants: many hash-table entries whose order differs per process.
    var options = MarketOptions(
      seed: 9_001, days: 3, tradesPerDay: 800, accounts: 3_000, securities: 40, participants: 25)
    options.badLinesPerMillion = 20_000
    options.cancelsPerMillion = 20_000
    let market = try H.generate(options, into: dir + "/market")
    let runs = try H.runBinary(
      reference: market.referencePath, events: [market.eventsPath],
      outs: [dir + "/out-1", dir + "/out-2", dir + "/out-3"])
    for run in runs { XCTAssertEqual(run.status, 0, "tally run failed: \(run.stderr)") }
    XCTAssertEqual(Set(runs.map(\.digest)).count, 1, "digests differ: \(runs.map(\.digest))")
    for name in H.outputNames {
      let first = try H.readBytes(runs[0].outDirectory + "/" + name)
      for run in runs.dropFirst() {
        XCTAssertEqual(
          try H.readBytes(run.outDirectory + "/" + name), first, "\(name) differs between processes")
      }
    }
    // Both kernels in separate processes too.
    let v2 = try H.runBinary(
      reference: market.referencePath, events: [market.eventsPath], outs: [dir + "/out-v2"],
      extra: ["--kernel", "v2"])
    XCTAssertEqual(v2[0].status, 0, v2[0].stderr)
    XCTAssertEqual(v2[0].digest, runs[0].digest, "kernel v2 in another process")
  }

  /// Splitting the events over several files changes nothing (seq runs on across files).
  func testSplittingEventsAcrossFilesChangesNothing() throws {
    let dir = try H.temporaryDirectory("split")
    defer { H.remove(dir) }
    var options = MarketOptions(
      seed: 31, days: 3, tradesPerDay: 300, accounts: 200, securities: 8, participants: 4)
    options.badLinesPerMillion = 20_000
    let market = try H.generate(options, into: dir + "/market")
    let text = try H.readBytes(market.eventsPath)
    // Cut the file at two line boundaries.
    let newlines = text.indices.filter { text[$0] == 10 }
    let cuts = [newlines[newlines.count / 3] + 1, newlines[2 * newlines.count / 3] + 1]
    let parts = [Array(text[..<cuts[0]]), Array(text[cuts[0]..<cuts[1]]), Array(text[cuts[1]...])]
    var paths: [String] = []
    for (i, part) in parts.enumerated() {
      let path = dir + "/part\(i).txt"
      try Data(part).write(to: URL(fileURLWithPath: path))
      paths.append(path)
    }
    let whole = try H.runBinary(
      reference: market.referencePath, events: [market.eventsPath], outs: [dir + "/w"])
    let split = try H.runBinary(reference: market.referencePath, events: paths, outs: [dir + "/s"])
    XCTAssertEqual(whole[0].status, 0, whole[0].stderr)
    XCTAssertEqual(split[0].status, 0, split[0].stderr)
    XCTAssertEqual(whole[0].digest, split[0].digest)
    for name in H.outputNames {
      XCTAssertEqual(try H.readBytes(dir + "/w/" + name), try H.readBytes(dir + "/s/" + name), name)
    }
  }
}
