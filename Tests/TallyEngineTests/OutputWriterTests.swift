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
import TallyFormat
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
    // 1: a piece per byte; 37: pieces end mid-row; the default: one piece. Rendered on
    // one thread, or in parts on several (each part's last piece shorter).
    for pieceBytes in [1, 37, 4096, outputPieceBytes] {
      for parts in [1, 2, 3] {
        let folder = m.directory + "/out-\(engine.state.kernelName)-\(pieceBytes)-\(parts)"
        try engine.writeOutputs(to: folder, pieceBytes: pieceBytes, holdingsParts: parts)
        var written: [String: [UInt8]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: folder) {
          written[name] = Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/" + name)))
        }
        assertSameOutputs(written, rendered)
      }
    }
  }

  /// The holdings walk cut in parts (`forEachHolding(part:of:)`, each part rendered on
  /// its own thread) gives, part after part, exactly the whole walk: for both kernels,
  /// for more parts than accounts, and with accounts holding more securities than fit
  /// V1's eight directory lanes (its overflowed positions are placed by account rank).
  func testHoldingPartsOneAfterAnotherAreTheWholeWalk() throws {
    let m = try TestMarket.generate("holding-parts", seed: 44, days: 3, tradesPerDay: 300, accounts: 5)
    defer { removeDirectory(m.directory) }
    let v1 = try checkParts(Engine<V1Kernel>.self, m, m.reference)
    let v2 = try checkParts(Engine<V2Kernel>.self, m, m.reference)
    XCTAssertEqual(v1, v2)
    // The same market with accounts.csv and securities.csv listed backwards (not in id
    // order: V1 then ranks them through tables): the same rows, in the same order. (The
    // edit rebuilds the reference's id lookups; V1 adopted the parser's stale ones and
    // sold from other accounts' positions before ReferenceData kept them in step.)
    var backwards = m.reference
    let (accounts, securities) = (Int32(backwards.accounts.count), Int32(backwards.securities.count))
    backwards.accounts.reverse()
    backwards.securities.reverse()
    for i in backwards.holdings.indices {
      backwards.holdings[i].account = accounts - 1 - backwards.holdings[i].account
      backwards.holdings[i].security = securities - 1 - backwards.holdings[i].security
    }
    XCTAssertEqual(try checkParts(Engine<V1Kernel>.self, m, backwards), v1)
    XCTAssertEqual(try checkParts(Engine<V2Kernel>.self, m, backwards), v1)
  }

  /// The kernel's holdings rows, checked against its walk in parts.
  private func checkParts<K: BusinessKernel>(_: Engine<K>.Type, _ m: TestMarket, _ reference: ReferenceData)
    throws -> [String]
  {
    var engine = Engine<K>(reference: reference)
    for (i, line) in m.lines.enumerated() { engine.apply(line: line, seq: Int64(i + 1)) }
    func row(_ a: Ident, _ s: Ident, _ q: Int64, _ av: Int64, _ w: Int64) -> String {
      "\(a.text),\(s.text),\(q),\(av),\(w)"
    }
    var whole: [String] = []
    engine.state.forEachHolding { whole.append(row($0, $1, $2, $3, $4)) }
    let perAccount = Dictionary(grouping: whole, by: { $0.prefix(while: { $0 != "," }) })
    XCTAssertGreaterThan(perAccount.values.map(\.count).max() ?? 0, 8, "an account beyond eight securities")
    for parts in [1, 2, 3, 4, 7, 8] {
      var joined: [String] = []
      for part in 0..<parts {
        engine.state.forEachHolding(part: part, of: parts) { joined.append(row($0, $1, $2, $3, $4)) }
      }
      XCTAssertEqual(joined, whole, "\(engine.state.kernelName) in \(parts) parts")
    }
    return whole
  }

  /// `renderHoldings`' `afterFirstPart` (where `writeOutputs` renders the six small
  /// files) runs once, on the calling thread, when the header and the first part's rows
  /// are handed over and no later part's are; the file is the same bytes either way.
  func testTheCallerWorksBetweenTheFirstPartAndTheLaterOnes() throws {
    let m = try TestMarket.generate("first-part", seed: 45, days: 2, tradesPerDay: 300, accounts: 60)
    defer { removeDirectory(m.directory) }
    var engine = Engine<V1Kernel>(reference: m.reference)
    for (i, line) in m.lines.enumerated() { engine.apply(line: line, seq: Int64(i + 1)) }
    let whole = try XCTUnwrap(engine.outputFiles().first { $0.name == "holdings.csv" }?.bytes)
    for parts in [1, 3] {
      var firstPartRows = 0
      engine.state.forEachHolding(part: 0, of: parts) { _, _, _, _, _ in firstPartRows += 1 }
      XCTAssertGreaterThan(firstPartRows, 0)
      // The header and the first part's rows: that many line ends from the start.
      let newlines = whole.indices.filter { whole[$0] == UInt8(ascii: "\n") }
      let firstPartBytes = newlines[firstPartRows] + 1
      let caller = Thread.current
      var handed: [UInt8] = []
      var handedAtCall: [Int] = []
      ReportWriter.renderHoldings(
        kernel: engine.state, chunkBytes: 37, parts: parts,
        afterFirstPart: {
          XCTAssertTrue(Thread.current == caller, "on the calling thread")
          handedAtCall.append(handed.count)
        }
      ) { handed += $0 }
      XCTAssertEqual(handedAtCall, [firstPartBytes], "in \(parts) parts")
      XCTAssertEqual(handed, whole, "in \(parts) parts")
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
