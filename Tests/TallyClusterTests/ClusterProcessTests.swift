// The cluster as real processes on real sockets: each test starts its own cluster
// (own data folder, own ports) through the tally CLI and always brings it down.
//
// Ports: every test has its own base port (171xx ... 179xx); a cluster uses
// base+0...4 and base+10...12.
import Foundation
import KernelAPI
import XCTest

@testable import TallyCluster

#if canImport(Glibc)
  import Glibc
#endif

final class ClusterProcessTests: ClusterTestCase {
  // MARK: (a) voted outputs equal the embedded run

  func testVotedOutputsEqualEmbeddedRun() throws {
    let m = try Market.generate(in: work, days: 3, tradesPerDay: 2_000)
    let c = try cluster(basePort: 17_100, reference: m.reference)
    try c.up()
    let s = try c.submit([m.events], batchLines: 500)
    let events = try m.eventCount()
    XCTAssertTrue(s.output.contains("\(events) events journaled now (seq 1...\(events))"), s.output)
    try c.report(work + "/out")
    assertSameFolders(work + "/out", m.expected, "voted report vs tally run")

    let status = try c.status()
    XCTAssertEqual(c.int(status, "sequencer", "last_seq"), events)
    XCTAssertEqual(
      c.int(status, "sequencer", "journal_write_stall_ms"), 0, "a small day never fills a memtable")
    XCTAssertEqual(c.int(status, "voter", "decided_through"), events)
    // The journal's batches on disk: at least the day's lines, in whole 4 KiB blocks.
    let logBytes = try XCTUnwrap(c.int(status, "sequencer", "journal_log_bytes"), c.statusText())
    XCTAssertTrue(logBytes >= 4_096 && logBytes % 4_096 == 0, "journal_log_bytes \(logBytes)")
    XCTAssertEqual(c.int(status, "voter", "alerts"), 0)
    XCTAssertTrue(c.alerts().isEmpty, "alerts: \(c.alerts())")
    for r in ["r1", "r2", "r3"] {
      XCTAssertEqual(status[r]?["quarantined"] as? Bool, false, r)
      XCTAssertEqual(c.int(status, r, "dissents"), 0, r)
    }
    // Each step a batch took on its way was timed by its node (the latency's parts):
    // a journal commit per client batch at least once, every replica's batches (500
    // lines each: at least one per 500 events), the voter's decision commits.
    func stage(_ node: String, _ field: String) -> (count: Int64, totalMicroseconds: Int64)? {
      guard let t = status[node]?[field] as? [String: Any], let n = t["count"] as? NSNumber,
        let us = t["total_us"] as? NSNumber
      else { return nil }
      return (n.int64Value, us.int64Value)
    }
    let journal = try XCTUnwrap(stage("sequencer", "journal_commit_time"), c.statusText())
    XCTAssertTrue(journal.count >= 1 && journal.totalMicroseconds > 0, "\(journal)")
    for r in ["r1", "r2", "r3"] {
      let apply = try XCTUnwrap(stage(r, "apply_time"), c.statusText())
      XCTAssertTrue(apply.count >= (events + 499) / 500 && apply.totalMicroseconds > 0, "\(r): \(apply)")
    }
    let decisions = try XCTUnwrap(stage("voter", "decision_commit_time"), c.statusText())
    XCTAssertTrue(decisions.count >= 1 && decisions.totalMicroseconds > 0, "\(decisions)")
    // Replicas may still be committing their last vote; they all reach the end.
    XCTAssertTrue(
      try eventually(20) { try ["r1", "r2", "r3"].allSatisfy { try c.statusInt($0, "lag") == 0 } },
      "replicas did not all catch up: \(c.statusText())")
    // The human-readable status answers too.
    let text = try c.tally(["cluster", "status"])
    XCTAssertEqual(text.status, 0)
    XCTAssertTrue(text.stdout.contains("journal seq \(events)"), text.stdout)
    XCTAssertTrue(text.stdout.contains("MiB on disk"), text.stdout)
    XCTAssertFalse(text.stdout.contains("held back"), text.stdout)
    // A second report from the same cluster gives the same bytes.
    try c.report(work + "/out2")
    assertSameFolders(work + "/out2", m.expected, "second report")
  }

  // MARK: (b) kill -9 a replica mid-stream

  func testReplicaKilledMidStreamComesBackAndCatchesUp() throws {
    let m = try Market.generate(in: work, days: 3, tradesPerDay: 3_000)
    let parts = try m.split(3, into: work)
    let c = try cluster(basePort: 17_200, reference: m.reference)
    try c.up()
    try c.submit([parts[0]], batchLines: 50)
    XCTAssertTrue(
      try eventually(30) { (try c.statusInt("r2", "applied_seq") ?? 0) > 0 }, "r2 never applied anything")
    let oldPid = try XCTUnwrap(c.pid("r2"))
    // The next part is being submitted while r2 dies.
    let submitting = try c.startSubmit([parts[1]], batchLines: 20, name: "submit-part2")
    children.append(submitting)
    let wasSubmitting = submitting.isRunning
    try c.kill9("r2")
    let s2 = submitting.wait(timeout: 60)
    XCTAssertEqual(s2.status, 0, "submit while a replica died: \(s2.output)")
    try c.submit([parts[2]], batchLines: 20)
    let lastSeq = try XCTUnwrap(try c.statusInt("sequencer", "last_seq"))
    XCTAssertEqual(lastSeq, try m.eventCount())
    let during = try c.status()
    XCTAssertEqual(during["r2"]?["alive"] as? Bool, false, "r2 is reported down")
    XCTAssertLessThan(c.int(during, "r2", "applied_seq") ?? 0, lastSeq)
    // The two survivors are a quorum: the voter decides everything without r2.
    XCTAssertTrue(
      try eventually(60) { try c.statusInt("voter", "decided_through") == lastSeq }, "\(c.statusText())")

    let up = try c.tally(["cluster", "up"], ["--reference", m.reference], timeout: 60)
    XCTAssertEqual(up.status, 0, up.output)
    XCTAssertTrue(up.output.contains("started r2;"), "only r2 is restarted: \(up.output)")
    let newPid = try XCTUnwrap(c.pid("r2"))
    XCTAssertNotEqual(newPid, oldPid)
    try c.report(work + "/out")
    assertSameFolders(work + "/out", m.expected, "report after r2 came back")
    XCTAssertTrue(
      try eventually(60) { try c.statusInt("r2", "lag") == 0 && c.statusInt("r2", "applied_seq") == lastSeq },
      "r2 did not catch up: \(c.statusText())\n\(c.logs())")
    let status = try c.status()
    XCTAssertEqual(status["r2"]?["quarantined"] as? Bool, false)
    XCTAssertEqual(c.int(status, "r2", "dissents"), 0)
    // Its backlog came in replies of many batches: those after each reply's first were
    // split on another thread while it applied (`ReplicaCore.prepare`).
    XCTAssertGreaterThan(c.int(status, "r2", "batches_split_ahead") ?? 0, 0, "\(c.statusText())")
    XCTAssertTrue(c.alerts().isEmpty, "a crash is not a dissent: \(c.alerts())")
    if !wasSubmitting { print("note: the part-2 submit had already finished when r2 was killed") }
  }

  // MARK: (c) a faulty kernel is outvoted, alerted and quarantined

  func testFaultyKernelIsOutvotedAlertedAndQuarantined() throws {
    let m = try Market.generate(in: work, days: 3, tradesPerDay: 1_500)
    let config = """
      [cluster]
      name = "faulty"
      base_port = 7100

      [limits]
      heartbeat_ms = 200
      checkpoint_events = 100
      repairs_max = 1

      """ + TestCluster.replicaTables(third: "v1-faulty")
    let c = try cluster(basePort: 17_300, reference: m.reference, configText: config)
    try c.up()
    try c.submit([m.events], batchLines: 400)
    try c.report(work + "/out")
    assertSameFolders(work + "/out", m.expected, "report with a faulty replica")

    let dissents = c.alerts().filter { $0["kind"] as? String == "DISSENT" }
    XCTAssertFalse(dissents.isEmpty, "no DISSENT alert: \(c.alerts())")
    XCTAssertTrue(dissents.allSatisfy { $0["replica"] as? String == "r3" }, "only r3 dissents: \(dissents)")
    XCTAssertTrue(dissents.contains { $0["kernel"] as? String == "v1-faulty" }, "\(dissents)")
    XCTAssertFalse(c.alerts().contains { $0["kind"] as? String == "NO_MAJORITY" })
    // The repair, the replay and the second dissent that quarantines r3 go on after the
    // report; the voter may also be busy explaining that dissent when asked. Ask again
    // for a while.
    var status = try c.status()
    for _ in 0..<40 where status["r3"]?["quarantined"] as? Bool != true {
      Thread.sleep(forTimeInterval: 0.25)
      status = try c.status()
    }
    XCTAssertEqual(status["r3"]?["quarantined"] as? Bool, true, "\(status["r3"] ?? [:])")
    XCTAssertGreaterThan(c.int(status, "r3", "dissents") ?? 0, 0)
    XCTAssertEqual(status["r3"]?["kernel"] as? String, "v1-faulty")
    for r in ["r1", "r2"] {
      XCTAssertEqual(status[r]?["quarantined"] as? Bool, false, r)
      XCTAssertEqual(c.int(status, r, "dissents"), 0, r)
    }
    XCTAssertEqual(c.int(status, "voter", "decided_through"), try m.eventCount())
    let text = try c.tally(["cluster", "status"])
    XCTAssertTrue(text.stdout.contains("QUARANTINED"), text.stdout)
    // The voter's Prometheus metrics say the same (the dissents happened in this voter process).
    let url = try XCTUnwrap(status["voter"]?["metrics"] as? String)
    let metrics = try httpGet(url).body
    XCTAssertEqual(metricValue(metrics, "tally_voter_replica_quarantined{replica=\"r3\"}"), 1, metrics)
    XCTAssertGreaterThan(metricValue(metrics, "tally_voter_dissents_total{replica=\"r3\"}") ?? 0, 0, metrics)
    XCTAssertEqual(metricValue(metrics, "tally_voter_dissents_total{replica=\"r1\"}"), 0, metrics)
    XCTAssertGreaterThan(metricValue(metrics, "tally_voter_quarantines_total") ?? 0, 0, metrics)
    XCTAssertGreaterThan(metricValue(metrics, "tally_voter_alerts_total{kind=\"DISSENT\"}") ?? 0, 0, metrics)
    XCTAssertEqual(metricValue(metrics, "tally_voter_no_majority_total"), 0, metrics)
  }

  /// A byzantine replica (`--flip-digest-bit`: right outputs, wrong state digest) is
  /// outvoted on the state digest alone.
  func testByzantineStateDigestIsOutvoted() throws {
    let m = try Market.generate(in: work, days: 2, tradesPerDay: 800)
    // State digests are voted at digest checkpoints: place one every 300 seqs here (a
    // commit every 100), so that commits with and without a snapshot both happen.
    let config = try String(contentsOfFile: Paths.packageRoot + "/Config/local.toml", encoding: .utf8)
      .replacingOccurrences(of: "checkpoint_events = 10000", with: "checkpoint_events = 100")
      .replacingOccurrences(of: "digest_events = 10000000", with: "digest_events = 300")
    XCTAssertTrue(config.contains("digest_events = 300"), "Config/local.toml names digest_events")
    let c = try cluster(basePort: 18_400, reference: m.reference, configText: config)
    try c.up()
    try c.kill9("r3")
    let byzantine = try Child(
      Paths.tally, ["replica"] + c.common + ["--reference", m.reference, "--id", "r3", "--flip-digest-bit"],
      workDir: work, name: "r3-byzantine")
    children.append(byzantine)
    XCTAssertTrue(
      eventually(20) { (try? c.statusInt("r3", "applied_seq")) != nil }, "the byzantine r3 never answered")
    try c.submit([m.events], batchLines: 300)
    try c.report(work + "/out")
    assertSameFolders(work + "/out", m.expected, "report with a byzantine replica")
    let dissents = c.alerts().filter { $0["kind"] as? String == "DISSENT" }
    XCTAssertFalse(dissents.isEmpty, "\(c.alerts())")
    XCTAssertTrue(dissents.allSatisfy { $0["replica"] as? String == "r3" }, "\(dissents)")
    XCTAssertTrue(
      dissents.allSatisfy {
        ($0["detail"] as? String)?.hasPrefix("state digest differs from the majority's") == true
      },
      "\(dissents)")
    // The voter answers status between batches; while it asks the replicas to explain a
    // dissent (up to a few seconds) status has no view of r3 yet.
    XCTAssertTrue(
      eventually(20) { (try? c.status()["r3"]?["quarantined"] as? Bool) == true },
      "r3 is never shown quarantined: \((try? c.status()["r3"]) ?? [:])")
  }

  // MARK: (d) the voter restarts without repeating or skipping a seq

  func testVoterKilledMidStreamNeitherRepeatsNorSkips() throws {
    let m = try Market.generate(in: work, days: 3, tradesPerDay: 3_000)
    let c = try cluster(basePort: 17_400, reference: m.reference)
    try c.up()
    // Submit in the background, in small batches, and kill the voter once it has
    // decided something: the stream is still arriving when it dies.
    let submit = try Child(
      Paths.tally, ["submit"] + c.common + ["--batch-lines", "20", m.events], workDir: work, name: "submit-bg"
    )
    children.append(submit)
    XCTAssertTrue(
      try eventually(30) { (try c.statusInt("voter", "decided_through") ?? 0) > 0 },
      "the voter decided nothing")
    try c.kill9("voter")
    let decidedAtKill = (try? c.statusInt("voter", "decided_through")) ?? nil
    XCTAssertNil(decidedAtKill, "the voter is down")
    let submitted = submit.wait(timeout: 120)
    XCTAssertEqual(submitted.status, 0, "submit: \(submitted)")
    let lastSeq = try XCTUnwrap(try c.statusInt("sequencer", "last_seq"))
    XCTAssertEqual(lastSeq, try m.eventCount())
    let status = try c.status()
    XCTAssertEqual(status["voter"]?["alive"] as? Bool, false)
    Thread.sleep(forTimeInterval: 0.5)  // replicas go on voting into the void
    let up = try c.tally(["cluster", "up"], ["--reference", m.reference], timeout: 60)
    XCTAssertEqual(up.status, 0, up.output)
    XCTAssertTrue(up.output.contains("started voter;"), up.output)
    try c.report(work + "/out")
    assertSameFolders(work + "/out", m.expected, "report after a voter restart")
    let after = try c.status()
    XCTAssertEqual(c.int(after, "voter", "decided_through"), lastSeq)
    XCTAssertTrue(c.alerts().isEmpty, "a voter restart raises no alert: \(c.alerts())")
    XCTAssertTrue(
      try eventually(30) { (try c.statusInt("voter", "streamed_through") ?? 0) == lastSeq },
      "the restarted voter streamed everything")

    // The voter's persisted decisions, read back after the cluster is down: one
    // decided batch per journal batch, contiguous from seq 1 to the journal's end.
    c.down()
    let config = try ClusterConfig.load(c.config)
    let journal = try Sequencer(config: config, dataDir: c.data + "/sequencer", log: Logger(node: "test"))
    var journalRanges: [ClosedRange<Int64>] = []
    var next: Int64 = 1
    while next <= journal.lastSeq {
      guard let encoded = try journal.batches(from: next, max: 1)?.first else {
        XCTFail("journal has no batch at \(next)")
        break
      }
      var r = ByteReader(encoded)
      let b = try JournalBatch(decoding: &r)
      journalRanges.append(b.first...b.last)
      next = b.last + 1
    }
    XCTAssertEqual(journalRanges.last?.upperBound, lastSeq)
    let voter = try Voter(
      config: config, dataDir: c.data + "/voter", alertsPath: work + "/unused.jsonl",
      log: Logger(node: "test"))
    XCTAssertEqual(voter.core.watermark, lastSeq + 1)
    let decided = voter.core.decidedKeys.map { $0.key...$0.value.last }.sorted {
      $0.lowerBound < $1.lowerBound
    }
    XCTAssertEqual(decided.count, journalRanges.count, "decided batches vs journal batches")
    XCTAssertEqual(decided, journalRanges, "the decided stream is the journal's batches, each once, in order")
    // Its stream records (the segment log): the same batches, each once, in order.
    let streamed = voter.stream.log.entries.map { $0.first...$0.last }
    XCTAssertEqual(
      streamed, journalRanges, "the stream's records are the journal's batches, each once, in order")
  }

  // MARK: more crashes

  /// The sequencer dies while a submit is in flight and comes back: the client's
  /// retries are journaled once, and the voted report is still exact.
  func testSequencerKilledDuringSubmitLosesNothingAndDuplicatesNothing() throws {
    let m = try Market.generate(in: work, days: 3, tradesPerDay: 1_500)
    let parts = try m.split(3, into: work)
    let c = try cluster(basePort: 18_200, reference: m.reference)
    try c.up()
    try c.submit([parts[0]], batchLines: 50)
    let journaledBefore = try XCTUnwrap(try c.statusInt("sequencer", "last_seq"))
    // Tiny batches keep this submit busy for a while (about a thousand round trips).
    let submitting = try c.startSubmit([parts[1]], batchLines: 2, name: "submit-part2")
    children.append(submitting)
    XCTAssertTrue(
      eventually(10) {
        ((try? String(contentsOfFile: submitting.errPath, encoding: .utf8)) ?? "").contains("batches acked")
      },
      "the submit made no progress")
    XCTAssertTrue(submitting.isRunning, "the submit finished before the sequencer could be killed")
    // Frozen first, so that a batch is certainly in flight when it dies: the client's
    // next batch waits unanswered in the frozen sequencer's socket and dies with it (a
    // plain kill could land between an ack and the next send; ZeroMQ then delivers the
    // queued batch to the new sequencer and nothing is retried).
    let sequencerPid = try XCTUnwrap(c.pid("sequencer"))
    XCTAssertEqual(kill(sequencerPid, SIGSTOP), 0)
    Thread.sleep(forTimeInterval: 0.5)
    try c.kill9("sequencer")
    Thread.sleep(forTimeInterval: 0.3)
    try c.up()
    let s2 = submitting.wait(timeout: 90)
    XCTAssertEqual(s2.status, 0, s2.output)
    XCTAssertTrue(s2.stderr.contains("sending it again"), "no batch was retried: \(s2.stderr)")
    XCTAssertGreaterThan(try c.statusInt("sequencer", "last_seq") ?? 0, journaledBefore)
    try c.submit([parts[2]], batchLines: 50)
    XCTAssertEqual(try c.statusInt("sequencer", "last_seq"), try m.eventCount(), "lost or duplicated events")
    try c.report(work + "/out")
    assertSameFolders(work + "/out", m.expected, "report after a sequencer crash")
    XCTAssertTrue(c.alerts().isEmpty, "\(c.alerts())")
  }

  /// A quarantined replica stays quarantined when the voter restarts (its quarantine is
  /// the operator's signal; a restart is not a repair).
  func testQuarantineSurvivesAVoterRestart() throws {
    let m = try Market.generate(in: work, days: 2, tradesPerDay: 1_000)
    let config = """
      [cluster]
      name = "faulty"

      [limits]
      heartbeat_ms = 200
      checkpoint_events = 100
      repairs_max = 1

      """ + TestCluster.replicaTables(third: "v1-faulty")
    let c = try cluster(basePort: 18_300, reference: m.reference, configText: config)
    try c.up()
    try c.submit([m.events], batchLines: 400)
    try c.report(work + "/out")
    XCTAssertEqual(try c.status()["r3"]?["quarantined"] as? Bool, true)
    try c.kill9("voter")
    try c.up()
    XCTAssertTrue(try eventually(20) { try c.statusInt("voter", "decided_through") == m.eventCount() })
    Thread.sleep(forTimeInterval: 1.5)  // resends and heartbeats have arrived
    let status = try c.status()
    XCTAssertEqual(
      status["r3"]?["quarantined"] as? Bool, true,
      "after a voter restart the faulty r3 is no longer quarantined: \(status["r3"] ?? [:])")
  }

  // MARK: (e) client retries are journaled once

  func testSubmitTwiceWithTheSameClientJournalsNothing() throws {
    let m = try Market.generate(in: work, days: 3, tradesPerDay: 600)
    let c = try cluster(basePort: 17_500, reference: m.reference)
    try c.up()
    let first = try c.submit([m.events], client: "desk-7", batchLines: 300)
    let events = try m.eventCount()
    XCTAssertTrue(first.output.contains("\(events) events journaled now"), first.output)
    let lastSeq = try c.statusInt("sequencer", "last_seq")
    XCTAssertEqual(lastSeq, events)
    let batches = try c.statusInt("sequencer", "batches")
    let clientBatches = try c.statusInt("sequencer", "client_batches")
    try c.submit([m.events], client: "desk-7", batchLines: 300)
    XCTAssertEqual(try c.statusInt("sequencer", "last_seq"), lastSeq, "a retry journaled something")
    XCTAssertEqual(try c.statusInt("sequencer", "batches"), batches)
    XCTAssertEqual(try c.statusInt("sequencer", "client_batches"), clientBatches)
    // The voted report counts every event once.
    try c.report(work + "/out")
    assertSameFolders(work + "/out", m.expected, "report after a resubmission")
    // Without --client the id comes from the content: the same file is a retry as well.
    try c.submit([m.events], batchLines: 300)
    try c.submit([m.events], batchLines: 300)
    XCTAssertEqual(try c.statusInt("sequencer", "last_seq"), 2 * events)
  }

  /// `tally submit` says "N events journaled now (seq a...b)" for a resubmission that
  /// journaled nothing: a retry's answer repeats the original range and the Submitter
  /// counts it as new. Its "(all were already journaled)" message is only reached when
  /// every batch is empty.
  func testResubmissionSaysNothingWasJournaled() throws {
    let m = try Market.generate(in: work, days: 1, tradesPerDay: 200)
    let c = try cluster(basePort: 18_000, reference: m.reference)
    try c.up()
    try c.submit([m.events], client: "desk-8")
    let second = try c.submit([m.events], client: "desk-8")
    XCTAssertEqual(try c.statusInt("sequencer", "last_seq"), try m.eventCount())
    XCTAssertTrue(
      second.output.contains("0 events journaled now (all were already journaled)"),
      "the second submit journaled nothing but says: \(second.stderr)")
  }

  /// `tally report` asks every replica for its files with a 30 s timeout each, so a
  /// replica that is down costs 30 s although the two live ones are a quorum.
  func testReportWithOneReplicaDownIsPrompt() throws {
    let m = try Market.generate(in: work, days: 1, tradesPerDay: 300)
    let c = try cluster(basePort: 18_100, reference: m.reference)
    try c.up()
    try c.submit([m.events])
    try c.report(work + "/out")
    try c.kill9("r3")
    let started = Date()
    try c.report(work + "/out-without-r3")
    let seconds = Date().timeIntervalSince(started)
    assertSameFolders(work + "/out-without-r3", m.expected, "report with r3 down")
    XCTAssertLessThan(seconds, 10, "tally report took \(Int(seconds)) s with one replica down")
  }

  func testRawBatchSentTwiceGetsTheSameSeqRange() throws {
    try requirePyZMQ()
    let m = try Market.generate(in: work, days: 1, tradesPerDay: 200)
    let c = try cluster(basePort: 17_600, reference: m.reference)
    try c.up()
    let events = try m.eventCount()
    let file = "@FILE:" + m.events
    let r = try python(
      "raw_frames.py",
      [
        "--endpoint", c.ingest,
        "TALLY1|raw-1|1|\(file)",  // new: 1...events
        "TALLY1|raw-1|1|\(file)",  // retry: same range, nothing journaled
        "TALLY1|raw-1|1|",  // a retry is known by its number, whatever its events
        "TALLY1|raw-2|1|BAD LINE\\n",  // another client's batch 1 is new
        "TALLY1|raw-1|2|# only a comment\\n\\n",  // new batch without events: OK 0 0
        "TALLY1|raw-1|2|X\\n",  // ...and its retry stays 0 0
        "TALLY1|raw-1|9223372036854775807|Y\\r\\n",  // numbers need not be consecutive
        "TALLY1|raw-1|1|\(file)",  // the first batch's retry, later still
      ])
    XCTAssertEqual(r.status, 0, r.output)
    let answers = r.stdout.split(separator: "\n").map(String.init)
    let n = String(events)
    let n1 = String(events + 1)
    let n2 = String(events + 2)
    XCTAssertEqual(
      answers,
      [
        #"["TALLY1", "1", "OK", "1", "\#(n)"]"#,
        #"["TALLY1", "1", "OK", "1", "\#(n)"]"#,
        #"["TALLY1", "1", "OK", "1", "\#(n)"]"#,
        #"["TALLY1", "1", "OK", "\#(n1)", "\#(n1)"]"#,
        #"["TALLY1", "2", "OK", "0", "0"]"#,
        #"["TALLY1", "2", "OK", "0", "0"]"#,
        #"["TALLY1", "9223372036854775807", "OK", "\#(n2)", "\#(n2)"]"#,
        #"["TALLY1", "1", "OK", "1", "\#(n)"]"#,
      ], r.output)
    XCTAssertEqual(try c.statusInt("sequencer", "last_seq"), events + 2)
    // The dedupe survives a sequencer restart (it is in the journal, not only in memory).
    try c.kill9("sequencer")
    try c.up()
    let again = try python(
      "raw_frames.py", ["--endpoint", c.ingest, "TALLY1|raw-1|1|\(file)", "TALLY1|raw-2|1|Z\\n"])
    XCTAssertEqual(
      again.stdout.split(separator: "\n").map(String.init),
      [#"["TALLY1", "1", "OK", "1", "\#(n)"]"#, #"["TALLY1", "1", "OK", "\#(n1)", "\#(n1)"]"#], again.output)
    XCTAssertEqual(try c.statusInt("sequencer", "last_seq"), events + 2)
  }

  // MARK: (f) bad input on the wire

  func testGarbageOnTheWireIsRefusedAndTheNodesStayUp() throws {
    try requirePyZMQ()
    let m = try Market.generate(in: work, days: 1, tradesPerDay: 100)
    let c = try cluster(basePort: 17_700, reference: m.reference)
    try c.up()
    let pids = TestCluster.nodeNames.map { c.pid($0) }
    let r = try python(
      "raw_frames.py",
      [
        "--endpoint", c.ingest, "--tcp-junk",
        "TALLY1|c|1",  // 3 frames
        "TALLY1|c|7|x|y",  // 5 frames
        "TALLY2|c|1|x",  // wrong magic
        "",  // one empty frame
        "\\xff\\x00\\x01|\\x02",  // binary junk
        "TALLY1||5|x",  // empty client
        "TALLY1|\(String(repeating: "c", count: 65))|5|x",
        "TALLY1|c c|5|x",
        "TALLY1|c|0|x",
        "TALLY1|c|05|x",
        "TALLY1|c|+5|x",
        "TALLY1|c|9223372036854775808|x",
        "TALLY1|c|5x|x",
        "TALLY1|c|6|@BIG:16777217",  // 16 MiB + 1 byte
        "TALLY1|c|1|OPEN,2026-01-05\\n",  // and a good batch is still served
      ])
    XCTAssertEqual(r.status, 0, r.output)
    let answers = r.stdout.split(separator: "\n").map(String.init)
    XCTAssertEqual(
      answers,
      [
        "junk sent",
        #"["TALLY1", "1", "ERR", "BAD_FRAMES"]"#,
        #"["TALLY1", "7", "ERR", "BAD_FRAMES"]"#,
        #"["TALLY1", "1", "ERR", "BAD_FRAMES"]"#,
        #"["TALLY1", "", "ERR", "BAD_FRAMES"]"#,
        #"["TALLY1", "", "ERR", "BAD_FRAMES"]"#,
        #"["TALLY1", "5", "ERR", "BAD_CLIENT"]"#,
        #"["TALLY1", "5", "ERR", "BAD_CLIENT"]"#,
        #"["TALLY1", "5", "ERR", "BAD_CLIENT"]"#,
        #"["TALLY1", "0", "ERR", "BAD_BATCH"]"#,
        #"["TALLY1", "05", "ERR", "BAD_BATCH"]"#,
        #"["TALLY1", "+5", "ERR", "BAD_BATCH"]"#,
        #"["TALLY1", "9223372036854775808", "ERR", "BAD_BATCH"]"#,
        #"["TALLY1", "5x", "ERR", "BAD_BATCH"]"#,
        #"["TALLY1", "6", "ERR", "TOO_LARGE"]"#,
        #"["TALLY1", "1", "OK", "1", "1"]"#,
      ], r.output)
    // Garbage to the other endpoints: fetch and control (ROUTERs), the voter's PULL.
    let fetch = "tcp://127.0.0.1:\(c.basePort + 1)"
    let f = try python(
      "raw_frames.py",
      [
        "--endpoint", fetch, "FETCH", "FETCH|abc", "FETCH|\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00",
        "HELLO|x|y",
      ])
    XCTAssertEqual(f.stdout.split(separator: "\n").count, 4, f.output)
    XCTAssertTrue(f.stdout.split(separator: "\n").allSatisfy { $0.hasPrefix(#"["ERR""#) }, f.output)
    for control in [c.basePort + 2, c.basePort + 4, c.basePort + 10] {
      let g = try python(
        "raw_frames.py", ["--endpoint", "tcp://127.0.0.1:\(control)", "NOSUCHVERB", "STATUS|extra"])
      XCTAssertEqual(g.status, 0, g.output)
    }
    let v = try python(
      "raw_frames.py",
      [
        "--endpoint", "tcp://127.0.0.1:\(c.basePort + 3)", "--socket", "push", "VOTE|junk", "HB|\\x00\\x01",
        "VOTE", "XX|y", "VOTE|a|b", "@BIG:100",
      ])
    XCTAssertEqual(v.status, 0, v.output)
    Thread.sleep(forTimeInterval: 0.5)
    // Every node is still the same process and still answers.
    XCTAssertEqual(TestCluster.nodeNames.map { c.pid($0) }, pids)
    let status = try c.status()
    for n in TestCluster.nodeNames {
      XCTAssertEqual(status[n]?["alive"] as? Bool, true, n)
      XCTAssertEqual(status[n]?["answering"] as? Bool, true, n)
    }
    XCTAssertEqual(c.int(status, "sequencer", "last_seq"), 1, "nothing refused was journaled")
    XCTAssertTrue(
      try eventually(20) { try c.statusInt("voter", "decided_through") == 1 }, "\(c.statusText())")
    XCTAssertTrue(c.alerts().isEmpty, "\(c.alerts())")
  }

  /// SPEC §7: a message whose events frame is over 16 MiB is answered `ERR TOO_LARGE`.
  /// The sequencer sets ZMQ_MAXMSGSIZE to 16 MiB + 4096 on the ingest socket, so libzmq
  /// drops the connection on a bigger frame before the sequencer sees it: no answer at all.
  func testOversizedFrameIsAnsweredTooLarge() throws {
    try requirePyZMQ()
    let m = try Market.generate(in: work, days: 1, tradesPerDay: 100)
    let c = try cluster(basePort: 17_800, reference: m.reference)
    try c.up()
    let r = try python(
      "raw_frames.py",
      ["--endpoint", c.ingest, "--timeout-ms", "5000", "TALLY1|c|1|@BIG:\((16 << 20) + 4097)", "TALLY1|c|2|"])
    let answers = r.stdout.split(separator: "\n").map(String.init)
    XCTAssertEqual(
      answers.first, #"["TALLY1", "1", "ERR", "TOO_LARGE"]"#, "an events frame of 16 MiB + 4097 bytes")
    XCTAssertEqual(answers.last, #"["TALLY1", "2", "OK", "0", "0"]"#, r.output)
    XCTAssertTrue(c.isAlive(node: "sequencer"))
  }
}
