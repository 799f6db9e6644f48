// Event files are read a piece at a time through one reused buffer
// (EventLines.forEachBlock, FileIO.forEachPieceOfLines). Whatever the piece size, the
// lines handed on are exactly those of reading the file whole (EventLines.forEach):
// lines across pieces, CRLF, a byte order mark, no final LF, a line longer than a
// piece, comments and blank lines; and a run over pieces gives the same outputs.
import Foundation
import KernelV1
import TallyEngine
import XCTest

final class EventPiecesTests: XCTestCase {
  func lines(whole path: String) throws -> [[UInt8]] {
    var result: [[UInt8]] = []
    try EventLines.forEach(files: [path]) { result.append(Array($0.bytes)) }
    return result
  }

  func lines(pieces path: String, pieceBytes: Int) throws -> (lines: [[UInt8]], hint: Int) {
    var result: [[UInt8]] = []
    var hint = -1
    try EventLines.forEachBlock(files: [path], pieceBytes: pieceBytes, willRead: { hint = $0 }) {
      bytes, block in
      XCTAssertLessThanOrEqual(block.count, EventLines.blockLinesMax)
      for r in block { result.append(Array(bytes[r])) }
    }
    return (result, hint)
  }

  func testPiecesGiveTheLinesOfTheWholeFile() throws {
    let dir = try makeTemporaryDirectory("pieces")
    defer { removeDirectory(dir) }
    let long = "TRADE,20260105,T" + String(repeating: "9", count: 300) + ",A1,A2,600000,10.00,100"
    let texts: [String: String] = [
      "plain": "# a comment\nTRADE,1\n\nTRADE,2\nCANCEL,3\n",
      "crlf-bom": "\u{FEFF}TRADE,1\r\nTRADE,2\r\n# c\r\n\r\nTRADE,3\r\n",
      "no-final-lf": "TRADE,1\nTRADE,2\nTRADE,3",
      "long-line": "TRADE,1\n" + long + "\nTRADE,3\n" + long + "\n",
      "empty": "",
      "only-lf": "\n\n\n",
    ]
    for (name, text) in texts.sorted(by: { $0.key < $1.key }) {
      let path = dir + "/" + name + ".txt"
      try Data(text.utf8).write(to: URL(fileURLWithPath: path))
      let whole = try lines(whole: path)
      for pieceBytes in [1, 2, 3, 7, 16, 64, 1 << 20] {
        let (pieces, hint) = try lines(pieces: path, pieceBytes: pieceBytes)
        XCTAssertEqual(pieces, whole, "\(name) in pieces of \(pieceBytes)")
        XCTAssertEqual(hint, text.utf8.filter { $0 == 10 }.count, "\(name): the line count hint")
      }
    }
  }

  func testGeneratedDayInSmallPiecesRunsAlike() throws {
    let m = try TestMarket.generate("pieces-run", seed: 43, days: 3, tradesPerDay: 500, accounts: 70)
    defer { removeDirectory(m.directory) }
    let path = m.directory + "/events.txt"
    let (pieces, _) = try lines(pieces: path, pieceBytes: 777)
    XCTAssertEqual(pieces, m.lines.map(Array.init))
    var engine = Engine<V1Kernel>(reference: m.reference)
    var seq: Int64 = 0
    try EventLines.forEachBlock(files: [path], pieceBytes: 4096) { bytes, block in
      engine.apply(lines: block, of: bytes, firstSeq: seq + 1)
      seq += Int64(block.count)
    }
    let straight = try m.straightRun()
    assertSameOutputs(outputs(engine), straight.outputs)
    XCTAssertEqual(engine.stateDigest, straight.digest)
  }

  func testUnreadableFileIsNamed() throws {
    let dir = try makeTemporaryDirectory("pieces-missing")
    defer { removeDirectory(dir) }
    for path in [dir + "/missing.txt", dir] {  // no such file; a folder
      XCTAssertThrowsError(try lines(pieces: path, pieceBytes: 64)) { error in
        XCTAssertTrue("\(error)".contains(path + ": cannot read"), "\(error)")
      }
    }
  }
}
