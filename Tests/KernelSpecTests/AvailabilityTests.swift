// SPEC §3 TRADE transfer and §4.2: T+1 availability for STOCK and FUND, same-day for BOND.
import KernelAPI
import TallyEngine
import TallyFormat
import XCTest

final class AvailabilityTests: XCTestCase {
  func tPlusOne(_ security: String) throws {
    let fixture = Fixture.standard.with(holdings: ["A1,\(security),1000,20250101"])
    let day1 = """
      OPEN,20260105
      TRADE,T1,20260105,093000,\(security),1.000,500,A2,U2,A1,U1
      TRADE,T2,20260105,093100,\(security),1.000,100,A3,U3,A2,U2
      TRADE,T3,20260105,093200,\(security),1.000,600,B1,U3,A1,U1
      TRADE,T4,20260105,093300,\(security),1.000,500,B1,U3,A1,U1
      CLOSE,20260105
      """
    // T2: A2's 500 bought today are not available today. T3: A1 has 1000 - 500 = 500 available.
    let r1 = try fixture.run(day1)
    XCTAssertEqual(r1.codes, ["OK", "OK", "INSUFFICIENT_HOLDINGS", "INSUFFICIENT_HOLDINGS", "OK", "OK"])
    // CLOSE does not make anything available; only the next OPEN does.
    XCTAssertEqual(r1.holdings, csv(Header.holdings, "A2,\(security),500,0,0", "B1,\(security),500,0,0"))

    let r2 = try fixture.run(
      day1 + """

        OPEN,20260106
        TRADE,T5,20260106,093000,\(security),1.000,501,A3,U3,A2,U2
        TRADE,T6,20260106,093100,\(security),1.000,100,A3,U3,A2,U2
        """)
    XCTAssertEqual(r2.codes.suffix(3), ["OK", "INSUFFICIENT_HOLDINGS", "OK"])
    XCTAssertEqual(
      r2.holdings,
      csv(
        Header.holdings, "A2,\(security),400,400,0", "A3,\(security),100,0,0", "B1,\(security),500,500,0"))
  }

  func testStockBoughtTodayIsSellableFromTheNextOpen() throws { try tPlusOne("600000") }

  func testFundBoughtTodayIsSellableFromTheNextOpen() throws { try tPlusOne("510300") }

  func testBondBoughtTodayIsSellableAtOnce() throws {
    let r = try Fixture.standard.with(holdings: ["A1,019547,1000,20250101"]).run(
      """
      OPEN,20260105
      TRADE,T1,20260105,093000,019547,100.000,500,A2,U2,A1,U1
      TRADE,T2,20260105,093100,019547,100.000,500,A3,U3,A2,U2
      TRADE,T3,20260105,093200,019547,100.000,501,B1,U1,A3,U3
      TRADE,T4,20260105,093300,019547,100.000,200,B1,U1,A3,U3
      """)
    XCTAssertEqual(r.codes, ["OK", "OK", "OK", "INSUFFICIENT_HOLDINGS", "OK"])
    // A2 bought 500 and sold them on: quantity 0, no row.
    XCTAssertEqual(
      r.holdings,
      csv(Header.holdings, "A1,019547,500,500,0", "A3,019547,300,300,0", "B1,019547,200,200,0"))
  }
}
