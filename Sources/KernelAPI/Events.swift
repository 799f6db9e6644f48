// The events of SPEC §3, already parsed and pattern-checked (TallyFormat does that).
// Identifiers stay text here; the state machine interns them to dense ids.

public enum AccountKind: UInt8, Sendable {
  case individual = 0
  case institution = 1

  public var word: String { self == .individual ? "INDIVIDUAL" : "INSTITUTION" }
}

/// A TRADE line (SPEC §3). Prices are in 0.001 CNY, dates YYYYMMDD, time HHMMSS.
public struct TradeEvent: Sendable, Equatable {
  public var tradeId: String
  public var date: Int32
  public var time: Int32
  public var security: String
  public var priceMilli: Int64
  public var quantity: Int64
  public var buyAccount: String
  public var buyUnit: String
  public var sellAccount: String
  public var sellUnit: String

  public init(
    tradeId: String, date: Int32, time: Int32, security: String, priceMilli: Int64, quantity: Int64,
    buyAccount: String, buyUnit: String, sellAccount: String, sellUnit: String
  ) {
    self.tradeId = tradeId
    self.date = date
    self.time = time
    self.security = security
    self.priceMilli = priceMilli
    self.quantity = quantity
    self.buyAccount = buyAccount
    self.buyUnit = buyUnit
    self.sellAccount = sellAccount
    self.sellUnit = sellUnit
  }
}

/// A TRADE line whose fields have passed SPEC §1's patterns, its six identifiers
/// left as byte ranges of the line (the engine's hot path makes no String of them).
public struct TradeLine: Sendable {
  public var date: Int32
  public var time: Int32
  public var priceMilli: Int64
  public var quantity: Int64
  public var tradeId: Range<Int>
  public var security: Range<Int>
  public var buyAccount: Range<Int>
  public var buyUnit: Range<Int>
  public var sellAccount: Range<Int>
  public var sellUnit: Range<Int>

  public init(
    date: Int32, time: Int32, priceMilli: Int64, quantity: Int64, tradeId: Range<Int>, security: Range<Int>,
    buyAccount: Range<Int>, buyUnit: Range<Int>, sellAccount: Range<Int>, sellUnit: Range<Int>
  ) {
    self.date = date
    self.time = time
    self.priceMilli = priceMilli
    self.quantity = quantity
    self.tradeId = tradeId
    self.security = security
    self.buyAccount = buyAccount
    self.buyUnit = buyUnit
    self.sellAccount = sellAccount
    self.sellUnit = sellUnit
  }
}

/// One TRADE of a group handed to `BusinessKernel.applyTrades`: the line split by the
/// parser, where the line lies in the group's bytes, and its sequence number.
public struct TradeInput: Sendable {
  /// Ranges relative to the line's first byte (as `EventParser.tradeLine` gives them).
  public var trade: TradeLine
  /// The line's bytes within the group's byte buffer.
  public var line: Range<Int>
  public var seq: Int64
  /// What the applying kernel's `TradeResolver` found for the line before it was
  /// applied, on the thread that split it (unset when no resolver saw it).
  public var hints = TradeHints()

  public init(trade: TradeLine, line: Range<Int>, seq: Int64) {
    self.trade = trade
    self.line = line
    self.seq = seq
  }

  /// The line's bytes in the group's buffer (what `applyTrade` takes as `line`).
  @inlinable public func line(in bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(rebasing: bytes[line])
  }

  /// Field `range` of the line (a range of `trade`) in the group's buffer.
  @inlinable public func field(_ range: Range<Int>, in bytes: UnsafeRawBufferPointer)
    -> UnsafeRawBufferPointer
  {
    UnsafeRawBufferPointer(
      rebasing: bytes[(line.lowerBound + range.lowerBound)..<(line.lowerBound + range.upperBound)])
  }
}

/// A TRADE's identifiers as a kernel's `TradeResolver` found them, ahead of the apply
/// (issue 8: identifiers interned to dense row ids at the parser's edge, off the
/// applying core). The numbers are the resolving kernel's own (row ids, a hash); only
/// that kernel reads them, and only when `isSet`.
public struct TradeHints: Sendable {
  /// Two 64-bit values (say, the trade id's hash and its decimal value).
  public var key: UInt64 = 0
  public var keyValue: Int64 = 0
  /// Up to six row ids (say, accounts, security, units); by convention -1 when the
  /// resolver did not find the identifier, which the kernel then looks up itself (it
  /// may have been added since the resolver's copy was made).
  public var rows: (Int32, Int32, Int32, Int32, Int32, Int32) = (-1, -1, -1, -1, -1, -1)
  /// False: no resolver saw the trade; everything is looked up when applied.
  public var isSet = false

  @inlinable public init() {}
}

/// A kernel's read-only helper for TRADE lines not yet applied, run on another thread
/// (the one splitting event lines) while the kernel applies earlier events: it fills
/// each trade's `hints` from the line's bytes and its own copy of lookups that never
/// lose an entry (accounts, securities, units are only ever added). What it found must
/// be what the kernel itself would find when the trade is applied; what it did not find
/// the kernel looks up again. Outcomes, effects and state do not depend on whether a
/// trade was resolved.
public protocol TradeResolver: Sendable {
  /// Fills `hints` of every trade in `trades`, whose lines are in `bytes`.
  func resolve(_ trades: UnsafeMutableBufferPointer<TradeInput>, bytes: UnsafeRawBufferPointer)
}

public enum Event: Sendable, Equatable {
  case open(date: Int32)
  case trade(TradeEvent)
  case cancel(date: Int32, tradeId: String)
  case close(date: Int32)
  case settle(date: Int32)
  /// Amount in fen.
  case deposit(participant: String, amountFen: Int64)
  /// Amount per share in 0.000001 CNY.
  case dividend(security: String, recordDate: Int32, perShareMicro: Int64)
  case bonus(security: String, recordDate: Int32, base: Int64, bonus: Int64)
  case participant(id: String, name: String)
  case unit(id: String, participant: String)
  case account(id: String, kind: AccountKind)
  case security(id: String, isin: String, name: String, kind: SecurityKind)
  /// A line that breaks SPEC §3's shape; `record` and `ref` are what rejections.csv shows.
  case malformed(record: String, ref: String)

  /// The `record` column of rejections.csv for this event.
  public var recordWord: String {
    switch self {
    case .open: return "OPEN"
    case .trade: return "TRADE"
    case .cancel: return "CANCEL"
    case .close: return "CLOSE"
    case .settle: return "SETTLE"
    case .deposit: return "DEPOSIT"
    case .dividend: return "DIVIDEND"
    case .bonus: return "BONUS"
    case .participant: return "PARTICIPANT"
    case .unit: return "UNIT"
    case .account: return "ACCOUNT"
    case .security: return "SECURITY"
    case .malformed(let record, _): return record
    }
  }

  /// The `ref` column of rejections.csv: the line's second field (third for CANCEL).
  public var refText: String {
    switch self {
    case .open(let d), .close(let d), .settle(let d): return dateText(d)
    case .trade(let t): return t.tradeId
    case .cancel(_, let tradeId): return tradeId
    case .deposit(let p, _): return p
    case .dividend(let s, _, _), .bonus(let s, _, _, _): return s
    case .participant(let id, _), .unit(let id, _), .account(let id, _), .security(let id, _, _, _):
      return id
    case .malformed(_, let ref): return ref
    }
  }
}

/// YYYYMMDD as 8 digits (a valid date always has a 4-digit year here).
public func dateText(_ date: Int32) -> String {
  let s = String(date)
  return s.count >= 8 ? s : String(repeating: "0", count: 8 - s.count) + s
}

/// SPEC §6.
public enum RejectReason: UInt8, Sendable, CaseIterable {
  case malformed, badDate, dayAlreadyOpen, dayNotOpen, wrongDate, duplicateTrade, unknownSecurity
  case invalidPrice, invalidQuantity, unknownAccount, unknownUnit, insufficientHoldings, unknownTrade
  case alreadyCancelled, alreadySettled, cannotReverse, unknownParticipant, invalidAmount, invalidRatio
  case recordDatePassed, duplicateParticipant, duplicateUnit, duplicateAccount, duplicateSecurity

  public var code: String {
    switch self {
    case .malformed: return "MALFORMED"
    case .badDate: return "BAD_DATE"
    case .dayAlreadyOpen: return "DAY_ALREADY_OPEN"
    case .dayNotOpen: return "DAY_NOT_OPEN"
    case .wrongDate: return "WRONG_DATE"
    case .duplicateTrade: return "DUPLICATE_TRADE"
    case .unknownSecurity: return "UNKNOWN_SECURITY"
    case .invalidPrice: return "INVALID_PRICE"
    case .invalidQuantity: return "INVALID_QUANTITY"
    case .unknownAccount: return "UNKNOWN_ACCOUNT"
    case .unknownUnit: return "UNKNOWN_UNIT"
    case .insufficientHoldings: return "INSUFFICIENT_HOLDINGS"
    case .unknownTrade: return "UNKNOWN_TRADE"
    case .alreadyCancelled: return "ALREADY_CANCELLED"
    case .alreadySettled: return "ALREADY_SETTLED"
    case .cannotReverse: return "CANNOT_REVERSE"
    case .unknownParticipant: return "UNKNOWN_PARTICIPANT"
    case .invalidAmount: return "INVALID_AMOUNT"
    case .invalidRatio: return "INVALID_RATIO"
    case .recordDatePassed: return "RECORD_DATE_PASSED"
    case .duplicateParticipant: return "DUPLICATE_PARTICIPANT"
    case .duplicateUnit: return "DUPLICATE_UNIT"
    case .duplicateAccount: return "DUPLICATE_ACCOUNT"
    case .duplicateSecurity: return "DUPLICATE_SECURITY"
    }
  }
}

/// What applying one event did.
public enum Outcome: Sendable, Equatable {
  case applied
  case rejected(RejectReason)
}
