// TRADEs applied through a look-ahead pipeline, their memory loads overlapped. A TRADE
// on the 1M-account day touches about ten rows that are nowhere near the cache (its
// trade-id slot, two account slots, two position-directory lines, two positions, the
// seller's oldest lot, the buyer's newest), in four rounds of dependent loads, each a
// miss of ~100-180 ns on this project's machines: most of a trade's time when taken
// one after another. Here every trade goes through four locating stages before it is
// applied, each stage `lookAhead` trades behind the one before: while trade i is
// applied, trade i + lookAhead has its lots' loads started, trade i + 2·lookAhead its
// positions', i + 3·lookAhead its directory lines', and i + 4·lookAhead its index
// slots'. A stage reads only lines the stage before started loading `lookAhead`
// trades' work earlier, so they have arrived, and every trade has its loads in flight
// at once with those of the 31 trades around it. Half a stage after the lots' stage,
// trade i + lookAhead/2 has the lots stage 4 could not ask for started (those of a
// position found in the directory's overflow, a sale's second lot); the trade inputs,
// their lines' bytes, the rows a trade appends and its effect records' bytes are asked
// for ahead of their first use too.
//
// Loads are hints: a trade earlier in the pipeline may change what a later one reads
// (a new position, a used-up lot), which costs that later trade a miss and nothing
// else. The apply reuses what the stages found that no TRADE changes or removes (the
// trade id's hash, the account and security rows, a position row found: positions are
// never removed); everything else (the trade id, a position not found, the lots) it
// looks up again. Outcomes, effects and state are those of `applyTrade` one after
// another, by construction.

import KernelAPI

extension V1Kernel {
  /// Trades between two stages of the pipeline: enough to cover a miss's latency with
  /// the work of the trades in between, few enough that the lines loaded stay in L1/L2
  /// until their trade is applied (4 stages × 8 trades × ~10 lines = ~20 KB).
  static let lookAhead = 8
  /// Slots of the pipeline's ring of located trades: a power of two above the trades
  /// in flight (4 · lookAhead + 1).
  static let pipelineSlots = 64
  /// Rows past the end of a growing table whose line is prefetched for writing before
  /// each trade: one row a trade at most, so every line is asked for ~16 trades (a
  /// few microseconds) before its first store.
  static let appendLookAhead = 16
  /// The same for the trade ids' bytes (a few to a dozen bytes a trade): a line a
  /// little over ten trades ahead of the one being written.
  static let appendLookAheadBytes = 128
  /// The effect records' bytes: a TRADE writes ~250 (docs/EFFECTS.md), so the lines
  /// ~8 trades ahead of the writing, 320 bytes of them a trade (every line is asked
  /// for at least once however the records' sizes fall on lines).
  static let effectsLookAheadBytes = 2_048
  static let effectsPrefetchBytes = 320

  public mutating func applyTrades(
    _ trades: UnsafeBufferPointer<TradeInput>, bytes: UnsafeRawBufferPointer,
    outcomes: UnsafeMutableBufferPointer<Outcome>
  ) {
    precondition(outcomes.count == trades.count, "one outcome per trade")
    precondition(
      Self.pipelineSlots & (Self.pipelineSlots - 1) == 0 && Self.pipelineSlots > 4 * Self.lookAhead,
      "the pipeline ring holds every trade in flight")
    var ring = [GroupedTrade](repeating: GroupedTrade(), count: Self.pipelineSlots)
    // The memo is taken out of `self` for the loop (the stages mutate `self`; the
    // memo alone is passed inout) and put back after it.
    tradeGroupMemo.prepare(securities: securities.count, units: units.count)
    var memo = TradeGroupMemo()
    swap(&memo, &tradeGroupMemo)
    defer { swap(&memo, &tradeGroupMemo) }
    let n = trades.count
    let d = Self.lookAhead
    let m = Self.pipelineSlots - 1
    var step = 0
    while step < n + 4 * d {
      // The inputs ahead of stage 1: a TradeInput (~185 bytes) two lookAheads ahead,
      // the line bytes of the one a lookAhead ahead, whose TradeInput was asked for a
      // lookAhead of trades ago (a line every few hundred nanoseconds is too slow a
      // stream for the hardware prefetchers to run ahead of, perf: hashing stage 1's ids
      // waited on their bytes; and reading the line's range from the TradeInput just
      // asked for waited on that: 7% of a V1 replica's TRADE loop, perf of a cluster).
      if step + 2 * d < n { prefetchInput(trades, at: step + 2 * d) }
      if step + d < n { prefetchLine(trades, at: step + d, bytes: bytes) }
      // The stages read each trade's input where it lies (`input(at:)`): passed by
      // value, the 185-byte `TradeInput` was copied to the stack by a `memcpy` call
      // for each of the stages the compiler kept out of line, ~3.7% of the engine-only
      // loop (perf, twenty-fifth session).
      if step < n { locateSlots(input(trades, at: step), bytes: bytes, into: &ring[step & m]) }
      let directory = step - d
      if directory >= 0 && directory < n {
        locateDirectory(input(trades, at: directory), bytes: bytes, into: &ring[directory & m], memo: &memo)
      }
      let positionStage = step - 2 * d
      if positionStage >= 0 && positionStage < n {
        locatePositions(input(trades, at: positionStage), into: &ring[positionStage & m])
      }
      let lotStage = step - 3 * d
      if lotStage >= 0 && lotStage < n { locateLots(&ring[lotStage & m]) }
      let remainingLotStage = step - 4 * d + d / 2
      if remainingLotStage >= 0 && remainingLotStage < n {
        locateRemainingLots(quantity: trades[remainingLotStage].trade.quantity, ring[remainingLotStage & m])
      }
      let i = step - 4 * d
      // The rows a trade appends (its trade row, its slices, the buyer's new
      // position, most purchases' case): their lines a few trades ahead, for writing.
      self.trades.prefetchForAppend(ahead: Self.appendLookAhead)
      positions.prefetchForAppend(ahead: Self.appendLookAhead)
      slices.prefetchForAppend(ahead: Self.appendLookAhead)
      tradeIds.prefetchForAppend(aheadBytes: Self.appendLookAheadBytes)
      if effects.enabled {
        effects.writer.prefetchForAppend(
          aheadBytes: Self.effectsLookAheadBytes, bytes: Self.effectsPrefetchBytes)
      }
      if i >= 0 && i < n {
        outcomes[i] = applyTrade(
          trades[i].trade, line: trades[i].line(in: bytes), seq: trades[i].seq, grouped: ring[i & m])
      }
      step += 1
    }
    noteTradeEnd()
  }

  /// `trades[i]`, where it lies (in range).
  @inline(__always)
  func input(_ trades: UnsafeBufferPointer<TradeInput>, at i: Int) -> UnsafePointer<TradeInput> {
    precondition(i >= 0 && i < trades.count, "a trade input of the group")
    return trades.baseAddress! + i
  }

  /// Starts loading `trades[i]` (every line of it).
  @inline(__always)
  func prefetchInput(_ trades: UnsafeBufferPointer<TradeInput>, at i: Int) {
    precondition(i >= 0 && i < trades.count, "prefetch of a trade input in the group")
    let input = UnsafeRawPointer(trades.baseAddress! + i)
    let size = MemoryLayout<TradeInput>.size
    var offset = 0
    while offset < size {
      v1PrefetchForRead(input + offset)
      offset += 64
    }
    v1PrefetchForRead(input + (size - 1))
  }

  /// Starts loading the first and last byte of `trades[i]`'s line in `bytes` (a line
  /// is shorter than 128 bytes: at most three cache lines, the middle one then loaded
  /// by the hardware with its neighbours). Reads `trades[i]`: asked for earlier.
  @inline(__always)
  func prefetchLine(_ trades: UnsafeBufferPointer<TradeInput>, at i: Int, bytes: UnsafeRawBufferPointer) {
    precondition(i >= 0 && i < trades.count, "prefetch of a trade input's line in the group")
    let line = trades[i].line
    guard line.lowerBound >= 0 && line.lowerBound < line.upperBound && line.upperBound <= bytes.count,
      let base = bytes.baseAddress
    else { return }
    v1PrefetchForRead(base + line.lowerBound)
    v1PrefetchForRead(base + (line.upperBound - 1))
  }

  /// What the stages found for one trade (row ids; -1 unknown).
  struct GroupedTrade {
    /// `TradeIndex.hash` of the trade's id and date.
    var tradeHash: UInt64 = 0
    /// `TradeIndex.decimalValue` of the trade's id.
    var tradeDecimal: Int64 = -1
    var buyHash: UInt64 = 0
    var sellHash: UInt64 = 0
    var buy: Int32 = -1
    var sell: Int32 = -1
    var security: Int32 = -1
    var buyUnit: Int32 = -1
    var sellUnit: Int32 = -1
    var buyPosition: Int32 = -1
    var sellPosition: Int32 = -1
    /// The account's directory line is full without the security: the overflow's slot
    /// is loading (stage 3), to be read by stage 4.
    var buyInOverflow = false
    var sellInOverflow = false
    /// The rows came from the trade's hints (`TradeHints`); -1 ones are looked up.
    var hinted = false
  }

  // The stages change nothing: they are `mutating` only so that `self` is passed by
  // reference (a non-mutating call from the loop copied the 900-byte kernel struct).

  /// Stage 1: the hashes; the index slots of the trade id and both accounts. A trade
  /// the resolver saw (V1TradeResolver.swift) has its hash and rows already: its trade
  /// id's slot, and the accounts' directory lines when found, are loaded here instead.
  @inline(__always)
  mutating func locateSlots(
    _ input: UnsafePointer<TradeInput>, bytes: UnsafeRawBufferPointer, into g: inout GroupedTrade
  ) {
    @inline(__always) func field(_ r: Range<Int>) -> UnsafeRawBufferPointer {
      input.pointee.field(r, in: bytes)
    }
    if input.pointee.hints.isSet {
      let (buy, sell, security, buyUnit, sellUnit, _) = input.pointee.hints.rows
      g = GroupedTrade(
        tradeHash: input.pointee.hints.key, tradeDecimal: input.pointee.hints.keyValue, buy: buy, sell: sell,
        security: security, buyUnit: buyUnit, sellUnit: sellUnit)
      g.hinted = true
      tradeByKey.prefetch(hash: g.tradeHash, decimal: g.tradeDecimal, date: input.pointee.trade.date)
      // The rows stage 2 would load once it had found them: two stages ahead of their
      // reads instead of one.
      prefetchDirectory(g)
      prefetchClearingSlots(g, date: input.pointee.trade.date)
      if buy < 0 {
        g.buyHash = Ident.fastHash(of: field(input.pointee.trade.buyAccount))
        accountById.prefetchSlot(hash: g.buyHash)
      }
      if sell < 0 {
        g.sellHash = Ident.fastHash(of: field(input.pointee.trade.sellAccount))
        accountById.prefetchSlot(hash: g.sellHash)
      }
      return
    }
    let id = field(input.pointee.trade.tradeId)
    g = GroupedTrade(
      tradeHash: TradeIndex.hash(id: id, date: input.pointee.trade.date),
      tradeDecimal: TradeIndex.decimalValue(of: id),
      buyHash: Ident.fastHash(of: field(input.pointee.trade.buyAccount)),
      sellHash: Ident.fastHash(of: field(input.pointee.trade.sellAccount)))
    tradeByKey.prefetch(hash: g.tradeHash, decimal: g.tradeDecimal, date: input.pointee.trade.date)
    accountById.prefetchSlot(hash: g.buyHash)
    accountById.prefetchSlot(hash: g.sellHash)
  }

  /// Stage 2: the account and security rows (their index slots loaded); the accounts'
  /// position-directory lines.
  @inline(__always)
  mutating func locateDirectory(
    _ input: UnsafePointer<TradeInput>, bytes: UnsafeRawBufferPointer, into g: inout GroupedTrade,
    memo: inout TradeGroupMemo
  ) {
    @inline(__always) func field(_ r: Range<Int>) -> UnsafeRawBufferPointer {
      input.pointee.field(r, in: bytes)
    }
    // An unresolved trade has every row still -1; a resolved one only what its resolver
    // did not find.
    if g.hinted && g.buy >= 0 && g.sell >= 0 && g.security >= 0 && g.buyUnit >= 0 && g.sellUnit >= 0 {
      return  // everything found by the resolver, and loading since stage 1
    }
    if g.buy < 0 {
      g.buy = accountById.v1Find(hash: g.buyHash, bytes: field(input.pointee.trade.buyAccount)) ?? -1
    }
    if g.sell < 0 {
      g.sell = accountById.v1Find(hash: g.sellHash, bytes: field(input.pointee.trade.sellAccount)) ?? -1
    }
    if g.security < 0 {
      g.security =
        securityById.v1Find(bytes: field(input.pointee.trade.security), memo: &memo.securities) ?? -1
    }
    if g.buyUnit < 0 {
      g.buyUnit = unitById.v1Find(bytes: field(input.pointee.trade.buyUnit), memo: &memo.units) ?? -1
    }
    if g.sellUnit < 0 {
      g.sellUnit = unitById.v1Find(bytes: field(input.pointee.trade.sellUnit), memo: &memo.units) ?? -1
    }
    prefetchDirectory(g)
    prefetchClearingSlots(g, date: input.pointee.trade.date)
  }

  /// The entries of the open day's clearing-row table that stage 3 reads for the trade's
  /// two sides (`prefetchClearing`): reading them there, a stage after the units and
  /// security were known, waited on each (a quarter of stage 3's samples, perf of a
  /// cluster's V1 replica).
  @inline(__always)
  func prefetchClearingSlots(_ g: GroupedTrade, date: Int32) {
    guard g.security >= 0 else { return }
    @inline(__always) func side(_ unit: Int32) {
      guard unit >= 0 && Int(unit) < units.count else { return }
      let participant = units.rows[Int(unit)].participant
      if let slot = dayRows.clearingSlot(date: date, participant: participant, security: g.security) {
        dayRows.clearing.prefetch(slot)
      }
    }
    side(g.buyUnit)
    side(g.sellUnit)
  }

  /// The accounts' position-directory lines, the seller's individual bit, the security.
  @inline(__always)
  func prefetchDirectory(_ g: GroupedTrade) {
    if g.buy >= 0 { positionDirectory.prefetch(g.buy) }
    if g.sell >= 0 {
      positionDirectory.prefetch(g.sell)
      individualAccounts.prefetch(g.sell)
    }
    if g.security >= 0 { securities.prefetch(g.security) }
  }

  /// Stage 3: the positions in their directory lines (loaded); the day's clearing rows of
  /// both sides when they exist (20,000 rows of 96 bytes on the 1M day: in no cache
  /// close to the core).
  @inline(__always)
  mutating func locatePositions(_ input: UnsafePointer<TradeInput>, into g: inout GroupedTrade) {
    guard g.security >= 0 else { return }
    let date = input.pointee.trade.date
    if g.buyUnit >= 0 { prefetchClearing(date: date, unit: g.buyUnit, security: g.security) }
    if g.sellUnit >= 0 { prefetchClearing(date: date, unit: g.sellUnit, security: g.security) }
    if g.sell >= 0 {
      switch positionDirectory.lookInLine(account: g.sell, security: g.security) {
      case .found(let p):
        g.sellPosition = p
        positions.prefetch(p)
      case .overflow: g.sellInOverflow = true
      case .absent: break
      }
    }
    if g.buy >= 0 {
      switch positionDirectory.lookInLine(account: g.buy, security: g.security) {
      case .found(let p):
        g.buyPosition = p
        positions.prefetch(p)
        isAwaitingAvailability.prefetch(p)
      case .overflow: g.buyInOverflow = true
      case .absent: break
      }
    }
  }

  @inline(__always)
  func prefetchClearing(date: Int32, unit: Int32, security: Int32) {
    let participant = units.rows[Int(unit)].participant
    if let slot = dayRows.clearingSlot(date: date, participant: participant, security: security) {
      clearingRows.prefetch(dayRows.clearing[slot])
    }
  }

  /// Half a stage after stage 4, the lots stage 4 could not ask for: those of a
  /// position found in the directory's overflow at stage 4 (its row asked for then,
  /// loaded by now: 40% of the position lookups on the cluster's day of 100,000
  /// accounts, whose lots were each a miss inside the apply, most of `takeOldestLots`'
  /// samples, perf of a cluster's V1 replica), and the seller's second-oldest lot when
  /// the oldest does not cover the sale (about one sale in four). Reads the positions'
  /// lists as they are now (a trade applied since stage 4 may have changed them).
  @inline(__always)
  func locateRemainingLots(quantity: Int64, _ g: GroupedTrade) {
    if g.buyInOverflow && g.buyPosition >= 0 { lotPool.prefetch(positions.rows[Int(g.buyPosition)].lastLot) }
    guard g.sellPosition >= 0 && quantity > 0 else { return }
    let first = positions.rows[Int(g.sellPosition)].firstLot
    if g.sellInOverflow {
      lotPool.prefetch(first)
    } else if first != LotPool.none && lotPool.quantity(first) < quantity {
      lotPool.prefetch(lotPool.next(after: first))
    }
  }

  /// Stage 4: a position in the directory's overflow (an account with more than eight;
  /// its slot loaded); the lots a trade reads first (its positions loaded): the
  /// seller's oldest, the buyer's newest (the new lot is linked after it).
  @inline(__always)
  mutating func locateLots(_ g: inout GroupedTrade) {
    if g.sellInOverflow, let p = positionDirectory.find(account: g.sell, security: g.security) {
      g.sellPosition = p
      positions.prefetch(p)
    }
    if g.buyInOverflow, let p = positionDirectory.find(account: g.buy, security: g.security) {
      g.buyPosition = p
      positions.prefetch(p)
    }
    // (Not the lots of a position found just now: its row is not loaded yet.)
    if g.sellPosition >= 0 && !g.sellInOverflow {
      lotPool.prefetch(positions.rows[Int(g.sellPosition)].firstLot)
    }
    if g.buyPosition >= 0 && !g.buyInOverflow { lotPool.prefetch(positions.rows[Int(g.buyPosition)].lastLot) }
  }
}
