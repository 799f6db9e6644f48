// TRADEs applied in groups, their memory loads overlapped. A TRADE on the 1M-account
// day touches about ten rows that are nowhere near the cache (its trade-id slot, two
// account slots, two position-directory lines, two positions, the seller's oldest lot,
// the buyer's newest), each a dependent miss of ~180 ns on this project's machines:
// most of a trade's time. Within a group, the loads of every trade are started stage
// by stage (each stage reads only what the one before loaded), then the trades are
// applied one after another by the ordinary `applyTrade`. Loads are hints: a trade
// earlier in the group may change what a later one reads (a new position, a used-up
// lot), which costs that later trade a miss and nothing else. The apply reuses what
// the stages found that no TRADE changes (the trade id's hash, the account and security
// rows); everything else it looks up again. Outcomes, effects and state are those of
// `applyTrade` one after another, by construction.

import KernelAPI

extension V1Kernel {
  /// TRADEs whose loads are started together: enough to cover a miss's latency with
  /// the work of a stage, few enough that the rows loaded stay in L1/L2 until their
  /// trade is applied. 8 and 32 measured no better (docs/PERFORMANCE.md).
  static let tradeGroupSize = 16

  public mutating func applyTrades(
    _ trades: UnsafeBufferPointer<TradeInput>, bytes: UnsafeRawBufferPointer,
    outcomes: UnsafeMutableBufferPointer<Outcome>
  ) {
    precondition(outcomes.count == trades.count, "one outcome per trade")
    var found = [GroupedTrade](repeating: GroupedTrade(), count: Self.tradeGroupSize)
    var start = 0
    while start < trades.count {
      let end = min(start + Self.tradeGroupSize, trades.count)
      prefetchGroup(UnsafeBufferPointer(rebasing: trades[start..<end]), bytes: bytes, into: &found)
      for i in start..<end {
        outcomes[i] = applyTrade(
          trades[i].trade, line: trades[i].line(in: bytes), seq: trades[i].seq, grouped: found[i - start])
      }
      start = end
    }
  }

  /// What the stages of `prefetchGroup` found for one trade (row ids; -1 unknown).
  struct GroupedTrade {
    /// `TradeIndex.hash` of the trade's id and date.
    var tradeHash: UInt64 = 0
    var buyHash: UInt64 = 0
    var sellHash: UInt64 = 0
    var buy: Int32 = -1
    var sell: Int32 = -1
    var security: Int32 = -1
    var buyPosition: Int32 = -1
    var sellPosition: Int32 = -1
  }

  /// Starts the loads of a group's trades, in four stages of dependent reads; each
  /// stage keeps what it found for the next, and `found[i]` what trade i's apply may
  /// reuse (no identifier hashed or looked up twice).
  func prefetchGroup(
    _ group: UnsafeBufferPointer<TradeInput>, bytes: UnsafeRawBufferPointer, into found: inout [GroupedTrade]
  ) {
    precondition(group.count <= found.count, "a trade group is at most tradeGroupSize trades")
    found.withUnsafeMutableBufferPointer { found in
      // 1. The index slots of the trade id and both accounts.
      for (i, t) in group.enumerated() {
        let g = GroupedTrade(
          tradeHash: TradeIndex.hash(id: t.field(t.trade.tradeId, in: bytes), date: t.trade.date),
          buyHash: Ident.fastHash(of: t.field(t.trade.buyAccount, in: bytes)),
          sellHash: Ident.fastHash(of: t.field(t.trade.sellAccount, in: bytes)))
        tradeByKey.prefetch(hash: g.tradeHash)
        accountById.prefetch(hash: g.buyHash)
        accountById.prefetch(hash: g.sellHash)
        found[i] = g
      }
      // 2. The accounts' position-directory lines (their index slots are in cache now).
      for (i, t) in group.enumerated() {
        let buyBytes = t.field(t.trade.buyAccount, in: bytes)
        let sellBytes = t.field(t.trade.sellAccount, in: bytes)
        found[i].buy = accountById.find(hash: found[i].buyHash) { $0.hasBytes(buyBytes) } ?? -1
        found[i].sell = accountById.find(hash: found[i].sellHash) { $0.hasBytes(sellBytes) } ?? -1
        found[i].security = securityById[bytes: t.field(t.trade.security, in: bytes)] ?? -1
        if found[i].buy >= 0 { positionDirectory.prefetch(found[i].buy) }
        if found[i].sell >= 0 { positionDirectory.prefetch(found[i].sell) }
      }
      // 3. The positions.
      for i in group.indices where found[i].security >= 0 {
        let g = found[i]
        if g.sell >= 0, let p = positionDirectory.find(account: g.sell, security: g.security) {
          found[i].sellPosition = p
          positions.prefetch(p)
        }
        if g.buy >= 0, let p = positionDirectory.find(account: g.buy, security: g.security) {
          found[i].buyPosition = p
          positions.prefetch(p)
        }
      }
      // 4. The lots a trade reads first: the seller's oldest, the buyer's newest (the
      // new lot is linked after it).
      for i in group.indices {
        if found[i].sellPosition >= 0 { lotPool.prefetch(positions[found[i].sellPosition].firstLot) }
        if found[i].buyPosition >= 0 { lotPool.prefetch(positions[found[i].buyPosition].lastLot) }
      }
    }
  }
}
