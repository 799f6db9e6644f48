// The dashboard's business view from real effect records: the worked example
// (Tests/Fixtures/basic) run by the embedded engine with effects on, fed to
// BusinessView, gives the figures of its expected SPEC §5 files.
import Foundation
import KernelAPI
import KernelV1
import TallyEngine
import TallyFormat
import XCTest

@testable import TallyOps

final class BusinessViewTests: XCTestCase {
  static let basic = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/basic").path

  /// The basic example's event records (seq 1...), decoded.
  func basicEvents() throws -> [EffectEvent] {
    let reference = try FileIO.loadReference(Self.basic + "/reference")
    var lines: [ArraySlice<UInt8>] = []
    try EventLines.forEach(files: [Self.basic + "/events.txt"]) { lines.append($0.bytes) }
    var engine = Engine<V1Kernel>(reference: reference)
    engine.enableEffects()
    // The records name reference rows by id: their keys come with the snapshot.
    var decoder = EffectDecoder()
    try decoder.learnKeys(engine.state.snapshotEffects())
    for (i, line) in lines.enumerated() { engine.apply(line: line, seq: Int64(i + 1)) }
    return try decoder.decode(engine.takeEffects())
  }

  /// The hub decodes the voted stream's records itself (they name rows by id): seeded
  /// with the reference snapshot's keys, fed batches in order, a batch delivered again
  /// changes nothing; without the seed the records do not decode.
  func testTheHubDecodesBatchesInOrderAndSkipsWhatItHas() throws {
    let reference = try FileIO.loadReference(Self.basic + "/reference")
    var lines: [ArraySlice<UInt8>] = []
    try EventLines.forEach(files: [Self.basic + "/events.txt"]) { lines.append($0.bytes) }
    var engine = Engine<V1Kernel>(reference: reference)
    engine.enableEffects()
    let snapshot = engine.state.snapshotEffects()
    var batches: [[UInt8]] = []
    for (i, line) in lines.enumerated() {
      engine.apply(line: line, seq: Int64(i + 1))
      if (i + 1) % 10 == 0 || i + 1 == lines.count { batches.append(engine.takeEffects()) }
    }
    XCTAssertThrowsError(try DashboardHub().apply(records: batches[0]), "records decoded without their keys")
    let hub = DashboardHub()
    try hub.seed(snapshot: snapshot)
    try hub.apply(records: batches[0])
    XCTAssertEqual(hub.next, 11)
    for batch in batches.dropFirst() {
      try hub.apply(records: batch)
      try hub.apply(records: batch)  // delivered twice
    }
    XCTAssertEqual(hub.next, Int64(lines.count) + 1)
    let json = hub.snapshot().json
    XCTAssertTrue(json.contains("\"trades_cleared\":6,\"trades_cancelled\":2"), json)
    XCTAssertTrue(json.contains("P0001"), json)
  }

  func testTheWorkedExampleGivesTheExpectedFigures() throws {
    var view = BusinessView()
    XCTAssertEqual(view.openDate, 0)
    XCTAssertEqual(view.tradesCleared, 0)
    let events = try basicEvents()
    // Through seq 17 (SETTLE of 20260106): P0002 has defaulted on 20260105's row.
    view.apply(events.filter { $0.seq <= 17 })
    XCTAssertEqual(view.lastSeq, 17)
    XCTAssertEqual(view.openDate, 20_260_105)
    XCTAssertEqual(view.defaultsOutstanding.rows, 1)
    XCTAssertEqual(BusinessView.yuan(view.defaultsOutstanding.owedFen), "13025.22")
    XCTAssertEqual(view.settlementRowsByStatus[.defaulted], 1)
    XCTAssertEqual(view.settlementRowsByStatus[.settled], 1)
    let p2 = view.openDay.first { $0.participant == "P0002" }
    XCTAssertEqual(p2?.status, .defaulted)
    XCTAssertEqual(p2.map { BusinessView.yuan($0.netFen) }, "-13025.22")
    XCTAssertEqual(view.tradesCleared, 4)  // trades 1, 2, 3 and 5 (4, 6, 7 and the second 1 rejected)
    XCTAssertEqual(view.tradesCancelled, 1)  // CANCEL of 3
    // The rest: trades 1, 2, 3, 5, 9, 10 applied; CANCELs of 3 and 10 applied.
    view.apply(events.filter { $0.seq > 17 })
    XCTAssertEqual(view.lastSeq, Int64(events.count))
    XCTAssertEqual(view.tradesCleared, 6)
    XCTAssertEqual(view.tradesCancelled, 2)
    XCTAssertEqual(view.openDate, 20_260_107)
    // settlement.csv: P0001's row of 20260107 (P0002's was cancelled away).
    let day = view.openDay.filter { $0.status != nil }
    XCTAssertEqual(day.map(\.participant), ["P0001"])
    XCTAssertEqual(day.map { BusinessView.yuan($0.netFen) }, ["-4.81"])
    XCTAssertEqual(day.first?.status, .settled)
    XCTAssertEqual(view.settlementRowsByStatus, [.pending: 0, .settled: 2, .defaulted: 0, .cured: 1])
    XCTAssertEqual(view.defaultsOutstanding.rows, 0)
    XCTAssertEqual(BusinessView.yuan(view.dividendTaxWithheldFen), "2.50")
    XCTAssertEqual(
      view.rejectionsByReason,
      [
        .insufficientHoldings: 3, .unknownAccount: 1, .duplicateTrade: 1, .alreadySettled: 1, .badDate: 1,
        .malformed: 1, .recordDatePassed: 1,
      ])
    // Cleared amounts and fees from clearing.csv's 20260107 rows of P0001.
    let clearing = try String(contentsOfFile: Self.basic + "/expected/clearing.csv", encoding: .utf8)
    var cleared: Int128 = 0
    var fees: Int128 = 0
    for line in clearing.split(separator: "\n").dropFirst() {
      let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
      guard f[0] == "20260107", f[2] == "P0001" else { continue }
      cleared += fen(f[6]) + fen(f[7])
      fees += fen(f[8]) + fen(f[9]) + fen(f[10]) + fen(f[11])
    }
    let p1 = view.openDay.first { $0.participant == "P0001" }
    XCTAssertGreaterThan(cleared, 0)
    XCTAssertEqual(p1?.clearedFen, cleared)
    XCTAssertEqual(p1?.feesFen, fees)

    let text = view.prometheus()
    XCTAssertTrue(text.contains("\ntally_trades_cleared_total 6\n"), text)
    XCTAssertTrue(text.contains("\ntally_rejections_total{reason=\"INSUFFICIENT_HOLDINGS\"} 3\n"), text)
    XCTAssertTrue(text.contains("\ntally_open_day_net_cash_yuan{participant=\"P0001\"} -4.81\n"), text)
    XCTAssertTrue(text.contains("\ntally_settlement_rows{status=\"CURED\"} 1\n"), text)
    XCTAssertTrue(text.contains("\ntally_dividend_tax_withheld_yuan 2.50\n"), text)
    let json = view.json(participantsMax: 1)
    XCTAssertTrue(json.contains("\"trades_cleared\":6"), json)
    XCTAssertTrue(json.contains("\"participants_total\":2"), json)
    XCTAssertTrue(json.contains("{\"participant\":\"P0001\",\"net\":\"-4.81\""), json)
    XCTAssertFalse(json.contains("\"P0002\""), "participantsMax bounds the rows: \(json)")
  }

  /// Rates come from the samples of the last `rateWindowSeconds`.
  func testRatesFromSamples() throws {
    var view = BusinessView()
    XCTAssertEqual(view.rates.tradesPerSecond, 0)
    view.sample(at: 100)
    let events = try basicEvents()
    view.apply(events)
    view.sample(at: 102)
    XCTAssertEqual(view.rates.tradesPerSecond, 3, accuracy: 1e-9)  // 6 trades in 2 s
    XCTAssertEqual(view.rates.seqsPerSecond, Double(events.count) / 2, accuracy: 1e-9)
    view.sample(at: 200)  // nothing since: the old samples fall out of the window
    XCTAssertEqual(view.rates.tradesPerSecond, 0)
  }

  func testYuan() {
    XCTAssertEqual(BusinessView.yuan(0), "0.00")
    XCTAssertEqual(BusinessView.yuan(5), "0.05")
    XCTAssertEqual(BusinessView.yuan(-481), "-4.81")
    XCTAssertEqual(BusinessView.yuan(1_302_328), "13023.28")
  }

  func fen(_ s: String) -> Int128 {
    let negative = s.hasPrefix("-")
    let parts = (negative ? String(s.dropFirst()) : s).split(separator: ".")
    let v = Int128(parts[0])! * 100 + (parts.count > 1 ? Int128(parts[1])! : 0)
    return negative ? -v : v
  }
}

final class DashboardHubTests: XCTestCase {
  /// The hub keeps the latest `alertsKeptMax` alert lines, read from the end of the file,
  /// and changes its version (what makes the SSE clients send) only when something changed.
  func testAlertsAreBoundedAndVersionsChangeOnlyWithTheState() throws {
    let path = NSTemporaryDirectory() + "dashboard-hub-\(getpid()).jsonl"
    defer { try? FileManager.default.removeItem(atPath: path) }
    let lines = (1...30).map { "{\"kind\":\"DISSENT\",\"first_seq\":\($0)}" }
    try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    let tail = DashboardHub.tailLines(path, max: DashboardHub.alertsKeptMax)
    XCTAssertEqual(tail, Array(lines.suffix(20)))
    XCTAssertEqual(DashboardHub.tailLines(path + ".missing", max: 5), [])

    let hub = DashboardHub()
    hub.setStatus("{\"healthy\":true}", alerts: lines, alertsTotal: 30)
    let (v1, json) = hub.snapshot()
    XCTAssertTrue(json.contains("\"first_seq\":30}"), json)
    XCTAssertTrue(json.contains("\"first_seq\":11}"), json)
    XCTAssertFalse(json.contains("\"first_seq\":10}"), "only the latest 20 are kept: \(json)")
    XCTAssertEqual(hub.snapshot().version, v1)
    hub.setStreamError("")  // unchanged
    XCTAssertEqual(hub.snapshot().version, v1)
    hub.setStreamError("the stream no longer holds seq 1")
    XCTAssertGreaterThan(hub.snapshot().version, v1)
    XCTAssertTrue(hub.snapshot().json.contains("\"stream_error\":\"the stream no longer holds seq 1\""))
  }
}
