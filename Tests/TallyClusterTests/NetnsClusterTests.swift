// A real cluster across network namespaces on one machine: each node in its own
// namespace with its own address (veth pairs to a bridge in a hub namespace, private
// addresses that exist only inside these namespaces), events submitted from a client
// namespace, and link faults: a replica partitioned away, the voter partitioned from
// one replica, the sequencer partitioned from everyone. Needs root (CI runs as root):
// without `ip netns` the test fails with the reason; it never skips.
import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// Network namespaces for one test run, named `tallytest-<pid>-<n>-<node>`, removed by `destroy`.
final class NetnsLab {
  /// The subnet inside the lab's namespaces (reachable from nowhere else).
  static let subnet = "10.231.0"
  static let prefix = "tallytest-"
  let ip: String
  let run: String
  let work: String
  let hub: String
  var nodes: [String: (ns: String, address: String)] = [:]
  private(set) var namespaces: [String] = []

  nonisolated(unsafe) private static var counter = 0

  init(work: String) throws {
    guard
      let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first(where: {
        FileManager.default.isExecutableFile(atPath: $0)
      })
    else {
      throw TestFailure("the namespace test needs `ip` from iproute2 (apt-get install iproute2); none found")
    }
    self.ip = ip
    self.work = work
    Self.counter += 1
    run = Self.prefix + "\(getpid())-\(Self.counter)"
    hub = run + "-hub"
    Self.removeStale(ip: ip, work: work)
    try make(hub)
    try ipCommand(["-n", hub, "link", "add", "br0", "type", "bridge"])
    try ipCommand(["-n", hub, "link", "set", "br0", "up"])
  }

  @discardableResult
  func ipCommand(_ arguments: [String], timeout: Double = 30) throws -> ProcessResult {
    let r = try runCommand(ip, arguments, workDir: work, timeout: timeout)
    guard r.status == 0 else {
      throw TestFailure(
        "`ip \(arguments.joined(separator: " "))` failed (\(r.status)): \(r.output.trimmingCharacters(in: .whitespacesAndNewlines))"
          + (getuid() == 0 ? "" : " (not root: network namespaces need root, as CI runs)"))
    }
    return r
  }

  private func make(_ ns: String) throws {
    try ipCommand(["netns", "add", ns])
    namespaces.append(ns)
    try ipCommand(["-n", ns, "link", "set", "lo", "up"])
  }

  /// A namespace for `node` with `10.231.0.<host>`, linked to the hub's bridge.
  func add(node: String, host: Int) throws {
    let ns = run + "-" + node
    try make(ns)
    // Interface names are per namespace: eth0 inside, p-<node> on the hub side.
    let port = "p-" + node
    try ipCommand(["link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port, "netns", hub])
    try ipCommand(["-n", hub, "link", "set", port, "master", "br0"])
    try ipCommand(["-n", hub, "link", "set", port, "up"])
    let address = "\(Self.subnet).\(host)"
    try ipCommand(["-n", ns, "addr", "add", address + "/24", "dev", "eth0"])
    try ipCommand(["-n", ns, "link", "set", "eth0", "up"])
    nodes[node] = (ns, address)
  }

  func ns(_ node: String) -> String { nodes[node]!.ns }
  func address(_ node: String) -> String { nodes[node]!.address }

  /// `ip netns exec NS executable arguments...` as a child process.
  func start(_ node: String, _ executable: String, _ arguments: [String], name: String) throws -> Child {
    try Child(ip, ["netns", "exec", ns(node), executable] + arguments, workDir: work, name: name)
  }

  func exec(_ node: String, _ executable: String, _ arguments: [String], timeout: Double = 120) throws
    -> ProcessResult
  {
    try runCommand(ip, ["netns", "exec", ns(node), executable] + arguments, workDir: work, timeout: timeout)
  }

  /// Takes the node's only link down (every connection of it stalls) or up again.
  func link(_ node: String, up: Bool) throws {
    try ipCommand(["-n", ns(node), "link", "set", "eth0", up ? "up" : "down"])
  }

  /// Drops every packet between two nodes (a blackhole route each way), or restores them.
  func partition(_ a: String, _ b: String, cut: Bool) throws {
    try ipCommand(["-n", ns(a), "route", cut ? "add" : "del", "blackhole", address(b)])
    try ipCommand(["-n", ns(b), "route", cut ? "add" : "del", "blackhole", address(a)])
  }

  /// Kills whatever runs in the lab's namespaces and deletes them.
  func destroy() {
    for ns in namespaces.reversed() { Self.remove(ns, ip: ip, work: work) }
    namespaces = []
  }

  static func remove(_ ns: String, ip: String, work: String) {
    if let r = try? runCommand(ip, ["netns", "pids", ns], workDir: work, timeout: 10) {
      for p in r.stdout.split(separator: "\n").compactMap({ Int32($0) }) { kill(p, SIGKILL) }
    }
    _ = try? runCommand(ip, ["netns", "del", ns], workDir: work, timeout: 10)
  }

  /// Namespaces of an earlier run whose test process is gone (killed before its clean-up).
  static func removeStale(ip: String, work: String) {
    guard let r = try? runCommand(ip, ["netns", "list"], workDir: work, timeout: 10) else { return }
    for line in r.stdout.split(separator: "\n") {
      let name = String(line.split(separator: " ").first ?? "")
      guard name.hasPrefix(prefix), let pid = Int32(name.dropFirst(prefix.count).prefix { $0 != "-" }),
        pid != getpid(), kill(pid, 0) != 0
      else { continue }
      remove(name, ip: ip, work: work)
    }
  }
}

final class NetnsClusterTests: ClusterTestCase {
  var lab: NetnsLab?

  override func tearDownWithError() throws {
    lab?.destroy()
    lab = nil
    try super.tearDownWithError()
  }

  func testClusterAcrossNamespacesSurvivesPartitions() throws {
    let m = try Market.generate(in: work, days: 3, tradesPerDay: 1_500)
    let parts = try m.split(5, into: work)
    let events = try m.eventCount()
    let lab = try NetnsLab(work: work)
    self.lab = lab
    let hosts = ["sequencer": 10, "voter": 11, "r1": 21, "r2": 22, "r3": 23, "client": 30]
    for (node, host) in hosts.sorted(by: { $0.value < $1.value }) { try lab.add(node: node, host: host) }

    // One config for every "host"; each node binds its own address (the voter every
    // address of its namespace).
    let config = work + "/netns.toml"
    try """
    [cluster]
    name = "netns"
    base_port = 19500
    [sequencer]
    host = "\(lab.address("sequencer"))"
    [voter]
    host = "\(lab.address("voter"))"
    bind = "0.0.0.0"
    [limits]
    heartbeat_ms = 200
    checkpoint_events = 2000
    [[replica]]
    id = "r1"
    kernel = "v1"
    host = "\(lab.address("r1"))"
    [[replica]]
    id = "r2"
    kernel = "v2"
    host = "\(lab.address("r2"))"
    [[replica]]
    id = "r3"
    kernel = "v1"
    host = "\(lab.address("r3"))"
    """.write(toFile: config, atomically: true, encoding: .utf8)
    func data(_ node: String) -> String { work + "/host-" + node }
    func tally(_ node: String, _ arguments: [String], timeout: Double = 120) throws -> ProcessResult {
      try lab.exec(
        node, Paths.tally, arguments + ["--config", config, "--data", data(node)], timeout: timeout)
    }
    func logs() -> String {
      ["sequencer", "r1", "r2", "r3", "voter"].map { n in
        let text = (try? String(contentsOfFile: data(n) + "/\(n).log", encoding: .utf8)) ?? "(no log)"
        return "--- \(n).log ---\n" + text.split(separator: "\n").suffix(12).joined(separator: "\n")
      }.joined(separator: "\n")
    }
    func status() throws -> [String: [String: Any]] {
      let r = try tally("client", ["cluster", "status", "--json"], timeout: 30)
      guard r.status == 0 || r.status == 1,
        let object = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any],
        let nodes = object["nodes"] as? [[String: Any]]
      else { throw TestFailure("cluster status from the client namespace (\(r.status)): \(r.output)") }
      var byName: [String: [String: Any]] = [:]
      for n in nodes { if let name = n["name"] as? String { byName[name] = n } }
      return byName
    }
    func statusText() -> String {
      (try? tally("client", ["cluster", "status"], timeout: 30).output) ?? "(no status)"
    }
    func int(_ s: [String: [String: Any]], _ node: String, _ field: String) -> Int64? {
      (s[node]?[field] as? NSNumber)?.int64Value
    }
    func submit(_ part: String) throws {
      let r = try tally("client", ["submit", "--batch-lines", "200", part], timeout: 150)
      guard r.status == 0 else {
        throw TestFailure("submit \(part) failed (\(r.status)): \(r.output)\n\(logs())")
      }
    }
    /// The voter has decided everything journaled so far (seen from the client namespace).
    func allDecided(_ timeout: Double = 40) throws -> Bool {
      try eventually(timeout) {
        let s = try status()
        guard let last = int(s, "sequencer", "last_seq"), last > 0 else { return false }
        return int(s, "voter", "decided_through") == last
      }
    }

    // The sequencer and the voter run as foreground node commands in their namespaces;
    // each replica's namespace starts its own node with `cluster up --here`.
    children.append(
      try lab.start(
        "sequencer", Paths.tally, ["sequencer", "--config", config, "--data", data("sequencer")], name: "seq")
    )
    children.append(
      try lab.start(
        "voter", Paths.tally, ["voter", "--config", config, "--data", data("voter")], name: "voter"))
    for r in ["r1", "r2", "r3"] {
      let up = try tally(r, ["cluster", "up", "--here", "--reference", m.reference], timeout: 60)
      XCTAssertEqual(up.status, 0, "cluster up --here in \(r)'s namespace: \(up.output)\n\(logs())")
      XCTAssertTrue(up.output.contains("started \(r);"), "only \(r) starts on its host: \(up.output)")
    }
    XCTAssertTrue(
      try eventually(30) { try tally("client", ["cluster", "status"], timeout: 30).status == 0 },
      "the cluster is not healthy seen from the client namespace:\n\(statusText())\n\(logs())"
    )
    let first = try status()
    XCTAssertEqual(first["r2"]?["host"] as? String, lab.address("r2"))
    XCTAssertEqual(first["r2"]?["local"] as? Bool, false, "no node is local to the client namespace")

    try submit(parts[0])
    XCTAssertTrue(try allDecided(), "part 1 not decided: \(statusText())\n\(logs())")

    // 1. r3 partitioned away: the quorum (r1, r2) goes on deciding; r3 is unreachable.
    try lab.link("r3", up: false)
    try submit(parts[1])
    XCTAssertTrue(try allDecided(), "part 2 not decided with r3 away\n\(logs())")
    let away = try status()
    XCTAssertEqual(away["r3"]?["answering"] as? Bool, false, "r3 should be unreachable while partitioned")
    let r3Applied = int(away, "r3", "applied_seq")
    XCTAssertNil(r3Applied, "an unreachable replica reports nothing")
    try lab.link("r3", up: true)

    // 2. The voter partitioned from r1 alone: r1 still answers the client; r2 and r3 decide.
    let r1AgreedBefore =
      try eventually(20) {
        let s = try status()
        return int(s, "r1", "agreed") != nil && int(s, "r1", "lag") == 0
      } ? int(try status(), "r1", "agreed") : nil
    try lab.partition("voter", "r1", cut: true)
    try submit(parts[2])
    XCTAssertTrue(try allDecided(), "part 3 not decided with the voter cut from r1\n\(logs())")
    let cut = try status()
    XCTAssertEqual(cut["r1"]?["answering"] as? Bool, true, "r1 is cut from the voter only")
    XCTAssertEqual(int(cut, "r1", "applied_seq"), int(cut, "sequencer", "last_seq"), "r1 still fetches")
    XCTAssertNotNil(r1AgreedBefore, "r1 had not voted before the cut: \(statusText())")
    XCTAssertEqual(int(cut, "r1", "agreed"), r1AgreedBefore, "the voter counted r1's votes through the cut")
    try lab.partition("voter", "r1", cut: false)
    // Healed: r1's votes reach the voter again (resent from where the voter lacks them).
    XCTAssertTrue(
      try eventually(30) { (int(try status(), "r1", "agreed") ?? 0) > (r1AgreedBefore ?? .max) },
      "r1's votes did not reach the voter after the cut healed: \(statusText())\n\(logs())")

    // 3. The sequencer partitioned from everyone: no batch can be acked until it is back.
    try lab.link("sequencer", up: false)
    let blocked = try lab.start(
      "client", Paths.tally,
      ["submit", "--batch-lines", "200", "--config", config, "--data", data("client"), parts[3]],
      name: "submit-blocked")
    children.append(blocked)
    Thread.sleep(forTimeInterval: 2.5)
    XCTAssertTrue(blocked.isRunning, "a submit was acked while the sequencer was partitioned away")
    try lab.link("sequencer", up: true)
    let unblocked = blocked.wait(timeout: 110)
    XCTAssertEqual(
      unblocked.status, 0, "submit after the sequencer came back: \(unblocked.output)\n\(logs())")

    try submit(parts[4])

    // No loss, no duplicate: the journal holds every event once, every one is decided,
    // and every replica, including the two that were partitioned, converged.
    XCTAssertTrue(try allDecided(60), "not all decided: \(statusText())\n\(logs())")
    XCTAssertTrue(
      try eventually(60) {
        let s = try status()
        return ["r1", "r2", "r3"].allSatisfy { int(s, $0, "applied_seq") == events && int(s, $0, "lag") == 0 }
      }, "replicas did not all converge: \(statusText())\n\(logs())")
    let s = try status()
    XCTAssertEqual(int(s, "sequencer", "last_seq"), events, "each event journaled exactly once")
    XCTAssertEqual(int(s, "voter", "decided_through"), events)
    XCTAssertEqual(int(s, "voter", "alerts"), 0)
    for r in ["r1", "r2", "r3"] {
      XCTAssertEqual(int(s, r, "dissents"), 0, "\(r) dissented: \(s)")
      XCTAssertEqual(s[r]?["quarantined"] as? Bool, false, r)
      XCTAssertGreaterThan(int(s, r, "agreed") ?? 0, 0, "\(r) never agreed with the vote")
    }
    // The voted outputs, fetched from the client namespace, equal the embedded run's.
    let report = try tally("client", ["report", "--out", work + "/voted", "--timeout", "60"], timeout: 90)
    XCTAssertEqual(report.status, 0, "report: \(report.output)\n\(logs())")
    assertSameFolders(work + "/voted", m.expected, "voted outputs across namespaces vs tally run")

    // Each host stops its own nodes; the foreground nodes stop on SIGTERM with exit 0.
    for r in ["r1", "r2", "r3"] {
      let down = try tally(r, ["cluster", "down", "--here"], timeout: 30)
      XCTAssertTrue(down.output.contains("stopped \(r)"), "cluster down --here in \(r): \(down.output)")
    }
    for c in children where c.isRunning && c !== blocked {
      kill(c.process.processIdentifier, SIGTERM)
      XCTAssertEqual(c.wait(timeout: 15).status, 0, "a node did not stop cleanly on SIGTERM")
    }
  }
}
