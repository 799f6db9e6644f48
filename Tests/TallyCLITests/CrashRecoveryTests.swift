// The real process, killed: `tally run --state` is SIGKILLed at random moments and run
// again; when it finally completes, its seven output files and its state digest must
// be those of an uninterrupted run, byte for byte.
//
// The kill schedule comes from a seeded generator; the seed is printed, and
// TALLY_CRASH_SEED=<seed> replays it (TALLY_CRASH_KILLS=<n> changes the number of kills).
// scripts/soak-crash.sh does the same with a release build, a larger market and
// hundreds of kills.
import Foundation
import KernelAPI
import RocksDBStore
import TallyEngine
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

final class CrashRecoveryTests: XCTestCase {
  /// The applied seq committed in a state folder (0 when no state was committed yet),
  /// read without changing the folder's contents more than a RocksDB open does.
  private func committedSeq(_ state: String) throws -> Int64 {
    guard FileManager.default.fileExists(atPath: state + "/CURRENT") else { return 0 }
    var options = RocksDBOptions()
    options.createIfMissing = false
    let store = try RocksDBStateStore(path: state, options: options)
    defer { store.close() }
    return try StateKeys.committedSeq(in: store)
  }

  /// Waits (at most 20 s) until the run has committed: RocksDB starts a new, empty write-ahead
  /// log when it opens a database, and the first commit of the run appends to it.
  private func waitForFirstCommit(_ state: String, of process: TallyProcess) {
    let deadline = Date().addingTimeInterval(20)
    while process.process.isRunning && Date() < deadline {
      let logs = ((try? FileManager.default.contentsOfDirectory(atPath: state)) ?? []).filter {
        $0.hasSuffix(".log") && $0.dropLast(4).allSatisfy(\.isNumber)
      }
      if let newest = logs.max(),
        let size = (try? FileManager.default.attributesOfItem(atPath: state + "/" + newest))?[.size]
          as? NSNumber,
        size.intValue > 0
      {
        return
      }
      usleep(5_000)
    }
  }

  func testKilledRunsResumeToTheSameOutputsAndDigest() throws {
    let environment = ProcessInfo.processInfo.environment
    let seed =
      environment["TALLY_CRASH_SEED"].flatMap { UInt64($0) } ?? UInt64(Date().timeIntervalSince1970 * 1000)
    let killsWanted = environment["TALLY_CRASH_KILLS"].flatMap { Int($0) } ?? 30
    print("CrashRecoveryTests: kill schedule seed \(seed) (rerun with TALLY_CRASH_SEED=\(seed))")
    var random = SplitMix64(seed: seed)

    let dir = try makeTemporaryDirectory("crash")
    addTeardownBlock { removeDirectory(dir) }
    let started = Date()

    // ~33,000 event lines: a debug `tally run --state` takes a few seconds.
    let generated = try runTally(
      [
        "generate", "--out", dir + "/market", "--seed", "20261125", "--days", "6", "--trades-per-day", "5500",
        "--accounts", "500", "--quiet",
      ], scratch: dir)
    XCTAssertEqual(generated.status, 0, generated.stderr)
    let reference = dir + "/market/reference"
    let events = dir + "/market/events.txt"

    let straight = try runTally(
      ["run", "--reference", reference, "--out", dir + "/straight", "--digest", "--quiet", events],
      scratch: dir)
    XCTAssertEqual(straight.status, 0, straight.stderr)
    let expected = try readOutputs(dir + "/straight")
    let expectedDigest = straight.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    XCTAssertEqual(expectedDigest.count, 64, "--digest prints 64 hex digits: \(straight.stdout)")
    XCTAssertEqual(expected.keys.sorted(), outputNames)

    var folderNumber = 0
    func newStateFolder() -> String {
      folderNumber += 1
      return dir + "/state-\(folderNumber)"
    }
    func arguments(_ state: String, _ out: String) -> [String] {
      [
        // A snapshot every 4,000 events (8 a run): kills land in log commits, in
        // snapshots (between their bulk load and the batch that counts them) and in
        // restarts that read snapshots and apply the log again.
        "run", "--state", state, "--commit-events", "500", "--snapshot-events", "4000", "--reference",
        reference,
        "--out", out, "--digest", events,
      ]
    }

    var state = newStateFolder()
    var kills = 0
    var completedEarly = 0
    var lastCommitted: Int64 = 0
    var positions: Set<Int64> = []
    var stalled = 0
    var afterCommitKills = 0
    while kills < killsWanted {
      let process = try TallyProcess(arguments(state, dir + "/out-killed"), scratch: dir)
      let delay = Int.random(in: 50...600, using: &random)
      // Half of the kills count the delay from the start (they land in RocksDB's open and
      // recovery and in loading the state), half from the first commit of this run: loading
      // a large state takes longer than 600 ms in a debug build, so without these the
      // kills would stop landing in the apply/commit phase once the state has grown.
      let afterFirstCommit = Bool.random(using: &random)
      if afterFirstCommit {
        waitForFirstCommit(state, of: process)
        afterCommitKills += 1
      }
      usleep(UInt32(delay * 1000))
      process.kill()
      let result = process.wait()
      if result.killed {
        kills += 1
        let committed = try committedSeq(state)
        XCTAssertGreaterThanOrEqual(
          committed, lastCommitted, "kill \(kills) after \(delay) ms: the committed position went back")
        if committed == lastCommitted { stalled += 1 }
        lastCommitted = committed
        positions.insert(committed)
      } else {
        // It finished before the kill: check it, and go on killing in a new folder.
        XCTAssertEqual(result.status, 0, "run ended by itself with an error: \(result.stderr)")
        XCTAssertEqual(
          result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), expectedDigest,
          "state folder \(folderNumber) completed early")
        try assertSameOutputs(dir + "/out-killed", expected, "state folder \(folderNumber) completed early")
        completedEarly += 1
        state = newStateFolder()
        lastCommitted = 0
      }
    }

    let final = try runTally(arguments(state, dir + "/out-final"), scratch: dir)
    XCTAssertEqual(final.status, 0, final.stderr)
    XCTAssertTrue(
      final.stderr.contains("resumed after seq \(lastCommitted),"),
      "the final run resumes where the last kill left the state (seq \(lastCommitted)): \(final.stderr)")
    XCTAssertEqual(
      final.stdout.trimmingCharacters(in: .whitespacesAndNewlines), expectedDigest, "state digest")
    let differing = try assertSameOutputs(dir + "/out-final", expected, "after \(kills) kills")

    // Each rejected seq once, in seq order: no event was applied twice across restarts.
    let rejections = String(
      decoding: try XCTUnwrap(try readOutputs(dir + "/out-final")["rejections.csv"]), as: UTF8.self)
    let seqs = rejections.split(separator: "\n").dropFirst().map { Int64($0.prefix { $0 != "," })! }
    XCTAssertFalse(seqs.isEmpty, "the generated market has deliberately bad lines")
    XCTAssertEqual(Set(seqs).count, seqs.count, "a rejected seq appears twice")
    XCTAssertEqual(seqs, seqs.sorted())

    print(
      "CrashRecoveryTests: kills: \(kills), differences: \(differing.count), state folders: \(folderNumber) "
        + "(\(completedEarly) completed between kills), distinct committed positions at kills: \(positions.count), "
        + "kills timed from the first commit: \(afterCommitKills), kills without progress: \(stalled), last committed seq \(lastCommitted), "
        + String(format: "%.1f s", Date().timeIntervalSince(started)))
  }

  func testAResumedCompletedRunRewritesTheSameOutputs() throws {
    // Killed after the last commit (or simply run twice): the second run applies nothing
    // and writes the same files again.
    let dir = try makeTemporaryDirectory("rerun")
    addTeardownBlock { removeDirectory(dir) }
    let generated = try runTally(
      [
        "generate", "--out", dir + "/market", "--seed", "5", "--days", "2", "--trades-per-day", "500",
        "--accounts",
        "50", "--quiet",
      ], scratch: dir)
    XCTAssertEqual(generated.status, 0, generated.stderr)
    let base = ["--reference", dir + "/market/reference"]
    let straight = try runTally(
      ["run"] + base + ["--out", dir + "/straight", "--digest", dir + "/market/events.txt"], scratch: dir)
    XCTAssertEqual(straight.status, 0, straight.stderr)
    let expected = try readOutputs(dir + "/straight")
    // Attempt 2 opens the folder from the kernel image the first wrote; attempt 3, told
    // not to, the long way (the reference parsed, the logged day applied again).
    for attempt in 1...3 {
      let out = dir + "/out-\(attempt)"
      let run = try runTally(
        ["run", "--state", dir + "/state", "--commit-events", "100", "--timings"] + base + [
          "--out", out, "--digest", dir + "/market/events.txt",
        ] + (attempt == 3 ? ["--no-kernel-image"] : []), scratch: dir)
      XCTAssertEqual(run.status, 0, run.stderr)
      XCTAssertEqual(run.stdout, straight.stdout, "digest of attempt \(attempt)")
      try assertSameOutputs(out, expected, "attempt \(attempt)")
      if attempt > 1 { XCTAssertTrue(run.stderr.contains("0 events applied now"), run.stderr) }
      // --timings splits the open: the third run applies the whole logged day again
      // (no snapshot within 2M events), the first nothing; the second loads the image.
      let events = try String(contentsOfFile: dir + "/market/events.txt", encoding: .utf8)
        .split(separator: "\n").filter { !$0.isEmpty && !$0.hasPrefix("#") }.count
      if attempt == 2 {
        XCTAssertTrue(
          run.stderr.contains("tally run: state opened from its kernel image (seq \(events), "), run.stderr)
      } else {
        let replayed = attempt == 1 ? 0 : events
        XCTAssertTrue(
          run.stderr.contains("tally run: state opened (opening state ")
            && run.stderr.contains(" s, \(replayed) logged events applied again "), run.stderr)
      }
      XCTAssertTrue(run.stderr.contains("tally run: new events applied "), run.stderr)
      // A fresh folder's open builds the opening state too: its time is not left at zero.
      XCTAssertFalse(run.stderr.contains("(opening state 0.000 s"), run.stderr)
      // A completed run flushes its last commits out of RocksDB's write-ahead log, so a
      // resume does not replay and flush them first.
      let logs = try FileManager.default.contentsOfDirectory(atPath: dir + "/state").filter {
        $0.hasSuffix(".log")
      }
      XCTAssertFalse(logs.isEmpty, "the state folder has a write-ahead log")
      for log in logs {
        let size = try FileManager.default.attributesOfItem(atPath: dir + "/state/" + log)[.size] as? Int
        XCTAssertEqual(size, 0, "attempt \(attempt): \(log) is empty after a completed run")
      }
    }
  }
}
