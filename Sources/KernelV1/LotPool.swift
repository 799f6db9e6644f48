// The lots of every position (SPEC §4.5) in one pooled arena: each position's
// lots are a doubly linked list in (acquired, creation, accrued) order. A state
// with millions of positions then holds no per-position heap array (which cost
// an allocation each, and the kernel's page zeroing behind them). Freed slots are
// reused. Slot numbers are storage only: they never reach a digest or an output
// (positions encode their lots by walking the list, see StateCodec).

import KernelAPI

public struct LotPool: Sendable {
  /// No lot (list end, empty position).
  public static let none: Int32 = -1
  /// Slots the pool may hold: slot numbers are Int32.
  public static let slotCountMax = Int(Int32.max) - 1

  /// A lot and its links side by side: one cache line per lot touched.
  struct Node: Sendable {
    var lot: Lot
    var next: Int32
    var previous: Int32
  }

  private var nodes: [Node] = []
  private var freeHead: Int32 = LotPool.none
  /// Lots in use (slots minus free ones).
  public private(set) var liveCount = 0

  public init() {}

  public mutating func reserveCapacity(_ n: Int) { nodes.reserveCapacity(n) }

  @inline(__always) public subscript(slot: Int32) -> Lot {
    _read { yield nodes[Int(slot)].lot }
    _modify { yield &nodes[Int(slot)].lot }
  }

  @inline(__always) public func next(after slot: Int32) -> Int32 { nodes[Int(slot)].next }
  @inline(__always) public func previous(before slot: Int32) -> Int32 { nodes[Int(slot)].previous }

  /// Starts loading the lot in `slot` (nothing for `none`).
  @inline(__always) func prefetch(_ slot: Int32) { nodes.prefetch(Int(slot)) }

  /// A slot holding `lot`, not linked anywhere yet.
  mutating func allocate(_ lot: Lot) -> Int32 {
    liveCount += 1
    if freeHead != Self.none {
      let slot = freeHead
      freeHead = nodes[Int(slot)].next
      nodes[Int(slot)] = Node(lot: lot, next: Self.none, previous: Self.none)
      return slot
    }
    precondition(nodes.count < Self.slotCountMax, "lot pool is full (\(Self.slotCountMax) lots)")
    nodes.append(Node(lot: lot, next: Self.none, previous: Self.none))
    return Int32(nodes.count - 1)
  }

  mutating func free(_ slot: Int32) {
    precondition(liveCount > 0, "lot pool frees more lots than it holds")
    liveCount -= 1
    nodes[Int(slot)].lot.quantity = 0
    nodes[Int(slot)].next = freeHead
    nodes[Int(slot)].previous = Self.none
    freeHead = slot
  }

  /// Links `slot` into the list `first ... last` right after `after` (at the head when none).
  mutating func link(_ slot: Int32, after: Int32, first: inout Int32, last: inout Int32) {
    let following = after == Self.none ? first : nodes[Int(after)].next
    nodes[Int(slot)].previous = after
    nodes[Int(slot)].next = following
    if after == Self.none { first = slot } else { nodes[Int(after)].next = slot }
    if following == Self.none { last = slot } else { nodes[Int(following)].previous = slot }
  }

  /// Unlinks `slot` from the list `first ... last` and frees it.
  mutating func unlinkAndFree(_ slot: Int32, first: inout Int32, last: inout Int32) {
    let before = nodes[Int(slot)].previous
    let after = nodes[Int(slot)].next
    if before == Self.none { first = after } else { nodes[Int(before)].next = after }
    if after == Self.none { last = before } else { nodes[Int(after)].previous = before }
    free(slot)
  }
}

extension V1Kernel {
  /// The lots of position `p`, oldest first (tools, checks and encoding; not the hot path).
  public func lots(of p: Int32) -> [Lot] {
    var result: [Lot] = []
    var slot = positions[p].firstLot
    while slot != LotPool.none {
      result.append(lotPool[slot])
      slot = lotPool.next(after: slot)
    }
    return result
  }

  /// Inserts a lot in (acquired, creation, accrued) order, joining an identical lot.
  mutating func insertLot(_ lot: Lot, into p: Int32) {
    precondition(lot.quantity > 0, "a lot holds a positive quantity")
    // New lots almost always go last (a buy is the newest lot): search from the tail.
    var after = positions[p].lastLot
    while after != LotPool.none && lot.orderedBefore(lotPool[after]) {
      after = lotPool.previous(before: after)
    }
    if after != LotPool.none && lotPool[after].sameLot(lot) {
      lotPool[after].quantity += lot.quantity
      positions.touch(p)
      return
    }
    let slot = lotPool.allocate(lot)
    var (first, last) = (positions[p].firstLot, positions[p].lastLot)
    lotPool.link(slot, after: after, first: &first, last: &last)
    setLotList(of: p, first: first, last: last)
  }

  /// Takes `quantity` from the position's lots, oldest first (whole lots, the last in
  /// part), appending each lot as taken (its quantity the part taken) to `slices`.
  mutating func takeOldestLots(of p: Int32, quantity: Int64) {
    var remaining = quantity
    while remaining > 0 {
      let slot = positions[p].firstLot
      precondition(slot != LotPool.none, "lots do not cover the seller's quantity")
      var lot = lotPool[slot]
      let taken = min(remaining, lot.quantity)
      if taken == lot.quantity {
        var (first, last) = (positions[p].firstLot, positions[p].lastLot)
        lotPool.unlinkAndFree(slot, first: &first, last: &last)
        setLotList(of: p, first: first, last: last)
      } else {
        lotPool[slot].quantity -= taken
        positions.touch(p)
      }
      lot.quantity = taken
      slices.append(lot)
      remaining -= taken
    }
  }

  /// Removes `quantity` from the position's lots, newest first (a reversed purchase).
  mutating func removeNewestLots(of p: Int32, quantity: Int64) {
    var remaining = quantity
    while remaining > 0 {
      let slot = positions[p].lastLot
      precondition(slot != LotPool.none, "lots do not cover the buyer's quantity")
      let taken = min(remaining, lotPool[slot].quantity)
      if taken == lotPool[slot].quantity {
        var (first, last) = (positions[p].firstLot, positions[p].lastLot)
        lotPool.unlinkAndFree(slot, first: &first, last: &last)
        setLotList(of: p, first: first, last: last)
      } else {
        lotPool[slot].quantity -= taken
        positions.touch(p)
      }
      remaining -= taken
    }
  }

  /// Stores a position's list ends; the position is dirty either way (its lots changed).
  @inline(__always) mutating func setLotList(of p: Int32, first: Int32, last: Int32) {
    positions[p].firstLot = first
    positions[p].lastLot = last
  }

  /// Adds `perShareMicro` to the accrued dividend of every lot of the position.
  mutating func accrueDividend(of p: Int32, perShareMicro: Int64) {
    var slot = positions[p].firstLot
    while slot != LotPool.none {
      lotPool[slot].accruedMicro += perShareMicro
      slot = lotPool.next(after: slot)
    }
    positions.touch(p)
  }
}
