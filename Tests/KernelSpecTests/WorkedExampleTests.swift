// SPEC: examples/basic reproduced byte for byte (the expected files are part of the contract).
// The example is a copy of shared/examples/basic kept in the repository (Tests/Fixtures/basic),
// found relative to this file, so the tests run from any clone.
import Foundation
import KernelAPI
import KernelV1
import TallyEngine
import TallyFormat
import XCTest

final class WorkedExampleTests: XCTestCase {
  /// <package>/Tests/Fixtures/basic, from this file's own path.
  static let example = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()  // TallyCoreTests
    .deletingLastPathComponent()  // Tests
    .appendingPathComponent("Fixtures/basic").path

  func read(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
  }

  /// Runs the example's events through the engine with `kernel`; returns the seven files by name.
  func runExample(_ kernel: String) throws -> [String: String] {
    let root = Self.example
    let ref = try ReferenceParser.parse(prefix: root + "/reference") { name in
      try? self.read(root + "/reference/" + name)
    }
    let engine = try AnyEngine(kernel: kernel, reference: ref)
    var seq: Int64 = 0
    for (_, line) in LineReader(try read(root + "/events.txt")) where !EventParser.isSkipped(line) {
      seq += 1
      engine.apply(line: line, seq: seq)
    }
    XCTAssertEqual(seq, 33)
    XCTAssertEqual(engine.selfCheckViolations(), [])
    var files: [String: String] = [:]
    for file in engine.outputFiles() { files[file.name] = String(decoding: file.bytes, as: UTF8.self) }
    return files
  }

  func testFixtureIsTheSharedExample() throws {
    // The fixture must be a complete copy: the events, the six reference files, the seven expected files.
    let root = Self.example
    XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/events.txt"), root)
    XCTAssertEqual(
      try FileManager.default.contentsOfDirectory(atPath: root + "/reference").sorted(),
      ["accounts.csv", "calendar.csv", "holdings.csv", "participants.csv", "securities.csv", "units.csv"])
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/expected").count, 7)
  }

  func testBasicExampleIsReproducedExactly() throws {
    let root = Self.example
    let ref = try ReferenceParser.parse(prefix: root + "/reference") { name in
      try? self.read(root + "/reference/" + name)
    }
    var engine = Engine<V1Kernel>(reference: ref)
    var seq: Int64 = 0
    for (_, line) in LineReader(try read(root + "/events.txt")) where !EventParser.isSkipped(line) {
      seq += 1
      engine.apply(line: line, seq: seq)
    }
    XCTAssertEqual(seq, 33)
    XCTAssertEqual(engine.state.selfCheckViolations(), [])
    let produced = engine.outputFiles()
    XCTAssertEqual(
      produced.map { $0.name }.sorted(),
      [
        "balances.csv", "clearing.csv", "entitlements.csv", "holdings.csv", "rejections.csv",
        "settlement.csv", "tax.csv",
      ])
    for file in produced {
      let expected = String(decoding: try read(root + "/expected/" + file.name), as: UTF8.self)
      XCTAssertEqual(String(decoding: file.bytes, as: UTF8.self), expected, file.name)
    }
  }

  func testBasicExampleSpotChecksByHand() throws {
    // A few of the example's figures re-derived from the SPEC by hand and checked against what
    // the engine computes now (both kernels), so the test above is not only a comparison with
    // a file that could have been produced by the same code:
    // - trade 9 (20260107): 10.20 x 750 = 7650.00 on both sides of P0001 (units 10001 both);
    //   trade 10 (510300) is cancelled after CLOSE and trade 11 is MALFORMED (price 10.2001),
    //   so P0001's 600000 row of 0107 is trade 9 alone:
    //   handling 7650 x 0.0000341 = 0.260865 -> 0.26 per side, 0.52;
    //   regulatory 7650 x 0.00002 = 0.153 -> 0.15 per side, 0.30;
    //   transfer 7650 x 0.00001 = 0.0765 -> 0.08 per side, 0.16;
    //   stamp (sell only) 7650 x 0.0005 = 3.825 -> 3.83.
    // - tax of trade 9: A000000001 sells 750 of 600000; its lots (20241201 x1000, 20251220 x500)
    //   lost 300 to trade 1 on 0105 (from the 20241201 lot, before any dividend), so at CLOSE 0106
    //   the lots are 700 (20241201) and 500 (20251220), both accruing 0.25. Trade 9 takes 700 of the
    //   20241201 lot (402 days -> 0%) and 50 of the 20251220 lot (18 days -> 20%):
    //   50 x 0.25 x 0.2 = 2.50.
    // - bonus 7:2 at CLOSE 0107: A000000001 1200 - 750 = 450, A000000002 300 (withheld, still
    //   held), B000000001 750 (trade 9): 900/7 = 128 r4, 600/7 = 85 r5, 1500/7 = 214 r2;
    //   total floor(3000/7) = 428, 427 given, the one left over to A000000002 (remainder 5): 86.
    // - rejections: trade 1 repeated (seq 13, DUPLICATE_TRADE), trade 11 (seq 27, MALFORMED).
    let rows = try ReferenceParser.parse(prefix: Self.example + "/reference") { name in
      try? self.read(Self.example + "/reference/" + name)
    }.feeRows
    _ = rows
    for kernel in KernelCatalog.versions.map(\.name) {
      let files = try runExample(kernel)
      let name = kernel
      XCTAssertEqual(files["tax.csv"], csv(Header.tax, "20260107,9,A000000001,600000,750,2.50"), name)
      let clearing = files["clearing.csv"] ?? ""
      XCTAssertTrue(
        clearing.contains("\n20260107,20260108,P0001,600000,750,750,7650.00,7650.00,0.52,0.30,0.16,3.83\n"),
        "\(name): \(clearing)")
      let ent = files["entitlements.csv"] ?? ""
      XCTAssertTrue(ent.contains("600000,20260107,20260108,A000000001,SHARES,128\n"), "\(name): \(ent)")
      XCTAssertTrue(ent.contains("600000,20260107,20260108,A000000002,SHARES,86\n"), "\(name): \(ent)")
      XCTAssertTrue(ent.contains("600000,20260107,20260108,B000000001,SHARES,214\n"), "\(name): \(ent)")
      let rejections = files["rejections.csv"] ?? ""
      XCTAssertTrue(rejections.contains("\n13,TRADE,1,DUPLICATE_TRADE\n"), "\(name): \(rejections)")
      XCTAssertTrue(rejections.contains("\n27,TRADE,11,MALFORMED\n"), "\(name): \(rejections)")
    }
  }
}
