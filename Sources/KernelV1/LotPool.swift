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

  /// Node slot `i` is `lanes[pad + 4i ..< pad + 4i + 4]`: 8-byte lanes, started `pad`
  /// lanes in so that every node starts a 32-byte half line and sits in one cache
  /// line. A `[Node]`'s elements begin 16 bytes off a 32-byte boundary on this
  /// project's machines (an array's header is 32 bytes, malloc aligns to 16), so half
  /// the nodes straddled two lines: a trade reads two lots (the seller's oldest, the
  /// buyer's newest), and their prefetches stalled on full miss buffers (perf, V1's
  /// fifth round). `lanesOfRoom` lanes past the nodes are kept as room for `pad`.
  /// Reads use `pad` as it is: a copy whose array moved reads right, only misaligned,
  /// until its next allocation realigns it.
  private var lanes = [UInt64](repeating: 0, count: LotPool.lanesOfRoom)
  private var pad = 0
  /// Slots made (in use or free).
  private(set) var slotCount = 0
  private var freeHead: Int32 = LotPool.none
  /// Lots in use (slots minus free ones).
  public private(set) var liveCount = 0

  static let lanesPerNode = 4
  /// Lanes the pool grows by at most at once (`allocate`): 512 nodes, 16 KB.
  static let growthLanes = 2048
  private static let zeroLanes = [UInt64](repeating: 0, count: growthLanes)
  /// Room past the nodes for the largest `pad` (a node starts at most 3 lanes in).
  static let lanesOfRoom = 3

  public init() {
    precondition(
      MemoryLayout<Node>.size == Self.lanesPerNode * MemoryLayout<UInt64>.stride
        && MemoryLayout<Node>.alignment <= MemoryLayout<UInt64>.alignment,
      "a lot node is four 8-byte lanes")
    realign()
  }

  public mutating func reserveCapacity(_ n: Int) {
    precondition(n >= 0 && n <= Self.slotCountMax, "lot pool capacity within \(Self.slotCountMax) lots")
    lanes.reserveCapacity(n * Self.lanesPerNode + Self.lanesOfRoom)
    realign()
  }

  /// The room reserved beyond the slots, at most `limit` slots of it (`PageWarmer`).
  func unusedCapacity(limit: Int = .max) -> MemoryRegion? {
    MemoryRegion.unusedCapacity(
      of: lanes, limit: limit > Int.max / Self.lanesPerNode ? .max : limit * Self.lanesPerNode)
  }

  /// True when every node starts a 32-byte half line (a copy is aligned again by its
  /// next allocation).
  var isAligned: Bool {
    lanes.withUnsafeBufferPointer { b in
      UInt(bitPattern: b.baseAddress! + pad) & UInt(Self.lanesPerNode * MemoryLayout<UInt64>.stride - 1) == 0
    }
  }

  /// Makes the array unique and moves the nodes so that they start half lines (an
  /// append that grew the array, or a copy on write, may have moved it to an address
  /// with another offset). Rare: growth and the first allocation in a copy.
  private mutating func realign() {
    let (count, oldPad) = (slotCount * Self.lanesPerNode, pad)
    pad = lanes.withUnsafeMutableBufferPointer { b -> Int in
      // malloc aligns to 16 and a lane is 8 bytes: `wanted` is a whole lane count.
      let halfLine = Self.lanesPerNode * MemoryLayout<UInt64>.stride
      let misalignment = Int(bitPattern: UInt(bitPattern: b.baseAddress!) & UInt(halfLine - 1))
      let wanted = ((halfLine - misalignment) & (halfLine - 1)) / MemoryLayout<UInt64>.stride
      precondition(
        wanted <= Self.lanesOfRoom && b.count >= count + Self.lanesOfRoom, "lot pool keeps room for its pad")
      if wanted < oldPad {
        for i in 0..<count { b[wanted + i] = b[oldPad + i] }
      } else if wanted > oldPad {
        for i in stride(from: count - 1, through: 0, by: -1) { b[wanted + i] = b[oldPad + i] }
      }
      return wanted
    }
  }

  /// Node `slot`, read from its lanes.
  @inline(__always) private func node(_ slot: Int32) -> Node {
    precondition(slot >= 0 && Int(slot) < slotCount, "lot slot \(slot) out of range")
    return lanes.withUnsafeBufferPointer { b in
      // In bounds: the node's four lanes are within `lanes` (checked above, and the
      // array holds `lanesOfRoom` lanes past the last node).
      UnsafeRawPointer(b.baseAddress! + pad + Int(slot) * Self.lanesPerNode).loadUnaligned(as: Node.self)
    }
  }

  /// Changes node `slot` in place.
  @inline(__always) private mutating func update(_ slot: Int32, _ change: (inout Node) -> Void) {
    precondition(slot >= 0 && Int(slot) < slotCount, "lot slot \(slot) out of range")
    let offset = pad + Int(slot) * Self.lanesPerNode
    lanes.withUnsafeMutableBufferPointer { b in
      let raw = UnsafeMutableRawPointer(b.baseAddress! + offset)
      var n = raw.loadUnaligned(as: Node.self)
      change(&n)
      raw.storeBytes(of: n, as: Node.self)
    }
  }

  /// Writes node `slot` whole, reading nothing (a fresh or reused slot).
  @inline(__always) private mutating func store(_ n: Node, at slot: Int32) {
    precondition(slot >= 0 && Int(slot) < slotCount, "lot slot \(slot) out of range")
    let offset = pad + Int(slot) * Self.lanesPerNode
    lanes.withUnsafeMutableBufferPointer { b in
      UnsafeMutableRawPointer(b.baseAddress! + offset).storeBytes(of: n, as: Node.self)
    }
  }

  @inline(__always) public subscript(slot: Int32) -> Lot { node(slot).lot }

  /// The quantity of the lot in `slot` (read and changed in place, no `Lot` made).
  @inline(__always) func quantity(_ slot: Int32) -> Int64 { node(slot).quantity }
  @inline(__always) mutating func addQuantity(_ slot: Int32, _ delta: Int64) {
    update(slot) { $0.quantity += delta }
  }
  @inline(__always) mutating func addAccrued(_ slot: Int32, _ perShareMicro: Int64) {
    update(slot) { $0.accruedMicro += perShareMicro }
  }

  @inline(__always) public func next(after slot: Int32) -> Int32 { node(slot).next }

  @inline(__always) private mutating func setNext(_ slot: Int32, _ next: Int32) {
    update(slot) { $0.next = next }
  }

  /// Starts loading the lot in `slot`: one line, the node being aligned (nothing for
  /// `none` or a slot out of range).
  @inline(__always) func prefetch(_ slot: Int32) {
    guard slot >= 0 && Int(slot) < slotCount else { return }
    lanes.prefetch(pad + Int(slot) * Self.lanesPerNode)
  }

  /// A slot holding `lot`, not linked anywhere yet.
  mutating func allocate(_ lot: Lot) -> Int32 { allocate(lot, after: Self.none) }

  /// A slot holding `lot`, linked after `last` when that is a lot (the last of its list:
  /// the new lot ends the list); its node and `last`'s link written in one access to
  /// the lanes (a purchase's new lot: each access is a uniqueness check, and the
  /// allocation and the link made three, twenty-sixth session).
  mutating func allocate(_ lot: Lot, after last: Int32) -> Int32 {
    precondition(last == Self.none || (last >= 0 && Int(last) < slotCount), "lot slot \(last) out of range")
    liveCount += 1
    // A copy's first change copies its array, maybe to a misaligned address; every
    // purchase allocates, so this realigns a copy at once (after making the array
    // unique: a check and a comparison when it is already).
    realign()
    if freeHead != Self.none {
      let slot = freeHead
      freeHead = node(slot).next
      storeLinked(Node(lot, next: Self.none), at: slot, after: last)
      return slot
    }
    precondition(slotCount < Self.slotCountMax, "lot pool is full (\(Self.slotCountMax) lots)")
    // Zeroed lanes past the nodes a chunk at a time, within the reserved capacity when
    // there is some: four appends a slot (a uniqueness and a capacity check each, and a
    // realignment check) were ~20% of V1's opening state, perf, twenty-fifth session.
    // Lanes past `slotCount`'s nodes hold zeros and are never read. The node is written
    // after the realignment (a check only unless the array moved).
    let lanesNeeded = (slotCount + 1) * Self.lanesPerNode + Self.lanesOfRoom
    if lanes.count < lanesNeeded {
      let spare = lanes.capacity - lanes.count
      let grow = max(lanesNeeded - lanes.count, min(Self.growthLanes, spare - spare % Self.lanesPerNode))
      precondition(grow <= Self.growthLanes, "lot pool grows a chunk at a time")
      lanes.append(contentsOf: Self.zeroLanes[0..<grow])
      realign()
    }
    slotCount += 1
    let slot = Int32(slotCount - 1)
    storeLinked(Node(lot, next: Self.none), at: slot, after: last)
    return slot
  }

  /// Writes node `slot` whole and, when `after` is a lot, points `after`'s link at it:
  /// one access to the lanes.
  @inline(__always) private mutating func storeLinked(_ n: Node, at slot: Int32, after: Int32) {
    precondition(slot >= 0 && Int(slot) < slotCount, "lot slot \(slot) out of range")
    let (offset, afterOffset) = (pad + Int(slot) * Self.lanesPerNode, pad + Int(after) * Self.lanesPerNode)
    lanes.withUnsafeMutableBufferPointer { b in
      UnsafeMutableRawPointer(b.baseAddress! + offset).storeBytes(of: n, as: Node.self)
      if after != Self.none {
        let raw = UnsafeMutableRawPointer(b.baseAddress! + afterOffset)
        var previous = raw.loadUnaligned(as: Node.self)
        precondition(previous.next == Self.none, "a new lot is linked after the last lot of its list")
        previous.next = slot
        raw.storeBytes(of: previous, as: Node.self)
      }
    }
  }

  mutating func free(_ slot: Int32) {
    precondition(liveCount > 0, "lot pool frees more lots than it holds")
    liveCount -= 1
    let head = freeHead
    update(slot) {
      $0.quantity = 0
      $0.next = head
    }
    freeHead = slot
  }

  /// Links `slot` into the list `first ... last` right after `after` (at the head when none).
  mutating func link(_ slot: Int32, after: Int32, first: inout Int32, last: inout Int32) {
    let following = after == Self.none ? first : next(after: after)
    setNext(slot, following)
    if after == Self.none { first = slot } else { setNext(after, slot) }
    if following == Self.none { last = slot }
  }

  /// Unlinks the first lot of the list `first ... last` and frees it.
  mutating func unlinkFirstAndFree(first: inout Int32, last: inout Int32) {
    let slot = first
    precondition(slot != Self.none, "unlink from an empty lot list")
    first = next(after: slot)
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
      while next(after: before) != slot { before = next(after: before) }
      setNext(before, Self.none)
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
    insertLot(lot, into: p, addingQuantity: 0, available: 0)
  }

  /// `insertLot`, the position's quantity and available shares raised by `quantity` and
  /// `available` in the same access to its row (a purchase into a held position: each
  /// access is a uniqueness check).
  mutating func insertLot(_ lot: Lot, into p: Int32, addingQuantity quantity: Int64, available: Int64) {
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
      v1Change(&positions[p]) {
        $0.quantity += quantity
        $0.available += available
      }
      return
    }
    var (first, last) = (positions[p].firstLot, positions[p].lastLot)
    if after == last && last != LotPool.none {
      // After the last lot (a purchase: the newest lot): allocated and linked at once.
      last = lotPool.allocate(lot, after: last)
    } else {
      let slot = lotPool.allocate(lot)
      lotPool.link(slot, after: after, first: &first, last: &last)
    }
    v1Change(&positions[p]) {
      $0.quantity += quantity
      $0.available += available
      $0.firstLot = first
      $0.lastLot = last
    }
  }

  /// Takes `quantity` from the position's lots, oldest first (whole lots, the last in
  /// part), appending each lot as taken (its quantity the part taken) to `slices`, and
  /// from the position's quantity and available shares (a sale, SPEC §4.2).
  /// With `taxDate` (a taxable sale on that date, SPEC §4.4), returns the dividend tax
  /// of the slices taken in 1e-8 CNY: Σ quantity × accrued (µCNY) × rate (%), the rate
  /// 20% for a lot held at most 30 days, 10% up to 365, none after. Summed here from
  /// the lots as they are taken: reading the slices back after the appends was ~20% of
  /// the apply's own samples (perf, V1's fifth round). 0 without `taxDate`.
  mutating func takeOldestLots(of p: Int32, quantity: Int64, taxDate: Int32?) -> Int128 {
    var remaining = quantity
    var taxUnits: Int128 = 0
    // The list's ends kept here and stored once, with the sale's quantity and available
    // shares taken off, in one access to the position's row (each access is a
    // uniqueness check: the sale's own change and one per lot used up made two or more).
    var (first, last) = (positions[p].firstLot, positions[p].lastLot)
    while remaining > 0 {
      let slot = first
      precondition(slot != LotPool.none, "lots do not cover the seller's quantity")
      var lot = lotPool[slot]
      let taken = min(remaining, lot.quantity)
      if taken == lot.quantity {
        lotPool.unlinkFirstAndFree(first: &first, last: &last)
      } else {
        lotPool.addQuantity(slot, -taken)
      }
      lot.quantity = taken
      if let taxDate, lot.accruedMicro > 0 {
        let held = CalendarDate.daysBetween(lot.acquired, taxDate)
        let percent: Int128 = held <= 30 ? 20 : (held <= 365 ? 10 : 0)
        taxUnits += Int128(lot.quantity) * Int128(lot.accruedMicro) * percent
      }
      slices.append(lot)
      remaining -= taken
    }
    v1Change(&positions[p]) {
      $0.quantity -= quantity
      $0.available -= quantity
      $0.firstLot = first
      $0.lastLot = last
    }
    return taxUnits
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
    v1Change(&positions[p]) {
      $0.firstLot = first
      $0.lastLot = last
    }
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

extension LotPool {
  /// The pool as a kernel image keeps it (V1Image.swift): its nodes, slot for slot,
  /// and its free list, so that a loaded pool hands out the same slots as this one.
  /// Packed (ImagePacking.swift): a node's creation number and acquisition date as
  /// differences from the slot before (the opening's lots are made in order), its link
  /// as a distance (most lists are one or two neighbouring slots).
  func writeImage(to w: inout ImageWriter) {
    w.i64(Int64(slotCount))
    w.i32(freeHead)
    w.i64(Int64(liveCount))
    var p = PackedRowWriter()
    var (creation, acquired): (Int64, Int64) = (0, 0)
    for slot in 0..<Int32(slotCount) {
      let n = node(slot)
      p.startRow(&w)
      p.put(n.creation &- creation)
      creation = n.creation
      p.put(Int64(n.acquired) - acquired)
      acquired = Int64(n.acquired)
      p.put(n.accruedMicro)
      p.put(n.quantity)
      p.put(n.next == Self.none ? 0 : Int64(n.next) - Int64(slot) + (n.next > slot ? 0 : -1))
    }
    p.finish(&w)
  }

  /// A pool from what `writeImage` wrote; throws when a link leaves the pool.
  init(imageFrom r: inout ImageReader) throws(DecodeError) {
    self.init()
    let slots = try r.count(max: Self.slotCountMax)
    let free = try r.i32()
    let live = try r.count(max: slots)
    guard free >= Self.none, Int(free) < slots else {
      throw DecodeError(description: "image lot pool of \(slots) slots has free list head \(free)")
    }
    reserveCapacity(slots)
    lanes.append(contentsOf: repeatElement(0, count: slots * Self.lanesPerNode))
    slotCount = slots
    realign()
    var p = PackedRowReader()
    var (creation, acquired): (Int64, Int64) = (0, 0)
    for slot in 0..<Int32(slots) {
      try p.startRow(&r)
      creation &+= try p.take()
      acquired += try p.take()
      guard let date = Int32(exactly: acquired) else {
        throw DecodeError(description: "image lot slot \(slot) has date \(acquired)")
      }
      let accrued = try p.take()
      let quantity = try p.take()
      let link = try p.take()
      let next = link == 0 ? Int64(Self.none) : Int64(slot) + link + (link > 0 ? 0 : 1)
      guard next >= Int64(Self.none), next < Int64(slots) else {
        throw DecodeError(description: "image lot slot \(slot) links to \(next), outside the pool")
      }
      store(
        Node(
          Lot(acquired: date, creation: creation, accruedMicro: accrued, quantity: quantity),
          next: Int32(next)),
        at: slot)
    }
    try p.finish(&r)
    freeHead = free
    liveCount = live
  }
}
