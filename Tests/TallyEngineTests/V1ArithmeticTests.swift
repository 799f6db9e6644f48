// What V1's faster arithmetic and layout rely on (KernelV1 Arithmetic.swift,
// ClearingKernelV1.swift, PositionDirectory.swift): the rounding by a power of ten
// (each scale a division by a literal) gives the quotient and rounding of a division
// by a runtime divisor at every edge; a trade cleared with its date's rates resolved
// beforehand is cleared as with the steps walked; the position directory's lines
// stay right through growth, copies and overflow.
import KernelAPI
import XCTest

@testable import KernelV1

final class V1ArithmeticTests: XCTestCase {
  /// The divisor as the program computes it at run time (not a literal).
  private func runtimePowerOfTen(_ scale: Int) -> UInt64 {
    var d: UInt64 = 1
    for _ in 0..<scale { d *= 10 }
    return d
  }

  /// Round half up by a runtime divisor, in 128 bits (`2r` cannot overflow).
  private func reference(_ m: UInt64, _ d: UInt64) -> UInt64 {
    let (q, r) = m.quotientAndRemainder(dividingBy: d)
    return UInt128(r) * 2 >= UInt128(d) ? q + 1 : q
  }

  /// Numerators around every multiple and half of `d` that matter: 0, 1, d - 1, d, d + 1,
  /// the halves, their neighbours at a few multiples, the top of UInt64 and the multiples
  /// of d and halves just below it, and pseudo-random values (a fixed LCG).
  private func edges(_ d: UInt64) -> [UInt64] {
    var values: [UInt64] = [0, 1, 2, d &- 1, d, d &+ 1, UInt64.max, UInt64.max - 1, UInt64.max / 2]
    let half = d / 2
    for k: UInt64 in [0, 1, 2, 3, 7, 1_000, 123_456_789] {
      let (base, overflow) = k.multipliedReportingOverflow(by: d)
      if overflow { continue }
      for delta in [half &- 1, half, half &+ 1, d &- 1] where base <= UInt64.max - delta {
        values.append(base + delta)
      }
    }
    let top = UInt64.max / d * d
    for m in [top, top &- 1, top &+ half, top &+ half &- 1, top &- d &+ half, top &- d &+ half &- 1]
    where m <= UInt64.max {
      values.append(m)
    }
    var x: UInt64 = 0x9E37_79B9_7F4A_7C15
    for _ in 0..<2_000 {
      x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      values.append(x)
      values.append(x >> (x & 63))
      let near = (x >> 8) / d * d
      if near <= UInt64.max - d { values.append(near + half - (x & 1)) }
    }
    return values
  }

  func testRoundedQuotientByPowerOfTenMatchesADivisionByARuntimeDivisor() {
    for scale in 0...19 {
      let d = runtimePowerOfTen(scale)
      for m in edges(d) {
        XCTAssertEqual(roundedQuotient(m, byPowerOfTen: scale), reference(m, d), "\(m) / 10^\(scale)")
      }
    }
    XCTAssertNil(roundedQuotient(5, byPowerOfTen: 20), "10^20 does not fit 64 bits")
    XCTAssertNil(roundedQuotient(5, byPowerOfTen: -1))
  }

  func testRoundHalfUpDivideByPowerOfTenMatchesTheGeneralDivision() {
    for scale in 0...38 {
      let d = powersOfTen[scale]
      var numerators: [Int128] = [0, 1, -1, d - 1, d, d + 1, d / 2, d / 2 + 1, -(d / 2), -(d / 2) - 1]
      numerators += [Int128(UInt64.max), Int128(UInt64.max) + 1, -Int128(UInt64.max), Int128.max / 3]
      for m in edges(scale <= 19 ? UInt64(d) : 7) {
        numerators.append(Int128(m))
        numerators.append(-Int128(m))
        numerators.append(Int128(m) << 40)
      }
      for n in numerators {
        XCTAssertEqual(
          roundHalfUpDivide(n, byPowerOfTen: scale), roundHalfUpDivide(n, by: d), "\(n) / 10^\(scale)")
      }
    }
  }

  /// The 64-bit product path of fees and amounts against Int128: products just below and
  /// above 2^64, results at Int64.max, negative and zero factors.
  func testRoundedProductIsTheInt128Rounding() {
    var factors: [Int64] = [0, 1, 2, 5, 9, 10, 15, 99, 1_000, Int64(Int32.max), 1 << 32, (1 << 32) + 1]
    factors += [Int64.max, Int64.max - 1, Int64.max / 10, Int64.max / 10 + 1, -1, Int64.min]
    var x: UInt64 = 77
    for _ in 0..<200 {
      x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      factors.append(Int64(bitPattern: x >> (x & 31)))
    }
    let rates: [UInt64] = [
      0, 1, 3, 487, 10, 1_000, 9_999_999_999_999_999_999, 1 << 32, (1 << 33) + 7, UInt64.max,
    ]
    for scale in 0...19 {
      for a in factors {
        for b in rates + factors.filter({ $0 >= 0 }).map({ UInt64($0) }) {
          let exact = roundHalfUpDivide(Int128(a) * Int128(b), byPowerOfTen: scale)
          if let fast = roundedProduct(a, b, byPowerOfTen: scale) {
            XCTAssertEqual(Int128(fast), exact, "\(a) × \(b) / 10^\(scale)")
          } else {
            // Only when the Int128 path is needed: a negative factor, or a product or
            // result beyond 64 bits.
            XCTAssertTrue(
              a < 0 || Int128(a) * Int128(b) > Int128(UInt64.max) || exact > Int128(Int64.max),
              "\(a) × \(b) / 10^\(scale) left the fast path")
          }
        }
      }
    }
  }

  /// Steps on several dates (some side-specific, one rate of 18 fraction digits, a kind
  /// without some fees), trades before, on and after each step: `clear` with `rates(on:)`
  /// is `clear` with the steps walked, with and without the planted fee fault.
  func testClearingWithResolvedRatesIsClearingWithTheStepsWalked() {
    let rows = [
      FeeRateRow(kind: .stock, fee: .handling, side: .both, rateText: "0.0000487", effectiveDate: 20_200_101),
      FeeRateRow(kind: .stock, fee: .handling, side: .both, rateText: "0.0000341", effectiveDate: 20_230_828),
      FeeRateRow(kind: .stock, fee: .regulatory, side: .both, rateText: "0.00002", effectiveDate: 20_200_101),
      FeeRateRow(kind: .stock, fee: .transfer, side: .both, rateText: "0.00001", effectiveDate: 20_220_429),
      FeeRateRow(kind: .stock, fee: .stamp, side: .sell, rateText: "0.001", effectiveDate: 20_080_919),
      FeeRateRow(kind: .stock, fee: .stamp, side: .sell, rateText: "0.0005", effectiveDate: 20_230_828),
      FeeRateRow(
        kind: .stock, fee: .stamp, side: .buy, rateText: "0.000123456789012345", effectiveDate: 20_240_101),
      FeeRateRow(kind: .fund, fee: .handling, side: .both, rateText: "0.0000487", effectiveDate: 20_200_101),
      FeeRateRow(kind: .fund, fee: .handling, side: .sell, rateText: "9.5", effectiveDate: 20_200_101),
      FeeRateRow(kind: .bond, fee: .handling, side: .both, rateText: "0.000001", effectiveDate: 20_230_101),
    ]
    let dates: [Int32] = [20_000_101, 20_080_919, 20_200_101, 20_220_428, 20_220_429, 20_230_828, 20_260_105]
    var x: UInt64 = 12_345
    for fault in [PlantedFault?.none, .feeRounding, .transfer] {
      let fees = ClearingKernelV1(feeRows: rows, plantedFault: fault)
      for date in dates {
        var rates = fees.rates(on: date)
        XCTAssertEqual(rates.date, date)
        for kind in SecurityKind.allCases {
          for _ in 0..<300 {
            x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let price = Int64(x >> 44) + 1
            let quantity = Int64((x >> 8) & 0xFFFFF) + 1
            XCTAssertEqual(
              ClearingKernelV1.clear(kind: kind, priceMilli: price, quantity: quantity, ratesAt: &rates),
              fees.clear(kind: kind, tradeDate: date, priceMilli: price, quantity: quantity))
          }
          for (price, quantity) in [(Int64(1), Int64(1)), (5, 1), (15, 1), (Int64.max / 4, 2)] {
            XCTAssertEqual(
              ClearingKernelV1.clear(kind: kind, priceMilli: price, quantity: quantity, ratesAt: &rates),
              fees.clear(kind: kind, tradeDate: date, priceMilli: price, quantity: quantity))
          }
        }
      }
    }
  }

  /// The directory's lines through growth (reallocations), a copy changed afterwards (a
  /// copy on write may move the lanes to another offset in a line) and overflow.
  func testPositionDirectoryThroughGrowthCopiesAndOverflow() {
    var directory = PositionDirectory()
    var expected: [Int64: Int32] = [:]
    var next: Int32 = 0
    func add(_ d: inout PositionDirectory, _ e: inout [Int64: Int32], account: Int32, security: Int32) {
      d.insert(account: account, security: security, position: next)
      e[PositionDirectory.key(account, security)] = next
      next += 1
    }
    for a in 0..<3_000 {
      directory.addAccount(Int32(a))
      // Accounts hold 0 to 11 positions: past eight, the overflow.
      for s in 0..<(a % 12) { add(&directory, &expected, account: Int32(a), security: Int32(s * 7 + a % 5)) }
    }
    func check(_ d: PositionDirectory, _ e: [Int64: Int32], accounts: Int) {
      for a in 0..<accounts {
        for s in 0..<100 {
          XCTAssertEqual(
            d.find(account: Int32(a), security: Int32(s)), e[PositionDirectory.key(Int32(a), Int32(s))],
            "account \(a) security \(s)")
        }
      }
    }
    check(directory, expected, accounts: 3_000)
    var copy = directory
    var copyExpected = expected
    for a in 0..<3_000 where a % 3 == 0 {
      add(&copy, &copyExpected, account: Int32(a), security: 99)
    }
    copy.addAccount(3_000)
    add(&copy, &copyExpected, account: 3_000, security: 5)
    check(directory, expected, accounts: 3_000)
    check(copy, copyExpected, accounts: 3_001)
    XCTAssertEqual(directory.accountCount, 3_000)
    XCTAssertEqual(copy.accountCount, 3_001)
  }
}
