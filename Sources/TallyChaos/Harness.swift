// The real-process harness: a local cluster started through Supervisor in a
// temporary folder, a client submitting a generated market batch by batch, an
// observer on the voter's PUB feed, and a fault loop that kills (SIGKILL),
// freezes (SIGSTOP/SIGCONT), wipes and restarts nodes. At the end the checker
// judges what the client and the observer saw (see Checker.swift).
import Foundation
import KernelAPI
import MarketGenerator
import TallyCluster
import TallyEngine
import TallyFormat
import ZeroMQTransport

#if canImport(Glibc)
  import Glibc
#endif

public struct Verdict: Sendable {
  public var scenario: String
  public var seed: UInt64
  public var faults: [(kind: String, count: Int)]
  public var events: Int64
  public var batches: Int
  public var observedEvents: Int64
  public var observedGaps: Int
  public var anomalies: [Anomaly]
  public var notes: [String]
  public var seconds: Double
  public var dataDir: String

  public var summary: String {
    var lines: [String] = []
    lines.append(
      "chaos \(scenario) seed \(seed): \(anomalies.isEmpty ? "PASS" : "FAIL") — \(anomalies.count) anomalies, \(events) events in \(batches) batches, \(String(format: "%.0f", seconds)) s"
    )
    lines.append(
      "  faults: "
        + (faults.isEmpty ? "none" : faults.map { "\($0.kind) \($0.count)" }.joined(separator: ", "))
        + " (total \(faults.reduce(0) { $0 + $1.count }))")
    lines.append(
      "  voted stream observed on PUB: \(observedEvents)/\(events) events, \(observedGaps) gaps (not observed, then checked by report and status)"
    )
    for a in anomalies { lines.append("  ANOMALY \(a)") }
    for n in notes { lines.append("  note: \(n)") }
    if !anomalies.isEmpty {
      lines.append("  replay: tally chaos --scenario ... --seed \(seed); data kept in \(dataDir)")
    }
    return lines.joined(separator: "\n")
  }

  public var json: String {
    JSON.render([
      ("scenario", .string(scenario)), ("seed", .int(Int64(bitPattern: seed))),
      ("verdict", .string(anomalies.isEmpty ? "PASS" : "FAIL")),
      ("faults", .object(faults.map { ($0.kind, .int(Int64($0.count))) })),
      ("faults_total", .int(Int64(faults.reduce(0) { $0 + $1.count }))),
      ("events", .int(events)), ("batches", .int(Int64(batches))), ("observed_events", .int(observedEvents)),
      ("observed_gaps", .int(Int64(observedGaps))), ("seconds", .int(Int64(seconds))),
      ("anomalies", .array(anomalies.map(\.json))), ("notes", .array(notes.map { .string($0) })),
      ("data", .string(dataDir)),
    ])
  }
}

/// State shared between the harness's threads (client, observer, fault loop), under one lock.
final class Shared: @unchecked Sendable {
  private let lock = NSLock()
  private var _acks: [(first: Int64, last: Int64)?]
  private var _observed: [ObservedBatch] = []
  private var _stop = false
  private var _clientDone = false
  private var _clientError: String? = nil

  init(batchCount: Int) { _acks = [(first: Int64, last: Int64)?](repeating: nil, count: batchCount) }

  func with<T>(_ body: (Shared) -> T) -> T {
    lock.lock()
    defer { lock.unlock() }
    return body(self)
  }

  var acks: [(first: Int64, last: Int64)?] { with { $0._acks } }
  func setAck(_ i: Int, _ r: (Int64, Int64)) -> (Int64, Int64)? {
    with {
      let old = $0._acks[i]
      if old == nil { $0._acks[i] = r }
      return old
    }
  }
  var observed: [ObservedBatch] { with { $0._observed } }
  func observe(_ b: ObservedBatch) { with { $0._observed.append(b) } }
  var stop: Bool {
    get { with { $0._stop } }
    set { with { $0._stop = newValue } }
  }
  var clientDone: Bool {
    get { with { $0._clientDone } }
    set { with { $0._clientDone = newValue } }
  }
  var clientError: String? {
    get { with { $0._clientError } }
    set { with { $0._clientError = newValue } }
  }
}

public struct ChaosHarness {
  public let scenario: Scenario
  public let executable: String
  public let dataDir: String?
  public let keepData: Bool
  public let log: (String) -> Void

  public init(
    scenario: Scenario, executable: String, dataDir: String?, keepData: Bool, log: @escaping (String) -> Void
  ) {
    self.scenario = scenario
    self.executable = executable
    self.dataDir = dataDir
    self.keepData = keepData
    self.log = log
  }

  public func run() throws -> Verdict {
    let s = scenario
    let clock = ContinuousClock()
    let started = clock.now
    let work =
      dataDir
      ?? (NSTemporaryDirectory() + "tally-chaos-\(s.name)-\(ProcessInfo.processInfo.processIdentifier)")
    try? FileManager.default.removeItem(atPath: work)
    try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    var rng = SplitMix64(seed: s.seed)

    // The market and the client's batches (event lines only, so each batch's event count is known).
    let options = MarketOptions(
      seed: s.seed, days: s.days, tradesPerDay: s.tradesPerDay, accounts: s.accounts,
      securities: s.securities,
      participants: s.participants)
    _ = try MarketGenerator.generate(options, into: work + "/market")
    let reference = try FileIO.loadReference(work + "/market/reference")
    let bytes = try FileIO.read(work + "/market/events.txt")
    var lines: [[UInt8]] = []
    for (_, line) in LineReader(bytes) where !EventParser.isSkipped(line) { lines.append(Array(line)) }
    var batches: [[[UInt8]]] = []
    var i = 0
    while i < lines.count {
      let n = min(lines.count - i, s.batchLines)
      batches.append(Array(lines[i..<(i + n)]))
      i += n
    }
    log("\(s.name) seed \(s.seed): \(lines.count) events in \(batches.count) batches; data in \(work)")

    // [netns]: every node in its own network namespace, reached through the bridge
    // (the harness's address): sequencer .10, voter .11, replica i .(21 + i).
    var lab: NetnsLab? = nil
    defer { lab?.destroy() }  // declared first: runs after the cluster is down
    var nodeHosts: [String: String] = [:]
    if s.netns {
      let l = try NetnsLab(subnet: s.netnsSubnet)
      lab = l
      try l.add(node: "sequencer", host: 10)
      try l.add(node: "voter", host: 11)
      for (i, r) in s.replicas.enumerated() { try l.add(node: r.id, host: 21 + i) }
      for n in ["sequencer", "voter"] + s.replicas.map(\.id) { nodeHosts[n] = l.address(n) }
      log("netns: \(nodeHosts.count) namespaces on bridge \(l.bridge) (\(l.harnessAddress)/24)")
    }
    let harnessHost = lab?.harnessAddress ?? "127.0.0.1"
    let seqHost = nodeHosts["sequencer"] ?? "127.0.0.1"
    let voterHost = nodeHosts["voter"] ?? "127.0.0.1"

    // The cluster: config file written here; a byzantine replica by kernel or flag.
    var toml = """
      [cluster]
      name = "chaos-\(s.name)"
      data = "\(work)/data"
      host = "127.0.0.1"
      base_port = \(s.basePort)

      [limits]
      fetch_batches_max = 16
      heartbeat_ms = 200
      repairs_max = 3
      checkpoint_events = 100   # frequent state-digest votes: a byzantine replica shows quickly

      """
    if lab != nil {
      toml += "\n[sequencer]\nhost = \"\(seqHost)\"\n\n[voter]\nhost = \"\(voterHost)\"\n"
    }
    // Lossy links: replicas fetch and vote through the proxy (ports base+6 and base+7,
    // unused by the cluster itself).
    let linkEndpoints = LinkProxy.Endpoints(
      votesVia: "tcp://\(harnessHost):\(s.basePort + 6)",
      voterCollect: "tcp://\(voterHost):\(s.basePort + 3)",
      fetchVia: "tcp://\(harnessHost):\(s.basePort + 7)", sequencerFetch: "tcp://\(seqHost):\(s.basePort + 1)"
    )
    // With [netns] and the voter cut from a replica, votes go straight to the voter (a
    // vote through the proxy would go around the cut); fetches still cross the proxy.
    let votesThroughProxy = s.links.isActive && !(lab != nil && s.partitionVoterReplica)
    if s.links.isActive {
      toml += "\n[links]\nreplica_fetch_via = \"\(linkEndpoints.fetchVia)\"\n"
      if votesThroughProxy { toml += "replica_votes_via = \"\(linkEndpoints.votesVia)\"\n" }
    }
    var byzantine: [(id: String, kernel: String, flipsDigest: Bool)] = []
    for r in s.replicas {
      var kernel = r.kernel
      if r.id == s.byzantineReplica && s.byzantine == "v1-faulty" { kernel = "v1-faulty" }
      if r.id == s.byzantineReplica && !s.byzantine.isEmpty {
        byzantine.append((r.id, kernel, s.byzantine == "flip"))
      }
      toml += "\n[[replica]]\nid = \"\(r.id)\"\nkernel = \"\(kernel)\"\n"
      if let h = nodeHosts[r.id] { toml += "host = \"\(h)\"\n" }
    }
    let configPath = work + "/cluster.toml"
    try Data(toml.utf8).write(to: URL(fileURLWithPath: configPath))
    let config = try ClusterConfig.load(configPath)
    var sup = Supervisor(
      config: config, configPath: configPath, data: work + "/data", reference: work + "/market/reference",
      executable: executable)
    if let lab { for n in config.nodeNames { sup.launchers[n] = lab.launcher(n) } }
    var extra: [String: [String]] = [:]
    if s.byzantine == "flip" { extra[s.byzantineReplica] = ["--flip-digest-bit"] }
    let context = try ZMQContext()
    var faults: [(kind: String, count: Int)] = []
    func count(_ kind: String) {
      if let k = faults.firstIndex(where: { $0.kind == kind }) {
        faults[k].count += 1
      } else {
        faults.append((kind, 1))
      }
    }
    if !byzantine.isEmpty { count("byzantine-\(s.byzantine)") }

    // The proxy outlives every node (declared first: stopped after the cluster is down).
    var proxy: LinkProxy? = nil
    defer { proxy?.stop() }
    if s.links.isActive {
      guard
        config.replicaFetchEndpoint == linkEndpoints.fetchVia
          && config.voterCollect == linkEndpoints.voterCollect
          && config.sequencerFetch == linkEndpoints.sequencerFetch
          && config.replicaVotesEndpoint == (votesThroughProxy ? linkEndpoints.votesVia : config.voterCollect)
      else { throw ScenarioError("link proxy: cluster.toml endpoints differ from the proxy's") }
      // Its own seed stream: the fault schedule of scenarios without links is unchanged.
      let p = LinkProxy(
        context: context, endpoints: linkEndpoints, rates: s.links, seed: s.seed ^ 0x6C69_6E6B_7321)
      try p.start()
      proxy = p
      log(
        "link proxy: votes \(linkEndpoints.votesVia) → \(linkEndpoints.voterCollect), fetch \(linkEndpoints.fetchVia) → \(linkEndpoints.sequencerFetch)"
      )
    }

    defer {
      _ = sup.down(graceSeconds: 3)
      for node in sup.nodes { if let pid = sup.pid(node), sup.isAlive(node) { kill(pid, SIGKILL) } }
    }
    _ = try sup.up(context: context, extraArguments: extra)

    // The observer: subscribed before the first event, with a deep queue.
    let shared = Shared(batchCount: batches.count)
    let publish = config.voterPublish
    let observer = Thread {
      do {
        let sub = try ZMQSocket(context: context, type: .sub)
        try sub.setReceiveHighWaterMark(10_000_000)
        try sub.subscribe(Array("DECIDED".utf8))
        try sub.connect(publish)
        while !shared.stop {
          guard let msg = try sub.receive(timeoutMs: 100) else { continue }
          guard msg.count == 5, let first = Self.int64(msg[1]), let last = Self.int64(msg[2]) else {
            continue
          }
          shared.observe(ObservedBatch(first: first, last: last, outcomes: msg[3], stateDigest: msg[4]))
        }
        sub.close()
      } catch {
        shared.clientError = "observer: \(error)"
      }
    }
    observer.start()
    Thread.sleep(forTimeInterval: 0.5)  // the slow joiner: let the subscription reach the voter

    // The client: SPEC §7 with retries, recording each batch's seq range.
    let ingest = config.ingest
    let clientId = "chaos-\(s.name)-\(s.seed)"
    let (window, pauseMs) = (s.submitWindow, s.submitPauseMs)
    let clientBatches = batches
    let client = Thread {
      Self.submit(
        context: context, ingest: ingest, clientId: clientId, batches: clientBatches, window: window,
        pauseMs: pauseMs,
        shared: shared)
    }
    client.start()

    // The faults.
    let kinds = s.faultKinds
    let faultDeadline = clock.now + .seconds(s.durationSeconds)
    let replicaNodes = sup.nodes.filter { $0.role == "replica" }
    var injected = 0
    var perNode: [String] = []
    while clock.now < faultDeadline && !kinds.isEmpty && (s.faultsMax == 0 || injected < s.faultsMax) {
      Thread.sleep(forTimeInterval: Double(rng.int(s.intervalMsMin...s.intervalMsMax)) / 1000)
      let kind = rng.pick(kinds)
      let downMs = rng.int(0...s.downMsMax)
      injected += 1
      switch kind {
      case "kill-replica", "kill-voter", "kill-sequencer":
        let node: NodeSpec =
          kind == "kill-replica"
          ? rng.pick(replicaNodes)
          : sup.nodes.first { $0.role == (kind == "kill-voter" ? "voter" : "sequencer") }!
        guard let pid = sup.pid(node), sup.isAlive(node) else { continue }
        kill(pid, SIGKILL)
        count(kind)
        perNode.append("kill-" + node.name)
        log("fault \(injected): SIGKILL \(node.name) (pid \(pid)), down \(downMs) ms")
        Thread.sleep(forTimeInterval: Double(downMs) / 1000)
      case "freeze-replica":
        let node = rng.pick(replicaNodes)
        guard let pid = sup.pid(node), sup.isAlive(node) else { continue }
        let ms = rng.int(100...s.freezeMsMax)
        kill(pid, SIGSTOP)
        count(kind)
        perNode.append("freeze-" + node.name)
        log("fault \(injected): SIGSTOP \(node.name) for \(ms) ms")
        Thread.sleep(forTimeInterval: Double(ms) / 1000)
        kill(pid, SIGCONT)
      case "wipe-replica":
        let node = rng.pick(replicaNodes)
        guard let pid = sup.pid(node), sup.isAlive(node) else { continue }
        kill(pid, SIGKILL)
        while sup.isAlive(node) { Thread.sleep(forTimeInterval: 0.01) }
        try? FileManager.default.removeItem(atPath: work + "/data/" + node.name + "/state")
        count(kind)
        perNode.append("wipe-" + node.name)
        log("fault \(injected): SIGKILL \(node.name) and delete its state folder")
      case "partition-replica", "partition-sequencer":
        let node = kind == "partition-replica" ? rng.pick(replicaNodes).name : "sequencer"
        let ms = rng.int(100...s.partitionMsMax)
        try lab!.link(node, up: false)
        count(kind)
        perNode.append("partition-" + node)
        log("fault \(injected): \(node)'s link down for \(ms) ms")
        Thread.sleep(forTimeInterval: Double(ms) / 1000)
        try lab!.link(node, up: true)
      case "partition-voter-replica":
        let node = rng.pick(replicaNodes).name
        let ms = rng.int(100...s.partitionMsMax)
        try lab!.partition("voter", node, cut: true)
        count(kind)
        perNode.append("cut-voter-" + node)
        log("fault \(injected): voter cut from \(node) for \(ms) ms")
        Thread.sleep(forTimeInterval: Double(ms) / 1000)
        try lab!.partition("voter", node, cut: false)
      case "full-restart":
        _ = sup.down(graceSeconds: 3)
        count("full-restart")
        log("fault \(injected): cluster down, up")
        Thread.sleep(forTimeInterval: Double(downMs) / 1000)
      default: preconditionFailure("unknown fault kind \(kind)")
      }
      do { _ = try sup.up(context: context, extraArguments: extra) } catch {
        log("restart after fault \(injected) failed: \(error); trying again")
        Thread.sleep(forTimeInterval: 1)
        _ = try sup.up(context: context, extraArguments: extra)
      }
    }
    // Only lossy links: they work for the whole fault window.
    while kinds.isEmpty && proxy != nil && clock.now < faultDeadline { Thread.sleep(forTimeInterval: 0.1) }
    if let proxy {
      proxy.heal()
      log("links healed; \(proxy.summary)")
    }
    log("faults over (\(injected) injected); settling")
    _ = try sup.up(context: context, extraArguments: extra)

    // Settle: the client finishes, the voter decides everything, a report is made.
    let settleDeadline = clock.now + .seconds(s.settleSeconds)
    while !shared.clientDone && clock.now < settleDeadline { Thread.sleep(forTimeInterval: 0.1) }
    var notes: [String] = []
    var report: [(name: String, bytes: [UInt8])]? = nil
    if shared.clientDone {
      do {
        report = try Reporter.report(
          context: context, config: config,
          timeoutSeconds: max(10, Int((settleDeadline - clock.now).components.seconds)))
      } catch { notes.append("report failed: \(error)") }
    } else {
      notes.append("the client did not finish within \(s.settleSeconds) s")
    }
    // Replicas that lag (a repaired byzantine one) get until the deadline to catch up.
    let lastSeq = ControlClient.status(
      SequencerStatus.self, context: context, endpoint: config.sequencerControl)?.lastSeq
    var finals: [ReplicaFinal] = []
    for (k, r) in config.replicas.enumerated() {
      var status: ReplicaStatus? = nil
      var digest: [UInt8]? = nil
      repeat {
        status = ControlClient.status(
          ReplicaStatus.self, context: context, endpoint: config.replicaControl(k))
        digest = status.flatMap { Self.hexBytes($0.committedStateDigest) }
        guard let st = status, let lastSeq, st.appliedSeq == lastSeq else {
          Thread.sleep(forTimeInterval: 0.2)
          continue
        }
        if st.digestSeq == lastSeq { break }
        // STATUS gives the digest at its last digest checkpoint or report: a replica that
        // caught up after the report still shows an older one. REPORT at its applied
        // seq commits with a digest and answers with the digest at that seq.
        if let reply = try? ControlClient.request(
          context: context, endpoint: config.replicaControl(k), ["REPORT".bytes, Self.leBytes(lastSeq)],
          timeoutMs: 30_000),
          reply.count == 4, reply[0].text == "REPORT", Self.int64(reply[1]) == lastSeq
        {
          digest = reply[2]
          break
        }
        Thread.sleep(forTimeInterval: 0.2)
      } while clock.now < settleDeadline
      finals.append(
        ReplicaFinal(
          id: r.id, appliedSeq: status?.appliedSeq,
          stateDigest: digest,
          honestState: r.kernel != "v1-faulty"))
    }
    let voterStatus = ControlClient.status(VoterStatus.self, context: context, endpoint: config.voterControl)
    Thread.sleep(forTimeInterval: 0.5)
    shared.stop = true
    while !observer.isFinished || !client.isFinished { Thread.sleep(forTimeInterval: 0.05) }
    if let e = shared.clientError { notes.append(e) }
    let alertText = (try? String(contentsOfFile: work + "/data/alerts.jsonl", encoding: .utf8)) ?? ""
    let alerts = alertText.split(separator: "\n").compactMap { ObservedAlert(jsonLine: String($0)) }

    let result = Checker.check(
      CheckInput(
        batches: batches, acks: shared.acks, observed: shared.observed, observedIsComplete: false,
        reference: reference, report: report, replicas: finals,
        decidedThrough: voterStatus?.decidedThrough,
        journalLastSeq: lastSeq,
        alerts: alerts, byzantine: byzantine))
    notes += result.notes
    if let proxy {
      for f in proxy.faultCounts { faults.append(f) }
      notes.append(proxy.summary)
    }
    var anomalies = result.anomalies
    if let e = proxy?.error { anomalies.append(Anomaly("LINK_PROXY", "the proxy thread stopped: \(e)")) }
    var byNode: [(String, Int)] = []
    for k in perNode.sorted() {
      if let i = byNode.firstIndex(where: { $0.0 == k }) { byNode[i].1 += 1 } else { byNode.append((k, 1)) }
    }
    if !byNode.isEmpty {
      notes.append("faults by node: " + byNode.map { "\($0.0) \($0.1)" }.joined(separator: ", "))
    }
    let alertKinds = ["DISSENT", "NO_MAJORITY", "REJOINED"].map { k in
      "\(k) \(alerts.filter { $0.kind == k }.count)"
    }
    notes.append("alerts.jsonl: " + alertKinds.joined(separator: ", "))
    let verdict = Verdict(
      scenario: s.name, seed: s.seed, faults: faults, events: result.events, batches: batches.count,
      observedEvents: result.observedEvents, observedGaps: result.observedGaps, anomalies: anomalies,
      notes: notes, seconds: Self.seconds(clock.now - started), dataDir: work)
    if verdict.anomalies.isEmpty && !keepData {
      _ = sup.down(graceSeconds: 3)
      try? FileManager.default.removeItem(atPath: work)
    }
    return verdict
  }

  /// The client: a window of batches, each retried (same batch number) until acked.
  static func submit(
    context: ZMQContext, ingest: String, clientId: String, batches: [[[UInt8]]], window: Int, pauseMs: Int,
    shared: Shared
  ) {
    do {
      let socket = try ZMQSocket(context: context, type: .dealer)
      defer { socket.close() }
      try socket.connect(ingest)
      let clock = ContinuousClock()
      var sentAt: [ContinuousClock.Instant?] = Array(repeating: nil, count: batches.count)
      var acked = [Bool](repeating: false, count: batches.count)
      var next = 0
      var ackedCount = 0
      let payloads = batches.map { b -> [UInt8] in
        var out: [UInt8] = []
        for line in b {
          out += line
          out.append(10)
        }
        return out
      }
      func send(_ k: Int) throws {
        try socket.send([Ingest.magic, Array(clientId.utf8), Array(String(k + 1).utf8), payloads[k]])
        sentAt[k] = clock.now
      }
      while ackedCount < batches.count && !shared.stop {
        var inFlight = 0
        for k in 0..<next where !acked[k] { inFlight += 1 }
        if next < batches.count && inFlight < window {
          try send(next)
          next += 1
          if pauseMs > 0 { Thread.sleep(forTimeInterval: Double(pauseMs) / 1000) }
        }
        if let reply = try socket.receive(
          timeoutMs: inFlight + 1 >= window || next == batches.count ? 100 : 0)
        {
          guard reply.count == 5, reply[2] == Array("OK".utf8), let n = Ingest.batchNumber(reply[1]),
            let first = Int64(String(decoding: reply[3], as: UTF8.self)),
            let last = Int64(String(decoding: reply[4], as: UTF8.self))
          else {
            shared.clientError =
              "client: unexpected answer \(reply.map { String(decoding: $0, as: UTF8.self) })"
            continue
          }
          let k = Int(n - 1)
          guard k >= 0 && k < batches.count else { continue }
          if let old = shared.setAck(k, (first, last)), old != (first, last) {
            shared.clientError = "client: batch \(n) acked \(old.0)...\(old.1), then \(first)...\(last)"
          }
          if !acked[k] {
            acked[k] = true
            ackedCount += 1
          }
        }
        for k in 0..<next where !acked[k] {
          if let t = sentAt[k], clock.now - t > .milliseconds(3_000) { try send(k) }
        }
      }
      shared.clientDone = ackedCount == batches.count
    } catch {
      shared.clientError = "client: \(error)"
    }
  }

  static func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
  }

  static func leBytes(_ v: Int64) -> [UInt8] {
    (0..<8).map { UInt8(truncatingIfNeeded: UInt64(bitPattern: v) >> UInt64(8 * $0)) }
  }

  static func int64(_ bytes: [UInt8]) -> Int64? {
    guard bytes.count == 8 else { return nil }
    var v: UInt64 = 0
    for (k, b) in bytes.enumerated() { v |= UInt64(b) << UInt64(8 * k) }
    return Int64(bitPattern: v)
  }

  static func hexBytes(_ hex: String) -> [UInt8]? {
    let chars = Array(hex.utf8)
    guard chars.count % 2 == 0 else { return nil }
    var out: [UInt8] = []
    var k = 0
    while k < chars.count {
      guard let v = UInt8(String(decoding: chars[k..<(k + 2)], as: UTF8.self), radix: 16) else { return nil }
      out.append(v)
      k += 2
    }
    return out
  }
}
