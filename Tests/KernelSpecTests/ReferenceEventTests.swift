// SPEC §3 PARTICIPANT, UNIT, ACCOUNT, SECURITY: reference data while running.
import KernelAPI
import TallyEngine
import TallyFormat
import XCTest

final class ReferenceEventTests: XCTestCase {
  func testReferenceEventsChecksAndUse() throws {
    let r = try Fixture.standard.run(
      """
      PARTICIPANT,P1,Duplicate
      PARTICIPANT,P9,New Member
      UNIT,U9,P9
      UNIT,U8,PX
      UNIT,U1,P2
      UNIT,U2,PX
      ACCOUNT,A1,INSTITUTION
      ACCOUNT,A9,INDIVIDUAL
      SECURITY,600000,CNE0000001D4,Other,FUND
      SECURITY,600009,CNE9,新股,STOCK
      DEPOSIT,P9,100.00
      OPEN,20260105
      TRADE,T1,20260105,093000,600000,10.00,100,A9,U9,A1,U1
      TRADE,T2,20260105,093000,600009,10.00,100,A9,U9,A1,U1
      DIVIDEND,600009,20260106,0.10
      """)
    XCTAssertEqual(
      r.rejections,
      csv(
        Header.rejections,
        "1,PARTICIPANT,P1,DUPLICATE_PARTICIPANT",
        "4,UNIT,U8,UNKNOWN_PARTICIPANT",
        "5,UNIT,U1,DUPLICATE_UNIT",
        "6,UNIT,U2,DUPLICATE_UNIT",  // the duplicate check comes first
        "7,ACCOUNT,A1,DUPLICATE_ACCOUNT",
        "9,SECURITY,600000,DUPLICATE_SECURITY",
        // T2: 600009 exists (not UNKNOWN_SECURITY), nobody holds it
        "14,TRADE,T2,INSUFFICIENT_HOLDINGS"))
    // The new participant is in balances.csv (every participant, by participant).
    XCTAssertEqual(r.balances, csv(Header.balances, "P1,0.00", "P2,0.00", "P3,0.00", "P9,100.00"))
    // T1 through the new unit U9 -> P9, for the new account A9: 1000.00 -> 0.03, 0.02, 0.01, stamp 0.50.
    XCTAssertEqual(
      r.clearing,
      csv(
        Header.clearing,
        "20260105,20260106,P1,600000,0,100,0.00,1000.00,0.03,0.02,0.01,0.50",
        "20260105,20260106,P9,600000,100,0,1000.00,0.00,0.03,0.02,0.01,0.00"))
    XCTAssertEqual(
      r.holdings,
      csv(
        Header.holdings, "A1,019547,1000,1000,0", "A1,510300,1000,1000,0", "A1,600000,900,900,0",
        "A9,600000,100,0,0", "B1,600000,2000,2000,0"))
  }

  func testNewAccountKindIsUsed() throws {
    // A new INSTITUTION account is not taxed (as an INDIVIDUAL, T2 would owe 1000 x 0.10 x 20% = 20.00).
    let r = try Fixture.standard.with(holdings: ["A1,600000,1000,20251220"]).run(
      """
      ACCOUNT,B9,INSTITUTION
      DIVIDEND,600000,20260105,0.10
      OPEN,20260105
      TRADE,T1,20260105,093000,600000,10.00,1000,B9,U2,A1,U1
      CLOSE,20260105
      OPEN,20260106
      TRADE,T2,20260106,093000,600000,10.00,1000,A1,U1,B9,U2
      CLOSE,20260106
      OPEN,20260107
      TRADE,T3,20260107,093000,600000,10.00,100,B9,U2,A1,U1
      """)
    XCTAssertEqual(r.codes, Array(repeating: "OK", count: 10))
    // T1 was sold by A1 before the CLOSE of the record date: no dividend on it, no tax.
    // B9 is a holder of record (1000 x 0.10 = 100.00) and sells on 0106 untaxed (INSTITUTION).
    // A1's bought-back lot (acquired 0106) has no dividend: T3 untaxed too.
    XCTAssertEqual(r.tax, csv(Header.tax))
    XCTAssertEqual(r.entitlements, csv(Header.entitlements, "600000,20260105,20260106,B9,CASH,100.00"))
  }
}
