// Tests/interop/submit.py, a pyzmq client written from SPEC §7 alone, against a real cluster.
import Foundation
import XCTest

final class InteropTests: ClusterTestCase {
  func testPythonClientSubmitsAndTheReportEqualsTheEmbeddedRun() throws {
    try requirePyZMQ()
    let m = try Market.generate(in: work, days: 3, tradesPerDay: 1_000)
    let c = try cluster(basePort: 17_900, reference: m.reference)
    try c.up()
    let r = try python(
      "submit.py",
      [
        "--endpoint", c.ingest, "--client", "py-desk.1", "--batch-lines", "700", "--retry-batch", "2",
        m.events,
      ])
    XCTAssertEqual(r.status, 0, r.output)
    let events = try m.eventCount()
    // "batch n seq first last" lines: contiguous ranges covering 1...events.
    var next: Int64 = 1
    var batches = 0
    for line in r.stdout.split(separator: "\n") where line.hasPrefix("batch ") {
      let f = line.split(separator: " ")
      XCTAssertEqual(f.count, 5, String(line))
      guard f.count == 5, let first = Int64(f[3]), let last = Int64(f[4]) else { continue }
      batches += 1
      XCTAssertEqual(Int(f[1]), batches, String(line))
      if first == 0 {
        XCTAssertEqual(last, 0, String(line))
        continue
      }
      XCTAssertEqual(first, next, "ranges are contiguous: \(line)")
      next = last + 1
    }
    XCTAssertEqual(next - 1, events)
    XCTAssertGreaterThan(batches, 3)
    XCTAssertTrue(r.stdout.contains("retry batch 2 seq "), r.stdout)
    XCTAssertTrue(r.stdout.contains("(same range)"), r.stdout)
    XCTAssertTrue(r.stdout.contains("total events \(events) seq 1 \(events)"), r.stdout)
    XCTAssertEqual(try c.statusInt("sequencer", "last_seq"), events, "the retried batch was journaled twice")
    try c.report(work + "/out")
    assertSameFolders(work + "/out", m.expected, "report of a pyzmq submission vs tally run")
    // Submitting the whole file again as the same client is all retries.
    let again = try python(
      "submit.py", ["--endpoint", c.ingest, "--client", "py-desk.1", "--batch-lines", "700", m.events])
    XCTAssertEqual(again.status, 0, again.output)
    XCTAssertTrue(again.stdout.contains("total events \(events) seq 1 \(events)"), again.stdout)
    XCTAssertEqual(try c.statusInt("sequencer", "last_seq"), events)
  }

  /// scripts/cluster-client.py, the independent load client of docs/PERFORMANCE.md: its
  /// figures describe the run it made (every event acked and decided), paced and not.
  func testIndependentLoadClientReportsTheVotedRun() throws {
    try requirePyZMQ()
    let m = try Market.generate(in: work, days: 2, tradesPerDay: 1_500)
    let c = try cluster(basePort: 17_950, reference: m.reference)
    try c.up()
    let events = try m.eventCount()
    let script = Paths.packageRoot + "/scripts/cluster-client.py"
    let decided = "tcp://127.0.0.1:\(c.basePort + 5)"
    let windowed = try runCommand(
      "/usr/bin/env",
      ["python3", script, "--ingest", c.ingest, "--decided", decided, "--batch-lines", "500", m.events],
      workDir: work, timeout: 120)
    XCTAssertEqual(windowed.status, 0, windowed.output)
    let figures = try XCTUnwrap(
      JSONSerialization.jsonObject(with: Data(windowed.stdout.utf8)) as? [String: Any], windowed.stdout)
    XCTAssertEqual((figures["events"] as? NSNumber)?.int64Value, events)
    XCTAssertGreaterThan((figures["voted_events_per_s"] as? NSNumber)?.doubleValue ?? 0, 0)
    XCTAssertNotNil(figures["latency_p99_ms"] as? NSNumber)
    XCTAssertEqual(try c.statusInt("sequencer", "last_seq"), events)
    try c.report(work + "/out")
    assertSameFolders(work + "/out", m.expected, "report after the load client's submission")
    // Paced, as another client: every event journaled again as new seqs and decided.
    let paced = try runCommand(
      "/usr/bin/env",
      [
        "python3", script, "--ingest", c.ingest, "--decided", decided, "--client", "paced", "--batch-lines",
        "250", "--rate", "20000", m.events,
      ],
      workDir: work, timeout: 120)
    XCTAssertEqual(paced.status, 0, paced.output)
    XCTAssertTrue(paced.stdout.contains("\"offered_events_per_s\": 20000"), paced.stdout)
    XCTAssertEqual(try c.statusInt("sequencer", "last_seq"), 2 * events)
  }

  /// scripts/cluster-client-run.sh: one independent-client measurement from nothing (a
  /// fresh data folder, cluster up, the client, cluster down): the JSON of a run that
  /// decided every event, and no node left running on the config's ports.
  func testClientRunScriptMeasuresAFreshClusterAndStopsIt() throws {
    try requirePyZMQ()
    let m = try Market.generate(in: work, days: 1, tradesPerDay: 2_000)
    let events = try m.eventCount()
    let local = try String(contentsOfFile: Paths.packageRoot + "/Config/local.toml", encoding: .utf8)
    let config = work + "/client-run.toml"
    try local.replacingOccurrences(of: "base_port = 7100", with: "base_port = 17970")
      .write(toFile: config, atomically: true, encoding: .utf8)
    let r = try runCommand(
      "/usr/bin/env",
      [
        "TALLY_BIN=\(Paths.tally)", "TALLY_CONFIG=\(config)", "TALLY_DISK_PROBE_SECONDS=1",
        "TALLY_KEEP_DATA=1",
        Paths.packageRoot + "/scripts/cluster-client-run.sh",
        m.dir, "--batch-lines", "500", "--latencies", work + "/latencies.txt",
      ],
      workDir: work, timeout: 180)
    XCTAssertEqual(r.status, 0, r.output)
    let figures = try XCTUnwrap(
      JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
    XCTAssertEqual((figures["events"] as? NSNumber)?.int64Value, events)
    XCTAssertEqual((figures["batches"] as? NSNumber)?.intValue, Int((events + 499) / 500))
    // --latencies: one line a batch (number, send time, latency), in send order.
    let perBatch = try String(contentsOfFile: work + "/latencies.txt", encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(perBatch.count, Int((events + 499) / 500))
    XCTAssertEqual(perBatch.first?.split(separator: " ").first, "1")
    XCTAssertEqual(perBatch.first?.split(separator: " ").count, 3)
    // TALLY_KEEP_DATA=1: the folder is kept (its path on standard error), with the
    // sequencer's journal and its RocksDB LOG; removed here.
    let kept = try XCTUnwrap(
      r.stderr.split(separator: "\n").first { $0.hasPrefix("cluster-client-run: data kept in ") }, r.output)
    let keptDir = String(kept.dropFirst("cluster-client-run: data kept in ".count))
    XCTAssertTrue(FileManager.default.fileExists(atPath: keptDir + "/sequencer/journal/LOG"), keptDir)
    try FileManager.default.removeItem(atPath: keptDir)
    // scripts/latency-episodes.py reads the same file: every batch counted once.
    let episodes = try runCommand(
      "/usr/bin/env",
      ["python3", Paths.packageRoot + "/scripts/latency-episodes.py", work + "/latencies.txt"],
      workDir: work, timeout: 60)
    XCTAssertEqual(episodes.status, 0, episodes.output)
    let summary = try XCTUnwrap(
      JSONSerialization.jsonObject(with: Data(episodes.stdout.utf8)) as? [String: Any], episodes.stdout)
    XCTAssertEqual((summary["batches"] as? NSNumber)?.intValue, perBatch.count)
    // The disk-stall probe ran for its second before the cluster, in the same JSON line.
    let samples = try XCTUnwrap((figures["host_fsync_samples"] as? NSNumber)?.intValue, r.stdout)
    XCTAssertGreaterThan(samples, 0)
    let p99 = try XCTUnwrap((figures["host_fsync_p99_ms"] as? NSNumber)?.doubleValue, r.stdout)
    XCTAssertLessThanOrEqual(p99, try XCTUnwrap((figures["host_fsync_max_ms"] as? NSNumber)?.doubleValue))
    let share = try XCTUnwrap((figures["host_fsync_stalled_share"] as? NSNumber)?.doubleValue, r.stdout)
    XCTAssertTrue(share >= 0 && share < 1, "stalled share \(share)")
    // Stopped: nothing answers on the sequencer's control port any more.
    let status = try runCommand(
      Paths.tally, ["cluster", "status", "--config", config, "--json"], workDir: work, timeout: 60)
    XCTAssertNotEqual(status.status, 0, status.output)
    let missing = try runCommand(
      "/usr/bin/env",
      ["TALLY_BIN=\(Paths.tally)", Paths.packageRoot + "/scripts/cluster-client-run.sh", work + "/none"],
      workDir: work, timeout: 60)
    XCTAssertEqual(missing.status, 2, missing.output)
    XCTAssertTrue(missing.stderr.contains("/none/reference does not exist"), missing.output)
  }

  /// scripts/latency-episodes.py on a file written here: a stall's episode (the first
  /// batch the latest, the backlog draining), a lone slow batch, batches under the
  /// threshold left out, p50/p99 as the client computes them; a malformed line named
  /// with its file and line.
  func testLatencyEpisodesGroupsSlowBatchesSentCloseTogether() throws {
    var lines: [String] = []
    for i in 1...200 {
      let sent = Double(i - 1) * 0.01
      var latency = 4.0
      if (101...106).contains(i) { latency = 130.0 - Double(i - 101) * 20 }  // 130 110 90 70 50 30
      if i == 150 { latency = 25.0 }
      lines.append("\(i) \(String(format: "%.3f", sent)) \(latency)")
    }
    let file = work + "/lat.txt"
    try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
    let script = Paths.packageRoot + "/scripts/latency-episodes.py"
    let r = try runCommand("/usr/bin/env", ["python3", script, file], workDir: work, timeout: 60)
    XCTAssertEqual(r.status, 0, r.output)
    let s = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
    XCTAssertEqual((s["batches"] as? NSNumber)?.intValue, 200)
    XCTAssertEqual((s["over_threshold"] as? NSNumber)?.intValue, 7)
    XCTAssertEqual((s["latency_p50_ms"] as? NSNumber)?.doubleValue, 4.0)
    // Index int(200 × 0.99) = 198 of the sorted 200 (from 0): the second largest, 110 ms.
    XCTAssertEqual((s["latency_p99_ms"] as? NSNumber)?.doubleValue, 110.0)
    let episodes = try XCTUnwrap(s["episodes"] as? [[String: NSNumber]], r.stdout)
    XCTAssertEqual(episodes.map { $0["first_batch"]?.intValue }, [101, 150])
    XCTAssertEqual(episodes.map { $0["batches"]?.intValue }, [6, 1])
    XCTAssertEqual(episodes.map { $0["worst_ms"]?.doubleValue }, [130.0, 25.0])
    try "1 0.0 4.0\n2 zero 5.0\n".write(toFile: file, atomically: true, encoding: .utf8)
    let bad = try runCommand("/usr/bin/env", ["python3", script, file], workDir: work, timeout: 60)
    XCTAssertEqual(bad.status, 2, bad.output)
    XCTAssertTrue(bad.stderr.contains("lat.txt:2"), bad.output)
  }

  /// scripts/disk-stall-probe.py alone: one JSON line of fsync figures for a folder, and a
  /// clear refusal of a folder that does not exist or a probe time out of range.
  func testDiskStallProbeScriptPrintsItsFiguresAndRefusesBadArguments() throws {
    let script = Paths.packageRoot + "/scripts/disk-stall-probe.py"
    let r = try runCommand(
      "/usr/bin/env", ["python3", script, work, "--seconds", "0.5"], workDir: work, timeout: 60)
    XCTAssertEqual(r.status, 0, r.output)
    let figures = try XCTUnwrap(
      JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: NSNumber], r.stdout)
    XCTAssertGreaterThan(figures["host_fsync_samples"]?.intValue ?? 0, 10, "an fsync every 5 ms for 0.5 s")
    let p50 = try XCTUnwrap(figures["host_fsync_p50_ms"]?.doubleValue)
    let p99 = try XCTUnwrap(figures["host_fsync_p99_ms"]?.doubleValue)
    XCTAssertGreaterThan(p50, 0)
    XCTAssertLessThanOrEqual(p50, p99)
    XCTAssertLessThanOrEqual(p99, try XCTUnwrap(figures["host_fsync_max_ms"]?.doubleValue))
    let left = try FileManager.default.contentsOfDirectory(atPath: work).filter {
      $0.hasPrefix(".tally-stall-probe")
    }
    XCTAssertEqual(left, [], "the scratch file is removed")
    let missing = try runCommand(
      "/usr/bin/env", ["python3", script, work + "/none"], workDir: work, timeout: 60)
    XCTAssertEqual(missing.status, 2, missing.output)
    XCTAssertTrue(missing.stderr.contains("/none is not a folder"), missing.output)
    let zero = try runCommand(
      "/usr/bin/env", ["python3", script, work, "--seconds", "0"], workDir: work, timeout: 60)
    XCTAssertEqual(zero.status, 64, zero.output)
    XCTAssertTrue(zero.stderr.contains("--seconds must be within"), zero.output)
    let badMode = try runCommand(
      "/usr/bin/env", ["python3", script, work, "--mode", "fast"], workDir: work, timeout: 60)
    XCTAssertEqual(badMode.status, 2, badMode.output)
    XCTAssertTrue(badMode.stderr.contains("invalid choice: 'fast'"), badMode.output)
  }

  /// The probe's write modes (overwriting a pre-written ring through O_DSYNC, or
  /// O_DIRECT|O_DSYNC) with its background writer: the same figures, every scratch file
  /// removed. A file system without O_DIRECT is refused by name, never timed as if it
  /// had it.
  func testDiskStallProbeWriteModes() throws {
    let script = Paths.packageRoot + "/scripts/disk-stall-probe.py"
    for mode in ["dsync", "direct"] {
      let r = try runCommand(
        "/usr/bin/env", ["python3", script, work, "--seconds", "0.5", "--mode", mode, "--background-writer"],
        workDir: work, timeout: 120)
      if mode == "direct" && r.status == 2 {
        XCTAssertTrue(r.stderr.contains("cannot be written with --mode direct"), r.output)
        continue
      }
      XCTAssertEqual(r.status, 0, "\(mode): \(r.output)")
      let figures = try XCTUnwrap(
        JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: NSNumber], r.stdout)
      XCTAssertGreaterThan(figures["host_fsync_samples"]?.intValue ?? 0, 10, mode)
      XCTAssertLessThanOrEqual(
        try XCTUnwrap(figures["host_fsync_p50_ms"]?.doubleValue),
        try XCTUnwrap(figures["host_fsync_max_ms"]?.doubleValue), mode)
      let left = try FileManager.default.contentsOfDirectory(atPath: work).filter {
        $0.hasPrefix(".tally-stall-probe")
      }
      XCTAssertEqual(left, [], "\(mode): the ring and the background writer's file are removed")
    }
  }
}
