// The output folder written a piece at a time (Engine.writeOutputs) holds exactly the
// bytes of the rendered files (Engine.outputFiles), whatever the piece size, for both
// kernels; and a folder that cannot be written is a clear error naming it. holdings.csv
// is written and renamed on another thread (FileIO.writeAtomicallyInBackground): its
// failure reaches the caller too, and leaves no temporary file behind.
import Foundation
import KernelAPI
import KernelV1
import KernelV2
import TallyEngine
import XCTest

final class OutputWriterTests: XCTestCase {
  func testFolderWrittenInPiecesEqualsRenderedFiles() throws {
    let m = try TestMarket.generate("outputs", seed: 41, days: 3, tradesPerDay: 300, accounts: 80)
    defer { removeDirectory(m.directory) }
    try check(Engine<V1Kernel>.self, m)
    try check(Engine<V2Kernel>.self, m)
  }

  private func check<K: BusinessKernel>(_: Engine<K>.Type, _ m: TestMarket) throws {
    var engine = Engine<K>(reference: m.reference)
    for (i, line) in m.lines.enumerated() { engine.apply(line: line, seq: Int64(i + 1)) }
    let rendered = outputs(engine)
    XCTAssertGreaterThan(rendered["holdings.csv"]?.count ?? 0, 4096, "holdings.csv spans many pieces")
    // 1: a piece per byte; 37: pieces end mid-row; the default: one piece.
    for pieceBytes in [1, 37, 4096, outputPieceBytes] {
      let folder = m.directory + "/out-\(engine.state.kernelName)-\(pieceBytes)"
      try engine.writeOutputs(to: folder, pieceBytes: pieceBytes)
      var written: [String: [UInt8]] = [:]
      for name in try FileManager.default.contentsOfDirectory(atPath: folder) {
        written[name] = Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/" + name)))
      }
      assertSameOutputs(written, rendered)
    }
  }

  func testUnwritableFolderIsAnErrorNamingIt() throws {
    let m = try TestMarket.generate("outputs-bad", seed: 42, days: 1, tradesPerDay: 20, accounts: 10)
    defer { removeDirectory(m.directory) }
    let engine = Engine<V1Kernel>(reference: m.reference)
    let blocker = m.directory + "/a-file"
    XCTAssertTrue(FileManager.default.createFile(atPath: blocker, contents: Data("x".utf8)))
    XCTAssertThrowsError(try engine.writeOutputs(to: blocker + "/out")) { error in
      XCTAssertTrue("\(error)".contains(blocker + "/out"), "\(error)")
    }
  }

  func testHoldingsThatCannotReplaceTheirTargetAreAnErrorWithNoTemporaryLeft() throws {
    let m = try TestMarket.generate("outputs-rename", seed: 43, days: 1, tradesPerDay: 50, accounts: 20)
    defer { removeDirectory(m.directory) }
    var engine = Engine<V2Kernel>(reference: m.reference)
    for (i, line) in m.lines.enumerated() { engine.apply(line: line, seq: Int64(i + 1)) }
    // A non-empty folder named holdings.csv: the rename over it fails after every
    // piece was written.
    let folder = m.directory + "/out"
    try FileManager.default.createDirectory(
      atPath: folder + "/holdings.csv/x", withIntermediateDirectories: true)
    XCTAssertThrowsError(try engine.writeOutputs(to: folder, pieceBytes: 64)) { error in
      XCTAssertTrue("\(error)".contains(folder + "/holdings.csv"), "\(error)")
    }
    let left = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
    XCTAssertFalse(left.contains { $0.contains(".tmp-") }, "temporary files left: \(left)")
    // The six other files were still written, whole.
    let rendered = outputs(engine)
    for name in left where name != "holdings.csv" {
      XCTAssertEqual(
        Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/" + name))), rendered[name], name)
    }
    XCTAssertEqual(left.count, 7)
  }
}
