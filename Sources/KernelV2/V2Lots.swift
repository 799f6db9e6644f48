// V2Kernel: the lots of positions (SPEC §4.5), kept in `LotPool`'s flat segments.

import KernelAPI

extension V2Kernel {
  /// Makes room for one more lot at the end of position `i`'s live lots: compacts the
  /// segment when a consumed prefix frees room, else moves the lots to a segment twice
  /// as large. Returns how far the live lots moved (to shift indexes into them).
  @inline(__always)
  mutating func roomAtEnd(_ i: Int) -> Int {
    let p = positions[i]
    let capEnd = p.lotBase + Int32(1) << Int32(p.lotLog)
    if p.lotEnd < capEnd { return 0 }
    let n = Int(p.lotEnd - p.lotHead)
    let newBase: Int32
    if p.lotHead > p.lotBase {
      newBase = p.lotBase
    } else {
      newBase = pool.allocate(log: Int(p.lotLog) + 1)
      pool.release(base: p.lotBase, log: p.lotLog)
      positions[i].lotBase = newBase
      positions[i].lotLog = p.lotLog + 1
    }
    pool.lots.withUnsafeMutableBufferPointer { b in
      let base = b.baseAddress!
      (base + Int(newBase)).update(from: base + Int(p.lotHead), count: n)
    }
    positions[i].lotHead = newBase
    positions[i].lotEnd = newBase + Int32(n)
    return Int(newBase) - Int(p.lotHead)
  }

  /// Inserts a lot, merging with an equal-keyed one (CANONICAL-ROWS §6).
  mutating func insertLot(_ position: Int32, _ lot: V2Lot) {
    let i = Int(position)
    let p = positions[i]
    if p.lotHead == p.lotEnd {
      // No live lot (a new position, the usual purchase): the row is written once.
      var q = p
      if q.lotLog == V2Position.noSegment {
        q.lotBase = pool.allocate(log: 0)
        q.lotLog = 0
      }
      pool.lots.withUnsafeMutableBufferPointer { $0[Int(q.lotBase)] = lot }
      q.lotHead = q.lotBase
      q.lotEnd = q.lotBase + 1
      positions.withUnsafeMutableBufferPointer { $0[i] = q }
      return
    }
    if pool.lots[Int(p.lotEnd) - 1].orderedBefore(lot) {
      _ = roomAtEnd(i)
      let end = Int(positions[i].lotEnd)
      pool.lots[end] = lot
      positions[i].lotEnd += 1
      return
    }
    // First index in head..<end whose lot is not ordered before `lot`.
    var low = Int(p.lotHead)
    var high = Int(p.lotEnd)
    while low < high {
      let mid = (low + high) >> 1
      if pool.lots[mid].orderedBefore(lot) { low = mid + 1 } else { high = mid }
    }
    if low < Int(p.lotEnd) && pool.lots[low].sameLot(lot) {
      pool.lots[low].quantity += lot.quantity
      return
    }
    if low == Int(p.lotHead) && p.lotHead > p.lotBase {
      positions[i].lotHead -= 1
      pool.lots[low - 1] = lot
      return
    }
    low += roomAtEnd(i)
    let end = Int(positions[i].lotEnd)
    pool.lots.withUnsafeMutableBufferPointer { b in
      let base = b.baseAddress!
      (base + low + 1).update(from: base + low, count: end - low)
      base[low] = lot
    }
    positions[i].lotEnd += 1
  }

  /// Takes `quantity` from the oldest lots, appending each slice taken to `slices`, and
  /// from the position's quantity and available count (a sale).
  /// (The pool and the position row are written through buffers taken once: an array
  /// element written through `self` checks the array's uniqueness, a runtime call.)
  mutating func consumeOldest(_ position: Int32, _ quantity: Int64) {
    let i = Int(position)
    let p = positions[i]
    var head = Int(p.lotHead)
    let end = Int(p.lotEnd)
    var left = quantity
    // The slices leave `self` while the pool's buffer is written (no exclusivity
    // conflict); so do the accruals of the slices taken (an empty array: no allocation
    // unless a lot accrued).
    var taken: [V2Slice] = []
    var accrued: [(Int32, Int64)] = []
    swap(&taken, &slices)
    pool.lots.withUnsafeMutableBufferPointer { lots in
      while left > 0 {
        precondition(head < end, "V2: lots short of the position's quantity")
        let lot = lots[head]
        if lot.accruedMicro != 0 { accrued.append((Int32(taken.count), lot.accruedMicro)) }
        let part = min(lot.quantity, left)
        taken.append(V2Slice(quantity: part, acquired: lot.acquired, creation: lot.creation))
        left -= part
        if part == lot.quantity {
          head += 1
        } else {
          lots[head].quantity -= part
        }
      }
    }
    swap(&taken, &slices)
    for (id, micro) in accrued { sliceAccrued[id] = micro }
    positions.withUnsafeMutableBufferPointer { rows in
      if head == end {
        rows[i].lotHead = p.lotBase
        rows[i].lotEnd = p.lotBase
      } else {
        rows[i].lotHead = Int32(head)
      }
      rows[i].quantity -= quantity
      rows[i].available -= quantity
      precondition(
        rows[i].available >= 0 && rows[i].available + rows[i].withheld <= rows[i].quantity,
        "V2: seller's position broke quantity ≥ available + withheld ≥ 0")
    }
  }

  /// Takes `quantity` from the newest lots (a cancelled purchase).
  mutating func removeNewest(_ position: Int32, _ quantity: Int64) {
    let i = Int(position)
    let head = Int(positions[i].lotHead)
    var end = Int(positions[i].lotEnd)
    var left = quantity
    while left > 0 {
      precondition(head < end, "V2: lots short of the position's quantity")
      let n = end - 1
      if pool.lots[n].quantity <= left {
        left -= pool.lots[n].quantity
        end = n
      } else {
        pool.lots[n].quantity -= left
        left = 0
      }
    }
    if head == end {
      positions[i].lotHead = positions[i].lotBase
      positions[i].lotEnd = positions[i].lotBase
    } else {
      positions[i].lotEnd = Int32(end)
    }
  }

  /// A dividend's accrual: every live lot gains the same amount, so the order holds.
  mutating func accrue(_ position: Int32, _ micro: Int64) {
    let p = positions[Int(position)]
    for j in Int(p.lotHead)..<Int(p.lotEnd) { pool.lots[j].accruedMicro += micro }
  }

  /// Lays a decoded position's lots in a fresh segment (a restart).
  mutating func layLots(_ position: Int32, _ lots: [Lot]) {
    let i = Int(position)
    pool.release(base: positions[i].lotBase, log: positions[i].lotLog)
    positions[i].lotLog = V2Position.noSegment
    positions[i].lotBase = 0
    positions[i].lotHead = 0
    positions[i].lotEnd = 0
    if lots.isEmpty { return }
    var log = 0
    while 1 << log < lots.count { log += 1 }
    let base = pool.allocate(log: log)
    for (k, lot) in lots.enumerated() { pool.lots[Int(base) + k] = V2Lot(lot) }
    positions[i].lotBase = base
    positions[i].lotHead = base
    positions[i].lotEnd = base + Int32(lots.count)
    positions[i].lotLog = UInt8(log)
  }
}
