// `tally bench`: its help shows the defaults it uses (the issue's day), the market options
// given are honoured, and it prints every figure for both kernels, measured from child runs.
import Foundation
import XCTest

final class BenchCommandTests: XCTestCase {
  private var dir = ""

  override func setUpWithError() throws {
    dir = try makeTemporaryDirectory("bench")
  }

  override func tearDownWithError() throws {
    removeDirectory(dir)
  }

  func testHelpShowsTheIssueDayAsDefaults() throws {
    let help = try runTally(["bench", "--help"], scratch: dir)
    XCTAssertEqual(help.status, 0, help.stderr)
    // ArgumentParser prints "(default: N)" beside each option; squeeze the wrapping first.
    let text = help.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    for (option, value) in [
      ("--seed", "20260105"), ("--days", "1"), ("--trades-per-day", "1000000"), ("--accounts", "1000000"),
      ("--securities", "1000"), ("--participants", "20"), ("--runs", "3"), ("--commit-events", "10000"),
    ] {
      let pattern = option + " <[a-z-]+> [^(]*\\(default: " + value + "\\)"
      XCTAssertNotNil(
        text.range(of: pattern, options: .regularExpression), "\(option) default \(value): \(text)")
    }
    for word in ["--json", "--vs-postgres", "--kernel", "--no-state"] {
      XCTAssertTrue(text.contains(word), "bench --help lacks \(word)")
    }
  }

  /// A tiny day with every market option given: the generated market has exactly those
  /// accounts, securities and participants, and the JSON has every figure for v1 and v2.
  func testOptionsAreHonouredAndEveryFigureIsPrinted() throws {
    let result = try runTally(
      [
        "bench", "--market", dir + "/market", "--seed", "11", "--days", "2", "--trades-per-day", "300",
        "--accounts", "37", "--securities", "7", "--participants", "3", "--runs", "1", "--commit-events",
        "100",
        "--json",
      ], scratch: dir)
    XCTAssertEqual(result.status, 0, result.stderr)
    let market = dir + "/market/11-2x300-a37-s7-p3"
    func lines(_ name: String) throws -> Int {
      try String(contentsOfFile: market + "/reference/" + name, encoding: .utf8).split(separator: "\n").count
        - 1
    }
    XCTAssertEqual(try lines("accounts.csv"), 37)
    XCTAssertEqual(try lines("securities.csv"), 7)
    XCTAssertEqual(try lines("participants.csv"), 3)
    XCTAssertTrue(
      result.stderr.contains("bench: [v2] resume of the completed state (child) 1/1"), result.stderr)

    let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
    let json = try XCTUnwrap(object, result.stdout)
    XCTAssertEqual(json["isIssueDay"] as? Bool, false)
    XCTAssertEqual(json["runs"] as? Int, 1)
    // Huge pages are on by default (HugePages.swift), as the kernel's THP mode allows.
    let machine = try XCTUnwrap(json["machine"] as? [String: Any])
    let modes =
      (try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/enabled", encoding: .utf8)) ?? ""
    let expected = modes.contains("[never]") ? "advised, but THP never" : "on (THP "
    XCTAssertTrue((machine["hugePages"] as? String ?? "").hasPrefix(expected), "\(machine)")
    // The host probe ran: a read that misses the caches takes some nanoseconds (not
    // seconds), fresh memory comes at some GB/s, an fsync in the market folder takes
    // some time (a disk that skipped it would show 0) and less than a second.
    let probe = try XCTUnwrap(machine["probe"] as? [String: Any], "\(machine)")
    let read = try XCTUnwrap((probe["randomReadNanoseconds"] as? NSNumber)?.doubleValue, "\(probe)")
    let fresh = try XCTUnwrap((probe["freshMemoryGBPerSecond"] as? NSNumber)?.doubleValue, "\(probe)")
    XCTAssertTrue(read > 1 && read < 100_000, "\(probe)")
    XCTAssertTrue(fresh > 0.001 && fresh < 1_000, "\(probe)")
    let sync = try XCTUnwrap((probe["fsyncMilliseconds"] as? NSNumber)?.doubleValue, "\(probe)")
    XCTAssertTrue(sync > 0 && sync < 1_000, "\(probe)")
    let trades = try XCTUnwrap(json["trades"] as? Int)
    // Every generated trade, plus the bad TRADE lines that still parse as trades (duplicates,
    // unknown ids), at most every line starting with TRADE.
    let tradeLines = try String(contentsOfFile: market + "/events.txt", encoding: .utf8)
      .split(separator: "\n").filter { $0.hasPrefix("TRADE,") }.count
    XCTAssertTrue((600...tradeLines).contains(trades), "\(trades) trades counted, \(tradeLines) TRADE lines")
    let kernels = try XCTUnwrap(json["kernels"] as? [[String: Any]])
    XCTAssertEqual(kernels.map { $0["name"] as? String }, ["v1", "v2"])
    for k in kernels {
      for key in [
        "runWallSeconds", "runPeakRSSMiB", "engineOnlyTradesPerSecond", "stateWallSeconds", "stateRatio",
        "resumeWallSeconds", "commitP50Milliseconds", "commitP99Milliseconds",
      ] {
        let value = try XCTUnwrap(k[key] as? Double, "\(k["name"] ?? "?") lacks \(key)")
        XCTAssertGreaterThan(value, 0, key)
      }
      // The peak RSS is the child's (a `tally run` of a few hundred trades: tens of MiB),
      // not this benchmark's: a child started by posix_spawn is charged its parent's
      // peak, which the benchmark's 256 MiB memory probe alone puts over this bound.
      XCTAssertLessThan(k["runPeakRSSMiB"] as? Double ?? .infinity, 200)
      XCTAssertLessThan(k["statePeakRSSMiB"] as? Double ?? .infinity, 200)
    }
    let figures = try XCTUnwrap(json["figures"] as? [[String: Any]])
    for name in [
      "tally run wall clock (child, whole process)", "tally run peak RSS (child, ru_maxrss)",
      "engine only (parsed events, apply loop)", "tally run --state vs in-memory run",
      "resume of a completed state (child)", "durable commit p99 (100 events)",
    ] {
      XCTAssertEqual(figures.filter { $0["figure"] as? String == name }.count, 2, name)
      XCTAssertNotNil(figures.first { $0["figure"] as? String == name }?["meetsMust"] as? Bool, name)
    }
  }

  /// `--no-whole-process --no-state`: the engine-only phase alone; no child runs, and the
  /// effects cost (issue 9) is printed as the median of the run pairs, with its parts.
  /// A slice of 100 events makes the pair's engines take many turns (each engine checks
  /// at its end that it applied every event once).
  func testEngineOnlyPhaseAloneReportsTheEffectsCost() throws {
    let result = try runTally(
      [
        "bench", "--market", dir + "/market", "--seed", "12", "--trades-per-day", "400", "--accounts", "50",
        "--securities", "6", "--participants", "3", "--runs", "2", "--kernel", "v1", "--no-state",
        "--no-whole-process", "--slice-events", "100", "--json",
      ], scratch: dir)
    XCTAssertEqual(result.status, 0, result.stderr)
    XCTAssertFalse(result.stderr.contains("tally run (child)"), result.stderr)
    XCTAssertEqual(
      result.stderr.components(separatedBy: "effects cost of this pair").count - 1, 2, result.stderr)
    XCTAssertTrue(result.stderr.contains("; digest "), result.stderr)
    XCTAssertTrue(result.stderr.contains("OPEN "), result.stderr)
    let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
    let kernels = try XCTUnwrap(object?["kernels"] as? [[String: Any]], result.stdout)
    XCTAssertEqual(kernels.count, 1)
    XCTAssertNil(kernels[0]["runWallSeconds"])
    XCTAssertNotNil(kernels[0]["effectsCostFraction"] as? Double, result.stdout)
    XCTAssertGreaterThan(kernels[0]["engineOnlyTradesPerSecond"] as? Double ?? 0, 0)
  }

  /// `--market` naming a market folder (from `tally generate`) measures that market as
  /// it is: nothing is generated inside it (the defaults would have generated the
  /// issue's 1M-trade day there), and the trades counted are its own.
  func testAMarketFolderIsMeasuredAsItIs() throws {
    let market = dir + "/given"
    XCTAssertEqual(
      try runTally(
        [
          "generate", "--out", market, "--seed", "5", "--trades-per-day", "250", "--accounts", "30",
          "--securities", "4", "--participants", "3", "--quiet",
        ], scratch: dir
      ).status, 0)
    let before = try FileManager.default.contentsOfDirectory(atPath: market).sorted()
    let result = try runTally(
      [
        "bench", "--market", market, "--runs", "1", "--kernel", "v2", "--no-state", "--no-whole-process",
        "--json",
      ], scratch: dir)
    XCTAssertEqual(result.status, 0, result.stderr)
    XCTAssertTrue(result.stderr.contains("bench: the market in \(market) as it is"), result.stderr)
    XCTAssertFalse(result.stderr.contains("generating"), result.stderr)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: market).sorted(), before)
    let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
    let json = try XCTUnwrap(object, result.stdout)
    XCTAssertEqual(json["market"] as? String, market)
    XCTAssertEqual(json["isIssueDay"] as? Bool, false)
    let tradeLines = try String(contentsOfFile: market + "/events.txt", encoding: .utf8)
      .split(separator: "\n").filter { $0.hasPrefix("TRADE,") }.count
    let trades = try XCTUnwrap(json["trades"] as? Int)
    XCTAssertTrue((250...tradeLines).contains(trades), "\(trades) trades counted, \(tradeLines) TRADE lines")
  }

  func testRunCommitStatsReportsEveryCommit() throws {
    // 2 days x 200 trades with a commit every 50 events: at least 8 commits reported.
    let market = dir + "/m"
    XCTAssertEqual(
      try runTally(
        [
          "generate", "--out", market, "--days", "2", "--trades-per-day", "200", "--accounts", "40",
          "--securities", "5", "--participants", "3",
        ], scratch: dir
      ).status, 0)
    let result = try runTally(
      [
        "run", "--reference", market + "/reference", "--out", dir + "/out", "--state", dir + "/state",
        "--commit-events", "50", "--commit-ms", "600000", "--commit-stats", market + "/events.txt",
      ], scratch: dir)
    XCTAssertEqual(result.status, 0, result.stderr)
    let line = try XCTUnwrap(
      result.stderr.split(separator: "\n").first { $0.hasPrefix("tally run: commit stats ") }, result.stderr)
    let fields = Dictionary(
      uniqueKeysWithValues: line.split(separator: " ").compactMap { field -> (String, Double)? in
        let kv = field.split(separator: "=")
        guard kv.count == 2, let v = Double(kv[1]) else { return nil }
        return (String(kv[0]), v)
      })
    XCTAssertGreaterThanOrEqual(fields["commits"] ?? 0, 8, String(line))
    XCTAssertLessThanOrEqual(fields["p50_ms"] ?? -1, fields["p99_ms"] ?? -2, String(line))
    XCTAssertLessThanOrEqual(fields["p99_ms"] ?? -1, fields["max_ms"] ?? -2, String(line))
    XCTAssertGreaterThan(fields["max_ms"] ?? 0, 0, String(line))
  }
}

/// The PostgreSQL peer of `scripts/bench-vs-postgres.sh` does the same clearing as Tally: its
/// `--check` mode starts a throwaway cluster and compares the SQL's grouped rows with
/// `clearing.csv` on the worked example and a generated 3-day market.
final class PostgresPeerTests: XCTestCase {
  func testClearingSQLMatchesClearingCSV() throws {
    let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
    guard
      versions.contains(where: {
        FileManager.default.isExecutableFile(atPath: "/usr/lib/postgresql/\($0)/bin/initdb")
      })
    else {
      throw XCTSkip("PostgreSQL is not installed (Debian package postgresql); the script would install it")
    }
    let root = URL(fileURLWithPath: #filePath)
      .deletingLastPathComponent()  // TallyCLITests
      .deletingLastPathComponent()  // Tests
      .deletingLastPathComponent()  // package root
    let scratch = try makeTemporaryDirectory("pg")
    defer { removeDirectory(scratch) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = [
      root.appendingPathComponent("scripts/bench-vs-postgres.sh").path, "--check", "--tally", tallyBinary(),
    ]
    let outPath = scratch + "/out"
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    process.standardOutput = handle
    process.standardError = handle
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    let output = try String(contentsOfFile: outPath, encoding: .utf8)
    XCTAssertEqual(process.terminationStatus, 0, output)
    XCTAssertTrue(output.contains("check worked example: the SQL's 5 grouped rows equal"), output)
    XCTAssertTrue(output.contains("check generated 3 days x 5000 trades: the SQL's"), output)
    XCTAssertTrue(output.contains("--check: 2 passed, 0 failed"), output)
  }
}
