// The differential test of kernel versions (issue 11): thousands of generated and
// mutated streams, v1 against v2, event by event; and the check is not blind: each
// planted fault, in either version, is found.
import Foundation
import KernelAPI
import KernelV1
import MarketGenerator
import TallyEngine
import XCTest

@testable import TallyChaos

extension XCTestCase {
  /// A fresh temporary folder, removed when the test ends.
  func makeWorkDirectory(_ prefix: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.path + "/\(prefix)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    return path
  }
}

final class KernelDifferentialTests: XCTestCase {
  func workDirectory() throws -> String { try makeWorkDirectory("tally-diff") }

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

/// TRADEs handed to a kernel in groups (`BusinessKernel.applyTrades`, where V1 and V2
/// overlap the trades' memory loads) must give what one `applyTrade` after another gives.
final class TradeGroupTests: XCTestCase {
  func workDirectory() throws -> String { try makeWorkDirectory("tally-groups") }

  func testTradesInGroupsEqualOneAtATimeInBothVersions() throws {
    var o = DifferentialOptions(seed: 20_261_203)
    o.markets = 3
    o.streamsPerMarket = 100
    let r = try KernelDifferential.runGrouped(o, workDirectory: try workDirectory())
    XCTAssertEqual(r.failures.map(\.description), [], "first failure names its seed and stream")
    XCTAssertEqual(r.streams, 300)
    XCTAssertGreaterThan(r.events, 10_000)
    XCTAssertGreaterThan(r.rejected, 300, "mutations make rejections (repeated trades among them)")
  }

  /// The check is not blind: a kernel whose grouped path applies a group's first line
  /// again in place of each later trade is caught, at the first such trade.
  func testTheGroupCheckCatchesAKernelThatGroupsWrongly() throws {
    let dir = try workDirectory() + "/market"
    var options = MarketOptions(
      seed: 5, days: 2, tradesPerDay: 40, accounts: 12, securities: 3, participants: 2)
    options.badLinesPerMillion = 0
    _ = try MarketGenerator.generate(options, into: dir)
    let reference = try FileIO.loadReference(dir + "/reference")
    let lines = EmbeddedRun.lines(of: [try FileIO.read(dir + "/events.txt")]).map { Array($0) }
    var rng = DiffRandom(seed: 1)
    let good = KernelDifferential.compareGrouped(
      V1Kernel.self, fault: nil, name: "v1", reference: reference, lines: lines, rng: &rng)
    XCTAssertNil(good.failure)
    rng = DiffRandom(seed: 1)
    let bad = KernelDifferential.compareGrouped(
      FirstLineAgain.self, fault: nil, name: "first-line-again", reference: reference, lines: lines, rng: &rng
    )
    let failure = try XCTUnwrap(bad.failure, "a wrong grouped path went unnoticed")
    XCTAssertTrue(failure.description.contains("outcome"), failure.description)
    XCTAssertTrue(failure.description.contains("DUPLICATE_TRADE"), failure.description)
  }
}

/// V1, except that `applyTrades` applies the group's first line again for every later
/// trade (with the later trade's seq): a wrong grouped path for the check to catch.
struct FirstLineAgain: BusinessKernel {
  var inner: V1Kernel
  static var versionName: String { "v1" }
  init(reference: ReferenceData, plantedFault: PlantedFault?) {
    inner = V1Kernel(reference: reference, plantedFault: plantedFault)
  }
  var plantedFault: PlantedFault? { inner.plantedFault }
  static func restore(
    opening: consuming FirstLineAgain, stored: ((StateTable, Int32, [UInt8]) throws -> Void) throws -> Void
  ) throws -> FirstLineAgain {
    var k = opening
    k.inner = try V1Kernel.restore(opening: k.inner, stored: stored)
    return k
  }
  var appliedSeq: Int64 { inner.appliedSeq }
  mutating func apply(_ event: Event, seq: Int64) -> Outcome { inner.apply(event, seq: seq) }
  mutating func applyTrade(_ trade: TradeLine, line: UnsafeRawBufferPointer, seq: Int64) -> Outcome {
    inner.applyTrade(trade, line: line, seq: seq)
  }
  mutating func applyTrades(
    _ trades: UnsafeBufferPointer<TradeInput>, bytes: UnsafeRawBufferPointer,
    outcomes: UnsafeMutableBufferPointer<Outcome>
  ) {
    for i in trades.indices {
      let t = trades[0]
      outcomes[i] = inner.applyTrade(
        t.trade, line: UnsafeRawBufferPointer(rebasing: bytes[t.line]), seq: trades[i].seq)
    }
  }
  mutating func reserveCapacity(events: Int) { inner.reserveCapacity(events: events) }
  mutating func enableEffects() { inner.enableEffects() }
  mutating func takeEffects() -> [UInt8] { inner.takeEffects() }
  func snapshotEffects() -> [UInt8] { inner.snapshotEffects() }
  func forEachEncodedRow(_ body: (StateTable, Int32, [UInt8]) -> Void) { inner.forEachEncodedRow(body) }
  mutating func setChangeTracking(_ on: Bool) { inner.setChangeTracking(on) }
  mutating func takeChangedRows(into w: inout ByteWriter, _ body: (StateTable, Int32, Range<Int>) -> Void) {
    inner.takeChangedRows(into: &w, body)
  }
  mutating func forgetChanges() { inner.forgetChanges() }
  func report(holdings: Bool) -> Report { inner.report(holdings: holdings) }
  func forEachHolding(
    _ body: (_ account: Ident, _ security: Ident, _ quantity: Int64, _ available: Int64, _ withheld: Int64) ->
      Void
  ) { inner.forEachHolding(body) }
  func selfCheckViolations(limit: Int) -> [String] { inner.selfCheckViolations(limit: limit) }
}
