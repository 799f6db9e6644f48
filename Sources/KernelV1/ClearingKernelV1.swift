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
  public struct Rate: Sendable {
    var numerator: Int128
    var scale: Int
  }

  /// The rates in force on one date, by `slot`: a TRADE's eight fees read them where
  /// each walked its list of steps (every trade of a day has the open day's date).
  public struct RatesOnDate: Sendable {
    public let date: Int32
    fileprivate let rates: [Rate]

    /// Rates of no date (a kernel's cache before its first TRADE).
    public static let none = RatesOnDate(date: .min, rates: [])
  }

  @inline(__always)
  private func rate(slot: Int, date: Int32) -> Rate {
    let list = steps[slot]
    var i = list.count - 1
    while i >= 0 && list[i].effectiveDate > date { i -= 1 }
    // No step yet: a zero rate, whose fee is 0 as before (0 rounds and truncates to 0).
    if i < 0 { return Rate(numerator: 0, scale: 0) }
    return Rate(numerator: list[i].rate.numerator, scale: list[i].rate.scale)
  }

  /// The rates of every (kind, fee, side) in force on `date`.
  public func rates(on date: Int32) -> RatesOnDate {
    RatesOnDate(date: date, rates: steps.indices.map { rate(slot: $0, date: date) })
  }

  @inline(__always)
  private func fee(_ fee: FeeKind, rate: Rate, amountFen: Int64) -> Int64 {
    let product = Int128(amountFen) * rate.numerator
    if truncatesHandlingFee && fee == .handling {
      return exactInt64(product / powersOfTen[rate.scale], "fee")
    }
    return exactInt64(roundHalfUpDivide(product, byPowerOfTen: rate.scale), "fee")
  }

  @inline(__always)
  private func sideFees(kind: SecurityKind, sell: Bool, amountFen: Int64, rate: (Int) -> Rate) -> SideFees {
    SideFees(
      handling: fee(.handling, rate: rate(Self.slot(kind, .handling, sell: sell)), amountFen: amountFen),
      regulatory: fee(
        .regulatory, rate: rate(Self.slot(kind, .regulatory, sell: sell)), amountFen: amountFen),
      transfer: fee(.transfer, rate: rate(Self.slot(kind, .transfer, sell: sell)), amountFen: amountFen),
      stamp: fee(.stamp, rate: rate(Self.slot(kind, .stamp, sell: sell)), amountFen: amountFen))
  }

  public func clear(kind: SecurityKind, tradeDate: Int32, priceMilli: Int64, quantity: Int64) -> TradeClearing
  {
    clear(kind: kind, priceMilli: priceMilli, quantity: quantity) { rate(slot: $0, date: tradeDate) }
  }

  /// `clear(kind:tradeDate:priceMilli:quantity:)` with the rates of the trade date
  /// resolved beforehand (`rates(on:)` of that date): the same arithmetic on the same
  /// rates.
  public func clear(kind: SecurityKind, priceMilli: Int64, quantity: Int64, rates: RatesOnDate)
    -> TradeClearing
  {
    precondition(rates.rates.count == steps.count, "rates of this fee table")
    return clear(kind: kind, priceMilli: priceMilli, quantity: quantity) { rates.rates[$0] }
  }

  @inline(__always)
  private func clear(kind: SecurityKind, priceMilli: Int64, quantity: Int64, rate: (Int) -> Rate)
    -> TradeClearing
  {
    precondition(priceMilli > 0 && quantity > 0, "kernel input not validated")
    // price is in 0.001 CNY, so price × quantity is in 0.001 CNY; fen = that / 10.
    let amount = exactInt64(
      roundHalfUpDivide(Int128(priceMilli) * Int128(quantity), byPowerOfTen: 1), "amount")
    let buyer = sideFees(kind: kind, sell: false, amountFen: amount, rate: rate)
    let seller = sideFees(kind: kind, sell: true, amountFen: amount, rate: rate)
    return TradeClearing(
      amountFen: amount, buyerFees: buyer, sellerFees: seller,
      buyerNetFen: -amount - buyer.total, sellerNetFen: amount - seller.total,
      buyerAvailableNow: kind == .bond || plantedFault == .transfer ? quantity : 0)
  }
}
