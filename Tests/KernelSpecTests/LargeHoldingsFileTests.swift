// A large holdings.csv is read in two parts at once (TallyFormat/HoldingLines.swift).
// Whatever the part a line falls in, the rows come out in file order and a problem is
// reported at its own line, exactly as a single pass would. Every case runs twice: the
// file as an array, and through a pointer (a mapped file), which gives up at the first
// unusual line and parses the file the general way.
import KernelAPI
import KernelV1
import TallyEngine
import TallyFormat
import XCTest

final class LargeHoldingsFileTests: XCTestCase {
  let base = Fixture.standard.with(
    "accounts.csv", "account,kind\nA1,INDIVIDUAL\nA2,INDIVIDUAL\n账户3,INDIVIDUAL\nB1,INSTITUTION\n")
  /// Lines well past the size at which the file is split (about 6 MB).
  let lineCount = 240_000
  let securities = ["600000", "510300", "019547"]

  /// Data line `i` (1-based, the header is line 1 of the file, so this is line i + 1).
  func line(_ i: Int) -> String {
    "\(i % 7 == 0 ? "B1" : (i % 2 == 0 ? "A1" : "A2")),\(securities[i % 3]),\(i % 9_000 + 1),2025\(String(format: "%02d", i % 12 + 1))15"
  }

  func expectedRow(_ i: Int) -> ReferenceData.HoldingRow {
    .init(
      account: i % 7 == 0 ? 3 : (i % 2 == 0 ? 0 : 1), security: Int32(i % 3), quantity: Int64(i % 9_000 + 1),
      acquiredDate: Int32(2025_00_15 + (i % 12 + 1) * 100))
  }

  /// The reference both ways; they must agree (rows, or the same error).
  func reference(_ f: Fixture, file: StaticString = #filePath, line: UInt = #line) throws(InputError)
    -> ReferenceData
  {
    let viaArray: Result<ReferenceData, InputError> = Result { () throws(InputError) in try f.reference() }
    let viaPointer: Result<ReferenceData, InputError> = Result { () throws(InputError) in
      try f.referenceThroughAPointer()
    }
    switch (viaArray, viaPointer) {
    case (.success(let a), .success(let b)):
      XCTAssertEqual(a, b, "the two paths differ", file: file, line: line)
    case (.failure(let a), .failure(let b)):
      XCTAssertEqual("\(a)", "\(b)", "the two paths report differently", file: file, line: line)
    default:
      XCTFail("one path accepted, the other refused: \(viaArray) / \(viaPointer)", file: file, line: line)
    }
    return try viaPointer.get()
  }

  func testCRLFAndAByteOrderMarkThroughAPointer() throws {
    let lines = (1...lineCount).map(line)
    let text =
      "\u{FEFF}account,security,quantity,acquired_date\r\n" + lines.joined(separator: "\r\n") + "\r\n"
    let r = try reference(base.with("holdings.csv", text))
    XCTAssertEqual(r.holdings, (1...lineCount).map(expectedRow))
    // A small file (one part) and a file that is only its header.
    let small = try reference(
      base.with("holdings.csv", "account,security,quantity,acquired_date\n\(line(1))"))
    XCTAssertEqual(small.holdings, [expectedRow(1)])
    XCTAssertEqual(
      try reference(base.with("holdings.csv", "account,security,quantity,acquired_date\n")).holdings, [])
    XCTAssertThrowsError(try reference(base.with("holdings.csv", "")))
    XCTAssertThrowsError(try reference(base.with("holdings.csv", "account,security,quantity\n")))
  }

  /// Securities whose codes are prefixes of one another, or longer than the eight bytes
  /// the fast path's security memo keeps as one word: every line names its own, on
  /// either path and in either part.
  func testSecuritiesOfSimilarCodesAreToldApart() throws {
    let codes = [
      "6", "60", "6000", "60000", "600000", "6000000", "60000000", "600000000", "6000000000A", "0",
    ]
    let securities =
      "security,isin,name,kind\n" + codes.map { "\($0),ISIN\($0),Name \($0),STOCK\n" }.joined()
    let lines = (1...lineCount).map { i in
      "A\(i % 2 + 1),\(codes[i * 7 % codes.count]),\(i % 500 + 1),20250115"
    }
    let f = base.with("securities.csv", securities)
      .with(
        "holdings.csv", "account,security,quantity,acquired_date\n" + lines.joined(separator: "\n") + "\n")
    let r = try reference(f)
    XCTAssertEqual(r.securities.map(\.code), codes)
    XCTAssertEqual(r.holdings.map(\.security), (1...lineCount).map { Int32($0 * 7 % codes.count) })
    XCTAssertEqual(r.holdings.map(\.quantity), (1...lineCount).map { Int64($0 % 500 + 1) })
  }

  func fixture(_ change: (inout [String]) -> Void = { _ in }, trailingNewline: Bool = true) -> Fixture {
    var lines = (1...lineCount).map(line)
    change(&lines)
    var text = "account,security,quantity,acquired_date\n" + lines.joined(separator: "\n")
    if trailingNewline { text += "\n" }
    return base.with("holdings.csv", text)
  }

  func testRowsInFileOrder() throws {
    for trailing in [true, false] {
      let f = fixture(trailingNewline: trailing)
      XCTAssertGreaterThan(f.files["holdings.csv"]!.utf8.count, 4 << 20, "large enough to be split")
      let r = try reference(f)
      XCTAssertEqual(r.holdings.count, lineCount)
      XCTAssertEqual(r.holdings, (1...lineCount).map(expectedRow))
    }
  }

  func testLineOnlyTheGeneralPathTakesInTheSecondPart() throws {
    // A non-ASCII account is valid (SPEC §1: any text without a comma); the fast path
    // leaves it to the general path, which reads the rest of the file.
    let at = lineCount * 3 / 4
    let r = try reference(fixture { $0[at - 1] = "账户3,600000,5,20250105" })
    var expected = (1...lineCount).map(expectedRow)
    expected[at - 1] = .init(account: 2, security: 0, quantity: 5, acquiredDate: 2025_01_05)
    XCTAssertEqual(r.holdings, expected)
  }

  func testProblemsAreReportedAtTheirLine() {
    // i is a data line; its file line is i + 1.
    for (i, bad, field) in [
      (lineCount * 3 / 4, "A1,600000,0,20250105", "quantity" as String?),
      (lineCount - 1, "A9,600000,5,20250105", "account"),
      (lineCount / 4, "A1,999999,5,20250105", "security"),
      (lineCount / 2 + 1, "A1,600000,5", nil),
      (lineCount, "", nil),
    ] {
      do {
        _ = try reference(fixture { $0[i - 1] = bad })
        XCTFail("line \(i + 1) '\(bad)' accepted")
      } catch {
        XCTAssertEqual(error.file, "ref/holdings.csv", "\(error)")
        XCTAssertEqual(error.line, i + 1, "\(error)")
        XCTAssertEqual(error.field, field, "\(error)")
      }
    }
  }

  /// A large holdings file's lines are counted on another core while the accounts are
  /// indexed (ReferenceParser.swift): a problem in accounts.csv, or a holdings header
  /// that is not the SPEC's, is reported as before, and the count (which reads the
  /// caller's mapping) has ended when the parser returns.
  func testAnAccountsProblemWhileTheHoldingsAreCounted() {
    let holdings = fixture { _ in }
    do {
      _ = try reference(
        holdings.with(
          "accounts.csv", "account,kind\nA1,INDIVIDUAL\nA2,INDIVIDUAL\nA1,INSTITUTION\nB1,INSTITUTION\n"))
      XCTFail("a repeated account accepted")
    } catch {
      XCTAssertEqual(error.file, "ref/accounts.csv", "\(error)")
      XCTAssertEqual(error.line, 4, "\(error)")
      XCTAssertEqual(error.field, "account", "\(error)")
    }
    let lines = (1...lineCount).map(line)
    do {
      _ = try reference(
        base.with("holdings.csv", "account,security,qty,acquired_date\n" + lines.joined(separator: "\n")))
      XCTFail("a wrong holdings header accepted")
    } catch {
      XCTAssertEqual(error.file, "ref/holdings.csv", "\(error)")
      XCTAssertEqual(error.line, 1, "\(error)")
    }
  }

  /// The fast path compares an account field with the account before it and with the
  /// next one of accounts.csv eight bytes at a time, and remembers acquired dates by
  /// their eight bytes: identifiers of 1 to 20 bytes that differ in one byte only, at
  /// every position, in and out of accounts.csv's order, each date many times, must
  /// name the right account and date (checked against rows built here, not by the
  /// parser).
  func testAccountsThatDifferInOneByteAndRepeatedDates() throws {
    var ids: [String] = []
    for length in 1...20 {
      let stem = String(repeating: "K", count: length)
      ids.append(stem)
      for position in 0..<length {
        var bytes = Array(stem.utf8)
        bytes[position] = UInt8(ascii: "0") + UInt8(position % 10)
        ids.append(String(decoding: bytes, as: UTF8.self))
      }
    }
    let accounts = "account,kind\n" + ids.map { "\($0),INDIVIDUAL\n" }.joined()
    let dates = ["20250105", "20241231", "20240229", "20250106"]
    var lines: [String] = []
    var expected: [ReferenceData.HoldingRow] = []
    // Each account twice in a row (the one before), then in file order (the next one),
    // then every seventh account out of order (the index).
    let order = ids.indices.flatMap { [$0, $0] } + ids.indices.filter { $0 % 7 == 3 }.reversed()
    for (n, a) in order.enumerated() {
      let date = dates[n % dates.count]
      lines.append("\(ids[a]),600000,\(n + 1),\(date)")
      expected.append(
        .init(account: Int32(a), security: 0, quantity: Int64(n + 1), acquiredDate: Int32(date)!))
    }
    let r = try reference(base.with("accounts.csv", accounts).with(holdings: lines))
    XCTAssertEqual(r.holdings, expected)
    // A date the memo has not seen that shares its first bytes with one it has is
    // checked on its own: February 29th of a year that is not a leap year.
    XCTAssertThrowsError(
      try reference(base.with("accounts.csv", accounts).with(holdings: lines + ["K,600000,1,20250229"])))
    // Eight NUL bytes (ASCII, and the memo's empty key as a word) are not a date.
    XCTAssertThrowsError(
      try reference(
        base.with("accounts.csv", accounts).with(holdings: lines + ["K,600000,1,\0\0\0\0\0\0\0\0"]))
    ) { error in
      XCTAssertEqual((error as? InputError)?.field, "acquired_date", "\(error)")
      XCTAssertEqual((error as? InputError)?.line, lines.count + 2, "\(error)")
    }
  }

  func testTheFirstProblemInTheFileIsTheOneReported() {
    // One problem in each part: the earlier line is reported, as by a single pass.
    do {
      _ = try reference(
        fixture {
          $0[lineCount / 3] = "A1,600000,-1,20250105"
          $0[lineCount * 5 / 6] = "A1,600000,x,20250105"
        })
      XCTFail("accepted")
    } catch {
      XCTAssertEqual(error.line, lineCount / 3 + 2, "\(error)")
    }
  }
}

/// holdings.csv rows are written in place in a piece kept at a fixed room (TallyFormat's
/// HoldingsPiece); identifiers longer than that room leaves past a piece's size make
/// more room as they come: both ways give SPEC §5's row.
final class HoldingRowFormatTests: XCTestCase {
  func testLongAndMultiByteIdentifiersAndLargeQuantities() throws {
    let long = String(repeating: "账", count: 60)  // 180 bytes: more than the usual room of a row
    let medium = "A" + String(repeating: "7", count: 99)  // 100 bytes
    let accounts = "account,kind\nA1,INDIVIDUAL\n\(long),INDIVIDUAL\n\(medium),INSTITUTION\n"
    let holdings = [
      "A1,600000,9999999999,20250101", "\(long),600000,5,20250101", "\(medium),510300,120,20250101",
    ]
    let fixture = Fixture.standard.with("accounts.csv", accounts).with(holdings: holdings)
    let r = try fixture.run("")
    let expected = csv(
      Header.holdings, "A1,600000,9999999999,9999999999,0", "\(medium),510300,120,120,0",
      "\(long),600000,5,5,0")
    XCTAssertEqual(r.holdings, expected)
    // In pieces as `tally run` writes them: a piece per row (its room 1 + 128 bytes, less
    // than the long row, which makes more), pieces that end mid-row, one piece.
    let engine = Engine<V1Kernel>(reference: try fixture.reference())
    for chunkBytes in [1, 37, 200, 1 << 20] {
      var joined: [UInt8] = []
      var pieces = 0
      ReportWriter.renderHoldings(kernel: engine.state, chunkBytes: chunkBytes) { piece in
        joined += piece
        pieces += 1
      }
      XCTAssertEqual(String(decoding: joined, as: UTF8.self), expected, "pieces of \(chunkBytes)")
      if chunkBytes == 1 {
        XCTAssertEqual(pieces, 4, "the header with the first row, a row a piece, the empty rest")
      }
    }
  }
}
