import Foundation
import TallyCluster
import TallyOps
import XCTest

/// The shipped Prometheus files, through the real promtool: the rules are valid, their
/// unit tests (Config/alerts.test.yml) pass, the example prometheus.yml is valid, and
/// every tally_ metric the rules use is one a node exports.
final class AlertRulesTests: XCTestCase {
  static let root: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
  }()

  func promtool(_ arguments: [String]) throws -> (status: Int32, output: String) {
    var path: String? = nil
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
    where FileManager.default.isExecutableFile(atPath: "\(dir)/promtool") {
      path = "\(dir)/promtool"
      break
    }
    guard let path else {
      XCTFail("promtool is not installed (scripts/setup.sh installs Debian's prometheus)")
      return (-1, "")
    }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = arguments
    p.currentDirectoryURL = URL(fileURLWithPath: Self.root + "/Config")
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
  }

  func testRulesAreValid() throws {
    let r = try promtool(["check", "rules", "alerts.yml"])
    XCTAssertEqual(r.status, 0, r.output)
    XCTAssertTrue(r.output.contains("9 rules found"), r.output)
  }

  func testRulesUnitTestsPass() throws {
    let r = try promtool(["test", "rules", "alerts.test.yml"])
    XCTAssertEqual(r.status, 0, r.output)
  }

  func testExamplePrometheusConfigIsValid() throws {
    let r = try promtool(["check", "config", "prometheus.yml"])
    XCTAssertEqual(r.status, 0, r.output)
  }

  /// A renamed metric would leave an alert that never fires: every `tally_...` name in
  /// the rules must be exported (families with HELP text, or the process metrics).
  func testRulesUseOnlyExportedMetrics() throws {
    let rules = try String(contentsOfFile: Self.root + "/Config/alerts.yml", encoding: .utf8)
    let exported = Set(MetricHelp.all.map(\.name)).union([
      "tally_build_info", "tally_node_ready", "tally_process_resident_memory_bytes",
      "tally_process_start_time_seconds",
    ]).union(
      // The business metrics of `tally dashboard`.
      BusinessView().prometheus().split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map {
        String($0.split(separator: " ")[2])
      })
    var used: [String] = []
    var rest = Substring(rules)
    while let r = rest.range(of: "tally_") {
      let name = rest[r.lowerBound...].prefix { $0.isLetter || $0.isNumber || $0 == "_" }
      used.append(String(name))
      rest = rest[r.upperBound...]
    }
    XCTAssertFalse(used.isEmpty)
    // A histogram (a swift-metrics Timer) is exported as its family's name with the
    // series suffixes `_bucket`, `_sum` and `_count`.
    func family(_ name: String) -> String {
      for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
        let base = String(name.dropLast(suffix.count))
        if exported.contains(base) { return base }
      }
      return name
    }
    for name in used { XCTAssertTrue(exported.contains(family(name)), "\(name) is not exported") }
  }
}
