// A chaos scenario (Chaos/scenarios/*.toml): the market, the cluster, the client's
// pace, and which faults to inject how often.
import Foundation

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

  public static func parse(_ text: String, file: String) throws(ScenarioError) -> Scenario {
    let doc = try MiniTOML.parse(text, file: file)
    for name in doc.tables.keys.sorted()
    where !["scenario", "market", "submit", "faults", "links"].contains(name) {
      throw ScenarioError(
        "\(file): unknown table [\(name)] (known: [scenario], [market], [submit], [faults], [links], [[replica]])"
      )
    }
    for name in doc.arrays.keys.sorted() where name != "replica" {
      throw ScenarioError("\(file): unknown array [[\(name)]] (known: [[replica]])")
    }
    var s = Scenario()
    var t = TableReader(file: file, name: "scenario", entries: doc.tables["scenario"])
    s.name = try t.string("name", s.name)
    s.seed = UInt64(max(0, try t.int("seed", Int(s.seed))))
    s.durationSeconds = try t.int("duration_s", s.durationSeconds)
    s.settleSeconds = try t.int("settle_s", s.settleSeconds)
    s.basePort = try t.int("base_port", s.basePort)
    try t.finish()
    var m = TableReader(file: file, name: "market", entries: doc.tables["market"])
    s.days = try m.int("days", s.days)
    s.tradesPerDay = try m.int("trades_per_day", s.tradesPerDay)
    s.accounts = try m.int("accounts", s.accounts)
    s.securities = try m.int("securities", s.securities)
    s.participants = try m.int("participants", s.participants)
    try m.finish()
    var u = TableReader(file: file, name: "submit", entries: doc.tables["submit"])
    s.batchLines = try u.int("batch_lines", s.batchLines)
    s.submitPauseMs = try u.int("pause_ms", s.submitPauseMs)
    s.submitWindow = try u.int("window", s.submitWindow)
    try u.finish()
    var f = TableReader(file: file, name: "faults", entries: doc.tables["faults"])
    s.intervalMsMin = try f.int("interval_ms_min", s.intervalMsMin)
    s.intervalMsMax = try f.int("interval_ms_max", s.intervalMsMax)
    s.killReplica = try f.bool("kill_replica", s.killReplica)
    s.killVoter = try f.bool("kill_voter", s.killVoter)
    s.killSequencer = try f.bool("kill_sequencer", s.killSequencer)
    s.downMsMax = try f.int("down_ms_max", s.downMsMax)
    s.freezeReplica = try f.bool("freeze_replica", s.freezeReplica)
    s.freezeMsMax = try f.int("freeze_ms_max", s.freezeMsMax)
    s.wipeReplica = try f.bool("wipe_replica", s.wipeReplica)
    s.fullRestart = try f.bool("full_restart", s.fullRestart)
    s.byzantine = try f.string("byzantine", s.byzantine)
    s.byzantineReplica = try f.string("byzantine_replica", s.byzantineReplica)
    s.faultsMax = try f.int("faults_max", s.faultsMax)
    try f.finish()
    var l = TableReader(file: file, name: "links", entries: doc.tables["links"])
    s.links.votes = LinkFaults(
      drop: try l.number("votes_drop", 0), dup: try l.number("votes_dup", 0),
      delay: try l.number("votes_delay", 0),
      delayMsMax: try l.int("votes_delay_ms", 200))
    s.links.fetchReplies = LinkFaults(
      drop: try l.number("fetch_drop", 0), dup: try l.number("fetch_dup", 0),
      delay: try l.number("fetch_delay", 0),
      delayMsMax: try l.int("fetch_delay_ms", 200))
    s.links.fetchRequests = LinkFaults(
      drop: try l.number("fetch_request_drop", 0), dup: try l.number("fetch_request_dup", 0),
      delay: try l.number("fetch_request_delay", 0), delayMsMax: s.links.fetchReplies.delayMsMax)
    try l.finish()
    for (name, f) in [
      ("votes", s.links.votes), ("fetch", s.links.fetchReplies), ("fetch_request", s.links.fetchRequests),
    ] {
      guard [f.drop, f.dup, f.delay].allSatisfy({ $0 >= 0 && $0 < 1 }) && f.drop <= 0.5 else {
        throw ScenarioError(
          "\(file): [links] \(name)_drop must be 0...0.5, \(name)_dup and \(name)_delay 0...<1")
      }
      guard f.delayMsMax >= 0 && f.delayMsMax <= 10_000 else {
        throw ScenarioError("\(file): [links] \(name)_delay_ms must be 0...10000")
      }
    }
    if let rs = doc.arrays["replica"] {
      s.replicas = []
      for (i, entries) in rs.enumerated() {
        var r = TableReader(file: file, name: "replica \(i + 1)", entries: entries)
        let id = try r.string("id", "")
        let kernel = try r.string("kernel", "v1")
        try r.finish()
        guard !id.isEmpty, !s.replicas.contains(where: { $0.id == id }) else {
          throw ScenarioError("\(file): replica \(i + 1) needs a unique id")
        }
        s.replicas.append(ReplicaSpec(id: id, kernel: kernel))
      }
    }
    guard s.basePort >= 1024 && s.basePort + 10 + s.replicas.count < 65_536 else {
      throw ScenarioError("\(file): base_port \(s.basePort) is out of range")
    }
    guard s.intervalMsMin >= 1 && s.intervalMsMax >= s.intervalMsMin else {
      throw ScenarioError("\(file): need 1 ≤ interval_ms_min ≤ interval_ms_max")
    }
    guard s.batchLines >= 1 && s.batchLines <= 100_000 && s.submitWindow >= 1 else {
      throw ScenarioError("\(file): batch_lines must be 1...100000 and window at least 1")
    }
    guard ["", "flip", "v1-faulty"].contains(s.byzantine) else {
      throw ScenarioError("\(file): byzantine must be \"\", \"flip\" or \"v1-faulty\"")
    }
    if !s.byzantine.isEmpty {
      if s.byzantineReplica.isEmpty { s.byzantineReplica = s.replicas.last!.id }
      guard s.replicas.contains(where: { $0.id == s.byzantineReplica }) else {
        throw ScenarioError("\(file): byzantine_replica \(s.byzantineReplica) is not a replica")
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
    return k
  }
}
