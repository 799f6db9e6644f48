import Foundation
import XCTest

@testable import TallyOps

final class OpsMetricsTests: XCTestCase {
  /// HELP lines go before each known family's TYPE line; unknown families get none.
  func testHelpLinesAreAddedBeforeTypeLines() {
    let text = "# TYPE tally_journal_seq gauge\ntally_journal_seq 5.0\n# TYPE other gauge\nother 1\n"
    XCTAssertEqual(
      OpsMetrics.withHelp(text),
      "# HELP tally_journal_seq Last seq journaled by the sequencer.\n# TYPE tally_journal_seq gauge\n"
        + "tally_journal_seq 5.0\n# TYPE other gauge\nother 1\n")
  }

  func testProcessMetricsAreInTheExposition() {
    let text = OpsMetrics.exposition(node: "r1", role: "replica", ready: true)
    XCTAssertTrue(text.contains("tally_build_info{node=\"r1\",role=\"replica\",version=\""), text)
    XCTAssertTrue(text.contains("\ntally_node_ready 1\n"), text)
    let rss = text.split(separator: "\n").first { $0.hasPrefix("tally_process_resident_memory_bytes ") }
    XCTAssertGreaterThan(Int(rss?.split(separator: " ").last ?? "") ?? 0, 1 << 20, text)
  }

  /// Health and readiness follow the loop: starting (healthy, not ready), running
  /// (both), stopping (healthy, not ready); the loop sees the stop request.
  func testProbeFollowsTheLoop() {
    let probe = NodeProbe(node: "voter", role: "voter")
    XCTAssertTrue(probe.isHealthy)
    XCTAssertFalse(probe.isReady)
    var samples = 0
    XCTAssertFalse(probe.tick { samples += 1 })
    XCTAssertFalse(probe.tick { samples += 1 })
    XCTAssertEqual(samples, 1, "sampled at most every \(NodeProbe.sampleNanosMin) ns")
    XCTAssertTrue(probe.isReady && probe.isHealthy)
    probe.requestStop()
    XCTAssertFalse(probe.isReady)
    XCTAssertTrue(probe.tick {})
  }
}
