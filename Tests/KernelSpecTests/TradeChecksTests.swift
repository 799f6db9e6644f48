// SPEC §3 TRADE: every reason code, in the order the checks run, and no effect
// from a rejected trade. DEPOSIT's checks too.
import KernelAPI
import TallyEngine
import TallyFormat
import XCTest

final class TradeChecksTests: XCTestCase {
  func testEveryTradeCheckInOrder() throws {
    // Each rejected line also fails every later check, so only the first one can name it.
    let bad = "XXXXXX,0,0,AX,UX,AY,UY"
    let r = try Fixture.standard.run(
      """
      TRADE,T1,20260105,093000,\(bad)
      OPEN,20260105
      TRADE,T1,20260106,093000,\(bad)
      TRADE,T1,20260105,093000,600000,10.00,100,A2,U2,A1,U1
      TRADE,T1,20260105,093001,\(bad)
      TRADE,T2,20260105,093000,\(bad)
      TRADE,T2,20260105,093000,600000,0,0,AX,UX,AY,UY
      TRADE,T2,20260105,093000,600000,-1.5,0,AX,UX,AY,UY
      TRADE,T2,20260105,093000,600000,10.00,0,AX,UX,AY,UY
      TRADE,T2,20260105,093000,600000,10.00,-100,AX,UX,AY,UY
      TRADE,T2,20260105,093000,600000,10.00,100,AX,UX,AY,UY
      TRADE,T2,20260105,093000,600000,10.00,100,AX,U2,A1,U1
      TRADE,T2,20260105,093000,600000,10.00,100,A2,UX,AY,UY
      TRADE,T2,20260105,093000,600000,10.00,5000,A2,UX,A3,UY
      TRADE,T2,20260105,093000,600000,10.00,5000,A2,U2,A3,UY
      TRADE,T2,20260105,093000,600000,10.00,5000,A2,U2,A3,U1
      TRADE,T2,20260105,093000,600000,10.00,901,A2,U2,A1,U1
      TRADE,T2,20260105,093000,600000,10.00,900,A2,U2,A1,U1
      CLOSE,20260105
      TRADE,T3,20260105,093000,600000,10.00,1,A2,U2,B1,U1
      OPEN,20260106
      TRADE,T1,20260106,093000,600000,10.00,100,B2,U3,B1,U3
      """)
    XCTAssertEqual(
      r.rejections,
      csv(
        Header.rejections,
        "1,TRADE,T1,DAY_NOT_OPEN",  // no day open yet
        "3,TRADE,T1,WRONG_DATE",  // 20260106 while 20260105 is open
        "5,TRADE,T1,DUPLICATE_TRADE",  // T1 of 20260105 was applied at seq 4
        "6,TRADE,T2,UNKNOWN_SECURITY",
        "7,TRADE,T2,INVALID_PRICE",  // 0
        "8,TRADE,T2,INVALID_PRICE",  // -1.5
        "9,TRADE,T2,INVALID_QUANTITY",  // 0
        "10,TRADE,T2,INVALID_QUANTITY",  // -100
        "11,TRADE,T2,UNKNOWN_ACCOUNT",  // both accounts unknown
        "12,TRADE,T2,UNKNOWN_ACCOUNT",  // buyer unknown, everything else fine
        "13,TRADE,T2,UNKNOWN_ACCOUNT",  // seller unknown beats the unknown buy unit
        "14,TRADE,T2,UNKNOWN_UNIT",  // buy unit unknown beats the seller's missing shares
        "15,TRADE,T2,UNKNOWN_UNIT",  // sell unit unknown beats the seller's missing shares
        "16,TRADE,T2,INSUFFICIENT_HOLDINGS",  // A3 holds none
        "17,TRADE,T2,INSUFFICIENT_HOLDINGS",  // A1 has 1000 - 100 = 900 available
        "20,TRADE,T3,DAY_NOT_OPEN"))  // the day is closed
    // Applied: seq 4 (T1, 100), seq 18 (T2, exactly the 900 available), seq 22 (T1 of
    // another date: not a duplicate; P3 on both sides through U3).
    // Amounts: T1 1000.00 -> handling 0.0341->0.03, regulatory 0.02, transfer 0.01, stamp 0.50;
    // T2 9000.00 -> handling 0.3069->0.31, regulatory 0.18, transfer 0.09, stamp 4.50.
    // Row sums: 10000.00, handling 0.34, regulatory 0.20, transfer 0.10, stamp 5.00.
    // 20260106 T1 (1000.00): each side 0.03/0.02/0.01, stamp 0.50 on the sell side.
    XCTAssertEqual(
      r.clearing,
      csv(
        Header.clearing,
        "20260105,20260106,P1,600000,0,1000,0.00,10000.00,0.34,0.20,0.10,5.00",
        "20260105,20260106,P2,600000,1000,0,10000.00,0.00,0.34,0.20,0.10,0.00",
        "20260106,20260107,P3,600000,100,100,1000.00,1000.00,0.06,0.04,0.02,0.50"))
    // Net: P1 10000 - 5.64 = 9994.36; P2 -10000 - 0.64 = -10000.64; P3 -0.12 - 0.50 = -0.62.
    XCTAssertEqual(
      r.settlement,
      csv(
        Header.settlement,
        "20260105,20260106,P1,9994.36,PENDING,",
        "20260105,20260106,P2,-10000.64,PENDING,",
        "20260106,20260107,P3,-0.62,PENDING,"))
    // A1 sold all 1000 of 600000: no row. A2's 1000 bought on 0105 became available at
    // OPEN 0106. B2's 100 bought on 0106 is not available yet.
    XCTAssertEqual(
      r.holdings,
      csv(
        Header.holdings,
        "A1,019547,1000,1000,0",
        "A1,510300,1000,1000,0",
        "A2,600000,1000,1000,0",
        "B1,600000,1900,1900,0",
        "B2,600000,100,0,0"))
    XCTAssertEqual(r.statistics.tradesApplied, 3)
    XCTAssertEqual(r.statistics.events, 22)
    XCTAssertEqual(r.statistics.applied, 6)
    XCTAssertEqual(r.statistics.rejected, 16)
    XCTAssertEqual(r.statistics.rejectedByReason[Int(RejectReason.unknownAccount.rawValue)], 3)
  }

  func testDuplicateTradeCountsCancelledTradesButNotRejectedOnes() throws {
    let r = try Fixture.standard.run(
      """
      OPEN,20260105
      TRADE,T1,20260105,093000,600000,10.00,100,A2,U2,A1,U1
      CANCEL,20260105,T1
      TRADE,T1,20260105,093000,600000,10.00,100,A2,U2,A1,U1
      TRADE,T2,20260105,093000,600000,10.00,5000,A2,U2,A1,U1
      TRADE,T2,20260105,093000,600000,10.00,100,A2,U2,A1,U1
      """)
    XCTAssertEqual(r.codes, ["OK", "OK", "OK", "DUPLICATE_TRADE", "INSUFFICIENT_HOLDINGS", "OK"])
    // Only T2 stands: 100 x 10.00 = 1000.00.
    XCTAssertEqual(r.clearing, LineHandlingTests.smallTradeClearing)
    XCTAssertEqual(
      r.holdings,
      csv(
        Header.holdings, "A1,019547,1000,1000,0", "A1,510300,1000,1000,0", "A1,600000,900,900,0",
        "A2,600000,100,0,0", "B1,600000,2000,2000,0"))
  }

  func testDepositChecksAndBalances() throws {
    let r = try Fixture.standard.run(
      """
      DEPOSIT,PX,0
      DEPOSIT,P1,0
      DEPOSIT,P1,-5.00
      DEPOSIT,P1,1234.5
      DEPOSIT,P1,0.01
      DEPOSIT,P3,007
      """)
    XCTAssertEqual(
      r.codes, ["UNKNOWN_PARTICIPANT", "INVALID_AMOUNT", "INVALID_AMOUNT", "OK", "OK", "OK"])
    // P1: 1234.50 + 0.01 = 1234.51; P3: 7.00. No day needs to be open for a deposit.
    XCTAssertEqual(r.balances, balances("1234.51", "0.00", "7.00"))
  }
}
