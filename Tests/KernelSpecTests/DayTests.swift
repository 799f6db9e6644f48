// SPEC §3 OPEN and CLOSE: the trading day cycle over the calendar.
import KernelAPI
import TallyEngine
import TallyFormat
import XCTest

final class DayTests: XCTestCase {
  func testOpenAndCloseChecks() throws {
    let r = try Fixture.standard.run(
      """
      OPEN,20260110
      OPEN,20260116
      CLOSE,20260105
      OPEN,20260107
      OPEN,20260107
      OPEN,20260108
      OPEN,20260110
      CLOSE,20260108
      CLOSE,20260107
      CLOSE,20260107
      OPEN,20260107
      OPEN,20260109
      OPEN,20260106
      OPEN,20260108
      """)
    XCTAssertEqual(
      r.rejections,
      csv(
        Header.rejections,
        "1,OPEN,20260110,BAD_DATE",  // a Saturday: not in the calendar
        "2,OPEN,20260116,BAD_DATE",  // the last calendar day has no next trading day
        "3,CLOSE,20260105,BAD_DATE",  // no day open
        // seq 4: the first OPEN may be any trading day
        "5,OPEN,20260107,DAY_ALREADY_OPEN",
        "6,OPEN,20260108,DAY_ALREADY_OPEN",
        "7,OPEN,20260110,DAY_ALREADY_OPEN",  // whatever the date
        "8,CLOSE,20260108,BAD_DATE",  // not the open day
        // seq 9 closes 20260107
        "10,CLOSE,20260107,BAD_DATE",  // no day open any more
        "11,OPEN,20260107,BAD_DATE",  // the same day again
        "12,OPEN,20260109,BAD_DATE",  // skips 20260108
        "13,OPEN,20260106,BAD_DATE"))  // goes back
    XCTAssertEqual(r.codes.last, "OK")  // 20260108 is the next trading day
  }

  func testWeekendGapAndLastOpenableDay() throws {
    let r = try Fixture.standard.with(holdings: ["A1,600000,1000,20250101"]).run(
      """
      OPEN,20260109
      TRADE,T1,20260109,093000,600000,10.00,100,A2,U2,A1,U1
      CLOSE,20260109
      OPEN,20260112
      CLOSE,20260112
      OPEN,20260113
      CLOSE,20260113
      OPEN,20260114
      CLOSE,20260114
      OPEN,20260115
      CLOSE,20260115
      OPEN,20260116
      """)
    // 20260112 is the trading day after 20260109; 20260115 is the last that has a next one.
    XCTAssertEqual(r.codes, Array(repeating: "OK", count: 11) + ["BAD_DATE"])
    // The settle date of 20260109 is the next trading day, 20260112.
    XCTAssertEqual(
      r.clearing,
      csv(
        Header.clearing,
        "20260109,20260112,P1,600000,0,100,0.00,1000.00,0.03,0.02,0.01,0.50",
        "20260109,20260112,P2,600000,100,0,1000.00,0.00,0.03,0.02,0.01,0.00"))
  }

  func testCalendarInAnyOrder() throws {
    let r = try Fixture.standard.with(calendar: ["20260107", "20260105", "20260106"]).run(
      """
      OPEN,20260105
      TRADE,T1,20260105,093000,600000,10.00,100,A2,U2,A1,U1
      CLOSE,20260105
      OPEN,20260106
      CLOSE,20260106
      OPEN,20260107
      """)
    XCTAssertEqual(r.codes, ["OK", "OK", "OK", "OK", "OK", "BAD_DATE"])
    XCTAssertEqual(r.clearing, LineHandlingTests.smallTradeClearing)
  }
}
