// SPEC §3 MALFORMED and §1 field patterns; §5 rejections.csv `record` and `ref`.
import KernelAPI
import TallyEngine
import TallyFormat
import XCTest

final class MalformedTests: XCTestCase {
  /// (event line, expected outcome, record as written, ref as written)
  typealias Case = (line: [UInt8], code: String, record: String, ref: String)

  func c(_ line: String, _ code: String, _ record: String, _ ref: String) -> Case {
    (Array(line.utf8), code, record, ref)
  }

  func check(
    _ cases: [Case], fixture: Fixture = .standard, file: StaticString = #filePath, line: UInt = #line
  )
    throws -> Run
  {
    var bytes: [UInt8] = []
    for k in cases { bytes += k.line + [10] }
    let r = try fixture.run(files: [bytes], file: file, line: line)
    XCTAssertEqual(r.codes, cases.map { $0.code }, file: file, line: line)
    var rows: [String] = []
    for (i, k) in cases.enumerated() where k.code != "OK" {
      rows.append("\(i + 1),\(k.record),\(k.ref),\(k.code)")
    }
    XCTAssertEqual(r.rejections, csv(Header.rejections, rows), file: file, line: line)
    return r
  }

  static let t = "TRADE,T1,20260105,093000,600000"

  func testShapeErrors() throws {
    let t = Self.t
    _ = try check([
      // MALFORMED comes before every business check: no day is open here.
      c("\(t),10.2001,100,A2,U2,A1,U1", "MALFORMED", "TRADE", "T1"),
      c("OPEN,20260105", "OK", "", ""),
      c("FOO,1,2", "MALFORMED", "FOO", "1"),  // unknown record type
      c("\(t),10.00,100,A2,U2,A1", "MALFORMED", "TRADE", "T1"),  // 10 fields
      c("\(t),10.00,100,A2,U2,A1,U1,X", "MALFORMED", "TRADE", "T1"),  // 12 fields
      c("\(t),10.00,100,A2,,A1,U1", "MALFORMED", "TRADE", "T1"),  // empty field
      // Record types are case-sensitive.
      c("trade,T1,20260105,093000,600000,10.00,100,A2,U2,A1,U1", "MALFORMED", "trade", "T1"),
      c("Open,20260106", "MALFORMED", "Open", "20260106"),
      c("OPEN", "MALFORMED", "OPEN", ""),  // no second field: ref empty
      c(",20260105", "MALFORMED", "", "20260105"),  // empty record type
      c("OPEN,20260105 ", "MALFORMED", "OPEN", "20260105 "),  // trailing space, not DAY_ALREADY_OPEN
      c(" OPEN,20260105", "MALFORMED", " OPEN", "20260105"),
      c("PARTICIPANT,P9", "MALFORMED", "PARTICIPANT", "P9"),
      c("UNIT,U9,P1,x", "MALFORMED", "UNIT", "U9"),
      c("SETTLE,20260105,", "MALFORMED", "SETTLE", "20260105"),  // trailing comma: 3 fields, last empty
    ])
  }

  func testCancelRefIsTheThirdField() throws {
    _ = try check([
      c("CANCEL,20260105", "MALFORMED", "CANCEL", ""),  // no third field
      c("CANCEL,2026-01-05,T9", "MALFORMED", "CANCEL", "T9"),
      c("CANCEL,20260105,T9,x", "MALFORMED", "CANCEL", "T9"),
      c("CANCEL,20260105,T9", "UNKNOWN_TRADE", "CANCEL", "T9"),
      c("CANCEL,20260105,", "MALFORMED", "CANCEL", ""),  // empty third field
    ])
  }

  func testDatesAndTimes() throws {
    let t = "TRADE,T1"
    let rest = "600000,10.00,100,A2,U2,A1,U1"
    _ = try check([
      c("OPEN,20260230", "MALFORMED", "OPEN", "20260230"),  // 30 February: not a real date
      c("OPEN,20250229", "MALFORMED", "OPEN", "20250229"),  // 2025 is not a leap year
      c("OPEN,20240229", "BAD_DATE", "OPEN", "20240229"),  // real date, not in the calendar
      c("OPEN,20261301", "MALFORMED", "OPEN", "20261301"),
      c("OPEN,20260100", "MALFORMED", "OPEN", "20260100"),
      c("OPEN,2026015", "MALFORMED", "OPEN", "2026015"),
      c("OPEN,202601050", "MALFORMED", "OPEN", "202601050"),
      c("OPEN,２０２６０１０５", "MALFORMED", "OPEN", "２０２６０１０５"),  // full-width digits are not ASCII
      c("OPEN,20260105", "OK", "", ""),
      c("\(t),20260230,093000,\(rest)", "MALFORMED", "TRADE", "T1"),
      c("\(t),20260105,246000,\(rest)", "MALFORMED", "TRADE", "T1"),  // hour 24
      c("\(t),20260105,096000,\(rest)", "MALFORMED", "TRADE", "T1"),  // minute 60
      c("\(t),20260105,093060,\(rest)", "MALFORMED", "TRADE", "T1"),  // second 60
      c("\(t),20260105,09300,\(rest)", "MALFORMED", "TRADE", "T1"),
      c("\(t),20260105,235959,\(rest)", "OK", "", ""),
      c("\(t)b,20260105,000000,\(rest)", "OK", "", ""),
    ])
  }

  func testNumbers() throws {
    let t = Self.t
    let parties = "A2,U2,A1,U1"
    _ = try check([
      c("OPEN,20260105", "OK", "", ""),
      c("\(t),10.2300,100,\(parties)", "MALFORMED", "TRADE", "T1"),  // 4 fraction digits written
      c("\(t),1000000,100,\(parties)", "MALFORMED", "TRADE", "T1"),  // 7 integer digits
      c("\(t),+10.00,100,\(parties)", "MALFORMED", "TRADE", "T1"),
      c("\(t),10.,100,\(parties)", "MALFORMED", "TRADE", "T1"),
      c("\(t),.5,100,\(parties)", "MALFORMED", "TRADE", "T1"),
      c("\(t),1e2,100,\(parties)", "MALFORMED", "TRADE", "T1"),
      c("\(t),10.00 ,100,\(parties)", "MALFORMED", "TRADE", "T1"),  // trailing space
      c("\(t),--1,100,\(parties)", "MALFORMED", "TRADE", "T1"),
      c("\(t),10.00,1.0,\(parties)", "MALFORMED", "TRADE", "T1"),
      c("\(t),10.00,10000000000,\(parties)", "MALFORMED", "TRADE", "T1"),  // 11 digits
      c("\(t),-0,100,\(parties)", "INVALID_PRICE", "TRADE", "T1"),  // -0 is zero
      c("\(t),-0.000,100,\(parties)", "INVALID_PRICE", "TRADE", "T1"),
      c("\(t),10.00,-0,\(parties)", "INVALID_QUANTITY", "TRADE", "T1"),
      c("DEPOSIT,P1,1.234", "MALFORMED", "DEPOSIT", "P1"),
      c("DEPOSIT,P1,10000000000000", "MALFORMED", "DEPOSIT", "P1"),  // 14 digits
      c("DEPOSIT,P1,-0", "INVALID_AMOUNT", "DEPOSIT", "P1"),
      c("DEPOSIT,P1,-0.00", "INVALID_AMOUNT", "DEPOSIT", "P1"),
      c("DIVIDEND,600000,20260106,0.1234567", "MALFORMED", "DIVIDEND", "600000"),
      c("DIVIDEND,600000,20260106,10000", "MALFORMED", "DIVIDEND", "600000"),
      c("DIVIDEND,600000,20260106,-0", "INVALID_AMOUNT", "DIVIDEND", "600000"),
      c("BONUS,600000,20260106,10,3.5", "MALFORMED", "BONUS", "600000"),
      c("BONUS,600000,20260106,10000000000,3", "MALFORMED", "BONUS", "600000"),
      c("BONUS,600000,20260106,-0,3", "INVALID_RATIO", "BONUS", "600000"),
      c("ACCOUNT,A9,individual", "MALFORMED", "ACCOUNT", "A9"),
      c("SECURITY,600009,CNE,Name,ETF", "MALFORMED", "SECURITY", "600009"),
      // Limits and leading zeros that are allowed (SPEC §1):
      c("DEPOSIT,P1,9999999999999.99", "OK", "", ""),
      c("DEPOSIT,P2,0001.5", "OK", "", ""),
      c("DIVIDEND,600000,20260106,9999.999999", "OK", "", ""),
      c("\(t),010.50,0100,\(parties)", "OK", "", ""),
      c("TRADE,T2,20260105,093000,600000,999999.999,1,\(parties)", "OK", "", ""),
    ])
  }

  func testBytesThatAreNotUTF8() throws {
    // ref and record are empty for a line that is not valid UTF-8.
    let bad1: [UInt8] = Array("TRADE,T1,20260105,093000,600000,10.00,100,A2,U2,A1,U".utf8) + [0xFF]
    let bad2: [UInt8] = [0xC3, 0x28] + Array(",20260105".utf8)  // invalid 2-byte sequence
    let bad3: [UInt8] = Array("OPEN,2026".utf8) + [0xED, 0xA0, 0x80]  // encoded surrogate
    let r = try check([
      c("OPEN,20260105", "OK", "", ""),
      (bad1, "MALFORMED", "", ""),
      (bad2, "MALFORMED", "", ""),
      (bad3, "MALFORMED", "", ""),
      c("CLOSE,20260105", "OK", "", ""),
    ])
    XCTAssertEqual(r.clearing, csv(Header.clearing))
  }

  func testIdentifierWithSpacesIsUnknownNotMalformed() throws {
    // SPEC §1: identifiers are any non-empty text; "P1 " is simply not P1.
    _ = try check([
      c("DEPOSIT,P1 ,1.00", "UNKNOWN_PARTICIPANT", "DEPOSIT", "P1 "),
      c("DEPOSIT, P1,1.00", "UNKNOWN_PARTICIPANT", "DEPOSIT", " P1"),
      c("DEPOSIT,P1,1.00", "OK", "", ""),
    ])
  }
}
