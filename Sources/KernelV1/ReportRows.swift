// SPEC §5 rows of V1's state, sorted by identifier bytes, for the output writer.
import KernelAPI

extension V1Kernel {
  /// The settle date of a trade date: the next trading day (always exists for an opened day).
  func settleDate(of tradeDate: Int32) -> Int32 {
    guard let d = nextTradingDay(after: tradeDate) else {
      preconditionFailure("trade date \(tradeDate) has no next trading day")
    }
    return d
  }

  /// SPEC §5, the state after the last applied event. Without `holdings` the
  /// holdings rows are left out (a writer that renders them from `positionOrder()`
  /// spares millions of intermediate rows).
  public func report(holdings withHoldings: Bool = true) -> Report {
    var r = Report()
    let participantRank = rank(participants.rows.map(\.id))
    let securityRank = rank(securities.rows.map(\.code))
    // Accounts whose rows are in id order (the usual reference folder, checked in place)
    // rank by row id: no rank table and no copy of a million ids (~24 MB of fresh pages
    // on the 1M-account day, every report).
    let accountRank =
      (withHoldings || !entitlements.rows.isEmpty) && !accounts.rows.isSorted { $0.id }
      ? rank(accounts.rows.map(\.id)) : nil
    @inline(__always) func accountRankOf(_ a: Int32) -> Int { accountRank?[Int(a)] ?? Int(a) }

    var clearingOrder = clearingRows.indices.filter {
      clearingRows.rows[$0].buyQuantity != 0 || clearingRows.rows[$0].sellQuantity != 0
    }
    clearingOrder.sort {
      let a = clearingRows.rows[$0]
      let b = clearingRows.rows[$1]
      return (a.tradeDate, participantRank[Int(a.participant)], securityRank[Int(a.security)])
        < (b.tradeDate, participantRank[Int(b.participant)], securityRank[Int(b.security)])
    }
    r.clearing = clearingOrder.map {
      let c = clearingRows.rows[$0]
      return Report.Clearing(
        tradeDate: c.tradeDate, settleDate: settleDate(of: c.tradeDate),
        participant: participants.rows[Int(c.participant)].id.text,
        security: securities.rows[Int(c.security)].code.text,
        buyQuantity: c.buyQuantity, sellQuantity: c.sellQuantity, buyAmount: c.buyAmount,
        sellAmount: c.sellAmount,
        fees: c.fees)
    }

    var settlementOrder = settlementRows.indices.filter { settlementRows.rows[$0].liveSides > 0 }
    settlementOrder.sort {
      let a = settlementRows.rows[$0]
      let b = settlementRows.rows[$1]
      return (a.tradeDate, participantRank[Int(a.participant)]) < (
        b.tradeDate, participantRank[Int(b.participant)]
      )
    }
    r.settlement = settlementOrder.map {
      let s = settlementRows.rows[$0]
      return Report.Settlement(
        tradeDate: s.tradeDate, settleDate: settleDate(of: s.tradeDate),
        participant: participants.rows[Int(s.participant)].id.text, netFen: s.netFen, status: s.status,
        settledOn: s.settledOn)
    }

    r.balances = participants.indices.sorted { participantRank[$0] < participantRank[$1] }.map {
      Report.Balance(participant: participants.rows[$0].id.text, balanceFen: participants.rows[$0].balance)
    }

    if withHoldings {
      r.holdings = holdingOrder(accountRank: accountRank, securityRank: securityRank).map {
        let p = positions.rows[Int($0)]
        return Report.Holding(
          account: accounts.rows[Int(p.account)].id.text,
          security: securities.rows[Int(p.security)].code.text,
          quantity: p.quantity, available: p.available, withheld: p.withheld)
      }
    }

    // Stable: rows with equal keys keep the order in which their actions were applied.
    let entitlementOrder = entitlements.indices.filter { entitlements.rows[$0].value > 0 }.sorted {
      let a = entitlements.rows[$0]
      let b = entitlements.rows[$1]
      return (securityRank[Int(a.security)], a.recordDate, accountRankOf(a.account), a.kind.rawValue, $0)
        < (securityRank[Int(b.security)], b.recordDate, accountRankOf(b.account), b.kind.rawValue, $1)
    }
    r.entitlements = entitlementOrder.map {
      let e = entitlements.rows[$0]
      return Report.Entitlement(
        security: securities.rows[Int(e.security)].code.text, recordDate: e.recordDate, payDate: e.payDate,
        account: accounts.rows[Int(e.account)].id.text, kind: e.kind, value: e.value)
    }

    let taxOrder = trades.indices.filter { trades.rows[$0].taxFen > 0 && !trades.rows[$0].cancelled }.sorted {
      let a = trades.rows[$0]
      let b = trades.rows[$1]
      if a.date != b.date { return a.date < b.date }
      return tradeIds.precedes(a, b)
    }
    r.tax = taxOrder.map {
      let t = trades.rows[$0]
      return Report.Tax(
        tradeDate: t.date, tradeId: tradeIds.text(of: t), account: accounts.rows[Int(t.sellAccount)].id.text,
        security: securities.rows[Int(t.security)].code.text, quantity: t.quantity, taxFen: t.taxFen)
    }

    r.rejections = rejections.rows.map {
      Report.Rejection(seq: $0.seq, record: $0.record, ref: $0.ref, reason: $0.reason)
    }
    return r
  }

  /// The positions of holdings.csv (quantity > 0), by account then security bytes (a
  /// nil rank table: the rows are in id order).
  func holdingOrder(accountRank: [Int]?, securityRank: [Int]?) -> [Int32] {
    positionOrder(accountRank: accountRank, securityRank: securityRank).filter {
      positions.rows[Int($0)].quantity > 0
    }
  }

  /// Every position, by account then security bytes, whatever it holds (the caller
  /// reads each row anyway and skips the empty ones).
  public func positionOrder() -> [Int32] {
    positionOrder(part: 0, of: 1)
  }

  /// The positions of the accounts whose rank (byte order of their ids) is in part
  /// `part` of `parts`, in `positionOrder()`'s order: the ranks from `count · part /
  /// parts` up to the next part's, so the parts' orders one after another are
  /// `positionOrder()`. Accounts and securities whose rows are in id order already (the
  /// usual reference folder: checked in place, no copy of a million ids) are ranked by
  /// row id, with no rank tables: building them was a third of a part's walk (perf).
  func positionOrder(part: Int, of parts: Int) -> [Int32] {
    precondition(parts >= 1 && part >= 0 && part < parts, "positions part \(part) of \(parts)")
    let n = accounts.count
    let accountRank = accounts.rows.isSorted { $0.id } ? nil : rank(accounts.rows.map(\.id))
    let securityRank = securities.rows.isSorted { $0.code } ? nil : rank(securities.rows.map(\.code))
    return positionOrder(
      accountRank: accountRank, securityRank: securityRank,
      ranks: (n * part / parts)..<(n * (part + 1) / parts))
  }

  /// Walks the accounts' directory lines in account order (64 bytes an account, read in
  /// sequence) and sorts each account's few positions by security rank. Before, two
  /// passes over every position row (~4.5M rows of 40 bytes on the 1M-account day, the
  /// day's new ones far apart) found and placed the held ones: ~0.12 s, a third of V1's
  /// outputs (perf, twelfth session). Only the accounts of rank in `ranks` (all of them
  /// by default). A nil rank table: the rows are in id order (rank = row id).
  func positionOrder(accountRank: [Int]?, securityRank: [Int]?, ranks: Range<Int>? = nil) -> [Int32] {
    let ranks = ranks ?? 0..<accounts.count
    precondition(ranks.lowerBound >= 0 && ranks.upperBound <= accounts.count, "account ranks in range")
    precondition(
      (accountRank?.count ?? accounts.count) == accounts.count
        && (securityRank?.count ?? securities.count) == securities.count, "a rank for every row")
    @inline(__always) func securityRankOf(_ s: Int32) -> Int { securityRank?[Int(s)] ?? Int(s) }
    @inline(__always) func accountRankOf(_ a: Int32) -> Int { accountRank?[Int(a)] ?? Int(a) }
    var byRank: [Int32] = []
    if let accountRank {
      byRank = [Int32](repeating: 0, count: accounts.count)
      for a in 0..<accounts.count { byRank[accountRank[a]] = Int32(a) }
    }
    // The positions beyond their account's eight lanes, in the order they are met below:
    // sorted by one integer key (account rank, then security rank), looked up once each.
    var extra: [(key: UInt64, position: Int32)] = []
    for o in positionDirectory.overflowed where ranks.contains(accountRankOf(o.account)) {
      extra.append((UInt64(accountRankOf(o.account)) << 32 | UInt64(securityRankOf(o.security)), o.position))
    }
    extra.sort { $0.key < $1.key }
    var order: [Int32] = []
    // Every position when all accounts are walked; about a part's share otherwise.
    order.reserveCapacity(
      ranks.count == accounts.count ? positions.count : positions.count / max(1, accounts.count) * ranks.count
    )
    var group: [(rank: Int, position: Int32)] = []
    var e = 0
    for r in ranks {
      let line = positionDirectory.line(of: accountRank == nil ? Int32(r) : byRank[r])
      group.removeAll(keepingCapacity: true)
      // Lanes fill in order: the first free one ends the account's line.
      for lane in 0..<8 {
        let security = line.securities[lane]
        if security < 0 { break }
        group.append((securityRankOf(security), line.positions[lane]))
      }
      while e < extra.count && extra[e].key >> 32 == UInt64(r) {
        group.append((Int(extra[e].key & 0xFFFF_FFFF), extra[e].position))
        e += 1
      }
      // Insertion sort: an account holds a handful of securities.
      for j in group.indices.dropFirst() {
        let x = group[j]
        var k = j
        while k > 0 && group[k - 1].rank > x.rank {
          group[k] = group[k - 1]
          k -= 1
        }
        group[k] = x
      }
      for g in group { order.append(g.position) }
    }
    precondition(
      e == extra.count && (ranks.count != accounts.count || order.count == positions.count),
      "every position is in its account's directory")
    return order
  }

  /// rank[i] is the position of ids[i] in byte order (ids are unique). Reference data
  /// usually comes sorted: checked in one pass before sorting.
  func rank(_ ids: [Ident]) -> [Int] {
    if ids.isSorted(by: { $0 }) { return Array(ids.indices) }
    let order = ids.indices.sorted { ids[$0] < ids[$1] }
    var rank = [Int](repeating: 0, count: ids.count)
    for (position, i) in order.enumerated() { rank[i] = position }
    return rank
  }
}

extension Array {
  /// Whether the rows are in strictly ascending order of `key` (ids are unique), read in
  /// place.
  func isSorted(by key: (Element) -> Ident) -> Bool {
    var i = 1
    while i < count {
      if !(key(self[i - 1]) < key(self[i])) { return false }
      i += 1
    }
    return true
  }
}
