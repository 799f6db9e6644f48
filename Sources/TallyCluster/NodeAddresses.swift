// Where each node of a cluster runs: its own host, the address it binds, and its ports.
// A node binds its endpoints on `bind` (its `host` by default; "0.0.0.0" for every
// interface) and every other node and client connects to `tcp://host:port`. Without
// `[sequencer]`, `[voter]` or a replica's `host`, every node is on `[cluster] host` and
// the ports are counted from `base_port` as they always were, so a one-machine config
// needs none of this.
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// A node's `host` (where the others reach it) and `bind` (what it listens on).
public struct NodeAddress: Sendable, Equatable {
  public var host: String? = nil
  public var bind: String? = nil
  public init(host: String? = nil, bind: String? = nil) {
    self.host = host
    self.bind = bind
  }
}

extension ClusterConfig {
  /// Every node's name, in start order: the sequencer, the replicas, the voter.
  public var nodeNames: [String] { ["sequencer"] + replicas.map(\.id) + ["voter"] }

  func address(node: String) -> NodeAddress {
    switch node {
    case "sequencer": return sequencer.address
    case "voter": return voter.address
    default: return replicaIndex(node).map { replicas[$0].address } ?? NodeAddress()
    }
  }

  /// The address other nodes and clients connect to.
  public func host(node: String) -> String { address(node: node).host ?? host }
  /// The address the node listens on.
  public func bindHost(node: String) -> String { address(node: node).bind ?? host(node: node) }

  // Connect endpoints (what the others use).
  public var ingest: String { "tcp://\(host(node: "sequencer")):\(ingestPort)" }
  public var sequencerFetch: String { "tcp://\(host(node: "sequencer")):\(fetchPort)" }
  public var sequencerControl: String { "tcp://\(host(node: "sequencer")):\(sequencerControlPort)" }
  public var voterCollect: String { "tcp://\(host(node: "voter")):\(collectPort)" }
  public var voterControl: String { "tcp://\(host(node: "voter")):\(voterControlPort)" }
  /// The voted output stream (PUB): one message per decided batch, in seq order.
  public var voterPublish: String { "tcp://\(host(node: "voter")):\(publishPort)" }
  /// The voted stream (PUB, docs/STREAM.md): `base_port + 8` by default.
  public var voterStream: String { "tcp://\(host(node: "voter")):\(streamPort)" }
  /// Replays of the voted stream (ROUTER): `base_port + 9` by default.
  public var voterStreamReplay: String { "tcp://\(host(node: "voter")):\(streamReplayPort)" }
  public func replicaControl(_ index: Int) -> String {
    "tcp://\(host(node: replicas[index].id)):\(replicaControlPort(index))"
  }

  // Bind endpoints (what the node itself listens on).
  public var ingestBind: String { "tcp://\(bindHost(node: "sequencer")):\(ingestPort)" }
  public var sequencerFetchBind: String { "tcp://\(bindHost(node: "sequencer")):\(fetchPort)" }
  public var sequencerControlBind: String { "tcp://\(bindHost(node: "sequencer")):\(sequencerControlPort)" }
  public var voterCollectBind: String { "tcp://\(bindHost(node: "voter")):\(collectPort)" }
  public var voterControlBind: String { "tcp://\(bindHost(node: "voter")):\(voterControlPort)" }
  public var voterPublishBind: String { "tcp://\(bindHost(node: "voter")):\(publishPort)" }
  public var voterStreamBind: String { "tcp://\(bindHost(node: "voter")):\(streamPort)" }
  public var voterStreamReplayBind: String { "tcp://\(bindHost(node: "voter")):\(streamReplayPort)" }
  public func replicaControlBind(_ index: Int) -> String {
    "tcp://\(bindHost(node: replicas[index].id)):\(replicaControlPort(index))"
  }

  var ingestPort: Int { sequencer.ingestPort ?? basePort }
  var fetchPort: Int { sequencer.fetchPort ?? basePort + 1 }
  var sequencerControlPort: Int { sequencer.controlPort ?? basePort + 2 }
  var collectPort: Int { voter.collectPort ?? basePort + 3 }
  var voterControlPort: Int { voter.controlPort ?? basePort + 4 }
  var publishPort: Int { voter.publishPort ?? basePort + 5 }
  var streamPort: Int { voter.streamPort ?? basePort + 8 }
  var streamReplayPort: Int { voter.streamReplayPort ?? basePort + 9 }
  func replicaControlPort(_ index: Int) -> Int { replicas[index].controlPort ?? basePort + 10 + index }

  /// Every address and port a node listens on, for the check that no two collide.
  func listeners(node: String) -> [Listener] {
    let bind = bindHost(node: node)
    var ports: [(String, Int)]
    switch node {
    case "sequencer":
      ports = [("ingest", ingestPort), ("fetch", fetchPort), ("control", sequencerControlPort)]
    case "voter":
      ports = [
        ("collect", collectPort), ("control", voterControlPort), ("publish", publishPort),
        ("stream", streamPort), ("stream_replay", streamReplayPort),
      ]
    default: ports = replicaIndex(node).map { [("control", replicaControlPort($0))] } ?? []
    }
    var result = ports.map {
      Listener(what: "\(node) \($0.0)", machine: host(node: node), bind: bind, port: $0.1)
    }
    if ops.metricsEnabled {
      let m = metricsAddress(node: node)
      result.append(Listener(what: "\(node) metrics", machine: host(node: node), bind: m.host, port: m.port))
    }
    return result
  }

  struct Listener {
    var what: String
    /// The node's `host`: listeners of nodes with different hosts are on different machines.
    var machine: String
    var bind: String
    var port: Int

    func collides(with o: Listener) -> Bool {
      guard port == o.port else { return false }
      if bind == o.bind && bind != "0.0.0.0" { return true }
      return machine == o.machine && (bind == o.bind || bind == "0.0.0.0" || o.bind == "0.0.0.0")
    }
  }

  /// Refuses two listeners on one address and port (a wildcard bind collides with every
  /// port of its machine). Called after the file is read and after `--base-port`.
  public func checkListeners(file: String) throws(ConfigError) {
    var seen: [Listener] = []
    for node in nodeNames {
      for l in listeners(node: node) {
        guard (1...65_535).contains(l.port) else {
          throw ConfigError("\(file): \(l.what) port \(l.port) is out of range (allowed: 1...65535)")
        }
        if let other = seen.first(where: { $0.collides(with: l) }) {
          throw ConfigError(
            "\(file): \(l.what) and \(other.what) both listen on \(l.bind):\(l.port) on \(l.machine) (give each node its own host or port)"
          )
        }
        seen.append(l)
      }
    }
  }

  /// Reads `[sequencer]`, `[voter]` and the replicas' addresses, with their checks.
  mutating func parseNodes(_ f: File, toml: TOMLFile) throws(ConfigError) {
    func at(_ table: String, _ key: String, _ element: Int? = nil) -> String {
      toml.place(toml.line(table: table, element: element, key: key))
    }
    func checkHost(_ value: String?, _ table: String, _ key: String, _ element: Int? = nil)
      throws(ConfigError)
    {
      guard let value else { return }
      guard Self.isHostName(value) else {
        throw ConfigError(
          "\(at(table, key, element)) [\(table)] \(key) = \"\(value)\" is not a host (allowed: an IPv4 address or a host name of letters, digits, '.' and '-')"
        )
      }
    }
    func checkPort(_ value: Int?, _ table: String, _ key: String, _ element: Int? = nil) throws(ConfigError) {
      guard let value else { return }
      guard (1...65_535).contains(value) else {
        throw ConfigError(
          "\(at(table, key, element)) [\(table)] \(key) = \(value) is out of range (allowed: 1...65535)")
      }
    }
    try checkHost(host, "cluster", "host")
    if let s = f.sequencer {
      try checkHost(s.host, "sequencer", "host")
      try checkHost(s.bind, "sequencer", "bind")
      try checkPort(s.ingest_port, "sequencer", "ingest_port")
      try checkPort(s.fetch_port, "sequencer", "fetch_port")
      try checkPort(s.control_port, "sequencer", "control_port")
      sequencer.address = NodeAddress(host: s.host, bind: s.bind)
      sequencer.ingestPort = s.ingest_port
      sequencer.fetchPort = s.fetch_port
      sequencer.controlPort = s.control_port
    }
    if let v = f.voter {
      try checkHost(v.host, "voter", "host")
      try checkHost(v.bind, "voter", "bind")
      try checkPort(v.collect_port, "voter", "collect_port")
      try checkPort(v.control_port, "voter", "control_port")
      try checkPort(v.publish_port, "voter", "publish_port")
      try checkPort(v.stream_port, "voter", "stream_port")
      try checkPort(v.stream_replay_port, "voter", "stream_replay_port")
      voter.address = NodeAddress(host: v.host, bind: v.bind)
      voter.collectPort = v.collect_port
      voter.controlPort = v.control_port
      voter.publishPort = v.publish_port
      voter.streamPort = v.stream_port
      voter.streamReplayPort = v.stream_replay_port
    }
    for (i, r) in (f.replica ?? []).enumerated() {
      try checkHost(r.host, "replica", "host", i)
      try checkHost(r.bind, "replica", "bind", i)
      try checkPort(r.control_port, "replica", "control_port", i)
    }
    try checkListeners(file: toml.file)
  }

  /// An IPv4 address or a DNS name: 1...253 characters of letters, digits, '.', '-'.
  static func isHostName(_ s: String) -> Bool {
    !s.isEmpty && s.utf8.count <= 253
      && s.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "." || $0 == "-" }
  }

  /// The nodes whose `host` is an address of this machine (or a loopback name), for
  /// `cluster up --here`.
  public func nodesHere() -> [String] {
    let local = Self.localAddresses()
    return nodeNames.filter { Self.isLocal(host(node: $0), local: local) }
  }

  public static func isLocal(_ host: String, local: Set<String>) -> Bool {
    host == "localhost" || host.hasPrefix("127.") || local.contains(host)
  }

  /// The IPv4 addresses of this machine's interfaces (in this network namespace), and
  /// its host name (a node's `host` given as a name matches only that name: no DNS).
  public static func localAddresses() -> Set<String> {
    var result: Set<String> = []
    var name = [CChar](repeating: 0, count: 256)
    if gethostname(&name, name.count - 1) == 0 {
      let text = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
      if !text.isEmpty { result.insert(text) }
    }
    var list: UnsafeMutablePointer<ifaddrs>? = nil
    guard getifaddrs(&list) == 0, let first = list else { return result }
    defer { freeifaddrs(list) }
    var cursor: UnsafeMutablePointer<ifaddrs>? = first
    while let entry = cursor {
      if let addr = entry.pointee.ifa_addr, addr.pointee.sa_family == UInt16(AF_INET) {
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
          var a = sin.pointee.sin_addr
          _ = inet_ntop(AF_INET, &a, &text, socklen_t(INET_ADDRSTRLEN))
        }
        result.insert(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
      }
      cursor = entry.pointee.ifa_next
    }
    return result
  }
}
