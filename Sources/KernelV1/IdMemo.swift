// The securities and units of a group of TRADEs, remembered by their bytes. Every
// TRADE names a security and two units: three lookups in small indexes that are in
// the cache, whose cost is the CPU of `Ident`'s String machinery (the UTF-8 view's
// count, a contiguous copy of a small string, an out-of-line compare closure: ~12% of
// the apply's samples, perf, V1's fifth round). A group's lookups are remembered
// here under the id's bytes packed into two words: a hit is a multiply and three
// compares.
//
// Only ids found are remembered, and a row once remembered stays right: ids are
// never removed and rows never re-keyed (securities and units are only added, by
// their own events); a restore, which rebuilds the tables, forgets everything
// (`rebuildIndexes`). An id longer than `bytesMax` is never remembered (looked up
// in the index each time), nor any id once the memo is half full. Derived storage:
// never digested, never iterated.

import KernelAPI

struct IdMemo {
  /// The longest id remembered: two 8-byte words.
  static let bytesMax = 16

  private struct Slot {
    var low: UInt64 = 0
    var high: UInt64 = 0
    /// 0: empty; otherwise `(count + 1) << 32 | row`.
    var countAndRow: UInt64 = 0
  }

  /// The most ids a memo holds (2^20: 48 MiB of slots at most).
  static let idsMax = 1 << 20

  private var slots: [Slot]
  private let mask: Int
  private var count = 0
  /// Ids it has room for.
  var roomIds: Int { slots.count / 2 }

  /// Room for `ids` ids (at most half the slots used: short probe runs); 0: remembers
  /// nothing.
  init(ids: Int) {
    precondition(ids >= 0 && ids <= Self.idsMax, "an id memo holds at most \(Self.idsMax) ids")
    var capacity = ids > 0 ? 2 : 0
    while capacity < 2 * ids { capacity *= 2 }
    slots = [Slot](repeating: Slot(), count: capacity)
    mask = capacity - 1
  }

  /// The id's bytes in two words (with its length, a key that differs for any two
  /// byte runs of at most `bytesMax`): overlapping loads where the length allows.
  @inline(__always) static func pack(_ b: UnsafeRawBufferPointer) -> (low: UInt64, high: UInt64) {
    let n = b.count
    precondition(n <= bytesMax, "packed ids are at most \(bytesMax) bytes")
    if n >= 8 {
      return (b.loadUnaligned(as: UInt64.self), b.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self))
    }
    if n >= 4 {
      let first = UInt64(b.loadUnaligned(as: UInt32.self))
      let last = UInt64(b.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self))
      return (first | last << 32, 0)
    }
    var low: UInt64 = 0
    for i in 0..<n { low |= UInt64(b[i]) << UInt64(8 * i) }
    return (low, 0)
  }

  @inline(__always) private static func home(_ low: UInt64, _ high: UInt64, _ n: Int) -> UInt64 {
    mix64(low ^ (high &* 0x9e37_79b9_7f4a_7c15) ^ UInt64(n))
  }

  /// The row remembered for these bytes, or nil (not remembered: look it up).
  @inline(__always) func row(_ b: UnsafeRawBufferPointer) -> Int32? {
    guard b.count <= Self.bytesMax, count > 0 else { return nil }
    let (low, high) = Self.pack(b)
    let tag = UInt64(b.count + 1) << 32
    return slots.withUnsafeBufferPointer { s in
      var i = Int(truncatingIfNeeded: Self.home(low, high, b.count)) & mask
      while true {
        let slot = s[i]
        if slot.countAndRow == 0 { return nil }
        if slot.countAndRow & ~0xffff_ffff == tag && slot.low == low && slot.high == high {
          return Int32(truncatingIfNeeded: slot.countAndRow & 0xffff_ffff)
        }
        i = (i + 1) & mask
      }
    }
  }

  /// Remembers `row` for these bytes (not already remembered); nothing when the id is
  /// too long or the memo is half full.
  @inline(__always) mutating func remember(_ b: UnsafeRawBufferPointer, row: Int32) {
    precondition(row >= 0, "an id memo holds row ids")
    guard b.count <= Self.bytesMax, 2 * (count + 1) <= slots.count else { return }
    let (low, high) = Self.pack(b)
    let n = b.count
    var i = Int(truncatingIfNeeded: Self.home(low, high, n)) & mask
    while slots[i].countAndRow != 0 { i = (i + 1) & mask }
    slots[i] = Slot(low: low, high: high, countAndRow: UInt64(n + 1) << 32 | UInt64(UInt32(row)))
    count += 1
  }
}

/// What V1 remembers for its TRADEs: securities and units.
struct TradeGroupMemo {
  var securities = IdMemo(ids: 0)
  var units = IdMemo(ids: 0)

  /// Makes room for every security and unit there is (forgetting what was remembered
  /// when a memo is remade: rare, the tables only grow by their own events), with
  /// room to spare so that a few added ones are remembered too.
  mutating func prepare(securities securityCount: Int, units unitCount: Int) {
    if securities.roomIds < securityCount { securities = IdMemo(ids: Self.room(securityCount)) }
    if units.roomIds < unitCount { units = IdMemo(ids: Self.room(unitCount)) }
  }

  private static func room(_ n: Int) -> Int { min(max(2 * n, 64), IdMemo.idsMax) }
}

extension FastIndex where Key == Ident {
  /// `v1Find(bytes:)` through `memo`: a remembered row, or the index's, remembered.
  @inline(__always) func v1Find(bytes: UnsafeRawBufferPointer, memo: inout IdMemo) -> Int32? {
    if let row = memo.row(bytes) { return row }
    guard let row = v1Find(bytes: bytes) else { return nil }
    memo.remember(bytes, row: row)
    return row
  }
}
