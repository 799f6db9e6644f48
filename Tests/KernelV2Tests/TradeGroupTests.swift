// `applyTrades` (V2TradeGroups.swift: look-ahead prefetch stages, then `applyTrade` per
// trade) against one `applyTrade` after another: the same outcomes, effect bytes and
// rows, whatever the cut of the TRADE runs into calls (groups straddle calls, a call
// ends mid-group, a single trade), and whether or not the trades were resolved first
// (`tradeResolver`: by a resolver made at the start, which misses every identifier added
// since, or by one made afresh before each call).
import Foundation
import KernelAPI
import KernelV2
import TallyFormat
import XCTest

final class TradeGroupTests: XCTestCase {
  struct Run {
    var kernel: V2Kernel
    var outcomes: [Outcome]
    var effects: [UInt8]
  }

  /// Applies the file's lines; consecutive TRADE lines go to `applyTrades` in calls of
  /// at most `callSizes[k % callSizes.count]` trades (k: the call's number), or one by
  /// one through `applyTrade` when `callSizes` is empty.
  enum Resolving { case none, atStart, perCall }

  func run(_ dir: String, callSizes: [Int], effects: Bool, resolving: Resolving = .none) throws -> Run {
    var k = V2Kernel(reference: try loadReference(dir + "/reference"), plantedFault: nil)
    let first = k.tradeResolver()
    XCTAssertNotNil(first)
    if effects { k.enableEffects() }
    var fx = effects ? k.snapshotEffects() : []
    var outcomes: [Outcome] = []
    var calls = 0
    var pending: [(TradeLine, ArraySlice<UInt8>, Int64)] = []

    func flush() {
      var i = 0
      while i < pending.count {
        let size = callSizes[calls % callSizes.count]
        calls += 1
        let part = pending[i..<min(i + size, pending.count)]
        var bytes: [UInt8] = []
        var inputs: [TradeInput] = []
        for (trade, line, seq) in part {
          inputs.append(TradeInput(trade: trade, line: bytes.count..<bytes.count + line.count, seq: seq))
          bytes += line
        }
        let resolver: (any TradeResolver)? =
          switch resolving {
          case .none: nil
          case .atStart: first
          case .perCall: k.tradeResolver()
          }
        if let resolver {
          bytes.withUnsafeBytes { b in
            inputs.withUnsafeMutableBufferPointer { resolver.resolve($0, bytes: b) }
          }
          XCTAssert(inputs.allSatisfy { $0.hints.isSet })
        }
        var out = [Outcome](repeating: .applied, count: inputs.count)
        inputs.withUnsafeBufferPointer { t in
          bytes.withUnsafeBytes { b in
            out.withUnsafeMutableBufferPointer { o in k.applyTrades(t, bytes: b, outcomes: o) }
          }
        }
        outcomes += out
        if effects { fx += k.takeEffects() }
        i += size
      }
      pending.removeAll()
    }

    for (i, line) in eventLines(dir + "/events.txt").enumerated() {
      let seq = Int64(i + 1)
      if !callSizes.isEmpty, let trade = EventParser.tradeLine(line) {
        pending.append((trade, line, seq))
        continue
      }
      flush()
      outcomes.append(applyLine(&k, line, seq: seq))
      if effects { fx += k.takeEffects() }
    }
    flush()
    return Run(kernel: k, outcomes: outcomes, effects: fx)
  }

  func testGroupsEqualOneTradeAfterAnother() throws {
    let names = try FileManager.default.contentsOfDirectory(atPath: fixturesRoot).sorted()
    XCTAssertFalse(names.isEmpty)
    for name in names {
      let dir = fixturesRoot + "/" + name
      for effects in [true, false] {
        let one = try run(dir, callSizes: [], effects: effects)
        for sizes in [[4096], [1], [16], [17, 3, 40], [31, 1, 15]] {
          for resolving in [Resolving.none, .atStart, .perCall] {
            let grouped = try run(dir, callSizes: sizes, effects: effects, resolving: resolving)
            let what = "\(name) \(sizes) \(resolving)"
            XCTAssertEqual(grouped.outcomes, one.outcomes, what)
            XCTAssertEqual(grouped.effects, one.effects, "\(what) effects")
            XCTAssertEqual(rowsText(grouped.kernel), rowsText(one.kernel), "\(what) rows")
            XCTAssertEqual(grouped.kernel.selfCheckViolations(limit: 10), [], what)
          }
        }
      }
    }
  }
}
