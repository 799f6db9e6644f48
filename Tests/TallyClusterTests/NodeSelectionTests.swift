// `cluster up/down/status --only NODE,...` and `--here`: a machine starts, checks and
// stops only its own nodes (on loopback here; across namespaces in NetnsClusterTests).
import Foundation
import XCTest

final class NodeSelectionTests: ClusterTestCase {
  func testUpStatusDownOnlyActOnTheNamedNodes() throws {
    let m = try Market.generate(in: work, days: 1, tradesPerDay: 300)
    let c = try cluster(basePort: 16_700, reference: m.reference)
    let up = try c.tally(
      ["cluster", "up"], ["--reference", m.reference, "--only", "sequencer,voter"], timeout: 60)
    XCTAssertEqual(up.status, 0, up.output)
    XCTAssertTrue(up.output.contains("started sequencer, voter;"), up.output)
    XCTAssertTrue(c.isAlive(node: "sequencer") && c.isAlive(node: "voter"))
    XCTAssertFalse(["r1", "r2", "r3"].contains { c.isAlive(node: $0) }, "--only started a replica")
    // Status of the named nodes: healthy, and no quorum check (not every replica is named).
    let some = try c.tally(["cluster", "status"], ["--only", "sequencer,voter"])
    XCTAssertEqual(some.status, 0, some.output)
    XCTAssertFalse(some.stdout.contains("r1"), some.stdout)
    // The whole cluster is not healthy: its replicas are down.
    let all = try c.tally(["cluster", "status"])
    XCTAssertEqual(all.status, 1, all.output)
    XCTAssertTrue(all.stdout.contains("r1 is down") && all.stdout.contains("no quorum"), all.stdout)

    // --here on a loopback config: every node is here; the running ones are kept.
    let here = try c.tally(["cluster", "up"], ["--reference", m.reference, "--here"], timeout: 60)
    XCTAssertEqual(here.status, 0, here.output)
    XCTAssertTrue(here.output.contains("started r1, r2, r3;"), here.output)
    try c.submit([m.events])
    try c.report(work + "/out")
    assertSameFolders(work + "/out", m.expected, "voted report vs tally run")

    let downOne = try c.tally(["cluster", "down"], ["--only", "r2"])
    XCTAssertTrue(downOne.output.contains("stopped r2"), downOne.output)
    XCTAssertFalse(c.isAlive(node: "r2"))
    XCTAssertTrue(
      ["sequencer", "r1", "r3", "voter"].allSatisfy { c.isAlive(node: $0) }, "down --only stopped more")
    XCTAssertEqual(try c.tally(["cluster", "status"], ["--only", "r1,r3"]).status, 0)

    // Unknown names and conflicting options are refused (64) with what is allowed.
    let unknown = try c.tally(["cluster", "up"], ["--reference", m.reference, "--only", "r9"])
    XCTAssertEqual(unknown.status, 64, unknown.output)
    XCTAssertTrue(
      unknown.output.contains("r9") && unknown.output.contains("sequencer, r1, r2, r3, voter"), unknown.output
    )
    let both = try c.tally(["cluster", "status"], ["--only", "r1", "--here"])
    XCTAssertEqual(both.status, 64, both.output)
  }

  func testHereWithNoNodeOfThisMachineFailsWithTheAddresses() throws {
    let m = try Market.generate(in: work, days: 1, tradesPerDay: 100)
    let r = try runCommand(
      Paths.tally,
      [
        "cluster", "up", "--config", Paths.packageRoot + "/Config/hosts-3.toml", "--data", work + "/data",
        "--reference", m.reference, "--here",
      ], workDir: work, timeout: 30)
    XCTAssertEqual(r.status, 64, r.output)
    XCTAssertTrue(r.output.contains("no node's host is an address of this machine"), r.output)
    XCTAssertTrue(r.output.contains("127.0.0.1") && r.output.contains("r3 192.0.2.12"), r.output)
    XCTAssertFalse(FileManager.default.fileExists(atPath: work + "/data/sequencer.pid"), "a node was started")
  }
}
