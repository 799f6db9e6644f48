// V2Kernel.applyTrades: a run of TRADE lines applied 8 at a time, the cache misses
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
//   1. From the line and the small tables alone (securities, units, today's clearing
//      rows by participant and security: always cached): hash the trade id (salted
//      with today's day) and both account ids, prefetch their `tradeIds` / `accountIx`
//      slots; prefetch the entry of today's clearing-row table of both parties.
//   2. Read the account slots (stage 1's loads, now arriving) for the account ids;
//      prefetch both `positionIx` slots and the seller's account-kind byte; read the
//      clearing-row entries and prefetch both clearing rows when the table knows them.
//   3. Read the position slots; prefetch both position rows. A buyer's lookup that
//      finds no position (the usual purchase) keeps where it ended: the apply then reads
//      that one slot (`IntKeyTable.isEmpty(slot:slotCount:)`) instead of probing again.
//   4. Read the position rows; prefetch the seller's oldest lot (`lotHead`, the first
//      a sale consumes) and the buyer's newest lot and the slot after it (where a
//      purchase's lot is compared and usually appended).
// The groups overlap by one: group g's four stages run before group g - 1 is applied,
// so that even a group's first trades find stage 4's lots arrived (with the apply right
// after stage 4, they still met those misses in flight: the seller's lot read was the
// largest stall in `consumeOldest`). Each group's append rows are prefetched just before
// the look-ahead that precedes its apply (`prefetchAppends`).
// A hash slot is prefetched whole with the slot after it (`prefetchSlotPair`: a slot
// that straddles two lines, or a probe that goes on to the next slot, used to meet a
// full miss in the next stage). Then the group's trades are applied one after another
// by the ordinary `applyTrade`, whose own lookups find those lines cached (a clearing
// row stage 1 found is used as is: see `executeTrade`). The look-ahead keeps only row ids and
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
// trade) as the largest stall left inside the apply: hence their place in stage 1 (the
// index slots are gone since: today's rows are found by index, `todayClearing`).
// Later (the twenty-first session): with the groups pipelined by one and the accounts
// resolved at the parser's edge (V2TradeResolver.swift), 8 beat 16 in 5 of 6 alternated
// pairs (by a few percent: within the noise each, not together); a rolling pipeline
// (stage distance 2 or 6) and re-prefetching stage 4's lines a few trades before their
// apply both lost to the groups: `perf` then showed the prefetch instructions themselves
// waiting (all line-fill buffers busy), so that every extra prefetch costs.
// Then (2026-12-06 evening, an Intel host, with a group's clearing and settlement
// additions made after its last trade: `applyClearingDeltas`) 16 beat 8 in 9 of 12
// alternated rounds of 3 runs (medians 2.55 -> 2.64 and 2.50 -> 2.63M trades/s). Tried
// there and dropped: a group's appended rows requested one or two groups earlier (no
// gain), none requested (1.89 against 2.66M: they stay), stage 1 to stage 4 spread over
// three groups and stage 3 reading only the slots stage 1 requested (no gain). Kept: the
// buyer's empty slot passed to the apply (stage 3), with the trade-id window's appended
// entries requested as the other appended rows are (`TradeIdIndex.prefetchAppends`): 8 of
// 8 alternated rounds faster, medians 2.65 -> 2.87M trades/s.

import KernelAPI

@_silgen_name("llvm.prefetch.p0")
func v2Prefetch(_ address: UnsafeRawPointer, _ write: Int32, _ locality: Int32, _ cacheType: Int32)

extension Array {
  /// Starts loading every cache line of element `index` (its first and last byte: a row
  /// of 24, 48 or 96 bytes often straddles two lines). Does nothing out of range.
  @inline(__always) func prefetchRow(_ index: Int) {
    guard index >= 0 && index < count else { return }
    withUnsafeBufferPointer {
      let row = UnsafeRawPointer($0.baseAddress! + index)
      v2Prefetch(row, 0, 3, 1)
      v2Prefetch(row + (MemoryLayout<Element>.size - 1), 0, 3, 1)
    }
  }

  /// Starts loading, for writing, the cache lines of the next `n` elements an append
  /// would write (`count ..< count + n`, within the reserved capacity only: the pages are
  /// there, `reserveCapacity(events:)` wrote them). An append to a line not in the cache
  /// holds every later store in the store buffer until the line arrives; requested a
  /// group ahead, the line is there when the append comes. Does nothing without room.
  @inline(__always) func prefetchAppends(_ n: Int) {
    let end = Swift.min(count + n, capacity)
    guard end > count else { return }
    withUnsafeBufferPointer {
      let start = UnsafeRawPointer($0.baseAddress! + $0.count)
      let bytes = (end - $0.count) * MemoryLayout<Element>.stride
      var offset = 0
      while offset < bytes {
        v2Prefetch(start + offset, 1, 3, 1)
        offset += 64
      }
      v2Prefetch(start + (bytes - 1), 1, 3, 1)
    }
  }

  /// Starts loading every cache line of elements `index` and `index + 1` (a hash
  /// table's home slot and the one a linear probe reads next: together at most 2 lines
  /// for slots of up to 32 bytes). A slot that straddles two lines, prefetched by its
  /// first byte only, left its second line to a full miss at the lookup: a quarter of
  /// the 24-byte account slots. Does nothing out of range (the slot after the last is
  /// not prefetched: a probe wraps to slot 0 there).
  @inline(__always) func prefetchSlotPair(_ index: Int) {
    guard index >= 0 && index < count else { return }
    withUnsafeBufferPointer {
      let slot = UnsafeRawPointer($0.baseAddress! + index)
      v2Prefetch(slot, 0, 3, 1)
      let last = index + 1 < $0.count ? 2 * MemoryLayout<Element>.stride - 1 : MemoryLayout<Element>.size - 1
      v2Prefetch(slot + last, 0, 3, 1)
    }
  }
}

/// What the look-ahead learned of one trade of the group: probes, keys and row ids.
/// The security, unit and account ids are exact (no TRADE adds any: they cannot change
/// during a run of TRADEs) and the apply uses them; a position id found is exact too
/// (positions are never removed or re-keyed), one not found is looked up again at the
/// apply (an earlier trade of the group may create it). Everything else is a hint.
struct V2TradeHint {
  /// The trade id's probe (today's salt), when `sameDay`.
  var id: TradeIdIndex.Probe
  var buyer: KeyBytesTable.Probe
  var seller: KeyBytesTable.Probe
  /// A day is open and the trade is of that day: the apply's fast path.
  var sameDay = false
  /// The resolver found both accounts: stage 1 requested the position slots.
  var accountsResolved = false
  /// -1: unknown.
  var security: Int32 = -1
  var buyUnit: Int32 = -1
  var sellUnit: Int32 = -1
  /// -1: unknown, or not looked up (unknown security).
  var buyerId: Int32 = -1
  var sellerId: Int32 = -1
  /// -1 until both accounts and the security are known.
  var sellKey: Int64 = -1
  var buyKey: Int64 = -1
  var sellPos: Int32 = -1
  var buyPos: Int32 = -1
  /// When stage 3 found no buyer position: where its lookup ended, and the position
  /// table's slot count then (`IntKeyTable.isEmpty(slot:slotCount:)`); -1: not known.
  var buyEmptySlot = -1
  var buySlotCount = -1
  /// Today's clearing rows of the buyer and the seller when known (-1: not known).
  var buyClearing: Int32 = -1
  var sellClearing: Int32 = -1
  /// Where stage 2 reads those two in `todayClearing` (-1: not today's table).
  var buyAt = -1
  var sellAt = -1

  static var none: V2TradeHint {
    let empty = KeyBytesTable.Probe(UnsafeRawBufferPointer(start: nil, count: 0), salt: 0)
    return V2TradeHint(
      id: TradeIdIndex.Probe(UnsafeRawBufferPointer(start: nil, count: 0), day: 0), buyer: empty,
      seller: empty)
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
    // Two groups' hints: the look-ahead of group g runs before group g - 1 is applied,
    // so that g - 1's last loads (stage 4's lots, requested just before its apply in a
    // one-group loop: the first trades met them still in flight) have all of group g's
    // four stages to arrive. The hints of g are then older by one group's applies: as
    // within a group, a stale hint is only a late or wrong prefetch (`V2TradeHint`).
    let size = Self.tradeGroupSize
    // A buffer of its own, not an array: an element written through an array checks
    // the array's uniqueness (a runtime call, three stages x 8 trades a group), and in
    // a closure over an array's buffer each call of a non-mutating method copied the
    // whole kernel value (a retain and a release of every field: 6x slower, measured).
    let hints = UnsafeMutableBufferPointer<V2TradeHint>.allocate(capacity: 2 * size)
    hints.initialize(repeating: .none)
    defer { hints.deallocate() }
    // Without effects, a group's additions to its clearing and settlement rows are made
    // after its last trade (`applyClearingDeltas`): nothing reads those rows in between
    // (an applied TRADE's effects do: with effects each trade adds its own). Why: the
    // clearing rows, though prefetched twice, were the largest stall inside the apply
    // (a third of `executeTrade`'s samples on their first read); read for a group (then 8) in a
    // row their loads overlap (perf: 313 of 4,316 samples then, 76 of 4,254 now), and
    // each table's uniqueness check is made once a group. Engine only, alternated with
    // the binary before (12 rounds of 3 runs): medians 2.17 -> 2.41 and 2.52 -> 2.59M
    // trades/s, faster in 9 of 12 rounds.
    let deltas = UnsafeMutablePointer<V2ClearingDelta>.allocate(capacity: size)
    defer { deltas.deallocate() }
    do {
      // The group looked ahead but not applied yet, and where its hints are.
      var pending = 0..<0
      var pendingHints = 0
      var start = 0
      var slot = 0
      while start < n || !pending.isEmpty {
        // The rows the pending group appends (a trade row each, a new position and its
        // first lot for most, a slice or more), requested before the next look-ahead.
        let count = pending.count
        self.trades.prefetchAppends(count)
        positions.prefetchAppends(count)
        pool.lots.prefetchAppends(count)
        slices.prefetchAppends(count + count / 4)
        pendingPositions.prefetchAppends(count)
        tradeIds.prefetchAppends(count)
        let end = min(start + size, n)
        for i in start..<end {
          let t = trades[i]
          hintLineLevel(
            t.trade, t.hints, UnsafeRawBufferPointer(rebasing: bytes[t.line]), &hints[slot + i - start])
        }
        for i in start..<end { hintSlotLevel(&hints[slot + i - start]) }
        for i in start..<end { hintPositionLevel(&hints[slot + i - start]) }
        for i in start..<end { hintLotLevel(hints[slot + i - start]) }
        var deferred = 0
        for i in pending {
          let t = trades[i]
          let delta = effectsOn ? nil : deltas + deferred
          outcomes[i] = applyHintedTrade(
            t.trade, line: UnsafeRawBufferPointer(rebasing: bytes[t.line]), seq: t.seq,
            hints[pendingHints + i - pending.lowerBound], clearingDelta: delta)
          if delta != nil && outcomes[i] == .applied { deferred += 1 }
        }
        if deferred > 0 { applyClearingDeltas(UnsafeBufferPointer(start: deltas, count: deferred)) }
        pending = start..<end
        pendingHints = slot
        start = end
        slot = size - slot
      }
    }
  }

  /// `applyTrade` with the group's look-ahead: the same checks in the same order, on
  /// the ids the look-ahead found (see `V2TradeHint`) instead of looking them up again.
  @inline(__always)
  mutating func applyHintedTrade(
    _ t: TradeLine, line: UnsafeRawBufferPointer, seq: Int64, _ h: V2TradeHint,
    clearingDelta: UnsafeMutablePointer<V2ClearingDelta>?
  ) -> Outcome {
    let outcome: Outcome
    if !h.sameDay {
      outcome = globals.dayOpen ? .rejected(.wrongDate) : .rejected(.dayNotOpen)
    } else {
      @inline(__always) func known(_ id: Int32) -> Int32? { id >= 0 ? id : nil }
      outcome = tradeChecked(
        day: Int32(days.count - 1), date: t.date, priceMilli: t.priceMilli, quantity: t.quantity,
        isDuplicate: tradeIds.find(h.id) != nil, security: known(h.security), buyAccount: known(h.buyerId),
        sellAccount: known(h.sellerId), buyUnit: known(h.buyUnit), sellUnit: known(h.sellUnit),
        sellPosition: h.sellPos, buyPosition: h.buyPos, buyClearing: h.buyClearing,
        sellClearing: h.sellClearing, slotsPrefetched: h.sellKey >= 0, buyEmptySlot: h.buyEmptySlot,
        buySlotCount: h.buySlotCount, tradeIdProbe: h.id, clearingDelta: clearingDelta)
    }
    return tradeDone(outcome, seq: seq, tradeId: UnsafeRawBufferPointer(rebasing: line[t.tradeId]))
  }

  /// Stage 1: what the line, the resolver's ids (`V2TradeResolver`) and the small tables
  /// give; starts the big tables' slots: the position slots when the resolver found
  /// both accounts, else the account slots.
  @inline(__always)
  func hintLineLevel(
    _ t: TradeLine, _ r: TradeHints, _ line: UnsafeRawBufferPointer, _ h: inout V2TradeHint
  ) {
    h.sameDay = globals.dayOpen && t.date == globals.lastOpened
    if h.sameDay {
      let idBytes = UnsafeRawBufferPointer(rebasing: line[t.tradeId])
      h.id =
        r.isSet
        ? TradeIdIndex.Probe(idBytes, day: Int32(days.count - 1), value: r.key)
        : tradeIds.probe(idBytes, day: Int32(days.count - 1))
      tradeIds.prefetch(h.id)
    }
    // An id the resolver found is the table's (ids never change); -1 (not found there,
    // perhaps added since its copy) is looked up here, or in stage 2 for the accounts.
    h.buyerId = r.isSet ? r.rows.0 : -1
    h.sellerId = r.isSet ? r.rows.1 : -1
    let resolvedSecurity = r.isSet ? r.rows.2 : -1
    let resolvedBuyUnit = r.isSet ? r.rows.3 : -1
    let resolvedSellUnit = r.isSet ? r.rows.4 : -1
    h.accountsResolved = h.buyerId >= 0 && h.sellerId >= 0
    if !h.accountsResolved {
      h.buyer = KeyBytesTable.Probe(plain: UnsafeRawBufferPointer(rebasing: line[t.buyAccount]))
      h.seller = KeyBytesTable.Probe(plain: UnsafeRawBufferPointer(rebasing: line[t.sellAccount]))
      accountIx.prefetch(h.buyer)
      accountIx.prefetch(h.seller)
    }
    h.security =
      resolvedSecurity >= 0
      ? resolvedSecurity : securityIx.find(UnsafeRawBufferPointer(rebasing: line[t.security])) ?? -1
    h.buyUnit =
      resolvedBuyUnit >= 0
      ? resolvedBuyUnit : unitIx.find(UnsafeRawBufferPointer(rebasing: line[t.buyUnit])) ?? -1
    h.sellUnit =
      resolvedSellUnit >= 0
      ? resolvedSellUnit : unitIx.find(UnsafeRawBufferPointer(rebasing: line[t.sellUnit])) ?? -1
    h.sellKey = -1
    h.buyKey = -1
    if h.accountsResolved && h.security >= 0 { hintPositionSlots(&h) }
    h.buyClearing = -1
    h.sellClearing = -1
    h.buyAt = -1
    h.sellAt = -1
    let sec = h.security
    guard sec >= 0, !days.isEmpty, h.buyUnit >= 0, h.sellUnit >= 0 else { return }
    let day = Int32(days.count - 1)
    // Today's table entries of both clearing rows (one line: see `todayIndex`), read in
    // stage 2: the table, though small, is often out of the L2 by now.
    h.buyAt = knownClearingIndex(day: day, participant: units[Int(h.buyUnit)].participant, security: sec)
    h.sellAt = knownClearingIndex(day: day, participant: units[Int(h.sellUnit)].participant, security: sec)
    todayClearing.prefetch(h.buyAt)
    todayClearing.prefetch(h.sellAt)
  }

  /// Stage 2: the account slots; starts the position slots and the seller's account
  /// kind.
  @inline(__always)
  func hintSlotLevel(_ h: inout V2TradeHint) {
    guard h.security >= 0 else { return }
    // (An entry read now is still today's at the apply: the table is started over only
    // by a new day or new participants or securities, none of which a TRADE brings.)
    h.buyClearing = knownClearingRow(at: h.buyAt)
    h.sellClearing = knownClearingRow(at: h.sellAt)
    clearingRows.prefetchRow(Int(h.buyClearing))
    clearingRows.prefetchRow(Int(h.sellClearing))
    if h.accountsResolved { return }
    if h.buyerId < 0 { h.buyerId = accountIx.find(h.buyer) ?? -1 }
    if h.sellerId < 0 { h.sellerId = accountIx.find(h.seller) ?? -1 }
    guard h.buyerId >= 0, h.sellerId >= 0 else { return }
    hintPositionSlots(&h)
  }

  /// Both accounts and the security known: the position keys, their slots and the
  /// seller's account kind requested.
  @inline(__always)
  func hintPositionSlots(_ h: inout V2TradeHint) {
    h.sellKey = Self.positionKey(h.sellerId, h.security)
    h.buyKey = Self.positionKey(h.buyerId, h.security)
    positionIx.prefetch(h.sellKey)
    positionIx.prefetch(h.buyKey)
    accountKind.prefetch(Int(h.sellerId))
  }

  /// Stage 3: the position slots; starts the position rows.
  @inline(__always)
  func hintPositionLevel(_ h: inout V2TradeHint) {
    h.sellPos = -1
    h.buyPos = -1
    h.buyEmptySlot = -1
    guard h.sellKey >= 0 else { return }
    if let s = positionIx[h.sellKey] {
      h.sellPos = s
      positions.prefetchRow(Int(s))
    }
    h.buyEmptySlot = -1
    let buy = positionIx.lookup(h.buyKey)
    if let b = buy.id {
      h.buyPos = b
      positions.prefetchRow(Int(b))
    } else {
      h.buyEmptySlot = buy.emptySlot
      h.buySlotCount = positionIx.slotCount
    }
  }

  /// Stage 4: the position rows; starts the seller's oldest lot and the buyer's newest
  /// and the slot after it.
  @inline(__always)
  func hintLotLevel(_ h: V2TradeHint) {
    // The clearing rows again, nearer their use (stage 1's lines may have left L1).
    clearingRows.prefetchRow(Int(h.buyClearing))
    clearingRows.prefetchRow(Int(h.sellClearing))
    if h.sellPos >= 0 { pool.lots.prefetchRow(Int(positions[Int(h.sellPos)].lotHead)) }
    if h.buyPos >= 0 {
      let end = Int(positions[Int(h.buyPos)].lotEnd)
      pool.lots.prefetch(end - 1)
      pool.lots.prefetch(end)
    }
  }
}
