// Tests for ClearingKernelV2. Every expected number is worked out by hand in the
// comment beside it (amounts in fen, 1 fen = 0.01 CNY; rates from SPEC §2).
import TallyCore
import XCTest

@testable import ClearingKernelV2

final class ClearingKernelV2Tests: XCTestCase {
  let builtIn = ClearingKernelV2(feeRows: ClearingKernelV2.builtInFeeRows)

  /// Shorthand: a row of a custom fee table.
  func row(_ kind: SecurityKind, _ fee: FeeKind, _ side: FeeSide, _ rate: String, _ date: Int32)
    -> FeeRateRow
  {
    FeeRateRow(kind: kind, fee: fee, side: side, rateText: rate, effectiveDate: date)
  }

  func testVersionName() {
    XCTAssertEqual(builtIn.versionName, "v2")
  }

  func testBuiltInTableIsTheSpecTable() {
    // SPEC §2, nine rows, in the order written there.
    XCTAssertEqual(
      ClearingKernelV2.builtInFeeRows,
      [
        row(.stock, .handling, .both, "0.0000487", 19000101),
        row(.stock, .handling, .both, "0.0000341", 20230828),
        row(.stock, .regulatory, .both, "0.00002", 19000101),
        row(.stock, .transfer, .both, "0.00002", 19000101),
        row(.stock, .transfer, .both, "0.00001", 20220429),
        row(.stock, .stamp, .sell, "0.001", 19000101),
        row(.stock, .stamp, .sell, "0.0005", 20230828),
        row(.fund, .handling, .both, "0.00004", 19000101),
        row(.bond, .handling, .both, "0.000001", 19000101),
      ])
  }

  // MARK: - Built-in STOCK fees around each effective date
  //
  // One trade used throughout: 12.345 × 1000 = 12345.000 CNY = 1234500 fen.
  //   handling 0.0000487: 1234500 × 487 / 10^7 = 601201500 / 10^7 = 60.12015 → 60
  //   handling 0.0000341: 1234500 × 341 / 10^7 = 420964500 / 10^7 = 42.09645 → 42
  //   regulatory 0.00002: 1234500 × 2 / 10^5  = 24.69   → 25
  //   transfer 0.00002:   1234500 × 2 / 10^5  = 24.69   → 25
  //   transfer 0.00001:   1234500 / 10^5      = 12.345  → 12
  //   stamp 0.001:        1234500 / 10^3      = 1234.5  → 1235 (half up)
  //   stamp 0.0005:       1234500 × 5 / 10^4  = 617.25  → 617

  func stockTrade(_ date: Int32) -> TradeClearing {
    builtIn.clear(kind: .stock, tradeDate: date, priceMilli: 12_345, quantity: 1_000)
  }

  func testStockTransferDayBeforeCut20220428() {
    let c = stockTrade(20220428)
    XCTAssertEqual(c.amountFen, 1_234_500)
    // Old handling 60, regulatory 25, old transfer 25; stamp old 1235, seller only.
    XCTAssertEqual(c.buyerFees, SideFees(handling: 60, regulatory: 25, transfer: 25, stamp: 0))
    XCTAssertEqual(c.sellerFees, SideFees(handling: 60, regulatory: 25, transfer: 25, stamp: 1235))
    // buyer: −1234500 − (60+25+25) = −1234500 − 110 = −1234610
    XCTAssertEqual(c.buyerNetFen, -1_234_610)
    // seller: 1234500 − (60+25+25+1235) = 1234500 − 1345 = 1233155
    XCTAssertEqual(c.sellerNetFen, 1_233_155)
    XCTAssertEqual(c.buyerAvailableNow, 0)
  }

  func testStockTransferCutDay20220429() {
    let c = stockTrade(20220429)
    // New transfer 12; handling and stamp still old.
    XCTAssertEqual(c.buyerFees, SideFees(handling: 60, regulatory: 25, transfer: 12, stamp: 0))
    XCTAssertEqual(c.sellerFees, SideFees(handling: 60, regulatory: 25, transfer: 12, stamp: 1235))
    // buyer: −1234500 − 97 = −1234597; seller: 1234500 − 1332 = 1233168
    XCTAssertEqual(c.buyerNetFen, -1_234_597)
    XCTAssertEqual(c.sellerNetFen, 1_233_168)
  }

  func testStockHandlingAndStampDayBeforeCut20230827() {
    let c = stockTrade(20230827)
    XCTAssertEqual(c.buyerFees, SideFees(handling: 60, regulatory: 25, transfer: 12, stamp: 0))
    XCTAssertEqual(c.sellerFees, SideFees(handling: 60, regulatory: 25, transfer: 12, stamp: 1235))
    XCTAssertEqual(c.buyerNetFen, -1_234_597)
    XCTAssertEqual(c.sellerNetFen, 1_233_168)
  }

  func testStockHandlingAndStampCutDay20230828() {
    let c = stockTrade(20230828)
    XCTAssertEqual(c.buyerFees, SideFees(handling: 42, regulatory: 25, transfer: 12, stamp: 0))
    XCTAssertEqual(c.sellerFees, SideFees(handling: 42, regulatory: 25, transfer: 12, stamp: 617))
    // buyer: −1234500 − (42+25+12) = −1234579
    XCTAssertEqual(c.buyerNetFen, -1_234_579)
    // seller: 1234500 − (42+25+12+617) = 1234500 − 696 = 1233804
    XCTAssertEqual(c.sellerNetFen, 1_233_804)
  }

  func testStampIsNeverChargedToTheBuyer() {
    for date: Int32 in [19000101, 20220428, 20230827, 20230828, 20991231] {
      XCTAssertEqual(stockTrade(date).buyerFees.stamp, 0, "date \(date)")
      XCTAssertGreaterThan(stockTrade(date).sellerFees.stamp, 0, "date \(date)")
    }
  }

  func testBeforeTheFirstBuiltInRowNothingIsCharged() {
    // 18991231 is before every 19000101 row: no candidate, every fee 0.
    let c = stockTrade(18991231)
    XCTAssertEqual(c.buyerFees, SideFees())
    XCTAssertEqual(c.sellerFees, SideFees())
    XCTAssertEqual(c.buyerNetFen, -1_234_500)
    XCTAssertEqual(c.sellerNetFen, 1_234_500)
  }

  // MARK: - FUND and BOND

  func testFund() {
    // 3.912 × 1000 = 3912.000 CNY = 391200 fen; handling 0.00004:
    // 391200 × 4 / 10^5 = 15.648 → 16 each side; no other FUND rows.
    let c = builtIn.clear(kind: .fund, tradeDate: 20260105, priceMilli: 3_912, quantity: 1_000)
    XCTAssertEqual(c.amountFen, 391_200)
    XCTAssertEqual(c.buyerFees, SideFees(handling: 16))
    XCTAssertEqual(c.sellerFees, SideFees(handling: 16))
    XCTAssertEqual(c.buyerNetFen, -391_216)  // −391200 − 16
    XCTAssertEqual(c.sellerNetFen, 391_184)  // 391200 − 16
    XCTAssertEqual(c.buyerAvailableNow, 0)  // FUND: from the next OPEN
  }

  func testBondWithThreeDecimalPrice() {
    // 100.125 × 200 = 20025.000 CNY = 2002500 fen; handling 0.000001:
    // 2002500 / 10^6 = 2.0025 → 2 each side.
    let c = builtIn.clear(kind: .bond, tradeDate: 20260105, priceMilli: 100_125, quantity: 200)
    XCTAssertEqual(c.amountFen, 2_002_500)
    XCTAssertEqual(c.buyerFees, SideFees(handling: 2))
    XCTAssertEqual(c.sellerFees, SideFees(handling: 2))
    XCTAssertEqual(c.buyerNetFen, -2_002_502)
    XCTAssertEqual(c.sellerNetFen, 2_002_498)
    XCTAssertEqual(c.buyerAvailableNow, 200)  // BOND: available at once
  }

  // MARK: - Rounding

  func testFeeLandingExactlyOnHalfAFen() {
    // 10.20 × 750 = 7650.00 CNY = 765000 fen, on 20260107 (new rates):
    //   handling 765000 × 341 / 10^7 = 26.0865 → 26
    //   regulatory 765000 × 2 / 10^5 = 15.3 → 15
    //   transfer 765000 / 10^5 = 7.65 → 8
    //   stamp 765000 × 5 / 10^4 = 382.5 → 383 (exactly half a fen: up)
    let c = builtIn.clear(kind: .stock, tradeDate: 20260107, priceMilli: 10_200, quantity: 750)
    XCTAssertEqual(c.amountFen, 765_000)
    XCTAssertEqual(c.buyerFees, SideFees(handling: 26, regulatory: 15, transfer: 8, stamp: 0))
    XCTAssertEqual(c.sellerFees, SideFees(handling: 26, regulatory: 15, transfer: 8, stamp: 383))
    XCTAssertEqual(c.buyerNetFen, -765_049)  // −765000 − 49
    XCTAssertEqual(c.sellerNetFen, 764_568)  // 765000 − (49 + 383)
  }

  func testAmountRoundsHalfUp() {
    // 10.235 × 3 = 30.705 CNY = 3070.5 fen → 3071
    XCTAssertEqual(
      builtIn.clear(kind: .bond, tradeDate: 20260105, priceMilli: 10_235, quantity: 3).amountFen, 3_071)
    // 0.001 × 5 = 0.005 CNY = 0.5 fen → 1
    XCTAssertEqual(
      builtIn.clear(kind: .bond, tradeDate: 20260105, priceMilli: 1, quantity: 5).amountFen, 1)
    // 0.001 × 4 = 0.004 CNY = 0.4 fen → 0, and every fee of 0 is 0
    let tiny = builtIn.clear(kind: .stock, tradeDate: 20260105, priceMilli: 1, quantity: 4)
    XCTAssertEqual(tiny.amountFen, 0)
    XCTAssertEqual(tiny.buyerFees, SideFees())
    XCTAssertEqual(tiny.sellerFees, SideFees())
    XCTAssertEqual(tiny.buyerNetFen, 0)
    XCTAssertEqual(tiny.sellerNetFen, 0)
  }

  func testHalfUpBoundaryAtFullWidth() {
    // Rate 10^-18 (n = 1): fee = amount / 10^18.
    XCTAssertEqual(ClearingKernelV2.scaledFee(amountFen: 499_999_999_999_999_999, rate: 1), 0)
    XCTAssertEqual(ClearingKernelV2.scaledFee(amountFen: 500_000_000_000_000_000, rate: 1), 1)
    // Through clear: 625000.000 × 8000000000 = 5×10^18 milli = 5×10^17 fen;
    // × 0.000000000000000001 = 0.5 fen → 1.
    let k = ClearingKernelV2(feeRows: [row(.stock, .handling, .both, "0.000000000000000001", 20000101)])
    let c = k.clear(kind: .stock, tradeDate: 20260105, priceMilli: 625_000_000, quantity: 8_000_000_000)
    XCTAssertEqual(c.amountFen, 500_000_000_000_000_000)
    XCTAssertEqual(c.buyerFees.handling, 1)
    XCTAssertEqual(c.sellerFees.handling, 1)
  }

  // MARK: - The worked example (examples/basic/expected/clearing.csv)
  //
  // Units: 10001 → P0001, 20001 → P0002. Applied trades: 1, 2, 5 on 20260105
  // and 9 on 20260107 (the others are rejected); each clearing row sums the fees
  // of the trade sides of that participant and security.

  func testExampleClearingRows() {
    // Trade 1: 600000 10.00 × 300 = 3000.00 = 300000 fen, buyer P0002, seller P0001.
    //   handling 300000 × 341 / 10^7 = 10.23 → 10; regulatory 300000 × 2 / 10^5 = 6;
    //   transfer 300000 / 10^5 = 3; stamp (seller) 300000 × 5 / 10^4 = 150.
    let t1 = builtIn.clear(kind: .stock, tradeDate: 20260105, priceMilli: 10_000, quantity: 300)
    // Trade 2: 019547 100.125 × 200 = 2002500 fen, buyer P0002, seller P0001;
    //   handling 2.0025 → 2 each side.
    let t2 = builtIn.clear(kind: .bond, tradeDate: 20260105, priceMilli: 100_125, quantity: 200)
    // Trade 5: 019547 100.000 × 100 = 1000000 fen, buyer P0001, seller P0002;
    //   handling 1000000 / 10^6 = 1 each side.
    let t5 = builtIn.clear(kind: .bond, tradeDate: 20260105, priceMilli: 100_000, quantity: 100)
    // Trade 9: 600000 10.20 × 750 = 765000 fen, P0001 on both sides.
    let t9 = builtIn.clear(kind: .stock, tradeDate: 20260107, priceMilli: 10_200, quantity: 750)

    // 20260105,P0001,019547: buy 10000.00, sell 20025.00, handling 0.03 (2 + 1)
    XCTAssertEqual(t5.amountFen, 1_000_000)
    XCTAssertEqual(t2.amountFen, 2_002_500)
    XCTAssertEqual(t2.sellerFees.total + t5.buyerFees.total, 3)
    XCTAssertEqual(t2.sellerFees.handling + t5.buyerFees.handling, 3)
    // 20260105,P0001,600000: sell 3000.00; 0.10, 0.06, 0.03, 1.50
    XCTAssertEqual(t1.amountFen, 300_000)
    XCTAssertEqual(t1.sellerFees, SideFees(handling: 10, regulatory: 6, transfer: 3, stamp: 150))
    // 20260105,P0002,019547: buy 20025.00, sell 10000.00, handling 0.03 (2 + 1)
    XCTAssertEqual(t2.buyerFees.handling + t5.sellerFees.handling, 3)
    XCTAssertEqual(t2.buyerFees.total + t5.sellerFees.total, 3)
    // 20260105,P0002,600000: buy 3000.00; 0.10, 0.06, 0.03, 0.00
    XCTAssertEqual(t1.buyerFees, SideFees(handling: 10, regulatory: 6, transfer: 3, stamp: 0))
    // 20260107,P0001,600000: buy 7650.00, sell 7650.00; 0.52, 0.30, 0.16, 3.83
    XCTAssertEqual(t9.amountFen, 765_000)
    XCTAssertEqual(t9.buyerFees.handling + t9.sellerFees.handling, 52)  // 26 + 26
    XCTAssertEqual(t9.buyerFees.regulatory + t9.sellerFees.regulatory, 30)  // 15 + 15
    XCTAssertEqual(t9.buyerFees.transfer + t9.sellerFees.transfer, 16)  // 8 + 8
    XCTAssertEqual(t9.buyerFees.stamp + t9.sellerFees.stamp, 383)  // 0 + 383
  }

  // MARK: - Custom fee tables

  /// A custom STOCK table:
  ///   handling both 0.001 from 20200101, handling sell 0.002 from 20200101 (same
  ///   date: the seller pays 0.002), handling both 0.003 from 20210101 (a later
  ///   date beats the side-specific row), stamp buy 0.001 from 20200101.
  let customRows: [FeeRateRow] = [
    FeeRateRow(kind: .stock, fee: .handling, side: .both, rateText: "0.001", effectiveDate: 20200101),
    FeeRateRow(kind: .stock, fee: .handling, side: .sell, rateText: "0.002", effectiveDate: 20200101),
    FeeRateRow(kind: .stock, fee: .handling, side: .both, rateText: "0.003", effectiveDate: 20210101),
    FeeRateRow(kind: .stock, fee: .stamp, side: .buy, rateText: "0.001", effectiveDate: 20200101),
  ]

  func testCustomTable(_ k: ClearingKernelV2, file: StaticString = #filePath, line: UInt = #line) {
    // 10.00 × 100 = 1000.00 CNY = 100000 fen.
    func trade(_ date: Int32) -> TradeClearing {
      k.clear(kind: .stock, tradeDate: date, priceMilli: 10_000, quantity: 100)
    }
    // 20191231: no candidate for any fee → all 0.
    let before = trade(20191231)
    XCTAssertEqual(before.buyerFees, SideFees(), file: file, line: line)
    XCTAssertEqual(before.sellerFees, SideFees(), file: file, line: line)
    XCTAssertEqual(before.buyerNetFen, -100_000, file: file, line: line)
    XCTAssertEqual(before.sellerNetFen, 100_000, file: file, line: line)
    // 20200101: buyer handling 100000 × 0.001 = 100, seller 100000 × 0.002 = 200
    // (sell row beats both row of the same date); stamp buy-only: buyer 100, seller 0.
    let first = trade(20200101)
    XCTAssertEqual(first.buyerFees, SideFees(handling: 100, stamp: 100), file: file, line: line)
    XCTAssertEqual(first.sellerFees, SideFees(handling: 200), file: file, line: line)
    XCTAssertEqual(first.buyerNetFen, -100_200, file: file, line: line)  // −100000 − 200
    XCTAssertEqual(first.sellerNetFen, 99_800, file: file, line: line)  // 100000 − 200
    // 20201231: same as 20200101.
    XCTAssertEqual(trade(20201231), first, file: file, line: line)
    // 20210101: both 0.003 → 300 each side; stamp buyer 100 still.
    let later = trade(20210101)
    XCTAssertEqual(later.buyerFees, SideFees(handling: 300, stamp: 100), file: file, line: line)
    XCTAssertEqual(later.sellerFees, SideFees(handling: 300), file: file, line: line)
    XCTAssertEqual(later.buyerNetFen, -100_400, file: file, line: line)  // −100000 − 400
    XCTAssertEqual(later.sellerNetFen, 99_700, file: file, line: line)  // 100000 − 300
    // The table names no FUND or BOND rows: no candidate → 0.
    let fund = k.clear(kind: .fund, tradeDate: 20210101, priceMilli: 10_000, quantity: 100)
    XCTAssertEqual(fund.buyerFees, SideFees(), file: file, line: line)
    XCTAssertEqual(fund.sellerFees, SideFees(), file: file, line: line)
    XCTAssertEqual(fund.sellerNetFen, 100_000, file: file, line: line)
    let bond = k.clear(kind: .bond, tradeDate: 20210101, priceMilli: 10_000, quantity: 100)
    XCTAssertEqual(bond.buyerFees, SideFees(), file: file, line: line)
    XCTAssertEqual(bond.buyerAvailableNow, 100, file: file, line: line)
  }

  func testSideSpecificBeatsBothAndBuyOnlyRow() {
    testCustomTable(ClearingKernelV2(feeRows: customRows))
  }

  func testRowOrderDoesNotMatter() {
    testCustomTable(ClearingKernelV2(feeRows: customRows.reversed()))
    testCustomTable(ClearingKernelV2(feeRows: [customRows[1], customRows[3], customRows[2], customRows[0]]))
  }

  func testBuySpecificRowBeatsBothRowOfSameDate() {
    // handling both 0.001 and buy 0.0001 from 20200101; 100000 fen:
    // buyer 100000 × 0.0001 = 10, seller 100000 × 0.001 = 100.
    let k = ClearingKernelV2(feeRows: [
      row(.fund, .handling, .buy, "0.0001", 20200101),
      row(.fund, .handling, .both, "0.001", 20200101),
    ])
    let c = k.clear(kind: .fund, tradeDate: 20200101, priceMilli: 10_000, quantity: 100)
    XCTAssertEqual(c.buyerFees, SideFees(handling: 10))
    XCTAssertEqual(c.sellerFees, SideFees(handling: 100))
  }

  func testEmptyTableChargesNothing() {
    let k = ClearingKernelV2(feeRows: [])
    for kind in SecurityKind.allCases {
      let c = k.clear(kind: kind, tradeDate: 20260105, priceMilli: 10_000, quantity: 300)
      XCTAssertEqual(c.amountFen, 300_000)
      XCTAssertEqual(c.buyerFees, SideFees())
      XCTAssertEqual(c.sellerFees, SideFees())
      XCTAssertEqual(c.buyerNetFen, -300_000)
      XCTAssertEqual(c.sellerNetFen, 300_000)
    }
  }

  func testLargeRate() {
    // 1.00 × 1 = 100 fen; × 18.446744073709551615 = 1844.6744073709551615 → 1845.
    let k = ClearingKernelV2(feeRows: [row(.bond, .transfer, .sell, "18.446744073709551615", 19000101)])
    let c = k.clear(kind: .bond, tradeDate: 20260105, priceMilli: 1_000, quantity: 1)
    XCTAssertEqual(c.sellerFees, SideFees(transfer: 1845))
    XCTAssertEqual(c.buyerFees, SideFees())
    XCTAssertEqual(c.sellerNetFen, 100 - 1845)
  }

  // MARK: - Huge trades

  // 999999.999 × 9999999999: 999999999 × 9999999999 milli
  //   = 9999999999 × 10^9 − 9999999999 = 9999999989000000001 milli
  //   = 999999998900000000.1 fen → 999999998900000000 (= 10^18 − 1.1×10^9)
  let hugeAmount: Int64 = 999_999_998_900_000_000

  func testHugeStockTrade() {
    let c = builtIn.clear(kind: .stock, tradeDate: 20260105, priceMilli: 999_999_999, quantity: 9_999_999_999)
    XCTAssertEqual(c.amountFen, hugeAmount)
    // handling × 341 / 10^7: 341×10^11 − 341×1.1×10^9/10^7 = 34100000000000 − 37510 = 34099999962490
    // regulatory × 2 / 10^5: 2×10^13 − 22000 = 19999999978000
    // transfer / 10^5: 10^13 − 11000 = 9999999989000
    // stamp × 5 / 10^4: 5×10^14 − 550000 = 499999999450000
    XCTAssertEqual(
      c.buyerFees,
      SideFees(
        handling: 34_099_999_962_490, regulatory: 19_999_999_978_000, transfer: 9_999_999_989_000, stamp: 0))
    XCTAssertEqual(
      c.sellerFees,
      SideFees(
        handling: 34_099_999_962_490, regulatory: 19_999_999_978_000, transfer: 9_999_999_989_000,
        stamp: 499_999_999_450_000))
    // buyer total 64099999929490; −(10^18 − 1100000000 + 64099999929490) = −1000064098899929490
    XCTAssertEqual(c.buyerNetFen, -1_000_064_098_899_929_490)
    // seller total 564099999379490; 10^18 − 1100000000 − 564099999379490 = 999435898900620510
    XCTAssertEqual(c.sellerNetFen, 999_435_898_900_620_510)
    XCTAssertEqual(c.buyerAvailableNow, 0)
  }

  func testHugeBondTrade() {
    let c = builtIn.clear(kind: .bond, tradeDate: 20260105, priceMilli: 999_999_999, quantity: 9_999_999_999)
    // handling / 10^6: 10^12 − 1100 = 999999998900
    XCTAssertEqual(c.buyerFees, SideFees(handling: 999_999_998_900))
    XCTAssertEqual(c.sellerFees, SideFees(handling: 999_999_998_900))
    // −(10^18 − 1100000000 + 999999998900) = −1000000998899998900
    XCTAssertEqual(c.buyerNetFen, -1_000_000_998_899_998_900)
    // 10^18 − 1100000000 − 999999998900 = 999998998900001100
    XCTAssertEqual(c.sellerNetFen, 999_998_998_900_001_100)
    XCTAssertEqual(c.buyerAvailableNow, 9_999_999_999)
  }

  func testHugeTradeAtRateOneOnEveryFee() {
    // Every fee at rate 1 on both sides: each fee = the amount 999999998900000000;
    // total 4 × that = 3999999995600000000 (fits Int64, max ≈ 9.22×10^18);
    // buyer −5 × amount = −4999999994500000000; seller −3 × amount = −2999999996700000000.
    // amount × 10^18 = ~10^36 needs the full-width product.
    let k = ClearingKernelV2(
      feeRows: FeeKind.allCases.map { row(.stock, $0, .both, "1", 19000101) })
    let c = k.clear(kind: .stock, tradeDate: 20260105, priceMilli: 999_999_999, quantity: 9_999_999_999)
    let a = hugeAmount
    XCTAssertEqual(c.buyerFees, SideFees(handling: a, regulatory: a, transfer: a, stamp: a))
    XCTAssertEqual(c.sellerFees, c.buyerFees)
    XCTAssertEqual(c.buyerNetFen, -4_999_999_994_500_000_000)
    XCTAssertEqual(c.sellerNetFen, -2_999_999_996_700_000_000)
  }

  // MARK: - Rate parsing

  func testParseRate() {
    typealias P = ClearingKernelV2.RateParse
    XCTAssertEqual(ClearingKernelV2.parseRate("0.0000341"), P.exact(34_100_000_000_000))
    XCTAssertEqual(ClearingKernelV2.parseRate("0"), P.exact(0))
    XCTAssertEqual(ClearingKernelV2.parseRate("1"), P.exact(1_000_000_000_000_000_000))
    XCTAssertEqual(ClearingKernelV2.parseRate("000.50"), P.exact(500_000_000_000_000_000))
    XCTAssertEqual(ClearingKernelV2.parseRate("0.000000000000000001"), P.exact(1))
    // Trailing zeros after the 18th fraction digit are exact.
    XCTAssertEqual(ClearingKernelV2.parseRate("0.0000000000000000010000000"), P.exact(1))
    // Leading zeros are free: 12 = 12×10^18 fits (< 2^64 ≈ 1.8447×10^19), 19 does not.
    XCTAssertEqual(
      ClearingKernelV2.parseRate("0000000000000000000000012"), P.exact(12_000_000_000_000_000_000))
    XCTAssertEqual(ClearingKernelV2.parseRate("0000000000000000000000019"), P.tooLarge)
    XCTAssertEqual(ClearingKernelV2.parseRate("00000000000000000000000.1"), P.exact(100_000_000_000_000_000))
    // The largest: 2^64 − 1 = 18446744073709551615.
    XCTAssertEqual(ClearingKernelV2.parseRate("18.446744073709551615"), P.exact(UInt64.max))
    XCTAssertEqual(ClearingKernelV2.parseRate("18.446744073709551616"), P.tooLarge)
    XCTAssertEqual(ClearingKernelV2.parseRate("19"), P.tooLarge)
    XCTAssertEqual(ClearingKernelV2.parseRate("0.0000000000000000001"), P.tooPrecise)
    for bad in ["", ".", "1.", ".5", "1.2.3", "-1", "1e5", " 1", "1 ", "+1", "٣"] {
      XCTAssertEqual(ClearingKernelV2.parseRate(bad), P.malformed, "'\(bad)'")
    }
  }

  func testEquivalentRateSpellingsGiveTheSameFees() {
    let a = ClearingKernelV2(feeRows: [row(.stock, .handling, .both, "0.00001", 19000101)])
    let b = ClearingKernelV2(feeRows: [row(.stock, .handling, .both, "00.0000100000000000000000", 19000101)])
    XCTAssertEqual(
      a.clear(kind: .stock, tradeDate: 20260105, priceMilli: 12_345, quantity: 1_000),
      b.clear(kind: .stock, tradeDate: 20260105, priceMilli: 12_345, quantity: 1_000))
  }
}
