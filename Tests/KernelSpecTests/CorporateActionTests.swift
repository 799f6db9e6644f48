// SPEC §3 DIVIDEND / BONUS checks and §4.4 corporate actions (权益).
import KernelAPI
import TallyEngine
import TallyFormat
import XCTest

final class CorporateActionTests: XCTestCase {
  func testCashDividendRoundsHalfUpAndIsReportedOnly() throws {
    let r = try Fixture.standard.with(holdings: [
      "A1,600000,333,20250101", "A2,600000,1,20250101", "B1,600000,100,20250101", "A2,510300,100,20250101",
    ]).run(
      """
      DIVIDEND,600000,20260105,0.015
      DIVIDEND,600000,20260105,0.004
      DIVIDEND,510300,20260105,0.01
      DEPOSIT,P1,50.00
      OPEN,20260105
      CLOSE,20260105
      OPEN,20260106
      """)
    // 0.015: A1 333 x 0.015 = 4.995 -> 5.00; A2 1 x 0.015 = 0.015 -> 0.02; B1 1.50.
    // 0.004: A1 1.332 -> 1.33; A2 0.004 -> 0.00 (not written); B1 0.40.
    // 510300: A2 100 x 0.01 = 1.00; sorted first by security.
    // Rows with equal keys (A1, B1) keep the order in which the actions were applied.
    XCTAssertEqual(
      r.entitlements,
      csv(
        Header.entitlements,
        "510300,20260105,20260106,A2,CASH,1.00",
        "600000,20260105,20260106,A1,CASH,5.00",
        "600000,20260105,20260106,A1,CASH,1.33",
        "600000,20260105,20260106,A2,CASH,0.02",
        "600000,20260105,20260106,B1,CASH,1.50",
        "600000,20260105,20260106,B1,CASH,0.40"))
    // Cash dividends never touch balances or holdings.
    XCTAssertEqual(r.balances, balances("50.00"))
    XCTAssertEqual(
      r.holdings,
      csv(
        Header.holdings, "A1,600000,333,333,0", "A2,510300,100,100,0", "A2,600000,1,1,0",
        "B1,600000,100,100,0"))
  }

  func testTwoActionsOnOneRecordDateKeepApplicationOrder() throws {
    // The same two dividends as above applied the other way round.
    let r = try Fixture.standard.with(holdings: ["A1,600000,333,20250101", "B1,600000,100,20250101"]).run(
      """
      DIVIDEND,600000,20260105,0.004
      DIVIDEND,600000,20260105,0.015
      OPEN,20260105
      CLOSE,20260105
      """)
    XCTAssertEqual(
      r.entitlements,
      csv(
        Header.entitlements,
        "600000,20260105,20260106,A1,CASH,1.33",
        "600000,20260105,20260106,A1,CASH,5.00",
        "600000,20260105,20260106,B1,CASH,0.40",
        "600000,20260105,20260106,B1,CASH,1.50"))
  }

  func testHoldersOfRecordAreTheHoldersAtClose() throws {
    let r = try Fixture.standard.run(
      """
      DIVIDEND,600000,20260105,0.10
      OPEN,20260105
      TRADE,T1,20260105,093000,600000,10.00,1000,A2,U2,A1,U1
      CLOSE,20260105
      """)
    // A1 sold out during the day; A2's shares are not available yet but are held.
    XCTAssertEqual(
      r.entitlements,
      csv(
        Header.entitlements, "600000,20260105,20260106,A2,CASH,100.00",
        "600000,20260105,20260106,B1,CASH,200.00"))
  }

  func testBonusLargestRemainderTieGoesToTheSmallerAccount() throws {
    // File order puts A2 first; the tie-break is by account, not by file order.
    let fixture = Fixture.standard.with(holdings: [
      "A2,600000,5,20250101", "A1,600000,5,20250101", "A3,600000,4,20250101",
    ])
    let events = """
      BONUS,600000,20260105,3,1
      OPEN,20260105
      CLOSE,20260105
      """
    // Total floor(14 x 1 / 3) = 4. A1 5/3 = 1 r2, A2 1 r2, A3 4/3 = 1 r1: 3 given, 1 left over,
    // to the largest remainder 2: A1 and A2 tie, A1 is the smaller account.
    let r1 = try fixture.run(events)
    XCTAssertEqual(
      r1.entitlements,
      csv(
        Header.entitlements, "600000,20260105,20260106,A1,SHARES,2", "600000,20260105,20260106,A2,SHARES,1",
        "600000,20260105,20260106,A3,SHARES,1"))
    // Not credited before OPEN of the pay date.
    XCTAssertEqual(
      r1.holdings,
      csv(Header.holdings, "A1,600000,5,5,0", "A2,600000,5,5,0", "A3,600000,4,4,0"))

    let r2 = try fixture.run(events + "\nOPEN,20260106\n")
    XCTAssertEqual(
      r2.holdings,
      csv(Header.holdings, "A1,600000,7,7,0", "A2,600000,6,6,0", "A3,600000,5,5,0"))
  }

  func testBonusLeftoverGoesByRemainderNotByAccountOrSize() throws {
    let r = try Fixture.standard.with(holdings: [
      "A1,600000,1,20250101", "A2,600000,2,20250101", "A3,600000,4,20250101",
    ]).run(
      """
      BONUS,600000,20260105,7,2
      OPEN,20260105
      CLOSE,20260105
      OPEN,20260106
      """)
    // Total floor(7 x 2 / 7) = 2. A1 2/7 = 0 r2, A2 4/7 = 0 r4, A3 8/7 = 1 r1: the one left over
    // goes to A2 (remainder 4). A1 gets nothing: no row.
    XCTAssertEqual(
      r.entitlements,
      csv(Header.entitlements, "600000,20260105,20260106,A2,SHARES,1", "600000,20260105,20260106,A3,SHARES,1")
    )
    XCTAssertEqual(
      r.holdings, csv(Header.holdings, "A1,600000,1,1,0", "A2,600000,3,3,0", "A3,600000,5,5,0"))
  }

  func testBonusSeveralLeftoversWithATie() throws {
    let r = try Fixture.standard.with(holdings: [
      "B1,600000,3,20250101", "A4,600000,1,20250101", "A3,600000,1,20250101", "A2,600000,1,20250101",
      "A1,600000,1,20250101",
    ]).run(
      """
      BONUS,600000,20260105,4,3
      OPEN,20260105
      CLOSE,20260105
      """)
    // Total floor(7 x 3 / 4) = 5. A1..A4: 3/4 = 0 r3 each; B1: 9/4 = 2 r1. 3 left over go to
    // the remainder-3 holders in account order: A1, A2, A3. A4 gets nothing.
    XCTAssertEqual(
      r.entitlements,
      csv(
        Header.entitlements,
        "600000,20260105,20260106,A1,SHARES,1",
        "600000,20260105,20260106,A2,SHARES,1",
        "600000,20260105,20260106,A3,SHARES,1",
        "600000,20260105,20260106,B1,SHARES,2"))
  }

  func testBonusLotIsAcquiredOnTheRecordDateWithNoDividend() throws {
    // A calendar with a month's gap: 20260106 -> 20260205 is one trading day.
    let r = try Fixture.standard.with(calendar: ["20260105", "20260106", "20260205", "20260206"])
      .with(holdings: ["A1,600000,10,20250101"]).run(
        """
        DIVIDEND,600000,20260106,1.00
        BONUS,600000,20260105,10,10
        DIVIDEND,600000,20260105,0.50
        OPEN,20260105
        CLOSE,20260105
        OPEN,20260106
        CLOSE,20260106
        OPEN,20260205
        TRADE,T1,20260205,093000,600000,10.00,10,B1,U3,A1,U1
        TRADE,T2,20260205,093100,600000,10.00,10,B1,U3,A1,U1
        """)
    // CLOSE 0105: A1's old lot accrues 0.50 (cash 10 x 0.50 = 5.00); bonus 10 x 10 / 10 = 10.
    // OPEN 0106: a new lot of 10 acquired 20260105, no dividend. CLOSE 0106: 20 x 1.00 = 20.00,
    // both lots accrue 1.00 (old lot 1.50, bonus lot 1.00).
    // T1 takes the old lot (20250101, 400 days -> 0%): no tax row.
    // T2 takes the bonus lot: 20260205 - 20260105 = 31 days -> 10%: 10 x 1.00 x 0.1 = 1.00.
    // (Acquired on the pay date it would be 30 days -> 20%; with the old lot's 0.50 it would be more.)
    XCTAssertEqual(
      r.entitlements,
      csv(
        Header.entitlements,
        "600000,20260105,20260106,A1,CASH,5.00",
        "600000,20260105,20260106,A1,SHARES,10",
        "600000,20260106,20260205,A1,CASH,20.00"))
    XCTAssertEqual(r.tax, csv(Header.tax, "20260205,T2,A1,600000,10,1.00"))
  }

  func testActionChecksInOrder() throws {
    let r = try Fixture.standard.run(
      """
      DIVIDEND,XXXXXX,20260110,0
      DIVIDEND,600000,20260110,0
      DIVIDEND,600000,20260110,-0.5
      DIVIDEND,600000,20260110,0.01
      DIVIDEND,600000,20260116,0.01
      BONUS,XXXXXX,20260110,0,0
      BONUS,600000,20260110,0,1
      BONUS,600000,20260110,1,0
      BONUS,600000,20260110,-1,1
      BONUS,600000,20260110,10,1
      OPEN,20260105
      CLOSE,20260105
      OPEN,20260106
      DIVIDEND,600000,20260105,0.01
      BONUS,600000,20260105,10,1
      DIVIDEND,600000,20260106,0.01
      DIVIDEND,600000,20250105,0.01
      CLOSE,20260106
      DIVIDEND,600000,20260106,0.02
      BONUS,600000,20260106,10,1
      DIVIDEND,600000,20260107,0.03
      DIVIDEND,600000,20260116,0.01
      """)
    XCTAssertEqual(
      r.rejections,
      csv(
        Header.rejections,
        "1,DIVIDEND,XXXXXX,UNKNOWN_SECURITY",
        "2,DIVIDEND,600000,INVALID_AMOUNT",
        "3,DIVIDEND,600000,INVALID_AMOUNT",
        "4,DIVIDEND,600000,BAD_DATE",  // a Saturday
        "5,DIVIDEND,600000,BAD_DATE",  // no next trading day
        "6,BONUS,XXXXXX,UNKNOWN_SECURITY",
        "7,BONUS,600000,INVALID_RATIO",
        "8,BONUS,600000,INVALID_RATIO",
        "9,BONUS,600000,INVALID_RATIO",
        "10,BONUS,600000,BAD_DATE",
        "14,DIVIDEND,600000,RECORD_DATE_PASSED",  // before the last opened date
        "15,BONUS,600000,RECORD_DATE_PASSED",
        // seq 16: equal to the last opened date, which is still open: applied
        "17,DIVIDEND,600000,BAD_DATE",  // not a trading day (and long passed)
        "19,DIVIDEND,600000,RECORD_DATE_PASSED",  // equal to the last opened date, now closed
        "20,BONUS,600000,RECORD_DATE_PASSED",
        // seq 21: a later trading day: applied, executes at CLOSE 20260107 (never reached)
        "22,DIVIDEND,600000,BAD_DATE"))
    // Only seq 16 executed: A1 1000 x 0.01 = 10.00, B1 2000 x 0.01 = 20.00, paid 20260107.
    XCTAssertEqual(
      r.entitlements,
      csv(
        Header.entitlements, "600000,20260106,20260107,A1,CASH,10.00",
        "600000,20260106,20260107,B1,CASH,20.00"))
  }

  func testActionWhoseRecordDateIsNeverOpenedNeverExecutes() throws {
    let r = try Fixture.standard.run(
      """
      DIVIDEND,600000,20260105,0.10
      BONUS,600000,20260105,10,1
      OPEN,20260106
      CLOSE,20260106
      OPEN,20260107
      """)
    XCTAssertEqual(r.codes, ["OK", "OK", "OK", "OK", "OK"])
    XCTAssertEqual(r.entitlements, csv(Header.entitlements))
    XCTAssertEqual(
      r.holdings,
      csv(
        Header.holdings, "A1,019547,1000,1000,0", "A1,510300,1000,1000,0", "A1,600000,1000,1000,0",
        "B1,600000,2000,2000,0"))
  }
}
