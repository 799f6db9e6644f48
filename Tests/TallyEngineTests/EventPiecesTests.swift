// Event files are read a piece at a time through one reused buffer
// (EventLines.forEachBlock, FileIO.forEachPieceOfLines). Whatever the piece size, the
// lines handed on are exactly those of reading the file whole (EventLines.forEach):
// lines across pieces, CRLF, a byte order mark, no final LF, a line longer than a
// piece, comments and blank lines; and a run over pieces gives the same outputs.
// Read and split on another thread (EventLines.forEachSplitBlock), the blocks are the
// same, and applying them split, in any cut of consecutive lines, runs alike.
import Foundation
import KernelAPI
import KernelV1
import KernelV2
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

  func splitBlocks(_ paths: [String], pieceBytes: Int, splitAfter: Int64 = 0) throws -> (
    blocks: [[[UInt8]]], hints: [Int]
  ) {
    var blocks: [[[UInt8]]] = []
    var hints: [Int] = []
    var seq: Int64 = 1
    try EventLines.forEachSplitBlock(
      files: paths, pieceBytes: pieceBytes, splitAfter: splitAfter, willRead: { hints.append($0) }
    ) { block in
      XCTAssertEqual(block.firstSeq, seq, "seqs run on across blocks and files")
      let last = seq + Int64(block.lines.count) - 1
      XCTAssertEqual(block.isSplit, last > splitAfter, "only blocks with a line after splitAfter are split")
      if block.isSplit {
        XCTAssertEqual(block.split.count, block.lines.count)
        XCTAssertEqual(block.split.firstSeq, seq)
      } else {
        XCTAssertEqual(block.split.count, 0)
      }
      XCTAssertEqual(block.split.trades.count + block.split.others.count, block.split.count)
      for t in block.split.trades {
        XCTAssertTrue(block.bytes[t.line].starts(with: Array("TRADE,".utf8)))
      }
      seq += Int64(block.lines.count)
      blocks.append(block.lines.map { Array(block.bytes[$0]) })
    }
    return (blocks, hints)
  }

  func testSplitBlocksAreTheBlocksOfTheFiles() throws {
    let m = try TestMarket.generate("pieces-split", seed: 47, days: 2, tradesPerDay: 3000, accounts: 90)
    defer { removeDirectory(m.directory) }
    let dir = try makeTemporaryDirectory("pieces-split-files")
    defer { removeDirectory(dir) }
    let second = dir + "/second.txt"
    try Data("# more\r\nTRADE,1\r\n\r\nCANCEL,2\r\nTRADE,3".utf8).write(to: URL(fileURLWithPath: second))
    let paths = [m.directory + "/events.txt", second]
    for pieceBytes in [64, 4096, 1 << 20] {
      var plain: [[[UInt8]]] = []
      var plainHints: [Int] = []
      try EventLines.forEachBlock(files: paths, pieceBytes: pieceBytes, willRead: { plainHints.append($0) }) {
        bytes, block in plain.append(block.map { Array(bytes[$0]) })
      }
      let (split, hints) = try splitBlocks(paths, pieceBytes: pieceBytes)
      XCTAssertEqual(split, plain, "pieces of \(pieceBytes)")
      XCTAssertEqual(hints, plainHints)
      let (resumed, _) = try splitBlocks(paths, pieceBytes: pieceBytes, splitAfter: 3500)
      XCTAssertEqual(resumed, plain, "pieces of \(pieceBytes), split after seq 3500")
      if pieceBytes == 64 {
        XCTAssertGreaterThan(split.count, EventLines.splitBlocksAhead + 2, "more blocks than exist at once")
      }
    }
  }

  func testSplitReaderErrorsAreNamedAndABodyErrorStopsIt() throws {
    let dir = try makeTemporaryDirectory("pieces-split-missing")
    defer { removeDirectory(dir) }
    let good = dir + "/good.txt"
    try Data(String(repeating: "TRADE,1\n", count: 5000).utf8).write(to: URL(fileURLWithPath: good))
    var seen = 0
    XCTAssertThrowsError(
      try EventLines.forEachSplitBlock(files: [good, dir + "/missing.txt"], pieceBytes: 64) {
        seen += $0.lines.count
      }
    ) { XCTAssertTrue("\($0)".contains(dir + "/missing.txt: cannot read"), "\($0)") }
    XCTAssertEqual(seen, 5000, "the blocks before the failure were all given")
    struct Stop: Error {}
    var blocks = 0
    XCTAssertThrowsError(
      try EventLines.forEachSplitBlock(files: [good], pieceBytes: 64) { _ in
        blocks += 1
        if blocks == 3 { throw Stop() }
      }
    ) { XCTAssertTrue($0 is Stop) }
    XCTAssertEqual(blocks, 3, "nothing given after the body's error")
  }

  /// A run makes its reader before the engine is ready: the reader counts and splits
  /// ahead meanwhile (up to its limit), gives every block in order when asked, and a
  /// reader dropped unused (a run that fails before its events) stops instead of
  /// blocking for ever on its full pipe.
  func testSplitReaderMadeAheadGivesTheSameBlocksAndStopsWhenDropped() throws {
    let dir = try makeTemporaryDirectory("pieces-split-ahead")
    defer { removeDirectory(dir) }
    let file = dir + "/events.txt"
    var text = ""
    for i in 1...4000 { text += i % 7 == 0 ? "CANCEL,\(i)\n" : "TRADE,\(i)\n" }
    try Data(text.utf8).write(to: URL(fileURLWithPath: file))
    var plain: [[[UInt8]]] = []
    try EventLines.forEachBlock(files: [file], pieceBytes: 256) { bytes, block in
      plain.append(block.map { Array(bytes[$0]) })
    }
    XCTAssertGreaterThan(plain.count, 3 * EventLines.splitBlocksAhead, "more blocks than the reader holds")
    let reader = EventLines.SplitBlockReader(files: [file], pieceBytes: 256)
    // The reader fills its pipe meanwhile and waits there.
    Thread.sleep(forTimeInterval: 0.2)
    var given: [[[UInt8]]] = []
    var hints: [Int] = []
    var seq: Int64 = 1
    try reader.forEach(willRead: { hints.append($0) }) { block in
      XCTAssertEqual(block.firstSeq, seq)
      XCTAssertTrue(block.isSplit)
      XCTAssertEqual(block.split.trades.count + block.split.others.count, block.lines.count)
      seq += Int64(block.lines.count)
      given.append(block.lines.map { Array(block.bytes[$0]) })
    }
    XCTAssertEqual(given, plain)
    XCTAssertEqual(hints, [4000])
    XCTAssertEqual(seq, 4001)
    // Dropped with a full pipe: its deinit cancels the pipe and waits for the thread,
    // which then stops (a reader that did not would hang the drop).
    let dropped = expectation(description: "an unused reader dropped")
    DispatchQueue.global().async {
      do {
        let unused = EventLines.SplitBlockReader(files: [file], pieceBytes: 256)
        Thread.sleep(forTimeInterval: 0.1)
        _ = unused
      }
      dropped.fulfill()
    }
    wait(for: [dropped], timeout: 20)
  }

  func runSplit<K: BusinessKernel>(_: K.Type, _ m: TestMarket, cut: Int) throws -> (Engine<K>, [UInt8]) {
    var engine = Engine<K>(reference: m.reference)
    engine.enableEffects()
    var effects = engine.state.snapshotEffects()
    try EventLines.forEachSplitBlock(files: [m.directory + "/events.txt"], pieceBytes: 8192) { block in
      var start = 0
      while start < block.split.count {
        let end = min(start + cut, block.split.count)
        engine.apply(split: block.split, of: block.bytes, range: start..<end)
        start = end
      }
      effects += engine.takeEffects()
    }
    return (engine, effects + engine.takeEffects())
  }

  func runLines<K: BusinessKernel>(_: K.Type, _ m: TestMarket) throws -> (Engine<K>, [UInt8]) {
    var engine = Engine<K>(reference: m.reference)
    engine.enableEffects()
    var effects = engine.state.snapshotEffects()
    var seq: Int64 = 0
    for line in m.lines {
      seq += 1
      engine.apply(line: line, seq: seq)
      effects += engine.takeEffects()
    }
    return (engine, effects)
  }

  func testSplitLinesApplyInAnyCutAsLineByLine() throws {
    let m = try TestMarket.generate("pieces-split-run", seed: 53, days: 3, tradesPerDay: 600, accounts: 60)
    defer { removeDirectory(m.directory) }
    for cut in [1, 5, 256, 1 << 20] {
      let (v1, e1) = try runSplit(V1Kernel.self, m, cut: cut)
      let (l1, f1) = try runLines(V1Kernel.self, m)
      assertSameOutputs(outputs(v1), outputs(l1))
      XCTAssertEqual(v1.stateDigest, l1.stateDigest, "v1, cut \(cut)")
      XCTAssertEqual(v1.statistics, l1.statistics)
      XCTAssertEqual(e1, f1, "v1 effects, cut \(cut)")
      let (v2, e2) = try runSplit(V2Kernel.self, m, cut: cut)
      let (l2, f2) = try runLines(V2Kernel.self, m)
      assertSameOutputs(outputs(v2), outputs(l2))
      XCTAssertEqual(v2.stateDigest, l2.stateDigest, "v2, cut \(cut)")
      XCTAssertEqual(e2, f2, "v2 effects, cut \(cut)")
    }
  }
}
