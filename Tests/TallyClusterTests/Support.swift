// Helpers for the cluster's process tests: the tally binary, child processes with
// timeouts, a cluster on its own ports and data folder, markets and folder diffs.
import Foundation
import TallyCluster
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

enum Paths {
  /// The package root, from this file's path (Tests/TallyClusterTests/Support.swift).
  static let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
  }()

  static var tally: String {
    if let env = ProcessInfo.processInfo.environment["TALLY_BIN"], !env.isEmpty { return env }
    return packageRoot + "/.build/debug/tally"
  }

  static var interop: String { packageRoot + "/Tests/interop" }
}

struct ProcessResult {
  var status: Int32
  var stdout: String
  var stderr: String
  var output: String { stdout + stderr }
}

struct TestFailure: Error, CustomStringConvertible {
  var description: String
  init(_ d: String) { description = d }
}

/// A child process whose output goes to files (no pipe can fill up and block it).
final class Child {
  let process = Process()
  let outPath: String
  let errPath: String

  init(_ executable: String, _ arguments: [String], workDir: String, name: String) throws {
    outPath = workDir + "/\(name).out"
    errPath = workDir + "/\(name).err"
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: workDir)
    process.standardOutput = FileHandle(forWritingAtPath: outPath)
    process.standardError = FileHandle(forWritingAtPath: errPath)
    process.standardInput = FileHandle.nullDevice
    try process.run()
  }

  var isRunning: Bool { process.isRunning }

  /// Waits up to `timeout` seconds; kills the child (SIGKILL) if it is still running.
  func wait(timeout: Double) -> ProcessResult {
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
    var status: Int32 = -9
    if process.isRunning {
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
    } else {
      status = process.terminationStatus
    }
    let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    var err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
    if status == -9 { err += "\n[test harness: killed after \(timeout) s]" }
    return ProcessResult(status: status, stdout: out, stderr: err)
  }
}

nonisolated(unsafe) private var commandCounter = 0
private let commandCounterLock = NSLock()

/// Runs a command to completion (killed after `timeout` seconds).
@discardableResult
func runCommand(_ executable: String, _ arguments: [String], workDir: String, timeout: Double = 120) throws
  -> ProcessResult
{
  commandCounterLock.lock()
  commandCounter += 1
  let n = commandCounter
  commandCounterLock.unlock()
  let verb = (arguments.first.map { URL(fileURLWithPath: $0).lastPathComponent } ?? "cmd").filter {
    $0.isLetter || $0.isNumber
  }
  return try Child(executable, arguments, workDir: workDir, name: "cmd\(n)-\(verb)").wait(timeout: timeout)
}

/// Polls `condition` every 50 ms until it holds or `timeout` seconds pass.
func eventually(_ timeout: Double, _ condition: () throws -> Bool) rethrows -> Bool {
  let deadline = Date().addingTimeInterval(timeout)
  while Date() < deadline {
    if try condition() { return true }
    Thread.sleep(forTimeInterval: 0.05)
  }
  return try condition()
}

/// A generated market: reference folder, events file, and `tally run`'s outputs.
struct Market {
  var dir: String
  var reference: String { dir + "/reference" }
  var events: String { dir + "/events.txt" }
  var expected: String { dir + "/expected" }

  static func generate(
    in work: String, days: Int = 3, tradesPerDay: Int, accounts: Int = 300, seed: Int? = nil
  )
    throws -> Market
  {
    let m = Market(dir: work + "/market")
    var args = [
      "generate", "--out", m.dir, "--days", String(days), "--trades-per-day", String(tradesPerDay),
      "--accounts",
      String(accounts), "--quiet",
    ]
    if let seed { args += ["--seed", String(seed)] }
    let g = try runCommand(Paths.tally, args, workDir: work)
    guard g.status == 0 else { throw TestFailure("tally generate failed: \(g.output)") }
    let r = try runCommand(
      Paths.tally, ["run", "--reference", m.reference, "--out", m.expected, m.events], workDir: work)
    guard r.status == 0 else { throw TestFailure("tally run failed: \(r.output)") }
    return m
  }

  /// Inserts `BONUS,<first security>,<first trading day>,3,1` before the first CLOSE (1 share
  /// per 3: board lots of 100 leave remainders 1 and 2, so holders tie for the leftover
  /// shares) and recomputes the expected outputs.
  func insertTyingBonus(work: String) throws {
    let text = try String(contentsOfFile: events, encoding: .utf8)
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    guard let close = lines.firstIndex(where: { $0.hasPrefix("CLOSE,") }) else {
      throw TestFailure("no CLOSE in \(events)")
    }
    let date = lines[close].dropFirst(6)
    let securities = try String(contentsOfFile: reference + "/securities.csv", encoding: .utf8)
    let code = securities.split(separator: "\n")[1].split(separator: ",")[0]
    lines.insert("BONUS,\(code),\(date),3,1", at: close)
    try lines.joined(separator: "\n").write(toFile: events, atomically: true, encoding: .utf8)
    try? FileManager.default.removeItem(atPath: expected)
    let r = try runCommand(
      Paths.tally, ["run", "--reference", reference, "--out", expected, events], workDir: work)
    guard r.status == 0 else { throw TestFailure("tally run failed: \(r.output)") }
  }

  /// The events file cut into `parts` consecutive files of whole lines (their concatenation is the file).
  func split(_ parts: Int, into work: String) throws -> [String] {
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: events)))
    var lineEnds: [Int] = []
    for (i, b) in bytes.enumerated() where b == 10 { lineEnds.append(i + 1) }
    if lineEnds.last != bytes.count { lineEnds.append(bytes.count) }
    var paths: [String] = []
    var start = 0
    for p in 1...parts {
      let end = p == parts ? bytes.count : lineEnds[lineEnds.count * p / parts - 1]
      let path = work + "/events-part\(p).txt"
      try Data(bytes[start..<end]).write(to: URL(fileURLWithPath: path))
      paths.append(path)
      start = end
    }
    return paths
  }

  /// Event lines (not blank, not comments) in the events file: the journal's last seq after one submit.
  func eventCount() throws -> Int64 {
    let text = try String(contentsOfFile: events, encoding: .utf8)
    return Int64(
      text.split(separator: "\n", omittingEmptySubsequences: false).filter {
        let l = $0.hasSuffix("\r") ? $0.dropLast() : $0
        return !l.isEmpty && !l.hasPrefix("#")
      }.count)
  }
}

/// Compares two folders file by file, byte for byte; returns the differences.
func folderDifferences(_ a: String, _ b: String) -> [String] {
  let fm = FileManager.default
  let namesA = Set((try? fm.contentsOfDirectory(atPath: a)) ?? [])
  let namesB = Set((try? fm.contentsOfDirectory(atPath: b)) ?? [])
  var diffs: [String] = []
  if namesA.isEmpty { diffs.append("\(a) is empty or missing") }
  if namesB.isEmpty { diffs.append("\(b) is empty or missing") }
  for n in namesA.symmetricDifference(namesB).sorted() { diffs.append("only in one folder: \(n)") }
  for n in namesA.intersection(namesB).sorted() {
    let da = fm.contents(atPath: a + "/" + n)
    let db = fm.contents(atPath: b + "/" + n)
    if da != db { diffs.append("\(n) differs (\(da?.count ?? -1) vs \(db?.count ?? -1) bytes)") }
  }
  return diffs
}

func assertSameFolders(
  _ got: String, _ expected: String, _ what: String, file: StaticString = #filePath, line: UInt = #line
) {
  let d = folderDifferences(got, expected)
  XCTAssertTrue(
    d.isEmpty, "\(what): \(got) differs from \(expected): \(d.joined(separator: "; "))", file: file,
    line: line)
}

/// One local cluster on its own ports and data folder, driven through the tally CLI.
final class TestCluster {
  let work: String
  let config: String
  let data: String
  let basePort: Int
  let reference: String
  static let nodeNames = ["sequencer", "r1", "r2", "r3", "voter"]
  /// The `[[replica]]` tables of the shipped layout (r1 v1, r2 v2, r3 `third`: v1, or a
  /// kernel with a planted fault), for a config a test writes.
  static func replicaTables(third: String = "v1") -> String {
    """
    [[replica]]
    id = "r1"
    kernel = "v1"

    [[replica]]
    id = "r2"
    kernel = "v2"

    [[replica]]
    id = "r3"
    kernel = "\(third)"

    """
  }

  init(work: String, basePort: Int, reference: String, configText: String? = nil) throws {
    self.work = work
    self.basePort = basePort
    self.reference = reference
    data = work + "/data"
    if let configText {
      config = work + "/cluster.toml"
      try configText.write(toFile: config, atomically: true, encoding: .utf8)
    } else {
      config = Paths.packageRoot + "/Config/local.toml"
    }
  }

  var common: [String] { ["--config", config, "--data", data, "--base-port", String(basePort)] }
  var ingest: String { "tcp://127.0.0.1:\(basePort)" }

  @discardableResult
  func tally(_ verb: [String], _ extra: [String] = [], timeout: Double = 120) throws -> ProcessResult {
    try runCommand(Paths.tally, verb + common + extra, workDir: work, timeout: timeout)
  }

  func up() throws {
    let r = try tally(["cluster", "up"], ["--reference", reference], timeout: 60)
    guard r.status == 0 else { throw TestFailure("cluster up failed (\(r.status)): \(r.output)\n\(logs())") }
  }

  func submitArguments(_ files: [String], client: String?, batchLines: Int?) -> [String] {
    var extra: [String] = []
    if let client { extra += ["--client", client] }
    if let batchLines { extra += ["--batch-lines", String(batchLines)] }
    return extra + files
  }

  @discardableResult
  func submit(_ files: [String], client: String? = nil, batchLines: Int? = nil) throws -> ProcessResult {
    let r = try tally(
      ["submit"], submitArguments(files, client: client, batchLines: batchLines), timeout: 120)
    guard r.status == 0 else { throw TestFailure("submit failed (\(r.status)): \(r.output)") }
    return r
  }

  func startSubmit(_ files: [String], client: String? = nil, batchLines: Int? = nil, name: String) throws
    -> Child
  {
    try Child(
      Paths.tally, ["submit"] + common + submitArguments(files, client: client, batchLines: batchLines),
      workDir: work, name: name)
  }

  /// `tally report` into `out`; throws if it fails.
  func report(_ out: String, timeout: Int = 120) throws {
    let r = try tally(
      ["report"], ["--out", out, "--timeout", String(timeout)], timeout: Double(timeout + 30))
    guard r.status == 0 else { throw TestFailure("report failed (\(r.status)): \(r.output)\n\(logs())") }
  }

  /// `cluster status --json`, parsed; nodes by name.
  func status() throws -> [String: [String: Any]] {
    let r = try tally(["cluster", "status"], ["--json"], timeout: 30)
    // Exit 1 means "not healthy" (a node down, no quorum): the JSON is there all the same.
    guard r.status == 0 || r.status == 1, let data = r.stdout.data(using: .utf8),
      let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
      let nodes = object["nodes"] as? [[String: Any]]
    else { throw TestFailure("cluster status --json: unexpected output (\(r.status)): \(r.output)") }
    var byName: [String: [String: Any]] = [:]
    for n in nodes { if let name = n["name"] as? String { byName[name] = n } }
    return byName
  }

  func int(_ status: [String: [String: Any]], _ node: String, _ field: String) -> Int64? {
    (status[node]?[field] as? NSNumber)?.int64Value
  }

  /// `cluster status --json` as text, for failure messages.
  func statusText() -> String {
    (try? tally(["cluster", "status"], ["--json"], timeout: 30).stdout) ?? "(no status)"
  }

  /// One integer field of one node in `cluster status --json` (nil if absent or null).
  func statusInt(_ node: String, _ field: String) throws -> Int64? {
    (try status()[node]?[field] as? NSNumber)?.int64Value
  }

  func pid(_ node: String) -> Int32? {
    guard let text = try? String(contentsOfFile: data + "/\(node).pid", encoding: .utf8) else { return nil }
    return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
  }

  func isAlive(_ pid: Int32) -> Bool { Supervisor.isRunning(pid: pid) }

  func isAlive(node: String) -> Bool { pid(node).map(isAlive) ?? false }

  /// kill -9 one node and wait until it is gone.
  func kill9(_ node: String) throws {
    guard let p = pid(node), isAlive(p) else { throw TestFailure("node \(node) is not running") }
    kill(p, SIGKILL)
    guard eventually(10, { !isAlive(p) }) else {
      throw TestFailure("node \(node) (pid \(p)) survived SIGKILL")
    }
  }

  func logs() -> String {
    Self.nodeNames.map { n in
      let text = (try? String(contentsOfFile: data + "/\(n).log", encoding: .utf8)) ?? "(no log)"
      return "--- \(n).log (last lines) ---\n"
        + text.split(separator: "\n").suffix(15).joined(separator: "\n")
    }.joined(separator: "\n")
  }

  func alerts() -> [[String: Any]] {
    guard let text = try? String(contentsOfFile: data + "/alerts.jsonl", encoding: .utf8) else { return [] }
    return text.split(separator: "\n").compactMap {
      (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
    }
  }

  /// `cluster down`, then SIGKILL for anything left (a pid file of ours whose process lives).
  func down() {
    _ = try? tally(["cluster", "down"], timeout: 30)
    for n in Self.nodeNames {
      if let p = pid(n), isAlive(p) { kill(p, SIGKILL) }
    }
  }
}

/// A test case with its own work folder (kept on failure, removed on success).
class ClusterTestCase: XCTestCase {
  var work = ""
  var clusters: [TestCluster] = []
  var children: [Child] = []

  override func setUpWithError() throws {
    try super.setUpWithError()
    guard FileManager.default.isExecutableFile(atPath: Paths.tally) else {
      throw XCTSkip("no tally binary at \(Paths.tally); build first or set TALLY_BIN")
    }
    let testName = name.split(separator: " ").last.map(String.init) ?? "test"
    work =
      NSTemporaryDirectory() + "tally-cluster-tests/"
      + (String(describing: type(of: self)) + "-" + testName).filter {
        $0.isLetter || $0.isNumber || $0 == "-"
      }
    try? FileManager.default.removeItem(atPath: work)
    try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
  }

  override func tearDownWithError() throws {
    for c in children where c.isRunning { kill(c.process.processIdentifier, SIGKILL) }
    for c in clusters { c.down() }
    clusters = []
    // (testRun.hasSucceeded is false until the run stops; the failure count is live.)
    if (testRun?.totalFailureCount ?? 1) == 0 {
      try? FileManager.default.removeItem(atPath: work)
    } else {
      print("cluster test work folder kept for inspection: \(work)")
    }
    try super.tearDownWithError()
  }

  func cluster(basePort: Int, reference: String, configText: String? = nil) throws -> TestCluster {
    let c = try TestCluster(work: work, basePort: basePort, reference: reference, configText: configText)
    clusters.append(c)
    return c
  }

  func python(_ script: String, _ arguments: [String], timeout: Double = 120) throws -> ProcessResult {
    try runCommand(
      "/usr/bin/env", ["python3", Paths.interop + "/" + script] + arguments, workDir: work, timeout: timeout)
  }

  /// Skips unless `python3 -c "import zmq"` works.
  func requirePyZMQ() throws {
    let r = try runCommand("/usr/bin/env", ["python3", "-c", "import zmq"], workDir: work, timeout: 30)
    guard r.status == 0 else { throw XCTSkip("python3 with pyzmq is not available: \(r.output)") }
  }
}
