// TRADEs resolved ahead of their apply (`TradeResolver`, issue 8): a kernel applying
// resolved trades must give exactly what it gives applying them unresolved, line by
// line, including when the resolver is older than the participants, units and accounts
// the events before a trade added (the resolver's copy lacks them; the kernel looks
// them up itself), and when the resolving runs on the reader's thread.
import Foundation
import KernelAPI
import KernelV1
import TallyEngine
import TallyFormat
import XCTest

final class TradeResolverTests: XCTestCase {
  /// A generated market's lines with, in the middle of its first day, reference events
  /// adding a participant, a unit and two accounts, then TRADEs that name them (some
  /// buying from the day's sellers, one between the new accounts, one naming an account
  /// never added).
  func marketWithAdditions() throws -> (market: TestMarket, lines: [[UInt8]]) {
    let market = try TestMarket.generate("tally-resolver", days: 2, tradesPerDay: 300, accounts: 60)
    addTeardownBlock { removeDirectory(market.directory) }
    var lines = market.lines.map { Array($0) }
    let trades = lines.indices.filter { lines[$0].starts(with: Array("TRADE,".utf8)) }
    let middle = trades[trades.count / 4]
    var added = [
      "PARTICIPANT,PZ1,Added Member", "UNIT,UZ1,PZ1", "ACCOUNT,AZ1,INDIVIDUAL", "ACCOUNT,AZ2,INSTITUTION",
    ]
    // TRADE,id,date,time,security,price,quantity,buyAccount,buyUnit,sellAccount,sellUnit
    for (k, i) in trades[(trades.count / 4 + 1)...].prefix(12).enumerated() {
      var f = String(decoding: lines[i], as: UTF8.self).split(
        separator: ",", omittingEmptySubsequences: false
      )
      .map(String.init)
      f[1] = "Z\(k)"
      f[7] = k == 11 ? "AZ9" : "AZ1"  // AZ9: never added
      f[8] = "UZ1"
      added.append(f.joined(separator: ","))
      if k == 5 {
        // AZ1 sells some of what it bought to AZ2.
        var g = f
        g[1] = "Z\(k)S"
        g[6] = "100"
        (g[7], g[8], g[9], g[10]) = ("AZ2", "UZ1", "AZ1", "UZ1")
        added.append(g.joined(separator: ","))
      }
    }
    lines.insert(contentsOf: added.map { Array($0.utf8) }, at: middle + 1)
    return (market, lines)
  }

  struct Applied {
    var outcomes: [Outcome] = []
    var effects: [UInt8] = []
    var digest: [UInt8] = []
    var outputs: [String: [UInt8]] = [:]
  }

  func lineByLine(_ reference: ReferenceData, _ lines: [[UInt8]]) -> Applied {
    var engine = Engine<V1Kernel>(reference: reference)
    engine.enableEffects()
    var r = Applied()
    for (i, line) in lines.enumerated() {
      r.outcomes.append(engine.apply(line: line[...], seq: Int64(i + 1)))
    }
    r.effects = engine.takeEffects()
    (r.digest, r.outputs) = (engine.stateDigest, outputs(engine))
    return r
  }

  /// In groups of `group` lines, each resolved first by the resolver `resolver(engine)`
  /// gives for it (nil: not resolved).
  func inGroups(
    _ reference: ReferenceData, _ lines: [[UInt8]], group: Int,
    resolver: (Engine<V1Kernel>) -> (any TradeResolver)?
  ) -> Applied {
    var engine = Engine<V1Kernel>(reference: reference)
    engine.enableEffects()
    let (bytes, ranges) = EventLines.joined(lines)
    var r = Applied()
    var i = 0
    while i < lines.count {
      let n = min(group, lines.count - i)
      var got = [Outcome](repeating: .applied, count: n)
      engine.apply(lines: ranges[i..<(i + n)], of: bytes, firstSeq: Int64(i + 1), resolver: resolver(engine))
      {
        got[$0] = $1
      }
      r.outcomes += got
      i += n
    }
    r.effects = engine.takeEffects()
    (r.digest, r.outputs) = (engine.stateDigest, outputs(engine))
    return r
  }

  func assertSame(
    _ a: Applied, _ b: Applied, _ what: String, file: StaticString = #filePath, line: UInt = #line
  ) {
    XCTAssertEqual(a.outcomes, b.outcomes, "\(what): outcomes", file: file, line: line)
    XCTAssertTrue(a.effects == b.effects, "\(what): effect records differ", file: file, line: line)
    XCTAssertEqual(a.digest, b.digest, "\(what): state digest", file: file, line: line)
    assertSameOutputs(a.outputs, b.outputs, file: file, line: line)
  }

  func testResolvedTradesGiveWhatUnresolvedOnesGiveWithStaleAndFreshResolvers() throws {
    let (market, lines) = try marketWithAdditions()
    let plain = lineByLine(market.reference, lines)
    // The additions were applied and used: the test exercises ids a stale resolver lacks.
    XCTAssertTrue(
      plain.outputs["holdings.csv"].map { String(decoding: $0, as: UTF8.self) }?.contains("\nAZ1,") == true)
    XCTAssertTrue(plain.outcomes.contains(.rejected(.unknownAccount)))

    let opening = Engine<V1Kernel>(reference: market.reference)
    let stale = try XCTUnwrap(opening.state.tradeResolver(), "V1 has a resolver")
    for group in [1, 7, 64] {
      assertSame(
        plain, inGroups(market.reference, lines, group: group) { _ in stale },
        "stale resolver, groups of \(group)")
      assertSame(
        plain, inGroups(market.reference, lines, group: group) { $0.state.tradeResolver() },
        "fresh resolver, groups of \(group)")
      assertSame(
        plain, inGroups(market.reference, lines, group: group) { _ in nil }, "unresolved, groups of \(group)")
    }
  }

  /// What the hints say: a stale resolver leaves an added account for the kernel (-1),
  /// a fresh one has its row; the trade id's hash is set either way.
  func testAStaleResolverLeavesAddedAccountsToTheKernel() throws {
    let (market, lines) = try marketWithAdditions()
    var engine = Engine<V1Kernel>(reference: market.reference)
    let stale = try XCTUnwrap(engine.state.tradeResolver())
    let firstZ = try XCTUnwrap(lines.firstIndex { $0.starts(with: Array("TRADE,Z0,".utf8)) })
    for (i, line) in lines[..<firstZ].enumerated() { engine.apply(line: line[...], seq: Int64(i + 1)) }
    let fresh = try XCTUnwrap(engine.state.tradeResolver())
    let line = lines[firstZ]
    let parsed = try XCTUnwrap(EventParser.tradeLine(line[...]))
    func hints(_ r: any TradeResolver) -> TradeHints {
      var input = [TradeInput(trade: parsed, line: 0..<line.count, seq: 1)]
      line.withUnsafeBytes { raw in input.withUnsafeMutableBufferPointer { r.resolve($0, bytes: raw) } }
      return input[0].hints
    }
    let old = hints(stale)
    let new = hints(fresh)
    XCTAssertTrue(old.isSet && new.isSet)
    XCTAssertEqual(old.rows.0, -1, "AZ1 was added after the stale resolver was made")
    XCTAssertGreaterThanOrEqual(new.rows.0, 0, "the fresh resolver finds AZ1")
    XCTAssertEqual(old.rows.3, -1, "UZ1 too")
    XCTAssertGreaterThanOrEqual(new.rows.3, 0)
    XCTAssertEqual(old.rows.1, new.rows.1, "the seller was in the reference: both find the same row")
    XCTAssertGreaterThanOrEqual(old.rows.1, 0)
    XCTAssertEqual(old.key, new.key)
  }

  /// A resolver keeps its memo of securities and units between calls: resolving the
  /// day's trades again, through what it remembered, and in groups of other sizes, gives
  /// the hints a resolver made for one call gives.
  func testAResolverUsedAgainGivesTheHintsOfAFreshOne() throws {
    let market = try TestMarket.generate("tally-resolver-memo", days: 1, tradesPerDay: 400, accounts: 50)
    defer { removeDirectory(market.directory) }
    let engine = Engine<V1Kernel>(reference: market.reference)
    // The day's well-formed TRADE lines (the generator writes some bad ones too).
    let lines = market.lines.map { Array($0) }.filter { EventParser.tradeLine($0[...]) != nil }
    XCTAssertGreaterThan(lines.count, 300)
    let (bytes, ranges) = EventLines.joined(lines)
    let inputs = try ranges.enumerated().map { i, r in
      TradeInput(trade: try XCTUnwrap(EventParser.tradeLine(bytes[r])), line: r, seq: Int64(i + 1))
    }
    func hints(_ resolver: any TradeResolver, group: Int) -> [TradeHints] {
      var resolved = inputs
      bytes.withUnsafeBytes { raw in
        resolved.withUnsafeMutableBufferPointer { all in
          var start = 0
          while start < all.count {
            let end = min(start + group, all.count)
            resolver.resolve(UnsafeMutableBufferPointer(rebasing: all[start..<end]), bytes: raw)
            start = end
          }
        }
      }
      return resolved.map(\.hints)
    }
    func rows(_ h: [TradeHints]) -> [[Int32]] {
      h.map { [$0.rows.0, $0.rows.1, $0.rows.2, $0.rows.3, $0.rows.4, $0.rows.5] }
    }
    let once = hints(try XCTUnwrap(engine.state.tradeResolver()), group: inputs.count)
    XCTAssertTrue(once.allSatisfy { $0.isSet && $0.rows.2 >= 0 && $0.rows.3 >= 0 && $0.rows.4 >= 0 })
    let reused = try XCTUnwrap(engine.state.tradeResolver())
    for group in [inputs.count, 1, 13, inputs.count] {
      let again = hints(reused, group: group)
      XCTAssertEqual(rows(again), rows(once), "groups of \(group)")
      XCTAssertEqual(again.map(\.key), once.map(\.key))
      XCTAssertEqual(again.map(\.keyValue), once.map(\.keyValue))
    }
  }

  /// The reader's thread resolves the blocks split after the resolver is set; applied
  /// block by block, the run gives what line by line gives.
  func testTheReaderThreadResolvesBlocksOnceTheResolverIsSet() throws {
    let (market, lines) = try marketWithAdditions()
    let plain = lineByLine(market.reference, lines)
    let file = market.directory + "/with-additions.txt"
    try Data(lines.map { $0 + [10] }.joined()).write(to: URL(fileURLWithPath: file))
    let reader = EventLines.SplitBlockReader(files: [file], pieceBytes: 512)
    var engine = Engine<V1Kernel>(reference: market.reference)
    engine.enableEffects()
    reader.resolve(with: engine.state.tradeResolver())
    var outcomes: [Outcome] = []
    var resolvedTrades = 0
    try reader.forEach { block in
      resolvedTrades += block.split.trades.filter(\.hints.isSet).count
      var got = [Outcome](repeating: .applied, count: block.split.count)
      engine.apply(split: block.split, of: block.bytes) { got[$0] = $1 }
      outcomes += got
    }
    XCTAssertGreaterThan(resolvedTrades, 100, "blocks split after the resolver was set are resolved")
    var r = Applied()
    r.outcomes = outcomes
    r.effects = engine.takeEffects()
    (r.digest, r.outputs) = (engine.stateDigest, outputs(engine))
    assertSame(plain, r, "resolved on the reader's thread")
  }
}
