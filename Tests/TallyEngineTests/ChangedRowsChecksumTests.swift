// `BusinessKernel.takeChangedRowsAndChecksum` (a durable snapshot's one walk) against
// the two calls it stands for, `takeChangedRows(into:_:)` then `computeChecksum()`, on
// copies of one kernel: the same rows handed over (table, id, bytes, in order), the same
// checksum, and the same rows left changed afterwards. Both versions (V1 encodes each
// row once for both; V2 keeps the protocol's default), at cuts across a generated
// market's days, with rows taken in between and with change tracking off.
import Foundation
import KernelAPI
import KernelV1
import KernelV2
import MarketGenerator
import TallyEngine
import TallyFormat
import XCTest

final class ChangedRowsChecksumTests: XCTestCase {
  private func market(seed: UInt64) throws -> (ReferenceData, [ArraySlice<UInt8>]) {
    var options = MarketOptions(
      seed: seed, days: 3, tradesPerDay: 700, accounts: 200, securities: 12, participants: 4)
    options.cancelsPerMillion = 10_000
    options.badLinesPerMillion = 5_000
    return try TestMarket.loaded("changed-rows-\(seed)", options)
  }

  /// The rows `take` hands over, as text (table, id, bytes), and what it returns.
  private func taken(_ take: (inout ByteWriter, (StateTable, Int32, Range<Int>) -> Void) -> StateChecksum?)
    -> (rows: [String], checksum: StateChecksum?)
  {
    var w = ByteWriter()
    // A few bytes already in the writer (a failed commit's rows stay there): kept.
    w.i64(0x0102_0304_0506_0708)
    var ranges: [(StateTable, Int32, Range<Int>)] = []
    let checksum = take(&w) { ranges.append(($0, $1, $2)) }
    XCTAssertEqual(Array(w.bytes.prefix(8)), [8, 7, 6, 5, 4, 3, 2, 1], "the writer's earlier bytes stay")
    let rows = ranges.map { "\($0.0.name) \($0.1) \(Array(w.bytes[$0.2]).hexString)" }
    return (rows, checksum)
  }

  private func check<K: BusinessKernel>(_: K.Type) throws {
    let (reference, lines) = try market(seed: 28)
    var cuts = [1, lines.count / 5, lines.count / 2, lines.count - 3, lines.count]
    for (i, line) in lines.enumerated() where line.starts(with: Array("CLOSE".utf8)) { cuts.append(i + 1) }
    cuts.sort()
    var checkedRows = 0
    for (n, cut) in cuts.enumerated() {
      let label = "\(K.versionName) cut after line \(cut)"
      var e = Engine<K>(reference: reference, plantedFault: nil)
      e.setChangeTracking(n % 4 != 3)
      for i in 0..<cut {
        e.apply(line: lines[i], seq: Int64(i + 1))
        // Some rows taken on the way, as a commit takes them.
        if i == cut / 3 {
          _ = taken { w, body in
            e.takeChangedRows(into: &w, body); return nil
          }
        }
      }
      var apart = e
      var together = e
      let expected = taken { w, body in
        apart.takeChangedRows(into: &w, body)
        return apart.state.computeChecksum()
      }
      let actual = taken { w, body in together.takeChangedRowsAndChecksum(into: &w, body) }
      XCTAssertEqual(actual.rows, expected.rows, "\(label): the changed rows")
      XCTAssertEqual(actual.checksum, expected.checksum, "\(label): the checksum")
      XCTAssertEqual(actual.checksum, e.state.computeChecksum(), "\(label): the checksum of the state")
      checkedRows += actual.rows.count
      // Both forgot the same rows: the next take finds the same (none, or what a later event changes).
      e.apply(line: lines[0], seq: Int64(cut + 1))  // a line applied again (a rejection, most likely)
      apart.apply(line: lines[0], seq: Int64(cut + 1))
      together.apply(line: lines[0], seq: Int64(cut + 1))
      let nextApart = taken { w, body in
        apart.takeChangedRows(into: &w, body); return nil
      }
      let nextTogether = taken { w, body in
        together.takeChangedRows(into: &w, body); return nil
      }
      XCTAssertEqual(nextTogether.rows, nextApart.rows, "\(label): the rows changed afterwards")
    }
    XCTAssertGreaterThan(checkedRows, 1_000, "\(K.versionName): rows were taken")
  }

  func testV1TakesTheSameRowsAndChecksumInOneWalk() throws { try check(V1Kernel.self) }

  func testV2TakesTheSameRowsAndChecksum() throws { try check(V2Kernel.self) }
}
