// V2 stores trade rows without their clearing figures and recomputes them; a restored
// row whose figures differ from the recomputation (written elsewhere) must still encode
// back byte for byte.
import KernelAPI
import KernelV2
import XCTest

final class TradeRowTests: XCTestCase {
  func testRestoredTradeRowWithOtherFiguresEncodesAsStored() throws {
    let dir = fixturesRoot + "/gen-seed21"
    let reference = try loadReference(dir + "/reference")
    var k = V2Kernel(reference: reference, plantedFault: nil)
    for (i, line) in eventLines(dir + "/events.txt").enumerated() { applyLine(&k, line, seq: Int64(i + 1)) }
    var rows: [(StateTable, Int32, [UInt8])] = []
    k.forEachEncodedRow { t, id, bytes in rows.append((t, id, bytes)) }
    // Change one trade row's handling fee (buyer side) and its buyer net to match.
    guard let at = rows.firstIndex(where: { $0.0 == .trades }) else { return XCTFail("no trade rows") }
    var r = ByteReader(rows[at].2)
    var t = try TradeRecord(from: &r)
    t.clearing.buyerFees.handling += 1
    t.clearing.buyerNetFen -= 1
    var w = ByteWriter(capacity: 256)
    t.encode(into: &w)
    rows[at].2 = w.bytes
    let restored = try V2Kernel.restore(opening: V2Kernel(reference: reference, plantedFault: nil)) { put in
      for (table, id, bytes) in rows { try put(table, id, bytes) }
    }
    var again: [(StateTable, Int32, [UInt8])] = []
    restored.forEachEncodedRow { t, id, bytes in again.append((t, id, bytes)) }
    XCTAssertEqual(again.count, rows.count)
    for (x, y) in zip(rows, again) {
      XCTAssertTrue(x.0 == y.0 && x.1 == y.1 && x.2 == y.2, "\(x.0.name) row \(x.1) differs after restore")
    }
  }
}
