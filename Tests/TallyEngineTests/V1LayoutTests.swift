// What V1's compact in-memory layout relies on (KernelV1 TradeTable.swift, LotPool.swift):
// the row sizes it was made for, the trade-id index through growth and hash-tag
// collisions, and that trade rows give the canonical bytes back, whether their clearing
// is computed again from the price (rows applied here) or kept as decoded (restored).
import KernelAPI
import TallyEngine
import XCTest

@testable import KernelV1

final class V1LayoutTests: XCTestCase {
  func testCompactRowSizes() {
    XCTAssertEqual(MemoryLayout<TradeRow>.stride, 88, "a trade row is half a TradeRecord (176)")
    XCTAssertEqual(MemoryLayout<LotPool.Node>.stride, 32, "a lot with its link in 32 bytes")
  }

  func testTradeIndexFindsEveryRowThroughGrowthAndTagCollisions() {
    var index = TradeIndex()
    // Every fourth key shares its upper hash bits (tag and home slot) with the one before.
    func hash(_ i: Int) -> UInt64 { mix64(UInt64(i / 4 * 2 + (i % 4 == 1 ? 0 : i % 4))) }
    let n = 5_000
    for i in 0..<n { index.insert(hash: hash(i), row: Int32(i)) }
    XCTAssertEqual(index.count, n)
    for i in 0..<n { XCTAssertEqual(index.find(hash: hash(i)) { $0 == Int32(i) }, Int32(i)) }
    XCTAssertNil(index.find(hash: hash(7)) { $0 == -1 }, "a hash match alone finds nothing")
    index.set(hash: hash(9), row: 77_777) { $0 == 9 }
    XCTAssertEqual(index.find(hash: hash(9)) { $0 == 77_777 }, 77_777)
    XCTAssertNil(index.find(hash: hash(9)) { $0 == 9 }, "set replaces the row of its key")
    XCTAssertEqual(index.count, n)
  }

  /// A state restored from its canonical rows (trade clearings kept as decoded) and the
  /// state it came from (clearings computed from the price) encode alike, and go on alike:
  /// the rest of the stream and a CANCEL of every trade of the open day.
  func testRestoredTradeRowsEncodeAndCancelAsTheOriginal() throws {
    let m = try TestMarket.generate("v1layout", seed: 7, days: 3, tradesPerDay: 300, accounts: 40)
    addTeardownBlock { removeDirectory(m.directory) }
    let lastClose = try XCTUnwrap(m.lines.lastIndex { $0.starts(with: Array("CLOSE".utf8)) })
    var original = Engine<V1Kernel>(reference: m.reference)
    for i in 0..<(lastClose - 20) { original.apply(line: m.lines[i], seq: Int64(i + 1)) }
    var a = original.state
    var b = try V1Kernel.restore(opening: V1Kernel(reference: m.reference, plantedFault: nil)) { put in
      var rows: [(StateTable, Int32, [UInt8])] = []
      a.forEachEncodedRow { rows.append(($0, $1, $2)) }
      for (table, id, bytes) in rows { try put(table, id, bytes) }
    }
    XCTAssertEqual(a.computeChecksum(), b.computeChecksum())
    XCTAssertTrue(b.trades.rows.allSatisfy(\.clearingRestored))
    XCTAssertEqual(
      (0..<a.trades.count).map { a.tradeRecord($0) }, (0..<b.trades.count).map { b.tradeRecord($0) })
    let day = try XCTUnwrap(a.days.rows.last)
    XCTAssertGreaterThan(day.tradeEnd, day.tradeStart)
    var seq = a.appliedSeq
    var applied = 0
    for t in day.tradeStart..<day.tradeEnd {
      seq += 1
      let cancel = Event.cancel(date: day.date, tradeId: a.trades.rows[Int(t)].tradeId.text)
      let outcome = a.apply(cancel, seq: seq)
      XCTAssertEqual(outcome, b.apply(cancel, seq: seq), "trade row \(t)")
      if outcome == .applied { applied += 1 }
    }
    XCTAssertGreaterThan(applied, 0, "some cancels apply (their clearing is read back)")
    XCTAssertEqual(a.computeChecksum(), b.computeChecksum())
    XCTAssertEqual(a.report(holdings: true), b.report(holdings: true))
  }
}
