// Starting and stopping a cluster's nodes on this machine as background processes, with
// a pid file and a log file per node under the data folder. On several hosts, each host
// starts its own nodes (`cluster up --here` or `--only`; or one systemd unit per node).
import Foundation
import ZeroMQTransport

#if canImport(Glibc)
  import Glibc
#endif

public struct NodeSpec: Sendable {
  public var name: String
  public var role: String
  public var replicaId: String?
  public var control: String
}

public struct Supervisor {
  public let config: ClusterConfig
  public let data: String
  public let reference: String?
  public let configPath: String
  public let executable: String
  /// A command that each node's command line is run under (e.g. `ip netns exec NS`, to
  /// start a node in its own network namespace); none by default.
  public var launchers: [String: [String]] = [:]

  public init(config: ClusterConfig, configPath: String, data: String, reference: String?, executable: String)
  {
    self.config = config
    self.configPath = configPath
    self.data = data
    self.reference = reference
    self.executable = executable
  }

  public var nodes: [NodeSpec] {
    [NodeSpec(name: "sequencer", role: "sequencer", replicaId: nil, control: config.sequencerControl)]
      + config.replicas.enumerated().map {
        NodeSpec(
          name: $0.element.id, role: "replica", replicaId: $0.element.id,
          control: config.replicaControl($0.offset))
      } + [NodeSpec(name: "voter", role: "voter", replicaId: nil, control: config.voterControl)]
  }

  public func pidPath(_ node: NodeSpec) -> String { Self.pidPath(data: data, name: node.name) }

  public static func pidPath(data: String, name: String) -> String { data + "/" + name + ".pid" }

  /// Called by a node process at start: records its pid for `cluster status/down`.
  public static func writePidFile(data: String, name: String) {
    try? FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
    try? String(getpid()).write(toFile: pidPath(data: data, name: name), atomically: true, encoding: .utf8)
  }
  public func logPath(_ node: NodeSpec) -> String { data + "/" + node.name + ".log" }

  public func pid(_ node: NodeSpec) -> Int32? {
    guard let text = try? String(contentsOfFile: pidPath(node), encoding: .utf8) else { return nil }
    return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
  }

  public func isAlive(_ node: NodeSpec) -> Bool {
    guard let pid = pid(node) else { return false }
    return Self.isRunning(pid: pid)
  }

  /// Whether any thread of process `pid` still runs. A killed node's main thread turns
  /// zombie before its other threads have exited, and the last of them closes its
  /// files, RocksDB's lock among them (with hundreds of MB to unmap, tens of
  /// milliseconds later): a node started again in between failed to open its state
  /// ("While lock file"). So a zombie main thread is dead only once it is the process's
  /// last thread. (A zombie, or a pid with no process, is not our node.)
  public static func isRunning(pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? ["\(pid)"]
    return tasks.contains { tid in
      guard let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/stat", encoding: .utf8) else {
        return false
      }
      let state = stat.split(separator: ")").last?.split(separator: " ").first
      return state != nil && state != "Z" && state != "X"
    }
  }

  /// The nodes named in `only` (all of them when nil), in start order.
  public func nodes(only: Set<String>?) -> [NodeSpec] {
    guard let only else { return nodes }
    return nodes.filter { only.contains($0.name) }
  }

  /// Starts every node (of `only`, when given) that is not running; returns the names started.
  public func up(
    context: ZMQContext, readyTimeoutSeconds: Int = 30, extraArguments: [String: [String]] = [:],
    only: Set<String>? = nil
  )
    throws
    -> [String]
  {
    let nodes = self.nodes(only: only)
    try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
    var started: [String] = []
    for node in nodes where !isAlive(node) {
      var arguments = [executable, node.role, "--config", configPath, "--data", data]
      if let reference { arguments += ["--reference", reference] }
      if let id = node.replicaId { arguments += ["--id", id] }
      arguments += extraArguments[node.name] ?? []
      let p = Process()
      p.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
      p.arguments = (launchers[node.name] ?? []) + arguments
      if !FileManager.default.fileExists(atPath: logPath(node)) {
        _ = FileManager.default.createFile(atPath: logPath(node), contents: nil)
      }
      let log = FileHandle(forWritingAtPath: logPath(node))
      log?.seekToEndOfFile()
      p.standardOutput = log
      p.standardError = log
      p.standardInput = FileHandle.nullDevice
      // The node writes its own pid file once running (setsid may fork first).
      try? FileManager.default.removeItem(atPath: pidPath(node))
      try p.run()
      started.append(node.name)
    }
    let clock = ContinuousClock()
    let deadline = clock.now + .seconds(readyTimeoutSeconds)
    for node in nodes {
      while true {
        if let reply = try? ControlClient.request(
          context: context, endpoint: node.control, ["PING".bytes], timeoutMs: 300, curve: config.curve),
          reply.first?.text == "PONG"
        {
          break
        }
        if pid(node) != nil && !isAlive(node) {
          throw ClusterClientError("node \(node.name) exited while starting; see \(logPath(node))")
        }
        if clock.now > deadline {
          throw ClusterClientError(
            "node \(node.name) did not become ready in \(readyTimeoutSeconds) s; see \(logPath(node))")
        }
      }
    }
    return started
  }

  /// Stops every running node: SIGTERM, then SIGKILL after a grace period (by default
  /// the nodes' own bound, `shutdown_grace_ms`, and one second more).
  public func down(graceSeconds: Int? = nil, only: Set<String>? = nil) -> [String] {
    let nodes = self.nodes(only: only)
    let graceSeconds = graceSeconds ?? (config.ops.shutdownGraceMs + 1_999) / 1_000
    var stopped: [String] = []
    for node in nodes {
      guard let pid = pid(node) else { continue }
      if isAlive(node) {
        kill(pid, SIGTERM)
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(graceSeconds)
        while isAlive(node) && clock.now < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if isAlive(node) { kill(pid, SIGKILL) }
        stopped.append(node.name)
      }
      try? FileManager.default.removeItem(atPath: pidPath(node))
    }
    return stopped
  }
}
