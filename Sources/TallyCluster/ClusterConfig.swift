// Cluster configuration (Config/*.toml), decoded with TOMLKit into typed structs
// after a schema check (TOMLFile.swift): an unknown table or key, a value of the
// wrong kind, an unknown kernel or a value out of range is refused with the file,
// the line when known, and what is allowed.
import Foundation
import RocksDBStore
import TallyEngine

public struct ClusterConfig: Sendable, Equatable {
  public struct Replica: Sendable, Equatable {
    public var id: String
    public var kernel: String
    /// The port of this replica's HTTP endpoints (`/metrics`, `/health`, `/ready`);
    /// `base_port + 60 + index` when the config names none.
    public var metricsPort: Int? = nil
    /// Where this replica runs (`host`, `bind`) and its control port (`control_port`);
    /// the cluster's host and `base_port + 10 + index` when the config names none.
    public var address = NodeAddress()
    public var controlPort: Int? = nil

    public init(id: String, kernel: String, metricsPort: Int? = nil) {
      self.id = id
      self.kernel = kernel
      self.metricsPort = metricsPort
    }
  }

  /// `[sequencer]`: where the sequencer runs and its ports (defaults: the cluster's
  /// host; ingest `base_port`, fetch `+ 1`, control `+ 2`).
  public struct SequencerNode: Sendable, Equatable {
    public var address = NodeAddress()
    public var ingestPort: Int? = nil
    public var fetchPort: Int? = nil
    public var controlPort: Int? = nil
    public init() {}
  }

  /// `[voter]`: where the voter runs and its ports (defaults: the cluster's host;
  /// collect `base_port + 3`, control `+ 4`, publish `+ 5`, stream `+ 8`, replay `+ 9`).
  public struct VoterNode: Sendable, Equatable {
    public var address = NodeAddress()
    public var collectPort: Int? = nil
    public var controlPort: Int? = nil
    public var publishPort: Int? = nil
    public var streamPort: Int? = nil
    public var streamReplayPort: Int? = nil
    public init() {}
  }

  public var name: String
  /// Default data folder (pid files, logs, node state), relative to the working directory.
  public var data: String
  /// Default reference folder, if the config names one.
  public var reference: String?
  /// The default address of every node (`[cluster] host`); a node's own `host` in
  /// `[sequencer]`, `[voter]` or its `[[replica]]` overrides it (NodeAddresses.swift).
  public var host: String
  public var basePort: Int
  public var replicas: [Replica]
  public var sequencer = SequencerNode()
  public var voter = VoterNode()
  /// Events per commit batch and limits.
  public var fetchBatchesMax: Int
  public var heartbeatMs: Int
  /// Repairs of one replica before it stays quarantined for an operator.
  public var repairsMax: Int
  /// Replicas commit (their input log, votes and effect records) when a journal batch
  /// crosses a multiple of this many seqs (the same places on every replica).
  public var checkpointEvents: Int = 50_000
  /// Replicas snapshot their state and vote on its digest when a journal batch crosses
  /// a multiple of this many seqs; `checkpoint_events` when not set. A digest costs a
  /// snapshot (the rows changed since the last one, and the whole state hashed), so
  /// large clusters set it to a million or more; divergent business results are
  /// caught at every batch by the effects digest.
  public var digestEvents: Int = 50_000
  /// Events a replica reserves room for past its position when it opens its state (what
  /// it applies until its next restart: a replica that stays up across days fills it
  /// with every day's events): the kernel's tables (trades, lots, positions) are
  /// allocated for them at once. Room not written is address space only. A table that
  /// outgrows its room doubles, and the copy into fresh pages stalls that batch: 180-380 ms at about
  /// 800k events on the 1M-event day, on both V1 replicas at once, which made the
  /// ingest→voted p99 (docs/PERFORMANCE.md, eighth session).
  public var reserveEvents: Int = reserveEventsDefault
  public static let reserveEventsDefault = 2_000_000
  /// `[limits] recent_effects_mib`: the effect records a replica keeps in memory for the
  /// voter to stream (`ReplicaCore.Settings.recentEffectsBytesMax`). Records that leave
  /// memory before the voter has streamed them are written to the replica's RocksDB. At
  /// 256 MiB the replicas of a 4M-event day wrote ~300 MB each (13 flushes) and the
  /// cluster voted 197,000-254,000 events/s; at 1 GiB they wrote none and it voted
  /// 325,000-347,000 (docs/PERFORMANCE.md, ninth session). Memory per replica, at most.
  public var recentEffectsMiB: Int = ReplicaCore<DurableBatchApplier>.recentEffectsBytesMaxDefault >> 20
  /// `[limits] heap_reserve_mib`: heap each node process (sequencer, replica, voter)
  /// makes resident and frees once its state is open, before it answers, for its
  /// batches to reuse (the tally executable's NodeHeap.swift): about a node's heap
  /// high-water mark over a day, so that no batch waits for fresh pages (~214,000 page
  /// faults in the five nodes while the 1M-event day voted without it, ~39,000 with it;
  /// docs/PERFORMANCE.md, thirty-second session). Resident memory per node from the
  /// start, and 0.2-0.4 s of a core before the node answers; 0 turns it off.
  public var heapReserveMiB: Int = heapReserveMiBDefault
  public static let heapReserveMiBDefault = 192
  /// The values `heap_reserve_mib` (and `cluster bench-replica --heap-reserve-mib`) take.
  public static let heapReserveMiBRange = 0...1_048_576
  /// `[sequencer] journal_compression`: how the journal's SST files are compressed. None
  /// by default: the journal is written once and read back while recent (from the
  /// memtable), and on two cores the CPU LZ4 took at flush and compaction was worth
  /// more than the disk it saved (the 4M-event day voted 5-9% faster without,
  /// docs/PERFORMANCE.md, ninth session). A journal kept for long may want `lz4` or `zstd`.
  public var journalCompression: RocksDBOptions.Compression = .none
  /// `[sequencer] journal_flush_mib_per_s`: the pace of the journal's memtable flushes
  /// and compactions, MiB/s (0: unpaced). Every ack waits on an fsync of the journal's
  /// WAL; a 64 MiB memtable flushed at the disk's full speed made those fsyncs wait
  /// 40-160 ms behind it once every ~750,000 events, 15-16 batches over 20 ms in a paced
  /// run at 100,000 events/s (p99 42-69 ms in 9 runs of 9); paced at 32-64 MiB/s, 17
  /// runs of 30 met a 20 ms p99 (10-19 ms) and the rest missed on the disk's own stalls
  /// (docs/PERFORMANCE.md, seventeenth session). 64 is twice the journal's write rate at
  /// the cluster's full speed (~380,000 events/s of ~85 bytes); a pace below the
  /// journal's sustained rate makes RocksDB stop the sequencer's writes whenever its three
  /// memtables are full (`tally_sequencer_journal_write_stall_seconds` shows it).
  public var journalFlushMiBPerSecond: Int = ClusterConfig.journalFlushMiBPerSecondDefault
  public static let journalFlushMiBPerSecondDefault = 64
  /// Where replicas connect to fetch journal batches and to send votes; by default the
  /// sequencer's and the voter's own endpoints. A fault-injection proxy (Chaos/) sits
  /// in between by binding these and forwarding to the real ones.
  public var replicaFetchVia: String? = nil
  public var replicaVotesVia: String? = nil
  public var replicaFetchEndpoint: String { replicaFetchVia ?? sequencerFetch }
  public var replicaVotesEndpoint: String { replicaVotesVia ?? voterCollect }

  /// CurveZMQ keys for every link, when the config names a key folder.
  public var curve: CurveKeys? = nil

  public var quorum: Int { replicas.count / 2 + 1 }

  public func replicaIndex(_ id: String) -> Int? { replicas.firstIndex { $0.id == id } }

  /// Operations: the HTTP endpoints and the log files.
  public var ops = Ops()

  public struct Ops: Sendable, Equatable {
    /// Address the nodes' HTTP endpoints listen on (`[metrics] host`); the cluster's host by default.
    public var metricsHost: String? = nil
    /// Serve `/metrics`, `/health`, `/ready` (`[metrics] enabled`, true by default).
    public var metricsEnabled = true
    public var sequencerMetricsPort: Int? = nil
    public var voterMetricsPort: Int? = nil
    /// `file`: `<data>/<node>.log`, rotated at `logBytesMax`; `stderr`: for journald.
    public var logTarget = "file"
    public var logBytesMax = 64 << 20
    public var logFilesKept = 3
    /// How long a node may take to finish its batch, commit and close on SIGTERM/SIGINT.
    public var shutdownGraceMs = 5_000
    public init() {}
  }

  /// Where a node serves `/metrics`, `/health` and `/ready`: `(host, port)`.
  /// Defaults: sequencer `base_port + 50`, voter `base_port + 51`, replica i `base_port + 60 + i`.
  public func metricsAddress(node: String) -> (host: String, port: Int) {
    let host = ops.metricsHost ?? bindHost(node: node)
    switch node {
    case "sequencer": return (host, ops.sequencerMetricsPort ?? basePort + 50)
    case "voter": return (host, ops.voterMetricsPort ?? basePort + 51)
    default:
      let i = replicaIndex(node) ?? 0
      return (host, replicas[i].metricsPort ?? basePort + 60 + i)
    }
  }

  public func metricsURL(node: String) -> String {
    let a = metricsAddress(node: node)
    let host = ops.metricsHost ?? self.host(node: node)
    return "http://\(host):\(a.port)/metrics"
  }

  public static func load(_ path: String) throws(ConfigError) -> ClusterConfig {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw ConfigError("\(path): cannot read the config file")
    }
    return try parse(String(decoding: data, as: UTF8.self), file: path)
  }

  static let schema = TOMLSchema([
    .init(
      "cluster",
      keys: [
        ("name", .string), ("data", .string), ("reference", .string), ("host", .string),
        ("base_port", .integer),
      ]),
    .init(
      "limits",
      keys: [
        ("fetch_batches_max", .integer), ("heartbeat_ms", .integer), ("checkpoint_events", .integer),
        ("digest_events", .integer), ("repairs_max", .integer), ("shutdown_grace_ms", .integer),
        ("reserve_events", .integer), ("recent_effects_mib", .integer), ("heap_reserve_mib", .integer),
      ]),
    .init("security", keys: [("keys", .string)]),
    .init("links", keys: [("replica_fetch_via", .string), ("replica_votes_via", .string)]),
    .init(
      "metrics",
      keys: [("enabled", .bool), ("host", .string), ("sequencer_port", .integer), ("voter_port", .integer)]),
    .init(
      "logs",
      keys: [
        ("target", .string), ("file_bytes_max", .integer), ("files_kept", .integer),
      ]),
    .init(
      "sequencer",
      keys: [
        ("host", .string), ("bind", .string), ("ingest_port", .integer), ("fetch_port", .integer),
        ("control_port", .integer), ("journal_compression", .string), ("journal_flush_mib_per_s", .integer),
      ]),
    .init(
      "voter",
      keys: [
        ("host", .string), ("bind", .string), ("collect_port", .integer), ("control_port", .integer),
        ("publish_port", .integer), ("stream_port", .integer), ("stream_replay_port", .integer),
      ]),
    .init(
      "replica", array: true,
      keys: [
        ("id", .string), ("kernel", .string), ("metrics_port", .integer), ("host", .string),
        ("bind", .string),
        ("control_port", .integer),
      ]),
  ])

  /// The file as written: every key optional, defaults applied after.
  struct File: Decodable {
    struct Cluster: Decodable {
      var name, data, reference, host: String?
      var base_port: Int?
    }
    struct Limits: Decodable {
      var fetch_batches_max, heartbeat_ms, checkpoint_events, digest_events, repairs_max,
        shutdown_grace_ms, reserve_events, recent_effects_mib, heap_reserve_mib: Int?
    }
    struct Security: Decodable { var keys: String? }
    struct Links: Decodable { var replica_fetch_via, replica_votes_via: String? }
    struct Metrics: Decodable {
      var enabled: Bool?
      var host: String?
      var sequencer_port, voter_port: Int?
    }
    struct Logs: Decodable {
      var target: String?
      var file_bytes_max, files_kept: Int?
    }
    struct Replica: Decodable {
      var id, kernel, host, bind: String?
      var metrics_port, control_port: Int?
    }
    struct Sequencer: Decodable {
      var host, bind, journal_compression: String?
      var ingest_port, fetch_port, control_port, journal_flush_mib_per_s: Int?
    }
    struct Voter: Decodable {
      var host, bind: String?
      var collect_port, control_port, publish_port, stream_port, stream_replay_port: Int?
    }
    var cluster: Cluster?
    var limits: Limits?
    var security: Security?
    var links: Links?
    var metrics: Metrics?
    var logs: Logs?
    var replica: [Replica]?
    var sequencer: Sequencer?
    var voter: Voter?
  }

  public static func parse(_ text: String, file: String) throws(ConfigError) -> ClusterConfig {
    let toml = try TOMLFile(text: text, file: file)
    try toml.check(schema)
    let f = try toml.decode(File.self)
    func at(_ table: String, _ key: String, _ element: Int? = nil) -> String {
      toml.place(toml.line(table: table, element: element, key: key))
    }
    var replicas: [Replica] = []
    for (i, r) in (f.replica ?? []).enumerated() {
      guard let id = r.id, !id.isEmpty,
        id.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
      else {
        throw ConfigError(
          "\(toml.place(toml.line(table: "replica", element: i))) replica \(i + 1) needs an id of letters, digits, - or _"
        )
      }
      guard id != "sequencer" && id != "voter" else {
        throw ConfigError(
          "\(at("replica", "id", i)) replica id \(id) is a node name (not allowed: sequencer, voter)")
      }
      guard !replicas.contains(where: { $0.id == id }) else {
        throw ConfigError("\(at("replica", "id", i)) replica id \(id) repeats")
      }
      let kernel = r.kernel ?? "v1"
      guard KernelCatalog.names.contains(kernel) else {
        throw ConfigError(
          "\(at("replica", "kernel", i)) replica \(id): unknown kernel '\(kernel)' (allowed: \(KernelCatalog.names.joined(separator: ", ")))"
        )
      }
      var replica = Replica(id: id, kernel: kernel, metricsPort: r.metrics_port)
      replica.address = NodeAddress(host: r.host, bind: r.bind)
      replica.controlPort = r.control_port
      replicas.append(replica)
    }
    guard !replicas.isEmpty else { throw ConfigError("\(file): at least one [[replica]] is needed") }
    let cluster = f.cluster
    let limits = f.limits
    var config = ClusterConfig(
      name: cluster?.name ?? "tally", data: cluster?.data ?? ".tally/data", reference: cluster?.reference,
      host: cluster?.host ?? "127.0.0.1", basePort: cluster?.base_port ?? 7100, replicas: replicas,
      fetchBatchesMax: limits?.fetch_batches_max ?? 16, heartbeatMs: limits?.heartbeat_ms ?? 500,
      repairsMax: limits?.repairs_max ?? 3)
    config.checkpointEvents = limits?.checkpoint_events ?? 50_000
    config.digestEvents = limits?.digest_events ?? config.checkpointEvents
    config.reserveEvents = limits?.reserve_events ?? config.reserveEvents
    config.recentEffectsMiB = limits?.recent_effects_mib ?? config.recentEffectsMiB
    config.heapReserveMiB = limits?.heap_reserve_mib ?? config.heapReserveMiB
    if let c = f.sequencer?.journal_compression {
      guard let value = RocksDBOptions.Compression(rawValue: c) else {
        throw ConfigError(
          "\(at("sequencer", "journal_compression")) [sequencer] journal_compression = \"\(c)\" is not a compression (allowed: \(RocksDBOptions.Compression.names))"
        )
      }
      config.journalCompression = value
    }
    config.journalFlushMiBPerSecond = f.sequencer?.journal_flush_mib_per_s ?? config.journalFlushMiBPerSecond
    config.replicaFetchVia = f.links?.replica_fetch_via
    config.replicaVotesVia = f.links?.replica_votes_via
    func positive(_ v: Int, _ table: String, _ key: String, _ range: ClosedRange<Int>) throws(ConfigError) {
      guard range.contains(v) else {
        throw ConfigError(
          "\(at(table, key)) [\(table)] \(key) = \(v) is out of range (allowed: \(range.lowerBound)...\(range.upperBound))"
        )
      }
    }
    try positive(config.checkpointEvents, "limits", "checkpoint_events", 1...1_000_000_000)
    try positive(config.digestEvents, "limits", "digest_events", 1...1_000_000_000_000)
    try positive(config.reserveEvents, "limits", "reserve_events", 0...100_000_000)
    try positive(config.recentEffectsMiB, "limits", "recent_effects_mib", 1...1_048_576)
    try positive(config.heapReserveMiB, "limits", "heap_reserve_mib", heapReserveMiBRange)
    try positive(config.fetchBatchesMax, "limits", "fetch_batches_max", 1...1_024)
    try positive(config.heartbeatMs, "limits", "heartbeat_ms", 10...60_000)
    try positive(config.repairsMax, "limits", "repairs_max", 0...1_000)
    try positive(config.journalFlushMiBPerSecond, "sequencer", "journal_flush_mib_per_s", 0...65_536)
    config.ops.shutdownGraceMs = limits?.shutdown_grace_ms ?? config.ops.shutdownGraceMs
    try positive(config.ops.shutdownGraceMs, "limits", "shutdown_grace_ms", 100...600_000)
    guard config.basePort > 0 && config.basePort + 60 + replicas.count < 65536 else {
      throw ConfigError(
        "\(at("cluster", "base_port")) base_port \(config.basePort) leaves no room for the cluster's ports (allowed: 1...\(65535 - 60 - replicas.count))"
      )
    }
    if let m = f.metrics {
      config.ops.metricsEnabled = m.enabled ?? true
      config.ops.metricsHost = m.host
      config.ops.sequencerMetricsPort = m.sequencer_port
      config.ops.voterMetricsPort = m.voter_port
      if let p = m.sequencer_port { try positive(p, "metrics", "sequencer_port", 1...65_535) }
      if let p = m.voter_port { try positive(p, "metrics", "voter_port", 1...65_535) }
    }
    for (i, r) in replicas.enumerated() {
      if let p = r.metricsPort, !(1...65_535).contains(p) {
        throw ConfigError(
          "\(at("replica", "metrics_port", i)) metrics_port \(p) is out of range (allowed: 1...65535)")
      }
    }
    if let l = f.logs {
      config.ops.logTarget = l.target ?? "file"
      guard ["file", "stderr"].contains(config.ops.logTarget) else {
        throw ConfigError(
          "\(at("logs", "target")) [logs] target = \"\(config.ops.logTarget)\" (allowed: \"file\", \"stderr\")"
        )
      }
      config.ops.logBytesMax = l.file_bytes_max ?? config.ops.logBytesMax
      config.ops.logFilesKept = l.files_kept ?? config.ops.logFilesKept
      try positive(config.ops.logBytesMax, "logs", "file_bytes_max", 4_096...(1 << 40))
      try positive(config.ops.logFilesKept, "logs", "files_kept", 1...100)
    }
    try config.parseNodes(f, toml: toml)
    if let keys = f.security?.keys, !keys.isEmpty {
      config.curve = try CurveKeys.load(keys)
    }
    return config
  }
}

public struct ConfigError: Error, CustomStringConvertible, Sendable {
  public var description: String
  public init(_ description: String) { self.description = description }
}
