// V2 fee arithmetic (SPEC §2 fee table, §4.1), adapted from the earlier
// independently written ClearingKernelV2 (docs/earlier-fee-kernel-v2).
//
// Technique: every rate is one UInt64 `n` meaning `n / 10^18`, parsed digit by
// digit; a fee is `round_half_up(amountFen × n / 10^18)` computed at full width
// (`multipliedFullWidth` / `dividingFullWidth`). The rows are resolved at init into
// one timeline per (kind, fee, paying side) (a side-specific row beats `both` on
// the same date). The planted `.feeRounding` fault truncates the handling fee.

import KernelAPI

struct V2FeeSchedule: Sendable {
  static let rateScale: UInt64 = 1_000_000_000_000_000_000
  static let halfRateScale: UInt64 = 500_000_000_000_000_000
  static let slotCount = 24

  /// Per slot, `dates[bounds[slot] ..< bounds[slot + 1]]` ascending and their rates.
  let dates: [Int32]
  let rates: [UInt64]
  let bounds: [Int]

  /// A schedule an image kept (V2Image.swift), checked: every slot's range lies in
  /// the arrays, in order.
  init(dates: [Int32], rates: [UInt64], bounds: [Int]) throws(DecodeError) {
    guard dates.count == rates.count, bounds.count == Self.slotCount + 1, bounds.first == 0,
      bounds.last == dates.count, zip(bounds, bounds.dropFirst()).allSatisfy({ $0 <= $1 })
    else { throw DecodeError(description: "V2 image: malformed fee schedule") }
    self.dates = dates
    self.rates = rates
    self.bounds = bounds
  }

  @inline(__always)
  static func slot(_ kind: SecurityKind, _ fee: FeeKind, seller: Bool) -> Int {
    (Int(kind.rawValue) &* 4 &+ Int(fee.rawValue)) &* 2 &+ (seller ? 1 : 0)
  }

  init(feeRows: [FeeRateRow]) {
    var dates: [Int32] = []
    var rates: [UInt64] = []
    var bounds: [Int] = [0]
    for kind in SecurityKind.allCases {
      for fee in FeeKind.allCases {
        for seller in [false, true] {
          let party: FeeSide = seller ? .sell : .buy
          // (date, specific?, rate), sorted; a specific row wins on its date.
          var entries: [(date: Int32, specific: Bool, rate: UInt64)] = []
          for row in feeRows
          where row.kind == kind && row.fee == fee && (row.side == party || row.side == .both) {
            entries.append((row.effectiveDate, row.side != .both, Self.parseRate(row.rateText)))
          }
          entries.sort { ($0.date, $0.specific ? 1 : 0) < ($1.date, $1.specific ? 1 : 0) }
          var resolvedDates: [Int32] = []
          var resolvedRates: [UInt64] = []
          for e in entries {
            if let last = resolvedDates.last, last == e.date {
              resolvedRates[resolvedRates.count - 1] = e.rate
            } else {
              resolvedDates.append(e.date)
              resolvedRates.append(e.rate)
            }
          }
          dates += resolvedDates
          rates += resolvedRates
          bounds.append(dates.count)
        }
      }
    }
    self.dates = dates
    self.rates = rates
    self.bounds = bounds
  }

  /// `[0-9]+(\.[0-9]+)?` → n with value n / 10^18 (the reference parser bounds it).
  static func parseRate(_ text: String) -> UInt64 {
    var n: UInt64 = 0
    var fractionDigits = 0
    var seenPoint = false
    for byte in text.utf8 {
      if byte == UInt8(ascii: ".") {
        seenPoint = true
        continue
      }
      precondition(byte >= 48 && byte <= 57, "V2FeeSchedule: bad rate \(text)")
      let digit = UInt64(byte - 48)
      if seenPoint {
        fractionDigits += 1
        if fractionDigits > 18 {
          precondition(digit == 0, "V2FeeSchedule: rate too precise \(text)")
          continue
        }
      }
      let (t, o1) = n.multipliedReportingOverflow(by: 10)
      let (s, o2) = t.addingReportingOverflow(digit)
      precondition(!o1 && !o2, "V2FeeSchedule: rate too large \(text)")
      n = s
    }
    var up = 18 - min(fractionDigits, 18)
    while up > 0 {
      let (t, o) = n.multipliedReportingOverflow(by: 10)
      precondition(!o, "V2FeeSchedule: rate too large \(text)")
      n = t
      up -= 1
    }
    return n
  }

  @inline(__always)
  private func rate(slot: Int, on date: Int32) -> UInt64 {
    let start = bounds[slot]
    var low = start
    var high = bounds[slot &+ 1]
    while low < high {
      let mid = (low &+ high) >> 1
      if dates[mid] <= date { low = mid &+ 1 } else { high = mid }
    }
    return low == start ? 0 : rates[low &- 1]
  }

  @inline(__always)
  static func amountFen(priceMilli: Int64, quantity: Int64) -> Int64 {
    let p = UInt64(priceMilli).multipliedFullWidth(by: UInt64(quantity))
    precondition(p.high < 10, "V2: price × quantity too large")
    // A product within 64 bits (every real trade) is divided by the constant 10 in 64
    // bits (a multiply, where a 128-bit division is a library call).
    if p.high == 0 {
      let (q, r) = p.low.quotientAndRemainder(dividingBy: 10)
      return Int64(r >= 5 ? q &+ 1 : q)
    }
    let (q, r) = UInt64(10).dividingFullWidth(p)
    precondition(q < UInt64(Int64.max), "V2: amount overflows")
    return Int64(r >= 5 ? q &+ 1 : q)
  }

  @inline(__always)
  static func fee(amountFen: Int64, rate: UInt64, truncate: Bool) -> Int64 {
    if rate == 0 { return 0 }
    let p = UInt64(amountFen).multipliedFullWidth(by: rate)
    precondition(p.high < rateScale, "V2: amount × rate too large")
    let (q, r) = rateScale.dividingFullWidth(p)
    precondition(q < UInt64(Int64.max), "V2: fee overflows")
    return Int64(!truncate && r >= halfRateScale ? q &+ 1 : q)
  }

  /// `fee(amountFen:rate:truncate:)` with the rate reduced to `multiplier / divisor`
  /// (`V2DayRate`): the same quotient and rounding (the remainder at least half the
  /// divisor is the full remainder at least half of 10^18), in 64 bits when the product
  /// fits (every real trade: a rate has few significant digits), with one 64-bit division
  /// where the full-width one is a library call.
  @inline(__always)
  static func fee(amountFen: Int64, _ r: V2DayRate, truncate: Bool) -> Int64 {
    if r.rate == 0 { return 0 }
    let (x, overflow) = UInt64(amountFen).multipliedReportingOverflow(by: r.multiplier)
    if overflow { return fee(amountFen: amountFen, rate: r.rate, truncate: truncate) }
    let (q, rem) = x.quotientAndRemainder(dividingBy: r.divisor)
    precondition(q < UInt64(Int64.max), "V2: fee overflows")
    return Int64(!truncate && rem &* 2 >= r.divisor ? q &+ 1 : q)
  }

  @inline(__always)
  private func sideFees(_ kind: SecurityKind, _ date: Int32, _ amount: Int64, seller: Bool, truncate: Bool)
    -> SideFees
  {
    SideFees(
      handling: Self.fee(
        amountFen: amount, rate: rate(slot: Self.slot(kind, .handling, seller: seller), on: date),
        truncate: truncate),
      regulatory: Self.fee(
        amountFen: amount, rate: rate(slot: Self.slot(kind, .regulatory, seller: seller), on: date),
        truncate: false),
      transfer: Self.fee(
        amountFen: amount, rate: rate(slot: Self.slot(kind, .transfer, seller: seller), on: date),
        truncate: false),
      stamp: Self.fee(
        amountFen: amount, rate: rate(slot: Self.slot(kind, .stamp, seller: seller), on: date),
        truncate: false)
    )
  }

  /// The rates in force on `date`, one per slot (`slot(kind, fee, seller:)`): a day's
  /// trades all share their date, so the TRADE path looks them up once a day (a rate row
  /// of a later date cannot appear mid-run: the fee table is reference data).
  func rates(on date: Int32) -> [UInt64] {
    (0..<Self.slotCount).map { rate(slot: $0, on: date) }
  }

  /// The rates in force on `date` as `dayRates` for `clear(kind:amountFen:rates:…)`.
  func dayRates(on date: Int32) -> [V2DayRate] {
    rates(on: date).map { V2DayRate($0) }
  }

  /// `clear` with the date's rates already looked up (`dayRates(on:)`): the same fees,
  /// without the eight searches of the rate timelines. A seller's fee whose rate is the
  /// buyer's (a `both` row: every built-in fee but the stamp duty) is the buyer's fee, a
  /// function of the amount and the rate alone: computed once.
  @inline(__always)
  static func clear(
    kind: SecurityKind, amountFen amount: Int64, rates: UnsafeBufferPointer<V2DayRate>,
    truncateHandling: Bool, availableNow: Int64
  ) -> TradeClearing {
    @inline(__always) func fees(_ fee: FeeKind, truncate: Bool) -> (buyer: Int64, seller: Int64) {
      let b = rates[slot(kind, fee, seller: false)]
      let s = rates[slot(kind, fee, seller: true)]
      let buyer = Self.fee(amountFen: amount, b, truncate: truncate)
      return (buyer, s.rate == b.rate ? buyer : Self.fee(amountFen: amount, s, truncate: truncate))
    }
    let handling = fees(.handling, truncate: truncateHandling)
    let regulatory = fees(.regulatory, truncate: false)
    let transfer = fees(.transfer, truncate: false)
    let stamp = fees(.stamp, truncate: false)
    let buyer = SideFees(
      handling: handling.buyer, regulatory: regulatory.buyer, transfer: transfer.buyer, stamp: stamp.buyer)
    let seller = SideFees(
      handling: handling.seller, regulatory: regulatory.seller, transfer: transfer.seller, stamp: stamp.seller
    )
    return TradeClearing(
      amountFen: amount, buyerFees: buyer, sellerFees: seller, buyerNetFen: -amount - buyer.total,
      sellerNetFen: amount - seller.total, buyerAvailableNow: availableNow)
  }

  /// One trade's clearing (SPEC §4.1); `availableNow` is what the buyer may sell at once.
  func clear(
    kind: SecurityKind, date: Int32, priceMilli: Int64, quantity: Int64, truncateHandling: Bool,
    availableNow: Int64
  ) -> TradeClearing {
    clear(
      kind: kind, date: date, amountFen: Self.amountFen(priceMilli: priceMilli, quantity: quantity),
      truncateHandling: truncateHandling, availableNow: availableNow)
  }

  /// The same from the trade's amount (fees depend on the amount only).
  func clear(
    kind: SecurityKind, date: Int32, amountFen amount: Int64, truncateHandling: Bool, availableNow: Int64
  )
    -> TradeClearing
  {
    let buyer = sideFees(kind, date, amount, seller: false, truncate: truncateHandling)
    let seller = sideFees(kind, date, amount, seller: true, truncate: truncateHandling)
    return TradeClearing(
      amountFen: amount, buyerFees: buyer, sellerFees: seller, buyerNetFen: -amount - buyer.total,
      sellerNetFen: amount - seller.total, buyerAvailableNow: availableNow)
  }
}

/// A fee rate of one day (`V2FeeSchedule.dayRates(on:)`): `rate / 10^18` reduced to
/// `multiplier / divisor` with `divisor` the smallest power of ten that gives an integer
/// multiplier (0.0000341: 341 / 10^7).
struct V2DayRate: Sendable {
  let rate: UInt64
  let multiplier: UInt64
  let divisor: UInt64

  init(_ rate: UInt64) {
    var m = rate
    var digits = 18
    while digits > 0 && m % 10 == 0 {
      m /= 10
      digits -= 1
    }
    var d: UInt64 = 1
    for _ in 0..<digits { d *= 10 }
    self.rate = rate
    multiplier = m
    divisor = d
  }
}
