// `tally cluster bench --json`: every phase runs against a real cluster of processes
// (throughput, paced latency, raw ZeroMQ, a replica SIGKILLed and restarted) and the
// one JSON object carries every figure the cluster issue asks for.
import Foundation
import TallyCluster
import XCTest

final class ClusterBenchTests: ClusterTestCase {
  func testBenchPrintsEveryFigureAsOneJSONObject() throws {
    let m = try Market.generate(in: work, days: 1, tradesPerDay: 6_000)
    let eventLines = try String(contentsOfFile: m.events, encoding: .utf8)
      .split(separator: "\n").filter { !$0.isEmpty && !$0.hasPrefix("#") }.count
    let c = try cluster(basePort: 19_100, reference: m.reference)
    let r = try c.tally(
      ["cluster", "bench"],
      [
        "--reference", m.reference, "--events", m.events, "--rate", "5000", "--latency-batch", "200",
        "--down-seconds", "1", "--live-rate", "2500", "--disk-probe-seconds", "1", "--json",
      ],
      timeout: 600)
    XCTAssertEqual(r.status, 0, r.output)
    let line = try XCTUnwrap(r.stdout.split(separator: "\n").last, r.output)
    let object = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
      "not one JSON object: \(line)")
    func number(_ key: String) throws -> Double {
      try XCTUnwrap((object[key] as? NSNumber)?.doubleValue, "\(key) missing in \(line)")
    }
    XCTAssertEqual(object["replicas"] as? String, "v1/v2/v1")
    XCTAssertEqual(try number("events"), Double(eventLines), "every event line is counted once")
    XCTAssertEqual(try number("offered_events_per_s"), 5_000)
    let voted = try number("voted_events_per_s")
    XCTAssertGreaterThan(voted, 0)
    XCTAssertGreaterThan(try number("raw_events_per_s"), voted, "bare ZeroMQ is faster than the cluster")
    XCTAssertEqual(try number("voted_raw_ratio"), voted / (try number("raw_events_per_s")), accuracy: 1e-6)
    let p50 = try number("latency_p50_ms")
    let p99 = try number("latency_p99_ms")
    XCTAssertGreaterThan(p50, 0)
    XCTAssertLessThanOrEqual(p50, p99)
    XCTAssertLessThanOrEqual(p99, try number("latency_max_ms"))
    // The journal's own write stalls in each phase, from the sequencer's status: a small
    // day never fills a 64 MiB memtable, so RocksDB held nothing back.
    XCTAssertEqual(try number("throughput_journal_stall_ms"), 0)
    XCTAssertEqual(try number("latency_journal_stall_ms"), 0)
    XCTAssertTrue(r.stderr.contains("the journal's writes held back by RocksDB 0 ms"), r.stderr)
    // The latency phase's parts, from the nodes' statuses: every step was timed. Each
    // journal commit and decision commit lies inside the latency of the batches it
    // carried, so their means are at most the phase's largest latency; so is the batch
    // of at least two replicas (the quorum's: a third may trail).
    let maxLatency = try number("latency_max_ms")
    let parts = try XCTUnwrap(object["latency_parts"] as? [String: Any], "no latency_parts")
    for key in ["journal_commit_ms", "decision_commit_ms"] {
      let ms = try XCTUnwrap(parts[key] as? NSNumber, "\(key): \(parts)").doubleValue
      XCTAssertTrue(ms > 0 && ms <= maxLatency, "\(key) \(ms) ms against max \(maxLatency) ms")
    }
    let applies = try XCTUnwrap(parts["apply_ms"] as? [String: NSNumber], "\(parts)")
    XCTAssertEqual(Set(applies.keys), ["r1", "r2", "r3"])
    let applyMeans = applies.values.map(\.doubleValue).sorted()
    XCTAssertTrue(applyMeans.allSatisfy { $0 > 0 }, "\(applyMeans)")
    XCTAssertLessThanOrEqual(applyMeans[1], maxLatency, "the quorum's batches: \(applyMeans)")
    XCTAssertTrue(
      r.stderr.contains("latency parts (means, from the nodes' statuses): journal commit "), r.stderr)
    XCTAssertEqual(try number("live_events_per_s"), 2_500, "the recovery phase paced at --live-rate")
    // The killed replica came back: it was timed from its spawn to its first new batch,
    // and it caught up (a positive rate).
    XCTAssertGreaterThan(try number("restart_to_voting_s"), 0)
    XCTAssertGreaterThan(try number("catch_up_ratio"), 0)
    XCTAssertTrue(r.stderr.contains("SIGKILLed at seq"), r.stderr)
    // How long it was down, measured: --down-seconds 1, or less when 80% of the small
    // day was sent first (then said so), never the option's value unmeasured.
    let down = try number("down_s")
    XCTAssertTrue(down > 0 && down < 1.5, "down \(down) s")
    XCTAssertEqual(
      r.stderr.contains("restarted when 80% of the events were sent"), down < 0.5, r.stderr)
    // Its CPU over the span the catch-up was timed on, from /proc: a share of the cores
    // this machine has (its threads together), and per event it applied in the span.
    let share = try number("catch_up_cpu_share")
    XCTAssertTrue(
      share >= 0 && share <= Double(ProcessInfo.processInfo.activeProcessorCount),
      "catch-up CPU share \(share)")
    XCTAssertGreaterThanOrEqual(try number("catch_up_cpu_us_per_event"), 0)
    XCTAssertTrue(r.stderr.contains("r1 on the CPU "), r.stderr)
    // The CPU each node spent while voting, read from /proc: every node, some of it.
    let cpu = try XCTUnwrap(object["cpu_seconds"] as? [String: NSNumber], "cpu_seconds missing in \(line)")
    XCTAssertEqual(Set(cpu.keys), ["sequencer", "r1", "r2", "r3", "voter"])
    XCTAssertGreaterThan(cpu["r2"]?.doubleValue ?? 0, 0, "a replica applied every event")
    XCTAssertTrue(r.stderr.contains("CPU seconds while voting"), r.stderr)
    XCTAssertTrue(r.stderr.contains("recovery at 2500 events/s live: "), r.stderr)
    XCTAssertTrue(r.stderr.contains("host probe (HostProbe.swift): random read "), r.stderr)
    XCTAssertGreaterThan(try number("host_random_read_ns"), 1)
    XCTAssertGreaterThan(try number("host_fresh_memory_gb_per_s"), 0)
    XCTAssertGreaterThan(try number("host_fsync_ms"), 0)
    XCTAssertTrue(r.stderr.contains(", fsync of 64 KiB "), r.stderr)
    // The disk-stall probe ran its second: its percentiles in order, its stalled share a
    // share of its time.
    let fsyncP99 = try number("host_fsync_p99_ms")
    XCTAssertGreaterThan(fsyncP99, 0)
    XCTAssertLessThanOrEqual(fsyncP99, try number("host_fsync_max_ms"))
    let stalled = try number("host_fsync_stalled_share")
    XCTAssertTrue(stalled >= 0 && stalled < 1, "stalled share \(stalled)")
    XCTAssertTrue(r.stderr.contains("disk-stall probe: "), r.stderr)
    let bad = try c.tally(
      ["cluster", "bench"], ["--reference", m.reference, "--events", m.events, "--live-rate", "0"],
      timeout: 60)
    XCTAssertNotEqual(bad.status, 0)
    XCTAssertTrue(bad.stderr.contains("--live-rate must be positive"), bad.output)
    let badProbe = try c.tally(
      ["cluster", "bench"],
      ["--reference", m.reference, "--events", m.events, "--disk-probe-seconds", "700"],
      timeout: 60)
    XCTAssertNotEqual(badProbe.status, 0)
    XCTAssertTrue(badProbe.stderr.contains("--disk-probe-seconds must be within"), badProbe.output)
  }

  /// `tally cluster bench-replica`: one replica's work on a real RocksDB folder, its
  /// figures for the events given, digest votes at the multiples asked for.
  func testBenchReplicaAppliesEveryEventAndSaysWhatItCost() throws {
    let m = try Market.generate(in: work, days: 1, tradesPerDay: 3_000)
    let lines = Int(try m.eventCount())  // the lines the sequencer would journal
    for kernel in ["v1", "v2"] {
      let r = try runCommand(
        Paths.tally,
        [
          "cluster", "bench-replica", "--reference", m.reference, "--events", m.events, "--kernel", kernel,
          "--batch-lines", "250", "--checkpoint-events", "500", "--digest-events", "1000", "--slowest", "3",
        ],
        workDir: work, timeout: 300)
      XCTAssertEqual(r.status, 0, r.output)
      XCTAssertTrue(r.stdout.contains("replica \(kernel): \(lines) events in "), r.stdout)
      // Opened as a replica opens its folder: room for a cluster's reserve_events, then
      // a node's heap reserve made resident.
      XCTAssertTrue(
        r.stdout.contains(
          "(room for \(ClusterConfig.reserveEventsDefault) events; heap reserve: \(ClusterConfig.heapReserveMiBDefault) MiB made resident in "
        ), r.stdout)
      XCTAssertTrue(r.stdout.contains(" events/s "), r.stdout)
      XCTAssertTrue(r.stdout.contains("\(lines / 1000) digest votes"), r.stdout)
      // --slowest: three batches, slowest first, each with its effect bytes; the day's
      // boundary events are named where they fall in one of them.
      let slow = r.stdout.split(separator: "\n").filter { $0.hasPrefix("  batch ") }
      XCTAssertEqual(slow.count, 3, r.stdout)
      let times = slow.compactMap { line in
        line.split(separator: ": ").dropFirst().first.flatMap { Double($0.split(separator: " ")[0]) }
      }
      XCTAssertEqual(times.count, 3, r.stdout)
      XCTAssertEqual(times, times.sorted(by: >), r.stdout)
      XCTAssertTrue(slow.allSatisfy { $0.contains(" bytes of effect records") }, r.stdout)
    }
    let lastBatch = try runCommand(
      Paths.tally,
      [
        "cluster", "bench-replica", "--reference", m.reference, "--events", m.events, "--batch-lines",
        String(lines), "--slowest", "5", "--reserve-events", "0", "--heap-reserve-mib", "0",
      ],
      workDir: work, timeout: 300)
    // One batch of every line: it is the only one listed, with the day's other events
    // counted by record type.
    let only = lastBatch.stdout.split(separator: "\n").filter { $0.hasPrefix("  batch ") }
    XCTAssertEqual(only.count, 1, lastBatch.output)
    XCTAssertTrue(only.first?.contains("batch 1...\(lines): ") == true, lastBatch.output)
    // The expected list from the event file itself: record types in first-seen order.
    var kinds: [(String, Int)] = []
    for line in try String(contentsOfFile: m.events, encoding: .utf8).split(separator: "\n")
    where !line.hasPrefix("#") && !line.hasPrefix("TRADE,") {
      let kind = String(line.prefix { $0 != "," })
      if let k = kinds.firstIndex(where: { $0.0 == kind }) {
        kinds[k].1 += 1
      } else {
        kinds.append((kind, 1))
      }
    }
    XCTAssertGreaterThan(kinds.count, 2)
    let expected = kinds.map { $0.1 == 1 ? $0.0 : "\($0.0) x\($0.1)" }.joined(separator: ", ")
    XCTAssertTrue(
      only.first?.hasSuffix("; besides TRADEs: " + expected) == true, "\(expected)\n\(lastBatch.output)")
    let bad = try runCommand(
      Paths.tally,
      ["cluster", "bench-replica", "--reference", m.reference, "--events", m.events, "--batch-lines", "0"],
      workDir: work, timeout: 60)
    XCTAssertNotEqual(bad.status, 0)
    XCTAssertTrue(bad.stderr.contains("--batch-lines"), bad.output)
    XCTAssertTrue(
      lastBatch.stdout.contains("(room for 0 events; heap reserve: none ([limits] heap_reserve_mib = 0))"),
      lastBatch.output)
    // A negative room or heap reserve is refused, naming the option.
    for option in ["--reserve-events", "--heap-reserve-mib"] {
      let refused = try runCommand(
        Paths.tally,
        ["cluster", "bench-replica", "--reference", m.reference, "--events", m.events, option, "-1"],
        workDir: work, timeout: 60)
      XCTAssertNotEqual(refused.status, 0, option)
      XCTAssertTrue(refused.stderr.contains(option), refused.output)
    }
  }
}
