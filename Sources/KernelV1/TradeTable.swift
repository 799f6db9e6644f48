// V1's trades in memory: a compact row per trade and an index of trade ids that
// holds row ids only. A trade lands on fresh pages (its row and index slot are new
// memory every time), and on the 1M-trade day the kernel zeroing those pages was the
// largest single cost of the apply: the canonical `TradeRecord` is 176 bytes and a
// `FastIndex<TradeKey>` slot 32, where these are 88 and 8. What digests, durable state
// and effects see is unchanged: `tradeRecord(_:)` gives the canonical row of every
// trade, and the encodings are made from it.

import KernelAPI

/// One trade as V1 keeps it: `TradeRecord` without its `TradeClearing` (96 bytes),
/// which follows from the security's kind, the trade date, price and quantity through
/// the fee table (`ClearingKernelV1.clear`, a pure function of those and of the
/// kernel's fee rows and planted fault, both fixed for its life) and is computed again
/// when a row is encoded or cancelled. A row restored from canonical bytes carries no
/// price: its clearing is kept as decoded, in `V1Kernel.restoredTradeClearing`.
public struct TradeRow: Sendable, Equatable {
  public var tradeId: Ident
  public var date: Int32
  public var security: Int32
  public var quantity: Int64
  public var buyAccount: Int32
  public var sellAccount: Int32
  public var buyParticipant: Int32
  public var sellParticipant: Int32
  /// The price in 0.001 CNY; for a restored row (`clearingRestored`), the index of its
  /// clearing in `V1Kernel.restoredTradeClearing`.
  var priceOrClearing: Int64
  /// Dividend tax of the sale in fen (0 when none).
  public var taxFen: Int64
  /// Shares withheld from the buyer for this trade by a default (SPEC §4.3).
  public var withheld: Int64
  /// The seller's lot slices this sale consumed: `slices[sliceStart ..< sliceStart + sliceCount]`.
  public var sliceStart: Int32
  public var sliceCount: Int32
  public var cancelled: Bool
  /// The clearing is stored (a restored row), not computed from the price.
  var clearingRestored: Bool
}

/// Trade (date, id) → trade row id, for DUPLICATE_TRADE and CANCEL. Open addressing
/// with linear probing, as `FastIndex`, but a slot is 8 bytes: the key's hash (its
/// upper 32 bits) and the row id. A lookup whose hash matches compares the trade row
/// itself (`matches`); a new trade id (nearly every TRADE) finds an empty slot and
/// reads no row. The slot position comes from the stored hash bits, so the index grows
/// without the rows. Derived storage: rebuilt on load, never iterated into state.
struct TradeIndex: Sendable {
  /// 0: empty. Otherwise `hash >> 32 << 32 | (row + 1)`.
  private var slots = [UInt64](repeating: 0, count: 16)
  private var mask = 15
  private(set) var count = 0

  /// The hash of trade `id` (UTF-8 bytes) on `date`, as stored.
  @inline(__always) static func hash(id: UnsafeRawBufferPointer, date: Int32) -> UInt64 {
    mix64(Ident.fastHash(of: id) ^ UInt64(UInt32(bitPattern: date)))
  }

  static func hash(id: Ident, date: Int32) -> UInt64 {
    var text = id.text
    return text.withUTF8 { hash(id: UnsafeRawBufferPointer($0), date: date) }
  }

  @inline(__always) private func home(_ hash: UInt64) -> Int { Int(truncatingIfNeeded: hash >> 32) & mask }

  /// Starts loading the slot a key with this hash is looked for in first.
  @inline(__always) func prefetch(hash: UInt64) { slots.prefetch(home(hash)) }

  /// Room for `n` ids at most half full (short probe runs), grown now rather than by
  /// doubling while trades arrive.
  mutating func reserveCapacity(_ n: Int) {
    var capacity = 16
    while capacity < 2 * n { capacity *= 2 }
    if capacity > slots.count { rehash(capacity) }
  }

  private mutating func rehash(_ capacity: Int) {
    precondition(capacity <= 1 << 31, "trade index is full")
    let old = slots
    slots = [UInt64](repeating: 0, count: capacity)
    mask = capacity - 1
    for s in old where s != 0 {
      var i = Int(truncatingIfNeeded: s >> 32) & mask
      while slots[i] != 0 { i = (i + 1) & mask }
      slots[i] = s
    }
  }

  /// The row whose key has `hash` and that `matches` accepts.
  @inline(__always) func find(hash: UInt64, matches: (Int32) -> Bool) -> Int32? {
    let tag = hash >> 32
    var i = home(hash)
    return slots.withUnsafeBufferPointer { slots in
      while true {
        let s = slots[i]
        if s == 0 { return nil }
        if s >> 32 == tag {
          let row = Int32(truncatingIfNeeded: s & 0xffff_ffff) - 1
          if matches(row) { return row }
        }
        i = (i + 1) & mask
      }
    }
  }

  /// Adds `row` under `hash`; the caller knows no row of the same key is there.
  mutating func insert(hash: UInt64, row: Int32) {
    precondition(row >= 0 && row < Int32.max, "trade index takes row ids")
    if (count + 1) * 2 > slots.count { rehash(slots.count * 2) }
    var i = home(hash)
    while slots[i] != 0 { i = (i + 1) & mask }
    slots[i] = (hash >> 32) << 32 | UInt64(UInt32(row + 1))
    count += 1
  }

  /// Points the key's slot (`matches` finds its row) at `row`, or adds it.
  mutating func set(hash: UInt64, row: Int32, matches: (Int32) -> Bool) {
    let tag = hash >> 32
    var i = home(hash)
    while slots[i] != 0 {
      if slots[i] >> 32 == tag && matches(Int32(truncatingIfNeeded: slots[i] & 0xffff_ffff) - 1) {
        slots[i] = tag << 32 | UInt64(UInt32(row + 1))
        return
      }
      i = (i + 1) & mask
    }
    insert(hash: hash, row: row)
  }
}

extension V1Kernel {
  /// The trade row of an applied TRADE (its clearing computed by the apply).
  static func tradeRow(
    id: Ident, date: Int32, security: Int32, priceMilli: Int64, quantity: Int64, buyAccount: Int32,
    sellAccount: Int32, buyParticipant: Int32, sellParticipant: Int32, taxFen: Int64, sliceStart: Int32,
    sliceCount: Int32
  ) -> TradeRow {
    TradeRow(
      tradeId: id, date: date, security: security, quantity: quantity, buyAccount: buyAccount,
      sellAccount: sellAccount, buyParticipant: buyParticipant, sellParticipant: sellParticipant,
      priceOrClearing: priceMilli, taxFen: taxFen, withheld: 0, sliceStart: sliceStart,
      sliceCount: sliceCount,
      cancelled: false, clearingRestored: false)
  }

  /// What the trade's clearing was when it was applied (SPEC §4.1).
  func clearing(of t: TradeRow) -> TradeClearing {
    if t.clearingRestored { return restoredTradeClearing[Int(t.priceOrClearing)] }
    return fees.clear(
      kind: securities.rows[Int(t.security)].kind, tradeDate: t.date, priceMilli: t.priceOrClearing,
      quantity: t.quantity)
  }

  /// The canonical row of trade `i` (what is encoded, digested and stored).
  public func tradeRecord(_ i: Int) -> TradeRecord {
    let t = trades.rows[i]
    return TradeRecord(
      tradeId: t.tradeId, date: t.date, security: t.security, quantity: t.quantity, buyAccount: t.buyAccount,
      sellAccount: t.sellAccount, buyParticipant: t.buyParticipant, sellParticipant: t.sellParticipant,
      clearing: clearing(of: t), taxFen: t.taxFen, cancelled: t.cancelled, withheld: t.withheld,
      sliceStart: t.sliceStart, sliceCount: t.sliceCount)
  }

  /// The in-memory row of a canonical trade row (a restore): its clearing is kept as
  /// decoded, appended to `clearings`.
  static func tradeRow(restoring r: TradeRecord, clearings: inout [TradeClearing]) -> TradeRow {
    clearings.append(r.clearing)
    return TradeRow(
      tradeId: r.tradeId, date: r.date, security: r.security, quantity: r.quantity, buyAccount: r.buyAccount,
      sellAccount: r.sellAccount, buyParticipant: r.buyParticipant, sellParticipant: r.sellParticipant,
      priceOrClearing: Int64(clearings.count - 1), taxFen: r.taxFen, withheld: r.withheld,
      sliceStart: r.sliceStart, sliceCount: r.sliceCount, cancelled: r.cancelled, clearingRestored: true)
  }

  /// The row id of the trade with UTF-8 id `idBytes` on `date` (`hash` is
  /// `TradeIndex.hash` of them), if one was applied. The closure reads the trade rows
  /// through a reference held for this call only (one that read `self` had the whole
  /// 900-byte state copied, with a retain of each of its arrays, on every TRADE).
  @inline(__always) func tradeRow(hash: UInt64, date: Int32, idBytes: UnsafeRawBufferPointer) -> Int32? {
    let rows = trades.rows
    return tradeByKey.find(hash: hash) {
      rows[Int($0)].date == date && rows[Int($0)].tradeId.v1HasBytes(idBytes)
    }
  }

  /// The row id of trade `id` on `date`, if one was applied.
  func tradeRow(id: Ident, date: Int32) -> Int32? {
    tradeByKey.find(hash: TradeIndex.hash(id: id, date: date)) {
      trades.rows[Int($0)].date == date && trades.rows[Int($0)].tradeId == id
    }
  }
}
