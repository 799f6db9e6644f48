// The text rendering of effect records (docs/EFFECTS.md, "Text"): one line per
// record, fields in SPEC §5 column order and formats. For people and diffs; the
// binary encoding is the canonical one.
import KernelAPI

public enum EffectText {
  /// Lines of `events`, each ending in LF.
  public static func render(_ events: [EffectEvent]) -> [UInt8] {
    var b = CSVBuffer(capacity: events.count * 96)
    for e in events { render(e, into: &b) }
    return b.bytes
  }

  static func render(_ e: EffectEvent, into b: inout CSVBuffer) {
    b.text("event ")
    b.int(Int128(e.seq))
    b.text(" ")
    b.text(e.outcome.word)
    b.text(" ")
    b.int(Int128(e.effects.count))
    b.end()
    for x in e.effects {
      b.text(x.kind.word)
      b.text(" ")
      b.text(fields(x).map(\.value).joined(separator: ","))
      b.end()
    }
  }

  /// One effect as a line (without LF), e.g. for alerts.
  public static func line(_ effect: Effect) -> String {
    effect.kind.word + " " + fields(effect).map(\.value).joined(separator: ",")
  }

  /// The row's SPEC §5 columns (and the effect's own fields) as (name, text).
  public static func fields(_ effect: Effect) -> [(name: String, value: String)] {
    func money(_ v: Int128) -> String { ReportWriter.money(v) }
    func date(_ d: Int32) -> String { ReportWriter.date(d) }
    switch effect {
    case .clearing(let c):
      return [
        ("trade_date", date(c.tradeDate)), ("settle_date", date(c.settleDate)),
        ("participant", c.participant),
        ("security", c.security), ("buy_quantity", String(c.buyQuantity)),
        ("sell_quantity", String(c.sellQuantity)),
        ("buy_amount", money(c.buyAmount)), ("sell_amount", money(c.sellAmount)),
        ("handling_fee", money(Int128(c.fees.handling))),
        ("regulatory_fee", money(Int128(c.fees.regulatory))),
        ("transfer_fee", money(Int128(c.fees.transfer))), ("stamp_duty", money(Int128(c.fees.stamp))),
      ]
    case .settlement(let s, let visible):
      return [
        ("trade_date", date(s.tradeDate)), ("settle_date", date(s.settleDate)),
        ("participant", s.participant),
        ("net_amount", money(s.netFen)), ("status", s.status.word), ("settled_on", date(s.settledOn)),
        ("visible", visible ? "visible" : "hidden"),
      ]
    case .balance(let x):
      return [("participant", x.participant), ("balance", money(x.balanceFen))]
    case .holding(let h):
      return [
        ("account", h.account), ("security", h.security), ("quantity", String(h.quantity)),
        ("available", String(h.available)), ("withheld", String(h.withheld)),
      ]
    case .entitlement(let ordinal, let e):
      return [
        ("ordinal", String(ordinal)), ("security", e.security), ("record_date", date(e.recordDate)),
        ("pay_date", date(e.payDate)), ("account", e.account), ("kind", e.kind.word),
        ("value", e.kind == .cash ? money(Int128(e.value)) : String(e.value)),
      ]
    case .tax(let t):
      return [
        ("trade_date", date(t.tradeDate)), ("trade_id", t.tradeId), ("account", t.account),
        ("security", t.security),
        ("quantity", String(t.quantity)), ("tax", money(Int128(t.taxFen))),
      ]
    case .taxRemoved(let d, let id):
      return [("trade_date", date(d)), ("trade_id", id)]
    case .rejection(let r):
      return [("seq", String(r.seq)), ("record", r.record), ("ref", r.ref), ("reason", r.reason.code)]
    }
  }

  /// The number of key fields of a kind: rows with equal keys are the same row.
  static func keyFieldCount(_ kind: EffectKind) -> Int {
    switch kind {
    case .clearing: return 4  // trade_date, settle_date, participant, security
    case .settlement: return 3
    case .balance: return 1
    case .holding: return 2
    case .entitlement: return 1
    case .tax, .taxRemoved: return 2
    case .rejection: return 1
    case .event, .participantKey, .accountKey, .securityKey, .clearingKey, .settlementKey, .positionKey:
      return 0  // not effects: a decoder keeps key records in its dictionary
    }
  }

  /// What differs between a majority's and a dissenter's effects: the first seq
  /// whose records differ and up to `linesMax` lines naming rows and fields, e.g.
  /// `seq 2 clearing 20261125,P1,600000: handling_fee 3.41 vs 3.40`. Nil when equal.
  public static func firstDifference(
    majority: [EffectEvent], dissenter: [EffectEvent], linesMax: Int = 8
  ) -> (seq: Int64, lines: [String])? {
    var i = 0
    while i < majority.count || i < dissenter.count {
      let m = i < majority.count ? majority[i] : nil
      let d = i < dissenter.count ? dissenter[i] : nil
      i += 1
      if m == d { continue }
      let seq = m?.seq ?? d!.seq
      var lines: [String] = []
      guard let m, let d, m.seq == d.seq else {
        return (seq, ["seq \(seq): the event records do not line up (one side is missing the event)"])
      }
      if m.outcome != d.outcome {
        lines.append("seq \(seq): outcome \(m.outcome.word) vs \(d.outcome.word)")
      }
      // Rows are matched by kind and SPEC §5 key (the order within an event is canonical).
      func key(_ e: Effect) -> String {
        e.kind.word + " " + fields(e).prefix(keyFieldCount(e.kind)).map(\.value).joined(separator: ",")
      }
      func named(_ e: Effect) -> String {
        fields(e).dropFirst(keyFieldCount(e.kind)).map { "\($0.name) \($0.value)" }.joined(separator: ", ")
      }
      let dissenterRows = d.effects.map { (key($0), $0) }
      var matched = [Bool](repeating: false, count: d.effects.count)
      for a in m.effects where lines.count < linesMax {
        let k = key(a)
        guard let j = dissenterRows.indices.first(where: { !matched[$0] && dissenterRows[$0].0 == k }) else {
          lines.append("seq \(seq) \(k) (majority only): \(named(a))")
          continue
        }
        matched[j] = true
        let b = dissenterRows[j].1
        if a == b { continue }
        let diffs = zip(fields(a), fields(b)).filter { $0.0.value != $0.1.value }.map {
          "\($0.0.name) \($0.0.value) vs \($0.1.value)"
        }
        lines.append("seq \(seq) \(k): " + diffs.joined(separator: ", "))
      }
      for (j, row) in dissenterRows.enumerated() where !matched[j] && lines.count < linesMax {
        lines.append("seq \(seq) \(row.0) (dissenter only): \(named(row.1))")
      }
      if lines.isEmpty { lines.append("seq \(seq): event records differ") }
      return (seq, lines)
    }
    return nil
  }
}
