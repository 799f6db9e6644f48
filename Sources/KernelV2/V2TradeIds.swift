// V2's trade-id index: (trade id bytes, day ordinal) → trade number.
//
// Why not one hash table: on the 1M-trade day the keyed table (`KeyBytesTable`, 24-byte
// slots at a load of at most 2/3) was 48 MB of fresh memory for a million ids, written
// (zeroed by the operating system) inside the timed apply, and one slot line read per
// trade. Trade ids are in practice decimal numbers, consecutive within a day.
//
// How: per day, a window of decimal values `base ..< base + span` maps a canonical
// decimal id (1 to 18 ASCII digits, no leading zero except "0" itself) straight to its
// trade number, 4 bytes an entry (`Window.ids`, -1 empty), the entries appended as the
// values are reached (consecutive ids: one new entry per trade, 16 trades a cache line).
// A day's window is fixed (base and span) when its first decimal id is added, so
// whether an id lives in the window or in `others` (a `KeyBytesTable` salted by the
// day, for every other id) depends on the id and that fixed window only: a lookup asks
// exactly one of them. Which ids go where is invisible to state and outputs (both
// answer the same question exactly); nothing here is ever iterated.
// Limits: a window spans at most `spanMax` values (4 bytes each: 256 MB at most, and
// only as far as ids actually reach); `expectedTrades` (a hint: the events about to
// come) sizes the span of windows made after it, at least `spanMin`.

import KernelAPI

struct TradeIdIndex: Sendable {
  struct Window: Sendable {
    /// The decimal value of entry 0.
    var base: UInt64 = 0
    /// Values `base ..< base + span` are this window's; 0: no window yet.
    var span: UInt64 = 0
    /// Trade numbers of values `base ..< base + ids.count` (-1: none).
    var ids: [Int32] = []
  }

  /// A value that is no canonical decimal id.
  static let notDecimal = UInt64.max
  static let spanMin = 1 << 20
  static let spanMax = 1 << 26
  /// Digits of the longest decimal id kept in windows (10^18 < 2^63).
  static let digitsMax = 18

  /// By day ordinal.
  private var windows: [Window] = []
  /// Ids that are not in their day's window, salted by the day ordinal.
  private var others = KeyBytesTable()
  /// Ids added so far (the trade rows indexed: they are added in trade-number order).
  private(set) var count = 0
  /// Trades expected to be added soon (a hint for the next window's span).
  var expectedTrades = 0

  init() {}

  /// A trade id ready to look up: its bytes, day and decimal value.
  struct Probe {
    let key: UnsafeRawBufferPointer
    let day: Int32
    let value: UInt64

    @inline(__always) init(_ key: UnsafeRawBufferPointer, day: Int32) {
      self.key = key
      self.day = day
      self.value = TradeIdIndex.decimalValue(key)
    }

    /// With the key's `decimalValue` computed already (`V2TradeResolver`).
    @inline(__always) init(_ key: UnsafeRawBufferPointer, day: Int32, value: UInt64) {
      self.key = key
      self.day = day
      self.value = value
    }
  }

  /// The value of a canonical decimal id; `notDecimal` for any other bytes.
  @inline(__always) static func decimalValue(_ b: UnsafeRawBufferPointer) -> UInt64 {
    let n = b.count
    if n < 1 || n > digitsMax { return notDecimal }
    if n > 1 && b[0] == UInt8(ascii: "0") { return notDecimal }
    var v: UInt64 = 0
    for i in 0..<n {
      let d = UInt64(b[i]) &- 48
      if d > 9 { return notDecimal }
      v = v &* 10 &+ d
    }
    return v
  }

  /// The window entry of a probe: (has a window covering the value, entry offset).
  @inline(__always) private func slot(_ p: Probe) -> (covered: Bool, offset: Int) {
    let day = Int(p.day)
    guard p.value != Self.notDecimal, day < windows.count else { return (false, 0) }
    return windows.withUnsafeBufferPointer { w in
      let o = p.value &- w[day].base
      return (p.value >= w[day].base && o < w[day].span, Int(truncatingIfNeeded: o))
    }
  }

  @inline(__always) func probe(_ key: UnsafeRawBufferPointer, day: Int32) -> Probe { Probe(key, day: day) }

  /// Starts loading, for writing, the entries the next `n` ids of the latest window
  /// append (consecutive decimal ids: the usual day). `prefetch` of an id not added yet
  /// reads nothing (its entry is beyond the array), so that the append met a cold line
  /// every 16 trades.
  @inline(__always) func prefetchAppends(_ n: Int) {
    windows.withUnsafeBufferPointer { w in
      if let last = w.last { last.ids.prefetchAppends(n) }
    }
  }

  /// Starts loading the probe's entry (a hint).
  @inline(__always) func prefetch(_ p: Probe) {
    let (covered, o) = slot(p)
    if covered { windows[Int(p.day)].ids.prefetch(o) }
  }

  @inline(__always) func find(_ p: Probe) -> Int32? {
    let (covered, o) = slot(p)
    if covered {
      return windows.withUnsafeBufferPointer { w in
        w[Int(p.day)].ids.withUnsafeBufferPointer { ids in
          o < ids.count && ids[o] >= 0 ? ids[o] : nil
        }
      }
    }
    if others.count == 0 { return nil }
    return others.find(p.key, salt: p.day)
  }

  func find(_ key: String, day: Int32) -> Int32? {
    var k = key
    return k.withUTF8 { find(Probe(UnsafeRawBufferPointer($0), day: day)) }
  }

  /// Adds an id not present yet for its day, as trade number `id` (the next one).
  mutating func insert(_ p: Probe, id: Int32) {
    precondition(Int(id) == count, "TradeIdIndex: trade numbers are added in order")
    count += 1
    if p.value != Self.notDecimal { makeWindow(day: p.day, around: p.value) }
    let (covered, o) = slot(p)
    if !covered {
      others.insert(p.key, salt: p.day, id: id)
      return
    }
    let day = Int(p.day)
    if o < windows[day].ids.count {
      precondition(windows[day].ids[o] < 0, "TradeIdIndex: an id added twice")
      windows[day].ids[o] = id
    } else if o == windows[day].ids.count {
      windows[day].ids.append(id)
    } else {
      windows[day].ids.append(contentsOf: repeatElement(-1, count: o - windows[day].ids.count))
      windows[day].ids.append(id)
    }
  }

  mutating func insert(_ key: String, day: Int32, id: Int32) {
    var k = key
    k.withUTF8 { insert(Probe(UnsafeRawBufferPointer($0), day: day), id: id) }
  }

  /// Fixes day `day`'s window, when it has none, to hold `value` (its first decimal id).
  @inline(__always) private mutating func makeWindow(day d: Int32, around value: UInt64) {
    let day = Int(d)
    if day < windows.count && windows[day].span != 0 { return }
    precondition(d >= 0, "TradeIdIndex: negative day")
    while windows.count <= day { windows.append(Window()) }
    let span = min(max(4 * expectedTrades, Self.spanMin), Self.spanMax)
    // Ids usually rise through the day from the first: a little room below it.
    let base = value - min(value, UInt64(span / 16))
    windows[day].base = base
    windows[day].span = UInt64(span)
    windows[day].ids.reserveCapacity(min(span, Int(value - base) + expectedTrades + 1))
  }
}

// MARK: - Image (V2Image.swift)

extension TradeIdIndex {
  func writeImage(to w: inout ImageWriter) {
    w.tag("tradeIds")
    w.i64(Int64(count))
    w.i64(Int64(expectedTrades))
    w.i64(Int64(windows.count))
    for window in windows {
      w.u64(window.base)
      w.u64(window.span)
      w.array(window.ids)
    }
    others.writeImage(to: &w)
  }

  /// An index `writeImage` wrote for `trades` trade rows of `days` days.
  static func loadImage(from r: inout ImageReader, trades: Int, days: Int) throws(DecodeError) -> TradeIdIndex
  {
    try r.expect("tradeIds")
    var t = TradeIdIndex()
    t.count = try r.count(max: trades)
    guard t.count == trades else {
      throw DecodeError(description: "V2 image: trade-id index of \(t.count) ids for \(trades) trades")
    }
    t.expectedTrades = try r.count(max: 1 << 40)
    let n = try r.count(max: days)
    for _ in 0..<n {
      var window = Window()
      window.base = try r.u64()
      window.span = try r.u64()
      window.ids = try r.array(of: Int32.self, maxCount: spanMax)
      guard window.span <= UInt64(spanMax), window.ids.count <= Int(window.span),
        !window.ids.contains(where: { Int($0) >= trades })
      else { throw DecodeError(description: "V2 image: trade-id window out of range") }
      t.windows.append(window)
    }
    t.others = try KeyBytesTable.loadImage(from: &r, ids: trades, digitRuns: false)
    return t
  }
}
