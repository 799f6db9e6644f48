// ClearingKernelV2: the second, independently written per-trade clearing kernel
// (N-version voting). Written from SPEC §1, §2 "Built-in fee table", §3 TRADE,
// §4.1 and §4.2 only.
//
// Technique
// ---------
// Every rate is held as one unsigned integer `n` meaning `n / 10^18` (a fixed
// point number with 18 fraction digits), parsed digit by digit from the rate
// text with overflow-checked integer steps. A fee is
// `round_half_up(amountFen × n / 10^18)`: the product is taken at full width
// (`multipliedFullWidth`, 128 bits as a (high, low) pair of UInt64), divided by
// 10^18 with `dividingFullWidth`, and rounded half up by comparing the remainder
// with 5 × 10^17. The amount is computed the same way: `priceMilli × quantity`
// at full width, divided by 10 (milli-CNY to fen), half up on a remainder ≥ 5.
// All values are non-negative, so "half up" and "away from zero on .5" agree.
//
// At init the rows are resolved into one timeline per (kind, fee, paying side):
// for each effective date the side-specific row beats the `both` row, and the
// dates are sorted ascending. `clear` then only does 8 binary searches over
// flat arrays and integer arithmetic: no parsing, no allocation.
//
// Limits (refused with a precondition, kept in release builds)
// ---------------------------------------------------------------
// - A rate must match `[0-9]+(\.[0-9]+)?`, have no non-zero digit after the
//   18th fraction digit (trailing zeros beyond it are fine, any number of
//   leading zeros is fine), and be at most 18.446744073709551615
//   (`n = rate × 10^18` must fit in UInt64).
// - Two rows with the same kind, fee, side and effective date are ambiguous.
// - `priceMilli > 0`, `quantity > 0`; the amount in fen, each fee in fen, each
//   side's fee total and each net must fit in Int64. For any trade the
//   protocol allows (price < 10^6 CNY, quantity < 10^10) the amount is below
//   10^18 fen, so with rates ≤ 1 nothing can overflow.

import TallyCore

public struct ClearingKernelV2: ClearingKernel {
  /// The SPEC §2 built-in fee table, row for row.
  public static let builtInFeeRows: [FeeRateRow] = [
    FeeRateRow(kind: .stock, fee: .handling, side: .both, rateText: "0.0000487", effectiveDate: 19000101),
    FeeRateRow(kind: .stock, fee: .handling, side: .both, rateText: "0.0000341", effectiveDate: 20230828),
    FeeRateRow(kind: .stock, fee: .regulatory, side: .both, rateText: "0.00002", effectiveDate: 19000101),
    FeeRateRow(kind: .stock, fee: .transfer, side: .both, rateText: "0.00002", effectiveDate: 19000101),
    FeeRateRow(kind: .stock, fee: .transfer, side: .both, rateText: "0.00001", effectiveDate: 20220429),
    FeeRateRow(kind: .stock, fee: .stamp, side: .sell, rateText: "0.001", effectiveDate: 19000101),
    FeeRateRow(kind: .stock, fee: .stamp, side: .sell, rateText: "0.0005", effectiveDate: 20230828),
    FeeRateRow(kind: .fund, fee: .handling, side: .both, rateText: "0.00004", effectiveDate: 19000101),
    FeeRateRow(kind: .bond, fee: .handling, side: .both, rateText: "0.000001", effectiveDate: 19000101),
  ]

  /// Rates are integers `n` meaning `n / rateScale`.
  static let rateScale: UInt64 = 1_000_000_000_000_000_000
  /// The number of fraction digits `rateScale` represents.
  static let rateFractionDigits = 18
  static let halfRateScale: UInt64 = 500_000_000_000_000_000

  /// 3 kinds × 4 fees × 2 paying sides (buyer, seller).
  static let slotCount = 24

  /// Flat timelines: slot `s` owns entries `slotBounds[s] ..< slotBounds[s + 1]`
  /// of `dates` / `rates`, by strictly ascending date.
  private let dates: [Int32]
  private let rates: [UInt64]
  private let slotBounds: [Int]

  @inline(__always)
  static func slot(kind: SecurityKind, fee: FeeKind, seller: Bool) -> Int {
    (Int(kind.rawValue) &* 4 &+ Int(fee.rawValue)) &* 2 &+ (seller ? 1 : 0)
  }

  public var versionName: String { "v2" }

  public init(feeRows: [FeeRateRow]) {
    var timelines = [[(date: Int32, rate: UInt64)]](repeating: [], count: Self.slotCount)
    for kind in SecurityKind.allCases {
      for fee in FeeKind.allCases {
        for seller in [false, true] {
          let party: FeeSide = seller ? .sell : .buy
          var specific: [Int32: UInt64] = [:]
          var general: [Int32: UInt64] = [:]
          for row in feeRows where row.kind == kind && row.fee == fee {
            guard row.side == party || row.side == .both else { continue }
            let rate = Self.requireRate(row)
            if row.side == .both {
              precondition(
                general.updateValue(rate, forKey: row.effectiveDate) == nil,
                "ClearingKernelV2: two fee rows \(kind.word),\(fee.word),both on \(row.effectiveDate)")
            } else {
              precondition(
                specific.updateValue(rate, forKey: row.effectiveDate) == nil,
                "ClearingKernelV2: two fee rows \(kind.word),\(fee.word),\(party.word) on \(row.effectiveDate)"
              )
            }
          }
          // A side-specific row beats a `both` row of the same date.
          var merged = general
          for (date, rate) in specific { merged[date] = rate }
          timelines[Self.slot(kind: kind, fee: fee, seller: seller)] =
            merged.keys.sorted().map { (date: $0, rate: merged[$0]!) }
        }
      }
    }
    var dates: [Int32] = []
    var rates: [UInt64] = []
    var bounds: [Int] = [0]
    for timeline in timelines {
      for entry in timeline {
        dates.append(entry.date)
        rates.append(entry.rate)
      }
      bounds.append(dates.count)
    }
    self.dates = dates
    self.rates = rates
    self.slotBounds = bounds
  }

  public func clear(kind: SecurityKind, tradeDate: Int32, priceMilli: Int64, quantity: Int64)
    -> TradeClearing
  {
    precondition(priceMilli > 0, "ClearingKernelV2: price must be > 0")
    precondition(quantity > 0, "ClearingKernelV2: quantity must be > 0")
    let amount = Self.amountFen(priceMilli: UInt64(priceMilli), quantity: UInt64(quantity))

    let buyer = SideFees(
      handling: fee(kind, .handling, false, tradeDate, amount),
      regulatory: fee(kind, .regulatory, false, tradeDate, amount),
      transfer: fee(kind, .transfer, false, tradeDate, amount),
      stamp: fee(kind, .stamp, false, tradeDate, amount))
    let seller = SideFees(
      handling: fee(kind, .handling, true, tradeDate, amount),
      regulatory: fee(kind, .regulatory, true, tradeDate, amount),
      transfer: fee(kind, .transfer, true, tradeDate, amount),
      stamp: fee(kind, .stamp, true, tradeDate, amount))

    let signedAmount = Int64(amount)  // < Int64.max, checked in amountFen
    let (buyerNet, o1) = (0 &- signedAmount).subtractingReportingOverflow(Self.total(buyer))
    precondition(!o1, "ClearingKernelV2: buyer net overflows Int64")
    let (sellerNet, o2) = signedAmount.subtractingReportingOverflow(Self.total(seller))
    precondition(!o2, "ClearingKernelV2: seller net overflows Int64")

    return TradeClearing(
      amountFen: signedAmount,
      buyerFees: buyer,
      sellerFees: seller,
      buyerNetFen: buyerNet,
      sellerNetFen: sellerNet,
      buyerAvailableNow: kind == .bond ? quantity : 0)
  }

  // MARK: - Arithmetic

  /// `round_half_up(priceMilli × quantity / 10)`: milli-CNY to fen.
  @inline(__always)
  static func amountFen(priceMilli: UInt64, quantity: UInt64) -> UInt64 {
    let product = priceMilli.multipliedFullWidth(by: quantity)
    // The quotient by 10 fits in UInt64 exactly when high < 10.
    precondition(product.high < 10, "ClearingKernelV2: price × quantity too large")
    let (q, r) = UInt64(10).dividingFullWidth(product)
    precondition(q < UInt64(Int64.max), "ClearingKernelV2: amount overflows Int64")
    return r >= 5 ? q &+ 1 : q
  }

  /// `round_half_up(amountFen × n / 10^18)` for the scaled rate `n`.
  @inline(__always)
  static func scaledFee(amountFen: UInt64, rate: UInt64) -> Int64 {
    let product = amountFen.multipliedFullWidth(by: rate)
    // The quotient by 10^18 fits in UInt64 exactly when high < 10^18.
    precondition(product.high < rateScale, "ClearingKernelV2: amount × rate too large")
    let (q, r) = rateScale.dividingFullWidth(product)
    precondition(q < UInt64(Int64.max), "ClearingKernelV2: fee overflows Int64")
    return Int64(r >= halfRateScale ? q &+ 1 : q)
  }

  @inline(__always)
  private func fee(
    _ kind: SecurityKind, _ fee: FeeKind, _ seller: Bool, _ date: Int32, _ amount: UInt64
  ) -> Int64 {
    let rate = rateInForce(slot: Self.slot(kind: kind, fee: fee, seller: seller), on: date)
    return rate == 0 ? 0 : Self.scaledFee(amountFen: amount, rate: rate)
  }

  /// The rate of the entry with the latest date ≤ `date`, or 0 when none.
  @inline(__always)
  private func rateInForce(slot: Int, on date: Int32) -> UInt64 {
    let start = slotBounds[slot]
    var low = start
    var high = slotBounds[slot &+ 1]
    // Find the first entry dated after `date`.
    while low < high {
      let mid = (low &+ high) >> 1
      if dates[mid] <= date { low = mid &+ 1 } else { high = mid }
    }
    return low == start ? 0 : rates[low &- 1]
  }

  @inline(__always)
  static func total(_ fees: SideFees) -> Int64 {
    let (a, o1) = fees.handling.addingReportingOverflow(fees.regulatory)
    let (b, o2) = a.addingReportingOverflow(fees.transfer)
    let (c, o3) = b.addingReportingOverflow(fees.stamp)
    precondition(!(o1 || o2 || o3), "ClearingKernelV2: fee total overflows Int64")
    return c
  }

  // MARK: - Rate parsing

  enum RateParse: Equatable {
    /// The rate is `n / 10^18` exactly.
    case exact(UInt64)
    /// Not `[0-9]+(\.[0-9]+)?`.
    case malformed
    /// A non-zero digit after the 18th fraction digit.
    case tooPrecise
    /// Above 18.446744073709551615.
    case tooLarge
  }

  /// Parses `[0-9]+(\.[0-9]+)?` into `n` with value `n / 10^18`, exactly.
  static func parseRate(_ text: String) -> RateParse {
    var n: UInt64 = 0
    var integerDigits = 0
    var fractionDigits = 0
    var seenPoint = false
    var tooPrecise = false
    var tooLarge = false
    for byte in text.utf8 {
      if byte == UInt8(ascii: ".") {
        if seenPoint || integerDigits == 0 { return .malformed }
        seenPoint = true
        continue
      }
      guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return .malformed }
      let digit = UInt64(byte &- UInt8(ascii: "0"))
      if seenPoint {
        fractionDigits += 1
        if fractionDigits > rateFractionDigits {
          if digit != 0 { tooPrecise = true }
          continue
        }
      } else {
        integerDigits += 1
      }
      if !tooLarge {
        let (times10, o1) = n.multipliedReportingOverflow(by: 10)
        let (next, o2) = times10.addingReportingOverflow(digit)
        if o1 || o2 { tooLarge = true } else { n = next }
      }
    }
    if integerDigits == 0 || (seenPoint && fractionDigits == 0) { return .malformed }
    if tooPrecise { return .tooPrecise }
    var scaleUp = rateFractionDigits - min(fractionDigits, rateFractionDigits)
    while scaleUp > 0 && !tooLarge {
      let (times10, o) = n.multipliedReportingOverflow(by: 10)
      if o { tooLarge = true } else { n = times10 }
      scaleUp -= 1
    }
    return tooLarge ? .tooLarge : .exact(n)
  }

  private static func requireRate(_ row: FeeRateRow) -> UInt64 {
    let what = "\(row.kind.word),\(row.fee.word),\(row.side.word),\(row.rateText),\(row.effectiveDate)"
    switch parseRate(row.rateText) {
    case .exact(let n):
      return n
    case .malformed:
      preconditionFailure("ClearingKernelV2: rate is not [0-9]+(\\.[0-9]+)? in fee row \(what)")
    case .tooPrecise:
      preconditionFailure(
        "ClearingKernelV2: rate has a non-zero digit after the 18th fraction digit in fee row \(what)")
    case .tooLarge:
      preconditionFailure("ClearingKernelV2: rate above 18.446744073709551615 in fee row \(what)")
    }
  }
}
