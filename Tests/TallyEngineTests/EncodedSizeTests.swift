// The fixed encoding sizes KernelAPI names (`Lot.encodedBytes`,
// `PositionRecord.encodedFieldBytes`, `TradeRecord.encodedBytesWithoutId`), which the
// kernels' snapshot walks reserve room by, held to what the encoders write.
import KernelAPI
import XCTest

final class EncodedSizeTests: XCTestCase {
  func testALotIsItsNamedSize() {
    var w = ByteWriter()
    Lot(acquired: 20_260_105, creation: 7, accruedMicro: 1_234, quantity: 500).encode(into: &w)
    XCTAssertEqual(w.count, Lot.encodedBytes)
  }

  func testAPositionsFieldsAreTheirNamedSize() {
    var w = ByteWriter()
    PositionRecord(account: 3, security: 4, quantity: 900, available: 800, withheld: 100)
      .encodeFields(lotCount: 2, into: &w)
    XCTAssertEqual(w.count, PositionRecord.encodedFieldBytes)
  }

  func testATradeIsItsNamedSizeAndItsIdsBytes() throws {
    for id in ["T1", "20260105000001234", "交易-7"] {
      // A trade decoded from its id and the named number of bytes after it ends there,
      // and encodes to the same size again.
      var w = ByteWriter()
      w.string(id)
      w.raw([UInt8](repeating: 0, count: TradeRecord.encodedBytesWithoutId - 4))
      var r = ByteReader(w.bytes)
      let trade = try TradeRecord(from: &r)
      XCTAssertTrue(r.isAtEnd, "the decoder reads exactly the named size for \(id)")
      var again = ByteWriter()
      trade.encode(into: &again)
      XCTAssertEqual(again.count, TradeRecord.encodedBytesWithoutId + id.utf8.count, id)
    }
  }
}
