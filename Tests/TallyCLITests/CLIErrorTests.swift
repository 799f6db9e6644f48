// `tally` as a real process: exit statuses and error messages of `run` (2: unusable
// inputs or a state folder of other inputs; 3: output or state folder cannot be
// written; 64: bad arguments), and `--help` of every subcommand.
import Foundation
import KernelAPI
import RocksDBStore
import TallyEngine
import XCTest

final class CLIErrorTests: XCTestCase {
  private var dir = ""
  private var reference: String { dir + "/market/reference" }
  private var events: String { dir + "/market/events.txt" }

  override func setUpWithError() throws {
    dir = try makeTemporaryDirectory("errors")
    let generated = try runTally(
      [
        "generate", "--out", dir + "/market", "--seed", "3", "--days", "2", "--trades-per-day", "300",
        "--accounts",
        "40", "--quiet",
      ], scratch: dir)
    XCTAssertEqual(generated.status, 0, generated.stderr)
  }

  override func tearDown() { removeDirectory(dir) }

  private func run(_ arguments: [String]) throws -> ProcessResult { try runTally(arguments, scratch: dir) }

  /// A copy of the generated reference folder, changed by `change`.
  private func referenceCopy(_ name: String, _ change: (String) throws -> Void) throws -> String {
    let copy = dir + "/" + name
    try FileManager.default.copyItem(atPath: reference, toPath: copy)
    try change(copy)
    return copy
  }

  private func assertError(
    _ result: ProcessResult, status: Int32, mentions words: [String], file: StaticString = #filePath,
    line: UInt = #line
  ) {
    XCTAssertFalse(result.killed, file: file, line: line)
    XCTAssertEqual(result.status, status, "stderr: \(result.stderr)", file: file, line: line)
    XCTAssertTrue(result.stderr.contains("error"), "stderr: \(result.stderr)", file: file, line: line)
    for word in words {
      XCTAssertTrue(
        result.stderr.contains(word), "stderr should mention '\(word)': \(result.stderr)", file: file,
        line: line)
    }
  }

  // MARK: Reference data and event files: 2

  func testAMissingReferenceFileIsStatus2NamingTheFile() throws {
    let broken = try referenceCopy("no-calendar") {
      try FileManager.default.removeItem(atPath: $0 + "/calendar.csv")
    }
    let result = try run(["run", "--reference", broken, "--out", dir + "/out", events])
    assertError(result, status: 2, mentions: ["calendar.csv"])
    XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out"), "no outputs from a refused run")
  }

  func testAHeaderTypoIsStatus2NamingFileAndLine() throws {
    let broken = try referenceCopy("typo") { copy in
      let path = copy + "/accounts.csv"
      let text = try String(contentsOfFile: path, encoding: .utf8)
      XCTAssertTrue(text.hasPrefix("account,kind\n"))
      try ("acount,kind\n" + text.dropFirst("account,kind\n".count)).write(
        toFile: path, atomically: true, encoding: .utf8)
    }
    let result = try run(["run", "--reference", broken, "--out", dir + "/out", events])
    assertError(result, status: 2, mentions: ["accounts.csv:1"])
  }

  func testABadReferenceLineIsStatus2NamingFileAndLine() throws {
    let broken = try referenceCopy("bad-line") { copy in
      let path = copy + "/accounts.csv"
      var lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
      lines[2] = lines[2].replacingOccurrences(of: "INDIVIDUAL", with: "PERSON")
        .replacingOccurrences(of: "INSTITUTION", with: "PERSON")
      try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }
    let result = try run(["run", "--reference", broken, "--out", dir + "/out", events])
    assertError(result, status: 2, mentions: ["accounts.csv:3"])
  }

  func testAMissingReferenceFolderIsStatus2() throws {
    let result = try run(["run", "--reference", dir + "/nowhere", "--out", dir + "/out", events])
    assertError(result, status: 2, mentions: [dir + "/nowhere"])
  }

  func testAnUnreadableEventFileIsStatus2NamingIt() throws {
    let missing = dir + "/no-such-events.txt"
    assertError(
      try run(["run", "--reference", reference, "--out", dir + "/out", events, missing]), status: 2,
      mentions: [missing])
    // A folder is not an event file either (reading as root ignores permission bits).
    assertError(
      try run(["run", "--reference", reference, "--out", dir + "/out", dir + "/market"]), status: 2,
      mentions: [dir + "/market"])
    // The same with --state.
    assertError(
      try run(["run", "--state", dir + "/state", "--reference", reference, "--out", dir + "/out", missing]),
      status: 2, mentions: [missing])
  }

  // MARK: Outputs and state folders that cannot be written: 3

  func testAnOutPathThatIsAFileIsStatus3() throws {
    let file = dir + "/a-file"
    _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
    assertError(
      try run(["run", "--reference", reference, "--out", file, events]), status: 3, mentions: [file])
    assertError(
      try run(["run", "--state", dir + "/state", "--reference", reference, "--out", file, events]), status: 3,
      mentions: [file])
  }

  func testAStatePathThatIsAFileIsStatus3() throws {
    // `tally run --help`: "3: output or state folder cannot be written".
    let file = dir + "/state-file"
    _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
    assertError(
      try run(["run", "--state", file, "--reference", reference, "--out", dir + "/out", events]), status: 3,
      mentions: [file])
  }

  // MARK: State folders of other inputs: 2

  func testAStateFolderReusedWithAnotherReferenceIsStatus2() throws {
    let state = dir + "/state"
    let first = try run(["run", "--state", state, "--reference", reference, "--out", dir + "/out", events])
    XCTAssertEqual(first.status, 0, first.stderr)
    let other = try referenceCopy("one-more-account") { copy in
      let handle = try XCTUnwrap(FileHandle(forWritingAtPath: copy + "/accounts.csv"))
      handle.seekToEndOfFile()
      handle.write(Data("Z000000001,INDIVIDUAL\n".utf8))
      handle.closeFile()
    }
    let result = try run(["run", "--state", state, "--reference", other, "--out", dir + "/out2", events])
    assertError(result, status: 2, mentions: ["other reference data", "--state"])
    XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out2"), "no outputs from a refused run")
    // The refusal did not damage the folder: the right inputs still run.
    let again = try run(["run", "--state", state, "--reference", reference, "--out", dir + "/out3", events])
    XCTAssertEqual(again.status, 0, again.stderr)
  }

  func testAStateFolderIsBoundToItsReferenceFilesBytes() throws {
    // A `tally run --state` folder is marked with its reference files' SHA-256
    // (docs/DECISIONS.md): the same data with CRLF line endings parses to the same
    // reference (the in-memory run's outputs are the same) but is other files.
    let state = dir + "/state"
    let first = try run(["run", "--state", state, "--reference", reference, "--out", dir + "/out", events])
    XCTAssertEqual(first.status, 0, first.stderr)
    let crlf = try referenceCopy("crlf") { copy in
      let path = copy + "/participants.csv"
      let text = try String(contentsOfFile: path, encoding: .utf8)
      try text.replacingOccurrences(of: "\n", with: "\r\n").write(
        toFile: path, atomically: true, encoding: .utf8)
    }
    let inMemory = try run(["run", "--reference", crlf, "--out", dir + "/out-crlf", events])
    XCTAssertEqual(inMemory.status, 0, inMemory.stderr)
    let names = try FileManager.default.contentsOfDirectory(atPath: dir + "/out").sorted()
    XCTAssertEqual(names.count, 7, "the seven output files")
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/out-crlf").sorted(), names)
    for name in names {
      XCTAssertEqual(
        FileManager.default.contents(atPath: dir + "/out-crlf/" + name),
        FileManager.default.contents(atPath: dir + "/out/" + name), name)
    }
    let resumed = try run(["run", "--state", state, "--reference", crlf, "--out", dir + "/out2", events])
    assertError(resumed, status: 2, mentions: ["other reference data"])
    let inspected = try run(["inspect", "--state", state, "--reference", crlf])
    assertError(inspected, status: 2, mentions: ["other reference data"])
    let inspectedRight = try run(["inspect", "--state", state, "--reference", reference])
    XCTAssertEqual(inspectedRight.status, 0, inspectedRight.stderr)
    XCTAssertTrue(inspectedRight.stdout.contains("verified"), inspectedRight.stdout)
  }

  func testAStateFolderReusedWithAnotherEventStreamIsStatus2() throws {
    let state = dir + "/state"
    let first = try run(["run", "--state", state, "--reference", reference, "--out", dir + "/out", events])
    XCTAssertEqual(first.status, 0, first.stderr)
    var lines = try String(contentsOfFile: events, encoding: .utf8).split(separator: "\n").map(String.init)
    let firstEvent = try XCTUnwrap(lines.firstIndex { !$0.hasPrefix("#") && !$0.isEmpty })
    lines.remove(at: firstEvent + 1)
    let other = dir + "/other-events.txt"
    try (lines.joined(separator: "\n") + "\n").write(toFile: other, atomically: true, encoding: .utf8)
    assertError(
      try run(["run", "--state", state, "--reference", reference, "--out", dir + "/out2", other]), status: 2,
      mentions: ["another event stream"])
  }

  func testAStateFolderReusedWithATruncatedEventStreamIsStatus2() throws {
    // The state holds every event; the file given now holds only its first 200 lines.
    // Writing outputs for events the inputs do not contain must be refused.
    let state = dir + "/state"
    let first = try run(["run", "--state", state, "--reference", reference, "--out", dir + "/out", events])
    XCTAssertEqual(first.status, 0, first.stderr)
    let lines = try String(contentsOfFile: events, encoding: .utf8).split(separator: "\n").prefix(200)
    let truncated = dir + "/first-200.txt"
    try (lines.joined(separator: "\n") + "\n").write(toFile: truncated, atomically: true, encoding: .utf8)
    let result = try run([
      "run", "--state", state, "--reference", reference, "--out", dir + "/out2", truncated,
    ])
    assertError(result, status: 2, mentions: ["--state"])
  }

  func testADamagedStateFolderIsStatus2() throws {
    // A state folder keeps its events in a log (docs/STATE-LAYOUT.md): one digit of a
    // logged line changed must be refused, not applied as another event. (Only the log's
    // last entry is taken for a torn write and cut: SegmentInputLogTests.)
    let state = dir + "/state"
    let first = try run([
      "run", "--state", state, "--commit-events", "50", "--reference", reference, "--out", dir + "/out",
      events,
    ])
    XCTAssertEqual(first.status, 0, first.stderr)
    let segments = try FileManager.default.contentsOfDirectory(atPath: state + "/input-log").sorted()
    let file = state + "/input-log/" + (try XCTUnwrap(segments.first))
    var bytes = try XCTUnwrap(FileManager.default.contents(atPath: file))
    // One digit of a logged line, in the first entry's payload (after its 48 header bytes).
    let digit = try XCTUnwrap((100..<4096).first { bytes[$0] >= 0x31 && bytes[$0] <= 0x38 })
    bytes[digit] += 1
    try bytes.write(to: URL(fileURLWithPath: file))
    assertError(
      try run(["run", "--state", state, "--reference", reference, "--out", dir + "/out2", events]), status: 2,
      mentions: ["damaged", "checksum"])
  }

  // MARK: Arguments and help

  func testBadArgumentsAreStatus64() throws {
    XCTAssertEqual(
      try run(["run", "--reference", reference, "--out", dir + "/out"]).status, 64, "no event file")
    XCTAssertEqual(
      try run(["run", "--commit-events", "0", "--reference", reference, "--out", dir + "/out", events])
        .status, 64)
    XCTAssertEqual(try run(["run", "--no-such-option", events]).status, 64)
  }

  func testHelpWorksForEverySubcommand() throws {
    for (command, words) in [
      ("run", ["--state", "--commit-events", "--reference", "--out"]), ("generate", ["--seed", "--out"]),
      ("demo", ["OVERVIEW"]), ("bench", ["OVERVIEW"]),
    ] {
      let result = try run([command, "--help"])
      XCTAssertEqual(result.status, 0, "\(command) --help: \(result.stderr)")
      XCTAssertTrue(result.stdout.contains("USAGE"), "\(command) --help: \(result.stdout)")
      for word in words { XCTAssertTrue(result.stdout.contains(word), "\(command) --help lacks \(word)") }
    }
    let top = try run(["--help"])
    XCTAssertEqual(top.status, 0)
    for command in ["run", "generate", "demo", "bench"] { XCTAssertTrue(top.stdout.contains(command)) }
  }

  /// Every command's description (what `--help` prints above USAGE) reads as paragraphs
  /// on an 80-column terminal: no line wider, and no line broken early, i.e. no line
  /// followed in its paragraph by a word that would have fitted on it (the source's own
  /// line breaks printed as "... wall clock from spawn to exit," / "peak" / "RSS ...").
  /// Indented lines (examples) are exempt. Every command and subcommand is visited,
  /// from the SUBCOMMANDS lists.
  func testEveryDescriptionIsWrappedAsParagraphsForAnEightyColumnTerminal() throws {
    var pending: [[String]] = [[]]
    var visited = 0
    while let command = pending.popLast() {
      let result = try run(command + ["--help"])
      XCTAssertEqual(result.status, 0, "\(command) --help: \(result.stderr)")
      let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
      let description = lines.prefix { !$0.hasPrefix("USAGE:") }
      XCTAssertLessThan(description.count, lines.count, "\(command) --help has a USAGE line")
      for (a, b) in zip(description, description.dropFirst()) {
        XCTAssertLessThan(
          a.count, 80, "tally \(command.joined(separator: " ")) --help: a line too wide: \(a)")
        guard !a.isEmpty, !b.isEmpty, a.first != " ", b.first != " " else { continue }
        let word = b.prefix { $0 != " " }
        XCTAssertGreaterThan(
          a.count + 1 + word.count, helpColumns,
          "tally \(command.joined(separator: " ")) --help: a line broken before '\(word)' fits: \(a)")
      }
      visited += 1
      // Subcommands: the lines of the SUBCOMMANDS section, "  name  abstract".
      if let start = lines.firstIndex(of: "SUBCOMMANDS:") {
        for line in lines[(start + 1)...] {
          guard line.hasPrefix("  "), let name = line.split(separator: " ").first, !line.hasPrefix("   ")
          else {
            if line.isEmpty { break } else { continue }
          }
          if name != "help" { pending.append(command + [String(name)]) }
        }
      }
    }
    XCTAssertGreaterThan(visited, 20, "every command and cluster subcommand visited")
  }

  /// Columns a description line is filled to (`helpTextWidth` in the tally module).
  private let helpColumns = 78
}

/// `tally --version` and a config with a typo, as a user meets them.
final class CLIVersionAndConfigTests: XCTestCase {
  private var dir = ""
  override func setUpWithError() throws { dir = try makeTemporaryDirectory("version") }
  override func tearDown() { removeDirectory(dir) }

  func testVersionPrintsTheOneVersionString() throws {
    let r = try runTally(["--version"], scratch: dir)
    XCTAssertEqual(r.status, 0, r.stderr)
    XCTAssertEqual(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines), TallyVersion.string)
  }

  /// The issue's example: `base_prot = 7100` stops every cluster command with status 2,
  /// naming the file, the line, the key and the allowed keys.
  func testAConfigTypoIsStatus2NamingFileLineAndAllowedKeys() throws {
    let config = dir + "/typo.toml"
    try "[cluster]\nname = \"t\"\nbase_prot = 7100\n\n[[replica]]\nid = \"r1\"\n".write(
      toFile: config, atomically: true, encoding: .utf8)
    for verb in [["cluster", "status"], ["cluster", "up", "--reference", dir], ["sequencer"]] {
      let r = try runTally(verb + ["--config", config], scratch: dir)
      XCTAssertEqual(r.status, 2, "\(verb): \(r.stderr)")
      XCTAssertTrue(r.stderr.contains("\(config):3:"), r.stderr)
      XCTAssertTrue(r.stderr.contains("base_prot") && r.stderr.contains("allowed: name, data"), r.stderr)
    }
  }
}
