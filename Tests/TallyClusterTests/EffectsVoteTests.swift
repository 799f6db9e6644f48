// Issue 9: votes on effects, every batch. A replica on a kernel with a planted fault
// (fee rounding, transfer, settlement, corporate action; in v1 or v2) is outvoted in the journal batch of its first
// differing effect, and the DISSENT names that seq and the differing rows. The seq
// is computed independently, from two embedded runs' effect files.
import Foundation
import KernelAPI
import XCTest

final class EffectsVoteTests: ClusterTestCase {
  /// The first seq whose effect records differ between two embedded runs.
  func firstDifferingSeq(_ m: Market, kernel: String) throws -> Int64? {
    var decoded: [[EffectEvent]] = []
    for k in ["v1", kernel] {
      let file = work + "/effects-\(k).bin"
      let r = try runCommand(
        Paths.tally,
        [
          "run", "--kernel", k, "--reference", m.reference, "--out", work + "/out-\(k)", "--effects", file,
          "--effects-format", "binary", "--quiet", m.events,
        ], workDir: work)
      guard r.status == 0 else { throw TestFailure("tally run --kernel \(k) failed: \(r.output)") }
      decoded.append(try EffectDecoder.decodeFile([UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))))
    }
    for (a, b) in zip(decoded[0], decoded[1]) where a != b { return a.seq }
    return nil
  }

  func runFaulty(kernel: String, basePort: Int, field: String, record: String, tyingBonus: Bool = false)
    throws
  {
    try FileManager.default.createDirectory(atPath: work + "/" + kernel, withIntermediateDirectories: true)
    let m = try Market.generate(in: work + "/" + kernel, days: 3, tradesPerDay: 1_500, seed: 7)
    if tyingBonus { try m.insertTyingBonus(work: work) }
    guard let expected = try firstDifferingSeq(m, kernel: kernel) else {
      return XCTFail("\(kernel): the planted fault changes no effect on this market")
    }
    let config = """
      [cluster]
      name = "fx-\(kernel)"
      base_port = 7100

      [limits]
      heartbeat_ms = 200
      checkpoint_events = 5000
      repairs_max = 1

      """ + TestCluster.replicaTables(third: kernel)
    let c = try cluster(basePort: basePort, reference: m.reference, configText: config)
    try c.up()
    defer { c.down() }
    try c.submit([m.events], batchLines: 400)
    try c.report(work + "/voted-\(kernel)")
    assertSameFolders(work + "/voted-\(kernel)", m.expected, "\(kernel): voted report")
    let dissents = c.alerts().filter { $0["kind"] as? String == "DISSENT" }
    guard let first = dissents.first else { return XCTFail("\(kernel): no DISSENT: \(c.alerts())") }
    XCTAssertTrue(dissents.allSatisfy { $0["replica"] as? String == "r3" }, "\(kernel): \(dissents)")
    XCTAssertEqual(first["kernel"] as? String, kernel)
    let firstSeq = (first["first_seq"] as? NSNumber)?.int64Value
    let batchFirst = (first["batch_first_seq"] as? NSNumber)?.int64Value
    let batchLast = (first["last_seq"] as? NSNumber)?.int64Value
    XCTAssertEqual(
      firstSeq, expected, "\(kernel): the alert names another seq than the first differing effect")
    // Outvoted in the batch that holds that seq (batches are 400 lines: not 10,000 events later).
    if let batchFirst, let batchLast {
      XCTAssertTrue(
        (batchFirst...batchLast).contains(expected), "\(kernel): batch \(batchFirst)...\(batchLast)")
    } else {
      XCTFail("\(kernel): the alert names no batch: \(first)")
    }
    // The event the differing rows came from, as journaled.
    XCTAssertTrue(
      (first["event"] as? String ?? "").hasPrefix(record + ","), "\(kernel): event \(first["event"] ?? "-")")
    let rows = first["rows"] as? [String] ?? []
    XCTAssertFalse(rows.isEmpty, "\(kernel): no differing rows named: \(first)")
    XCTAssertTrue(rows.joined().contains(field), "\(kernel): rows do not name \(field): \(rows)")
    // Rows are named by their keys (the voter knows the reference rows' keys and reads
    // the batch's own key records), not by placeholders such as `position#17`.
    XCTAssertFalse(rows.joined().contains("#"), "\(kernel): rows named by id: \(rows)")
    XCTAssertTrue(
      rows.joined().contains(" vs ") || rows.joined().contains("(majority only)"), "\(kernel): rows: \(rows)")
    // Once per incident (and once more when it stays quarantined after its repair).
    XCTAssertLessThanOrEqual(dissents.count, 2, "\(kernel): \(dissents)")
    XCTAssertTrue(
      c.logs().contains("first at seq \(expected)"), "\(kernel): the voter's log does not explain")
    let status = try c.status()
    XCTAssertEqual(status["r3"]?["quarantined"] as? Bool, true)
    print("issue 9: \(kernel) first differing effect at seq \(expected); alerted: \(first["detail"] ?? "")")
  }

  func testFeeRoundingFaultIsOutvotedAtItsFirstDifferingEffect() throws {
    try runFaulty(kernel: "v1-faulty", basePort: 17_800, field: "handling_fee", record: "TRADE")
  }

  func testTransferFaultIsOutvotedAtItsFirstDifferingEffect() throws {
    try runFaulty(kernel: "v1-faulty-transfer", basePort: 17_820, field: "available", record: "TRADE")
  }

  func testSettlementFaultIsOutvotedAtItsFirstDifferingEffect() throws {
    try runFaulty(kernel: "v1-faulty-settlement", basePort: 17_840, field: "withheld", record: "SETTLE")
  }

  func testCorporateActionFaultIsOutvotedAtItsFirstDifferingEffect() throws {
    try runFaulty(
      kernel: "v1-faulty-action", basePort: 18_600, field: "value", record: "CLOSE", tyingBonus: true)
  }

  // The same four faults planted in the second version (issue 11): r3 runs v2 with the
  // fault, r1 v1 and r2 v2 outvote it.
  func testV2FeeRoundingFaultIsOutvoted() throws {
    try runFaulty(kernel: "v2-faulty", basePort: 18_620, field: "handling_fee", record: "TRADE")
  }

  func testV2TransferFaultIsOutvoted() throws {
    try runFaulty(kernel: "v2-faulty-transfer", basePort: 18_640, field: "available", record: "TRADE")
  }

  func testV2SettlementFaultIsOutvoted() throws {
    try runFaulty(kernel: "v2-faulty-settlement", basePort: 18_660, field: "withheld", record: "SETTLE")
  }

  func testV2CorporateActionFaultIsOutvoted() throws {
    try runFaulty(
      kernel: "v2-faulty-action", basePort: 18_680, field: "value", record: "CLOSE", tyingBonus: true)
  }

}
