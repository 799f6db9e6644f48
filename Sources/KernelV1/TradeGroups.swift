// TRADEs applied in groups, their memory loads overlapped. A TRADE on the 1M-account
// day touches about ten rows that are nowhere near the cache (its trade-id slot, two
// account slots, two position-directory lines, two positions, the seller's oldest lot,
// the buyer's newest), each a dependent miss of ~180 ns on this project's machines:
// most of a trade's time. Within a group, the loads of every trade are started stage
// by stage (each stage reads only what the one before loaded), then the trades are
// applied one after another by the ordinary `applyTrade`. Loads are hints: a trade
// earlier in the group may change what a later one reads (a new position, a used-up
// lot), which costs that later trade a miss and nothing else. Outcomes, effects and
// state are those of `applyTrade` one after another, by construction.

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
    var start = 0
    while start < trades.count {
      let end = min(start + Self.tradeGroupSize, trades.count)
      prefetchGroup(UnsafeBufferPointer(rebasing: trades[start..<end]), bytes: bytes)
      for i in start..<end {
        let t = trades[i]
        outcomes[i] = applyTrade(t.trade, line: UnsafeRawBufferPointer(rebasing: bytes[t.line]), seq: t.seq)
      }
      start = end
    }
  }

  /// Starts the loads of a group's trades, in four stages of dependent reads.
  func prefetchGroup(_ group: UnsafeBufferPointer<TradeInput>, bytes: UnsafeRawBufferPointer) {
    precondition(group.count <= Self.tradeGroupSize, "a trade group is at most tradeGroupSize trades")
    // Per trade: buyer, seller, security (row ids; -1 unknown).
    withUnsafeTemporaryAllocation(of: (Int32, Int32, Int32).self, capacity: Self.tradeGroupSize) { found in
      @inline(__always) func field(_ t: TradeInput, _ r: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(
          rebasing: bytes[(t.line.lowerBound + r.lowerBound)..<(t.line.lowerBound + r.upperBound)])
      }
      // 1. The index slots of the trade id and both accounts.
      for t in group {
        tradeByKey.prefetch(
          hash: mix64(
            Ident.fastHash(of: field(t, t.trade.tradeId)) ^ UInt64(UInt32(bitPattern: t.trade.date))))
        accountById.prefetch(hash: Ident.fastHash(of: field(t, t.trade.buyAccount)))
        accountById.prefetch(hash: Ident.fastHash(of: field(t, t.trade.sellAccount)))
      }
      // 2. The accounts' position-directory lines.
      for (i, t) in group.enumerated() {
        let buyBytes = field(t, t.trade.buyAccount)
        let sellBytes = field(t, t.trade.sellAccount)
        let buy = accountById.find(hash: Ident.fastHash(of: buyBytes)) { $0.hasBytes(buyBytes) } ?? -1
        let sell = accountById.find(hash: Ident.fastHash(of: sellBytes)) { $0.hasBytes(sellBytes) } ?? -1
        let security = securityById[bytes: field(t, t.trade.security)] ?? -1
        found.initializeElement(at: i, to: (buy, sell, security))
        if buy >= 0 { positionDirectory.prefetch(buy) }
        if sell >= 0 { positionDirectory.prefetch(sell) }
      }
      // 3. The positions, and the lots a trade reads first: the seller's oldest, the
      // buyer's newest (the new lot is linked after it).
      for i in group.indices {
        let (buy, sell, security) = found[i]
        guard security >= 0 else { continue }
        if sell >= 0, let p = positionDirectory.find(account: sell, security: security) {
          positions.prefetch(p)
        }
        if buy >= 0, let p = positionDirectory.find(account: buy, security: security) {
          positions.prefetch(p)
        }
      }
      for i in group.indices {
        let (buy, sell, security) = found[i]
        guard security >= 0 else { continue }
        if sell >= 0, let p = positionDirectory.find(account: sell, security: security) {
          lotPool.prefetch(positions[p].firstLot)
        }
        if buy >= 0, let p = positionDirectory.find(account: buy, security: security) {
          lotPool.prefetch(positions[p].lastLot)
        }
      }
    }
  }
}
