import Foundation
import KernelAPI
import TallyCluster
import TallyEngine
import XCTest

@testable import TallyChaos

#if canImport(Glibc)
  import Glibc
#endif

final class SimulatorTests: XCTestCase {
  /// About 200 seeds of the whole cluster on a simulated network: no anomaly.
  func testSimulatorSeeds() {
    let summary = SimulatorRun.run(from: 1, count: 200)
    for r in summary.failed { print(SimulatorRun.describe(r)) }
    XCTAssertEqual(summary.seeds, 200)
    XCTAssertEqual(
      summary.failed.map(\.seed), [],
      "failing seeds replay with tally chaos --simulate --from-seed S --seeds 1")
    // The faults really happened.
    for kind in [
      "crash-replica", "crash-sequencer", "crash-voter", "wipe-replica", "pause-replica", "crash-all",
    ] {
      XCTAssertGreaterThan(summary.faults.first { $0.kind == kind }?.count ?? 0, 10, kind)
    }
  }

  /// The same seed twice gives the identical trace, step by step.
  func testSameSeedSameTrace() {
    for seed: UInt64 in [7, 42, 1_000_003] {
      var o = SimOptions(seed: seed)
      o.keepTrace = true
      let a = Simulator.run(o)
      let b = Simulator.run(o)
      XCTAssertFalse(a.traceDigest.isEmpty)
      XCTAssertEqual(a.traceDigest, b.traceDigest, "seed \(seed)")
      XCTAssertEqual(a.steps, b.steps)
      XCTAssertEqual(a.trace.count, b.trace.count)
      let c = Simulator.run(SimOptions(seed: seed + 1))
      XCTAssertNotEqual(a.traceDigest, c.traceDigest)
    }
  }
}

final class CheckerTests: XCTestCase {
  /// A clean run's inputs (from the simulator's own pieces), then doctored copies.
  func cleanInput() throws -> CheckInput {
    var rng = SplitMix64(seed: 99)
    let market = try SimMarket.make(seed: 99, rng: &rng)
    var batches: [[[UInt8]]] = []
    var acks: [(first: Int64, last: Int64)?] = []
    var i = 0
    while i < market.lines.count {
      let n = min(20, market.lines.count - i)
      batches.append(Array(market.lines[i..<(i + n)]))
      acks.append((Int64(i + 1), Int64(i + n)))
      i += n
    }
    let truth = Checker.embeddedRun(reference: market.reference, kernel: "v1", lines: market.lines)
    var observed: [ObservedBatch] = []
    for a in acks {
      let (f, l) = a!
      observed.append(
        ObservedBatch(
          first: f, last: l, outcomes: Array(truth.outcomes[Int(f - 1)..<Int(l)]), stateDigest: truth.digest))
    }
    let n = Int64(market.lines.count)
    return CheckInput(
      batches: batches, acks: acks, observed: observed, observedIsComplete: true, reference: market.reference,
      report: truth.files,
      replicas: [
        ReplicaFinal(id: "r1", appliedSeq: n, stateDigest: truth.digest, honestState: true),
        ReplicaFinal(id: "r2", appliedSeq: n, stateDigest: truth.digest, honestState: true),
      ], decidedThrough: n, journalLastSeq: n,
      alerts: [ObservedAlert(kind: "DISSENT", replica: "r3", firstSeq: 1)],
      byzantine: [("r3", "v1", true)])
  }

  func kinds(_ input: CheckInput) -> [String] { Checker.check(input).anomalies.map(\.kind) }

  func testCleanRunPasses() throws {
    XCTAssertEqual(kinds(try cleanInput()), [])
  }

  func testDuplicateDecisionIsFlagged() throws {
    var input = try cleanInput()
    input.observed.insert(input.observed[2], at: 4)
    let result = Checker.check(input)
    XCTAssertTrue(
      result.anomalies.contains { $0.kind == "DUPLICATE_DECISION" && $0.seq == input.observed[2].first })
    XCTAssertTrue(result.anomalies.contains { $0.kind == "DUPLICATE_OUTCOME" })
  }

  func testGapIsFlaggedWhenTheStreamMustBeComplete() throws {
    var input = try cleanInput()
    let removed = input.observed.remove(at: 3)
    XCTAssertTrue(
      Checker.check(input).anomalies.contains { $0.kind == "DECISION_GAP" && $0.seq == removed.first })
    // On a PUB feed a gap is only "not observed": the report and status decide.
    input.observedIsComplete = false
    XCTAssertEqual(kinds(input), [])
    XCTAssertEqual(Checker.check(input).observedGaps, 1)
  }

  func testWrongOutcomeIsFlaggedWithItsSeq() throws {
    var input = try cleanInput()
    input.observed[1].outcomes[3] ^= 7
    let a = Checker.check(input).anomalies
    XCTAssertEqual(a.map(\.kind), ["OUTCOME_MISMATCH"])
    XCTAssertEqual(a.first?.seq, input.observed[1].first + 3)
  }

  func testDoctoredReportAndDivergedReplicaAndMissedByzantine() throws {
    var input = try cleanInput()
    var files = input.report!
    let k = files.firstIndex { $0.name == "balances.csv" }!
    files[k].bytes[files[k].bytes.count - 2] ^= 1
    input.report = files
    input.replicas[1].stateDigest![0] ^= 1
    input.alerts = [ObservedAlert(kind: "DISSENT", replica: "r1", firstSeq: 5)]
    input.decidedThrough = 3
    let got = Set(kinds(input))
    XCTAssertEqual(
      got,
      ["REPORT_MISMATCH", "REPLICA_DIVERGED", "BYZANTINE_UNDETECTED", "FALSE_DISSENT", "DECIDED_THROUGH"])
  }

  func testLostOrDoubleAckIsFlagged() throws {
    var input = try cleanInput()
    input.acks[2] = nil
    XCTAssertTrue(kinds(input).contains("UNACKED"))
    input = try cleanInput()
    input.acks[3] = input.acks[2]
    XCTAssertTrue(kinds(input).contains("DUPLICATE_SEQ"))
  }

  func testScenarioFilesParse() throws {
    let dir = packageRoot() + "/Chaos/scenarios"
    let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".toml") }
      .sorted()
    XCTAssertEqual(
      files,
      [
        "byzantine.toml", "freeze-replica.toml", "full-restart.toml", "kill-any.toml", "kill-replicas.toml",
        "lossy-links.toml", "netns.toml", "short-ci.toml", "soak.toml", "wipe-replica.toml",
      ])
    var ports: [Int] = []
    for f in files {
      let s = try Scenario.load(dir + "/" + f)
      XCTAssertGreaterThanOrEqual(s.basePort, 18_000, f)
      XCTAssertFalse(ports.contains(s.basePort), "\(f) shares a base port")
      ports.append(s.basePort)
    }
    XCTAssertThrowsError(try Scenario.parse("[faults]\nkill_replicas = true\n", file: "typo.toml"))
  }

  func testNetnsTableAndPartitionFaultsParse() throws {
    let s = try Scenario.load(packageRoot() + "/Chaos/scenarios/netns.toml")
    XCTAssertTrue(s.netns)
    XCTAssertEqual(s.netnsSubnet, "10.231.1")
    XCTAssertEqual(
      Set(s.faultKinds),
      ["partition-replica", "partition-voter-replica", "partition-sequencer", "kill-replica"])
    // Partitions need namespaces; the subnet is a private 10.x.y; keys are checked.
    XCTAssertThrowsError(try Scenario.parse("[faults]\npartition_replica = true\n", file: "p.toml")) {
      XCTAssertTrue("\($0)".contains("[netns]"), "\($0)")
    }
    XCTAssertThrowsError(
      try Scenario.parse("[netns]\nenabled = true\nsubnet = \"192.168.1\"\n", file: "s.toml")
    ) { XCTAssertTrue("\($0)".hasPrefix("s.toml:3:") && "\($0)".contains("10.231.1"), "\($0)") }
    XCTAssertThrowsError(try Scenario.parse("[netns]\nenable = true\n", file: "t.toml")) {
      XCTAssertTrue("\($0)".contains("enable") && "\($0)".contains("subnet"), "\($0)")
    }
  }

  func testLinksTableParses() throws {
    let s = try Scenario.parse(
      "[links]\nvotes_drop = 0.05\nvotes_dup = 0.1\nvotes_delay = 0.25\nvotes_delay_ms = 300\nfetch_drop = 0\n"
        + "fetch_request_dup = 0.02\n", file: "l.toml")
    XCTAssertEqual(s.links.votes, LinkFaults(drop: 0.05, dup: 0.1, delay: 0.25, delayMsMax: 300))
    XCTAssertEqual(s.links.fetchReplies, LinkFaults(drop: 0, dup: 0, delay: 0, delayMsMax: 200))
    XCTAssertEqual(s.links.fetchRequests.dup, 0.02)
    XCTAssertTrue(s.links.isActive)
    XCTAssertFalse(try Scenario.parse("[scenario]\nname = \"x\"\n", file: "n.toml").links.isActive)
    XCTAssertThrowsError(try Scenario.parse("[links]\nvotes_drop = 0.9\n", file: "bad.toml"))
    XCTAssertThrowsError(try Scenario.parse("[links]\nvotes_dup = 1.5\n", file: "bad.toml"))
    XCTAssertThrowsError(try Scenario.parse("[links]\nvotes_lost = 0.1\n", file: "typo.toml"))
    XCTAssertThrowsError(try Scenario.parse("[links]\nvotes_drop = \"0.1\"\n", file: "type.toml"))
    XCTAssertThrowsError(try Scenario.parse("[scenario]\nseed = 1.5\n", file: "type.toml"))
    // Errors name the file, the line and what is allowed.
    XCTAssertThrowsError(
      try Scenario.parse("[scenario]\nname = \"x\"\n\n[links]\nvotes_lost = 0.1\n", file: "t.toml")
    ) {
      let text = "\($0)"
      XCTAssertTrue(text.hasPrefix("t.toml:5:"), text)
      XCTAssertTrue(text.contains("votes_lost") && text.contains("votes_drop"), text)
    }
    XCTAssertThrowsError(try Scenario.parse("[[replica]]\nid = \"r1\"\nkernel = \"v3\"\n", file: "k.toml")) {
      XCTAssertTrue("\($0)".hasPrefix("k.toml:3:") && "\($0)".contains("v1, v2, v1-faulty"), "\($0)")
    }
    XCTAssertEqual(
      try Scenario.parse("[links]\nvotes_drop = 0\nfetch_dup = 0.25\n", file: "n.toml").links.fetchReplies
        .dup, 0.25)
  }
}

func packageRoot() -> String {
  var url = URL(fileURLWithPath: #filePath)
  for _ in 0..<3 { url.deleteLastPathComponent() }
  return url.path
}

/// One short scenario against real processes (needs the tally binary: TALLY_BIN).
final class RealClusterTests: XCTestCase {
  func testShortScenarioPasses() throws {
    let bin = ProcessInfo.processInfo.environment["TALLY_BIN"] ?? packageRoot() + "/.build/debug/tally"
    guard FileManager.default.isExecutableFile(atPath: bin) else {
      throw XCTSkip("no tally binary at \(bin); set TALLY_BIN")
    }
    var s = try Scenario.load(packageRoot() + "/Chaos/scenarios/short-ci.toml")
    s.basePort = 18_300  // apart from a manual run of the same scenario
    let data = NSTemporaryDirectory() + "tally-chaos-test-\(getpid())"
    let harness = ChaosHarness(
      scenario: s, executable: bin, dataDir: data, keepData: false, log: { print("chaos: " + $0) })
    defer {
      // The harness brings the cluster down; make sure nothing of ours survives a failure.
      for name in ["sequencer", "voter"] + s.replicas.map(\.id) {
        if let text = try? String(contentsOfFile: data + "/data/" + name + ".pid", encoding: .utf8),
          let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
        {
          kill(pid, SIGKILL)
        }
      }
      try? FileManager.default.removeItem(atPath: data)
    }
    let verdict = try harness.run()
    print(verdict.summary)
    XCTAssertEqual(verdict.anomalies.map(\.description), [])
    XCTAssertGreaterThan(verdict.faults.reduce(0) { $0 + $1.count }, 5)
    XCTAssertGreaterThan(verdict.events, 1_000)
  }
}
