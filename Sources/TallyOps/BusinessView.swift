// The dashboard's business view (docs/OPERATIONS.md, "Dashboard"): what the voted
// results stream's effect records (docs/EFFECTS.md) say about the market, kept by
// applying decoded event records in seq order. No I/O and no clock: the caller passes
// the time to `sample(at:)` for the rates, so the type is tested with plain values.
// It reads voted data only and never reaches engine state.
import KernelAPI

public struct BusinessView: Sendable {
  /// Trades-per-second is measured over this many seconds of samples.
  public static let rateWindowSeconds = 10.0
  /// Samples kept for the rates (one per call of `sample(at:)`).
  static let samplesMax = 64

  struct ClearingKey: Hashable, Sendable {
    var tradeDate: Int32
    var participant: String
    var security: String
  }
  struct SettlementKey: Hashable, Sendable {
    var tradeDate: Int32
    var participant: String
  }
  struct TaxKey: Hashable, Sendable {
    var tradeDate: Int32
    var tradeId: String
  }

  /// One participant's figures for the open trade date.
  public struct ParticipantDay: Sendable, Equatable {
    public var participant: String
    /// The settlement row's net amount (fen; negative: the participant pays), 0 without a row.
    public var netFen: Int128 = 0
    public var status: SettlementStatus? = nil
    /// Buy plus sell amount cleared (fen).
    public var clearedFen: Int128 = 0
    public var handlingFen: Int128 = 0
    public var regulatoryFen: Int128 = 0
    public var transferFen: Int128 = 0
    public var stampFen: Int128 = 0
    public var feesFen: Int128 { handlingFen + regulatoryFen + transferFen + stampFen }
  }

  /// The last seq applied (0 before any).
  public private(set) var lastSeq: Int64 = 0
  /// Applied events that added to clearing rows (TRADEs), and that took from them (CANCELs).
  public private(set) var tradesCleared: Int64 = 0
  public private(set) var tradesCancelled: Int64 = 0
  public private(set) var eventsApplied: Int64 = 0
  public private(set) var eventsRejected: Int64 = 0
  public private(set) var rejectionsByReason: [RejectReason: Int64] = [:]

  var clearing: [ClearingKey: Report.Clearing] = [:]
  var settlement: [SettlementKey: (row: Report.Settlement, visible: Bool)] = [:]
  var tax: [TaxKey: Int64] = [:]
  var samples: [(seconds: Double, trades: Int64, seq: Int64)] = []

  public init() {}

  /// The open trade date: the latest trade date of any clearing or settlement row (0 before any).
  public private(set) var openDate: Int32 = 0

  /// Applies event records in seq order (a SNAPSHOT record starts the rows afresh).
  public mutating func apply(_ events: [EffectEvent]) {
    for e in events { apply(e) }
  }

  public mutating func apply(_ e: EffectEvent) {
    switch e.outcome {
    case .snapshot:
      clearing = [:]
      settlement = [:]
      tax = [:]
      openDate = 0
    case .applied: eventsApplied += 1
    case .rejected: eventsRejected += 1
    }
    var added = false
    var removed = false
    for effect in e.effects {
      switch effect {
      case .clearing(let c):
        let key = ClearingKey(tradeDate: c.tradeDate, participant: c.participant, security: c.security)
        let before = clearing[key].map { $0.buyQuantity + $0.sellQuantity } ?? 0
        let after = c.buyQuantity + c.sellQuantity
        if after > before { added = true } else if after < before { removed = true }
        clearing[key] = c
        openDate = max(openDate, c.tradeDate)
      case .settlement(let s, let visible):
        settlement[SettlementKey(tradeDate: s.tradeDate, participant: s.participant)] = (s, visible)
        openDate = max(openDate, s.tradeDate)
      case .tax(let t):
        tax[TaxKey(tradeDate: t.tradeDate, tradeId: t.tradeId)] = t.taxFen
      case .taxRemoved(let date, let id):
        tax[TaxKey(tradeDate: date, tradeId: id)] = nil
      case .rejection(let r):
        rejectionsByReason[r.reason, default: 0] += 1
      case .balance, .holding, .entitlement:
        break
      }
    }
    if e.outcome == .applied {
      if added { tradesCleared += 1 } else if removed { tradesCancelled += 1 }
    }
    lastSeq = max(lastSeq, e.seq)
  }

  /// Records the counters at `seconds` (any monotonic clock) for the rates.
  public mutating func sample(at seconds: Double) {
    samples.append((seconds, tradesCleared, lastSeq))
    if samples.count > Self.samplesMax { samples.removeFirst(samples.count - Self.samplesMax) }
  }

  /// Trades cleared and seqs voted per second over the last `rateWindowSeconds` of samples.
  public var rates: (tradesPerSecond: Double, seqsPerSecond: Double) {
    guard let last = samples.last,
      let first = samples.first(where: { last.seconds - $0.seconds <= Self.rateWindowSeconds }),
      last.seconds > first.seconds
    else { return (0, 0) }
    let dt = last.seconds - first.seconds
    return (Double(last.trades - first.trades) / dt, Double(last.seq - first.seq) / dt)
  }

  /// Per participant, for the open trade date: net cash and settlement status (visible
  /// settlement rows, as in settlement.csv), amounts and fees cleared; by participant id.
  public var openDay: [ParticipantDay] {
    var by: [String: ParticipantDay] = [:]
    for (key, s) in settlement where key.tradeDate == openDate && s.visible {
      by[key.participant, default: ParticipantDay(participant: key.participant)].netFen = s.row.netFen
      by[key.participant]!.status = s.row.status
    }
    for (key, c) in clearing where key.tradeDate == openDate {
      var d = by[key.participant] ?? ParticipantDay(participant: key.participant)
      d.clearedFen += c.buyAmount + c.sellAmount
      d.handlingFen += Int128(c.fees.handling)
      d.regulatoryFen += Int128(c.fees.regulatory)
      d.transferFen += Int128(c.fees.transfer)
      d.stampFen += Int128(c.fees.stamp)
      by[key.participant] = d
    }
    return by.values.sorted { $0.participant < $1.participant }
  }

  /// Settlement rows in settlement.csv (visible), all trade dates, by status.
  public var settlementRowsByStatus: [SettlementStatus: Int] {
    var counts: [SettlementStatus: Int] = [.pending: 0, .settled: 0, .defaulted: 0, .cured: 0]
    for s in settlement.values where s.visible { counts[s.row.status, default: 0] += 1 }
    return counts
  }

  /// Settlement rows DEFAULTED and not cured: how many and the cash they owe (fen, ≥ 0).
  public var defaultsOutstanding: (rows: Int, owedFen: Int128) {
    var rows = 0
    var owed: Int128 = 0
    for s in settlement.values where s.visible && s.row.status == .defaulted {
      rows += 1
      owed += s.row.netFen < 0 ? -s.row.netFen : 0
    }
    return (rows, owed)
  }

  /// Dividend tax withheld on sales (tax.csv rows not removed by a CANCEL), fen.
  public var dividendTaxWithheldFen: Int128 {
    tax.values.reduce(Int128(0)) { $0 + Int128($1) }
  }

  public var rejections: Int64 { rejectionsByReason.values.reduce(0, +) }
}

// MARK: - Rendering

extension BusinessView {
  /// Fen as yuan with two fraction digits (`-3000.19`).
  public static func yuan(_ fen: Int128) -> String {
    let negative = fen < 0
    let m = negative ? -fen : fen
    let cents = m % 100
    return (negative ? "-" : "") + String(m / 100) + "." + (cents < 10 ? "0" : "") + String(cents)
  }

  static func reasonsInOrder(_ r: [RejectReason: Int64]) -> [(RejectReason, Int64)] {
    RejectReason.allCases.compactMap { reason in r[reason].map { (reason, $0) } }
  }

  /// The JSON the page renders (`participantsMax` rows at most; the total count is given).
  public func json(participantsMax: Int) -> String {
    let day = openDay
    let rates = self.rates
    let statuses: [SettlementStatus] = [.pending, .settled, .defaulted, .cured]
    let counts = settlementRowsByStatus
    let defaults = defaultsOutstanding
    var o = "{\"last_seq\":\(lastSeq),\"trades_cleared\":\(tradesCleared)"
    o += ",\"trades_cancelled\":\(tradesCancelled),\"events_applied\":\(eventsApplied)"
    o += ",\"events_rejected\":\(eventsRejected)"
    o += ",\"trades_per_second\":\(Self.decimal(rates.tradesPerSecond))"
    o += ",\"seqs_per_second\":\(Self.decimal(rates.seqsPerSecond))"
    o += ",\"open_date\":\(openDate),\"participants_total\":\(day.count)"
    o += ",\"dividend_tax_withheld\":\"\(Self.yuan(dividendTaxWithheldFen))\""
    o += ",\"defaults_outstanding\":\(defaults.rows),\"defaults_owed\":\"\(Self.yuan(defaults.owedFen))\""
    o += ",\"settlement_rows\":{"
    o += statuses.map { "\"\($0.word)\":\(counts[$0] ?? 0)" }.joined(separator: ",")
    o += "},\"rejections\":["
    o += Self.reasonsInOrder(rejectionsByReason).map { "[\"\($0.0.code)\",\($0.1)]" }.joined(separator: ",")
    o += "],\"participants\":["
    o += day.prefix(participantsMax).map { d in
      "{\"participant\":\(Self.quote(d.participant)),\"net\":\"\(Self.yuan(d.netFen))\""
        + ",\"status\":\"\(d.status?.word ?? "")\",\"cleared\":\"\(Self.yuan(d.clearedFen))\""
        + ",\"fees\":\"\(Self.yuan(d.feesFen))\"}"
    }.joined(separator: ",")
    return o + "]}"
  }

  static func decimal(_ v: Double) -> String {
    guard v.isFinite else { return "0" }
    let hundredths = Int64((v * 100).rounded())
    return String(Double(hundredths) / 100)
  }

  static func quote(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
      switch u {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      default:
        if u.value < 0x20 {
          out += "\\u00" + (u.value < 0x10 ? "0" : "") + String(u.value, radix: 16)
        } else {
          out.unicodeScalars.append(u)
        }
      }
    }
    return out + "\""
  }

  static func label(_ s: String) -> String {
    var out = ""
    for u in s.unicodeScalars {
      switch u {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      default: out.unicodeScalars.append(u)
      }
    }
    return out
  }

  /// The business metrics from voted data (Prometheus text format 0.0.4). Money in yuan.
  public func prometheus() -> String {
    var t = ""
    func family(_ name: String, _ type: String, _ help: String) {
      t += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }
    family(
      "tally_voted_seq", "gauge", "Last seq whose voted effect records the dashboard applied.")
    t += "tally_voted_seq \(lastSeq)\n"
    family(
      "tally_trades_cleared_total", "counter", "Applied TRADE events in the voted stream (before CANCELs).")
    t += "tally_trades_cleared_total \(tradesCleared)\n"
    family("tally_trades_cancelled_total", "counter", "Applied CANCEL events in the voted stream.")
    t += "tally_trades_cancelled_total \(tradesCancelled)\n"
    family("tally_rejections_total", "counter", "Rejected events in the voted stream, by SPEC reason code.")
    for reason in RejectReason.allCases {
      t += "tally_rejections_total{reason=\"\(reason.code)\"} \(rejectionsByReason[reason] ?? 0)\n"
    }
    family("tally_open_trade_date", "gauge", "The open (latest) trade date, YYYYMMDD; 0 before any trade.")
    t += "tally_open_trade_date \(openDate)\n"
    let day = openDay
    family(
      "tally_open_day_cleared_amount_yuan", "gauge",
      "Buy plus sell amount cleared on the open trade date, per participant, in yuan.")
    for d in day {
      t +=
        "tally_open_day_cleared_amount_yuan{participant=\"\(Self.label(d.participant))\"} \(Self.yuan(d.clearedFen))\n"
    }
    family(
      "tally_open_day_fees_yuan", "gauge",
      "Fees cleared on the open trade date, per participant and fee, in yuan.")
    for d in day {
      let p = Self.label(d.participant)
      t += "tally_open_day_fees_yuan{participant=\"\(p)\",fee=\"handling\"} \(Self.yuan(d.handlingFen))\n"
      t += "tally_open_day_fees_yuan{participant=\"\(p)\",fee=\"regulatory\"} \(Self.yuan(d.regulatoryFen))\n"
      t += "tally_open_day_fees_yuan{participant=\"\(p)\",fee=\"transfer\"} \(Self.yuan(d.transferFen))\n"
      t += "tally_open_day_fees_yuan{participant=\"\(p)\",fee=\"stamp\"} \(Self.yuan(d.stampFen))\n"
    }
    family(
      "tally_open_day_net_cash_yuan", "gauge",
      "Net settlement amount on the open trade date, per participant, in yuan (negative: pays).")
    for d in day where d.status != nil {
      t +=
        "tally_open_day_net_cash_yuan{participant=\"\(Self.label(d.participant))\"} \(Self.yuan(d.netFen))\n"
    }
    family("tally_settlement_rows", "gauge", "Settlement rows (settlement.csv, every trade date) by status.")
    let counts = settlementRowsByStatus
    for s: SettlementStatus in [.pending, .settled, .defaulted, .cured] {
      t += "tally_settlement_rows{status=\"\(s.word)\"} \(counts[s] ?? 0)\n"
    }
    let defaults = defaultsOutstanding
    family("tally_defaults_outstanding", "gauge", "Settlement rows DEFAULTED and not cured.")
    t += "tally_defaults_outstanding \(defaults.rows)\n"
    family("tally_defaults_outstanding_yuan", "gauge", "Cash owed by the outstanding defaults, in yuan.")
    t += "tally_defaults_outstanding_yuan \(Self.yuan(defaults.owedFen))\n"
    family(
      "tally_dividend_tax_withheld_yuan", "gauge",
      "Dividend tax withheld on sales (tax.csv rows, net of CANCELs), every trade date, in yuan.")
    t += "tally_dividend_tax_withheld_yuan \(Self.yuan(dividendTaxWithheldFen))\n"
    return t
  }
}
