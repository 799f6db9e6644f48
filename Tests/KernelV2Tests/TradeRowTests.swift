// V2 stores trade rows without their clearing figures and recomputes them; a restored
// row whose figures differ from the recomputation (written elsewhere) must still encode
// back byte for byte.
import KernelAPI
import KernelV2
import XCTest

final class TradeRowTests: XCTestCase {
  func testRestoredTradeRowWithOtherFiguresEncodesAsStored() throws {
    // Change one trade row's handling fee (buyer side) and its buyer net to match.
    guard
      let (rows, restored) = try restoreWithEditedTradeRow(
        fixturesRoot + "/gen-seed21",
        edit: { t in
          t.clearing.buyerFees.handling += 1
          t.clearing.buyerNetFen -= 1
        })
    else { return }
    var again: [(StateTable, Int32, [UInt8])] = []
    restored.forEachEncodedRow { t, id, bytes in again.append((t, id, bytes)) }
    XCTAssertEqual(again.count, rows.count)
    for (x, y) in zip(rows, again) {
      XCTAssertTrue(x.0 == y.0 && x.1 == y.1 && x.2 == y.2, "\(x.0.name) row \(x.1) differs after restore")
    }
  }
}
