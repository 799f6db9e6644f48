import Foundation
import XCTest

/// CurveZMQ on every link: a cluster with `[security] keys` gives exact voted outputs
/// to a client holding an admitted key, and refuses (and logs) a client whose key is
/// not admitted.
final class SecureClusterTests: ClusterTestCase {
  func testCurveClusterIsExactAndRefusesAnUnknownClientKey() throws {
    let m = try Market.generate(in: work, days: 2, tradesPerDay: 300)
    let keys = work + "/keys"
    let keygen = try runCommand(Paths.tally, ["keygen", "--out", keys], workDir: work)
    XCTAssertEqual(keygen.status, 0, keygen.output)
    let base = try String(contentsOfFile: Paths.packageRoot + "/Config/local.toml", encoding: .utf8)
    let config = base.replacingOccurrences(of: "[limits]", with: "[security]\nkeys = \"\(keys)\"\n\n[limits]")
    let c = try cluster(basePort: 18_500, reference: m.reference, configText: config)
    try c.up()
    try c.submit([m.events])
    try c.report(work + "/out")
    assertSameFolders(work + "/out", m.expected, "report over CurveZMQ")

    // An intruder: the right server key, its own client key that no one admitted.
    let intruder = work + "/intruder"
    XCTAssertEqual(try runCommand(Paths.tally, ["keygen", "--out", intruder], workDir: work).status, 0)
    for name in ["server.public", "server.secret", "node.public", "node.secret"] {
      try FileManager.default.removeItem(atPath: intruder + "/" + name)
      try FileManager.default.copyItem(atPath: keys + "/" + name, toPath: intruder + "/" + name)
    }
    let intruderConfig = work + "/intruder.toml"
    try config.replacingOccurrences(of: "keys = \"\(keys)\"", with: "keys = \"\(intruder)\"")
      .write(toFile: intruderConfig, atomically: true, encoding: .utf8)
    let before = try c.statusInt("sequencer", "last_seq")
    let child = try Child(
      Paths.tally,
      [
        "submit", "--config", intruderConfig, "--data", c.data, "--base-port", String(c.basePort), "--client",
        "x", m.events,
      ],
      workDir: work, name: "intruder")
    let result = child.wait(timeout: 4)  // it retries until killed: nothing is acknowledged
    XCTAssertNotEqual(result.status, 0, "the intruder's submit must not succeed: \(result.output)")
    XCTAssertEqual(try c.statusInt("sequencer", "last_seq"), before, "the intruder journaled nothing")
    let log = (try? String(contentsOfFile: c.data + "/sequencer.log", encoding: .utf8)) ?? ""
    XCTAssertTrue(log.contains("refused a connection"), "the refusal is logged:\n\(log.suffix(2000))")
  }
}
