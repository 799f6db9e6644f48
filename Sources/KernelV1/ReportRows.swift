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
  /// holdings rows are left out (a writer that renders them from `holdingOrder()`
  /// spares millions of intermediate rows).
  public func report(holdings withHoldings: Bool = true) -> Report {
    var r = Report()
    let participantRank = rank(participants.rows.map(\.id))
    let securityRank = rank(securities.rows.map(\.code))
    let accountRank = withHoldings || !entitlements.rows.isEmpty ? rank(accounts.rows.map(\.id)) : []

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
      return (securityRank[Int(a.security)], a.recordDate, accountRank[Int(a.account)], a.kind.rawValue, $0)
        < (securityRank[Int(b.security)], b.recordDate, accountRank[Int(b.account)], b.kind.rawValue, $1)
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
      return a.tradeId < b.tradeId
    }
    r.tax = taxOrder.map {
      let t = trades.rows[$0]
      return Report.Tax(
        tradeDate: t.date, tradeId: t.tradeId.text, account: accounts.rows[Int(t.sellAccount)].id.text,
        security: securities.rows[Int(t.security)].code.text, quantity: t.quantity, taxFen: t.taxFen)
    }

    r.rejections = rejections.rows.map {
      Report.Rejection(seq: $0.seq, record: $0.record, ref: $0.ref, reason: $0.reason)
    }
    return r
  }

  /// The positions of holdings.csv (quantity > 0), by account then security bytes.
  public func holdingOrder() -> [Int32] {
    holdingOrder(
      accountRank: rank(accounts.rows.map(\.id)), securityRank: rank(securities.rows.map(\.code)))
  }

  /// A bucket sort by account rank (O(n) for millions of positions), then by security
  /// rank within an account (a handful of positions each).
  func holdingOrder(accountRank: [Int], securityRank: [Int]) -> [Int32] {
    var start = [Int32](repeating: 0, count: accounts.count + 1)
    var held = 0
    for p in positions.rows where p.quantity > 0 {
      start[accountRank[Int(p.account)] + 1] += 1
      held += 1
    }
    for i in 0..<accounts.count { start[i + 1] += start[i] }
    var order = [Int32](repeating: 0, count: held)
    // Each placed position's security rank beside it: the sort below then reads no
    // position row (the day's new ones lie far apart, a cache miss each).
    var keys = [Int32](repeating: 0, count: held)
    var fill = start
    for i in positions.indices where positions.rows[i].quantity > 0 {
      let p = positions.rows[i]
      let a = accountRank[Int(p.account)]
      order[Int(fill[a])] = Int32(i)
      keys[Int(fill[a])] = Int32(securityRank[Int(p.security)])
      fill[a] += 1
    }
    for a in 0..<accounts.count where start[a + 1] - start[a] > 1 {
      // Insertion sort of one account's positions by security rank.
      let lo = Int(start[a])
      for j in (lo + 1)..<Int(start[a + 1]) {
        let x = order[j]
        let key = keys[j]
        var k = j
        while k > lo && keys[k - 1] > key {
          order[k] = order[k - 1]
          keys[k] = keys[k - 1]
          k -= 1
        }
        order[k] = x
        keys[k] = key
      }
    }
    return order
  }

  /// rank[i] is the position of ids[i] in byte order (ids are unique). Reference data
  /// usually comes sorted: checked in one pass before sorting.
  func rank(_ ids: [Ident]) -> [Int] {
    var sorted = true
    for i in ids.indices.dropFirst() where !(ids[i - 1] < ids[i]) {
      sorted = false
      break
    }
    if sorted { return Array(ids.indices) }
    let order = ids.indices.sorted { ids[$0] < ids[$1] }
    var rank = [Int](repeating: 0, count: ids.count)
    for (position, i) in order.enumerated() { rank[i] = position }
    return rank
  }
}
