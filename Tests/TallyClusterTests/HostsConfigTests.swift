// Nodes on separate hosts: every node's own address and ports in the config, with
// today's one-host layout as the default, and the strict checks of the schema.
import XCTest

@testable import TallyCluster

final class HostsConfigTests: XCTestCase {
  let spread = """
    [cluster]
    name = "spread"
    base_port = 7100

    [sequencer]
    host = "192.0.2.10"
    ingest_port = 7000

    [voter]
    host = "192.0.2.11"
    bind = "0.0.0.0"
    stream_port = 7300

    [[replica]]
    id = "r1"
    host = "192.0.2.21"

    [[replica]]
    id = "r2"
    kernel = "v2"
    host = "192.0.2.22"
    control_port = 7400

    [[replica]]
    id = "r3"
    """

  func testEveryNodeHasItsOwnAddressAndTheOthersConnectToIt() throws {
    let c = try ClusterConfig.parse(spread, file: "spread.toml")
    XCTAssertEqual(c.ingest, "tcp://192.0.2.10:7000")
    XCTAssertEqual(c.ingestBind, "tcp://192.0.2.10:7000")
    XCTAssertEqual(c.sequencerFetch, "tcp://192.0.2.10:7101")
    XCTAssertEqual(c.sequencerControl, "tcp://192.0.2.10:7102")
    XCTAssertEqual(c.voterCollect, "tcp://192.0.2.11:7103")
    XCTAssertEqual(c.voterCollectBind, "tcp://0.0.0.0:7103")
    XCTAssertEqual(c.voterControl, "tcp://192.0.2.11:7104")
    XCTAssertEqual(c.voterStream, "tcp://192.0.2.11:7300")
    XCTAssertEqual(c.voterStreamReplay, "tcp://192.0.2.11:7109")
    XCTAssertEqual(c.replicaControl(0), "tcp://192.0.2.21:7110")
    XCTAssertEqual(c.replicaControl(1), "tcp://192.0.2.22:7400")
    // A node without a host is on [cluster] host (127.0.0.1 by default).
    XCTAssertEqual(c.replicaControl(2), "tcp://127.0.0.1:7112")
    XCTAssertEqual(c.replicaFetchEndpoint, "tcp://192.0.2.10:7101")
    XCTAssertEqual(c.replicaVotesEndpoint, "tcp://192.0.2.11:7103")
    // Metrics listen on the node's own bind address, and are scraped at its host.
    XCTAssertEqual(c.metricsAddress(node: "r2").host, "192.0.2.22")
    XCTAssertEqual(c.metricsAddress(node: "voter").host, "0.0.0.0")
    XCTAssertEqual(c.metricsURL(node: "voter"), "http://192.0.2.11:7151/metrics")
    XCTAssertEqual(c.nodeNames, ["sequencer", "r1", "r2", "r3", "voter"])
  }

  func testWithoutNodeTablesTheLayoutIsTheOneHostOne() throws {
    let c = try ClusterConfig.load(Paths.packageRoot + "/Config/local.toml")
    XCTAssertEqual(c.ingest, "tcp://127.0.0.1:7100")
    XCTAssertEqual(c.ingestBind, c.ingest)
    XCTAssertEqual(c.voterPublish, "tcp://127.0.0.1:7105")
    XCTAssertEqual(c.voterStream, "tcp://127.0.0.1:7108")
    XCTAssertEqual(c.replicaControl(2), "tcp://127.0.0.1:7112")
    XCTAssertEqual(c.replicaControlBind(2), "tcp://127.0.0.1:7112")
    XCTAssertEqual(Set(c.nodesHere()), Set(c.nodeNames), "every node of a loopback config is here")
  }

  func testTheShippedHostLayoutsLoad() throws {
    for (name, replicas) in [("hosts-3", 3), ("hosts-5", 5)] {
      let c = try ClusterConfig.load(Paths.packageRoot + "/Config/\(name).toml")
      XCTAssertEqual(c.replicas.count, replicas, name)
      let hosts = Set(c.nodeNames.map { c.host(node: $0) })
      XCTAssertGreaterThanOrEqual(hosts.count, 3, "\(name) spreads its nodes over hosts")
      XCTAssertTrue(hosts.allSatisfy { $0.hasPrefix("192.0.2.") }, "\(name): documentation addresses only")
      XCTAssertTrue(c.nodesHere().isEmpty, "\(name): no node is on this machine")
    }
  }

  func assertError(_ text: String, mentions: [String], file: StaticString = #filePath, line: UInt = #line) {
    do {
      _ = try ClusterConfig.parse(text, file: "/etc/tally/hosts.toml")
      XCTFail("parsed a broken config", file: file, line: line)
    } catch {
      for m in ["/etc/tally/hosts.toml"] + mentions {
        XCTAssertTrue(
          error.description.contains(m), "mentions \(m): \(error.description)", file: file, line: line)
      }
    }
  }

  func testNodeTablesAreCheckedStrictly() {
    assertError(
      "[sequencer]\nhost = \"192.0.2.1\"\ningest_prot = 7000\n[[replica]]\nid = \"a\"\n",
      mentions: [":3:", "ingest_prot", "allowed", "ingest_port", "fetch_port", "control_port", "bind"])
    assertError(
      "[voter]\nadress = \"192.0.2.1\"\n[[replica]]\nid = \"a\"\n",
      mentions: [":2:", "adress", "stream_replay_port", "collect_port"])
    assertError(
      "[[replica]]\nid = \"a\"\nhots = \"192.0.2.1\"\n", mentions: [":3:", "hots", "host", "control_port"])
    assertError(
      "[sequencer]\nhost = \"tcp://192.0.2.1\"\n[[replica]]\nid = \"a\"\n",
      mentions: [":2:", "[sequencer] host", "not a host", "allowed"])
    assertError("[voter]\nbind = \"*\"\n[[replica]]\nid = \"a\"\n", mentions: [":2:", "[voter] bind"])
    assertError(
      "[[replica]]\nid = \"a\"\n[[replica]]\nid = \"b\"\ncontrol_port = 70000\n",
      mentions: [":5:", "control_port", "1...65535"])
    assertError("[sequencer]\nhost = 5\n[[replica]]\nid = \"a\"\n", mentions: ["host", "string"])
    assertError("[[replica]]\nid = \"voter\"\n", mentions: [":2:", "node name"])
  }

  func testTwoListenersOnOneAddressAndPortAreRefused() {
    // Two replicas on one host with one control port.
    assertError(
      "[[replica]]\nid = \"a\"\ncontrol_port = 9000\n[[replica]]\nid = \"b\"\ncontrol_port = 9000\n",
      mentions: ["b control", "a control", "127.0.0.1:9000"])
    // A port of the sequencer moved onto the voter's default.
    assertError(
      "[cluster]\nbase_port = 7100\n[sequencer]\ncontrol_port = 7104\n[[replica]]\nid = \"a\"\n",
      mentions: ["voter control", "sequencer control", "7104"])
    // A wildcard bind collides with the same port on any address of its machine...
    assertError(
      "[voter]\nbind = \"0.0.0.0\"\ncollect_port = 7000\n[[replica]]\nid = \"a\"\ncontrol_port = 7000\n",
      mentions: ["0.0.0.0", "7000"])
    // ...not with one on another machine.
    XCTAssertNoThrow(
      try ClusterConfig.parse(
        "[voter]\nbind = \"0.0.0.0\"\ncollect_port = 7000\n[[replica]]\nid = \"a\"\nhost = \"192.0.2.5\"\ncontrol_port = 7000\n",
        file: "ok.toml"))
    // The same ports on different hosts are fine.
    XCTAssertNoThrow(
      try ClusterConfig.parse(
        "[[replica]]\nid = \"a\"\nhost = \"192.0.2.5\"\ncontrol_port = 9000\n[[replica]]\nid = \"b\"\nhost = \"192.0.2.6\"\ncontrol_port = 9000\n",
        file: "ok.toml"))
  }
}
