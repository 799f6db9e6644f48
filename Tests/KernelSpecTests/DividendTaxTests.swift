// SPEC §4.5 lots and the differentiated dividend tax (差异化红利税):
// INDIVIDUAL seller, STOCK; per slice with accrued d > 0: <= 30 days 20%,
// 31..365 days 10%, > 365 days 0%; tax = round_half_up(sum, 0.01), row when > 0.
import KernelAPI
import TallyEngine
import TallyFormat
import XCTest

final class DividendTaxTests: XCTestCase {
  /// DIVIDEND 0105, then the sales on 0106.
  func runSales(_ holdings: [String], dividend: String = "DIVIDEND,600000,20260105,0.10", _ sales: String)
    throws -> Run
  {
    try Fixture.standard.with(holdings: holdings).run(
      """
      \(dividend)
      OPEN,20260105
      CLOSE,20260105
      OPEN,20260106
      \(sales)
      """)
  }

  func testHoldingDayThresholds() throws {
    // To 20260106: 20251207 is 30 days (24 in December + 6), 20251206 is 31,
    // 20250106 is 365 (2025 is not a leap year), 20250105 is 366.
    let r = try runSales(
      [
        "A1,600000,1000,20251207", "A2,600000,1000,20251206", "A3,600000,1000,20250106",
        "A4,600000,1000,20250105",
      ],
      """
      TRADE,9,20260106,093000,600000,10.00,1000,B1,U3,A1,U1
      TRADE,10,20260106,093000,600000,10.00,1000,B1,U3,A2,U1
      TRADE,100,20260106,093000,600000,10.00,1000,B1,U3,A3,U1
      TRADE,11,20260106,093000,600000,10.00,1000,B1,U3,A4,U1
      """)
    // 9: 1000 x 0.10 x 20% = 20.00; 10 and 100: x 10% = 10.00; 11: 0% -> no row.
    // Sorted by trade_id bytes: "10" < "100" < "9".
    XCTAssertEqual(
      r.tax,
      csv(
        Header.tax, "20260106,10,A2,600000,1000,10.00", "20260106,100,A3,600000,1000,10.00",
        "20260106,9,A1,600000,1000,20.00"))
  }

  func testInstitutionFundAndBondSellersAreNotTaxed() throws {
    let r = try Fixture.standard.with(holdings: [
      "B1,600000,1000,20251220", "A1,510300,1000,20251220", "A1,019547,1000,20251220",
    ]).run(
      """
      DIVIDEND,600000,20260105,0.10
      DIVIDEND,510300,20260105,0.10
      DIVIDEND,019547,20260105,0.10
      OPEN,20260105
      CLOSE,20260105
      OPEN,20260106
      TRADE,T1,20260106,093000,600000,10.00,1000,A2,U2,B1,U1
      TRADE,T2,20260106,093000,510300,1.000,1000,A2,U2,A1,U1
      TRADE,T3,20260106,093000,019547,100.000,1000,A2,U2,A1,U1
      """)
    XCTAssertEqual(r.codes, Array(repeating: "OK", count: 9))
    XCTAssertEqual(r.tax, csv(Header.tax))
    XCTAssertEqual(
      r.entitlements,
      csv(
        Header.entitlements, "019547,20260105,20260106,A1,CASH,100.00",
        "510300,20260105,20260106,A1,CASH,100.00",
        "600000,20260105,20260106,B1,CASH,100.00"))
  }

  func testSaleSpanningTwoLotsOfDifferentAges() throws {
    let r = try runSales(
      ["A1,600000,300,20251201", "A1,600000,500,20251220"], dividend: "DIVIDEND,600000,20260105,0.30",
      "TRADE,T1,20260106,093000,600000,10.00,600,B1,U3,A1,U1")
    // 20251201 (36 days, 10%): 300 x 0.30 x 0.1 = 9.00; 20251220 (17 days, 20%): 300 x 0.30 x 0.2 = 18.00.
    XCTAssertEqual(r.tax, csv(Header.tax, "20260106,T1,A1,600000,600,27.00"))
  }

  func testTaxRowHasTheSalesFullQuantity() throws {
    let r = try runSales(
      ["A1,600000,500,20240101", "A1,600000,100,20251220"],
      "TRADE,T1,20260106,093000,600000,10.00,600,B1,U3,A1,U1")
    // 500 from the old lot at 0%, 100 x 0.10 x 20% = 2.00; the row shows all 600.
    XCTAssertEqual(r.tax, csv(Header.tax, "20260106,T1,A1,600000,600,2.00"))
  }

  func testLotsAreConsumedByAcquiredDateNotFileOrder() throws {
    let r = try runSales(
      ["A1,600000,100,20251220", "A1,600000,100,20250101"],
      """
      TRADE,T1,20260106,093000,600000,10.00,100,B1,U3,A1,U1
      TRADE,T2,20260106,093100,600000,10.00,100,B1,U3,A1,U1
      """)
    // T1 takes the 20250101 lot (0%); T2 the 20251220 lot: 100 x 0.10 x 20% = 2.00.
    XCTAssertEqual(r.tax, csv(Header.tax, "20260106,T2,A1,600000,100,2.00"))
  }

  func testSameLotLowerDividendSliceFirst() throws {
    let r = try Fixture.standard.with(holdings: ["A1,600000,200,20251220"]).run(
      """
      OPEN,20260105
      TRADE,T1,20260105,093000,600000,10.00,100,B1,U3,A1,U1
      DIVIDEND,600000,20260105,0.10
      CLOSE,20260105
      CANCEL,20260105,T1
      OPEN,20260106
      TRADE,T2,20260106,093000,600000,10.00,100,B1,U3,A1,U1
      TRADE,T3,20260106,093100,600000,10.00,100,B1,U3,A1,U1
      """)
    // T1 consumed a slice (20251220, lot 1, d 0, 100). The rest of lot 1 accrues 0.10 at CLOSE.
    // The reversal gives the slice back with d 0: no lot has those three values, so it is a
    // lot again. T2 takes the d 0 lot first (no tax); T3 the d 0.10 lot: 17 days -> 20%: 2.00.
    XCTAssertEqual(r.tax, csv(Header.tax, "20260106,T3,A1,600000,100,2.00"))
    XCTAssertEqual(
      r.entitlements,
      csv(
        Header.entitlements, "600000,20260105,20260106,A1,CASH,10.00",
        "600000,20260105,20260106,B1,CASH,10.00"))
  }

  func testCreationNumberBeforeDividend() throws {
    let r = try Fixture.standard.with(holdings: ["B1,600000,1000,20250101"]).run(
      """
      BONUS,600000,20260105,10,10
      DIVIDEND,600000,20260105,0.10
      OPEN,20260105
      TRADE,T1,20260105,093000,600000,10.00,100,A1,U1,B1,U3
      CLOSE,20260105
      OPEN,20260106
      TRADE,T2,20260106,093000,600000,10.00,100,A2,U2,A1,U1
      """)
    // A1's bought lot (acquired 0105, earlier creation number) accrues 0.10 at CLOSE; the bonus
    // lot (also acquired 0105, created at OPEN 0106) has none. T2 takes the bought lot first:
    // 1 day -> 20%: 100 x 0.10 x 0.2 = 2.00.
    XCTAssertEqual(r.tax, csv(Header.tax, "20260106,T2,A1,600000,100,2.00"))
    // Bonus 10:10 -> A1 100, B1 900; cash A1 10.00, B1 90.00.
    XCTAssertEqual(
      r.entitlements,
      csv(
        Header.entitlements, "600000,20260105,20260106,A1,CASH,10.00",
        "600000,20260105,20260106,A1,SHARES,100",
        "600000,20260105,20260106,B1,CASH,90.00", "600000,20260105,20260106,B1,SHARES,900"))
  }

  func testTaxIsRoundedOnceOnTheSum() throws {
    let r = try runSales(
      ["A1,600000,25,20251201", "A1,600000,25,20251202"], dividend: "DIVIDEND,600000,20260105,0.001",
      "TRADE,T1,20260106,093000,600000,10.00,50,B1,U3,A1,U1")
    // Both lots 10% (36 and 35 days): 25 x 0.001 x 0.1 = 0.0025 each; sum 0.005 -> 0.01.
    XCTAssertEqual(r.tax, csv(Header.tax, "20260106,T1,A1,600000,50,0.01"))
  }

  func testDividendsAccumulateOnALot() throws {
    let r = try Fixture.standard.with(holdings: ["A1,600000,100,20251210"]).run(
      """
      DIVIDEND,600000,20260105,0.10
      DIVIDEND,600000,20260105,0.05
      DIVIDEND,600000,20260106,0.15
      OPEN,20260105
      CLOSE,20260105
      OPEN,20260106
      CLOSE,20260106
      OPEN,20260107
      TRADE,T1,20260107,093000,600000,10.00,100,B1,U3,A1,U1
      """)
    // d = 0.30; 20251210 -> 20260107 = 28 days -> 20%: 100 x 0.30 x 0.2 = 6.00.
    XCTAssertEqual(r.tax, csv(Header.tax, "20260107,T1,A1,600000,100,6.00"))
  }

  func testCancelledSaleHasNoTaxRow() throws {
    let r = try runSales(
      ["A1,600000,100,20251220"],
      """
      TRADE,T1,20260106,093000,600000,10.00,100,B1,U3,A1,U1
      TRADE,T2,20260106,093000,600000,10.00,50,B1,U3,A1,U1
      CANCEL,20260106,T1
      TRADE,T3,20260106,093000,600000,10.00,40,B1,U3,A1,U1
      """)
    // T2 fails (A1 has nothing left); after the cancel T3 sells 40: 40 x 0.10 x 20% = 0.80.
    XCTAssertEqual(r.codes.suffix(4), ["OK", "INSUFFICIENT_HOLDINGS", "OK", "OK"])
    XCTAssertEqual(r.tax, csv(Header.tax, "20260106,T3,A1,600000,40,0.80"))
  }
}
