// SPEC §3 (lines, seq numbering) and §1 (UTF-8 byte-order mark).
import Foundation
import KernelAPI
import KernelV1
import TallyEngine
import TallyFormat
import XCTest

final class LineHandlingTests: XCTestCase {
  // One trade of 100 x 10.00 = 1000.00 (SPEC §2, 2026 STOCK rates):
  // handling 1000 x 0.0000341 = 0.0341 -> 0.03; regulatory 0.02; transfer 0.01;
  // stamp (sell only) 0.50.
  static let smallTradeClearing = csv(
    Header.clearing,
    "20260105,20260106,P1,600000,0,100,0.00,1000.00,0.03,0.02,0.01,0.50",
    "20260105,20260106,P2,600000,100,0,1000.00,0.00,0.03,0.02,0.01,0.00")

  func testCRLFLineEndsAreDroppedIncludingAtEndOfFile() throws {
    // The last field of the TRADE (sell unit U1) would be unknown if its \r stayed;
    // the file ends in "\r" without "\n": that \r is dropped too.
    let r = try Fixture.standard.run(
      "OPEN,20260105\r\nTRADE,T1,20260105,093000,600000,10.00,100,A2,U2,A1,U1\r\nCLOSE,20260105\r")
    XCTAssertEqual(r.codes, ["OK", "OK", "OK"])
    XCTAssertEqual(r.clearing, Self.smallTradeClearing)
    XCTAssertEqual(r.rejections, csv(Header.rejections))
  }

  func testCarriageReturnElsewhereStaysInItsField() throws {
    let r = try Fixture.standard.run(
      "OPEN,20260105\r\r\n"  // one \r dropped, the other stays: date "20260105\r" -> MALFORMED
        + "DEPOSIT,P1\r,1.00\n"  // participant "P1\r" is an identifier: unknown, not malformed
        + "OPEN,2026\r0105\n"  // MALFORMED
        + "\r\n"  // empty once the \r is dropped: not an event, no seq
        + "DEPOSIT,P1,1.00\r")  // seq 4, applied
    XCTAssertEqual(r.codes, ["MALFORMED", "UNKNOWN_PARTICIPANT", "MALFORMED", "OK"])
    XCTAssertEqual(
      r.rejections,
      csv(
        Header.rejections, "1,OPEN,20260105\r,MALFORMED", "2,DEPOSIT,P1\r,UNKNOWN_PARTICIPANT",
        "3,OPEN,2026\r0105,MALFORMED"))
    XCTAssertEqual(r.balances, balances("1.00"))
  }

  func testCommentAndEmptyLinesTakeNoSeqButSpaceLinesAreEvents() throws {
    let r = try Fixture.standard.run(
      "# a comment\n\nOPEN,20260105\n#OPEN,20260106\n\nOPEN,20260106\n   \n #not a comment\n,\n")
    // seq 1 OPEN applied; seq 2 DAY_ALREADY_OPEN; seq 3 the line of three spaces
    // (record "   ", no second field); seq 4 " #not a comment"; seq 5 "," (record and ref empty).
    XCTAssertEqual(r.codes, ["OK", "DAY_ALREADY_OPEN", "MALFORMED", "MALFORMED", "MALFORMED"])
    XCTAssertEqual(
      r.rejections,
      csv(
        Header.rejections, "2,OPEN,20260106,DAY_ALREADY_OPEN", "3,   ,,MALFORMED",
        "4, #not a comment,,MALFORMED",
        "5,,,MALFORMED"))
  }

  func testByteOrderMarkIgnoredOnlyAtTheVeryStart() throws {
    let bom = "\u{FEFF}"
    let r = try Fixture.standard.run(bom + "OPEN,20260105\n" + bom + "CLOSE,20260105\n")
    // The second BOM is not at the start of the file: it is part of the record type.
    XCTAssertEqual(r.codes, ["OK", "MALFORMED"])
    XCTAssertEqual(r.rejections, csv(Header.rejections, "2,\(bom)CLOSE,20260105,MALFORMED"))
  }

  func testByteOrderMarkThenCommentOrEmptyLine() throws {
    let r = try Fixture.standard.run(files: [
      Array("\u{FEFF}# comment right after the BOM\nOPEN,20260105\n".utf8),
      Array("\u{FEFF}\nCLOSE,20260105\n".utf8),
    ])
    XCTAssertEqual(r.codes, ["OK", "OK"])
  }

  func testSeqRunsAcrossFilesAndFilesNeverJoin() throws {
    // File 1 ends without "\n": its last line "DEPOSIT,P1,1.0" ends with the file,
    // so file 2's first line "0" is an event of its own (had the files joined, the
    // line would have been "DEPOSIT,P1,1.00").
    let r = try Fixture.standard.run(files: [
      Array("OPEN,20260105\nDEPOSIT,P1,1.0".utf8),
      Array("0\n# comment\nDEPOSIT,PX,2.00\n".utf8),
      Array("\u{FEFF}DEPOSIT,PY,3.00\n".utf8),
    ])
    XCTAssertEqual(r.codes, ["OK", "OK", "MALFORMED", "UNKNOWN_PARTICIPANT", "UNKNOWN_PARTICIPANT"])
    XCTAssertEqual(
      r.rejections,
      csv(
        Header.rejections, "3,0,,MALFORMED", "4,DEPOSIT,PX,UNKNOWN_PARTICIPANT",
        "5,DEPOSIT,PY,UNKNOWN_PARTICIPANT"))
    XCTAssertEqual(r.balances, balances("1.00"))
  }

  func testEngineFileReaderNumbersAcrossRealFiles() throws {
    // The same through the engine's own file reader (EventLines), on disk.
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
      "tally-lines-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let a = dir.appendingPathComponent("a.txt").path
    let b = dir.appendingPathComponent("b.txt").path
    try Data("OPEN,20260105\r\n\n# x\nDEPOSIT,P1,1.0".utf8).write(to: URL(fileURLWithPath: a))
    try Data("\u{FEFF}0\nDEPOSIT,P2,2.50\n".utf8).write(to: URL(fileURLWithPath: b))
    let ref = try Fixture.standard.reference()
    var engine = Engine<V1Kernel>(reference: ref)
    var seq: Int64 = 0
    var seen: [(String, Int)] = []
    try EventLines.forEach(files: [a, b]) { line in
      seq += 1
      engine.apply(line: line.bytes, seq: seq)
      seen.append((line.file, line.lineNumber))
    }
    XCTAssertEqual(seen.map { $0.0 }, [a, a, b, b])
    XCTAssertEqual(seen.map { $0.1 }, [1, 4, 1, 2])
    let files = Dictionary(
      uniqueKeysWithValues: engine.outputFiles().map { ($0.name, String(decoding: $0.bytes, as: UTF8.self)) })
    XCTAssertEqual(files["rejections.csv"], csv(Header.rejections, "3,0,,MALFORMED"))
    XCTAssertEqual(files["balances.csv"], balances("1.00", "2.50"))
  }

  /// Line feeds are found and counted eight bytes at a time (ByteScan.swift): the
  /// lines and counts must be those of a byte-by-byte scan, for every alignment, for LFs
  /// at every position of a word, next to bytes that differ from LF by one bit or carry,
  /// and with no LF at all.
  func testWordAtATimeLineSplittingMatchesAByteScan() {
    var state: UInt64 = 12_345
    func nextByte() -> UInt8 {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      // Mostly LF's neighbours (0x0B, 0x09, 0x08, 0x8A, 0x00, 0xFF), often LF itself.
      let pick = Int(state >> 59)
      let pool: [UInt8] = [10, 10, 10, 11, 9, 8, 0x8A, 0, 0xFF, 13, 65, 0x7F, 0x80, 0x0A ^ 0x80, 1, 2]
      return pick < pool.count ? pool[pick] : UInt8(truncatingIfNeeded: state >> 40)
    }
    for length in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1_000] {
      for _ in 0..<20 {
        let bytes = (0..<length).map { _ in nextByte() }
        for start in [0, 1, 3, 7].filter({ $0 <= length }) {
          var naiveLines: [Range<Int>] = []
          var i = start
          while i < length {
            var stop = i
            while stop < length && bytes[stop] != 10 { stop += 1 }
            var lineEnd = stop
            if lineEnd > i && bytes[lineEnd - 1] == 13 { lineEnd -= 1 }
            naiveLines.append(i..<lineEnd)
            i = stop + 1
          }
          let lines = LineReader(bytes, from: start, firstNumber: 1).map {
            $0.line.startIndex..<$0.line.endIndex
          }
          XCTAssertEqual(lines, naiveLines, "length \(length), start \(start): \(bytes)")
          XCTAssertEqual(
            Fields.lineFeedCount(bytes, in: start..<length), bytes[start...].filter { $0 == 10 }.count,
            "length \(length), start \(start): \(bytes)")
        }
        XCTAssertEqual(Fields.lineCount(bytes), bytes.filter { $0 == 10 }.count)
      }
    }
    XCTAssertEqual(Fields.lineCount([UInt8](repeating: 65, count: 100)), 0)
    XCTAssertEqual(Fields.lineCount([UInt8](repeating: 10, count: 100)), 100)
  }
}
