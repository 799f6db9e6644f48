// `reserveCapacity(events:)` writes the pages of spare capacity (`prefault`): an empty
// table gets a new buffer, a non-empty one fillers appended and dropped. Neither may
// change a row: a run that reserves before its events and again every few events must
// end with the rows, outcomes and effects of a run that never reserves.
import Foundation
import KernelAPI
import KernelV2
import XCTest

final class ReserveCapacityTests: XCTestCase {
  func run(_ dir: String, reserveEvery: Int?) throws -> (rows: String, outcomes: [Outcome], effects: [UInt8])
  {
    var k = V2Kernel(reference: try loadReference(dir + "/reference"), plantedFault: nil)
    k.enableEffects()
    let lines = eventLines(dir + "/events.txt")
    if reserveEvery != nil { k.reserveCapacity(events: lines.count) }
    var outcomes: [Outcome] = []
    var effects: [UInt8] = []
    for (i, line) in lines.enumerated() {
      if let every = reserveEvery, i % every == every - 1 { k.reserveCapacity(events: every) }
      outcomes.append(applyLine(&k, line, seq: Int64(i + 1)))
      effects += k.takeEffects()
    }
    XCTAssertEqual(k.selfCheckViolations(limit: 10), [])
    return (rowsText(k), outcomes, effects)
  }

  func testReservingChangesNoRow() throws {
    let names = try FileManager.default.contentsOfDirectory(atPath: fixturesRoot).sorted()
    XCTAssertFalse(names.isEmpty)
    for name in names {
      let dir = fixturesRoot + "/" + name
      let plain = try run(dir, reserveEvery: nil)
      for every in [1, 7, 500] {
        let reserved = try run(dir, reserveEvery: every)
        XCTAssertEqual(reserved.outcomes, plain.outcomes, "\(name) every \(every)")
        XCTAssertEqual(reserved.effects, plain.effects, "\(name) every \(every) effects")
        XCTAssertEqual(reserved.rows, plain.rows, "\(name) every \(every) rows")
      }
    }
  }
}
