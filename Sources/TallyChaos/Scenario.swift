// A chaos scenario (Chaos/scenarios/*.toml): the market, the cluster, the client's
// pace, and which faults to inject how often. Decoded with TOMLKit after the same
// schema check as cluster configs (TallyCluster's TOMLFile).
import Foundation
import TallyCluster
import TallyEngine

public struct ScenarioError: Error, CustomStringConvertible, Sendable {
  public var description: String
  public init(_ description: String) { self.description = description }
}

public struct Scenario: Sendable {
  public struct ReplicaSpec: Sendable {
    public var id: String
    public var kernel: String
  }

  public var name = "chaos"
  public var seed: UInt64 = 1
  /// Faults are injected for this long (wall clock), then the cluster is healed and checked.
  public var durationSeconds = 30
  /// How long the healed cluster gets to decide everything and produce the report.
  public var settleSeconds = 300
  public var basePort = 18_100

  public var days = 2
  public var tradesPerDay = 1_000
  public var accounts = 200
  public var securities = 10
  public var participants = 4

  public var batchLines = 200
  public var submitPauseMs = 50
  public var submitWindow = 1

  public var intervalMsMin = 500
  public var intervalMsMax = 2_000
  public var killReplica = false
  public var killVoter = false
  public var killSequencer = false
  public var downMsMax = 1_000
  public var freezeReplica = false
  public var freezeMsMax = 3_000
  public var wipeReplica = false
  public var fullRestart = false
  /// "" (none), "flip" (a replica started with --flip-digest-bit) or a kernel name ("v1-faulty").
  public var byzantine = ""
  public var byzantineReplica = ""
  /// Stop injecting after this many faults (0: until the duration is over).
  public var faultsMax = 0
  /// Lost, duplicated and delayed messages on the replicas' links (`[links]`), through a
  /// `LinkProxy` for the fault window; healed when the window ends.
  public var links = LinkProxy.Rates()
  /// `[netns]`: every node in its own network namespace with its own address in
  /// `<subnet>.0/24` (root needed), and the partition faults below.
  public var netns = false
  public var netnsSubnet = "10.231.1"
  /// A replica's link down; the voter cut from one replica; the sequencer's link down.
  public var partitionReplica = false
  public var partitionVoterReplica = false
  public var partitionSequencer = false
  public var partitionMsMax = 3_000

  public var replicas: [ReplicaSpec] = [
    ReplicaSpec(id: "r1", kernel: "v1"), ReplicaSpec(id: "r2", kernel: "v2"),
    ReplicaSpec(id: "r3", kernel: "v1"),
  ]

  public init() {}

  public static func load(_ path: String) throws(ScenarioError) -> Scenario {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw ScenarioError("\(path): cannot read the scenario file")
    }
    return try parse(String(decoding: data, as: UTF8.self), file: path)
  }

  static let schema = TOMLSchema([
    .init(
      "scenario",
      keys: [
        ("name", .string), ("seed", .integer), ("duration_s", .integer), ("settle_s", .integer),
        ("base_port", .integer),
      ]),
    .init(
      "market",
      keys: [
        ("days", .integer), ("trades_per_day", .integer), ("accounts", .integer), ("securities", .integer),
        ("participants", .integer),
      ]),
    .init("submit", keys: [("batch_lines", .integer), ("pause_ms", .integer), ("window", .integer)]),
    .init(
      "faults",
      keys: [
        ("interval_ms_min", .integer), ("interval_ms_max", .integer), ("kill_replica", .bool),
        ("kill_voter", .bool), ("kill_sequencer", .bool), ("down_ms_max", .integer),
        ("freeze_replica", .bool),
        ("freeze_ms_max", .integer), ("wipe_replica", .bool), ("full_restart", .bool), ("byzantine", .string),
        ("byzantine_replica", .string), ("faults_max", .integer), ("partition_replica", .bool),
        ("partition_voter_replica", .bool), ("partition_sequencer", .bool), ("partition_ms_max", .integer),
      ]),
    .init("netns", keys: [("enabled", .bool), ("subnet", .string)]),
    .init(
      "links",
      keys: [
        ("votes_drop", .number), ("votes_dup", .number), ("votes_delay", .number),
        ("votes_delay_ms", .integer),
        ("fetch_drop", .number), ("fetch_dup", .number), ("fetch_delay", .number),
        ("fetch_delay_ms", .integer),
        ("fetch_request_drop", .number), ("fetch_request_dup", .number), ("fetch_request_delay", .number),
      ]),
    .init("replica", array: true, keys: [("id", .string), ("kernel", .string)]),
  ])

  /// The file as written: every key optional, the defaults are `Scenario()`'s.
  struct File: Decodable {
    struct Head: Decodable {
      var name: String?
      var seed, duration_s, settle_s, base_port: Int?
    }
    struct Market: Decodable { var days, trades_per_day, accounts, securities, participants: Int? }
    struct Submit: Decodable { var batch_lines, pause_ms, window: Int? }
    struct Faults: Decodable {
      var interval_ms_min, interval_ms_max, down_ms_max, freeze_ms_max, faults_max: Int?
      var kill_replica, kill_voter, kill_sequencer, freeze_replica, wipe_replica, full_restart: Bool?
      var byzantine, byzantine_replica: String?
      var partition_replica, partition_voter_replica, partition_sequencer: Bool?
      var partition_ms_max: Int?
    }
    struct Netns: Decodable {
      var enabled: Bool?
      var subnet: String?
    }
    struct Links: Decodable {
      var votes_drop, votes_dup, votes_delay: TOMLNumber?
      var fetch_drop, fetch_dup, fetch_delay: TOMLNumber?
      var fetch_request_drop, fetch_request_dup, fetch_request_delay: TOMLNumber?
      var votes_delay_ms, fetch_delay_ms: Int?
    }
    struct Replica: Decodable { var id, kernel: String? }
    var scenario: Head?
    var market: Market?
    var submit: Submit?
    var faults: Faults?
    var links: Links?
    var netns: Netns?
    var replica: [Replica]?
  }

  public static func parse(_ text: String, file: String) throws(ScenarioError) -> Scenario {
    do {
      return try decode(text, file: file)
    } catch { throw ScenarioError(error.description) }
  }

  static func decode(_ text: String, file: String) throws(ConfigError) -> Scenario {
    let toml = try TOMLFile(text: text, file: file)
    try toml.check(schema)
    let doc = try toml.decode(File.self)
    func at(_ table: String, _ key: String) -> String { toml.place(toml.line(table: table, key: key)) }
    var s = Scenario()
    if let t = doc.scenario {
      s.name = t.name ?? s.name
      if let seed = t.seed {
        guard seed >= 0 else { throw ConfigError("\(at("scenario", "seed")) seed must be 0 or more") }
        s.seed = UInt64(seed)
      }
      s.durationSeconds = t.duration_s ?? s.durationSeconds
      s.settleSeconds = t.settle_s ?? s.settleSeconds
      s.basePort = t.base_port ?? s.basePort
    }
    if let m = doc.market {
      s.days = m.days ?? s.days
      s.tradesPerDay = m.trades_per_day ?? s.tradesPerDay
      s.accounts = m.accounts ?? s.accounts
      s.securities = m.securities ?? s.securities
      s.participants = m.participants ?? s.participants
    }
    if let u = doc.submit {
      s.batchLines = u.batch_lines ?? s.batchLines
      s.submitPauseMs = u.pause_ms ?? s.submitPauseMs
      s.submitWindow = u.window ?? s.submitWindow
    }
    if let f = doc.faults {
      s.intervalMsMin = f.interval_ms_min ?? s.intervalMsMin
      s.intervalMsMax = f.interval_ms_max ?? s.intervalMsMax
      s.killReplica = f.kill_replica ?? s.killReplica
      s.killVoter = f.kill_voter ?? s.killVoter
      s.killSequencer = f.kill_sequencer ?? s.killSequencer
      s.downMsMax = f.down_ms_max ?? s.downMsMax
      s.freezeReplica = f.freeze_replica ?? s.freezeReplica
      s.freezeMsMax = f.freeze_ms_max ?? s.freezeMsMax
      s.wipeReplica = f.wipe_replica ?? s.wipeReplica
      s.fullRestart = f.full_restart ?? s.fullRestart
      s.byzantine = f.byzantine ?? s.byzantine
      s.byzantineReplica = f.byzantine_replica ?? s.byzantineReplica
      s.faultsMax = f.faults_max ?? s.faultsMax
      s.partitionReplica = f.partition_replica ?? s.partitionReplica
      s.partitionVoterReplica = f.partition_voter_replica ?? s.partitionVoterReplica
      s.partitionSequencer = f.partition_sequencer ?? s.partitionSequencer
      s.partitionMsMax = f.partition_ms_max ?? s.partitionMsMax
    }
    if let n = doc.netns {
      s.netns = n.enabled ?? false
      s.netnsSubnet = n.subnet ?? s.netnsSubnet
      let octets = s.netnsSubnet.split(separator: ".", omittingEmptySubsequences: false)
      guard octets.count == 3, octets.allSatisfy({ UInt8($0) != nil }), octets[0] == "10" else {
        throw ConfigError(
          "\(at("netns", "subnet")) [netns] subnet = \"\(s.netnsSubnet)\" (allowed: three octets of a private 10.x.y network, e.g. \"10.231.1\")"
        )
      }
    }
    if (s.partitionReplica || s.partitionVoterReplica || s.partitionSequencer) && !s.netns {
      throw ConfigError("\(file): partition faults need [netns] enabled = true")
    }
    guard (100...60_000).contains(s.partitionMsMax) else {
      throw ConfigError("\(at("faults", "partition_ms_max")) partition_ms_max must be 100...60000")
    }
    let l = doc.links
    s.links.votes = LinkFaults(
      drop: l?.votes_drop?.value ?? 0, dup: l?.votes_dup?.value ?? 0, delay: l?.votes_delay?.value ?? 0,
      delayMsMax: l?.votes_delay_ms ?? 200)
    s.links.fetchReplies = LinkFaults(
      drop: l?.fetch_drop?.value ?? 0, dup: l?.fetch_dup?.value ?? 0, delay: l?.fetch_delay?.value ?? 0,
      delayMsMax: l?.fetch_delay_ms ?? 200)
    s.links.fetchRequests = LinkFaults(
      drop: l?.fetch_request_drop?.value ?? 0, dup: l?.fetch_request_dup?.value ?? 0,
      delay: l?.fetch_request_delay?.value ?? 0, delayMsMax: s.links.fetchReplies.delayMsMax)
    for (name, f) in [
      ("votes", s.links.votes), ("fetch", s.links.fetchReplies), ("fetch_request", s.links.fetchRequests),
    ] {
      guard [f.drop, f.dup, f.delay].allSatisfy({ $0 >= 0 && $0 < 1 }) && f.drop <= 0.5 else {
        throw ConfigError(
          "\(file): [links] \(name)_drop must be 0...0.5, \(name)_dup and \(name)_delay 0...<1")
      }
      guard f.delayMsMax >= 0 && f.delayMsMax <= 10_000 else {
        throw ConfigError("\(file): [links] \(name)_delay_ms must be 0...10000")
      }
    }
    if let rs = doc.replica {
      s.replicas = []
      for (i, r) in rs.enumerated() {
        let id = r.id ?? ""
        let kernel = r.kernel ?? "v1"
        guard !id.isEmpty, !s.replicas.contains(where: { $0.id == id }) else {
          throw ConfigError(
            "\(toml.place(toml.line(table: "replica", element: i))) replica \(i + 1) needs a unique id")
        }
        guard KernelCatalog.names.contains(kernel) else {
          throw ConfigError(
            "\(toml.place(toml.line(table: "replica", element: i, key: "kernel"))) replica \(id): unknown kernel '\(kernel)' (allowed: \(KernelCatalog.names.joined(separator: ", ")))"
          )
        }
        s.replicas.append(ReplicaSpec(id: id, kernel: kernel))
      }
    }
    guard s.basePort >= 1024 && s.basePort + 60 + s.replicas.count < 65_536 else {
      throw ConfigError("\(file): base_port \(s.basePort) is out of range")
    }
    guard s.intervalMsMin >= 1 && s.intervalMsMax >= s.intervalMsMin else {
      throw ConfigError("\(file): need 1 ≤ interval_ms_min ≤ interval_ms_max")
    }
    guard s.batchLines >= 1 && s.batchLines <= 100_000 && s.submitWindow >= 1 else {
      throw ConfigError("\(file): batch_lines must be 1...100000 and window at least 1")
    }
    guard ["", "flip", "v1-faulty"].contains(s.byzantine) else {
      throw ConfigError("\(file): byzantine must be \"\", \"flip\" or \"v1-faulty\"")
    }
    if !s.byzantine.isEmpty {
      if s.byzantineReplica.isEmpty { s.byzantineReplica = s.replicas.last!.id }
      guard s.replicas.contains(where: { $0.id == s.byzantineReplica }) else {
        throw ConfigError("\(file): byzantine_replica \(s.byzantineReplica) is not a replica")
      }
    }
    return s
  }

  /// Fault kinds this scenario injects at random moments.
  public var faultKinds: [String] {
    var k: [String] = []
    if killReplica { k.append("kill-replica") }
    if killVoter { k.append("kill-voter") }
    if killSequencer { k.append("kill-sequencer") }
    if freezeReplica { k.append("freeze-replica") }
    if wipeReplica { k.append("wipe-replica") }
    if fullRestart { k.append("full-restart") }
    if partitionReplica { k.append("partition-replica") }
    if partitionVoterReplica { k.append("partition-voter-replica") }
    if partitionSequencer { k.append("partition-sequencer") }
    return k
  }
}
