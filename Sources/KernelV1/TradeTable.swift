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
/// Not `Equatable`: two rows with one id compare their ids through `TradeIdBytes`.
public struct TradeRow: Sendable {
  /// Where the trade id's UTF-8 bytes start in the kernel's `TradeIdBytes`.
  public var idStart: Int64
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
  /// The trade id's length in bytes.
  public var idCount: Int32
  public var cancelled: Bool
  /// The clearing is stored (a restored row), not computed from the price.
  var clearingRestored: Bool
}

/// The trade ids of V1's trade rows, their UTF-8 bytes one after another: row `t`'s id
/// is `bytes[t.idStart ..< t.idStart + t.idCount]`. A row held its id as an `Ident` (a
/// String): the String made from the line's bytes for every TRADE was ~10% of V1's
/// apply loop (validating and copying them, perf, twenty-second session), the row was
/// not a plain value (every copy of it retained), and a day's million of them were
/// freed one at a time. Append-only, as the trade rows are; row order is the order of
/// the ids here.
struct TradeIdBytes: Sendable {
  private(set) var bytes: [UInt8] = []
  /// Bytes of all trade ids at most (1 TiB: a bound, never near).
  static let bytesMax = 1 << 40

  mutating func reserveCapacity(_ n: Int) { bytes.reserveCapacity(n) }

  /// Appends a trade id's bytes; where they start and how many there are.
  mutating func append(_ id: UnsafeRawBufferPointer) -> (start: Int64, count: Int32) {
    precondition(
      id.count <= Int(Int32.max) && bytes.count + id.count <= Self.bytesMax,
      "trade id bytes within their limit")
    let start = Int64(bytes.count)
    bytes.append(contentsOf: id)
    return (start, Int32(id.count))
  }

  /// Starts loading, for writing, the line `aheadBytes` past the last id byte: ids
  /// are appended a trade at a time, ~6 to a line, and each new line's first store
  /// waited for it (the `memmove` of the append was ~3% of V1's engine-only loop,
  /// perf, thirty-first session). Nothing beyond the reserved room. A hint only.
  @inline(__always) func prefetchForAppend(aheadBytes: Int) { bytes.v1PrefetchForAppend(ahead: aheadBytes) }

  mutating func append(_ id: Ident) -> (start: Int64, count: Int32) {
    var text = id.text
    return text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
  }

  /// `body` of the row's trade id bytes.
  @inline(__always)
  func withBytes<R>(of row: TradeRow, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    let start = Int(row.idStart)
    let end = start + Int(row.idCount)
    precondition(start >= 0 && start <= end && end <= bytes.count, "a trade row's id lies in the id bytes")
    return bytes.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[start..<end])) }
  }

  func text(of row: TradeRow) -> String { withBytes(of: row) { String(decoding: $0, as: UTF8.self) } }

  func ident(of row: TradeRow) -> Ident { Ident(text(of: row)) }

  /// Whether the row's trade id is `id`'s bytes.
  @inline(__always)
  func rowHas(_ row: TradeRow, id: UnsafeRawBufferPointer) -> Bool {
    Int(row.idCount) == id.count && withBytes(of: row) { v1SameBytes($0, id) }
  }

  /// Whether `a`'s trade id sorts before `b`'s: by bytes, a prefix first (as `Ident`).
  func precedes(_ a: TradeRow, _ b: TradeRow) -> Bool {
    withBytes(of: a) { x in withBytes(of: b) { y in x.lexicographicallyPrecedes(y) } }
  }
}

/// Trade (date, id) → trade row id, for DUPLICATE_TRADE and CANCEL. Open addressing
/// with linear probing, as `FastIndex`, but a slot is 8 bytes: the key's hash (its
/// upper 32 bits) and the row id. A lookup whose hash matches compares the trade row
/// itself (`matches`); a new trade id (nearly every TRADE) finds an empty slot and
/// reads no row. The slot position comes from the stored hash bits, so the index grows
/// without the rows. Derived storage: rebuilt on load, never iterated into state.
///
/// Decimal trade ids (`decimalValue(of:)`: 1-18 digits, no leading zero) are kept
/// first in a window of their trade date, by value: `window.slots[value - base]` holds
/// the row + 1 of that date's trade with that id, 4 bytes a trade id, consecutive ids
/// on one line. A day's trade ids are mostly consecutive numbers, and the table's slot
/// was a line at random a trade (the prefetch of it waited for a free miss buffer in
/// ~40% of the pipeline loop's own samples, perf, V1's seventh round). One window per
/// date: trade ids start again every day (the exchange numbers each day's trades from
/// 1, and so does the generator), and with one window for all dates a second day's ids
/// found the first day's trades in their slots, so every trade of every later day read
/// a first-day trade row (a miss) and went to the table (another, and the table's
/// doublings while trades arrived): V1 applied a 4-day market at half V2's rate
/// (twelfth session). A key goes to the table when its id is not decimal or lies
/// outside its date's window. A lookup in the span of its date's window reads the
/// window only: an empty slot means no trade of that key (the window is tried first on
/// every insert, and a slot holds nothing but its own key).
struct TradeIndex: Sendable {
  /// 0: empty. Otherwise `hash >> 32 << 32 | (row + 1)`.
  private var slots = [UInt64](repeating: 0, count: 16)
  private var mask = 15
  /// Keys in the table (not the windows).
  private(set) var count = 0
  /// Ids the table is to be sized for at its first insert of a non-decimal id
  /// (`reserveCapacity`), and a new date's window for its first ids: a day of decimal
  /// ids leaves the table unused, and zeroing 16 MB for it was part of the timed room
  /// for the day.
  private var reservedIds = 0
  /// One window per trade date that had a decimal id inserted, in the order of their
  /// first ids (the open day's is nearly always the last). A day of 1M trades holds a
  /// 4 MB window for as long as the state lives: 4 bytes a trade beside its 88-byte row.
  private var windows: [DateWindow] = []
  /// Keys in the windows.
  private(set) var windowCount = 0
  /// Values a window spans at most (16 MB of row ids); ids beyond go to the table.
  static let windowSpanMax = 1 << 22
  /// Slots a window starts with; also the values kept below the first id inserted.
  static let windowSpanMin = 1 << 16
  /// Digits of the longest decimal id (below 10^18 < Int64.max).
  static let decimalDigitsMax = 18

  /// The decimal ids of one trade date.
  struct DateWindow: Sendable {
    let date: Int32
    /// The smallest value the window holds.
    let base: Int64
    /// The first id's slot (values kept below it).
    let firstOffset: Int
    /// Row + 1 of the date's trade whose decimal id has value `base + i`, 0: none.
    /// Grows by powers of two up to `windowSpanMax` slots.
    var slots: [Int32] = []

    /// The slot of `decimal` when the window spans it (allocated or not).
    @inline(__always) func offset(_ decimal: Int64) -> Int? {
      guard decimal >= base else { return nil }
      let offset = decimal - base
      return offset < Int64(TradeIndex.windowSpanMax) ? Int(offset) : nil
    }
  }

  /// The value of a decimal trade id (1-18 ASCII digits, the first not 0 unless it is
  /// the only one): values and such ids correspond one to one. -1 otherwise.
  @inline(__always) static func decimalValue(of id: UnsafeRawBufferPointer) -> Int64 {
    let n = id.count
    guard n >= 1 && n <= decimalDigitsMax, n == 1 || id[0] != UInt8(ascii: "0") else { return -1 }
    var value: Int64 = 0
    for i in 0..<n {
      let digit = id[i] &- UInt8(ascii: "0")
      if digit > 9 { return -1 }
      value = value &* 10 &+ Int64(digit)
    }
    return value
  }

  static func decimalValue(of id: Ident) -> Int64 {
    var text = id.text
    return text.withUTF8 { decimalValue(of: UnsafeRawBufferPointer($0)) }
  }

  /// The index of `date`'s window, if it has one: the last first (the open day's).
  @inline(__always) private func window(of date: Int32) -> Int? {
    var i = windows.count - 1
    while i >= 0 {
      if windows[i].date == date { return i }
      i -= 1
    }
    return nil
  }

  /// `date`'s window and the slot of `decimal` in it, when a window of that date spans
  /// the value (its slot allocated or not).
  @inline(__always) private func windowSlot(date: Int32, decimal: Int64) -> (window: Int, offset: Int)? {
    guard decimal >= 0, let w = window(of: date), let offset = windows[w].offset(decimal) else { return nil }
    return (w, offset)
  }

  /// Makes window `w` hold slot `offset` (`offset < windowSpanMax`).
  private mutating func windowRoom(_ w: Int, for offset: Int) {
    precondition(offset >= 0 && offset < Self.windowSpanMax, "trade id window slot within its span")
    guard offset >= windows[w].slots.count else { return }
    var capacity = max(Self.windowSpanMin, windows[w].slots.count)
    while capacity <= offset { capacity *= 2 }
    // Room for the reserved ids at once (ids from the first one on), not by doubling.
    while capacity < windows[w].firstOffset + reservedIds && capacity < Self.windowSpanMax { capacity *= 2 }
    capacity = min(capacity, Self.windowSpanMax)
    var grown = [Int32](repeating: 0, count: capacity)
    grown.withUnsafeMutableBufferPointer { g in
      windows[w].slots.withUnsafeBufferPointer { old in
        for i in old.indices { g[i] = old[i] }
      }
    }
    windows[w].slots = grown
  }

  /// Starts `date`'s window at `decimal` (its first decimal id), keeping
  /// `windowSpanMin` values below it.
  private mutating func startWindow(date: Int32, at decimal: Int64) -> Int {
    precondition(decimal >= 0 && window(of: date) == nil, "a date's window starts once")
    let firstOffset = Int(min(decimal, Int64(Self.windowSpanMin)))
    windows.append(DateWindow(date: date, base: decimal - Int64(firstOffset), firstOffset: firstOffset))
    return windows.count - 1
  }

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

  /// Starts loading the slot a key of `date` with this hash and decimal value (-1:
  /// none) is looked for in first: its window slot, or its table slot.
  @inline(__always) func prefetch(hash: UInt64, decimal: Int64, date: Int32) {
    if let (w, offset) = windowSlot(date: date, decimal: decimal) {
      windows[w].slots.prefetch(offset)
    } else {
      slots.prefetch(home(hash))
    }
  }

  /// Room for `n` ids at most half full (short probe runs), grown now rather than by
  /// doubling while trades arrive.
  mutating func reserveCapacity(_ n: Int) {
    var capacity = 16
    while capacity < 2 * n { capacity *= 2 }
    if capacity > slots.count { rehash(capacity) }
  }

  /// Room for `n` ids in the open date's window (from its first id on) and in a new
  /// date's, and, once a key goes to the table, in the table: what `reserveCapacity`
  /// makes at once, made when first needed.
  mutating func reserveCapacityWhenNeeded(_ n: Int) {
    reservedIds = max(reservedIds, n)
    if let w = windows.indices.last {
      windowRoom(w, for: min(Self.windowSpanMax, windows[w].firstOffset + reservedIds) - 1)
    }
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

  /// The row whose key (`date`, an id with `hash` and decimal value `decimal`, -1: not
  /// decimal) `matches` accepts.
  @inline(__always) func find(hash: UInt64, decimal: Int64, date: Int32, matches: (Int32) -> Bool) -> Int32? {
    if let (w, offset) = windowSlot(date: date, decimal: decimal) {
      guard offset < windows[w].slots.count else { return nil }
      let stored = windows[w].slots[offset]
      if stored == 0 { return nil }
      // A window slot holds its own key only (`insert`, `set`): the check guards that.
      precondition(matches(stored - 1), "a trade id window slot holds another key")
      return stored - 1
    }
    return find(hash: hash, matches: matches)
  }

  /// Adds `row` under (`date`, `hash`, `decimal`: -1 not decimal); the caller knows no
  /// row of the same key is there.
  mutating func insert(hash: UInt64, decimal: Int64, date: Int32, row: Int32) {
    precondition(row >= 0 && row < Int32.max, "trade index takes row ids")
    if let (w, offset) = windowSlotMaking(date: date, decimal: decimal) {
      precondition(windows[w].slots[offset] == 0, "a new key's window slot is empty")
      windows[w].slots[offset] = row + 1
      windowCount += 1
      return
    }
    if reservedIds > 0 && count == 0 {
      // The table's first key: its room for the reserved ids at once.
      reserveCapacity(reservedIds)
    }
    insert(hash: hash, row: row)
  }

  /// Points the key's slot (`matches` finds its row) at `row`, or adds it.
  mutating func set(hash: UInt64, decimal: Int64, date: Int32, row: Int32, matches: (Int32) -> Bool) {
    precondition(row >= 0 && row < Int32.max, "trade index takes row ids")
    if let (w, offset) = windowSlotMaking(date: date, decimal: decimal) {
      let stored = windows[w].slots[offset]
      precondition(stored == 0 || matches(stored - 1), "a trade id window slot holds another key")
      if stored == 0 { windowCount += 1 }
      windows[w].slots[offset] = row + 1
      return
    }
    set(hash: hash, row: row, matches: matches)
  }

  /// The slot for `decimal` in `date`'s window (the window starts at the date's first
  /// decimal id and grows to hold the slot), or nil for an id no window takes.
  @inline(__always) private mutating func windowSlotMaking(date: Int32, decimal: Int64) -> (
    window: Int, offset: Int
  )? {
    guard decimal >= 0 else { return nil }
    let w = window(of: date) ?? startWindow(date: date, at: decimal)
    guard let offset = windows[w].offset(decimal) else { return nil }
    windowRoom(w, for: offset)
    return (w, offset)
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
    id: (start: Int64, count: Int32), date: Int32, security: Int32, priceMilli: Int64, quantity: Int64,
    buyAccount: Int32, sellAccount: Int32, buyParticipant: Int32, sellParticipant: Int32, taxFen: Int64,
    sliceStart: Int32, sliceCount: Int32
  ) -> TradeRow {
    TradeRow(
      idStart: id.start, date: date, security: security, quantity: quantity, buyAccount: buyAccount,
      sellAccount: sellAccount, buyParticipant: buyParticipant, sellParticipant: sellParticipant,
      priceOrClearing: priceMilli, taxFen: taxFen, withheld: 0, sliceStart: sliceStart,
      sliceCount: sliceCount, idCount: id.count, cancelled: false, clearingRestored: false)
  }

  /// What the trade's clearing was when it was applied (SPEC §4.1).
  func clearing(of t: TradeRow) -> TradeClearing {
    if t.clearingRestored { return restoredTradeClearing[Int(t.priceOrClearing)] }
    return fees.clear(
      kind: securities.rows[Int(t.security)].kind, tradeDate: t.date, priceMilli: t.priceOrClearing,
      quantity: t.quantity)
  }

  /// The clearing of `t` through `rates`, the fee rates of the last date asked for,
  /// looked up again only when `t`'s date differs: a walk over the trade rows (a
  /// snapshot, the digest) looked up the eight rates of every row on its own (~6% of
  /// V1's digest snapshot, perf, twenty-eighth session). The apply path's arithmetic
  /// (`ClearingKernelV1.clear(ratesAt:)`), which the tests hold equal to the other.
  func clearing(of t: TradeRow, rates: inout ClearingKernelV1.RatesOnDate) -> TradeClearing {
    if t.clearingRestored { return restoredTradeClearing[Int(t.priceOrClearing)] }
    if rates.date != t.date { rates = fees.rates(on: t.date) }
    return ClearingKernelV1.clear(
      kind: securities.rows[Int(t.security)].kind, priceMilli: t.priceOrClearing, quantity: t.quantity,
      ratesAt: &rates)
  }

  /// The canonical row of trade `i` (what is encoded, digested and stored).
  public func tradeRecord(_ i: Int) -> TradeRecord {
    var rates = ClearingKernelV1.RatesOnDate.none
    return tradeRecord(i, rates: &rates)
  }

  /// The same, the fee rates kept in `rates` from one row to the next.
  func tradeRecord(_ i: Int, rates: inout ClearingKernelV1.RatesOnDate) -> TradeRecord {
    let t = trades.rows[i]
    return TradeRecord(
      tradeId: tradeIds.ident(of: t), date: t.date, security: t.security, quantity: t.quantity,
      buyAccount: t.buyAccount,
      sellAccount: t.sellAccount, buyParticipant: t.buyParticipant, sellParticipant: t.sellParticipant,
      clearing: clearing(of: t, rates: &rates), taxFen: t.taxFen, cancelled: t.cancelled,
      withheld: t.withheld,
      sliceStart: t.sliceStart, sliceCount: t.sliceCount)
  }

  /// The in-memory row of a canonical trade row (a restore): its clearing is kept as
  /// decoded, appended to `clearings`.
  static func tradeRow(
    restoring r: TradeRecord, clearings: inout [TradeClearing], ids: inout TradeIdBytes
  ) -> TradeRow {
    clearings.append(r.clearing)
    let id = ids.append(r.tradeId)
    return TradeRow(
      idStart: id.start, date: r.date, security: r.security, quantity: r.quantity, buyAccount: r.buyAccount,
      sellAccount: r.sellAccount, buyParticipant: r.buyParticipant, sellParticipant: r.sellParticipant,
      priceOrClearing: Int64(clearings.count - 1), taxFen: r.taxFen, withheld: r.withheld,
      sliceStart: r.sliceStart, sliceCount: r.sliceCount, idCount: id.count, cancelled: r.cancelled,
      clearingRestored: true)
  }

  /// The row id of the trade with UTF-8 id `idBytes` on `date` (`hash` is
  /// `TradeIndex.hash` of them), if one was applied. The closure reads the trade rows
  /// through a reference held for this call only (one that read `self` had the whole
  /// 900-byte state copied, with a retain of each of its arrays, on every TRADE).
  @inline(__always) func tradeRow(
    hash: UInt64, decimal: Int64, date: Int32, idBytes: UnsafeRawBufferPointer
  ) -> Int32? {
    let rows = trades.rows
    let ids = tradeIds
    return tradeByKey.find(hash: hash, decimal: decimal, date: date) {
      rows[Int($0)].date == date && ids.rowHas(rows[Int($0)], id: idBytes)
    }
  }

  /// The row id of trade `id` on `date`, if one was applied.
  func tradeRow(id: Ident, date: Int32) -> Int32? {
    var text = id.text
    return text.withUTF8 {
      let bytes = UnsafeRawBufferPointer($0)
      return tradeRow(
        hash: TradeIndex.hash(id: bytes, date: date), decimal: TradeIndex.decimalValue(of: bytes), date: date,
        idBytes: bytes)
    }
  }

  /// The trade id of trade row `i`.
  public func tradeId(ofRow i: Int) -> Ident { tradeIds.ident(of: trades.rows[i]) }
}
