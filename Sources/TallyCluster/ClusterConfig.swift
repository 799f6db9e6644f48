// Cluster configuration (Config/local.toml). A small TOML subset is enough here:
// [tables], [[arrays of tables]], and key = "string" | integer | true/false.
import Foundation

public struct ClusterConfig: Sendable, Equatable {
  public struct Replica: Sendable, Equatable {
    public var id: String
    public var kernel: String
  }

  public var name: String
  /// Default data folder (pid files, logs, node state), relative to the working directory.
  public var data: String
  /// Default reference folder, if the config names one.
  public var reference: String?
  /// Endpoints are `tcp://host:port` with ports counted from `basePort`.
  public var host: String
  public var basePort: Int
  public var replicas: [Replica]
  /// Events per commit batch and limits.
  public var fetchBatchesMax: Int
  public var heartbeatMs: Int
  /// Repairs of one replica before it stays quarantined for an operator.
  public var repairsMax: Int
  /// Replicas commit their state, and vote on its digest, when a journal batch
  /// crosses a multiple of this many seqs (the same places on every replica).
  public var checkpointEvents: Int = 50_000
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

  public var ingest: String { "tcp://\(host):\(basePort)" }
  public var sequencerFetch: String { "tcp://\(host):\(basePort + 1)" }
  public var sequencerControl: String { "tcp://\(host):\(basePort + 2)" }
  public var voterCollect: String { "tcp://\(host):\(basePort + 3)" }
  public var voterControl: String { "tcp://\(host):\(basePort + 4)" }
  /// The voted output stream (PUB): one message per decided batch, in seq order.
  public var voterPublish: String { "tcp://\(host):\(basePort + 5)" }
  public func replicaControl(_ index: Int) -> String { "tcp://\(host):\(basePort + 10 + index)" }

  public func replicaIndex(_ id: String) -> Int? { replicas.firstIndex { $0.id == id } }

  public static func load(_ path: String) throws(ConfigError) -> ClusterConfig {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw ConfigError("\(path): cannot read the config file")
    }
    return try parse(String(decoding: data, as: UTF8.self), file: path)
  }

  public static func parse(_ text: String, file: String) throws(ConfigError) -> ClusterConfig {
    var tables: [String: [String: TOMLValue]] = [:]
    var replicaTables: [[String: TOMLValue]] = []
    var current = ""
    var inReplica = false
    for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      let line = stripComment(String(raw)).trimmingCharacters(in: .whitespaces)
      if line.isEmpty { continue }
      if line == "[[replica]]" {
        replicaTables.append([:])
        inReplica = true
        continue
      }
      if line.hasPrefix("[") && line.hasSuffix("]") {
        current = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
        guard ["cluster", "limits", "security", "links"].contains(current) else {
          throw ConfigError(
            "\(file):\(n + 1): unknown table [\(current)] (known: [cluster], [limits], [security], [links], [[replica]])"
          )
        }
        inReplica = false
        continue
      }
      guard let eq = line.firstIndex(of: "=") else {
        throw ConfigError("\(file):\(n + 1): expected key = value")
      }
      let key = line[..<eq].trimmingCharacters(in: .whitespaces)
      let valueText = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
      guard let value = TOMLValue(valueText) else {
        throw ConfigError(
          "\(file):\(n + 1): value of '\(key)' must be a \"string\", an integer or true/false")
      }
      if inReplica {
        replicaTables[replicaTables.count - 1][key] = value
      } else {
        guard !current.isEmpty else { throw ConfigError("\(file):\(n + 1): '\(key)' outside a table") }
        tables[current, default: [:]][key] = value
      }
    }
    let cluster = tables["cluster"] ?? [:]
    let limits = tables["limits"] ?? [:]
    func string(_ t: [String: TOMLValue], _ k: String, _ d: String?) throws(ConfigError) -> String? {
      guard let v = t[k] else { return d }
      guard case .string(let s) = v else { throw ConfigError("\(file): '\(k)' must be a string") }
      return s
    }
    func int(_ t: [String: TOMLValue], _ k: String, _ d: Int) throws(ConfigError) -> Int {
      guard let v = t[k] else { return d }
      guard case .integer(let i) = v else { throw ConfigError("\(file): '\(k)' must be an integer") }
      return i
    }
    var replicas: [Replica] = []
    for (i, r) in replicaTables.enumerated() {
      guard let id = try string(r, "id", nil), !id.isEmpty,
        id.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
      else { throw ConfigError("\(file): replica \(i + 1) needs an id of letters, digits, - or _") }
      guard !replicas.contains(where: { $0.id == id }) else {
        throw ConfigError("\(file): replica id \(id) repeats")
      }
      replicas.append(Replica(id: id, kernel: try string(r, "kernel", "v1")!))
    }
    guard !replicas.isEmpty else { throw ConfigError("\(file): at least one [[replica]] is needed") }
    var config = ClusterConfig(
      name: try string(cluster, "name", "tally")!, data: try string(cluster, "data", ".tally/data")!,
      reference: try string(cluster, "reference", nil), host: try string(cluster, "host", "127.0.0.1")!,
      basePort: try int(cluster, "base_port", 7100), replicas: replicas,
      fetchBatchesMax: try int(limits, "fetch_batches_max", 16),
      heartbeatMs: try int(limits, "heartbeat_ms", 500),
      repairsMax: try int(limits, "repairs_max", 3))
    config.checkpointEvents = try int(limits, "checkpoint_events", 50_000)
    config.replicaFetchVia = try string(tables["links"] ?? [:], "replica_fetch_via", nil)
    config.replicaVotesVia = try string(tables["links"] ?? [:], "replica_votes_via", nil)
    guard config.checkpointEvents > 0 else { throw ConfigError("\(file): checkpoint_events must be > 0") }
    if let keys = try string(tables["security"] ?? [:], "keys", nil), !keys.isEmpty {
      config.curve = try CurveKeys.load(keys)
    }
    guard config.basePort > 0 && config.basePort + 10 + replicas.count < 65536 else {
      throw ConfigError("\(file): base_port \(config.basePort) leaves no room for the cluster's ports")
    }
    return config
  }

  static func stripComment(_ line: String) -> String {
    var inString = false
    for (i, c) in line.enumerated() {
      if c == "\"" { inString.toggle() }
      if c == "#" && !inString { return String(line.prefix(i)) }
    }
    return line
  }
}

enum TOMLValue: Equatable {
  case string(String)
  case integer(Int)
  case bool(Bool)

  init?(_ text: String) {
    if text.count >= 2 && text.hasPrefix("\"") && text.hasSuffix("\"") {
      self = .string(String(text.dropFirst().dropLast()))
    } else if text == "true" || text == "false" {
      self = .bool(text == "true")
    } else if let i = Int(text.replacingOccurrences(of: "_", with: "")) {
      self = .integer(i)
    } else {
      return nil
    }
  }
}

public struct ConfigError: Error, CustomStringConvertible, Sendable {
  public var description: String
  public init(_ description: String) { self.description = description }
}
