// Rebuilds the seven SPEC §5 outputs from effect records alone (docs/EFFECTS.md):
// rows are kept in maps keyed by their SPEC §5 key and sorted by identifier bytes
// when a report is made, never in Dictionary order.

import KernelAPI

public struct EffectReplayError: Error, CustomStringConvertible, Sendable {
  public var description: String
  public init(_ description: String) { self.description = description }
}

public struct EffectReplay: Sendable {
  struct ClearingKey: Hashable {
    var date: Int32
    var participant: Ident
    var security: Ident
  }
  struct SettlementKey: Hashable {
    var date: Int32
    var participant: Ident
  }
  struct HoldingKey: Hashable {
    var account: Ident
    var security: Ident
  }
  struct TaxKey: Hashable {
    var date: Int32
    var tradeId: Ident
  }

  /// The last seq whose effects were applied; nil before the first record (a replay
  /// must start with a snapshot or with seq 1).
  public private(set) var seq: Int64?
  var clearing: [ClearingKey: Report.Clearing] = [:]
  var settlement: [SettlementKey: (row: Report.Settlement, visible: Bool)] = [:]
  var balances: [Ident: Report.Balance] = [:]
  var holdings: [HoldingKey: Report.Holding] = [:]
  var entitlements: [Int64: Report.Entitlement] = [:]
  var tax: [TaxKey: Report.Tax] = [:]
  var rejections: [Int64: Report.Rejection] = [:]

  public init() {}

  /// Applies one event record. Events must come in seq order without gaps; a
  /// snapshot replaces everything.
  public mutating func apply(_ event: EffectEvent) throws(EffectReplayError) {
    if event.outcome == .snapshot {
      self = EffectReplay()
    } else {
      let expected = (seq ?? 0) + 1
      guard event.seq == expected else {
        throw EffectReplayError("effects of seq \(event.seq) arrived where seq \(expected) was expected")
      }
    }
    for e in event.effects {
      switch e {
      case .clearing(let c):
        clearing[
          ClearingKey(date: c.tradeDate, participant: Ident(c.participant), security: Ident(c.security))] = c
      case .settlement(let s, let visible):
        settlement[SettlementKey(date: s.tradeDate, participant: Ident(s.participant))] = (s, visible)
      case .balance(let b): balances[Ident(b.participant)] = b
      case .holding(let h): holdings[HoldingKey(account: Ident(h.account), security: Ident(h.security))] = h
      case .entitlement(let ordinal, let row): entitlements[ordinal] = row
      case .tax(let t): tax[TaxKey(date: t.tradeDate, tradeId: Ident(t.tradeId))] = t
      case .taxRemoved(let date, let id): tax[TaxKey(date: date, tradeId: Ident(id))] = nil
      case .rejection(let r): rejections[r.seq] = r
      }
    }
    seq = event.seq
  }

  public mutating func apply(_ events: [EffectEvent]) throws(EffectReplayError) {
    for e in events { try apply(e) }
  }

  /// The SPEC §5 outputs as of `seq`, with SPEC's row filters and orders.
  public func report() -> Report {
    var r = Report()
    r.clearing = clearing.filter { $0.value.buyQuantity != 0 || $0.value.sellQuantity != 0 }
      .sorted { a, b in
        (a.key.date, a.key.participant, a.key.security) < (b.key.date, b.key.participant, b.key.security)
      }.map(\.value)
    r.settlement = settlement.filter { $0.value.visible }
      .sorted { a, b in (a.key.date, a.key.participant) < (b.key.date, b.key.participant) }.map(\.value.row)
    r.balances = balances.sorted { $0.key < $1.key }.map(\.value)
    r.holdings = holdings.filter { $0.value.quantity > 0 }
      .sorted { a, b in (a.key.account, a.key.security) < (b.key.account, b.key.security) }.map(\.value)
    r.entitlements = entitlements.filter { $0.value.value > 0 }
      .sorted { a, b in
        let x = a.value
        let y = b.value
        return (Ident(x.security), x.recordDate, Ident(x.account), x.kind.rawValue, a.key)
          < (Ident(y.security), y.recordDate, Ident(y.account), y.kind.rawValue, b.key)
      }.map(\.value)
    r.tax = tax.sorted { a, b in (a.key.date, a.key.tradeId) < (b.key.date, b.key.tradeId) }.map(\.value)
    r.rejections = rejections.sorted { $0.key < $1.key }.map(\.value)
    return r
  }
}
