// Version 1 of the per-trade clearing kernel (SPEC §2 fee table, §3 TRADE, §4.1).
// Version 2 lives in its own module, written independently from SPEC.md alone.

import KernelAPI

/// A rate `[0-9]+(\.[0-9]+)?` as an exact fraction `numerator / 10^scale`.
public struct DecimalRate: Sendable, Equatable {
  public var numerator: Int128
  public var scale: Int

  /// Limits that keep `amount × rate` exact in Int128: at most 1 integer digit (a rate below 10) and
  /// 18 significant fraction digits (trailing zeros do not count).
  public static let integerDigitsMax = 1
  public static let fractionDigitsMax = 18

  /// Nil when the text breaks the pattern or the limits.
  public init?(_ text: String) {
    let bytes = Array(text.utf8)
    var integerPart = bytes[...]
    var fractionPart: ArraySlice<UInt8> = []
    if let dot = bytes.firstIndex(of: UInt8(ascii: ".")) {
      integerPart = bytes[..<dot]
      fractionPart = bytes[(dot + 1)...]
      if fractionPart.isEmpty { return nil }
    }
    guard !integerPart.isEmpty, integerPart.allSatisfy({ $0 >= 48 && $0 <= 57 }),
      fractionPart.allSatisfy({ $0 >= 48 && $0 <= 57 })
    else { return nil }
    while let first = integerPart.first, first == 48, integerPart.count > 1 {
      integerPart = integerPart.dropFirst()
    }
    while let last = fractionPart.last, last == 48 { fractionPart = fractionPart.dropLast() }
    guard integerPart.count <= Self.integerDigitsMax, fractionPart.count <= Self.fractionDigitsMax else {
      return nil
    }
    var value: Int128 = 0
    for digit in integerPart { value = value * 10 + Int128(digit - 48) }
    for digit in fractionPart { value = value * 10 + Int128(digit - 48) }
    numerator = value
    scale = fractionPart.count
  }
}

public struct ClearingKernelV1: Sendable {
  private struct RateStep {
    var effectiveDate: Int32
    var rate: DecimalRate
  }

  /// Steps by ascending effective date, per (kind, fee, buy|sell).
  private let steps: [[RateStep]]
  /// Fault injection for N-version tests (PlantedFaults.swift). Never set outside
  /// tests and chaos scenarios.
  public let plantedFault: PlantedFault?
  var truncatesHandlingFee: Bool { plantedFault == .feeRounding }

  private static func slot(_ kind: SecurityKind, _ fee: FeeKind, sell: Bool) -> Int {
    (Int(kind.rawValue) * FeeKind.allCases.count + Int(fee.rawValue)) * 2 + (sell ? 1 : 0)
  }

  public init(feeRows: [FeeRateRow], truncatesHandlingFee: Bool = false) {
    self.init(feeRows: feeRows, plantedFault: truncatesHandlingFee ? .feeRounding : nil)
  }

  public init(feeRows: [FeeRateRow], plantedFault: PlantedFault?) {
    self.plantedFault = plantedFault
    var steps = [[RateStep]](repeating: [], count: SecurityKind.allCases.count * FeeKind.allCases.count * 2)
    for sell in [false, true] {
      for kind in SecurityKind.allCases {
        for fee in FeeKind.allCases {
          let candidates = feeRows.filter {
            $0.kind == kind && $0.fee == fee && ($0.side == .both || $0.side == (sell ? .sell : .buy))
          }
          // One step per date; a side-specific row beats a `both` row of the same date.
          var byDate: [(date: Int32, specific: Bool, rate: DecimalRate)] = []
          for row in candidates {
            guard let rate = DecimalRate(row.rateText) else {
              preconditionFailure("fee rate \(row.rateText) was not validated")
            }
            byDate.append((row.effectiveDate, row.side != .both, rate))
          }
          byDate.sort { ($0.date, $0.specific ? 1 : 0) < ($1.date, $1.specific ? 1 : 0) }
          var list: [RateStep] = []
          for entry in byDate {
            if let last = list.last, last.effectiveDate == entry.date {
              list[list.count - 1].rate = entry.rate
            } else {
              list.append(RateStep(effectiveDate: entry.date, rate: entry.rate))
            }
          }
          steps[Self.slot(kind, fee, sell: sell)] = list
        }
      }
    }
    self.steps = steps
  }

  /// A fee rate as applied: `numerator / 10^scale` (0 when no step is in force yet).
  /// A `DecimalRate` has at most 19 digits (`integerDigitsMax` + `fractionDigitsMax`):
  /// its numerator is below 10^19 < 2^64.
  public struct Rate: Sendable {
    var numerator: UInt64
    var scale: Int
  }

  /// The four fee rates of one side.
  public struct SideRates: Sendable {
    var handling: Rate
    var regulatory: Rate
    var transfer: Rate
    var stamp: Rate
  }

  /// The rates of one security kind.
  public struct KindRates: Sendable {
    var buyer: SideRates
    var seller: SideRates
  }

  /// The rates in force on one date, for every kind: a TRADE's eight fees read them
  /// where each walked its list of steps (every trade of a day has the open day's
  /// date). Values only, no array: nothing is retained per trade.
  public struct RatesOnDate: Sendable {
    public let date: Int32
    /// The kernel's planted fault (fixed for its life), so that a TRADE's clearing
    /// needs nothing but these rates (`clear(kind:priceMilli:quantity:ratesAt:)`).
    fileprivate let plantedFault: PlantedFault?
    fileprivate let stock: KindRates
    fileprivate let fund: KindRates
    fileprivate let bond: KindRates

    /// Rates of no date (a kernel's cache before its first TRADE).
    public static let none: RatesOnDate = {
      let zero = Rate(numerator: 0, scale: 0)
      let side = SideRates(handling: zero, regulatory: zero, transfer: zero, stamp: zero)
      let kind = KindRates(buyer: side, seller: side)
      return RatesOnDate(date: .min, plantedFault: nil, stock: kind, fund: kind, bond: kind)
    }()
  }

  private func rate(_ fee: FeeKind, kind: SecurityKind, sell: Bool, date: Int32) -> Rate {
    let list = steps[Self.slot(kind, fee, sell: sell)]
    var i = list.count - 1
    while i >= 0 && list[i].effectiveDate > date { i -= 1 }
    // No step yet: a zero rate, whose fee is 0 as before (0 rounds and truncates to 0).
    if i < 0 { return Rate(numerator: 0, scale: 0) }
    let rate = list[i].rate
    precondition(
      rate.numerator >= 0 && rate.numerator <= Int128(UInt64.max), "fee rate has at most 19 digits")
    return Rate(numerator: UInt64(rate.numerator), scale: rate.scale)
  }

  private func sideRates(kind: SecurityKind, sell: Bool, date: Int32) -> SideRates {
    SideRates(
      handling: rate(.handling, kind: kind, sell: sell, date: date),
      regulatory: rate(.regulatory, kind: kind, sell: sell, date: date),
      transfer: rate(.transfer, kind: kind, sell: sell, date: date),
      stamp: rate(.stamp, kind: kind, sell: sell, date: date))
  }

  private func kindRates(_ kind: SecurityKind, date: Int32) -> KindRates {
    KindRates(
      buyer: sideRates(kind: kind, sell: false, date: date),
      seller: sideRates(kind: kind, sell: true, date: date))
  }

  /// The rates of every (kind, fee, side) in force on `date`.
  public func rates(on date: Int32) -> RatesOnDate {
    RatesOnDate(
      date: date, plantedFault: plantedFault, stock: kindRates(.stock, date: date),
      fund: kindRates(.fund, date: date),
      bond: kindRates(.bond, date: date))
  }

  /// `amountFen × rate` rounded half up to a fen (truncated for the planted handling
  /// fault). Every real fee's product fits 64 bits: one 64×64 multiplication and a
  /// division by a literal power of ten (`roundedQuotient`); anything larger (or a
  /// negative amount, which no trade has) goes through Int128 as before, to the same
  /// value or the same overflow stop.
  @inline(__always)
  private static func fee(_ fee: FeeKind, rate: Rate, amountFen: Int64, fault: PlantedFault?) -> Int64 {
    let truncates = fault == .feeRounding && fee == .handling
    if !truncates, let fast = roundedProduct(amountFen, rate.numerator, byPowerOfTen: rate.scale) {
      return fast
    }
    let product = Int128(amountFen) * Int128(rate.numerator)
    if truncates { return exactInt64(product / powersOfTen[rate.scale], "fee") }
    return exactInt64(roundHalfUpDivide(product, byPowerOfTen: rate.scale), "fee")
  }

  /// One side's four fees, each rate read where it is.
  @inline(__always)
  private static func sideFees(_ rates: UnsafePointer<SideRates>, amountFen: Int64, fault: PlantedFault?)
    -> SideFees
  {
    SideFees(
      handling: fee(.handling, rate: rates.pointee.handling, amountFen: amountFen, fault: fault),
      regulatory: fee(.regulatory, rate: rates.pointee.regulatory, amountFen: amountFen, fault: fault),
      transfer: fee(.transfer, rate: rates.pointee.transfer, amountFen: amountFen, fault: fault),
      stamp: fee(.stamp, rate: rates.pointee.stamp, amountFen: amountFen, fault: fault))
  }

  public func clear(kind: SecurityKind, tradeDate: Int32, priceMilli: Int64, quantity: Int64) -> TradeClearing
  {
    // The kind's rates looked up on their own (not through a `RatesOnDate`): the tests
    // hold the two ways equal.
    var rates = kindRates(kind, date: tradeDate)
    return Self.clear(
      kind: kind, priceMilli: priceMilli, quantity: quantity, rates: &rates, fault: plantedFault)
  }

  /// `clear(kind:tradeDate:priceMilli:quantity:)` with the rates of the trade date
  /// resolved beforehand (`rates(on:)` of that date; the same arithmetic on the same
  /// rates), read where they are: the 392-byte `RatesOnDate` passed by value was copied
  /// to the stack for every TRADE and read back across the copy's wide stores, and the
  /// kernel's `ClearingKernelV1` with it (a retain and release of its steps): ~7% of
  /// V1's apply loop (perf, twenty-second session).
  @inline(__always)
  public static func clear(
    kind: SecurityKind, priceMilli: Int64, quantity: Int64, ratesAt rates: UnsafePointer<RatesOnDate>
  ) -> TradeClearing {
    let kindRates: UnsafePointer<KindRates>
    switch kind {
    case .stock: kindRates = rates.pointer(to: \.stock)!
    case .fund: kindRates = rates.pointer(to: \.fund)!
    case .bond: kindRates = rates.pointer(to: \.bond)!
    }
    return clear(
      kind: kind, priceMilli: priceMilli, quantity: quantity, rates: kindRates,
      fault: rates.pointee.plantedFault)
  }

  @inline(__always)
  private static func clear(
    kind: SecurityKind, priceMilli: Int64, quantity: Int64, rates: UnsafePointer<KindRates>,
    fault: PlantedFault?
  ) -> TradeClearing {
    precondition(priceMilli > 0 && quantity > 0, "kernel input not validated")
    // price is in 0.001 CNY, so price × quantity is in 0.001 CNY; fen = that / 10.
    let amount =
      roundedProduct(priceMilli, UInt64(quantity), byPowerOfTen: 1)
      ?? exactInt64(roundHalfUpDivide(Int128(priceMilli) * Int128(quantity), byPowerOfTen: 1), "amount")
    let buyer = sideFees(rates.pointer(to: \.buyer)!, amountFen: amount, fault: fault)
    let seller = sideFees(rates.pointer(to: \.seller)!, amountFen: amount, fault: fault)
    return TradeClearing(
      amountFen: amount, buyerFees: buyer, sellerFees: seller,
      buyerNetFen: -amount - buyer.total, sellerNetFen: amount - seller.total,
      buyerAvailableNow: kind == .bond || fault == .transfer ? quantity : 0)
  }
}

/// `a × b / 10^scale` rounded half up, when `a >= 0` and the product fits 64 bits and
/// the result Int64 (every real amount and fee); nil otherwise, for the Int128 path.
/// The same value as `roundHalfUpDivide(Int128(a) * Int128(b), byPowerOfTen: scale)`:
/// an exact product, then `roundedQuotient`.
@inline(__always)
func roundedProduct(_ a: Int64, _ b: UInt64, byPowerOfTen scale: Int) -> Int64? {
  guard a >= 0 else { return nil }
  let (high, low) = b.multipliedFullWidth(by: UInt64(a))
  guard high == 0, let q = roundedQuotient(low, byPowerOfTen: scale), q <= UInt64(Int64.max) else {
    return nil
  }
  return Int64(q)
}
