import ArgumentParser
import Foundation
import TallyCluster
import TallyEngine
import ZeroMQTransport

struct ClusterBench: ParsableCommand {
  /// Batches in flight in the throughput phase.
  static let throughputWindow = 8
  /// Passes of the raw ZeroMQ phase; its figure is their median.
  static let rawPasses = 5
  /// How often the recovery phase reads the restarted replica's status: its catch-up on
  /// the 1M-event day lasts about a second, which 100 ms readings cut too coarsely.
  static let statusPoll = Duration.milliseconds(25)
  static let configuration = CommandConfiguration(
    commandName: "bench",
    abstract:
      "End-to-end cluster benchmark: voted trades/s, ingest→voted latency at a set rate, raw ZeroMQ rate.",
    discussion: helpText(
      """
      Starts a fresh cluster in a temporary data folder (twice: throughput, then latency),
      submits the events, watches the voter's published decisions, and stops the cluster.
      Phase 1 sends 10,000-line batches as fast as acks allow, 8 in flight (as
      scripts/cluster-client.py does); phase 2 paces batches of --latency-batch lines
      at --rate events/s and reports p50/p99 from send to voted. Phase 3 pushes the same
      bytes over a bare ZeroMQ PUSH/PULL pair on tcp loopback, five times, for the
      ratio (the median pass).
      Phase 4 (recovery; --no-recovery skips it) paces the events at --live-rate
      (default: half the voted rate of phase 1, the harder case on two cores), SIGKILLs
      the first replica 1 s in (or 30% into a short stream), restarts it after
      --down-seconds (or when 80% of the events are sent) and reports the time from its
      restart to its first newly applied batch (restart to voting) and its catch-up rate
      over the live rate (catch-up ratio), with its CPU time over that span from /proc (its
      share of a core and CPU-µs an event: below 1, the live nodes held the cores). The
      replica's progress is read from its status, which it answers between batches: the
      figures are as fine as its batches.

      --json prints one JSON object with every figure instead of the text lines.
      """))
  @OptionGroup var cluster: ClusterOptions
  @Option(name: .long, help: "Event file (e.g. from tally generate).")
  var events: String
  @Option(name: .long, help: "Paced rate for the latency phase, events per second.")
  var rate = 100_000
  @Option(
    name: .long,
    help:
      "Recovery phase: seconds the killed replica stays down at most (it is restarted earlier once 80% of the events are sent; the time measured is printed)."
  )
  var downSeconds = 30
  @Option(
    name: .long,
    help: "Recovery phase: the live rate, events/s (default: half the voted rate of phase 1).")
  var liveRate: Int?
  @Flag(name: .long, help: "Skip the recovery phase.")
  var noRecovery = false
  @Flag(name: .long, help: "Print one JSON object with every figure instead of text.")
  var json = false
  @Option(name: .long, help: "Lines per batch in the latency phase.")
  var latencyBatch = 1_000
  @Option(
    name: .long,
    help: """
      Seconds of the disk-stall probe before the phases (64 KiB append + fsync every 5 ms in \
      the data folder; its p99 and stalls bound the latency phase's p99). 0 skips it.
      """)
  var diskProbeSeconds = 10.0

  func validate() throws {
    if let liveRate, liveRate <= 0 { throw ValidationError("--live-rate must be positive, got \(liveRate)") }
    guard diskProbeSeconds >= 0 && diskProbeSeconds <= HostProbe.stallProbeSecondsMax else {
      throw ValidationError(
        "--disk-probe-seconds must be within 0...\(Int(HostProbe.stallProbeSecondsMax)), got \(diskProbeSeconds)"
      )
    }
  }

  func run() throws {
    var c = cluster.load()
    guard let reference = cluster.referenceDir(c) else { fail("give --reference", code: 64) }
    let bytes: [UInt8]
    do { bytes = try FileIO.read(events) } catch { fail("\(error)", code: 2) }
    let context = makeContext()
    let clock = ContinuousClock()
    let base = NSTemporaryDirectory() + "tally-cluster-bench-\(getpid())"

    func fresh(_ name: String) throws -> Supervisor {
      c.data = base + "/" + name
      let sup = Supervisor(
        config: c, configPath: cluster.config, data: c.data, reference: reference,
        executable: selfExecutable())
      let extra = Dictionary(uniqueKeysWithValues: sup.nodes.map { ($0.name, cluster.nodeArguments()) })
      _ = try sup.up(context: context, extraArguments: extra)
      return sup
    }

    // Before any node runs: the host's speed, for comparing runs on a shared machine.
    try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
    let probe = HostProbe.measure(syncDirectory: base)
    say("host probe (HostProbe.swift): \(probe.text)")
    let stalls = HostProbe.syncStalls(in: base, seconds: diskProbeSeconds)
    if let stalls { say("disk-stall probe: \(stalls.text)") }

    // Phase 1: throughput.
    var sup = try fresh("throughput")
    let watcher = try DecisionWatcher(context: context, endpoint: c.voterPublish, curve: c.curve)
    Thread.sleep(forTimeInterval: 0.3)  // the subscription settles before anything is decided
    let cpuBefore = NodeCPU.seconds(sup)
    var t0 = clock.now
    // Eight 10,000-line batches in flight, as the independent client sends them: on a
    // fresh cluster no retry can reorder them (`tally submit` keeps one, for that).
    let r = try Submitter.submit(
      context: context, ingest: c.ingest, files: [bytes], clientId: "bench-1", window: Self.throughputWindow,
      curve: c.curve)
    let acked = (clock.now - t0).seconds
    try watcher.wait(through: r.lastSeq, timeoutSeconds: 600)
    let voted = (clock.now - t0).seconds
    let cpu = NodeCPU.seconds(sup).map { node in
      (node.name, node.seconds - (cpuBefore.first { $0.name == node.name }?.seconds ?? 0))
    }
    let throughputJournalStall = journalWriteStallMs(sup, c, context: context)
    _ = sup.down()
    var figures = Figures(
      replicas: c.replicas.map(\.kernel).joined(separator: "/"), events: r.events,
      votedEventsPerSecond: Double(r.events) / voted, offeredEventsPerSecond: Double(rate))
    figures.cpuSeconds = Dictionary(uniqueKeysWithValues: cpu)
    figures.throughputJournalStallMilliseconds = throughputJournalStall
    figures.hostRandomReadNanoseconds = probe.randomReadNanoseconds
    figures.hostFreshMemoryGBPerSecond = probe.freshMemoryGBPerSecond
    figures.hostFsyncMilliseconds = probe.fsyncMilliseconds
    figures.hostFsyncP99Milliseconds = stalls?.p99Milliseconds
    figures.hostFsyncMaxMilliseconds = stalls?.maxMilliseconds
    figures.hostFsyncStalledShare = stalls?.stalledShare
    say(
      "cluster throughput (\(c.replicas.count) replicas, \(figures.replicas)): "
        + "\(r.events) events journaled in \(String(format: "%.2f", acked)) s (\(Int(Double(r.events) / acked))/s), "
        + "voted in \(String(format: "%.2f", voted)) s = \(Int(figures.votedEventsPerSecond)) voted events/s")
    say(
      "CPU seconds while voting (user + system, from /proc; \(ProcessInfo.processInfo.activeProcessorCount) cores × "
        + "\(String(format: "%.2f", voted)) s available): "
        + cpu.map { "\($0.0) \(String(format: "%.2f", $0.1))" }.joined(separator: ", ")
        + ", total \(String(format: "%.2f", cpu.reduce(0) { $0 + $1.1 }))")

    // Phase 2: latency at a paced rate.
    sup = try fresh("latency")
    let watcher2 = try DecisionWatcher(context: context, endpoint: c.voterPublish, curve: c.curve)
    Thread.sleep(forTimeInterval: 0.3)
    let frames = Submitter.batches([bytes], linesMax: latencyBatch)
    let dealer = try ZMQSocket(context: context, type: .dealer)
    try Secure.client(dealer, c.curve)
    try dealer.connect(c.ingest)
    var sentAt: [Int64: ContinuousClock.Instant] = [:]  // last seq → send time
    var firstOfBatch: [Int] = []
    let interval = Duration.seconds(Double(latencyBatch) / Double(rate))
    t0 = clock.now
    var pendingAcks = 0
    var lastSeq: Int64 = 0
    var sendTimes: [ContinuousClock.Instant] = []
    for (i, frame) in frames.enumerated() {
      let due = t0 + interval * i
      // Wait for the batch's time asleep in poll, not spinning: on two cores a spinning
      // client takes a core from the cluster it measures (perf: the bench process was
      // the largest single consumer of CPU in this phase).
      while clock.now < due {
        let left = (due - clock.now).components
        let ms = Int32(min(50, left.seconds * 1_000 + left.attoseconds / 1_000_000_000_000_000))
        _ = try ZMQPoller.poll([dealer, watcher2.socket], timeoutMs: ms)
        try drainAcks(dealer, &pendingAcks, &sentAt, sendTimes, &lastSeq)
        try watcher2.poll()
      }
      sendTimes.append(clock.now)
      try dealer.send([Ingest.magic, "bench-2".bytes, String(i + 1).bytes, frame])
      pendingAcks += 1
      firstOfBatch.append(i)
    }
    while pendingAcks > 0 {
      try drainAcks(dealer, &pendingAcks, &sentAt, sendTimes, &lastSeq, block: true)
      try watcher2.poll()
    }
    try watcher2.wait(through: lastSeq, timeoutSeconds: 600)
    let sendSeconds = (clock.now - t0).seconds
    var latencies: [Double] = []
    for (last, sent) in sentAt {
      if let decided = watcher2.decidedAt(last) { latencies.append((decided - sent).seconds * 1000) }
    }
    latencies.sort()
    figures.latencyJournalStallMilliseconds = journalWriteStallMs(sup, c, context: context)
    figures.latencyParts = latencyParts(sup, c, context: context)
    _ = sup.down()
    func pct(_ p: Double) -> String {
      latencies.isEmpty
        ? "n/a"
        : String(format: "%.2f", latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))])
    }
    func value(_ p: Double) -> Double? {
      latencies.isEmpty ? nil : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]
    }
    figures.latencyP50Milliseconds = value(0.5)
    figures.latencyP99Milliseconds = value(0.99)
    figures.latencyMaxMilliseconds = value(1.0)
    say(
      "latency at \(rate) events/s offered (\(frames.count) batches of \(latencyBatch), \(String(format: "%.1f", sendSeconds)) s): "
        + "ingest→voted p50 \(pct(0.5)) ms, p99 \(pct(0.99)) ms, max \(pct(1.0)) ms; "
        + "the journal's writes held back by RocksDB \(figures.latencyJournalStallMilliseconds.map { "\($0) ms" } ?? "n/a")"
    )
    if let parts = figures.latencyParts { say("  \(parts.text)") }

    // Phase 3: the same bytes over bare ZeroMQ.
    let pull = try ZMQSocket(context: context, type: .pull)
    try pull.bind("tcp://127.0.0.1:*")
    let endpoint = pull.lastEndpoint!
    let push = try ZMQSocket(context: context, type: .push)
    try push.connect(endpoint)
    let all = Submitter.batches([bytes], linesMax: Submitter.batchLinesDefault)
    // A pass takes a few tens of milliseconds, where one preemption on two shared cores
    // moves the figure by half: the median of `rawPasses` passes.
    var passes: [Double] = []
    for _ in 0..<Self.rawPasses {
      t0 = clock.now
      var received = 0
      for f in all {
        try push.send([f])
        while let _ = try pull.receive(timeoutMs: 0) { received += 1 }
      }
      while received < all.count { if try pull.receive(timeoutMs: 1000) != nil { received += 1 } }
      passes.append((clock.now - t0).seconds)
    }
    let raw = passes.sorted()[passes.count / 2]
    figures.rawEventsPerSecond = Double(r.events) / raw
    figures.votedRawRatio = raw / voted
    say(
      "raw ZeroMQ PUSH→PULL of the same bytes: \(String(format: "%.3f", raw)) s = \(Int(Double(r.events) / raw)) events/s "
        + "(median of \(passes.count) passes: \(passes.map { String(format: "%.3f", $0) }.joined(separator: " ")) s); "
        + "voted/raw ratio \(String(format: "%.3f", raw / voted))")

    // Phase 4: a replica killed under load, restarted, catching up.
    if !noRecovery {
      sup = try fresh("recovery")
      defer { _ = sup.down() }
      let recovery = try measureRecovery(
        sup, c, bytes: bytes,
        liveRate: liveRate.map(Double.init) ?? max(1_000, figures.votedEventsPerSecond / 2),
        context: context)
      figures.liveEventsPerSecond = recovery.liveRate
      figures.restartToVotingSeconds = recovery.restartToVoting
      figures.catchUpRatio = recovery.catchUpRatio
      figures.downSeconds = recovery.downSeconds
      figures.catchUpCPUShare = recovery.catchUpCPUShare
      figures.catchUpCPUMicrosecondsPerEvent = recovery.catchUpCPUMicrosecondsPerEvent
      say(recovery.text)
    }
    try? FileManager.default.removeItem(atPath: base)
    if json { print(figures.json) }
  }

  /// A text line of the benchmark, on standard output (standard error with --json).
  func say(_ line: String) {
    if json { note(line) } else { print(line) }
  }

  /// Every figure of a bench run (`--json`); nil where a phase did not measure it.
  struct Figures: Encodable {
    var replicas: String
    var events: Int64
    var votedEventsPerSecond: Double
    var offeredEventsPerSecond: Double
    var latencyP50Milliseconds: Double?
    var latencyP99Milliseconds: Double?
    var latencyMaxMilliseconds: Double?
    var rawEventsPerSecond: Double?
    var votedRawRatio: Double?
    var liveEventsPerSecond: Double?
    var restartToVotingSeconds: Double?
    var catchUpRatio: Double?
    /// How long the killed replica was down (`Recovery.downSeconds`).
    var downSeconds: Double?
    /// The restarted replica's CPU while it caught up: share of one core, µs an event.
    var catchUpCPUShare: Double?
    var catchUpCPUMicrosecondsPerEvent: Double?
    /// CPU seconds (user + system) each node spent during the throughput phase.
    var cpuSeconds: [String: Double]?
    /// The host's speed at memory-bound work before the phases (HostProbe.swift).
    var hostRandomReadNanoseconds: Double?
    var hostFreshMemoryGBPerSecond: Double?
    /// Median fsync of a 64 KiB append in the nodes' data folder: the journal's fsync is
    /// the floor of the ingest→voted latency (0.2-4 ms on this project's VMs).
    var hostFsyncMilliseconds: Double?
    /// The disk-stall probe (`--disk-probe-seconds`): fsync p99 and max, and the share of
    /// its time the disk spent in fsyncs over 10 ms.
    var hostFsyncP99Milliseconds: Double?
    var hostFsyncMaxMilliseconds: Double?
    var hostFsyncStalledShare: Double?
    /// Milliseconds RocksDB stopped or slowed the journal's writes in the throughput and
    /// latency phases (the sequencer's status at each phase's end): a latency figure with
    /// 0 here waited on the disk, not on the journal's own flushes.
    var throughputJournalStallMilliseconds: Int64?
    var latencyJournalStallMilliseconds: Int64?
    /// Where the latency phase's time went, from the nodes' statuses at its end.
    var latencyParts: LatencyParts?

    enum CodingKeys: String, CodingKey {
      case replicas, events
      case votedEventsPerSecond = "voted_events_per_s"
      case offeredEventsPerSecond = "offered_events_per_s"
      case latencyP50Milliseconds = "latency_p50_ms"
      case latencyP99Milliseconds = "latency_p99_ms"
      case latencyMaxMilliseconds = "latency_max_ms"
      case rawEventsPerSecond = "raw_events_per_s"
      case votedRawRatio = "voted_raw_ratio"
      case liveEventsPerSecond = "live_events_per_s"
      case restartToVotingSeconds = "restart_to_voting_s"
      case catchUpRatio = "catch_up_ratio"
      case downSeconds = "down_s"
      case catchUpCPUShare = "catch_up_cpu_share"
      case catchUpCPUMicrosecondsPerEvent = "catch_up_cpu_us_per_event"
      case cpuSeconds = "cpu_seconds"
      case hostRandomReadNanoseconds = "host_random_read_ns"
      case hostFreshMemoryGBPerSecond = "host_fresh_memory_gb_per_s"
      case hostFsyncMilliseconds = "host_fsync_ms"
      case hostFsyncP99Milliseconds = "host_fsync_p99_ms"
      case hostFsyncMaxMilliseconds = "host_fsync_max_ms"
      case hostFsyncStalledShare = "host_fsync_stalled_share"
      case throughputJournalStallMilliseconds = "throughput_journal_stall_ms"
      case latencyJournalStallMilliseconds = "latency_journal_stall_ms"
      case latencyParts = "latency_parts"
    }

    var json: String {
      let e = JSONEncoder()
      e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
      return String(decoding: (try? e.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }
  }

  struct Recovery {
    var liveRate: Double
    var restartToVoting: Double?
    /// Seconds from the SIGKILL to the restart: `--down-seconds`, or less when 80% of
    /// the events were sent first (a short stream at a low live rate).
    var downSeconds: Double?
    var catchUpRatio: Double?
    /// The victim's CPU seconds over the span the catch-up rate was timed on, as a share
    /// of that span (1: one core all the time), and per event applied in it: whether the
    /// catch-up was bound by the replica's own work (a share near 1, or above with its
    /// commit thread) or by the cores it shares with the live cluster.
    var catchUpCPUShare: Double?
    var catchUpCPUMicrosecondsPerEvent: Double?
    /// True when the victim was caught up at its first status after the restart.
    var catchUpIsLowerBound = false
    var text: String
  }

  /// The latency phase's steps on its way from ingest to decision, as the nodes timed
  /// them (`StageTime` in their statuses; the phase's cluster is started for it, so a
  /// status's totals are the phase's): the mean journal commit (write and fsync before
  /// the ack and the fetch answers), each replica's mean batch (apply, effects, vote),
  /// and the voter's mean decision commit (fsync before DECIDED is published). A
  /// decision waits for the journal, the second-fastest replica of a 3-replica quorum
  /// and its commit; the rest of the p50 is the hops between the processes and their
  /// waits for a core.
  struct LatencyParts: Codable {
    var journalCommitMilliseconds: Double?
    var applyMilliseconds: [String: Double]
    var decisionCommitMilliseconds: Double?

    enum CodingKeys: String, CodingKey {
      case journalCommitMilliseconds = "journal_commit_ms"
      case applyMilliseconds = "apply_ms"
      case decisionCommitMilliseconds = "decision_commit_ms"
    }

    var text: String {
      func ms(_ v: Double?) -> String { v.map { String(format: "%.2f ms", $0) } ?? "n/a" }
      let applies = applyMilliseconds.sorted { $0.key < $1.key }.map { "\($0.key) \(ms($0.value))" }
      return
        "latency parts (means, from the nodes' statuses): journal commit \(ms(journalCommitMilliseconds)), "
        + "a batch's apply \(applies.isEmpty ? "n/a" : applies.joined(separator: " / ")), "
        + "decision commit \(ms(decisionCommitMilliseconds))"
    }
  }

  /// A node's status over its control socket (nil when it does not answer in time).
  func nodeStatus<S: Decodable>(
    _ type: S.Type, _ node: NodeSpec, _ c: ClusterConfig, context: ZMQContext, timeoutMs: Int32 = 1_000
  ) -> S? {
    ControlClient.status(type, context: context, endpoint: node.control, timeoutMs: timeoutMs, curve: c.curve)
  }

  func latencyParts(_ sup: Supervisor, _ c: ClusterConfig, context: ZMQContext) -> LatencyParts? {
    func status<S: Decodable>(_ type: S.Type, _ node: NodeSpec) -> S? {
      nodeStatus(type, node, c, context: context)
    }
    var parts = LatencyParts(applyMilliseconds: [:])
    for node in sup.nodes {
      switch node.role {
      case "sequencer":
        parts.journalCommitMilliseconds =
          status(SequencerStatus.self, node)?.journalCommitTime?.meanMilliseconds
      case "replica":
        if let r = status(ReplicaStatus.self, node), let mean = r.applyTime?.meanMilliseconds {
          parts.applyMilliseconds[r.id] = mean
        }
      case "voter":
        parts.decisionCommitMilliseconds =
          status(VoterStatus.self, node)?.decisionCommitTime?.meanMilliseconds
      default: break
      }
    }
    let none =
      parts.journalCommitMilliseconds == nil && parts.applyMilliseconds.isEmpty
      && parts.decisionCommitMilliseconds == nil
    return none ? nil : parts
  }

  /// The sequencer's `journal_write_stall_ms`, from its status (nil when it does not answer).
  func journalWriteStallMs(_ sup: Supervisor, _ c: ClusterConfig, context: ZMQContext) -> Int64? {
    guard let sequencer = sup.nodes.first(where: { $0.role == "sequencer" }) else { return nil }
    return nodeStatus(SequencerStatus.self, sequencer, c, context: context)?.journalWriteStallMs
  }

  /// Paces the events at `liveRate`, kills the first replica 1 s in (or when 30% of the
  /// batches are sent, for a short stream), restarts it after
  /// `downSeconds` (or when 80% of the events are sent, whichever comes first) and
  /// follows its status until it has caught up with the sequencer.
  func measureRecovery(
    _ sup: Supervisor, _ c: ClusterConfig, bytes: [UInt8], liveRate: Double, context: ZMQContext
  ) throws -> Recovery {
    let clock = ContinuousClock()
    guard let victim = sup.nodes.first(where: { $0.role == "replica" }),
      let sequencer = sup.nodes.first(where: { $0.role == "sequencer" })
    else { fail("recovery phase: the config has no replica", code: 64) }
    let frames = Submitter.batches([bytes], linesMax: latencyBatch)
    let dealer = try ZMQSocket(context: context, type: .dealer)
    try Secure.client(dealer, c.curve)
    try dealer.connect(c.ingest)
    let interval = Duration.seconds(Double(latencyBatch) / liveRate)
    func status<S: Decodable>(_ type: S.Type, _ node: NodeSpec) -> S? {
      nodeStatus(type, node, c, context: context, timeoutMs: 100)
    }
    var pendingAcks = 0
    var killedAt: ContinuousClock.Instant? = nil
    var restartedAt: ContinuousClock.Instant? = nil
    var appliedAtKill: Int64 = 0
    var votingAgainAt: ContinuousClock.Instant? = nil
    var appliedWhenVoting: Int64 = 0
    var cpuWhenVoting: Double? = nil
    var caughtUpAt: ContinuousClock.Instant? = nil
    var appliedWhenCaughtUp: Int64 = 0
    var cpuWhenCaughtUp: Double? = nil
    var lastPoll = clock.now
    var sent = 0
    let t0 = clock.now
    /// Waits asleep (in poll, for acks) until `until` or the next status poll, whichever
    /// is first: on two cores a spinning bench took a core from the replica it times
    /// (the catch-up ratio read 2-3.9 with a spin here, docs/PERFORMANCE.md).
    func rest(until: ContinuousClock.Instant) throws {
      let wake = min(until, lastPoll + Self.statusPoll)
      let left = (wake - clock.now).components
      let ms = left.seconds * 1_000 + left.attoseconds / 1_000_000_000_000_000
      if ms > 0 { _ = try ZMQPoller.poll([dealer], timeoutMs: Int32(min(ms, 100))) }
    }
    func step() throws {
      while pendingAcks > 0, try dealer.receive(timeoutMs: 0) != nil { pendingAcks -= 1 }
      let now = clock.now
      guard now - lastPoll >= Self.statusPoll else { return }
      lastPoll = now
      if killedAt == nil, now - t0 >= .seconds(1) || sent * 10 >= frames.count * 3 {
        appliedAtKill = status(ReplicaStatus.self, victim)?.appliedSeq ?? 0
        if let pid = sup.pid(victim) { kill(pid, SIGKILL) }
        killedAt = clock.now
      } else if let killedAt, restartedAt == nil, now - killedAt >= .seconds(downSeconds) {
        try restart()
      } else if restartedAt != nil, caughtUpAt == nil, let s = status(ReplicaStatus.self, victim) {
        if votingAgainAt == nil {
          if s.appliedSeq > appliedAtKill {
            votingAgainAt = clock.now
            appliedWhenVoting = s.appliedSeq
            cpuWhenVoting = NodeCPU.seconds(sup, victim)
          }
        } else if let head = status(SequencerStatus.self, sequencer)?.lastSeq, s.appliedSeq >= head {
          // Caught up at a later status than the first new batch: a measurable span.
          caughtUpAt = clock.now
          appliedWhenCaughtUp = s.appliedSeq
          cpuWhenCaughtUp = NodeCPU.seconds(sup, victim)
        }
      }
    }
    func restart() throws {
      // From the spawn: opening its state is part of a restart.
      let spawned = clock.now
      _ = try sup.up(
        context: context, extraArguments: [victim.name: cluster.nodeArguments()], only: [victim.name])
      restartedAt = spawned
    }
    for (i, frame) in frames.enumerated() {
      let due = t0 + interval * i
      while clock.now < due {
        try step()
        try rest(until: due)
      }
      if killedAt != nil, restartedAt == nil, i >= frames.count * 4 / 5 { try restart() }
      try dealer.send([Ingest.magic, "bench-4".bytes, String(i + 1).bytes, frame])
      pendingAcks += 1
      sent += 1
    }
    while killedAt == nil {
      try step()
      try rest(until: clock.now + Self.statusPoll)
    }
    if restartedAt == nil { try restart() }
    let deadline = clock.now + .seconds(600)
    while caughtUpAt == nil && clock.now < deadline {
      try step()
      try rest(until: clock.now + Self.statusPoll)
    }
    var result = Recovery(liveRate: liveRate, text: "")
    if let restartedAt, let votingAgainAt {
      result.restartToVoting = (votingAgainAt - restartedAt).seconds
    }
    if let killedAt, let restartedAt { result.downSeconds = (restartedAt - killedAt).seconds }
    // The span the catch-up is timed on: from its first new batch to caught up, or, when
    // its first new batches already reached the head (a short backlog, no span between
    // two statuses), from its spawn, start-up included: a lower bound (its CPU at the
    // spawn is 0).
    var from: (at: ContinuousClock.Instant, applied: Int64, cpu: Double?)? = nil
    if let votingAgainAt, let caughtUpAt, caughtUpAt > votingAgainAt, appliedWhenCaughtUp > appliedWhenVoting
    {
      from = (votingAgainAt, appliedWhenVoting, cpuWhenVoting)
    } else if let restartedAt, caughtUpAt != nil, appliedWhenCaughtUp > appliedAtKill {
      from = (restartedAt, appliedAtKill, 0)
      result.catchUpIsLowerBound = true
    }
    if let from, let caughtUpAt {
      let span = (caughtUpAt - from.at).seconds
      let events = Double(appliedWhenCaughtUp - from.applied)
      result.catchUpRatio = events / span / liveRate
      if let before = from.cpu, let after = cpuWhenCaughtUp {
        result.catchUpCPUShare = (after - before) / span
        result.catchUpCPUMicrosecondsPerEvent = (after - before) * 1e6 / events
      }
    }
    func fmt(_ v: Double?, _ digits: Int) -> String { v.map { String(format: "%.\(digits)f", $0) } ?? "n/a" }
    result.text =
      "recovery at \(Int(liveRate)) events/s live"
      + (self.liveRate == nil ? " (half the voted rate)" : "") + ": \(victim.name) "
      + "SIGKILLed at seq \(appliedAtKill), down \(fmt(result.downSeconds, 1)) s"
      + ((result.downSeconds ?? 0) < Double(downSeconds) - 0.5
        ? " (restarted when 80% of the events were sent, before --down-seconds \(downSeconds))" : "")
      + "; restart to voting "
      + "\(fmt(result.restartToVoting, 2)) s, catch-up \(fmt(result.catchUpRatio, 1))x the live rate"
      + (result.catchUpIsLowerBound
        ? " (at least: caught up by its first new batches, timed from its spawn)" : "")
      + (result.catchUpCPUShare.map {
        "; \(victim.name) on the CPU \(Int(($0 * 100).rounded()))% of that time, "
          + "\(fmt(result.catchUpCPUMicrosecondsPerEvent, 2)) CPU-µs an event"
      } ?? "")
    return result
  }

  func drainAcks(
    _ dealer: ZMQSocket, _ pending: inout Int, _ sentAt: inout [Int64: ContinuousClock.Instant],
    _ sendTimes: [ContinuousClock.Instant], _ lastSeq: inout Int64, block: Bool = false
  ) throws {
    while pending > 0, let reply = try dealer.receive(timeoutMs: block ? 100 : 0) {
      pending -= 1
      guard reply.count == 5, let n = Int(reply[1].text), let last = Int64(reply[4].text), last > 0 else {
        continue
      }
      sentAt[last] = sendTimes[n - 1]
      lastSeq = max(lastSeq, last)
      if block { return }
    }
  }
}

/// Subscribes to the voter's decided-batch feed and timestamps each decision.
final class DecisionWatcher {
  let socket: ZMQSocket
  var decided: [Int64: ContinuousClock.Instant] = [:]
  var through: Int64 = 0

  init(context: ZMQContext, endpoint: String, curve: CurveKeys?) throws {
    socket = try ZMQSocket(context: context, type: .sub)
    try Secure.client(socket, curve)
    try socket.setReceiveHighWaterMark(0)
    try socket.subscribe([])
    try socket.connect(endpoint)
  }

  func poll(timeoutMs: Int32 = 0) throws {
    while let msg = try socket.receive(timeoutMs: timeoutMs) {
      guard msg.count >= 3, let last = Int64(leBytesOf: msg[2]) else { continue }
      decided[last] = ContinuousClock().now
      through = max(through, last)
      if timeoutMs != 0 { return }
    }
  }

  func wait(through seq: Int64, timeoutSeconds: Int) throws {
    let clock = ContinuousClock()
    let deadline = clock.now + .seconds(timeoutSeconds)
    while through < seq {
      guard clock.now < deadline else { throw ClusterClientError("voter did not reach seq \(seq)") }
      try poll(timeoutMs: 100)
    }
  }

  func decidedAt(_ last: Int64) -> ContinuousClock.Instant? { decided[last] }
}

extension Int64 {
  init?(leBytesOf bytes: [UInt8]) {
    guard bytes.count == 8 else { return nil }
    var v: UInt64 = 0
    for (k, b) in bytes.enumerated() { v |= UInt64(b) << UInt64(8 * k) }
    self = Int64(bitPattern: v)
  }
}

/// CPU time of the cluster's node processes, from `/proc/<pid>/stat` (Linux): where the
/// cores went while the cluster voted.
enum NodeCPU {
  static func seconds(_ sup: Supervisor) -> [(name: String, seconds: Double)] {
    sup.nodes.compactMap { node in seconds(sup, node).map { (node.name, $0) } }
  }

  /// One node's CPU seconds (user + system, all its threads); nil when it is not running.
  static func seconds(_ sup: Supervisor, _ node: NodeSpec) -> Double? {
    guard let pid = sup.pid(node),
      let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let close = stat.lastIndex(of: ")")
    else { return nil }
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else {
      return nil
    }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
  }
}
