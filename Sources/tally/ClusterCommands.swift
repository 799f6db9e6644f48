import ArgumentParser
import Foundation
import KernelAPI
import TallyCluster
import TallyEngine
import TallyFormat
import TallyOps
import ZeroMQTransport

/// The options every cluster-facing command takes, so clusters can live side by side.
struct ClusterOptions: ParsableArguments {
  @Option(name: .long, help: "Cluster config (e.g. Config/local.toml).")
  var config: String

  @Option(name: .long, help: "Reference folder (overrides the config's).")
  var reference: String?

  @Option(name: .long, help: "Data folder for pid files, logs and node state (overrides the config's).")
  var data: String?

  @Option(name: .long, help: "First port of the cluster's endpoints (overrides the config's base_port).")
  var basePort: Int?

  func load() -> ClusterConfig {
    do {
      var c = try ClusterConfig.load(config)
      if let basePort {
        c.basePort = basePort
        try c.checkListeners(file: config + " (with --base-port \(basePort))")
      }
      return c
    } catch { fail("\(error)", code: 2) }
  }

  func dataDir(_ c: ClusterConfig) -> String { data ?? c.data }
  func referenceDir(_ c: ClusterConfig) -> String? { reference ?? c.reference }

  func nodeArguments() -> [String] {
    basePort.map { ["--base-port", String($0)] } ?? []
  }

  func supervisor(_ c: ClusterConfig) -> Supervisor {
    Supervisor(
      config: c, configPath: config, data: dataDir(c), reference: referenceDir(c),
      executable: selfExecutable())
  }
}

func selfExecutable() -> String {
  (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}

func makeContext() -> ZMQContext {
  do { return try ZMQContext() } catch { fail("cannot create a ZeroMQ context: \(error)") }
}

struct ClusterCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "cluster",
    abstract: "Run a replicated cluster on this machine: sequencer, N replicas, voter.",
    subcommands: [
      ClusterUp.self, ClusterDown.self, ClusterStatus.self, ClusterRun.self, ClusterBench.self,
      ClusterBenchReplica.self,
    ])
}

/// Which nodes a command acts on: all of them, `--only NODE,...`, or `--here` (those
/// whose `host` is an address of this machine), for a cluster spread over hosts.
struct NodeSelection: ParsableArguments {
  @Option(name: .long, help: "Only these nodes (comma-separated: sequencer, voter, replica ids).")
  var only: String?

  @Flag(name: .long, help: "Only the nodes whose host is an address of this machine.")
  var here = false

  /// nil: every node.
  func select(_ c: ClusterConfig) -> Set<String>? {
    if only != nil && here { fail("give --only or --here, not both", code: 64) }
    if let only {
      let names = only.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
      for n in names where !c.nodeNames.contains(n) {
        fail("--only: no node '\(n)' in the config (nodes: \(c.nodeNames.joined(separator: ", ")))", code: 64)
      }
      guard !names.isEmpty else { fail("--only needs at least one node", code: 64) }
      return Set(names)
    }
    if here {
      let mine = c.nodesHere()
      guard !mine.isEmpty else {
        fail(
          "--here: no node's host is an address of this machine (this machine: \(ClusterConfig.localAddresses().sorted().joined(separator: ", ")); nodes: \(c.nodeNames.map { "\($0) \(c.host(node: $0))" }.joined(separator: ", ")))",
          code: 64)
      }
      return Set(mine)
    }
    return nil
  }
}

struct ClusterUp: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "up",
    abstract: "Start every node that is not running (also how a killed node is brought back).",
    discussion: helpText(
      """
      With --only or --here, only those nodes: on a cluster spread over hosts, each host
      starts its own nodes (docs/OPERATIONS.md).
      """))
  @OptionGroup var cluster: ClusterOptions
  @OptionGroup var selection: NodeSelection

  func run() throws {
    let c = cluster.load()
    let only = selection.select(c)
    guard cluster.referenceDir(c) != nil else {
      fail("give --reference (or set reference in the config)", code: 64)
    }
    let sup = cluster.supervisor(c)
    do {
      let extra = Dictionary(uniqueKeysWithValues: sup.nodes.map { ($0.name, cluster.nodeArguments()) })
      let started = try sup.up(context: makeContext(), extraArguments: extra, only: only)
      note(
        started.isEmpty
          ? "cluster up: every node was already running"
          : "cluster up: started \(started.joined(separator: ", ")); data in \(sup.data); ingest \(c.ingest)")
    } catch { fail("\(error)") }
  }
}

struct ClusterDown: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "down", abstract: "Stop every node of this machine (SIGTERM), or those of --only/--here.")
  @OptionGroup var cluster: ClusterOptions
  @OptionGroup var selection: NodeSelection

  func run() throws {
    let c = cluster.load()
    let stopped = cluster.supervisor(c).down(only: selection.select(c))
    note(
      "cluster down: stopped \(stopped.isEmpty ? "nothing (no node was running)" : stopped.joined(separator: ", "))"
    )
  }
}

struct ClusterStatus: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "status",
    abstract: "Each node: role, pid, alive, endpoints, applied seq, lag, votes, quarantine.",
    discussion: helpText(
      """
      Exits 0 when every node is up and answering and a quorum of replicas is up, not
      quarantined, and the voter is not halted; 1 otherwise (for scripts and probes).

      A node whose host is an address of this machine is checked by its pid file and
      its control endpoint; a node on another host by its control endpoint alone.

      With --only or --here, only those nodes (and no quorum check unless every
      replica is among them).
      """))
  @OptionGroup var cluster: ClusterOptions
  @OptionGroup var selection: NodeSelection
  @Flag(name: .long, help: "JSON for scripts.")
  var json = false

  func run() throws {
    let c = cluster.load()
    let g = Self.gather(c, cluster.supervisor(c), makeContext(), only: selection.select(c))
    if json {
      print(g.json)
    } else {
      print(g.lines.joined(separator: "\n"))
    }
    if !g.problems.isEmpty { throw ExitCode(1) }
  }

  /// Every node's status (what `cluster status` prints): the JSON object, the text lines
  /// and the problems (empty when healthy). Also polled by `tally dashboard`. `only`:
  /// just these nodes (no quorum check unless every replica is among them).
  static func gather(_ c: ClusterConfig, _ sup: Supervisor, _ context: ZMQContext, only: Set<String>? = nil)
    -> (
      json: String, lines: [String], problems: [String], alerts: Int64
    )
  {
    let localAddresses = ClusterConfig.localAddresses()
    let seqStatus = ControlClient.status(
      SequencerStatus.self, context: context, endpoint: c.sequencerControl, timeoutMs: 500, curve: c.curve)
    let voterStatus = ControlClient.status(
      VoterStatus.self, context: context, endpoint: c.voterControl, timeoutMs: 500, curve: c.curve)
    let lastSeq = seqStatus?.lastSeq ?? -1
    var nodes: [JSON] = []
    var lines: [String] = []
    var problems: [String] = []
    var votingReplicas = 0
    lines.append(
      "cluster \(c.name): data \(sup.data), ingest \(c.ingest), quorum \(c.quorum) of \(c.replicas.count)")
    for node in sup.nodes(only: only) {
      let host = c.host(node: node.name)
      let local = ClusterConfig.isLocal(host, local: localAddresses)
      // A node on another host has no pid file here: it is alive when it answers.
      let pidAlive = local ? sup.isAlive(node) : true
      let status =
        pidAlive
        ? ControlClient.status(context: context, endpoint: node.control, timeoutMs: 500, curve: c.curve) : nil
      let alive = local ? pidAlive : status != nil
      let pid = local ? sup.pid(node) : nil
      var fields: [(String, JSON)] = [
        ("name", .string(node.name)), ("role", .string(node.role)),
        ("pid", pid.map { .int(Int64($0)) } ?? .null), ("host", .string(host)), ("local", .bool(local)),
        ("alive", .bool(alive)), ("control", .string(node.control)), ("answering", .bool(status != nil)),
        ("metrics", c.ops.metricsEnabled ? .string(c.metricsURL(node: node.name)) : .null),
      ]
      if !alive {
        problems.append("\(node.name) is down")
      } else if status == nil {
        problems.append("\(node.name) is not answering")
      }
      var text =
        "  \(DemoSummary.pad(node.name, 10)) \(DemoSummary.pad(node.role, 10)) "
        + (local ? "pid \(pid.map(String.init) ?? "-") " : "at \(host) ")
      text += alive ? (status != nil ? "up" : "up (not answering)") : "DOWN"
      switch node.role {
      case "sequencer":
        fields.append(("ingest", .string(c.ingest)))
        fields.append(("last_seq", lastSeq >= 0 ? .int(lastSeq) : .null))
        if lastSeq >= 0 { text += ", journal seq \(lastSeq)" }
        // RocksDB holding back the journal's writes (its paced flushes fell behind):
        // shown in the text only when it happened, always in the JSON.
        let stall = seqStatus?.journalWriteStallMs
        fields.append(("journal_write_stall_ms", stall.map { .int($0) } ?? .null))
        if let stall, stall > 0 { text += ", journal writes held back \(stall) ms by RocksDB" }
        fields.append(("journal_commit_time", Self.json(seqStatus?.journalCommitTime)))
        // The journal's batches on disk (kept for good: a replica repairs from seq 1).
        let logBytes = seqStatus?.journalLogBytes
        fields.append(("journal_log_bytes", logBytes.map { .int($0) } ?? .null))
        if let logBytes { text += String(format: ", journal %.1f MiB on disk", Double(logBytes) / 1_048_576) }
      case "replica":
        let replica = status.flatMap { NodeStatus.decode(ReplicaStatus.self, from: $0) }
        let applied = replica?.appliedSeq
        fields.append(("applied_seq", applied.map { .int($0) } ?? .null))
        fields.append(("committed_seq", replica.map { .int($0.committedSeq) } ?? .null))
        if let replica {
          fields.append(("committed_state_digest", .string(replica.committedStateDigest)))
          fields.append(("digest_seq", replica.digestSeq.map { .int($0) } ?? .null))
          fields.append(("apply_time", Self.json(replica.applyTime)))
          fields.append(("batches_split_ahead", replica.batchesSplitAhead.map { .int($0) } ?? .null))
        }
        fields.append(("lag", applied.map { .int(max(0, lastSeq - $0)) } ?? .null))
        if let applied { text += ", applied \(applied), lag \(max(0, lastSeq - applied))" }
        if let view = voterStatus.flatMap({ replicaView($0, node.name) }) {
          fields += view.map { ($0.0, $0.1) }
          text +=
            ", kernel \(stringField(view, "kernel")), agreed \(intField(view, "agreed")), dissents \(intField(view, "dissents"))"
          if case .bool(true)? = view.first(where: { $0.0 == "quarantined" })?.1 {
            text += ", QUARANTINED"
          } else if status != nil {
            votingReplicas += 1
          }
        } else if status != nil {
          votingReplicas += 1
        }
      default:
        if let v = voterStatus {
          fields.append(("decided_through", .int(v.decidedThrough)))
          fields.append(("stream", .string(c.voterStream)))
          fields.append(("stream_replay", .string(c.voterStreamReplay)))
          fields.append(("streamed_through", .int(v.streamedThrough)))
          fields.append(("alerts", .int(v.alerts)))
          fields.append(("decision_commit_time", Self.json(v.decisionCommitTime)))
          text += ", decided through seq \(v.decidedThrough), alerts \(v.alerts)"
          if v.halted != nil {
            text += ", HALTED (no majority)"
            problems.append("the voter is halted (no majority)")
          }
        }
      }
      nodes.append(.object(fields))
      lines.append(text)
    }
    let everyReplicaShown = c.replicas.allSatisfy { only?.contains($0.id) ?? true }
    if everyReplicaShown && votingReplicas < c.quorum {
      problems.append(
        "no quorum: \(votingReplicas) of \(c.replicas.count) replicas up and voting, \(c.quorum) needed")
    }
    let json = JSON.render([
      ("cluster", .string(c.name)), ("data", .string(sup.data)), ("ingest", .string(c.ingest)),
      ("quorum", .int(Int64(c.quorum))), ("healthy", .bool(problems.isEmpty)),
      ("problems", .array(problems.map { .string($0) })), ("stream", .string(c.voterStream)),
      ("stream_replay", .string(c.voterStreamReplay)), ("nodes", .array(nodes)),
    ])
    if !problems.isEmpty { lines.append("NOT HEALTHY: " + problems.joined(separator: "; ")) }
    return (json, lines, problems, voterStatus?.alerts ?? 0)
  }

  /// The voter's view of one replica, from its status.
  /// A node's `StageTime` as its status has it (`{"count":…,"total_us":…}`), null when
  /// the node did not answer or predates the field.
  static func json(_ t: StageTime?) -> JSON {
    t.map { .object([("count", .int($0.count)), ("total_us", .int($0.totalMicroseconds))]) } ?? .null
  }

  static func replicaView(_ voter: VoterStatus, _ id: String) -> [(String, JSON)]? {
    guard let v = voter.replicas.first(where: { $0.id == id }) else { return nil }
    return [
      ("kernel", .string(v.kernel)), ("agreed", .int(v.agreed)), ("dissents", .int(v.dissents)),
      ("repairs", .int(v.repairs)), ("quarantined", .bool(v.quarantined)),
    ]
  }

  static func stringField(_ f: [(String, JSON)], _ name: String) -> String {
    if case .string(let s)? = f.first(where: { $0.0 == name })?.1 { return s }
    return "?"
  }

  static func intField(_ f: [(String, JSON)], _ name: String) -> String {
    if case .int(let i)? = f.first(where: { $0.0 == name })?.1 { return String(i) }
    return "?"
  }
}

struct SubmitCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "submit",
    abstract: "Send event files to the cluster's sequencer (SPEC §7); returns when every batch is acked.",
    discussion: helpText(
      """
      Batches are retried until acknowledged; a retry is never journaled twice. The default
      client id is derived from the files' contents, so submitting the same files again
      journals nothing new; pass --client to submit the same content as new events.
      """))
  @OptionGroup var cluster: ClusterOptions
  @Option(name: .long, help: "Client id (1-64 of A-Za-z0-9._-).")
  var client: String?
  @Option(name: .long, help: "Lines per batch (at most 100000).")
  var batchLines = Submitter.batchLinesDefault
  @Argument(help: "Event files.")
  var events: [String]

  func run() throws {
    let c = cluster.load()
    var files: [[UInt8]] = []
    for path in events {
      do { files.append(try FileIO.read(path)) } catch { fail("\(error)", code: 2) }
    }
    guard batchLines > 0 && batchLines <= 100_000 else {
      throw ValidationError("--batch-lines must be 1...100000")
    }
    let id = client ?? Submitter.contentClientId(files)
    let clock = ContinuousClock()
    let started = clock.now
    let context = makeContext()
    let before =
      ControlClient.status(
        SequencerStatus.self, context: context, endpoint: c.sequencerControl, curve: c.curve)?
      .lastSeq ?? 0
    do {
      let r = try Submitter.submit(
        context: context, ingest: c.ingest, files: files, clientId: id, linesMax: batchLines, curve: c.curve,
        journalEndBefore: before
      ) { note("submit: " + $0) }
      let seconds = (clock.now - started).seconds
      note(
        "submit: \(r.batches) batches acked as client \(id): \(r.events) events journaled now"
          + (r.events > 0 ? " (seq \(r.firstSeq)...\(r.lastSeq))" : " (all were already journaled)")
          + String(format: " in %.2f s", seconds))
    } catch { fail("\(error)") }
  }
}

struct ReportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "report",
    abstract: "Wait until every journaled event is voted, then write the seven SPEC §5 files from voted data."
  )
  @OptionGroup var cluster: ClusterOptions
  @Option(name: .long, help: "Output folder.")
  var out: String
  @Option(name: .long, help: "Give up after this many seconds.")
  var timeout = 600

  @Flag(
    name: .long,
    help:
      "Build the files from the voted stream (docs/STREAM.md) as of the latest streamed seq, without waiting for a quiet cluster."
  )
  var fromStream = false

  func run() throws {
    let c = cluster.load()
    if fromStream { return try reportFromStream(c) }
    do {
      let files = try Reporter.report(context: makeContext(), config: c, timeoutSeconds: timeout) {
        note("report: " + $0)
      }
      try FileIO.writeFolder(out, files: files)
      note("report: wrote \(files.count) files to \(out)")
    } catch { fail("\(error)") }
  }
}

extension ReportCommand {
  /// The seven files from the voted stream alone, as of the voter's latest streamed seq.
  func reportFromStream(_ c: ClusterConfig) throws {
    guard let referenceDir = cluster.referenceDir(c) else {
      fail("give --reference (or set reference in the config)", code: 64)
    }
    let reference: ReferenceData
    do { reference = try FileIO.loadReference(referenceDir) } catch { fail("\(error)", code: 2) }
    let context = makeContext()
    guard
      let streamed = ControlClient.status(
        VoterStatus.self, context: context, endpoint: c.voterControl, timeoutMs: 2_000, curve: c.curve)?
        .streamedThrough
    else { fail("the voter does not answer at \(c.voterControl)") }
    let scratch = out + "/.report-stream"
    try? FileManager.default.removeItem(atPath: scratch)
    do {
      let follower = try Follower(
        config: c, reference: reference, out: scratch, exitAtSeq: streamed, log: { _ in })
      let deadline = ContinuousClock.now + .seconds(timeout)
      try follower.run(context: context) { ContinuousClock.now > deadline }
      guard follower.next > streamed else { fail("timed out at seq \(follower.next - 1) of \(streamed)") }
      try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
      for name in ReportWriter.fileNames + ["as_of_seq"] {
        try? FileManager.default.removeItem(atPath: out + "/" + name)
        try FileManager.default.moveItem(atPath: scratch + "/" + name, toPath: out + "/" + name)
      }
      try? FileManager.default.removeItem(atPath: scratch)
      note("report: wrote the seven files to \(out) from the voted stream, as of seq \(streamed)")
    } catch { fail("\(error)", code: 3) }
  }
}

struct ClusterRun: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "run", abstract: "up, submit, report, down: one command from event files to voted outputs.")
  @OptionGroup var cluster: ClusterOptions
  @Option(name: .long, help: "Output folder.")
  var out: String
  @Argument(help: "Event files.")
  var events: [String]

  func run() throws {
    let c = cluster.load()
    guard cluster.referenceDir(c) != nil else {
      fail("give --reference (or set reference in the config)", code: 64)
    }
    let sup = cluster.supervisor(c)
    let context = makeContext()
    do {
      let extra = Dictionary(uniqueKeysWithValues: sup.nodes.map { ($0.name, cluster.nodeArguments()) })
      _ = try sup.up(context: context, extraArguments: extra)
      var files: [[UInt8]] = []
      for path in events { files.append(try FileIO.read(path)) }
      let r = try Submitter.submit(
        context: context, ingest: c.ingest, files: files, clientId: Submitter.contentClientId(files),
        curve: c.curve
      ) { note("submit: " + $0) }
      note("cluster run: \(r.events) events journaled")
      let report = try Reporter.report(context: context, config: c) { note("report: " + $0) }
      try FileIO.writeFolder(out, files: report)
      note("cluster run: wrote \(report.count) files to \(out)")
    } catch {
      _ = sup.down()
      fail("\(error)")
    }
    _ = sup.down()
  }
}

/// The node roles, run in the foreground (what `cluster up` starts; also for systemd).
struct NodeOptions: ParsableArguments {
  @OptionGroup var cluster: ClusterOptions
  @Option(name: .long, help: "Replica id (replica only).")
  var id: String?
}

struct SequencerCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "sequencer",
    abstract: "Run the sequencer in the foreground (SIGTERM/SIGINT: graceful stop, exit 0).")
  @OptionGroup var node: NodeOptions
  func run() async throws {
    let c = node.cluster.load()
    let data = node.cluster.dataDir(c)
    let options = NodeRunner.Options(node: "sequencer", role: "sequencer", config: c, data: data)
    let log = bootstrapNode(options)
    Supervisor.writePidFile(data: data, name: "sequencer")
    do {
      try await NodeRunner.run(options, logger: log) { probe in
        let s = try Sequencer(config: c, dataDir: data + "/sequencer", log: log)
        let metrics = SequencerMetrics()
        metrics.attach(to: s)
        log.info("\(NodeHeap.reserve(bytes: c.heapReserveMiB << 20).text)")
        try s.run(context: makeContext(), stop: { probe.tick { metrics.sample(s) } })
        log.info("sequencer: stopped at journal seq \(s.lastSeq)", metadata: ["seq": "\(s.lastSeq)"])
      }
    } catch { log.error("\(error)"); throw ExitCode(1) }
  }
}

struct ReplicaCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "replica",
    abstract: "Run one replica in the foreground (SIGTERM/SIGINT: commit, graceful stop, exit 0).")
  @OptionGroup var node: NodeOptions
  @Flag(name: .long, help: "Fault injection: flip a bit of the state digest in every vote (tests, chaos).")
  var flipDigestBit = false
  func run() async throws {
    let c = node.cluster.load()
    guard let id = node.id, let index = c.replicaIndex(id) else {
      fail("give --id with one of: \(c.replicas.map(\.id).joined(separator: ", "))", code: 64)
    }
    guard let refDir = node.cluster.referenceDir(c) else { fail("give --reference", code: 64) }
    let data = node.cluster.dataDir(c)
    let options = NodeRunner.Options(node: id, role: "replica", config: c, data: data)
    let log = bootstrapNode(options)
    Supervisor.writePidFile(data: data, name: id)
    let faults = ReplicaFaults(flipDigestBit: flipDigestBit)
    do {
      try await NodeRunner.run(options, logger: log) { probe in
        let reference = try FileIO.loadReference(refDir)
        let r = try Replica(
          config: c, index: index, dataDir: data + "/" + id, reference: reference, faults: faults, log: log)
        let metrics = ReplicaMetrics()
        metrics.attach(to: r)
        log.info("\(NodeHeap.reserve(bytes: c.heapReserveMiB << 20).text)")
        try r.run(context: makeContext(), stop: { probe.tick { metrics.sample(r) } })
        try r.commitOnShutdown()
        log.info(
          "replica \(id): stopped; state committed at seq \(r.appliedSeq)",
          metadata: ["seq": "\(r.appliedSeq)"])
      }
    } catch { log.error("\(error)"); throw ExitCode(1) }
  }
}

struct VoterCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "voter", abstract: "Run the voter in the foreground (SIGTERM/SIGINT: graceful stop, exit 0)."
  )
  @OptionGroup var node: NodeOptions
  func run() async throws {
    let c = node.cluster.load()
    let data = node.cluster.dataDir(c)
    let options = NodeRunner.Options(node: "voter", role: "voter", config: c, data: data)
    let log = bootstrapNode(options)
    Supervisor.writePidFile(data: data, name: "voter")
    do {
      try await NodeRunner.run(options, logger: log) { probe in
        let v = try Voter(config: c, dataDir: data + "/voter", alertsPath: data + "/alerts.jsonl", log: log)
        // Names for the rows a DISSENT shows (the records name them by id).
        v.explainReference = node.cluster.referenceDir(c)
        let metrics = VoterMetrics(replicaIds: c.replicas.map(\.id))
        metrics.attach(to: v)
        log.info("\(NodeHeap.reserve(bytes: c.heapReserveMiB << 20).text)")
        try v.run(context: makeContext(), stop: { probe.tick { metrics.sample(v) } })
        log.info(
          "voter: stopped; decided through seq \(v.core.watermark - 1)",
          metadata: ["seq": "\(v.core.watermark - 1)"])
      }
    } catch { log.error("\(error)"); throw ExitCode(1) }
  }
}

/// Logging and metrics for a node process; a log folder that cannot be written is fatal.
func bootstrapNode(_ options: NodeRunner.Options) -> Logger {
  do { return try NodeRunner.bootstrap(options) } catch { fail("\(error)", code: 3) }
}
