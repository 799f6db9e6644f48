// SPEC §3 SETTLE and §4.3 settlement (交收): receivers, payers, defaults with
// withholding, cures, and SETTLE's BAD_DATE.
//
// The recurring trade: A2 buys 1000 x 10.00 from A1 through U2 (P2) / U1 (P1).
// 10000.00: handling 0.34, regulatory 0.20, transfer 0.10 each side, stamp 5.00 sell.
// P1 net = 10000 - 5.64 = 9994.36 (receives); P2 net = -10000 - 0.64 = -10000.64 (pays).
import KernelAPI
import TallyEngine
import TallyFormat
import XCTest

final class SettlementTests: XCTestCase {
  static let t1 = "TRADE,T1,20260105,093000,600000,10.00,1000,A2,U2,A1,U1"

  func testReceiverCreditedAndPayerPays() throws {
    let day1 = """
      DEPOSIT,P2,20000.00
      OPEN,20260105
      \(Self.t1)
      CLOSE,20260105
      OPEN,20260106
      """
    let r1 = try Fixture.standard.run(day1)
    XCTAssertEqual(
      r1.settlement,
      csv(
        Header.settlement, "20260105,20260106,P1,9994.36,PENDING,", "20260105,20260106,P2,-10000.64,PENDING,")
    )
    XCTAssertEqual(r1.balances, balances("0.00", "20000.00"))

    let r2 = try Fixture.standard.run(day1 + "\nSETTLE,20260106\n")
    XCTAssertEqual(
      r2.settlement,
      csv(
        Header.settlement, "20260105,20260106,P1,9994.36,SETTLED,20260106",
        "20260105,20260106,P2,-10000.64,SETTLED,20260106"))
    // P2: 20000.00 - 10000.64 = 9999.36.
    XCTAssertEqual(r2.balances, balances("9994.36", "9999.36"))
    XCTAssertEqual(
      r2.holdings,
      csv(
        Header.holdings, "A1,019547,1000,1000,0", "A1,510300,1000,1000,0", "A2,600000,1000,1000,0",
        "B1,600000,2000,2000,0"))
  }

  func testBalanceExactlyCoveringTheAmountPays() throws {
    let r = try Fixture.standard.run(
      """
      DEPOSIT,P2,10000.64
      OPEN,20260105
      \(Self.t1)
      CLOSE,20260105
      OPEN,20260106
      SETTLE,20260106
      """)
    XCTAssertEqual(
      r.settlement,
      csv(
        Header.settlement, "20260105,20260106,P1,9994.36,SETTLED,20260106",
        "20260105,20260106,P2,-10000.64,SETTLED,20260106"))
    XCTAssertEqual(r.balances, balances("9994.36", "0.00"))
  }

  func testZeroNetIsSettledAsAReceiver() throws {
    let r = try Fixture.standard.run(
      """
      OPEN,20260105
      TRADE,T1,20260105,093000,019547,1.000,100,A2,U1B,A1,U1
      CLOSE,20260105
      OPEN,20260106
      SETTLE,20260106
      """)
    // 100.00 x 0.000001 = 0.0001 -> 0.00 each side: P1 net 100 - 100 - 0 = 0.00 >= 0.
    XCTAssertEqual(
      r.clearing,
      csv(Header.clearing, "20260105,20260106,P1,019547,100,100,100.00,100.00,0.00,0.00,0.00,0.00"))
    XCTAssertEqual(r.settlement, csv(Header.settlement, "20260105,20260106,P1,0.00,SETTLED,20260106"))
  }

  func testDefaultWithholdsWhatTheBuyersStillHaveAvailableAndStaysDefaulted() throws {
    let events = """
      OPEN,20260105
      \(Self.t1)
      TRADE,T2,20260105,093100,600000,10.00,100,A3,U2,B1,U3
      CLOSE,20260105
      OPEN,20260106
      TRADE,T3,20260106,093000,600000,10.00,300,B2,U3,A2,U3
      SETTLE,20260106
      """
    // 0105 rows: P1 sells T1 -> +9994.36. P3 sells T2 (1000.00: 0.03, 0.02, 0.01, stamp 0.50) -> +999.44.
    //   P2 buys both: 11000.00 with handling 0.37, regulatory 0.22, transfer 0.11 -> -11000.70.
    // SETTLE 0106: P1 and P3 credited; P2 has 0.00 -> DEFAULTED. Withheld per buying trade:
    //   T1 -> A2: min(1000, 1000 - 300 sold on 0106) = 700; T2 -> A3: min(100, 100) = 100.
    // 0106: T3 3000.00 through U3 on both sides: handling 0.1023 -> 0.10, regulatory 0.06,
    //   transfer 0.03 per side, stamp 1.50: P3 net -0.38 - 1.50 = -1.88.
    let r1 = try Fixture.standard.run(events)
    XCTAssertEqual(
      r1.settlement,
      csv(
        Header.settlement,
        "20260105,20260106,P1,9994.36,SETTLED,20260106",
        "20260105,20260106,P2,-11000.70,DEFAULTED,",
        "20260105,20260106,P3,999.44,SETTLED,20260106",
        "20260106,20260107,P3,-1.88,PENDING,"))
    XCTAssertEqual(r1.balances, balances("9994.36", "0.00", "999.44"))
    XCTAssertEqual(
      r1.holdings,
      csv(
        Header.holdings, "A1,019547,1000,1000,0", "A1,510300,1000,1000,0", "A2,600000,700,0,700",
        "A3,600000,100,0,100", "B1,600000,1900,1900,0", "B2,600000,300,0,0"))

    // A day later: the retry finds P2 still at 0.00; P3 pays 1.88 (999.44 -> 997.56).
    // OPEN makes B2's 300 available but not the withheld shares.
    let r2 = try Fixture.standard.run(
      events + """

        CLOSE,20260106
        OPEN,20260107
        SETTLE,20260107
        """)
    XCTAssertEqual(
      r2.settlement,
      csv(
        Header.settlement,
        "20260105,20260106,P1,9994.36,SETTLED,20260106",
        "20260105,20260106,P2,-11000.70,DEFAULTED,",
        "20260105,20260106,P3,999.44,SETTLED,20260106",
        "20260106,20260107,P3,-1.88,SETTLED,20260107"))
    XCTAssertEqual(r2.balances, balances("9994.36", "0.00", "997.56"))
    XCTAssertEqual(
      r2.holdings,
      csv(
        Header.holdings, "A1,019547,1000,1000,0", "A1,510300,1000,1000,0", "A2,600000,700,0,700",
        "A3,600000,100,0,100", "B1,600000,1900,1900,0", "B2,600000,300,300,0"))
  }

  func testDefaultCuredTwoDaysLaterByADeposit() throws {
    let events = """
      OPEN,20260105
      \(Self.t1)
      CLOSE,20260105
      OPEN,20260106
      SETTLE,20260106
      CLOSE,20260106
      OPEN,20260107
      SETTLE,20260107
      """
    let r1 = try Fixture.standard.run(events)
    XCTAssertEqual(
      r1.settlement,
      csv(
        Header.settlement, "20260105,20260106,P1,9994.36,SETTLED,20260106",
        "20260105,20260106,P2,-10000.64,DEFAULTED,"))
    XCTAssertEqual(
      r1.holdings,
      csv(
        Header.holdings, "A1,019547,1000,1000,0", "A1,510300,1000,1000,0", "A2,600000,1000,0,1000",
        "B1,600000,2000,2000,0"))

    let r2 = try Fixture.standard.run(
      events + """

        DEPOSIT,P2,20000.00
        CLOSE,20260107
        OPEN,20260108
        SETTLE,20260108
        """)
    // SETTLE 0108 settles nothing new; the retry takes 10000.64 from 20000.00 -> 9999.36.
    XCTAssertEqual(
      r2.settlement,
      csv(
        Header.settlement, "20260105,20260106,P1,9994.36,SETTLED,20260106",
        "20260105,20260106,P2,-10000.64,CURED,20260108"))
    XCTAssertEqual(r2.balances, balances("9994.36", "9999.36"))
    XCTAssertEqual(
      r2.holdings,
      csv(
        Header.holdings, "A1,019547,1000,1000,0", "A1,510300,1000,1000,0", "A2,600000,1000,1000,0",
        "B1,600000,2000,2000,0"))
  }

  func testReceiversFirstThenCuresThenPayers() throws {
    let r = try Fixture.standard.with(holdings: ["A1,600000,1000,20250101", "A3,600000,2000,20250101"]).run(
      """
      OPEN,20260105
      \(Self.t1)
      CLOSE,20260105
      OPEN,20260106
      SETTLE,20260106
      TRADE,T2,20260106,093000,600000,10.00,2000,B1,U1,A3,U2
      CLOSE,20260106
      OPEN,20260107
      SETTLE,20260107
      """)
    // SETTLE 0106: P1 +9994.36; P2 DEFAULTED on -10000.64, A2 withholds 1000.
    // T2 20000.00: handling 0.682 -> 0.68, regulatory 0.40, transfer 0.20 per side, stamp 10.00:
    //   P2 (seller) +20000 - 11.28 = 19988.72; P1 (buyer) -20000 - 1.28 = -20001.28.
    // SETTLE 0107: 1. P2 credited 19988.72. 2. P2's default cured: 19988.72 - 10000.64 = 9988.08,
    //   A2's 1000 released. 3. P1 owes 20001.28 with 9994.36 -> DEFAULTED, B1 withholds
    //   min(2000, 2000) = 2000.
    XCTAssertEqual(
      r.settlement,
      csv(
        Header.settlement,
        "20260105,20260106,P1,9994.36,SETTLED,20260106",
        "20260105,20260106,P2,-10000.64,CURED,20260107",
        "20260106,20260107,P1,-20001.28,DEFAULTED,",
        "20260106,20260107,P2,19988.72,SETTLED,20260107"))
    XCTAssertEqual(r.balances, balances("9994.36", "9988.08"))
    XCTAssertEqual(r.holdings, csv(Header.holdings, "A2,600000,1000,1000,0", "B1,600000,2000,0,2000"))
  }

  func testAnUncoveredDefaultDoesNotBlockTheNext() throws {
    let r = try Fixture.standard.with(holdings: ["A1,600000,2000,20250101"]).run(
      """
      OPEN,20260105
      \(Self.t1)
      TRADE,T2,20260105,093100,600000,10.00,100,A3,U3,A1,U1
      CLOSE,20260105
      OPEN,20260106
      SETTLE,20260106
      DEPOSIT,P2,5000.00
      DEPOSIT,P3,2000.00
      CLOSE,20260106
      OPEN,20260107
      SETTLE,20260107
      """)
    // P1 sells 1100: 11000.00, handling 0.34 + 0.03, regulatory 0.20 + 0.02, transfer 0.10 + 0.01,
    //   stamp 5.00 + 0.50 -> 11000 - 6.20 = 10993.80.
    // P2 -10000.64, P3 -1000.06 (1000.00 + 0.03 + 0.02 + 0.01): both DEFAULTED at SETTLE 0106.
    // SETTLE 0107 retries (0105, P2): 5000.00 does not cover 10000.64, nothing paid;
    //   then (0105, P3): 2000.00 covers 1000.06 -> CURED, 999.94 left, A3's 100 released.
    XCTAssertEqual(
      r.settlement,
      csv(
        Header.settlement,
        "20260105,20260106,P1,10993.80,SETTLED,20260106",
        "20260105,20260106,P2,-10000.64,DEFAULTED,",
        "20260105,20260106,P3,-1000.06,CURED,20260107"))
    XCTAssertEqual(r.balances, balances("10993.80", "5000.00", "999.94"))
    XCTAssertEqual(
      r.holdings,
      csv(Header.holdings, "A1,600000,900,900,0", "A2,600000,1000,0,1000", "A3,600000,100,100,0"))
  }

  func testDefaultsAreRetriedInTradeDateOrder() throws {
    let r = try Fixture.standard.with(holdings: ["A1,600000,2000,20250101"]).run(
      """
      OPEN,20260105
      \(Self.t1)
      CLOSE,20260105
      OPEN,20260106
      SETTLE,20260106
      TRADE,T2,20260106,093000,600000,10.00,100,A3,U2,A1,U1
      CLOSE,20260106
      OPEN,20260107
      SETTLE,20260107
      DEPOSIT,P2,10500.00
      CLOSE,20260107
      OPEN,20260108
      SETTLE,20260108
      """)
    // P2 defaults on 0105 (-10000.64; A2 withholds 1000) and on 0106 (-1000.06; A3 withholds 100).
    // SETTLE 0108 retries 0105 first: 10500.00 - 10000.64 = 499.36, CURED; then 0106:
    // 499.36 < 1000.06, stays DEFAULTED. (The other order would cure 0106 and not 0105.)
    // P1: 9994.36 + (1000 - 0.56) = 10993.80.
    XCTAssertEqual(
      r.settlement,
      csv(
        Header.settlement,
        "20260105,20260106,P1,9994.36,SETTLED,20260106",
        "20260105,20260106,P2,-10000.64,CURED,20260108",
        "20260106,20260107,P1,999.44,SETTLED,20260107",
        "20260106,20260107,P2,-1000.06,DEFAULTED,"))
    XCTAssertEqual(r.balances, balances("10993.80", "499.36"))
    XCTAssertEqual(
      r.holdings,
      csv(Header.holdings, "A1,600000,900,900,0", "A2,600000,1000,1000,0", "A3,600000,100,0,100"))
  }

  func testSettleBadDate() throws {
    let r = try Fixture.standard.run(
      """
      SETTLE,20260105
      OPEN,20260105
      SETTLE,20260106
      SETTLE,20260105
      SETTLE,20260105
      CLOSE,20260105
      OPEN,20260106
      SETTLE,20260105
      CLOSE,20260106
      SETTLE,20260106
      SETTLE,20260106
      """)
    XCTAssertEqual(
      r.rejections,
      csv(
        Header.rejections,
        "1,SETTLE,20260105,BAD_DATE",  // nothing opened yet
        "3,SETTLE,20260106,BAD_DATE",  // not the last opened date
        "5,SETTLE,20260105,BAD_DATE",  // already ran
        "8,SETTLE,20260105,BAD_DATE",  // no longer the last opened date
        "11,SETTLE,20260106,BAD_DATE"))  // already ran (seq 10: the last opened date, closed, is fine)
  }
}
