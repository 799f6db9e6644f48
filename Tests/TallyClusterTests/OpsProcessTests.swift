// Operations against real node processes: graceful SIGTERM (exit 0, state committed),
// `cluster status` exit codes, the HTTP endpoints checked by the real `promtool`, and
// structured log lines. Ports: 161xx-163xx (HTTP endpoints at base+50...base+62, the
// dashboard's at base+80).
import Foundation
import TallyCluster
import XCTest

#if canImport(FoundationNetworking)
  import FoundationNetworking
#endif
#if canImport(Glibc)
  import Glibc
#endif

final class OpsProcessTests: ClusterTestCase {
  /// A replica run in the foreground gets SIGTERM with applied but uncommitted events
  /// (the shipped config commits every 10,000 seqs): it exits 0 within the bound, and
  /// the restarted replica reports those events as committed before applying anything.
  func testSigtermCommitsAndExitsZero() throws {
    let m = try Market.generate(in: work, days: 1, tradesPerDay: 1_500)
    let events = try m.eventCount()
    XCTAssertLessThan(events, 10_000, "the test needs events short of a checkpoint")
    let c = try cluster(basePort: 16_100, reference: m.reference)
    try c.up()
    try c.kill9("r1")
    let r1 = try Child(
      Paths.tally, ["replica"] + c.common + ["--reference", m.reference, "--id", "r1"], workDir: work,
      name: "r1-foreground")
    children.append(r1)
    try c.submit([m.events], batchLines: 400)
    XCTAssertTrue(
      try eventually(60) { try c.statusInt("r1", "applied_seq") == events },
      "r1 did not apply everything: \(c.statusText())")
    XCTAssertEqual(try c.statusInt("r1", "committed_seq"), 0, "nothing committed before the stop")

    let clock = ContinuousClock()
    let sent = clock.now
    kill(r1.process.processIdentifier, SIGTERM)
    let result = r1.wait(timeout: 15)
    let took = clock.now - sent
    XCTAssertEqual(result.status, 0, "SIGTERM: exit status; \(result.output)\n\(c.logs())")
    XCTAssertLessThan(took, .seconds(6), "stopped within the 5 s grace (and the loop's 100 ms)")
    let log = (try? String(contentsOfFile: c.data + "/r1.log", encoding: .utf8)) ?? ""
    XCTAssertTrue(log.contains("state committed at seq \(events)"), log)
    XCTAssertTrue(log.contains("msg=\"stopped cleanly\""), log)

    // Restarted, it holds the events as committed state at once (before any new checkpoint).
    try c.up()
    XCTAssertTrue(
      try eventually(20) { try c.statusInt("r1", "committed_seq") == events },
      "committed_seq after restart: \(c.statusText())")
    try c.report(work + "/out")
    assertSameFolders(work + "/out", m.expected, "report after a graceful restart")
  }

  /// `[limits] heap_reserve_mib` (the tally executable's NodeHeap.swift): a node makes
  /// that much heap resident once its state is open, says so in its log, and its
  /// batches reuse those pages: the same events cost each replica with a reserve a
  /// fraction of the page faults (`/proc/<pid>/stat`'s minflt) of one without.
  func testReplicasBatchesReuseTheirHeapReserveInsteadOfFreshPages() throws {
    let m = try Market.generate(in: work, days: 1, tradesPerDay: 60_000, accounts: 3_000)
    let events = try m.eventCount()
    var faults: [Int: [String: Int64]] = [:]
    for (reserve, port) in [(0, 16_500), (96, 16_600)] {
      let folder = work + "/reserve-\(reserve)"
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      // Little room reserved (its page warmer is short and done before the count).
      let config = """
        [cluster]
        name = "reserve-\(reserve)"

        [limits]
        reserve_events = 100000
        heap_reserve_mib = \(reserve)

        """ + TestCluster.replicaTables()
      let c = try TestCluster(work: folder, basePort: port, reference: m.reference, configText: config)
      clusters.append(c)
      try c.up()
      let replicas = ["r1", "r2", "r3"]
      let logs = try replicas.map { try String(contentsOfFile: c.data + "/\($0).log", encoding: .utf8) }
      for (id, log) in zip(replicas, logs) {
        XCTAssertTrue(
          log.contains(reserve == 0 ? "heap reserve: none" : "heap reserve: \(reserve) MiB made resident"),
          "\(id) with heap_reserve_mib = \(reserve): \(log)")
      }
      // Counted once the nodes are idle: no fault left from opening (the page warmer).
      var before: [String: Int64] = [:]
      XCTAssertTrue(
        eventually(30) {
          let now = Dictionary(uniqueKeysWithValues: replicas.map { ($0, minorFaults(c.pid($0))) })
          defer { before = now }
          Thread.sleep(forTimeInterval: 0.3)
          return now == before
        }, "the replicas' faults did not settle")
      try c.submit([m.events], batchLines: 2_000)
      XCTAssertTrue(
        try eventually(120) { try replicas.allSatisfy { try c.statusInt($0, "applied_seq") == events } },
        "not every replica applied the day: \(c.statusText())")
      faults[reserve] = Dictionary(
        uniqueKeysWithValues: replicas.map { ($0, minorFaults(c.pid($0)) - before[$0, default: 0]) })
      c.down()
    }
    print("minor faults while the day applied, without and with a 96 MiB heap reserve: \(faults)")
    for id in ["r1", "r2", "r3"] {
      let without = faults[0]?[id] ?? 0
      let with = faults[96]?[id] ?? 0
      XCTAssertGreaterThan(without, 2_000, "\(id): the day's batches take fresh pages without a reserve")
      XCTAssertLessThan(with * 3, without, "\(id): faults with a 96 MiB reserve \(with), without \(without)")
    }
  }

  /// `Supervisor.isRunning`: a process runs while any of its threads does; a process
  /// SIGKILLed is not running once every thread has exited (its main thread turns
  /// zombie first), and then its files are closed: its lock on a file is free.
  func testAKilledProcessIsRunningUntilItsLastThreadExits() throws {
    // A child holding a lock on a file from a second thread, as a node's RocksDB does.
    let lockFile = work + "/LOCK"
    let script = """
      import fcntl, threading, time, sys
      f = open(sys.argv[1], "w"); fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
      threading.Thread(target=lambda: time.sleep(60), daemon=False).start()
      print("locked", flush=True); time.sleep(60)
      """
    let child = try Child("/usr/bin/env", ["python3", "-c", script, lockFile], workDir: work, name: "locker")
    children.append(child)
    let pid = child.process.processIdentifier
    XCTAssertTrue(
      eventually(10) {
        ((try? String(contentsOfFile: child.outPath, encoding: .utf8)) ?? "").contains("locked")
      },
      "the child took its lock")
    XCTAssertTrue(Supervisor.isRunning(pid: pid), "a live process is running")
    XCTAssertTrue(
      eventually(10) {
        ((try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? "").contains("Threads:\t2")
      }, "the child's second thread")
    kill(pid, SIGKILL)
    XCTAssertTrue(eventually(10) { !Supervisor.isRunning(pid: pid) }, "the killed child is not running")
    // Not running means no thread left to hold the lock: it can be taken at once.
    let fd = open(lockFile, O_WRONLY)
    defer { close(fd) }
    XCTAssertEqual(lockf(fd, F_TLOCK, 0), 0, "the lock is free once the process is not running")
  }

  /// SIGINT (Ctrl-C on a foreground node) is the same graceful stop: the voter exits 0
  /// and, restarted, neither repeats nor skips a decided batch.
  func testSigintStopsTheVoterCleanly() throws {
    let m = try Market.generate(in: work, days: 1, tradesPerDay: 600)
    let events = try m.eventCount()
    let c = try cluster(basePort: 16_400, reference: m.reference)
    try c.up()
    try c.kill9("voter")
    let voter = try Child(Paths.tally, ["voter"] + c.common, workDir: work, name: "voter-foreground")
    children.append(voter)
    try c.submit([m.events], batchLines: 150)
    XCTAssertTrue(
      try eventually(60) { try c.statusInt("voter", "decided_through") == events },
      "voter did not decide everything: \(c.statusText())")
    kill(voter.process.processIdentifier, SIGINT)
    let result = voter.wait(timeout: 15)
    XCTAssertEqual(result.status, 0, "SIGINT: exit status; \(result.output)")
    let log = (try? String(contentsOfFile: c.data + "/voter.log", encoding: .utf8)) ?? ""
    XCTAssertTrue(log.contains("decided through seq \(events)\" seq=\(events)"), log)
    try c.up()
    try c.report(work + "/out")
    assertSameFolders(work + "/out", m.expected, "report after the voter's graceful restart")
  }

  /// `[logs] target = "stderr"` (journald): logfmt lines on standard error, no log file;
  /// `[metrics] sequencer_port` moves its endpoints.
  func testStderrLogTargetAndAConfiguredMetricsPort() throws {
    let config = work + "/stderr.toml"
    try """
    [cluster]
    base_port = 16500
    [metrics]
    sequencer_port = 16590
    [logs]
    target = "stderr"
    [[replica]]
    id = "r1"
    """.write(toFile: config, atomically: true, encoding: .utf8)
    let data = work + "/data"
    let node = try Child(
      Paths.tally, ["sequencer", "--config", config, "--data", data], workDir: work, name: "sequencer")
    children.append(node)
    XCTAssertTrue(
      eventually(20) { (try? httpGet("http://127.0.0.1:16590/ready").status) == 200 }, "never ready")
    kill(node.process.processIdentifier, SIGTERM)
    let result = node.wait(timeout: 15)
    XCTAssertEqual(result.status, 0, result.output)
    let lines = result.stderr.split(separator: "\n")
    XCTAssertTrue(
      lines.contains { $0.hasPrefix("time=") && $0.contains(" level=info node=sequencer msg=") },
      result.stderr)
    XCTAssertTrue(result.stderr.contains("msg=\"stopped cleanly\""), result.stderr)
    XCTAssertFalse(FileManager.default.fileExists(atPath: data + "/sequencer.log"))
  }

  /// `cluster status` exits 0 only when every node is up and a quorum votes.
  func testStatusExitsNonZeroWhenANodeIsDownOrThereIsNoQuorum() throws {
    let m = try Market.generate(in: work, days: 1, tradesPerDay: 300)
    let c = try cluster(basePort: 16_200, reference: m.reference)
    try c.up()
    let healthy = try c.tally(["cluster", "status"])
    XCTAssertEqual(healthy.status, 0, healthy.output)
    try c.kill9("r2")
    let oneDown = try c.tally(["cluster", "status"])
    XCTAssertEqual(oneDown.status, 1, oneDown.output)
    XCTAssertTrue(oneDown.stdout.contains("r2 is down"), oneDown.stdout)
    XCTAssertFalse(oneDown.stdout.contains("no quorum"), oneDown.stdout)
    try c.kill9("r3")
    let json = try c.tally(["cluster", "status"], ["--json"])
    XCTAssertEqual(json.status, 1, json.output)
    XCTAssertTrue(json.stdout.contains("\"healthy\":false"), json.stdout)
    XCTAssertTrue(json.stdout.contains("no quorum: 1 of 3"), json.stdout)
    // SIGTERM through `cluster down` is a clean stop for every node.
    let down = try c.tally(["cluster", "down"])
    XCTAssertEqual(down.status, 0, down.output)
    for node in ["sequencer", "r1", "voter"] {
      let log = (try? String(contentsOfFile: c.data + "/\(node).log", encoding: .utf8)) ?? ""
      XCTAssertTrue(log.contains("msg=\"stopped cleanly\""), "\(node): \(log)")
    }
  }

  /// Every node serves /metrics that the real `promtool check metrics` accepts, with the
  /// values the cluster shows, and /health and /ready; `status --json` lists the URLs.
  func testEveryNodeServesMetricsThatPromtoolAccepts() throws {
    let promtool = try requireTool("promtool")
    let m = try Market.generate(in: work, days: 1, tradesPerDay: 800)
    let events = try m.eventCount()
    let c = try cluster(basePort: 16_300, reference: m.reference)
    try c.up()
    try c.submit([m.events], batchLines: 200)
    try c.report(work + "/out")
    let status = try c.status()
    var bodies: [String: String] = [:]
    for node in TestCluster.nodeNames {
      guard let url = status[node]?["metrics"] as? String else {
        XCTFail("no metrics URL for \(node): \(c.statusText())")
        continue
      }
      XCTAssertTrue(url.hasPrefix("http://127.0.0.1:163"), url)
      // Gauges are sampled between batches, at most every NodeRunner.sampleNanosMin
      // (250 ms): right after the report, a node may not have sampled its last batch yet.
      // The value a node must reach is read again until it does (or 5 s pass).
      let expected = [
        "sequencer": "\ntally_journal_seq \(events).0\n", "voter": "\ntally_voter_streamed_seq \(events).0\n",
        "r1": "\ntally_replica_applied_seq \(events).0\n",
      ][node]
      var (code, body) = try httpGet(url)
      let deadline = Date().addingTimeInterval(5)
      while let expected, code == 200, !body.contains(expected), Date() < deadline {
        Thread.sleep(forTimeInterval: 0.05)
        (code, body) = try httpGet(url)
      }
      XCTAssertEqual(code, 200, url)
      bodies[node] = body
      let check = try runCommand(
        "/bin/sh", ["-c", "\"$0\" check metrics < \"$1\"", promtool, try save(body, node)], workDir: work)
      XCTAssertEqual(check.status, 0, "promtool check metrics \(node): \(check.output)")
      let base = String(url.dropLast("/metrics".count))
      XCTAssertEqual(try httpGet(base + "/health").status, 200, node)
      XCTAssertEqual(try httpGet(base + "/ready").status, 200, node)
    }
    XCTAssertTrue(
      bodies["sequencer"]?.contains("\ntally_journal_seq \(events).0\n") ?? false, bodies["sequencer"] ?? "")
    XCTAssertTrue(
      bodies["voter"]?.contains("\ntally_voter_decided_seq \(events).0\n") ?? false, bodies["voter"] ?? "")
    XCTAssertTrue(
      bodies["voter"]?.contains("\ntally_voter_streamed_seq \(events).0\n") ?? false, bodies["voter"] ?? "")
    XCTAssertTrue(
      bodies["r1"]?.contains("\ntally_replica_applied_seq \(events).0\n") ?? false, bodies["r1"] ?? "")
    for name in [
      "tally_sequencer_fsync_seconds_bucket", "tally_replica_apply_seconds_count", "tally_voter_votes_total",
      "tally_voter_dissents_total{replica=\"r2\"}", "tally_process_resident_memory_bytes",
      "\ntally_sequencer_journal_write_stall_seconds 0.0\n",
      "\ntally_sequencer_journal_memtables_awaiting_flush 0.0\n", "\ntally_sequencer_journal_log_bytes ",
    ] {
      XCTAssertTrue(bodies.values.contains { $0.contains(name) }, "no \(name)")
    }
    // `tally dashboard` serves the business metrics from voted data (default address:
    // base_port + 80); promtool accepts them too.
    let dashboard = try Child(
      Paths.tally, ["dashboard"] + c.common + ["--reference", m.reference], workDir: work, name: "dashboard")
    children.append(dashboard)
    var business = ""
    XCTAssertTrue(
      eventually(60) {
        business = (try? httpGet("http://127.0.0.1:16380/metrics").body) ?? ""
        return business.contains("\ntally_voted_seq \(events)\n")
      }, "dashboard metrics: \(business)")
    let check = try runCommand(
      "/bin/sh", ["-c", "\"$0\" check metrics < \"$1\"", promtool, try save(business, "dashboard")],
      workDir: work)
    XCTAssertEqual(check.status, 0, "promtool check metrics dashboard: \(check.output)")
    let rejections =
      try String(contentsOfFile: m.expected + "/rejections.csv", encoding: .utf8)
      .split(separator: "\n").count - 1
    let counted = business.split(separator: "\n").filter { $0.hasPrefix("tally_rejections_total{") }
      .compactMap { Int($0.split(separator: " ").last ?? "") }.reduce(0, +)
    XCTAssertEqual(counted, rejections, business)
    for name in [
      "tally_trades_cleared_total ", "tally_open_day_cleared_amount_yuan{participant=",
      "tally_open_day_fees_yuan{participant=", "tally_settlement_rows{status=\"PENDING\"}",
      "tally_defaults_outstanding ", "tally_dividend_tax_withheld_yuan ",
    ] {
      XCTAssertTrue(business.contains("\n" + name), "no \(name) in \(business)")
    }
    // One structured logfmt line per event, with the node and the replica's kernel.
    let log = (try? String(contentsOfFile: c.data + "/r2.log", encoding: .utf8)) ?? ""
    let first = log.split(separator: "\n").first.map(String.init) ?? ""
    XCTAssertTrue(first.hasPrefix("time=20") && first.contains(" level=info node=r2 msg=\""), first)
    XCTAssertTrue(first.hasSuffix(" kernel=v2"), first)
  }

  func requireTool(_ name: String) throws -> String {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
      let path = "\(dir)/\(name)"
      if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    XCTFail("\(name) is not installed (scripts/setup.sh installs Debian's prometheus, which brings it)")
    throw TestFailure("no \(name)")
  }

  func save(_ text: String, _ name: String) throws -> String {
    let path = work + "/\(name).metrics"
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }
}

/// A plain HTTP GET with a 10 s timeout: (status, body).
func httpGet(_ url: String) throws -> (status: Int, body: String) {
  final class Box: @unchecked Sendable {  // written once by the callback, read after the wait
    var status = 0
    var body = ""
    var error: (any Error)? = nil
  }
  let box = Box()
  let done = DispatchSemaphore(value: 0)
  var request = URLRequest(url: URL(string: url)!)
  request.timeoutInterval = 10
  URLSession.shared.dataTask(with: request) { data, response, error in
    box.status = (response as? HTTPURLResponse)?.statusCode ?? 0
    box.body = data.map { String(decoding: $0, as: UTF8.self) } ?? ""
    box.error = error
    done.signal()
  }.resume()
  guard done.wait(timeout: .now() + 15) == .success else { throw TestFailure("GET \(url): timed out") }
  if let e = box.error { throw TestFailure("GET \(url): \(e)") }
  return (box.status, box.body)
}

/// The value of one sample (`name` with its labels as exposed) in a Prometheus text body.
func metricValue(_ body: String, _ series: String) -> Double? {
  for line in body.split(separator: "\n") where line.hasPrefix(series + " ") {
    return Double(line.dropFirst(series.count + 1))
  }
  return nil
}

/// A process's minor page faults so far (`/proc/<pid>/stat`, field 10); 0 when unknown.
func minorFaults(_ pid: Int32?) -> Int64 {
  guard let pid, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
    let close = stat.lastIndex(of: ")")
  else { return 0 }
  // Fields after the command's closing parenthesis start at field 3 (the state).
  let fields = stat[stat.index(after: close)...].split(separator: " ")
  return fields.count > 7 ? Int64(fields[7]) ?? 0 : 0
}
