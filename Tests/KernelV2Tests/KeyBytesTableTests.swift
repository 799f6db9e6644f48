// V2's identifier table with `digitRuns` (the trade-id table): digit keys hash by runs
// of consecutive values; every key must still be found exactly, whatever its shape.
import KernelAPI
import XCTest

@testable import KernelV2

final class KeyBytesTableTests: XCTestCase {
  func testDigitRunsFindEveryKeyAndNoOther() {
    var keys: [String] = []
    for i in 0..<20_000 { keys.append(String(i)) }
    // Leading zeros, other lengths, long keys, non-digit keys, a run's boundaries.
    keys += ["007", "0007", "00", "000", "18446744073709551615", "9999999999999999"]
    keys += ["1234567890123456", "12345678901234567", "T1", "1T", "12:34", "/0", "٣", ""]
    keys += (0..<64).map { "A1000000" + String($0) }
    for salted in [false, true] {
      var table = KeyBytesTable(digitRuns: true)
      var plain = KeyBytesTable()
      for (n, key) in keys.enumerated() {
        let salt: Int32 = salted ? Int32(n % 3) : 0
        XCTAssertNil(table.find(key, salt: salt), key)
        XCTAssertEqual(table.insert(key, salt: salt), Int32(n))
        plain.insert(key, salt: salt)
      }
      for (n, key) in keys.enumerated() {
        let salt: Int32 = salted ? Int32(n % 3) : 0
        XCTAssertEqual(table.find(key, salt: salt), Int32(n), key)
        XCTAssertEqual(table.find(key, salt: salt), plain.find(key, salt: salt), key)
        XCTAssertNil(table.find(key, salt: salt + 3), key)
        var bytes = Array(key.utf8)
        bytes.withUnsafeMutableBytes { b in
          XCTAssertEqual(table.find(table.probe(UnsafeRawBufferPointer(b), salt: salt)), Int32(n), key)
        }
      }
      // The same keys added through probes: the same ids, found alike.
      var probed = KeyBytesTable(digitRuns: true)
      for (n, key) in keys.enumerated() {
        let salt: Int32 = salted ? Int32(n % 3) : 0
        var bytes = Array(key.utf8)
        bytes.withUnsafeMutableBytes { b in
          XCTAssertEqual(probed.insert(probed.probe(UnsafeRawBufferPointer(b), salt: salt)), Int32(n), key)
        }
      }
      for (n, key) in keys.enumerated() {
        let salt: Int32 = salted ? Int32(n % 3) : 0
        XCTAssertEqual(probed.find(key, salt: salt), Int32(n), key)
      }
      for miss in ["20000", "020000", "00000", "A100000064", "T2", "12345678901234568"] {
        XCTAssertNil(table.find(miss, salt: 0), miss)
      }
    }
  }

  func testDigitValue() {
    func value(_ s: String) -> UInt64? {
      var k = s
      return k.withUTF8 { b in
        let (k0, k1) = KeyBytesTable.words(UnsafeRawBufferPointer(b))
        return KeyBytesTable.digitValue(k0, k1, count: b.count)
      }
    }
    XCTAssertEqual(value("0"), 0)
    XCTAssertEqual(value("1000000"), 1_000_000)
    XCTAssertEqual(value("0012"), 12)
    XCTAssertEqual(value("1234567890123456"), 1_234_567_890_123_456)
    XCTAssertNil(value(""))
    XCTAssertNil(KeyBytesTable.digitValue(0x3030_3030_3030_3030, 0x3030_3030_3030_3030, count: 17))
    XCTAssertNil(value("12a"))
    XCTAssertNil(value("/"))
    XCTAssertNil(value(":"))
  }
}

final class TradeRowLayoutTests: XCTestCase {
  func testTradeRowIsPlainAndKeepsItsFlag() {
    XCTAssertEqual(MemoryLayout<V2Trade>.stride, 56)
    XCTAssertTrue(_isPOD(V2Trade.self))
    var t = V2Trade(
      idWord: V2Trade.textTag | 1, amountFen: 5, quantity: 100, date: 20_260_105, security: 3, buyAccount: 4,
      sellAccount: 5, buyParticipant: 6, sellParticipant: 7, sliceStart: 8, sliceCount: Int32.max,
      cancelled: false)
    XCTAssertFalse(t.cancelled)
    t.cancelled = true
    XCTAssertTrue(t.cancelled)
    XCTAssertEqual(t.sliceCount, Int32.max)
    t.cancelled = false
    XCTAssertFalse(t.cancelled)
    XCTAssertEqual(t.sliceCount, Int32.max)
  }
}
