// V2's Int64 → row id table, sized to any number of slots (not a power of two): every
// key must be found exactly, whatever the size, across the wrap at the last slot and
// across growth; a reservation must hold its keys without growing again.
import XCTest

@testable import KernelV2

final class IntKeyTableTests: XCTestCase {
  /// Keys of the shapes V2 uses: (account << 32 | security), clearing keys, small days.
  static func key(_ i: Int) -> Int64 {
    switch i % 3 {
    case 0: return Int64(i / 3) << 32 | Int64(600_000 + i % 1_000)
    case 1: return Int64(i % 7) << 48 | Int64(i) << 24 | Int64(i % 1_000)
    default: return Int64(i)
    }
  }

  func testInsertOneByOneFindsEveryKeyAndNoOther() {
    var table = IntKeyTable()
    let n = 50_000
    for i in 0..<n {
      XCTAssertNil(table[Self.key(i)])
      table.insert(Self.key(i), Int32(i))
    }
    XCTAssertEqual(table.count, n)
    XCTAssertLessThanOrEqual(table.count * 3, table.slotCount * 2, "load above 2/3")
    for i in 0..<n { XCTAssertEqual(table[Self.key(i)], Int32(i)) }
    for i in n..<(n + 5_000) { XCTAssertNil(table[Self.key(i)]) }
    XCTAssertNil(table[-1])
  }

  func testInsertDenseMatchesInsertAndWraps() {
    // Small sizes: probes run past the last slot and wrap to slot 0.
    for n in [0, 1, 5, 10, 11, 12, 100, 1_023, 1_025, 3_000] {
      var dense = IntKeyTable()
      dense.insertDense(upTo: n) { Self.key($0) }
      XCTAssertEqual(dense.count, n)
      XCTAssertEqual(dense.slotCount, n == 0 ? IntKeyTable.slotsMin : IntKeyTable.slotsFor(n))
      for i in 0..<n { XCTAssertEqual(dense[Self.key(i)], Int32(i), "n \(n)") }
      XCTAssertNil(dense[Self.key(n)])
      // Then one by one past the reservation (growth keeps every key).
      for i in n..<(n + 700) { dense.insert(Self.key(i), Int32(i)) }
      for i in 0..<(n + 700) { XCTAssertEqual(dense[Self.key(i)], Int32(i), "n \(n)") }
    }
  }

  func testReservationHoldsItsKeysWithoutGrowing() {
    for n in [16, 1_000, 2_941_000 / 64] {
      var table = IntKeyTable()
      table.reserveCapacity(n)
      let slots = table.slotCount
      XCTAssertEqual(slots % IntKeyTable.slotsStep == 0 || slots == IntKeyTable.slotsMin, true)
      XCTAssertGreaterThanOrEqual(slots * 2, n * 3)
      for i in 0..<n { table.insert(Self.key(i), Int32(i)) }
      XCTAssertEqual(table.slotCount, slots, "a reserved table grew")
      table.reserveCapacity(n)
      XCTAssertEqual(table.slotCount, slots)
    }
  }

  func testSlotsForIsNotAPowerOfTwo() {
    // The 1M-account day: 3,883,378 opening lots reserve 5.83M slots (a power of two: 8M).
    let s = IntKeyTable.slotsFor(3_883_378)
    XCTAssertEqual(s, 5_825_536)
    XCTAssertGreaterThanOrEqual(s * 2, 3_883_378 * 3 + 1)
  }

  /// The look-ahead keeps where a failed lookup ended (`lookup`'s empty slot) and the slot
  /// count; at the apply, that slot still empty means the key is still absent and its
  /// insert goes there, whatever was inserted in between: exactly what a new lookup says.
  func testAnEmptySlotKeptFromALookupAnswersAsALookupLater() {
    var table = IntKeyTable()
    table.reserveCapacity(3_000)
    for i in 0..<1_500 { table.insert(Self.key(i), Int32(i)) }
    let slotCount = table.slotCount
    // Keys looked up (absent), then other keys inserted, some of them the looked-up ones.
    let later = Array(1_500..<2_500)
    let kept = later.map { (key: Self.key($0), slot: table.lookup(Self.key($0)).emptySlot) }
    for (n, i) in later.enumerated() where n % 3 == 0 { table.insert(Self.key(i), Int32(i)) }
    XCTAssertEqual(table.slotCount, slotCount, "reserved: no growth")
    for (n, k) in kept.enumerated() {
      XCTAssertGreaterThanOrEqual(k.slot, 0)
      let now = table.lookup(k.key)
      if table.isEmpty(slot: k.slot, slotCount: slotCount) {
        XCTAssertNil(now.id, "key \(n)")
        XCTAssertEqual(now.emptySlot, k.slot, "key \(n)")
      } else if n % 3 == 0 {
        XCTAssertNotNil(now.id, "key \(n)")
      }
    }
    // A table grown since: another slot count, never taken as empty.
    var grown = table
    grown.insert(Self.key(10_000), 10_000)
    grown.reserveCapacity(100_000)
    XCTAssertNotEqual(grown.slotCount, slotCount)
    XCTAssertFalse(grown.isEmpty(slot: kept[1].slot, slotCount: slotCount))
  }
}
