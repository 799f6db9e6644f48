// V2Kernel.applyTrades: a run of TRADE lines applied 16 at a time, the cache misses
// of each group overlapped before any of its trades is applied.
//
// Why: a TRADE of the benchmark day reads about a dozen rows that are rarely in the
// cache (the trade-id slot, both account slots, both position slots, both position
// rows, the seller's oldest lot, the buyer's newest lot, both clearing rows and their
// index slots, the security row). Each miss costs ~180 ns when the next address depends
// on it, but misses issued together overlap (eight in flight cost ~22 ns each). Within
// one trade they cannot all overlap: each level's address comes from the level before.
// Across trades they can: trade i+1's chain does not depend on trade i's (or, when it
// does, the hint is merely late or wrong).
//
// How: for a group of `tradeGroupSize` consecutive trades, four look-ahead stages run
// over the whole group, each one level deeper, each only READING the state and ending
// in prefetches (`Array.prefetch`: a hint, never a fault, never a write):
//   1. From the line and the small tables alone (securities, units: always cached):
//      hash the trade id (salted with today's day) and both account ids, prefetch
//      their `tradeIx` / `accountIx` slots; prefetch the security row; compute both
//      clearing keys (today, participant, security) and prefetch their `clearingIx`
//      slots.
//   2. Read the account slots (stage 1's loads, now arriving) for the account ids;
//      prefetch both `positionIx` slots and the seller's account-kind byte. Read the
//      clearing slots; prefetch both clearing rows.
//   3. Read the position slots; prefetch both position rows.
//   4. Read the position rows; prefetch the seller's oldest lot (`lotHead`, the first
//      a sale consumes) and the buyer's newest lot and the slot after it (where a
//      purchase's lot is compared and usually appended).
// Then the group's trades are applied one after another by the ordinary `applyTrade`,
// whose own lookups find those lines cached. The look-ahead keeps only row ids and
// keys in a small per-call array, never a pointer, and decides nothing: outcomes,
// effects and state are exactly those of `applyTrade` one after another. A trade of
// the group that changes what a later one reads (a new position, a lot segment moved,
// a new clearing row) only makes that later hint miss or point at a stale line.
//
// Why 16 and these stages (measured on the 1M-trade day, `tally bench --no-state
// --no-whole-process`, alternated with the one-by-one loop): groups of 4, 8, 16 and 32
// and a rolling pipeline (each stage a fixed distance ahead of the apply) all gained
// roughly +40-70% over one `applyTrade` after another; their differences stayed within
// the machine's noise and 16 had the best median. `perf` showed, once the big tables'
// misses overlapped, the clearing rows and their index slots (L2/L3, hit by every
// trade) as the largest stall left inside the apply: hence their place in stages 1-2.

import KernelAPI

/// What the look-ahead learned of one trade of the group: keys and row ids of the next
/// level (hints only; a wrong one costs a miss, nothing else).
struct V2TradeHint {
  var buyer: KeyBytesTable.Probe
  var seller: KeyBytesTable.Probe
  /// The security id until stage 2 (-1: unknown security), then the position keys.
  var sellKey: Int64 = -1
  var buyKey: Int64 = -1
  var sellPos: Int32 = -1
  var buyPos: Int32 = -1
  /// -1 when not computed (no day opened yet, or a unit unknown).
  var buyClearingKey: Int64 = -1
  var sellClearingKey: Int64 = -1

  static var none: V2TradeHint {
    let empty = KeyBytesTable.Probe(UnsafeRawBufferPointer(start: nil, count: 0), salt: 0)
    return V2TradeHint(buyer: empty, seller: empty)
  }
}

extension V2Kernel {
  /// Trades whose loads are started together before the first of them is applied.
  static let tradeGroupSize = 16

  public mutating func applyTrades(
    _ trades: UnsafeBufferPointer<TradeInput>, bytes: UnsafeRawBufferPointer,
    outcomes: UnsafeMutableBufferPointer<Outcome>
  ) {
    precondition(outcomes.count == trades.count, "one outcome per trade")
    let n = trades.count
    var hints = [V2TradeHint](repeating: .none, count: Self.tradeGroupSize)
    var start = 0
    while start < n {
      let end = min(start + Self.tradeGroupSize, n)
      for i in start..<end {
        let t = trades[i]
        hintLineLevel(t.trade, UnsafeRawBufferPointer(rebasing: bytes[t.line]), &hints[i - start])
      }
      for i in start..<end { hintSlotLevel(&hints[i - start]) }
      for i in start..<end { hintPositionLevel(&hints[i - start]) }
      for i in start..<end { hintLotLevel(hints[i - start]) }
      for i in start..<end {
        let t = trades[i]
        outcomes[i] = applyTrade(t.trade, line: UnsafeRawBufferPointer(rebasing: bytes[t.line]), seq: t.seq)
      }
      start = end
    }
  }

  /// Stage 1: what the line and the small tables give; starts the big tables' slots.
  @inline(__always)
  func hintLineLevel(_ t: TradeLine, _ line: UnsafeRawBufferPointer, _ h: inout V2TradeHint) {
    if globals.dayOpen && t.date == globals.lastOpened {
      tradeIx.prefetch(
        KeyBytesTable.Probe(UnsafeRawBufferPointer(rebasing: line[t.tradeId]), salt: Int32(days.count - 1)))
    }
    h.buyer = KeyBytesTable.Probe(UnsafeRawBufferPointer(rebasing: line[t.buyAccount]), salt: 0)
    h.seller = KeyBytesTable.Probe(UnsafeRawBufferPointer(rebasing: line[t.sellAccount]), salt: 0)
    accountIx.prefetch(h.buyer)
    accountIx.prefetch(h.seller)
    h.sellKey = -1
    h.buyKey = -1
    h.buyClearingKey = -1
    h.sellClearingKey = -1
    guard let sec = securityIx.find(UnsafeRawBufferPointer(rebasing: line[t.security])) else { return }
    h.sellKey = Int64(sec)
    h.buyKey = Int64(sec)
    securities.prefetch(Int(sec))
    guard !days.isEmpty, let bu = unitIx.find(UnsafeRawBufferPointer(rebasing: line[t.buyUnit])),
      let su = unitIx.find(UnsafeRawBufferPointer(rebasing: line[t.sellUnit]))
    else { return }
    let day = Int32(days.count - 1)
    h.buyClearingKey = Self.clearingKey(day: day, participant: units[Int(bu)].participant, security: sec)
    h.sellClearingKey = Self.clearingKey(day: day, participant: units[Int(su)].participant, security: sec)
    clearingIx.prefetch(h.buyClearingKey)
    clearingIx.prefetch(h.sellClearingKey)
  }

  /// Stage 2: the account and clearing slots; starts the position slots, the seller's
  /// account kind and the clearing rows.
  @inline(__always)
  func hintSlotLevel(_ h: inout V2TradeHint) {
    if h.buyClearingKey >= 0 {
      if let c = clearingIx[h.buyClearingKey] { clearingRows.prefetch(Int(c)) }
      if let c = clearingIx[h.sellClearingKey] { clearingRows.prefetch(Int(c)) }
    }
    guard h.sellKey >= 0, let buyer = accountIx.find(h.buyer), let seller = accountIx.find(h.seller) else {
      h.sellKey = -1
      return
    }
    let sec = Int32(truncatingIfNeeded: h.sellKey)
    h.sellKey = Self.positionKey(seller, sec)
    h.buyKey = Self.positionKey(buyer, sec)
    positionIx.prefetch(h.sellKey)
    positionIx.prefetch(h.buyKey)
    accountKind.prefetch(Int(seller))
  }

  /// Stage 3: the position slots; starts the position rows.
  @inline(__always)
  func hintPositionLevel(_ h: inout V2TradeHint) {
    h.sellPos = -1
    h.buyPos = -1
    guard h.sellKey >= 0 else { return }
    if let s = positionIx[h.sellKey] {
      h.sellPos = s
      positions.prefetch(Int(s))
    }
    if let b = positionIx[h.buyKey] {
      h.buyPos = b
      positions.prefetch(Int(b))
    }
  }

  /// Stage 4: the position rows; starts the seller's oldest lot and the buyer's newest
  /// and the slot after it.
  @inline(__always)
  func hintLotLevel(_ h: V2TradeHint) {
    if h.sellPos >= 0 { pool.lots.prefetch(Int(positions[Int(h.sellPos)].lotHead)) }
    if h.buyPos >= 0 {
      let end = Int(positions[Int(h.buyPos)].lotEnd)
      pool.lots.prefetch(end - 1)
      pool.lots.prefetch(end)
    }
  }
}
