// V2's TradeResolver (KernelAPI): a TRADE's identifiers interned on the thread that
// splits the event lines, before the kernel applies the trade (issue 8: identifiers to
// dense ids at the parser's edge).
//
// Why: on the 1M-account day, hashing the five identifiers of a TRADE and reading the
// two account slots (a cache miss each, one level of the look-ahead's chain of misses)
// were a quarter of the apply loop's time; done by the resolver, the look-ahead starts at
// the position slots.
//
// How: the resolver keeps copies of the account, security and unit tables (values: their
// buffers are shared with the kernel's until either side adds a key, then copied on
// write), looks each identifier up and writes the row ids into the trade's `TradeHints`
// (-1 when not found), with the trade id's decimal value. Those tables only ever gain
// keys and never change an id, so an id found is the one the kernel finds at the apply;
// one not found (added since the copy, or unknown) the kernel looks up itself
// (`hintLineLevel`). The hints change where the look-ahead starts, never an outcome.
//
// Layout of `TradeHints` for V2: rows = (buyer account, seller account, security, buy
// unit, sell unit, unused); `key` = the trade id's `TradeIdIndex.decimalValue`.

import KernelAPI

struct V2TradeResolver: TradeResolver {
  let accountIx: KeyBytesTable
  let securityIx: KeyBytesTable
  let unitIx: KeyBytesTable

  /// Trades whose account slots are requested together before they are read.
  static let groupSize = 16

  func resolve(_ trades: UnsafeMutableBufferPointer<TradeInput>, bytes: UnsafeRawBufferPointer) {
    var start = 0
    while start < trades.count {
      let end = min(start + Self.groupSize, trades.count)
      // The account slots' misses overlapped: requested for the group, then read.
      for i in start..<end {
        let line = UnsafeRawBufferPointer(rebasing: bytes[trades[i].line])
        let t = trades[i].trade
        accountIx.prefetch(KeyBytesTable.Probe(plain: UnsafeRawBufferPointer(rebasing: line[t.buyAccount])))
        accountIx.prefetch(KeyBytesTable.Probe(plain: UnsafeRawBufferPointer(rebasing: line[t.sellAccount])))
      }
      for i in start..<end {
        let line = UnsafeRawBufferPointer(rebasing: bytes[trades[i].line])
        let t = trades[i].trade
        var h = TradeHints()
        h.key = TradeIdIndex.decimalValue(UnsafeRawBufferPointer(rebasing: line[t.tradeId]))
        h.rows = (
          accountIx.find(UnsafeRawBufferPointer(rebasing: line[t.buyAccount])) ?? -1,
          accountIx.find(UnsafeRawBufferPointer(rebasing: line[t.sellAccount])) ?? -1,
          securityIx.find(UnsafeRawBufferPointer(rebasing: line[t.security])) ?? -1,
          unitIx.find(UnsafeRawBufferPointer(rebasing: line[t.buyUnit])) ?? -1,
          unitIx.find(UnsafeRawBufferPointer(rebasing: line[t.sellUnit])) ?? -1,
          -1
        )
        h.isSet = true
        trades[i].hints = h
      }
      start = end
    }
  }
}

extension V2Kernel {
  /// A resolver over copies of today's identifier tables (see V2TradeResolver).
  public func tradeResolver() -> (any TradeResolver)? {
    V2TradeResolver(accountIx: accountIx, securityIx: securityIx, unitIx: unitIx)
  }
}
