// `tally inspect` as a real process on a real RocksDB state folder: the stored state is
// laid over the opening state rebuilt from --reference (tally-state/3), its checksum
// verified, and its digest the one `tally run --digest` prints for the same inputs.
import Foundation
import XCTest

final class InspectCommandTests: XCTestCase {
  private var dir = ""
  private var reference: String { dir + "/market/reference" }
  private var events: String { dir + "/market/events.txt" }

  override func setUpWithError() throws {
    dir = try makeTemporaryDirectory("inspect")
    let generated = try runTally(
      [
        "generate", "--out", dir + "/market", "--seed", "5", "--days", "2", "--trades-per-day", "300",
        "--accounts", "40", "--quiet",
      ], scratch: dir)
    XCTAssertEqual(generated.status, 0, generated.stderr)
  }

  override func tearDown() { removeDirectory(dir) }

  func testInspectVerifiesTheStateAndShowsAnAccountAndAParticipant() throws {
    let state = dir + "/state"
    let run = try runTally(
      ["run", "--reference", reference, "--out", dir + "/out", "--state", state, "--digest", events],
      scratch: dir)
    XCTAssertEqual(run.status, 0, run.stderr)
    let digest = run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    XCTAssertEqual(digest.count, 64, run.stdout)

    // An account and a participant that the outputs name.
    let holdings = try String(contentsOfFile: dir + "/out/holdings.csv", encoding: .utf8)
    let holding = holdings.split(separator: "\n")[1].split(separator: ",", omittingEmptySubsequences: false)
    let account = String(holding[0])
    let security = String(holding[1])
    let balances = try String(contentsOfFile: dir + "/out/balances.csv", encoding: .utf8)
    let balance = balances.split(separator: "\n")[1].split(separator: ",")
    let participant = String(balance[0])

    let inspect = try runTally(
      [
        "inspect", "--state", state, "--reference", reference, "--account", account, "--participant",
        participant,
      ], scratch: dir)
    XCTAssertEqual(inspect.status, 0, inspect.stderr)
    XCTAssertTrue(inspect.stdout.contains("checksum:     verified"), inspect.stdout)
    XCTAssertTrue(
      inspect.stdout.contains("digest:       \(digest)"), "inspect and run disagree:\n\(inspect.stdout)")
    XCTAssertTrue(inspect.stdout.contains("account \(account) ("), inspect.stdout)
    XCTAssertTrue(
      inspect.stdout.split(separator: "\n").contains {
        $0.hasPrefix("  \(security) ") && $0.contains(String(holding[2]))
      },
      "the account's holding of \(security) (quantity \(holding[2])) is listed:\n\(inspect.stdout)")
    XCTAssertTrue(
      inspect.stdout.contains("participant \(participant) (")
        && inspect.stdout.contains("balance \(balance[1])"),
      inspect.stdout)
  }

  func testInspectRefusesAnUnknownAccountAndAStateOfOtherReferenceData() throws {
    let state = dir + "/state"
    let run = try runTally(
      ["run", "--reference", reference, "--out", dir + "/out", "--state", state, events], scratch: dir)
    XCTAssertEqual(run.status, 0, run.stderr)
    let unknown = try runTally(
      ["inspect", "--state", state, "--reference", reference, "--account", "NO-SUCH-ACCOUNT"], scratch: dir)
    XCTAssertEqual(unknown.status, 2, unknown.stderr)
    XCTAssertTrue(unknown.stderr.contains("no account NO-SUCH-ACCOUNT"), unknown.stderr)

    let other = dir + "/other-reference"
    try FileManager.default.copyItem(atPath: reference, toPath: other)
    let accounts = other + "/accounts.csv"
    try (String(contentsOfFile: accounts, encoding: .utf8) + "Z999,INDIVIDUAL\n").write(
      toFile: accounts, atomically: true, encoding: .utf8)
    let refused = try runTally(["inspect", "--state", state, "--reference", other], scratch: dir)
    XCTAssertEqual(refused.status, 2, refused.stdout + refused.stderr)
    XCTAssertTrue(refused.stderr.contains("reference"), refused.stderr)
  }

  func testInspectNamesTheReferenceFilesTheFolderWasMadeWith() throws {
    // Two folders made from the same reference folder name the same files' digest; a
    // folder made from a copy with CRLF line endings (the same data) names another.
    func referenceLine(_ state: String, _ reference: String, _ events: String) throws -> String {
      let run = try runTally(
        ["run", "--reference", reference, "--out", state + "-out", "--state", state, events], scratch: dir)
      XCTAssertEqual(run.status, 0, run.stderr)
      let inspect = try runTally(["inspect", "--state", state, "--reference", reference], scratch: dir)
      XCTAssertEqual(inspect.status, 0, inspect.stderr)
      let line = inspect.stdout.split(separator: "\n").first { $0.hasPrefix("reference:") }
      return String(try XCTUnwrap(line, inspect.stdout))
    }
    let firstLines = dir + "/first-lines.txt"
    let all = try String(contentsOfFile: events, encoding: .utf8).split(separator: "\n")
    try (all.prefix(50).joined(separator: "\n") + "\n").write(
      toFile: firstLines, atomically: true, encoding: .utf8)
    let crlf = dir + "/crlf-reference"
    try FileManager.default.copyItem(atPath: reference, toPath: crlf)
    let accounts = crlf + "/accounts.csv"
    try String(contentsOfFile: accounts, encoding: .utf8).replacingOccurrences(of: "\n", with: "\r\n")
      .write(toFile: accounts, atomically: true, encoding: .utf8)

    let a = try referenceLine(dir + "/a", reference, events)
    let b = try referenceLine(dir + "/b", reference, firstLines)
    let c = try referenceLine(dir + "/c", crlf, events)
    XCTAssertTrue(a.hasPrefix("reference:    the reference folder's files, SHA-256 "), a)
    XCTAssertEqual(a.count, "reference:    the reference folder's files, SHA-256 ".count + 64, a)
    XCTAssertEqual(a, b, "the same reference folder")
    XCTAssertNotEqual(a, c, "other files, whatever they parse to")
  }
}
