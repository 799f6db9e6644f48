// accounts.csv's common line (ASCII, one comma, a kind as SPEC writes it) is taken whole
// by ReferenceParser.fastAccountRow; every other line goes the general way, which names
// its problem. Both must give the same accounts, in file order, and the same errors at
// the same lines.
import KernelAPI
import TallyFormat
import XCTest

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
}
