// The vocabulary of the fee table and of one trade's clearing (SPEC §2, §3 TRADE,
// §4.1, §4.2): kinds, fees, sides, rate rows as written, and the per-trade result.

/// `kind` of securities.csv / SECURITY (SPEC §2).
public enum SecurityKind: UInt8, Sendable, CaseIterable {
  case stock = 0
  case fund = 1
  case bond = 2

  /// The word used in files: `STOCK`, `FUND`, `BOND`.
  public var word: String {
    switch self {
    case .stock: return "STOCK"
    case .fund: return "FUND"
    case .bond: return "BOND"
    }
  }
}

/// The four charges of the fee table (SPEC §2), in output column order.
public enum FeeKind: UInt8, Sendable, CaseIterable {
  case handling = 0
  case regulatory = 1
  case transfer = 2
  case stamp = 3

  public var word: String {
    switch self {
    case .handling: return "handling"
    case .regulatory: return "regulatory"
    case .transfer: return "transfer"
    case .stamp: return "stamp"
    }
  }
}

/// The side a fee row applies to.
public enum FeeSide: UInt8, Sendable, CaseIterable {
  case both = 0
  case buy = 1
  case sell = 2

  public var word: String {
    switch self {
    case .both: return "both"
    case .buy: return "buy"
    case .sell: return "sell"
    }
  }
}

/// One row of the fee table in force: the built-in rows of SPEC §2, with the
/// kinds that fees.csv names replaced by the file's rows. `rateText` is the
/// rate exactly as written (`[0-9]+(\.[0-9]+)?`), so that each kernel version
/// does its own exact arithmetic.
public struct FeeRateRow: Sendable, Equatable {
  public var kind: SecurityKind
  public var fee: FeeKind
  public var side: FeeSide
  public var rateText: String
  /// `YYYYMMDD` as an integer, e.g. 20230828.
  public var effectiveDate: Int32

  public init(kind: SecurityKind, fee: FeeKind, side: FeeSide, rateText: String, effectiveDate: Int32) {
    self.kind = kind
    self.fee = fee
    self.side = side
    self.rateText = rateText
    self.effectiveDate = effectiveDate
  }
}

/// The fees one side of a trade pays, in fen (0.01 CNY).
public struct SideFees: Sendable, Equatable, BitwiseCopyable {
  public var handling: Int64
  public var regulatory: Int64
  public var transfer: Int64
  public var stamp: Int64

  public init(handling: Int64 = 0, regulatory: Int64 = 0, transfer: Int64 = 0, stamp: Int64 = 0) {
    self.handling = handling
    self.regulatory = regulatory
    self.transfer = transfer
    self.stamp = stamp
  }

  public var total: Int64 { handling + regulatory + transfer + stamp }
}

/// What a kernel computes for one trade (SPEC §3 TRADE, §4.1, §4.2).
public struct TradeClearing: Sendable, Equatable, BitwiseCopyable {
  /// `round_half_up(price × quantity, 0.01)` in fen.
  public var amountFen: Int64
  public var buyerFees: SideFees
  public var sellerFees: SideFees
  /// The buyer's net cash for this trade: `−amount − buyer fees` (fen).
  public var buyerNetFen: Int64
  /// The seller's net cash for this trade: `amount − seller fees` (fen).
  public var sellerNetFen: Int64
  /// How many of the bought shares are available to the buyer at once
  /// (all of them for BOND, none for STOCK and FUND until the next OPEN).
  public var buyerAvailableNow: Int64

  public init(
    amountFen: Int64, buyerFees: SideFees, sellerFees: SideFees, buyerNetFen: Int64,
    sellerNetFen: Int64, buyerAvailableNow: Int64
  ) {
    self.amountFen = amountFen
    self.buyerFees = buyerFees
    self.sellerFees = sellerFees
    self.buyerNetFen = buyerNetFen
    self.sellerNetFen = sellerNetFen
    self.buyerAvailableNow = buyerAvailableNow
  }
}

extension FeeRateRow {
  /// Limits on a rate as written, which every kernel handles exactly: `[0-9]+(\.[0-9]+)?`,
  /// below 10 (one integer digit once leading zeros are dropped) and at most 18
  /// significant fraction digits (trailing zeros do not count).
  public static let rateIntegerDigitsMax = 1
  public static let rateFractionDigitsMax = 18

  /// True when `text` is a rate within the limits above (the reference parser refuses others).
  public static func isValidRateText(_ text: String) -> Bool {
    let bytes = Array(text.utf8)
    var integer = bytes[...]
    var fraction: ArraySlice<UInt8> = []
    if let dot = bytes.firstIndex(of: UInt8(ascii: ".")) {
      integer = bytes[..<dot]
      fraction = bytes[(dot + 1)...]
      if fraction.isEmpty { return false }
    }
    let isDigit = { (b: UInt8) in b >= 48 && b <= 57 }
    guard !integer.isEmpty, integer.allSatisfy(isDigit), fraction.allSatisfy(isDigit) else { return false }
    while let first = integer.first, first == 48, integer.count > 1 { integer = integer.dropFirst() }
    while let last = fraction.last, last == 48 { fraction = fraction.dropLast() }
    return integer.count <= rateIntegerDigitsMax && fraction.count <= rateFractionDigitsMax
  }
}
