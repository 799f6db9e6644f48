// V2's one walk of a durable snapshot (`takeChangedRowsAndChecksum`) against the two
// calls it stands for, `takeChangedRows(into:_:)` then `computeChecksum()`, on the
// fixtures with and without planted faults: the same rows handed over, the same
// checksum, the same rows left changed. And the walk's trade row encoder against the
// canonical `TradeRecord` encoding of every trade row, a restored row whose clearing
// figures differ from the recomputed ones and decimal ids of every length included.
import KernelAPI
import XCTest

@testable import KernelV2

final class SnapshotWalkTests: XCTestCase {
  static let fixtures = ["edge", "edge-lots", "gen-seed21", "gen-seed22", "gen-seed23"]

  /// What `take` hands over, as text (table, id, bytes), and what it returns.
  private func taken(_ take: (inout ByteWriter, (StateTable, Int32, Range<Int>) -> Void) -> StateChecksum?)
    -> (rows: [String], checksum: StateChecksum?)
  {
    var w = ByteWriter()
    // Bytes already in the writer stay.
    w.i32(0x0102_0304)
    var ranges: [(StateTable, Int32, Range<Int>)] = []
    let checksum = take(&w) { ranges.append(($0, $1, $2)) }
    XCTAssertEqual(Array(w.bytes.prefix(4)), [4, 3, 2, 1])
    return (ranges.map { "\($0.0.name) \($0.1) \(Array(w.bytes[$0.2]))" }, checksum)
  }

  private func compare(_ k: V2Kernel, _ label: String) {
    var apart = k
    var together = k
    let expected = taken { w, body in
      apart.takeChangedRows(into: &w, body)
      return apart.computeChecksum()
    }
    let actual = taken { w, body in together.takeChangedRowsAndChecksum(into: &w, body) }
    XCTAssertEqual(actual.rows, expected.rows, "\(label): the changed rows")
    XCTAssertEqual(actual.checksum, expected.checksum, "\(label): the checksum")
    let nextApart = taken { w, body in
      apart.takeChangedRows(into: &w, body)
      return nil
    }
    let nextTogether = taken { w, body in
      together.takeChangedRows(into: &w, body)
      return nil
    }
    XCTAssertEqual(nextTogether.rows, nextApart.rows, "\(label): the rows left changed")
  }

  func testOneWalkTakesTheSameRowsAndChecksum() throws {
    for name in Self.fixtures {
      let dir = fixturesRoot + "/" + name
      let reference = try loadReference(dir + "/reference")
      let lines = eventLines(dir + "/events.txt")
      for fault in [nil, PlantedFault.feeRounding, .transfer] {
        for tracking in [true, false] {
          let label = "\(name) fault \(fault?.rawValue ?? "none") tracking \(tracking)"
          var k = V2Kernel(reference: reference, plantedFault: fault)
          k.setChangeTracking(tracking)
          for (i, line) in lines.enumerated() {
            applyLine(&k, line, seq: Int64(i + 1))
            // Rows taken on the way (a commit's), so that old rows are listed as changed.
            if i == lines.count / 2 {
              var w = ByteWriter()
              k.takeChangedRows(into: &w) { _, _, _ in }
            }
            if i == lines.count * 3 / 4 { compare(k, label + " at line \(i + 1)") }
          }
          compare(k, label)
        }
      }
    }
  }

  func testTradeRowsEncodeAsTheirCanonicalRecords() throws {
    for name in Self.fixtures {
      let dir = fixturesRoot + "/" + name
      let reference = try loadReference(dir + "/reference")
      for fault in [nil, PlantedFault.feeRounding, .transfer] {
        var k = V2Kernel(reference: reference, plantedFault: fault)
        for (i, line) in eventLines(dir + "/events.txt").enumerated() {
          applyLine(&k, line, seq: Int64(i + 1))
        }
        checkTradeRows(k, "\(name) fault \(fault?.rawValue ?? "none")")
      }
    }
  }

  func testRestoredTradeRowWithOtherFiguresEncodesAsStored() throws {
    let dir = fixturesRoot + "/gen-seed21"
    guard
      var restored = try restoreWithEditedTradeRow(
        dir,
        edit: { t in
          t.clearing.sellerFees.transfer += 3
          t.clearing.sellerNetFen -= 3
        })?.restored
    else { return }
    XCTAssertFalse(restored.clearingOverrides.isEmpty, "the restored row keeps its own figures")
    checkTradeRows(restored, "restored")
    restored.setChangeTracking(true)
    applyLine(&restored, eventLines(dir + "/events.txt")[0], seq: restored.appliedSeq + 1)
    compare(restored, "restored")
  }

  private func checkTradeRows(_ k: V2Kernel, _ label: String) {
    XCTAssertFalse(k.trades.isEmpty, "\(label): trade rows")
    var rates = V2WalkRates()
    for id in k.trades.indices {
      var expected = ByteWriter()
      k.tradeRecord(id).encode(into: &expected)
      var actual = ByteWriter()
      k.encodeTradeRow(id, rates: &rates, into: &actual)
      XCTAssertEqual(actual.bytes, expected.bytes, "\(label): trade row \(id)")
    }
  }

  func testDecimalIdsEncodeAsTheirText() {
    var values: [UInt64] = [0, 1, 9, 10, 99, 100, 12_345, 999_999_999_999_999, 1 << 62, (1 << 63) - 1]
    var p: UInt64 = 1
    for _ in 0..<19 {
      values += [p - 1, p, p + 1]
      p *= 10
    }
    for v in values {
      var expected = ByteWriter()
      expected.string(String(v))
      var actual = [UInt8](repeating: 0, count: 24)
      let n = actual.withUnsafeMutableBytes { b in
        var c = V2Cursor(b.baseAddress!)
        V2Kernel.writeDecimal(v, into: &c)
        return c.p - b.baseAddress!
      }
      XCTAssertEqual(Array(actual[..<n]), expected.bytes, "\(v)")
    }
  }
}
