// V2Kernel: the opening positions and lots, laid from the reference holdings (SPEC §2).
//
// Positions are numbered in order of first appearance and lots get creation numbers in
// file order, whatever the file's order. Reference files usually list each account's
// holdings together, accounts in order: then a position is found again without any
// hash lookup (`seen[security]`, valid from the account's first position on), and
// `positionIx` is built once, at its final size, after the positions are known. When
// an account comes back after another (the file not grouped by account), the build
// starts over on the general path: a hash table of the positions seen so far.
//
// Two passes over the holdings: the first makes the positions and counts their lots
// (kept in `lotEnd` meanwhile, no separate array), the segments are then laid out in
// position order, and the second pass writes each lot into its position's segment.

import KernelAPI

extension V2Kernel {
  mutating func layOpeningHoldings(_ holdings: [ReferenceData.HoldingRow]) {
    // Room reserved now for a day's new positions and lots: reserved pages that are
    // never written cost no memory, while growing a large array later copies it (old
    // and new both resident for a moment: the peak).
    // The first pass writes the rows straight into that room (V2Position is plain
    // bytes): appending each row and incrementing its lot count in the array cost a
    // uniqueness check per holding line.
    precondition(positions.isEmpty, "V2: opening positions made twice")
    precondition(_isPOD(V2Position.self), "V2: V2Position must stay plain bytes")
    precondition(holdings.count < Int(Int32.max), "V2: holding lines beyond 32-bit ids")
    var seen = [Int32](repeating: -1, count: securities.count)
    var grouped = false
    // The lot pool's size so far: on the grouped path each account's segments are laid
    // as soon as its lines end (its rows still cached), not in a pass of their own.
    var total = 0
    positions = [V2Position](unsafeUninitializedCapacity: 2 * holdings.count) { pos, initialized in
      seen.withUnsafeMutableBufferPointer { seen in
        holdings.withUnsafeBufferPointer { holdings in
          let made = Self.openingPositionsGrouped(holdings, pos, seen, &total)
          grouped = made >= 0
          initialized = max(made, 0)
        }
      }
    }
    var table = IntKeyTable()
    if grouped {
      // Sized as the general path's table (for as many positions as holding lines): a
      // day's new positions then fit without a rehash.
      positionIx.reserveCapacity(holdings.count)
      positionIx.insertDense(upTo: positions.count) {
        Self.positionKey(positions[$0].account, positions[$0].security)
      }
    } else {
      positions.removeAll(keepingCapacity: true)
      total = 0
      table.reserveCapacity(holdings.count)
      for h in holdings {
        let key = Self.positionKey(h.account, h.security)
        if let existing = table[key] {
          positions[Int(existing)].lotEnd += 1
        } else {
          table.insert(key, Int32(positions.count))
          var p = V2Position(account: h.account, security: h.security)
          p.lotEnd = 1
          positions.append(p)
        }
      }
      // Each position's segment fits its lots (a power of two), in position order.
      positions.withUnsafeMutableBufferPointer { pos in
        Self.laySegments(pos, 0..<pos.count, &total)
      }
    }
    precondition(total < Int(Int32.max), "V2: lot pool beyond 32-bit indexes")
    precondition(pool.lots.isEmpty, "V2: opening holdings laid twice")
    // V2Lot is plain bytes (no references): its uninitialized memory may be written by
    // assignment. Each slot of the pool is written ONCE: the lots by `openingLot`, the rest
    // of each segment (a position of 3 lots has 4 slots) by `empty` after them; the
    // pool used to be filled with `empty` first, a second pass over ~110 MB.
    precondition(_isPOD(V2Lot.self), "V2: V2Lot must stay plain bytes")
    var issued = [Int64](repeating: 0, count: securities.count)
    var creation = globals.nextLotCreation
    // The rows leave `self` while their buffers are written (no exclusivity conflict).
    var rows: [V2Position] = []
    swap(&rows, &positions)
    let lots = [V2Lot](unsafeUninitializedCapacity: 2 * total) { lot, initialized in
      rows.withUnsafeMutableBufferPointer { pos in
        issued.withUnsafeMutableBufferPointer { issued in
          seen.withUnsafeMutableBufferPointer { seen in
            holdings.withUnsafeBufferPointer { holdings in
              creation = Self.openingLots(
                holdings, grouped: grouped, table: table, seen: seen, pos: pos, lot: lot, issued: issued,
                creation: creation)
            }
          }
        }
      }
      initialized = total
    }
    swap(&rows, &positions)
    pool.lots = lots
    globals.nextLotCreation = creation
    for (s, q) in issued.enumerated() where q != 0 { securities[s].issuedQuantity += q }
    if !grouped { positionIx = table }
  }

  /// The second pass: writes each holding's lot into its position's segment (laid out
  /// by the caller, `lotEnd` at the segment's start), sums the quantities, and writes
  /// the rest of each segment empty. Returns the next lot creation number. Works on
  /// buffers only, with no captured variable: as closures capturing `creation` and
  /// `issued`, each lot paid dynamic exclusivity checks (swift_beginAccess, ~9% of the
  /// opening in a profile) and array uniqueness checks.
  static func openingLots(
    _ holdings: UnsafeBufferPointer<ReferenceData.HoldingRow>, grouped: Bool, table: IntKeyTable,
    seen: UnsafeMutableBufferPointer<Int32>, pos: UnsafeMutableBufferPointer<V2Position>,
    lot: UnsafeMutableBufferPointer<V2Lot>, issued: UnsafeMutableBufferPointer<Int64>, creation: Int64
  ) -> Int64 {
    var creation = creation
    if grouped {
      // The first pass's walk again: the same positions in the same order.
      for k in seen.indices { seen[k] = -1 }
      var account: Int32 = -1
      var groupStart: Int32 = 0
      var next: Int32 = 0
      for h in holdings {
        if h.account != account {
          account = h.account
          groupStart = next
        }
        var id = seen[Int(h.security)]
        if id < groupStart {
          id = next
          seen[Int(h.security)] = next
          next += 1
        }
        openingLot(Int(id), h, creation, pos, lot, issued)
        creation += 1
      }
    } else {
      for h in holdings {
        guard let id = table[positionKey(h.account, h.security)] else {
          preconditionFailure("V2: lost position")
        }
        openingLot(Int(id), h, creation, pos, lot, issued)
        creation += 1
      }
    }
    // The slots after each position's lots (reached by no lot) are written empty.
    for i in 0..<pos.count {
      let capEnd = Int(pos[i].lotBase) + 1 << Int(pos[i].lotLog)
      for j in Int(pos[i].lotEnd)..<capEnd { lot[j] = LotPool.empty }
    }
    return creation
  }

  /// Adds a lot (a unique creation number: never merged) to position `id`, in lot
  /// order: at the end when it is the newest (the usual case), else by binary search,
  /// the later ones moved up (the segment has room for all). The row is read and
  /// written once.
  @inline(__always) static func openingLot(
    _ id: Int, _ h: ReferenceData.HoldingRow, _ creation: Int64,
    _ pos: UnsafeMutableBufferPointer<V2Position>, _ lot: UnsafeMutableBufferPointer<V2Lot>,
    _ issued: UnsafeMutableBufferPointer<Int64>
  ) {
    let l = V2Lot(acquired: h.acquiredDate, creation: creation, accruedMicro: 0, quantity: h.quantity)
    var p = pos[id]
    p.quantity += h.quantity
    p.available += h.quantity
    issued[Int(h.security)] += h.quantity
    let head = Int(p.lotHead)
    let end = Int(p.lotEnd)
    if head == end || lot[end - 1].orderedBefore(l) {
      lot[end] = l
    } else {
      var low = head
      var high = end
      while low < high {
        let mid = (low + high) >> 1
        if lot[mid].orderedBefore(l) { low = mid + 1 } else { high = mid }
      }
      var j = end
      while j > low {
        lot[j] = lot[j - 1]
        j -= 1
      }
      lot[low] = l
    }
    p.lotEnd = Int32(end + 1)
    pos[id] = p
  }

  /// The first pass when each account's holdings are together and accounts come in
  /// order (ascending index): writes the positions into `pos` in order of first
  /// appearance, each with its lot count in `lotEnd`, and returns how many. `seen[security]`
  /// is the current account's position of that security when it is at or above the
  /// account's first position. Returns -1 (positions partly made) as soon as an account
  /// comes back out of order. The newest position is kept in a local until the next
  /// one starts (a position's lines are usually consecutive): its count is not read
  /// back from a row just stored.
  static func openingPositionsGrouped(
    _ holdings: UnsafeBufferPointer<ReferenceData.HoldingRow>, _ pos: UnsafeMutableBufferPointer<V2Position>,
    _ seen: UnsafeMutableBufferPointer<Int32>, _ total: inout Int
  ) -> Int {
    precondition(pos.count >= holdings.count, "V2: room for the opening positions")
    var account: Int32 = -1
    var groupStart: Int32 = 0
    var count: Int32 = 0
    var current = V2Position(account: -1, security: -1)
    var currentId: Int32 = -1
    for h in holdings {
      if h.account != account {
        if h.account < account { return -1 }
        if currentId >= 0 { pos[Int(currentId)] = current }
        currentId = -1
        laySegments(pos, Int(groupStart)..<Int(count), &total)
        account = h.account
        groupStart = count
      }
      let known = seen[Int(h.security)]
      if known >= groupStart {
        if known == currentId { current.lotEnd += 1 } else { pos[Int(known)].lotEnd += 1 }
        continue
      }
      if currentId >= 0 { pos[Int(currentId)] = current }
      seen[Int(h.security)] = count
      current = V2Position(account: h.account, security: h.security)
      current.lotEnd = 1
      currentId = count
      count += 1
    }
    if currentId >= 0 { pos[Int(currentId)] = current }
    laySegments(pos, Int(groupStart)..<Int(count), &total)
    return Int(count)
  }

  /// Lays the segments of positions `range` (their lot counts in `lotEnd`) from lot
  /// `total` on: each a power of two that fits its lots, in position order. Each row is
  /// changed in one access (a subscripted field write per field was a uniqueness check
  /// each: ~0.03 s of 1.6M rows in a profile).
  @inline(__always) static func laySegments(
    _ pos: UnsafeMutableBufferPointer<V2Position>, _ range: Range<Int>, _ total: inout Int
  ) {
    for i in range {
      var p = pos[i]
      let n = Int(p.lotEnd)
      var log = 0
      while 1 << log < n { log += 1 }
      p.lotBase = Int32(total)
      p.lotHead = Int32(total)
      p.lotEnd = Int32(total)
      p.lotLog = UInt8(log)
      pos[i] = p
      total += 1 << log
    }
  }
}
