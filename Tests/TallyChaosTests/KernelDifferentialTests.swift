// The differential test of kernel versions (issue 11): thousands of generated and
// mutated streams, v1 against v2, event by event; and the check is not blind: each
// planted fault, in either version, is found.
import Foundation
import TallyChaos
import TallyEngine
import XCTest

final class KernelDifferentialTests: XCTestCase {
  func workDirectory() throws -> String {
    let path = FileManager.default.temporaryDirectory.path + "/tally-diff-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
  }

  func testVersionsAgreeOnEveryEventOfAThousandMutatedStreams() throws {
    var o = DifferentialOptions(seed: 20_261_202)
    o.markets = 4
    o.streamsPerMarket = 250
    let r = try KernelDifferential.run(o, workDirectory: try workDirectory())
    XCTAssertEqual(r.failures.map(\.description), [], "first failure names its seed and stream")
    XCTAssertEqual(r.streams, 1_000)
    XCTAssertGreaterThan(r.events, 50_000)
    XCTAssertGreaterThan(r.rejected, 1_000, "mutations make rejections")
    for (kind, count) in r.mutationCounts {
      XCTAssertGreaterThan(count, 20, "mutation \(kind) happened too rarely to count")
    }
  }

  func testEveryPlantedFaultInEitherVersionIsFound() throws {
    let work = try workDirectory()
    for version in KernelCatalog.versions.map(\.name) {
      for fault in ["faulty", "faulty-transfer", "faulty-settlement", "faulty-action"] {
        var o = DifferentialOptions(seed: 77)
        o.markets = 3
        o.streamsPerMarket = 60
        o.kernelA = version == "v1" ? "v2" : "v1"
        o.kernelB = "\(version)-\(fault)"
        let r = try KernelDifferential.run(o, workDirectory: work)
        let f = try XCTUnwrap(r.failures.first, "\(o.kernelB) went unnoticed over \(r.streams) streams")
        XCTAssertGreaterThan(f.seq, 0)
        XCTAssertTrue(f.description.contains("seed 77"), f.description)
      }
    }
  }
}
