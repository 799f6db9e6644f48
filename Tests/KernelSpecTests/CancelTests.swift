// SPEC §3 CANCEL (冲正): checks in order, and the effects undone (clearing, tax,
// transfer, lots per §4.5); nothing else recomputed.
import KernelAPI
import TallyEngine
import TallyFormat
import XCTest

final class CancelTests: XCTestCase {
  static let defaultHoldings = csv(
    Header.holdings, "A1,019547,1000,1000,0", "A1,510300,1000,1000,0", "A1,600000,1000,1000,0",
    "B1,600000,2000,2000,0")

  func assertNothingLeft(_ r: Run, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(r.clearing, csv(Header.clearing), file: file, line: line)
    XCTAssertEqual(r.settlement, csv(Header.settlement), file: file, line: line)
    XCTAssertEqual(r.holdings, Self.defaultHoldings, file: file, line: line)
    XCTAssertEqual(r.balances, balances(), file: file, line: line)
    XCTAssertEqual(r.tax, csv(Header.tax), file: file, line: line)
  }

  func testCancelBeforeClose() throws {
    let r = try Fixture.standard.run(
      """
      OPEN,20260105
      TRADE,T1,20260105,093000,600000,10.00,100,A2,U2,A1,U1
      CANCEL,20260105,T1
      """)
    XCTAssertEqual(r.codes, ["OK", "OK", "OK"])
    assertNothingLeft(r)
    XCTAssertEqual(r.rejections, csv(Header.rejections))
  }

  func testCancelAfterCloseThenSettleHasNothingToSettle() throws {
    let r = try Fixture.standard.run(
      """
      OPEN,20260105
      TRADE,T1,20260105,093000,600000,10.00,100,A2,U2,A1,U1
      CLOSE,20260105
      CANCEL,20260105,T1
      OPEN,20260106
      SETTLE,20260106
      """)
    XCTAssertEqual(r.codes, ["OK", "OK", "OK", "OK", "OK", "OK"])
    assertNothingLeft(r)
  }

  func testCancelAfterNextOpenButBeforeItsSettle() throws {
    // The settle date of 20260105 is 20260106; SETTLE 20260106 has not run yet.
    // A2's 100 became available at OPEN 20260106 and are taken back from there.
    let r = try Fixture.standard.run(
      """
      OPEN,20260105
      TRADE,T1,20260105,093000,600000,10.00,100,A2,U2,A1,U1
      CLOSE,20260105
      OPEN,20260106
      CANCEL,20260105,T1
      SETTLE,20260106
      """)
    XCTAssertEqual(r.codes, ["OK", "OK", "OK", "OK", "OK", "OK"])
    assertNothingLeft(r)
  }

  func testCancelCheckOrder() throws {
    let r = try Fixture.standard.run(
      """
      OPEN,20260105
      TRADE,T1,20260105,093000,600000,10.00,100,A2,U2,A1,U1
      TRADE,T2,20260105,093000,600000,10.00,100,A2,U2,A1,U1
      TRADE,T3,20260105,093000,600000,10.00,99999,A2,U2,A1,U1
      CANCEL,20260105,T2
      CANCEL,20260105,T2
      CLOSE,20260105
      OPEN,20260106
      SETTLE,20260106
      CANCEL,20260105,T1
      CANCEL,20260105,T2
      CANCEL,20260105,T3
      CANCEL,20260106,T1
      CANCEL,20260105,NOPE
      """)
    XCTAssertEqual(
      r.rejections,
      csv(
        Header.rejections,
        "4,TRADE,T3,INSUFFICIENT_HOLDINGS",
        "6,CANCEL,T2,ALREADY_CANCELLED",  // twice
        "10,CANCEL,T1,ALREADY_SETTLED",  // SETTLE 20260106 ran
        "11,CANCEL,T2,ALREADY_CANCELLED",  // cancelled beats settled
        "12,CANCEL,T3,UNKNOWN_TRADE",  // T3 was rejected, never applied
        "13,CANCEL,T1,UNKNOWN_TRADE",  // no T1 on 20260106
        "14,CANCEL,NOPE,UNKNOWN_TRADE"))
  }

  func testCannotReverseWhenTheBuyerSoldTheSharesOn() throws {
    let r = try Fixture.standard.run(
      """
      OPEN,20260105
      TRADE,T1,20260105,093000,600000,10.00,100,A2,U2,A1,U1
      CLOSE,20260105
      OPEN,20260106
      TRADE,T2,20260106,093000,600000,10.00,100,A3,U3,A2,U2
      CANCEL,20260105,T1
      CANCEL,20260106,T2
      CANCEL,20260105,T1
      """)
    // seq 6: A2 holds 0 of the 100 to take back. After T2 is reversed (A3 loses its
    // 100 not-yet-available shares, A2 gets 100 back), T1 can be reversed.
    XCTAssertEqual(r.codes, ["OK", "OK", "OK", "OK", "OK", "CANNOT_REVERSE", "OK", "OK"])
    assertNothingLeft(r)
  }

  func testAlreadySettledBeatsCannotReverse() throws {
    let r = try Fixture.standard.run(
      """
      OPEN,20260105
      TRADE,T1,20260105,093000,600000,10.00,100,A2,U2,A1,U1
      CLOSE,20260105
      OPEN,20260106
      TRADE,T2,20260106,093000,600000,10.00,100,A3,U3,A2,U2
      SETTLE,20260106
      CANCEL,20260105,T1
      """)
    // A2 no longer holds the shares, but the trade's settle date has been settled first.
    XCTAssertEqual(r.rejections, csv(Header.rejections, "7,CANCEL,T1,ALREADY_SETTLED"))
  }

  func testCannotReverseCountsOnlyUnwithheldShares() throws {
    let fixture = Fixture.standard.with(holdings: ["A1,019547,1000,20250101"])
    let r = try fixture.run(
      """
      OPEN,20260105
      TRADE,T1,20260105,093000,019547,100.000,200,A2,U2,A1,U1
      CLOSE,20260105
      OPEN,20260106
      SETTLE,20260106
      TRADE,T3,20260106,093000,019547,100.000,100,A2,U2,A1,U1
      TRADE,T4,20260106,093100,019547,100.000,100,A3,U3,A2,U2
      CANCEL,20260106,T3
      CANCEL,20260106,T4
      CANCEL,20260106,T3
      """)
    // T1: 20000.00, BOND handling 0.02 each side. SETTLE 20260106: P1 +19999.98 SETTLED;
    // P2 owes 20000.02 with balance 0 -> DEFAULTED, A2 withholds min(200, 200) = 200.
    // T3 (BOND, available at once): A2 300 / available 100 / withheld 200; T4 sells those 100.
    // seq 8: A2 holds 200, all withheld -> CANNOT_REVERSE. Then T4 and T3 are reversed.
    XCTAssertEqual(r.codes, ["OK", "OK", "OK", "OK", "OK", "OK", "OK", "CANNOT_REVERSE", "OK", "OK"])
    XCTAssertEqual(r.holdings, csv(Header.holdings, "A1,019547,800,800,0", "A2,019547,200,0,200"))
    XCTAssertEqual(
      r.clearing,
      csv(
        Header.clearing,
        "20260105,20260106,P1,019547,0,200,0.00,20000.00,0.02,0.00,0.00,0.00",
        "20260105,20260106,P2,019547,200,0,20000.00,0.00,0.02,0.00,0.00,0.00"))
    XCTAssertEqual(
      r.settlement,
      csv(
        Header.settlement, "20260105,20260106,P1,19999.98,SETTLED,20260106",
        "20260105,20260106,P2,-20000.02,DEFAULTED,"))
    XCTAssertEqual(r.balances, balances("19999.98"))
  }

  func testRowsDisappearWhenAllTheirTradesAreCancelled() throws {
    let events = """
      OPEN,20260105
      TRADE,T1,20260105,093000,600000,10.00,100,A2,U2,A1,U1
      TRADE,T2,20260105,093100,600000,10.00,200,A2,U2,A1,U1
      TRADE,T3,20260105,093200,019547,100.000,100,A3,U3,A1,U1
      CANCEL,20260105,T1
      """
    // After T1 is cancelled the 600000 rows hold T2 only: 2000.00, handling 0.0682 -> 0.07,
    // regulatory 0.04, transfer 0.02, stamp 1.00. T3: 10000.00, BOND handling 0.01.
    // Net: P1 9999.99 + 2000 - 1.13 = 11998.86; P2 -2000.13; P3 -10000.01.
    let r1 = try Fixture.standard.run(events)
    XCTAssertEqual(
      r1.clearing,
      csv(
        Header.clearing,
        "20260105,20260106,P1,019547,0,100,0.00,10000.00,0.01,0.00,0.00,0.00",
        "20260105,20260106,P1,600000,0,200,0.00,2000.00,0.07,0.04,0.02,1.00",
        "20260105,20260106,P2,600000,200,0,2000.00,0.00,0.07,0.04,0.02,0.00",
        "20260105,20260106,P3,019547,100,0,10000.00,0.00,0.01,0.00,0.00,0.00"))
    XCTAssertEqual(
      r1.settlement,
      csv(
        Header.settlement, "20260105,20260106,P1,11998.86,PENDING,", "20260105,20260106,P2,-2000.13,PENDING,",
        "20260105,20260106,P3,-10000.01,PENDING,"))

    // With T2 cancelled too, P2 has no row at all; P1 keeps its 019547 row.
    let r2 = try Fixture.standard.run(events + "\nCANCEL,20260105,T2\n")
    XCTAssertEqual(
      r2.clearing,
      csv(
        Header.clearing,
        "20260105,20260106,P1,019547,0,100,0.00,10000.00,0.01,0.00,0.00,0.00",
        "20260105,20260106,P3,019547,100,0,10000.00,0.00,0.01,0.00,0.00,0.00"))
    XCTAssertEqual(
      r2.settlement,
      csv(
        Header.settlement, "20260105,20260106,P1,9999.99,PENDING,", "20260105,20260106,P3,-10000.01,PENDING,")
    )
  }

  func testSellerLotsAreRestoredExactly() throws {
    let fixture = Fixture.standard.with(holdings: ["A1,600000,300,20251201", "A1,600000,500,20260101"])
    let events = """
      DIVIDEND,600000,20260105,0.50
      OPEN,20260105
      CLOSE,20260105
      OPEN,20260106
      TRADE,T1,20260106,093000,600000,10.00,500,B1,U3,A1,U1
      """
    // Both lots accrue 0.50 at CLOSE 20260105. T1 takes lot 20251201 whole (36 days -> 10%)
    // and 200 of lot 20260101 (5 days -> 20%): 300 x 0.5 x 0.1 + 200 x 0.5 x 0.2 = 15 + 20 = 35.00.
    let r1 = try fixture.run(events)
    XCTAssertEqual(r1.tax, csv(Header.tax, "20260106,T1,A1,600000,500,35.00"))

    // Reversed: the slices come back with their dates and dividends; the tax row goes.
    // Selling all 800 then: 300 x 0.5 x 0.1 + 500 x 0.5 x 0.2 = 15 + 50 = 65.00.
    let r2 = try fixture.run(
      events + """

        CANCEL,20260106,T1
        TRADE,T2,20260106,093100,600000,10.00,800,B1,U3,A1,U1
        """)
    XCTAssertEqual(r2.tax, csv(Header.tax, "20260106,T2,A1,600000,800,65.00"))
    XCTAssertEqual(r2.entitlements, csv(Header.entitlements, "600000,20260105,20260106,A1,CASH,400.00"))
  }

  func testBuyerLosesNewestLotFirstAndNotYetAvailableSharesFirst() throws {
    let fixture = Fixture.standard.with(holdings: ["A1,600000,1000,20250101", "A2,600000,100,20250101"])
    let events = """
      DIVIDEND,600000,20260105,0.10
      OPEN,20260105
      TRADE,T1,20260105,093000,600000,10.00,100,A2,U2,A1,U1
      CLOSE,20260105
      OPEN,20260106
      TRADE,T2,20260106,093000,600000,10.00,100,A2,U2,A1,U1
      CANCEL,20260105,T1
      """
    // At CLOSE 0105 A2's lots (20250101 x100, 20260105 x100) accrue 0.10. T2 adds a lot
    // 20260106 x100 (no dividend, not available yet). Cancelling T1 takes the newest lot
    // (20260106) and the not-yet-available shares: A2 keeps 200, all available.
    // A1: 1000 - 100 - 100 + 100 = 900.
    let r1 = try fixture.run(events)
    XCTAssertEqual(r1.holdings, csv(Header.holdings, "A1,600000,900,900,0", "A2,600000,200,200,0"))
    // Entitlements computed at CLOSE stand: A1 900 x 0.10 = 90.00, A2 200 x 0.10 = 20.00.
    XCTAssertEqual(
      r1.entitlements,
      csv(
        Header.entitlements, "600000,20260105,20260106,A1,CASH,90.00",
        "600000,20260105,20260106,A2,CASH,20.00"))

    // A2 sells its 200 on 0107: lot 20250101 (371 days -> 0%) and lot 20260105 with 0.10
    // (2 days -> 20%): 100 x 0.10 x 0.2 = 2.00. (Had the cancel removed the 20260105 lot,
    // the sale would take the dividend-free 20260106 lot and owe nothing.)
    let r2 = try fixture.run(
      events + """

        CLOSE,20260106
        OPEN,20260107
        TRADE,T3,20260107,093000,600000,10.00,200,B1,U3,A2,U2
        """)
    XCTAssertEqual(r2.tax, csv(Header.tax, "20260107,T3,A2,600000,200,2.00"))
  }

  func testEntitlementsStandAfterACancel() throws {
    let r = try Fixture.standard.run(
      """
      DIVIDEND,600000,20260105,0.10
      OPEN,20260105
      TRADE,T1,20260105,093000,600000,10.00,100,A2,U2,A1,U1
      CLOSE,20260105
      CANCEL,20260105,T1
      """)
    // Holders at CLOSE: A1 900 -> 90.00, A2 100 -> 10.00, B1 2000 -> 200.00; the later
    // cancel does not recompute them.
    XCTAssertEqual(
      r.entitlements,
      csv(
        Header.entitlements, "600000,20260105,20260106,A1,CASH,90.00",
        "600000,20260105,20260106,A2,CASH,10.00",
        "600000,20260105,20260106,B1,CASH,200.00"))
    XCTAssertEqual(r.holdings, Self.defaultHoldings)
  }
}
