// SPEC §7, the ingest protocol, validated without I/O (Ingest.parse, Ingest.refusal).
import TallyCluster
import XCTest

final class IngestTests: XCTestCase {
  let magic = Array("TALLY1".utf8)

  func frames(client: String = "client-1", batch: String = "1", events: [UInt8]) -> [[UInt8]] {
    [magic, Array(client.utf8), Array(batch.utf8), events]
  }

  func frames(client: String = "client-1", batch: String = "1", _ events: String) -> [[UInt8]] {
    frames(client: client, batch: batch, events: Array(events.utf8))
  }

  func assertRefused(
    _ f: [[UInt8]], _ reason: IngestRefusal, file: StaticString = #filePath, line: UInt = #line
  ) {
    switch Ingest.parse(f) {
    case .success(let b):
      XCTFail("accepted, expected \(reason): \(b.eventLines.count) lines", file: file, line: line)
    case .failure(let r): XCTAssertEqual(r, reason, file: file, line: line)
    }
  }

  func accepted(_ f: [[UInt8]], file: StaticString = #filePath, line: UInt = #line) -> IngestBatch? {
    switch Ingest.parse(f) {
    case .success(let b): return b
    case .failure(let r):
      XCTFail("refused \(r.rawValue)", file: file, line: line)
      return nil
    }
  }

  func lines(_ f: [[UInt8]], file: StaticString = #filePath, line: UInt = #line) -> [String]? {
    accepted(f, file: file, line: line).map { $0.eventLines.map { String(decoding: $0, as: UTF8.self) } }
  }

  // MARK: BAD_FRAMES

  func testBadFrames() {
    let good = frames("OPEN,2026-01-05\n")
    assertRefused(Array(good.prefix(3)), .badFrames)  // 3 frames
    assertRefused(good + [Array("extra".utf8)], .badFrames)  // 5 frames
    assertRefused([], .badFrames)
    assertRefused([magic], .badFrames)
    assertRefused(Array(good.prefix(2)), .badFrames)
    for wrong in ["TALLY2", "tally1", "TALLY1 ", "", "TALLY", "TALLY10"] {
      var f = good
      f[0] = Array(wrong.utf8)
      assertRefused(f, .badFrames)
    }
  }

  func testBadFramesWinsOverEverythingElse() {
    // Wrong magic with a bad client and batch: the frame table is checked first.
    assertRefused([Array("NOPE".utf8), [], Array("0".utf8), []], .badFrames)
    assertRefused([magic, [], Array("0".utf8)], .badFrames)
  }

  // MARK: BAD_CLIENT

  func testBadClient() {
    assertRefused(frames(client: "", ""), .badClient)
    assertRefused(frames(client: String(repeating: "a", count: 65), ""), .badClient)
    for bad in ["a b", "a/b", "a:b", "a\u{0}b", "é", "ab\n", "a+b", "a,b", "a@b", "客户"] {
      assertRefused(frames(client: bad, ""), .badClient)
    }
    // A client id of raw bytes that are not UTF-8.
    assertRefused([magic, [0x61, 0xFF], Array("1".utf8), []], .badClient)
  }

  func testGoodClients() {
    XCTAssertNotNil(accepted(frames(client: String(repeating: "z", count: 64), "")))
    XCTAssertNotNil(accepted(frames(client: "A", "")))
    XCTAssertNotNil(accepted(frames(client: "Az09._-", "")))
    XCTAssertEqual(accepted(frames(client: "abc.DEF_1-2", ""))?.client, Array("abc.DEF_1-2".utf8))
  }

  // MARK: BAD_BATCH

  func testBadBatch() {
    for bad in [
      "0", "00", "01", "007", "+1", "-1", "9223372036854775808", "99999999999999999999",
      "18446744073709551616",
      "1a", "a1", "", " 1", "1 ", "1.0", "1e3", "٣", "0x10",
    ] {
      assertRefused(frames(batch: bad, ""), .badBatch)
    }
  }

  func testGoodBatchNumbers() {
    XCTAssertEqual(accepted(frames(batch: "1", ""))?.batchNumber, 1)
    XCTAssertEqual(accepted(frames(batch: "10", ""))?.batchNumber, 10)
    XCTAssertEqual(accepted(frames(batch: "9223372036854775807", ""))?.batchNumber, Int64.max)
    XCTAssertEqual(Ingest.batchNumber(Array("9223372036854775807".utf8)), Int64.max)
    XCTAssertNil(Ingest.batchNumber(Array("9223372036854775808".utf8)))
  }

  // MARK: TOO_LARGE

  func testTooManyLines() {
    let limit = Array(repeating: Array("X\n".utf8), count: 100_000).flatMap { $0 }
    XCTAssertEqual(accepted(frames(events: limit))?.eventLines.count, 100_000)
    // The final \n is optional: 100,000 lines without it are still 100,000 lines.
    XCTAssertEqual(accepted(frames(events: Array(limit.dropLast())))?.eventLines.count, 100_000)
    assertRefused(frames(events: limit + Array("X".utf8)), .tooLarge)
    assertRefused(frames(events: limit + Array("X\n".utf8)), .tooLarge)
    // Blank and comment lines are lines too.
    assertRefused(frames(events: Array(repeating: 10, count: 100_001)), .tooLarge)
    assertRefused(frames(events: limit + Array("# comment\n".utf8)), .tooLarge)
  }

  func testTooManyBytes() {
    let mib16 = 16 << 20
    // Exactly 16 MiB in 65,536 lines of 256 bytes: accepted.
    var line = Array(repeating: UInt8(ascii: "Y"), count: 255)
    line.append(10)
    var exact: [UInt8] = []
    exact.reserveCapacity(mib16 + 1)
    for _ in 0..<(mib16 / 256) { exact += line }
    XCTAssertEqual(exact.count, mib16)
    XCTAssertEqual(accepted(frames(events: exact))?.eventLines.count, 65_536)
    assertRefused(frames(events: exact + [UInt8(ascii: "Y")]), .tooLarge)
    // One long line of more than 16 MiB.
    assertRefused(frames(events: Array(repeating: UInt8(ascii: "Z"), count: mib16 + 1)), .tooLarge)
  }

  // MARK: OK

  func testEmptyFrameHasNoLines() {
    XCTAssertEqual(lines(frames("")), [])
    XCTAssertEqual(accepted(frames(client: "c", batch: "5", ""))?.batchNumber, 5)
  }

  func testFinalNewlineIsOptional() {
    XCTAssertEqual(
      lines(frames("OPEN,2026-01-05\nCLOSE,2026-01-05\n")), ["OPEN,2026-01-05", "CLOSE,2026-01-05"])
    XCTAssertEqual(
      lines(frames("OPEN,2026-01-05\nCLOSE,2026-01-05")), ["OPEN,2026-01-05", "CLOSE,2026-01-05"])
    XCTAssertEqual(lines(frames("A")), ["A"])
    XCTAssertEqual(lines(frames("A\n")), ["A"])
  }

  func testCommentAndBlankLinesGetNoSeq() {
    XCTAssertEqual(lines(frames("# header\n\nA\n#B\n\n\nC\n# trailing")), ["A", "C"])
    XCTAssertEqual(lines(frames("\n")), [])
    XCTAssertEqual(lines(frames("\n\n\n")), [])
    XCTAssertEqual(lines(frames("# only a comment")), [])
    XCTAssertEqual(lines(frames("\r\n")), [], "a line that is empty once its \\r is dropped is blank")
  }

  func testLineOfSpacesAndIndentedCommentAreEvents() {
    // SPEC §3: a line of spaces is an event; only a line starting with # is a comment.
    XCTAssertEqual(lines(frames("   \n #x\n")), ["   ", " #x"])
  }

  func testCarriageReturns() {
    XCTAssertEqual(lines(frames("A\r\nB\r\n")), ["A", "B"])
    XCTAssertEqual(lines(frames("A\r\nB\r")), ["A", "B"], "a \\r at the end of the frame is dropped")
    // Only one \r right before the \n is dropped; any other \r stays part of its field.
    XCTAssertEqual(lines(frames("A\r\r\n")), ["A\r"])
    XCTAssertEqual(lines(frames("A\rB\n")), ["A\rB"])
    XCTAssertEqual(lines(frames("\rA\n")), ["\rA"])
    XCTAssertEqual(lines(frames("# c\r\n\r\nA\r\n")), ["A"])
  }

  func testBadEventLinesAreJournaledAsTheyAre() {
    // Inside a well-formed batch, bad lines are the engine's business (MALFORMED), not the ingest's.
    let raw: [UInt8] = Array("NOT AN EVENT\n".utf8) + [0xFF, 0xFE, 10] + Array("TRADE,,,\n".utf8)
    let b = accepted(frames(events: raw))
    XCTAssertEqual(b?.eventLines, [Array("NOT AN EVENT".utf8), [0xFF, 0xFE], Array("TRADE,,,".utf8)])
  }

  // MARK: answers

  func testRefusalEchoesFrameThree() {
    let f = [magic, Array("c".utf8), Array("0042x".utf8)]
    XCTAssertEqual(
      Ingest.refusal(f, .badFrames),
      [magic, Array("0042x".utf8), Array("ERR".utf8), Array("BAD_FRAMES".utf8)])
    XCTAssertEqual(
      Ingest.refusal([magic, Array("c".utf8)], .badFrames),
      [magic, [], Array("ERR".utf8), Array("BAD_FRAMES".utf8)])
    XCTAssertEqual(Ingest.refusal([], .badFrames), [magic, [], Array("ERR".utf8), Array("BAD_FRAMES".utf8)])
    let five = [magic, Array("c".utf8), Array("7".utf8), [], []]
    XCTAssertEqual(Ingest.refusal(five, .badFrames)[1], Array("7".utf8))
    for reason in [IngestRefusal.badClient, .badBatch, .tooLarge] {
      let g = [magic, Array("c c".utf8), Array("-3".utf8), []]
      XCTAssertEqual(
        Ingest.refusal(g, reason), [magic, Array("-3".utf8), Array("ERR".utf8), Array(reason.rawValue.utf8)])
    }
    XCTAssertEqual(
      [IngestRefusal.badFrames, .badClient, .badBatch, .tooLarge].map(\.rawValue),
      ["BAD_FRAMES", "BAD_CLIENT", "BAD_BATCH", "TOO_LARGE"])
  }

  func testOkAnswer() {
    XCTAssertEqual(
      Ingest.ok(batch: Array("12".utf8), first: 101, last: 200),
      [magic, Array("12".utf8), Array("OK".utf8), Array("101".utf8), Array("200".utf8)])
    XCTAssertEqual(
      Ingest.ok(batch: Array("3".utf8), first: 0, last: 0),
      [magic, Array("3".utf8), Array("OK".utf8), Array("0".utf8), Array("0".utf8)])
  }

  /// The sequencer journals a client's batch from its encoded lines (one copy): the
  /// journal frame must be the one the lines themselves encode to, and decode to them.
  func testEncodedLinesAreTheJournalEncoding() throws {
    let text =
      "OPEN,2026-01-05\r\n# a comment\n\nTRADE,T1,20260105,093000,600000,10.000,100,A1,U1,A2,U2\n"
      + "  \nCLOSE,2026-01-05"
    guard let batch = accepted(frames(text)) else { return }
    let expected = [
      "OPEN,2026-01-05", "TRADE,T1,20260105,093000,600000,10.000,100,A1,U1,A2,U2", "  ", "CLOSE,2026-01-05",
    ].map { Array($0.utf8) }
    XCTAssertEqual(batch.lineCount, 4)
    XCTAssertEqual(batch.eventLines, expected)
    let frame = JournalBatch.encoded(first: 41, last: 44, encodedLines: batch.encodedLines)
    XCTAssertEqual(frame, JournalBatch(first: 41, last: 44, lines: expected).encoded)
    let decoded = try JournalBatch(frame: frame)
    XCTAssertEqual(decoded.lines, expected)
    // The simulator's batches (built from lines) are the same value as parsed ones.
    XCTAssertEqual(
      IngestBatch(client: batch.client, batchNumber: batch.batchNumber, eventLines: expected), batch)
    // A frame of lines longer than a byte's worth keeps their whole length.
    let long = String(repeating: "x", count: 70_000)
    guard let big = accepted(frames(long + "\n" + long)) else { return }
    XCTAssertEqual(big.eventLines, [Array(long.utf8), Array(long.utf8)])
    XCTAssertEqual(
      try JournalBatch(frame: JournalBatch.encoded(first: 1, last: 2, encodedLines: big.encodedLines)).lines
        .map(\.count), [70_000, 70_000])
  }
}
