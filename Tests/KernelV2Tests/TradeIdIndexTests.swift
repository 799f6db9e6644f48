// V2's trade-id index: decimal ids in a per-day window, every other id in a salted
// table; every id must be found exactly, for its day only, whatever its shape or
// where the window lies.
import KernelAPI
import XCTest

@testable import KernelV2

final class TradeIdIndexTests: XCTestCase {
  func testEveryIdFoundForItsDayOnly() {
    var keys: [(String, Int32)] = []
    // Day 0: consecutive ids from 1, then ids far beyond any window.
    for i in 1...5_000 { keys.append((String(i), 0)) }
    keys += [("99999999", 0), ("123456789012345678", 0), ("1234567890123456789", 0)]
    // Day 1: a window starting high; ids below it, leading zeros, non-digits, long ids.
    for i in 0..<3_000 { keys.append((String(2_026_010_500_000 + 7 * i), 1)) }
    keys += [("5", 1), ("0", 1), ("00", 1), ("007", 1), ("T1", 1), ("1T", 1), ("", 1)]
    keys += [("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 1), ("18446744073709551615", 1)]
    // Day 3 (day 2 has none): the same ids as day 0, found apart.
    for i in 1...100 { keys.append((String(i), 3)) }
    var index = TradeIdIndex()
    index.expectedTrades = 1_000
    for (n, (key, day)) in keys.enumerated() {
      XCTAssertNil(index.find(key, day: day), key)
      index.insert(key, day: day, id: Int32(n))
    }
    XCTAssertEqual(index.count, keys.count)
    for (n, (key, day)) in keys.enumerated() {
      XCTAssertEqual(index.find(key, day: day), Int32(n), key)
      var bytes = Array(key.utf8)
      bytes.withUnsafeMutableBytes { b in
        XCTAssertEqual(index.find(index.probe(UnsafeRawBufferPointer(b), day: day)), Int32(n), key)
      }
    }
    for (key, day) in [("5001", Int32(0)), ("01", 0), ("1", 1), ("1", 2), ("2026010500001", 1), ("T1", 0)] {
      XCTAssertNil(index.find(key, day: day), "\(key) day \(day)")
    }
    for (key, day) in [("7", Int32(4)), ("T1", 9)] { XCTAssertNil(index.find(key, day: day), key) }
  }

  func testDecimalValue() {
    func value(_ s: String) -> UInt64 {
      var k = s
      return k.withUTF8 { TradeIdIndex.decimalValue(UnsafeRawBufferPointer($0)) }
    }
    XCTAssertEqual(value("0"), 0)
    XCTAssertEqual(value("1"), 1)
    XCTAssertEqual(value("1000000"), 1_000_000)
    XCTAssertEqual(value("999999999999999999"), 999_999_999_999_999_999)
    for s in ["", "00", "01", "1234567890123456789", "1a", "-1", "+1", " 1", "１"] {
      XCTAssertEqual(value(s), TradeIdIndex.notDecimal, s)
    }
  }
}
