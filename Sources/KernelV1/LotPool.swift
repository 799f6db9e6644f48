// The lots of every position (SPEC §4.5) in one pooled arena: each position's
// lots are a singly linked list in (acquired, creation, accrued) order, the position
// holding its first and last slot. A state
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

  /// A lot's fields and its link in 32 bytes (`Lot` and two links took 40): the
  /// 1M-account day's ~4M opening lots are the largest table V1 builds, all of it fresh
  /// pages. Singly linked: a sale takes lots from the front, a purchase adds one at the
  /// back (the position keeps both ends); only the rare insertion before the last lot
  /// (a bonus or a cancelled sale's lots) and the removal of the newest (a cancelled
  /// purchase) walk the list from the front. Lists are a few lots long.
  struct Node: Sendable {
    var creation: Int64
    var accruedMicro: Int64
    var quantity: Int64
    var acquired: Int32
    var next: Int32

    init(_ lot: Lot, next: Int32) {
      creation = lot.creation
      accruedMicro = lot.accruedMicro
      quantity = lot.quantity
      acquired = lot.acquired
      self.next = next
    }

    var lot: Lot {
      Lot(acquired: acquired, creation: creation, accruedMicro: accruedMicro, quantity: quantity)
    }
  }

  private var nodes: [Node] = []
  private var freeHead: Int32 = LotPool.none
  /// Lots in use (slots minus free ones).
  public private(set) var liveCount = 0

  public init() {}

  public mutating func reserveCapacity(_ n: Int) { nodes.reserveCapacity(n) }

  /// The room reserved beyond the slots, at most `limit` slots of it (`PageWarmer`).
  func unusedCapacity(limit: Int = .max) -> MemoryRegion? {
    MemoryRegion.unusedCapacity(of: nodes, limit: limit)
  }

  @inline(__always) public subscript(slot: Int32) -> Lot { nodes[Int(slot)].lot }

  /// The quantity of the lot in `slot` (read and changed in place, no `Lot` made).
  @inline(__always) func quantity(_ slot: Int32) -> Int64 { nodes[Int(slot)].quantity }
  @inline(__always) mutating func addQuantity(_ slot: Int32, _ delta: Int64) {
    nodes[Int(slot)].quantity += delta
  }
  @inline(__always) mutating func addAccrued(_ slot: Int32, _ perShareMicro: Int64) {
    nodes[Int(slot)].accruedMicro += perShareMicro
  }

  @inline(__always) public func next(after slot: Int32) -> Int32 { nodes[Int(slot)].next }

  /// Starts loading the lot in `slot` (nothing for `none`).
  @inline(__always) func prefetch(_ slot: Int32) { nodes.prefetchWhole(Int(slot)) }

  /// A slot holding `lot`, not linked anywhere yet.
  mutating func allocate(_ lot: Lot) -> Int32 {
    liveCount += 1
    if freeHead != Self.none {
      let slot = freeHead
      freeHead = nodes[Int(slot)].next
      nodes[Int(slot)] = Node(lot, next: Self.none)
      return slot
    }
    precondition(nodes.count < Self.slotCountMax, "lot pool is full (\(Self.slotCountMax) lots)")
    nodes.append(Node(lot, next: Self.none))
    return Int32(nodes.count - 1)
  }

  mutating func free(_ slot: Int32) {
    precondition(liveCount > 0, "lot pool frees more lots than it holds")
    liveCount -= 1
    nodes[Int(slot)].quantity = 0
    nodes[Int(slot)].next = freeHead
    freeHead = slot
  }

  /// Links `slot` into the list `first ... last` right after `after` (at the head when none).
  mutating func link(_ slot: Int32, after: Int32, first: inout Int32, last: inout Int32) {
    let following = after == Self.none ? first : nodes[Int(after)].next
    nodes[Int(slot)].next = following
    if after == Self.none { first = slot } else { nodes[Int(after)].next = slot }
    if following == Self.none { last = slot }
  }

  /// Unlinks the first lot of the list `first ... last` and frees it.
  mutating func unlinkFirstAndFree(first: inout Int32, last: inout Int32) {
    let slot = first
    precondition(slot != Self.none, "unlink from an empty lot list")
    first = nodes[Int(slot)].next
    if first == Self.none { last = Self.none }
    free(slot)
  }

  /// Unlinks the last lot of the list `first ... last` and frees it (walks the list:
  /// only a cancelled purchase does this).
  mutating func unlinkLastAndFree(first: inout Int32, last: inout Int32) {
    let slot = last
    precondition(slot != Self.none, "unlink from an empty lot list")
    if first == slot {
      first = Self.none
      last = Self.none
    } else {
      var before = first
      while nodes[Int(before)].next != slot { before = nodes[Int(before)].next }
      nodes[Int(before)].next = Self.none
      last = before
    }
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
    // The lot goes after the last lot it is not ordered before (lots are sorted, so
    // the lots it is ordered before are the list's tail). New lots almost always go
    // last (a buy is the newest lot): the last lot is tried first, the list walked from
    // the front only when the lot goes before it.
    var after = positions[p].lastLot
    if after != LotPool.none && lot.orderedBefore(lotPool[after]) {
      after = LotPool.none
      var slot = positions[p].firstLot
      while slot != LotPool.none && !lot.orderedBefore(lotPool[slot]) {
        after = slot
        slot = lotPool.next(after: slot)
      }
    }
    if after != LotPool.none && lotPool[after].sameLot(lot) {
      lotPool.addQuantity(after, lot.quantity)
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
        lotPool.unlinkFirstAndFree(first: &first, last: &last)
        setLotList(of: p, first: first, last: last)
      } else {
        lotPool.addQuantity(slot, -taken)
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
      let taken = min(remaining, lotPool.quantity(slot))
      if taken == lotPool.quantity(slot) {
        var (first, last) = (positions[p].firstLot, positions[p].lastLot)
        lotPool.unlinkLastAndFree(first: &first, last: &last)
        setLotList(of: p, first: first, last: last)
      } else {
        lotPool.addQuantity(slot, -taken)
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
      lotPool.addAccrued(slot, perShareMicro)
      slot = lotPool.next(after: slot)
    }
    positions.touch(p)
  }
}
