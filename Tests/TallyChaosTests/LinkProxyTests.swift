import Foundation
import TallyCluster
import XCTest
import ZeroMQTransport

@testable import TallyChaos

#if canImport(Glibc)
  import Glibc
#endif

final class LinkDeciderTests: XCTestCase {
  let rates = LinkProxy.Rates(
    votes: LinkFaults(drop: 0.05, dup: 0.05, delay: 0.2, delayMsMax: 200),
    fetchReplies: LinkFaults(drop: 0.03, dup: 0.05, delay: 0.2, delayMsMax: 200),
    fetchRequests: LinkFaults(drop: 0.03, dup: 0.05, delay: 0.1, delayMsMax: 200))

  func sequence(_ seed: UInt64, _ rates: LinkProxy.Rates, _ n: Int = 10_000) -> [[LinkDecision]] {
    var d = LinkProxy.deciders(seed: seed, rates: rates)
    return d.indices.map { k in (0..<n).map { _ in d[k].next() } }
  }

  /// The proxy's decisions are a function of the seed: the same seed gives the same
  /// decisions per stream, another seed others, and the streams differ from each other.
  func testDecisionsAreDeterministicForASeed() {
    let a = sequence(11, rates)
    XCTAssertEqual(a, sequence(11, rates))
    XCTAssertNotEqual(a, sequence(12, rates))
    XCTAssertEqual(a.count, LinkStream.allCases.count)
    XCTAssertNotEqual(a[0], a[1])
    // A fixed prefix, so that a change of the decision rule is noticed (a seed's
    // schedule is part of a scenario's replay).
    let fates = a[0].prefix(100).enumerated().compactMap { k, d -> String? in
      switch d {
      case .drop: "\(k):drop"
      case .deliver(let delays) where delays != [0]: "\(k):" + delays.map(String.init).joined(separator: "+")
      default: nil
      }
    }
    XCTAssertEqual(
      fates,
      [
        "0:52", "1:drop", "4:135", "7:drop", "8:20", "14:178", "15:drop", "18:0+103", "28:0+0", "34:158",
        "37:176",
        "40:191", "41:189", "42:49", "44:118", "45:2", "49:0+0", "54:181", "55:89", "59:133", "60:1",
        "65:drop",
        "66:139", "70:147", "76:drop", "78:drop", "79:142", "80:drop", "83:28", "89:drop", "93:drop", "94:70",
        "95:167", "99:53",
      ])
  }

  /// Rates are honoured within a few standard deviations, delays stay in range.
  func testRatesAndDelays() {
    let votes = sequence(3, rates, 100_000)[0]
    let drops = votes.filter { $0 == .drop }.count
    var dups = 0
    var delayed = 0
    var copies = 0
    for case .deliver(let delays) in votes {
      copies += delays.count
      dups += delays.count - 1
      delayed += delays.filter { $0 > 0 }.count
      XCTAssertTrue(delays.allSatisfy { (0...200).contains($0) })
    }
    XCTAssertEqual(Double(drops) / 100_000, 0.05, accuracy: 0.003)
    XCTAssertEqual(Double(dups) / Double(100_000 - drops), 0.05, accuracy: 0.003)
    XCTAssertEqual(Double(delayed) / Double(copies), 0.2, accuracy: 0.006)
    // No faults: every message once, at once.
    let clean = sequence(3, LinkProxy.Rates(), 1_000)
    XCTAssertTrue(clean.allSatisfy { $0.allSatisfy { $0 == .deliver(delaysMs: [0]) } })
  }

  /// Six draws per message whatever happens: message k's drop does not depend on the
  /// other rates (one knob changed does not reshuffle the whole schedule).
  func testDropsDoNotDependOnOtherRates() {
    var other = rates
    other.votes.dup = 0.3
    other.votes.delay = 0
    let a = sequence(5, rates)[0].map { $0 == .drop }
    let b = sequence(5, other)[0].map { $0 == .drop }
    XCTAssertEqual(a, b)
  }
}

/// The proxy itself on loopback sockets, with a fake voter and a fake sequencer.
final class LinkProxyTests: XCTestCase {
  func testProxyForwardsDropsDuplicatesAndKeepsFetchIdentities() throws {
    let base = 19_320
    let endpoints = LinkProxy.Endpoints(
      votesVia: "tcp://127.0.0.1:\(base + 6)", voterCollect: "tcp://127.0.0.1:\(base + 3)",
      fetchVia: "tcp://127.0.0.1:\(base + 7)", sequencerFetch: "tcp://127.0.0.1:\(base + 1)")
    let rates = LinkProxy.Rates(
      votes: LinkFaults(drop: 0.1, dup: 0.1, delay: 0.3, delayMsMax: 50),
      fetchReplies: LinkFaults(drop: 0.1, dup: 0.1, delay: 0.3, delayMsMax: 50),
      fetchRequests: LinkFaults(drop: 0.1, dup: 0.1, delay: 0.3, delayMsMax: 50))
    let context = try ZMQContext()
    let proxy = LinkProxy(context: context, endpoints: endpoints, rates: rates, seed: 42)
    try proxy.start()
    defer { proxy.stop() }

    // The votes link: 1,000 numbered messages.
    let voter = try ZMQSocket(context: context, type: .pull)
    try voter.bind(endpoints.voterCollect)
    let replica = try ZMQSocket(context: context, type: .push)
    try replica.connect(endpoints.votesVia)
    let n = 1_000
    for k in 0..<n { try replica.send([Array("VOTE".utf8), Array(String(k).utf8)]) }
    var got: [Int] = []
    let clock = ContinuousClock()
    var quiet = clock.now
    while clock.now - quiet < .milliseconds(500) {
      if let m = try voter.receive(timeoutMs: 50) {
        XCTAssertEqual(m.count, 2)
        got.append(Int(String(decoding: m[1], as: UTF8.self))!)
        quiet = clock.now
      }
    }
    var c = proxy.counts[LinkStream.votes.rawValue]
    XCTAssertEqual(c.messages, n)
    XCTAssertEqual(got.count, n - c.dropped + c.duplicated)
    XCTAssertGreaterThan(c.dropped, 50)
    XCTAssertGreaterThan(c.duplicated, 50)
    XCTAssertGreaterThan(c.delayed, 200)
    XCTAssertNotEqual(got, got.sorted(), "delays reorder")
    XCTAssertEqual(Set(got).count, n - c.dropped)

    // The fetch link: a fake sequencer ROUTER echoing [id, FETCH, x] as [id, BATCHES, x];
    // two replicas each get only answers to their own requests.
    let sequencer = try ZMQSocket(context: context, type: .router)
    try sequencer.bind(endpoints.sequencerFetch)
    let r1 = try ZMQSocket(context: context, type: .dealer)
    try r1.connect(endpoints.fetchVia)
    let r2 = try ZMQSocket(context: context, type: .dealer)
    try r2.connect(endpoints.fetchVia)
    let m = 300
    for k in 0..<m {
      try r1.send([Array("FETCH".utf8), Array("r1-\(k)".utf8)])
      try r2.send([Array("FETCH".utf8), Array("r2-\(k)".utf8)])
    }
    var served = 0
    var answers: [String: [String]] = ["r1": [], "r2": []]
    quiet = clock.now
    while clock.now - quiet < .milliseconds(500) {
      let ready = try ZMQPoller.poll([sequencer, r1, r2], timeoutMs: 50)
      if ready[0], let req = try sequencer.receive(timeoutMs: 0) {
        XCTAssertEqual(req.count, 3, "the sequencer sees [identity, FETCH, from]")
        XCTAssertEqual(req[1], Array("FETCH".utf8))
        try sequencer.send([req[0], Array("BATCHES".utf8), req[2]])
        served += 1
        quiet = clock.now
      }
      for (i, r) in [r1, r2].enumerated() where ready[1 + i] {
        if let a = try r.receive(timeoutMs: 0) {
          XCTAssertEqual(a.count, 2)
          answers["r\(i + 1)"]!.append(String(decoding: a[1], as: UTF8.self))
          quiet = clock.now
        }
      }
    }
    let req = proxy.counts[LinkStream.fetchRequests.rawValue]
    let rep = proxy.counts[LinkStream.fetchReplies.rawValue]
    XCTAssertEqual(req.messages, 2 * m)
    XCTAssertEqual(served, 2 * m - req.dropped + req.duplicated)
    XCTAssertEqual(rep.messages, served)
    XCTAssertEqual(answers["r1"]!.count + answers["r2"]!.count, served - rep.dropped + rep.duplicated)
    XCTAssertTrue(answers["r1"]!.allSatisfy { $0.hasPrefix("r1-") })
    XCTAssertTrue(answers["r2"]!.allSatisfy { $0.hasPrefix("r2-") })
    XCTAssertEqual(proxy.dealersOpened, 2)
    for s in [req, rep] {
      XCTAssertGreaterThan(s.dropped, 0)
      XCTAssertGreaterThan(s.duplicated, 0)
      XCTAssertGreaterThan(s.delayed, 0)
    }
    XCTAssertNil(proxy.error)

    // Healed: everything passes once, in order.
    proxy.heal()
    for k in 0..<200 { try replica.send([Array("HB".utf8), Array(String(k).utf8)]) }
    got = []
    quiet = clock.now
    while clock.now - quiet < .milliseconds(300) {
      if let msg = try voter.receive(timeoutMs: 50) {
        let v = Int(String(decoding: msg[1], as: UTF8.self))!
        if msg[0] == Array("HB".utf8) { got.append(v) }
        quiet = clock.now
      }
    }
    XCTAssertEqual(got, Array(0..<200))
    c = proxy.counts[LinkStream.votes.rawValue]
    XCTAssertEqual(c.messages, n + 200)
    for s in [voter, replica, sequencer, r1, r2] { s.close() }
  }
}

/// lossy-links against real processes (needs the tally binary: TALLY_BIN).
final class LossyLinksRealClusterTests: XCTestCase {
  func testLossyLinksScenarioPasses() throws {
    let bin = ProcessInfo.processInfo.environment["TALLY_BIN"] ?? packageRoot() + "/.build/debug/tally"
    guard FileManager.default.isExecutableFile(atPath: bin) else {
      throw XCTSkip("no tally binary at \(bin); set TALLY_BIN")
    }
    var s = try Scenario.load(packageRoot() + "/Chaos/scenarios/lossy-links.toml")
    s.basePort = 19_300  // apart from a manual run of the same scenario
    let data = NSTemporaryDirectory() + "tally-chaos-lossy-test-\(getpid())"
    let harness = ChaosHarness(
      scenario: s, executable: bin, dataDir: data, keepData: false, log: { print("chaos: " + $0) })
    defer {
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
    XCTAssertGreaterThan(verdict.events, 800)
    func injected(_ kind: String) -> Int { verdict.faults.first { $0.kind == kind }?.count ?? 0 }
    for kind in ["votes-drop", "votes-dup", "votes-delay", "fetch-drop", "fetch-dup", "fetch-delay"] {
      XCTAssertGreaterThan(injected(kind), 0, kind)
    }
    XCTAssertGreaterThan(
      injected("fetch-request-drop") + injected("fetch-request-dup") + injected("fetch-request-delay"), 0)
  }
}
