// V2's fee on a day's reduced rate (`V2DayRate`: multiplier / power of ten, a 64-bit
// division) must be exactly the fee on the rate in 10^-18 units (a full-width division):
// the same quotient and the same half-up rounding, truncated or not, for rates of any
// number of significant digits and for amounts whose product overflows 64 bits.
import XCTest

@testable import KernelV2

final class FeeRateTests: XCTestCase {
  /// Rates as `n / 10^18`: the built-in ones, zero, whole numbers, and 1 to 18 digits.
  static let rates: [UInt64] = [
    0, 48_700_000_000_000, 34_100_000_000_000, 20_000_000_000_000, 10_000_000_000_000,
    1_000_000_000_000_000, 500_000_000_000_000, 40_000_000_000_000, 1_000_000_000_000,
    1_000_000_000_000_000_000, 9_999_999_999_999_999_999, 1, 7, 123_456_789_012_345_678,
    5_000_000_000_000_000_000, 333_333_333_333_333_333, 250_000_000_000_000_000,
  ]

  func testReducedRateGivesTheFullWidthFee() {
    // A fixed linear congruential sequence: the same amounts on every run.
    var state: UInt64 = 0x1234_5678_9abc_def1
    func next() -> UInt64 {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return state
    }
    var amounts: [Int64] = [0, 1, 5, 9, 10, 49, 50, 51, 99, 100, 1_999_999, 2_000_000, 1 << 40]
    for _ in 0..<20_000 {
      // Amounts of 1 to 18 digits, so that some products overflow 64 bits.
      let digits = Int(next() % 18) + 1
      var limit: UInt64 = 1
      for _ in 0..<digits { limit *= 10 }
      amounts.append(Int64(next() % limit))
    }
    for n in Self.rates {
      let day = V2DayRate(n)
      XCTAssertEqual(day.rate, n)
      if n != 0 {
        XCTAssertEqual(day.multiplier.multipliedFullWidth(by: 1_000_000_000_000_000_000 / day.divisor).low, n)
      }
      for a in amounts {
        // A fee of 2^63 fen and more traps on both paths: those pairs are not compared.
        let p = UInt64(a).multipliedFullWidth(by: n)
        if p.high >= V2FeeSchedule.rateScale / 2 { continue }
        for truncate in [false, true] {
          XCTAssertEqual(
            V2FeeSchedule.fee(amountFen: a, day, truncate: truncate),
            V2FeeSchedule.fee(amountFen: a, rate: n, truncate: truncate), "amount \(a) rate \(n)")
        }
      }
    }
  }

  func testAmountIsRoundedHalfUp() {
    XCTAssertEqual(V2FeeSchedule.amountFen(priceMilli: 27_400, quantity: 1_600), 4_384_000)
    XCTAssertEqual(V2FeeSchedule.amountFen(priceMilli: 2_345, quantity: 1), 235)
    XCTAssertEqual(V2FeeSchedule.amountFen(priceMilli: 2_344, quantity: 1), 234)
    // The largest price and quantity (a product just below 2^64).
    XCTAssertEqual(
      V2FeeSchedule.amountFen(priceMilli: 999_999_999, quantity: 9_999_999_999), 999_999_998_900_000_000)
  }
}
