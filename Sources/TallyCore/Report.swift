// The seven outputs of SPEC §5 as sorted rows. Sorting is by identifier bytes
// (Ident) and happens here, once, from tables: never from Dictionary order.

public struct Report: Sendable, Equatable {
  public struct Clearing: Sendable, Equatable {
    public var tradeDate: Int32, settleDate: Int32, participant: String, security: String
    public var buyQuantity: Int64, sellQuantity: Int64, buyAmount: Int128, sellAmount: Int128
    public var fees: SideFees
  }
  public struct Settlement: Sendable, Equatable {
    public var tradeDate: Int32, settleDate: Int32, participant: String, netFen: Int128
    public var status: SettlementStatus, settledOn: Int32
  }
  public struct Balance: Sendable, Equatable {
    public var participant: String, balanceFen: Int128
  }
  public struct Holding: Sendable, Equatable {
    public var account: String, security: String, quantity: Int64, available: Int64, withheld: Int64
  }
  public struct Entitlement: Sendable, Equatable {
    public var security: String, recordDate: Int32, payDate: Int32, account: String
    public var kind: EntitlementKind, value: Int64
  }
  public struct Tax: Sendable, Equatable {
    public var tradeDate: Int32, tradeId: String, account: String, security: String
    public var quantity: Int64, taxFen: Int64
  }
  public struct Rejection: Sendable, Equatable {
    public var seq: Int64, record: String, ref: String, reason: RejectReason
  }

  public var clearing: [Clearing] = []
  public var settlement: [Settlement] = []
  public var balances: [Balance] = []
  public var holdings: [Holding] = []
  public var entitlements: [Entitlement] = []
  public var tax: [Tax] = []
  public var rejections: [Rejection] = []
}

extension TallyState {
  /// The settle date of a trade date: the next trading day (always exists for an opened day).
  func settleDate(of tradeDate: Int32) -> Int32 {
    guard let d = nextTradingDay(after: tradeDate) else {
      preconditionFailure("trade date \(tradeDate) has no next trading day")
    }
    return d
  }

  /// SPEC §5, the state after the last applied event.
  public func report() -> Report {
    var r = Report()
    let participantRank = rank(participants.rows.map(\.id))
    let securityRank = rank(securities.rows.map(\.code))
    let accountRank = rank(accounts.rows.map(\.id))

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

    var holdingOrder = positions.indices.filter { positions.rows[$0].quantity > 0 }
    holdingOrder.sort {
      let a = positions.rows[$0]
      let b = positions.rows[$1]
      return (accountRank[Int(a.account)], securityRank[Int(a.security)])
        < (accountRank[Int(b.account)], securityRank[Int(b.security)])
    }
    r.holdings = holdingOrder.map {
      let p = positions.rows[$0]
      return Report.Holding(
        account: accounts.rows[Int(p.account)].id.text, security: securities.rows[Int(p.security)].code.text,
        quantity: p.quantity, available: p.available, withheld: p.withheld)
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

  /// rank[i] is the position of ids[i] in byte order.
  private func rank(_ ids: [Ident]) -> [Int] {
    let order = ids.indices.sorted { ids[$0] < ids[$1] }
    var rank = [Int](repeating: 0, count: ids.count)
    for (position, i) in order.enumerated() { rank[i] = position }
    return rank
  }
}
