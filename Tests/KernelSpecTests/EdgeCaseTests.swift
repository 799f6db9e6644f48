// Corners of the SPEC: the largest numbers §1 allows with exact arithmetic, identifiers
// compared by bytes, a self-trade, money formatting, a skipped SETTLE.
import KernelAPI
import TallyEngine
import TallyFormat
import XCTest

final class EdgeCaseTests: XCTestCase {
  func testLargestTradeIsExact() throws {
    let r = try Fixture.standard.with(holdings: ["A1,600000,9999999999,20250101"]).run(
      """
      OPEN,20260105
      TRADE,T1,20260105,093000,600000,999999.999,9999999999,A2,U2,A1,U1
      """)
    // amount = 999999.999 x (10^10 - 1) = 9999999990000000 - 999999.999 = 9999999989000000.001
    //   -> 9999999989000000.00
    // handling x 0.0000341 = 9999999989000000 x 341 / 10^7 = 340999999624.9 -> 340999999624.90
    // regulatory x 0.00002 = 199999999780.00; transfer x 0.00001 = 99999999890.00;
    // stamp x 0.0005 = 4999999994500.00.
    // P1 net = 9999999989000000.00 - 5640999993794.90 = 9994358989006205.10
    // P2 net = -9999999989000000.00 - 640999999294.90 = -10000640988999294.90
    XCTAssertEqual(
      r.clearing,
      csv(
        Header.clearing,
        "20260105,20260106,P1,600000,0,9999999999,0.00,9999999989000000.00,340999999624.90,199999999780.00,99999999890.00,4999999994500.00",
        "20260105,20260106,P2,600000,9999999999,0,9999999989000000.00,0.00,340999999624.90,199999999780.00,99999999890.00,0.00"
      ))
    XCTAssertEqual(
      r.settlement,
      csv(
        Header.settlement, "20260105,20260106,P1,9994358989006205.10,PENDING,",
        "20260105,20260106,P2,-10000640988999294.90,PENDING,"))
  }

  func testLargestDividendAndItsTaxAreExact() throws {
    let r = try Fixture.standard.with(holdings: ["A1,600000,9999999999,20251220"]).run(
      """
      DIVIDEND,600000,20260105,9999.999999
      OPEN,20260105
      CLOSE,20260105
      OPEN,20260106
      TRADE,T1,20260106,093000,600000,0.001,9999999999,B1,U3,A1,U1
      """)
    // cash = (10^10 - 1) x (10^4 - 10^-6) = 10^14 - 2 x 10^4 + 10^-6 = 99999999980000.000001 -> 99999999980000.00
    // tax (17 days, 20%) = 99999999980000.000001 x 0.2 = 19999999996000.0000002 -> 19999999996000.00
    XCTAssertEqual(
      r.entitlements, csv(Header.entitlements, "600000,20260105,20260106,A1,CASH,99999999980000.00"))
    XCTAssertEqual(r.tax, csv(Header.tax, "20260106,T1,A1,600000,9999999999,19999999996000.00"))
  }

  func testLargestBonusRatioIsExact() throws {
    let r = try Fixture.standard.with(holdings: ["A1,600000,9999999999,20250101", "A2,600000,1,20250101"])
      .run(
        """
        BONUS,600000,20260105,9999999999,9999999998
        OPEN,20260105
        CLOSE,20260105
        OPEN,20260106
        """)
    // A1: floor(9999999999 x 9999999998 / 9999999999) = 9999999998 r0; A2: 0 r9999999998.
    // Total floor(10^10 x 9999999998 / 9999999999) = floor(9999999998 + 0.9999999999) = 9999999998:
    // nothing left over. A1: 9999999999 + 9999999998 = 19999999997.
    XCTAssertEqual(r.entitlements, csv(Header.entitlements, "600000,20260105,20260106,A1,SHARES,9999999998"))
    XCTAssertEqual(r.holdings, csv(Header.holdings, "A1,600000,19999999997,19999999997,0", "A2,600000,1,1,0"))
  }

  func testIdentifiersCompareByBytesNotByUnicodeEquivalence() throws {
    // "P\u{E9}" (precomposed é) and "Pe\u{301}" (e + combining acute) are canonically equivalent
    // text but different bytes: two participants. By bytes "Pe..." (0x65) < "P\u{E9}" (0xC3).
    let f = Fixture.standard.with(
      "participants.csv", "participant,name\nP1,One\nP2,Two\nP3,Three\nP\u{E9},Four\nPe\u{301},Five\n")
    let r = try f.run("DEPOSIT,Pe\u{301},1.00\nPARTICIPANT,P\u{E9},Dup\n")
    XCTAssertEqual(r.codes, ["OK", "DUPLICATE_PARTICIPANT"])
    XCTAssertEqual(
      r.balances, csv(Header.balances, "P1,0.00", "P2,0.00", "P3,0.00", "Pe\u{301},1.00", "P\u{E9},0.00"))
  }

  func testSelfTrade() throws {
    let events = """
      OPEN,20260105
      TRADE,T1,20260105,093000,600000,10.00,100,A1,U1,A1,U1
      """
    // A1 sells 100 (available -100) and buys 100 (not available before the next OPEN).
    // P1 on both sides: 1000.00 each, 0.03 + 0.03, 0.02 + 0.02, 0.01 + 0.01, stamp 0.50.
    let r1 = try Fixture.standard.with(holdings: ["A1,600000,1000,20250101"]).run(events)
    XCTAssertEqual(r1.holdings, csv(Header.holdings, "A1,600000,1000,900,0"))
    XCTAssertEqual(
      r1.clearing,
      csv(Header.clearing, "20260105,20260106,P1,600000,100,100,1000.00,1000.00,0.06,0.04,0.02,0.50"))
    let r2 = try Fixture.standard.with(holdings: ["A1,600000,1000,20250101"]).run(
      events + "\nCLOSE,20260105\nOPEN,20260106\n")
    XCTAssertEqual(r2.holdings, csv(Header.holdings, "A1,600000,1000,1000,0"))
  }

  func testSmallNegativeNetIsFormatted() throws {
    let r = try Fixture.standard.with(holdings: ["A1,600000,1000,20250101"]).run(
      """
      OPEN,20260105
      TRADE,T1,20260105,093000,600000,1.00,100,A2,U3,A1,U3
      """)
    // 100.00: handling 0.00341 -> 0.00, regulatory 0.002 -> 0.00, transfer 0.001 -> 0.00 per side;
    // stamp 0.05. P3 net = -0.05.
    XCTAssertEqual(
      r.clearing,
      csv(Header.clearing, "20260105,20260106,P3,600000,100,100,100.00,100.00,0.00,0.00,0.00,0.05"))
    XCTAssertEqual(r.settlement, csv(Header.settlement, "20260105,20260106,P3,-0.05,PENDING,"))
  }

  func testLotAcquiredAfterTheTradeDateIsTaxedAsShortHeld() throws {
    // holding days = 20260106 - 20260201 = -26 <= 30 -> 20%: 100 x 0.10 x 0.2 = 2.00.
    let r = try Fixture.standard.with(holdings: ["A1,600000,100,20260201"]).run(
      """
      DIVIDEND,600000,20260105,0.10
      OPEN,20260105
      CLOSE,20260105
      OPEN,20260106
      TRADE,T1,20260106,093000,600000,10.00,100,B1,U3,A1,U1
      """)
    XCTAssertEqual(r.tax, csv(Header.tax, "20260106,T1,A1,600000,100,2.00"))
  }

  func testTradeWhoseSettleWasSkippedCanStillBeCancelled() throws {
    // SETTLE never ran for 20260106 (the settle date of 20260105): its trades stay PENDING,
    // and a CANCEL is not ALREADY_SETTLED.
    let events = """
      OPEN,20260105
      TRADE,T1,20260105,093000,600000,10.00,100,A2,U2,A1,U1
      CLOSE,20260105
      OPEN,20260106
      TRADE,T2,20260106,093000,600000,10.00,100,A3,U3,A1,U1
      CLOSE,20260106
      OPEN,20260107
      SETTLE,20260107
      """
    let r1 = try Fixture.standard.run(events)
    // T1 1000.00 and T2 1000.00: seller P1 +999.44 each day; buyers -1000.06.
    XCTAssertEqual(
      r1.settlement,
      csv(
        Header.settlement,
        "20260105,20260106,P1,999.44,PENDING,",
        "20260105,20260106,P2,-1000.06,PENDING,",
        "20260106,20260107,P1,999.44,SETTLED,20260107",
        "20260106,20260107,P3,-1000.06,DEFAULTED,"))
    let r2 = try Fixture.standard.run(events + "\nCANCEL,20260105,T1\nCANCEL,20260106,T2\n")
    XCTAssertEqual(r2.codes.suffix(2), ["OK", "ALREADY_SETTLED"])
    XCTAssertEqual(
      r2.settlement,
      csv(
        Header.settlement, "20260106,20260107,P1,999.44,SETTLED,20260107",
        "20260106,20260107,P3,-1000.06,DEFAULTED,"))
  }

  func testDefaultReleaseReturnsExactlyWhatWasWithheld() throws {
    let r = try Fixture.standard.run(
      """
      OPEN,20260105
      TRADE,T1,20260105,093000,600000,10.00,1000,A2,U2,A1,U1
      CLOSE,20260105
      OPEN,20260106
      TRADE,T2,20260106,093000,600000,10.00,300,B2,U3,A2,U3
      SETTLE,20260106
      DEPOSIT,P2,10000.64
      CLOSE,20260106
      OPEN,20260107
      SETTLE,20260107
      """)
    // A2 withheld min(1000, 700) = 700 at SETTLE 0106; cured at SETTLE 0107 (balance exactly
    // 10000.64 -> 0.00): 700 released, A2 700 / 700 / 0.
    // P3 0106 (T2 3000.00 both sides): -(0.10 + 0.06 + 0.03) x 2 - 1.50 = -1.88; P3 had 0 -> DEFAULTED,
    // withholding B2's 300 (available since OPEN 0107).
    XCTAssertEqual(
      r.settlement,
      csv(
        Header.settlement,
        "20260105,20260106,P1,9994.36,SETTLED,20260106",
        "20260105,20260106,P2,-10000.64,CURED,20260107",
        "20260106,20260107,P3,-1.88,DEFAULTED,"))
    XCTAssertEqual(r.balances, balances("9994.36", "0.00", "0.00"))
    XCTAssertEqual(
      r.holdings,
      csv(
        Header.holdings, "A1,019547,1000,1000,0", "A1,510300,1000,1000,0", "A2,600000,700,700,0",
        "B1,600000,2000,2000,0", "B2,600000,300,0,300"))
  }
}
