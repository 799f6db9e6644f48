// accounts.csv's common line (ASCII, one comma, a kind as SPEC writes it) is taken whole
// by ReferenceParser.fastAccountRow; every other line goes the general way, which names
// its problem. Both must give the same accounts, in file order, and the same errors at
// the same lines. A file of nothing but such lines is read through a pointer
// (FastAccountLines): the same accounts again, a repeat named at its line.
import KernelAPI
import XCTest

@testable import TallyFormat

final class AccountLinesTests: XCTestCase {
  func accounts(_ lines: [String]) -> Fixture {
    // No holdings: the accounts alone are checked.
    let text = "account,kind\n" + lines.joined(separator: "\n") + "\n"
    return Fixture.standard.with("accounts.csv", text).with(holdings: [])
  }

  func testFastAndGeneralLinesGiveTheAccountsInFileOrder() throws {
    let lines = [
      "A1,INDIVIDUAL", "账户2,INSTITUTION", "A3,INSTITUTION", "B-0000000000000004,INDIVIDUAL", "账5,INDIVIDUAL",
      "A2,INDIVIDUAL",
    ]
    let r = try accounts(lines).reference()
    XCTAssertEqual(r.accounts.map(\.id), ["A1", "账户2", "A3", "B-0000000000000004", "账5", "A2"])
    XCTAssertEqual(
      r.accounts.map(\.kind),
      [.individual, .institution, .institution, .individual, .individual, .individual])
  }

  func testProblemsAreNamedAtTheirLine() {
    // (data lines, file line of the problem, field, words of the problem)
    let cases: [([String], Int, String?, String)] = [
      (["A1,INDIVIDUAL", "A2,individual"], 3, "kind", "INDIVIDUAL or INSTITUTION"),
      (["A1,INDIVIDUAL", "A2,INSTITUTIONS"], 3, "kind", "INDIVIDUAL or INSTITUTION"),
      (["A1,INDIVIDUAL", ",INDIVIDUAL"], 3, "account", "empty"),
      (["A1,INDIVIDUAL", "A2,"], 3, "kind", "empty"),
      (["A1,INDIVIDUAL", "A2,INDIVIDUAL,X"], 3, nil, "expected 2 fields"),
      (["A1,INDIVIDUAL", "A2 INDIVIDUAL"], 3, nil, "expected 2 fields"),
      (["A1,INDIVIDUAL", "A2,INSTITUTION", "A1,INSTITUTION"], 4, "account", "repeats"),
      (["账1,INDIVIDUAL", "A2,INSTITUTION", "账1,INDIVIDUAL"], 4, "account", "repeats"),
    ]
    for (lines, line, field, words) in cases {
      do {
        _ = try accounts(lines).reference()
        XCTFail("\(lines) accepted")
      } catch {
        XCTAssertEqual(error.line, line, "\(lines): \(error)")
        XCTAssertEqual(error.field, field, "\(lines): \(error)")
        XCTAssertTrue("\(error)".contains(words), "\(lines): \(error)")
      }
    }
  }

  /// The whole-file path takes a file of plain lines (whatever its line ends) and
  /// nothing else; what it takes reads as the lines do one at a time.
  func testAFileOfPlainLinesIsReadThroughAPointer() throws {
    let header = "account,kind"
    let plain = ["A1,INDIVIDUAL", "A 2,INSTITUTION", "B-0000000000000003,INDIVIDUAL"]
    let texts = [
      header + "\n" + plain.joined(separator: "\n") + "\n",
      "\u{FEFF}" + header + "\r\n" + plain.joined(separator: "\r\n") + "\r\n",
      header + "\n" + plain.joined(separator: "\n"),  // no line feed at the end
      header + "\n" + plain.joined(separator: "\n") + "\r",  // a CR at the end
    ]
    for text in texts {
      let fast = try XCTUnwrap(FastAccountLines.parseWhole(Array(text.utf8), header: header), text)
      XCTAssertEqual(fast.rows.map(\.id), ["A1", "A 2", "B-0000000000000003"], text)
      XCTAssertEqual(fast.rows.map(\.kind), [.individual, .institution, .individual], text)
      XCTAssertEqual(fast.hashes, fast.rows.map { Ident($0.id).fastHash }, text)
      let r = try Fixture.standard.with("accounts.csv", text).with(holdings: []).reference()
      XCTAssertEqual(r.accounts.map(\.id), fast.rows.map(\.id), text)
    }
    XCTAssertEqual(FastAccountLines.parseWhole(Array((header + "\n").utf8), header: header)?.rows.count, 0)
    XCTAssertEqual(FastAccountLines.parseWhole(Array(header.utf8), header: header)?.rows.count, 0)
    // Anything else: the general way (which reads it or names its problem).
    for text in [
      "", "account,kinds\nA1,INDIVIDUAL\n", header + "\n账1,INDIVIDUAL\n",
      header + "\nA1,INDIVIDUAL\n\nA2,INDIVIDUAL\n", header + "\nA1,INDIVIDUAL,X\n",
      header + "\n,INDIVIDUAL\n", header + "\nA1\tB,INDIVIDUAL\n", header + "\nA1,INDIVIDUAL\r\r\n",
    ] {
      XCTAssertNil(FastAccountLines.parseWhole(Array(text.utf8), header: header), text)
    }
  }

  /// A file of `FastAccountLines.twoPartBytesMin` bytes or more is read in two parts
  /// at once: the rows are the lines in file order whatever the cut, and a line the
  /// fast path does not take, in either part, sends the whole file the general way.
  func testALargeFileIsReadInTwoPartsAsOne() throws {
    let header = "account,kind"
    let lines = (0..<90_000).map { "ACC\($0),\($0 % 7 == 0 ? "INSTITUTION" : "INDIVIDUAL")" }
    for ending in ["\n", "\r\n"] {
      let text = header + ending + lines.joined(separator: ending) + ending
      XCTAssertGreaterThan(text.utf8.count, FastAccountLines.twoPartBytesMin)
      let fast = try XCTUnwrap(FastAccountLines.parseWhole(Array(text.utf8), header: header))
      XCTAssertEqual(fast.rows.map(\.id), (0..<90_000).map { "ACC\($0)" })
      XCTAssertEqual(fast.rows.map(\.kind), (0..<90_000).map { $0 % 7 == 0 ? .institution : .individual })
      XCTAssertEqual(fast.hashes, fast.rows.map { Ident($0.id).fastHash })
    }
    for bad in [10, 45_000, 44_999, 45_001, 89_999] {
      var edited = lines
      edited[bad] = "ACC\(bad)\tX,INDIVIDUAL"
      let text = header + "\n" + edited.joined(separator: "\n") + "\n"
      XCTAssertNil(FastAccountLines.parseWhole(Array(text.utf8), header: header), "bad line \(bad)")
    }
    // A blank line in the second part: the general way too.
    var blank = lines
    blank.insert("", at: 60_000)
    XCTAssertNil(
      FastAccountLines.parseWhole(Array((header + "\n" + blank.joined(separator: "\n")).utf8), header: header)
    )
  }

  func testARepeatInAFileOfPlainLinesIsNamedAtItsLine() {
    // 5,000 plain lines, line 4,002 (data line 4,001) repeats data line 17.
    var lines = (1...5_000).map { "A\($0),\($0 % 3 == 0 ? "INSTITUTION" : "INDIVIDUAL")" }
    lines[4_000] = "A17,INSTITUTION"
    XCTAssertNotNil(
      FastAccountLines.parseWhole(
        Array(("account,kind\n" + lines.joined(separator: "\n")).utf8), header: "account,kind"))
    do {
      _ = try accounts(lines).reference()
      XCTFail("a repeated account accepted")
    } catch {
      XCTAssertEqual(error.line, 4_002, "\(error)")
      XCTAssertEqual(error.field, "account", "\(error)")
      XCTAssertTrue("\(error)".contains("account A17 repeats"), "\(error)")
    }
  }
}
