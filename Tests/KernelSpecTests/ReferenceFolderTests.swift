// SPEC §2: the reference folder is refused as a whole, with the file, the line and the
// problem (and, in this implementation's InputError, the field's name).
import KernelAPI
import TallyEngine
import TallyFormat
import XCTest

final class ReferenceFolderTests: XCTestCase {
  func error(_ fixture: Fixture) -> InputError? {
    do {
      _ = try fixture.reference()
      return nil
    } catch {
      return error
    }
  }

  func assertRefused(
    _ fixture: Fixture, file name: String, line number: Int, field: String?,
    file: StaticString = #filePath, line: UInt = #line
  ) {
    guard let e = error(fixture) else {
      XCTFail("accepted, expected an error in \(name):\(number)", file: file, line: line)
      return
    }
    XCTAssertEqual(e.file, "ref/" + name, "\(e)", file: file, line: line)
    XCTAssertEqual(e.line, number, "\(e)", file: file, line: line)
    XCTAssertEqual(e.field, field, "\(e)", file: file, line: line)
    XCTAssertFalse(e.problem.isEmpty, file: file, line: line)
  }

  func assertAccepted(_ fixture: Fixture, file: StaticString = #filePath, line: UInt = #line) {
    if let e = error(fixture) { XCTFail("refused: \(e)", file: file, line: line) }
  }

  let base = Fixture.standard

  func testDefaultFixtureIsAcceptedAndFeesFileIsOptional() {
    assertAccepted(base)
    XCTAssertNil(base.files["fees.csv"])
  }

  func testMissingRequiredFile() {
    for name in [
      "calendar.csv", "securities.csv", "participants.csv", "units.csv", "accounts.csv", "holdings.csv",
    ] {
      assertRefused(base.with(name, nil), file: name, line: 0, field: nil)
    }
  }

  func testWrongHeader() {
    assertRefused(base.with("calendar.csv", "Date\n20260105\n"), file: "calendar.csv", line: 1, field: nil)
    assertRefused(
      base.with("accounts.csv", "account,kind,extra\nA1,INDIVIDUAL,x\n"), file: "accounts.csv", line: 1,
      field: nil)
    assertRefused(
      base.with("participants.csv", "participant, name\nP1,One\n"), file: "participants.csv", line: 1,
      field: nil)
    assertRefused(
      base.with(holdings: []).with("units.csv", "participant,unit\n"), file: "units.csv", line: 1, field: nil)
    XCTAssertEqual(error(base.with("securities.csv", ""))?.file, "ref/securities.csv")  // no header at all
  }

  func testBlankLine() {
    assertRefused(
      base.with("calendar.csv", "date\n20260105\n\n20260106\n"), file: "calendar.csv", line: 3, field: nil)
    assertRefused(
      base.with("participants.csv", "participant,name\nP1,One\nP2,Two\nP3,Three\n\n"),
      file: "participants.csv",
      line: 5, field: nil)
  }

  func testWrongFieldCount() {
    assertRefused(
      base.with("accounts.csv", "account,kind\nA1,INDIVIDUAL,x\n"), file: "accounts.csv", line: 2, field: nil)
    assertRefused(
      base.with(holdings: ["A1,600000,1000,20250101", "A1,600000,1000"]), file: "holdings.csv", line: 3,
      field: nil)
  }

  func testEmptyField() {
    assertRefused(
      base.with("securities.csv", "security,isin,name,kind\n600000,,Name,STOCK\n"), file: "securities.csv",
      line: 2, field: "isin")
    assertRefused(
      base.with(holdings: ["A1,600000,,20250101"]), file: "holdings.csv", line: 2, field: "quantity")
  }

  func testBadPatternsAndKinds() {
    assertRefused(
      base.with("securities.csv", "security,isin,name,kind\n600000,CNE,Name,stock\n"), file: "securities.csv",
      line: 2, field: "kind")
    assertRefused(
      base.with("accounts.csv", "account,kind\nA1,INDIVIDUAL\nA2,PERSON\n"), file: "accounts.csv", line: 3,
      field: "kind")
    assertRefused(base.with(calendar: ["20260105", "2026010"]), file: "calendar.csv", line: 3, field: "date")
    assertRefused(base.with(calendar: ["20260230"]), file: "calendar.csv", line: 2, field: "date")
    assertRefused(
      base.with(holdings: ["A1,600000,1000,20250230"]), file: "holdings.csv", line: 2, field: "acquired_date")
    assertRefused(
      base.with(holdings: ["A1,600000,1.5,20250101"]), file: "holdings.csv", line: 2, field: "quantity")
    assertRefused(
      base.with(holdings: ["A1,600000,10000000000,20250101"]), file: "holdings.csv", line: 2,
      field: "quantity")
  }

  func testHoldingQuantityMustBePositive() {
    assertRefused(
      base.with(holdings: ["A1,600000,0,20250101"]), file: "holdings.csv", line: 2, field: "quantity")
    assertRefused(
      base.with(holdings: ["A1,600000,5,20250101", "A1,600000,-5,20250101"]), file: "holdings.csv", line: 3,
      field: "quantity")
    assertRefused(
      base.with(holdings: ["A1,600000,-0,20250101"]), file: "holdings.csv", line: 2, field: "quantity")
  }

  func testRepeatedKeys() {
    assertRefused(
      base.with(calendar: ["20260105", "20260106", "20260105"]), file: "calendar.csv", line: 4, field: "date")
    assertRefused(
      base.with("securities.csv", "security,isin,name,kind\n600000,A,B,STOCK\n600000,C,D,FUND\n"),
      file: "securities.csv", line: 3, field: "security")
    assertRefused(
      base.with("participants.csv", "participant,name\nP1,One\nP1,Other\n"), file: "participants.csv",
      line: 3,
      field: "participant")
    assertRefused(
      base.with("units.csv", "unit,participant\nU1,P1\nU1,P2\n"), file: "units.csv", line: 3, field: "unit")
    assertRefused(
      base.with("accounts.csv", "account,kind\nA1,INDIVIDUAL\nA1,INSTITUTION\n").with(holdings: []),
      file: "accounts.csv", line: 3, field: "account")
    // Repeated (account, security) in holdings.csv are lots, not a repeated key.
    assertAccepted(base.with(holdings: ["A1,600000,5,20250101", "A1,600000,5,20250101"]))
  }

  /// accounts.csv is read whole before its ids are indexed (ReferenceParser): the first
  /// error in file order is still the one reported, a repeat above a bad line or a bad
  /// line above a repeat, among more rows than the index's look-ahead.
  func testAccountErrorsInFileOrder() {
    let rows = (1...20).map { "A\($0),INDIVIDUAL" }
    var repeatFirst = rows
    repeatFirst[12] = "A3,INSTITUTION"
    repeatFirst[17] = "A18,PERSON"
    assertRefused(
      base.with("accounts.csv", "account,kind\n" + repeatFirst.joined(separator: "\n") + "\n").with(
        holdings: []),
      file: "accounts.csv", line: 14, field: "account")
    var badFirst = rows
    badFirst[12] = "A13,PERSON"
    badFirst[17] = "A3,INSTITUTION"
    assertRefused(
      base.with("accounts.csv", "account,kind\n" + badFirst.joined(separator: "\n") + "\n").with(holdings: []
      ),
      file: "accounts.csv", line: 14, field: "kind")
    var wrongCount = rows
    wrongCount[4] = "A1,INDIVIDUAL"
    wrongCount[9] = "A10,INDIVIDUAL,x"
    assertRefused(
      base.with("accounts.csv", "account,kind\n" + wrongCount.joined(separator: "\n") + "\n").with(
        holdings: []),
      file: "accounts.csv", line: 6, field: "account")
  }

  func testUnknownReferences() {
    assertRefused(
      base.with("units.csv", "unit,participant\nU1,P1\nU2,P7\n"), file: "units.csv", line: 3,
      field: "participant")
    assertRefused(
      base.with(holdings: ["A1,600000,5,20250101", "Z9,600000,5,20250101"]), file: "holdings.csv", line: 3,
      field: "account")
    assertRefused(
      base.with(holdings: ["A1,999999,5,20250101"]), file: "holdings.csv", line: 2, field: "security")
  }

  func testFeesFile() {
    assertAccepted(
      base.with(fees: [
        "STOCK,stamp,sell,0.001,19000101", "STOCK,stamp,buy,0.001,19000101", "BOND,handling,both,1,20260101",
      ]))
    assertRefused(
      base.with(fees: ["STOCK,stamp,sell,0.001,19000101", "STOCK,stamp,sell,0.002,19000101"]),
      file: "fees.csv",
      line: 3, field: nil)
    assertRefused(
      base.with(fees: ["ETF,stamp,sell,0.001,19000101"]), file: "fees.csv", line: 2, field: "kind")
    assertRefused(
      base.with(fees: ["STOCK,commission,sell,0.001,19000101"]), file: "fees.csv", line: 2, field: "fee")
    assertRefused(
      base.with(fees: ["STOCK,stamp,SELL,0.001,19000101"]), file: "fees.csv", line: 2, field: "side")
    assertRefused(
      base.with(fees: ["STOCK,stamp,sell,-0.001,19000101"]), file: "fees.csv", line: 2, field: "rate")
    assertRefused(base.with(fees: ["STOCK,stamp,sell,.5,19000101"]), file: "fees.csv", line: 2, field: "rate")
    assertRefused(
      base.with(fees: ["STOCK,stamp,sell,0.001,1900011"]), file: "fees.csv", line: 2, field: "effective_date")
    assertRefused(base.with("fees.csv", "kind,fee,side,rate\n"), file: "fees.csv", line: 1, field: nil)
  }

  func testByteOrderMarkAndCRLFAccepted() throws {
    let f = base.with("calendar.csv", "\u{FEFF}date\n20260105\n20260106\n")
      .with("holdings.csv", "\u{FEFF}account,security,quantity,acquired_date\r\nA1,600000,7,20250101\r\n")
    assertAccepted(f)
    let r = try f.run("")
    XCTAssertEqual(r.holdings, csv(Header.holdings, "A1,600000,7,7,0"))
  }
}
