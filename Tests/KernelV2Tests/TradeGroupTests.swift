// `applyTrades` (V2TradeGroups.swift: look-ahead prefetch stages, then `applyTrade` per
// trade) against one `applyTrade` after another: the same outcomes, effect bytes and
// rows, whatever the cut of the TRADE runs into calls (groups straddle calls, a call
// ends mid-group, a single trade).
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
  func run(_ dir: String, callSizes: [Int], effects: Bool) throws -> Run {
    var k = V2Kernel(reference: try loadReference(dir + "/reference"), plantedFault: nil)
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
          let grouped = try run(dir, callSizes: sizes, effects: effects)
          XCTAssertEqual(grouped.outcomes, one.outcomes, "\(name) \(sizes)")
          XCTAssertEqual(grouped.effects, one.effects, "\(name) \(sizes) effects")
          XCTAssertEqual(rowsText(grouped.kernel), rowsText(one.kernel), "\(name) \(sizes) rows")
          XCTAssertEqual(grouped.kernel.selfCheckViolations(limit: 10), [], "\(name) \(sizes)")
        }
      }
    }
  }
}
