// SPEC sets no bound on how many participants a reference lists. A kernel that packed a
// participant's row id into 16 bits would wrap (or stop) past 65,536: both kernels run a
// reference with more, trades cleared for a participant beyond that count, and agree on
// every output and the digest.
import Foundation
import KernelAPI
import KernelV1
import KernelV2
import TallyEngine
import XCTest

final class WideReferenceTests: XCTestCase {
  func testMoreThan65536ParticipantsClearAlikeInBothKernels() throws {
    let m = try TestMarket.generate("wide-participants", seed: 53, days: 2, tradesPerDay: 200, accounts: 40)
    defer { removeDirectory(m.directory) }
    let folder = m.directory + "/reference"
    // 70,000 more participants; every unit of the first listed one moves to the last.
    let participants = try String(contentsOfFile: folder + "/participants.csv", encoding: .utf8)
    let rows = participants.split(separator: "\n")
    let moved = String(rows[1].split(separator: ",")[0])
    let extra = (0..<70_000).map { String(format: "Z%06d,Extra %d", $0, $0) }
    try (rows.map(String.init) + extra).joined(separator: "\n").appending("\n")
      .write(toFile: folder + "/participants.csv", atomically: true, encoding: .utf8)
    let units = try String(contentsOfFile: folder + "/units.csv", encoding: .utf8)
    let last = "Z069999"
    let rewritten = units.split(separator: "\n").map { line -> String in
      let fields = line.split(separator: ",")
      return fields.count == 2 && fields[1] == moved ? "\(fields[0]),\(last)" : String(line)
    }
    XCTAssertNotEqual(rewritten.joined(), units.split(separator: "\n").joined(), "some unit moved")
    try (rewritten.joined(separator: "\n") + "\n").write(
      toFile: folder + "/units.csv", atomically: true, encoding: .utf8)

    let reference = try FileIO.loadReference(folder)
    XCTAssertGreaterThan(reference.participants.count, 70_000)
    var v1 = Engine<V1Kernel>(reference: reference)
    var v2 = Engine<V2Kernel>(reference: reference)
    for (i, line) in m.lines.enumerated() {
      XCTAssertEqual(
        v1.apply(line: line, seq: Int64(i + 1)), v2.apply(line: line, seq: Int64(i + 1)), "line \(i + 1)")
    }
    let out = outputs(v1)
    let clearing = String(decoding: out["clearing.csv"] ?? [], as: UTF8.self)
    XCTAssertTrue(clearing.contains("," + last + ","), "a participant beyond 65,536 cleared trades")
    assertSameOutputs(out, outputs(v2))
    XCTAssertEqual(v1.stateDigest, v2.stateDigest)
  }
}
