// A cluster's nodes on separate "hosts" on one machine: one network namespace per node,
// each with its own address in a private /24 that exists only inside this lab, joined
// by veth pairs to a bridge in the root namespace (whose address is the harness's:
// the harness, its client, observer and link proxy reach every node through it).
// Link faults: a node's link taken down (every connection of it stalls), or a
// blackhole route each way between two nodes. Needs root and iproute2; anything else
// fails with the reason. Never on a hot path.
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

public final class NetnsLab {
  /// Namespaces are `tallychaos-<pid>-<node>`; a lab whose process is gone is removed by the next one.
  public static let prefix = "tallychaos-"
  /// Nodes in one lab (addresses `.10` ... `.10 + nodesMax - 1`).
  public static let nodesMax = 100
  public let ip: String
  /// The first three octets, e.g. "10.231.1".
  public let subnet: String
  public let bridge: String
  let run: String
  public private(set) var nodes: [String: (ns: String, address: String)] = [:]
  private var namespaces: [String] = []
  private var bridgeMade = false
  private var counter = 0

  /// The harness's own address on the bridge.
  public var harnessAddress: String { subnet + ".1" }

  public init(subnet: String) throws {
    guard getuid() == 0 else {
      throw ScenarioError(
        "netns: network namespaces need root (CI runs as root); this process runs as uid \(getuid())")
    }
    guard
      let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first(where: {
        FileManager.default.isExecutableFile(atPath: $0)
      })
    else { throw ScenarioError("netns: `ip` from iproute2 is needed (apt-get install iproute2)") }
    self.ip = ip
    self.subnet = subnet
    let pid = getpid()
    run = Self.prefix + "\(pid)"
    bridge = "tcbr\(pid % 1_000_000)"
    Self.removeStale(ip: ip)
    try command(["link", "add", bridge, "type", "bridge"])
    bridgeMade = true
    try command(["addr", "add", harnessAddress + "/24", "dev", bridge])
    try command(["link", "set", bridge, "up"])
  }

  @discardableResult
  public func command(_ arguments: [String]) throws -> String {
    let r = Self.run(ip, arguments)
    guard r.status == 0 else {
      throw ScenarioError(
        "netns: `ip \(arguments.joined(separator: " "))` failed (\(r.status)): \(r.output.trimmingCharacters(in: .whitespacesAndNewlines))"
      )
    }
    return r.output
  }

  static func run(_ executable: String, _ arguments: [String]) -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    p.standardInput = FileHandle.nullDevice
    do { try p.run() } catch { return (-1, "\(error)") }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
  }

  /// A namespace for `node` at `<subnet>.<host>`, linked to the bridge.
  public func add(node: String, host: Int) throws {
    let ns = run + "-" + node
    try command(["netns", "add", ns])
    namespaces.append(ns)
    try command(["-n", ns, "link", "set", "lo", "up"])
    counter += 1
    let peer = "tc\(getpid() % 1_000_000)v\(counter)"
    try command(["link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", peer])
    try command(["link", "set", peer, "master", bridge])
    try command(["link", "set", peer, "up"])
    let address = "\(subnet).\(host)"
    try command(["-n", ns, "addr", "add", address + "/24", "dev", "eth0"])
    try command(["-n", ns, "link", "set", "eth0", "up"])
    nodes[node] = (ns, address)
  }

  public func ns(_ node: String) -> String { nodes[node]!.ns }
  public func address(_ node: String) -> String { nodes[node]!.address }

  /// What runs a command inside the node's namespace: `ip netns exec NS`.
  public func launcher(_ node: String) -> [String] { [ip, "netns", "exec", ns(node)] }

  /// Takes the node's only link down (or up again).
  public func link(_ node: String, up: Bool) throws {
    try command(["-n", ns(node), "link", "set", "eth0", up ? "up" : "down"])
  }

  /// Drops every packet between two nodes (a blackhole route each way), or restores them.
  public func partition(_ a: String, _ b: String, cut: Bool) throws {
    try command(["-n", ns(a), "route", cut ? "add" : "del", "blackhole", address(b)])
    try command(["-n", ns(b), "route", cut ? "add" : "del", "blackhole", address(a)])
  }

  /// Kills what still runs in the namespaces, deletes them and the bridge.
  public func destroy() {
    for ns in namespaces.reversed() { Self.remove(ns, ip: ip) }
    namespaces = []
    if bridgeMade { _ = Self.run(ip, ["link", "del", bridge]) }
    bridgeMade = false
  }

  static func remove(_ ns: String, ip: String) {
    for p in run(ip, ["netns", "pids", ns]).output.split(separator: "\n").compactMap({ Int32($0) }) {
      kill(p, SIGKILL)
    }
    _ = run(ip, ["netns", "del", ns])
  }

  /// Namespaces and bridges of a lab whose process is gone.
  static func removeStale(ip: String) {
    for line in run(ip, ["netns", "list"]).output.split(separator: "\n") {
      let name = String(line.split(separator: " ").first ?? "")
      guard name.hasPrefix(prefix), let pid = Int32(name.dropFirst(prefix.count).prefix { $0 != "-" }),
        pid != getpid(), kill(pid, 0) != 0
      else { continue }
      remove(name, ip: ip)
      _ = run(ip, ["link", "del", "tcbr\(pid % 1_000_000)"])
    }
  }
}
