// SPEC §2 fee table (built-in and fees.csv) and §4.1 clearing rows.
// Fee = round_half_up(amount x rate, 0.01), amount = round_half_up(price x quantity, 0.01),
// per trade per side.
import KernelAPI
import TallyEngine
import TallyFormat
import XCTest

final class FeeTests: XCTestCase {
  /// A1 holds plenty of everything, acquired long ago.
  static let rich = Fixture.standard.with(holdings: [
    "A1,600000,300000,20200101", "A1,510300,300000,20200101", "A1,019547,300000,20200101",
  ])

  func testHandlingAndStampAroundTheirEffectiveDate20230828() throws {
    // 20230827 is a Sunday, but the calendar is whatever the file says.
    let r = try Self.rich.with(calendar: ["20230827", "20230828", "20230829"]).run(
      """
      OPEN,20230827
      TRADE,T1,20230827,100000,600000,10.00,100000,A2,U2,A1,U1
      CLOSE,20230827
      OPEN,20230828
      TRADE,T1,20230828,100000,600000,10.00,100000,A2,U2,A1,U1
      CLOSE,20230828
      """)
    // amount 10.00 x 100000 = 1000000.00
    // 20230827: handling 0.0000487 -> 48.70; regulatory 0.00002 -> 20.00;
    //           transfer 0.00001 (since 20220429) -> 10.00; stamp 0.001 -> 1000.00
    // 20230828: handling 0.0000341 -> 34.10; regulatory 20.00; transfer 10.00; stamp 0.0005 -> 500.00
    XCTAssertEqual(
      r.clearing,
      csv(
        Header.clearing,
        "20230827,20230828,P1,600000,0,100000,0.00,1000000.00,48.70,20.00,10.00,1000.00",
        "20230827,20230828,P2,600000,100000,0,1000000.00,0.00,48.70,20.00,10.00,0.00",
        "20230828,20230829,P1,600000,0,100000,0.00,1000000.00,34.10,20.00,10.00,500.00",
        "20230828,20230829,P2,600000,100000,0,1000000.00,0.00,34.10,20.00,10.00,0.00"))
  }

  func testTransferAroundItsEffectiveDate20220429() throws {
    let r = try Self.rich.with(calendar: ["20220428", "20220429", "20220502"]).run(
      """
      OPEN,20220428
      TRADE,T1,20220428,100000,600000,10.00,100000,A2,U2,A1,U1
      CLOSE,20220428
      OPEN,20220429
      TRADE,T1,20220429,100000,600000,10.00,100000,A2,U2,A1,U1
      CLOSE,20220429
      """)
    // 1000000.00: handling 0.0000487 -> 48.70, regulatory 20.00, stamp 0.001 -> 1000.00 on both days;
    // transfer 0.00002 -> 20.00 on 20220428, 0.00001 -> 10.00 from 20220429.
    // The settle date of 20220429 is the next trading day, 20220502.
    XCTAssertEqual(
      r.clearing,
      csv(
        Header.clearing,
        "20220428,20220429,P1,600000,0,100000,0.00,1000000.00,48.70,20.00,20.00,1000.00",
        "20220428,20220429,P2,600000,100000,0,1000000.00,0.00,48.70,20.00,20.00,0.00",
        "20220429,20220502,P1,600000,0,100000,0.00,1000000.00,48.70,20.00,10.00,1000.00",
        "20220429,20220502,P2,600000,100000,0,1000000.00,0.00,48.70,20.00,10.00,0.00"))
  }

  func testExactHalfFenRoundsUp() throws {
    let r = try Self.rich.run(
      """
      OPEN,20260105
      TRADE,T1,20260105,100000,600000,10.20,750,A2,U2,A1,U1
      """)
    // 7650.00: handling x 0.0000341 = 0.260865 -> 0.26; regulatory x 0.00002 = 0.153 -> 0.15;
    // transfer x 0.00001 = 0.0765 -> 0.08; stamp x 0.0005 = 3.825 -> 3.83 (exact half, up).
    XCTAssertEqual(
      r.clearing,
      csv(
        Header.clearing,
        "20260105,20260106,P1,600000,0,750,0.00,7650.00,0.26,0.15,0.08,3.83",
        "20260105,20260106,P2,600000,750,0,7650.00,0.00,0.26,0.15,0.08,0.00"))
  }

  func testJustBelowHalfFenRoundsDown() throws {
    let r = try Self.rich.run(
      """
      OPEN,20260105
      TRADE,T1,20260105,100000,600000,49.999,10,A2,U2,A1,U1
      """)
    // 49.999 x 10 = 499.99: handling 0.017049659 -> 0.02; regulatory 0.0099998 -> 0.01;
    // transfer 0.0049999 -> 0.00; stamp 0.249995 -> 0.25.
    XCTAssertEqual(
      r.clearing,
      csv(
        Header.clearing,
        "20260105,20260106,P1,600000,0,10,0.00,499.99,0.02,0.01,0.00,0.25",
        "20260105,20260106,P2,600000,10,0,499.99,0.00,0.02,0.01,0.00,0.00"))
  }

  func testAmountIsRoundedBeforeFees() throws {
    let r = try Self.rich.run(
      """
      OPEN,20260105
      TRADE,T1,20260105,100000,600000,2.345,333,A2,U2,A1,U1
      TRADE,T2,20260105,100000,600000,999999.999,1,A2,U3,A1,U3
      """)
    // T1: 2.345 x 333 = 780.885 -> 780.89. handling 0.026628349 -> 0.03; regulatory 0.0156178 -> 0.02;
    //     transfer 0.0078089 -> 0.01; stamp 0.390445 -> 0.39.
    // T2: 999999.999 x 1 -> 1000000.00 (P3 both sides): handling 34.10 x 2, regulatory 20.00 x 2,
    //     transfer 10.00 x 2, stamp 500.00.
    XCTAssertEqual(
      r.clearing,
      csv(
        Header.clearing,
        "20260105,20260106,P1,600000,0,333,0.00,780.89,0.03,0.02,0.01,0.39",
        "20260105,20260106,P2,600000,333,0,780.89,0.00,0.03,0.02,0.01,0.00",
        "20260105,20260106,P3,600000,1,1,1000000.00,1000000.00,68.20,40.00,20.00,500.00"))
  }

  func testFeesAreRoundedPerTradeNotPerRow() throws {
    let r = try Self.rich.run(
      """
      OPEN,20260105
      TRADE,T1,20260105,100000,600000,5.00,100,A2,U2,A1,U1
      TRADE,T2,20260105,100001,600000,5.00,100,A2,U2,A1,U1
      """)
    // Each trade 500.00: handling 0.01705 -> 0.02; regulatory 0.01; transfer 0.005 -> 0.01;
    // stamp 0.25. Two trades: 0.04, 0.02, 0.02, 0.50 (fees of the 1000.00 total would give
    // handling 0.03 and transfer 0.01).
    XCTAssertEqual(
      r.clearing,
      csv(
        Header.clearing,
        "20260105,20260106,P1,600000,0,200,0.00,1000.00,0.04,0.02,0.02,0.50",
        "20260105,20260106,P2,600000,200,0,1000.00,0.00,0.04,0.02,0.02,0.00"))
  }

  func testFundAndBondBuiltInFees() throws {
    let r = try Self.rich.run(
      """
      OPEN,20260105
      TRADE,T1,20260105,100000,510300,3.912,1000,A2,U2,A1,U1
      TRADE,T2,20260105,100000,019547,100.125,200,A2,U2,A1,U1
      """)
    // FUND 3.912 x 1000 = 3912.00: handling 0.00004 -> 0.15648 -> 0.16 each side; nothing else.
    // BOND 100.125 x 200 = 20025.00: handling 0.000001 -> 0.020025 -> 0.02 each side; nothing else.
    XCTAssertEqual(
      r.clearing,
      csv(
        Header.clearing,
        "20260105,20260106,P1,019547,0,200,0.00,20025.00,0.02,0.00,0.00,0.00",
        "20260105,20260106,P1,510300,0,1000,0.00,3912.00,0.16,0.00,0.00,0.00",
        "20260105,20260106,P2,019547,200,0,20025.00,0.00,0.02,0.00,0.00,0.00",
        "20260105,20260106,P2,510300,1000,0,3912.00,0.00,0.16,0.00,0.00,0.00"))
  }

  func testFeesFileReplacesTheKindsItNamesOnly() throws {
    let r = try Self.rich.with(fees: [
      "FUND,handling,buy,0.0001,19000101",
      "FUND,stamp,sell,0.001,20260101",
      "FUND,transfer,both,0.5,20260106",
    ]).run(
      """
      OPEN,20260105
      TRADE,T1,20260105,100000,510300,3.912,500,A2,U2,A1,U1
      TRADE,T2,20260105,100000,600000,10.00,100,A2,U2,A1,U1
      TRADE,T3,20260105,100000,019547,100.000,100,A2,U2,A1,U1
      CLOSE,20260105
      OPEN,20260106
      TRADE,T1,20260106,100000,510300,3.912,100,A2,U2,A1,U1
      """)
    // FUND (only the file's rows count):
    //   0105, 1956.00: buy handling 0.1956 -> 0.20; sell handling: no sell or both row -> 0.00;
    //         sell stamp 1.956 -> 1.96; transfer row not yet in force -> 0.00.
    //   0106, 391.20: buy handling 0.03912 -> 0.04; transfer 0.5 -> 195.60 both sides;
    //         sell stamp 0.3912 -> 0.39.
    // STOCK keeps the built-in rows: 1000.00 -> 0.03, 0.02, 0.01, stamp 0.50.
    // BOND keeps the built-in row: 10000.00 x 0.000001 = 0.01 each side.
    XCTAssertEqual(
      r.clearing,
      csv(
        Header.clearing,
        "20260105,20260106,P1,019547,0,100,0.00,10000.00,0.01,0.00,0.00,0.00",
        "20260105,20260106,P1,510300,0,500,0.00,1956.00,0.00,0.00,0.00,1.96",
        "20260105,20260106,P1,600000,0,100,0.00,1000.00,0.03,0.02,0.01,0.50",
        "20260105,20260106,P2,019547,100,0,10000.00,0.00,0.01,0.00,0.00,0.00",
        "20260105,20260106,P2,510300,500,0,1956.00,0.00,0.20,0.00,0.00,0.00",
        "20260105,20260106,P2,600000,100,0,1000.00,0.00,0.03,0.02,0.01,0.00",
        "20260106,20260107,P1,510300,0,100,0.00,391.20,0.00,0.00,195.60,0.39",
        "20260106,20260107,P2,510300,100,0,391.20,0.00,0.04,0.00,195.60,0.00"))
  }

  func testFeesFileWithOnlyAStampRowZeroesTheOtherStockFees() throws {
    let r = try Self.rich.with(fees: ["STOCK,stamp,sell,0.001,19000101"]).run(
      """
      OPEN,20260105
      TRADE,T1,20260105,100000,600000,10.00,100,A2,U2,A1,U1
      """)
    // 1000.00: stamp 1.00 on the sell side; no candidate for any other STOCK fee -> 0.00.
    XCTAssertEqual(
      r.clearing,
      csv(
        Header.clearing,
        "20260105,20260106,P1,600000,0,100,0.00,1000.00,0.00,0.00,0.00,1.00",
        "20260105,20260106,P2,600000,100,0,1000.00,0.00,0.00,0.00,0.00,0.00"))
  }

  func testSideRowBeatsBothRowOfTheSameDateButNotALaterOne() throws {
    let r = try Self.rich.with(fees: [
      "BOND,handling,both,0.001,19000101",
      "BOND,handling,sell,0.002,19000101",
      "BOND,handling,both,0.003,20260106",
      "BOND,regulatory,buy,0.0001,19000101",
    ]).run(
      """
      OPEN,20260105
      TRADE,T1,20260105,100000,019547,100.000,100,A2,U2,A1,U1
      CLOSE,20260105
      OPEN,20260106
      TRADE,T1,20260106,100000,019547,100.000,100,A2,U2,A1,U1
      """)
    // 10000.00. 0105: buy handling 0.001 -> 10.00, sell handling 0.002 (sell beats both) -> 20.00,
    //   regulatory on the buy side only 1.00.
    // 0106: the both row of 20260106 is the latest for both sides -> 30.00 each; buy regulatory 1.00.
    XCTAssertEqual(
      r.clearing,
      csv(
        Header.clearing,
        "20260105,20260106,P1,019547,0,100,0.00,10000.00,20.00,0.00,0.00,0.00",
        "20260105,20260106,P2,019547,100,0,10000.00,0.00,10.00,1.00,0.00,0.00",
        "20260106,20260107,P1,019547,0,100,0.00,10000.00,30.00,0.00,0.00,0.00",
        "20260106,20260107,P2,019547,100,0,10000.00,0.00,30.00,1.00,0.00,0.00"))
  }

  func testParticipantOnBothSidesHasOneRow() throws {
    let r = try Self.rich.run(
      """
      OPEN,20260105
      TRADE,T1,20260105,100000,600000,10.00,1000,A2,U1B,A1,U1
      """)
    // U1 and U1B both clear for P1. 10000.00 each side: handling 0.34 + 0.34, regulatory 0.20 + 0.20,
    // transfer 0.10 + 0.10, stamp 5.00 (sell side). Net = 10000 - 10000 - 0.68 - 0.40 - 0.20 - 5.00 = -6.28.
    XCTAssertEqual(
      r.clearing,
      csv(Header.clearing, "20260105,20260106,P1,600000,1000,1000,10000.00,10000.00,0.68,0.40,0.20,5.00"))
    XCTAssertEqual(r.settlement, csv(Header.settlement, "20260105,20260106,P1,-6.28,PENDING,"))
  }

  func testNetCashSumsAParticipantsRows() throws {
    let r = try Self.rich.with(holdings: ["A1,600000,1000,20200101", "B1,019547,1000,20200101"]).run(
      """
      OPEN,20260105
      TRADE,T1,20260105,100000,600000,10.00,1000,A2,U2,A1,U1
      TRADE,T2,20260105,100000,019547,100.000,100,A1,U1,B1,U2
      """)
    // P1: sells 600000 10000.00 (fees 0.34 + 0.20 + 0.10 + 5.00) and buys 019547 10000.00 (0.01):
    //   10000 - 5.64 - 10000 - 0.01 = -5.65.
    // P2: buys 600000 (-10000 - 0.64) and sells 019547 (+10000 - 0.01): -0.65.
    XCTAssertEqual(
      r.clearing,
      csv(
        Header.clearing,
        "20260105,20260106,P1,019547,100,0,10000.00,0.00,0.01,0.00,0.00,0.00",
        "20260105,20260106,P1,600000,0,1000,0.00,10000.00,0.34,0.20,0.10,5.00",
        "20260105,20260106,P2,019547,0,100,0.00,10000.00,0.01,0.00,0.00,0.00",
        "20260105,20260106,P2,600000,1000,0,10000.00,0.00,0.34,0.20,0.10,0.00"))
    XCTAssertEqual(
      r.settlement,
      csv(Header.settlement, "20260105,20260106,P1,-5.65,PENDING,", "20260105,20260106,P2,-0.65,PENDING,"))
  }
}
