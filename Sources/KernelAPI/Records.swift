// The rows of the state tables. Every field here is business state: it is
// persisted, digested and compared across replicas. Derived indexes live in
// V1Kernel and are rebuilt from these rows on load.

public struct ParticipantRecord: Sendable, Equatable {
  public var id: Ident
  public var name: String
  /// Settlement reserve in fen. Sums of money are Int128: SPEC's per-field limits
  /// allow totals beyond Int64 (e.g. 10^4 deposits of 10^13 CNY).
  public var balance: Int128

  public init(id: Ident, name: String, balance: Int128) {
    self.id = id
    self.name = name
    self.balance = balance
  }
}

public struct UnitRecord: Sendable, Equatable {
  public var id: Ident
  public var participant: Int32

  public init(id: Ident, participant: Int32) {
    self.id = id
    self.participant = participant
  }
}

public struct AccountRecord: Sendable, Equatable {
  public var id: Ident
  public var kind: AccountKind

  public init(id: Ident, kind: AccountKind) {
    self.id = id
    self.kind = kind
  }
}

public struct SecurityRecord: Sendable, Equatable {
  public var code: Ident
  public var isin: String
  public var name: String
  public var kind: SecurityKind
  /// Opening holdings plus bonus shares credited: what the register must add up to.
  public var issuedQuantity: Int64

  public init(code: Ident, isin: String, name: String, kind: SecurityKind, issuedQuantity: Int64) {
    self.code = code
    self.isin = isin
    self.name = name
    self.kind = kind
    self.issuedQuantity = issuedQuantity
  }
}

/// A lot (SPEC §4.5). Lots of a position stay sorted by (acquired, creation, accrued).
public struct Lot: Sendable, Equatable, BitwiseCopyable {
  public var acquired: Int32
  public var creation: Int64
  /// Dividends per share accrued while held, in 0.000001 CNY.
  public var accruedMicro: Int64
  public var quantity: Int64

  @inlinable public func orderedBefore(_ other: Lot) -> Bool {
    (acquired, creation, accruedMicro) < (other.acquired, other.creation, other.accruedMicro)
  }

  @inlinable public func sameLot(_ other: Lot) -> Bool {
    acquired == other.acquired && creation == other.creation && accruedMicro == other.accruedMicro
  }

  public init(acquired: Int32, creation: Int64, accruedMicro: Int64, quantity: Int64) {
    self.acquired = acquired
    self.creation = creation
    self.accruedMicro = accruedMicro
    self.quantity = quantity
  }
}

public struct PositionRecord: Sendable, Equatable, BitwiseCopyable {
  public var account: Int32
  public var security: Int32
  public var quantity: Int64
  public var available: Int64
  public var withheld: Int64
  /// Storage a kernel may use to find the position's lots (V1: the first and last node
  /// of its list in a lot pool). Not business state: the canonical encoding carries the
  /// lots themselves, never these.
  public var firstLot: Int32 = PositionRecord.noLot
  public var lastLot: Int32 = PositionRecord.noLot
  public static let noLot: Int32 = -1

  public init(account: Int32, security: Int32, quantity: Int64, available: Int64, withheld: Int64) {
    self.account = account
    self.security = security
    self.quantity = quantity
    self.available = available
    self.withheld = withheld
  }
}

/// (trade date, participant, security) → sums (SPEC §4.1).
public struct ClearingRecord: Sendable, Equatable, BitwiseCopyable {
  public var tradeDate: Int32
  public var participant: Int32
  public var security: Int32
  public var buyQuantity: Int64 = 0
  public var sellQuantity: Int64 = 0
  public var buyAmount: Int128 = 0
  public var sellAmount: Int128 = 0
  public var fees = SideFees()

  public init(
    tradeDate: Int32, participant: Int32, security: Int32, buyQuantity: Int64 = 0, sellQuantity: Int64 = 0,
    buyAmount: Int128 = 0, sellAmount: Int128 = 0, fees: SideFees = SideFees()
  ) {
    self.fees = fees
    self.tradeDate = tradeDate
    self.participant = participant
    self.security = security
    self.buyQuantity = buyQuantity
    self.sellQuantity = sellQuantity
    self.buyAmount = buyAmount
    self.sellAmount = sellAmount
  }
}

public enum SettlementStatus: UInt8, Sendable {
  case pending = 0, settled, defaulted, cured

  public var word: String {
    switch self {
    case .pending: return "PENDING"
    case .settled: return "SETTLED"
    case .defaulted: return "DEFAULTED"
    case .cured: return "CURED"
    }
  }
}

/// (trade date, participant) → net cash and status (SPEC §4.3).
public struct SettlementRecord: Sendable, Equatable {
  public var tradeDate: Int32
  public var participant: Int32
  /// Net cash in fen; positive: the participant receives.
  public var netFen: Int128 = 0
  /// Trade sides of this participant on this date that are not cancelled. The row
  /// appears in settlement.csv only while this is above zero.
  public var liveSides: Int32 = 0
  public var status: SettlementStatus = .pending
  public var settledOn: Int32 = 0

  public init(
    tradeDate: Int32, participant: Int32, netFen: Int128 = 0, liveSides: Int32 = 0,
    status: SettlementStatus = .pending, settledOn: Int32 = 0
  ) {
    self.tradeDate = tradeDate
    self.participant = participant
    self.netFen = netFen
    self.liveSides = liveSides
    self.status = status
    self.settledOn = settledOn
  }
}

public struct TradeRecord: Sendable, Equatable {
  public var tradeId: Ident
  public var date: Int32
  public var security: Int32
  public var quantity: Int64
  public var buyAccount: Int32
  public var sellAccount: Int32
  public var buyParticipant: Int32
  public var sellParticipant: Int32
  public var clearing: TradeClearing
  /// Dividend tax of the sale in fen (0 when none).
  public var taxFen: Int64
  public var cancelled: Bool
  /// Shares withheld from the buyer for this trade by a default (SPEC §4.3).
  public var withheld: Int64
  /// The seller's lot slices this sale consumed: `slices[sliceStart ..< sliceStart + sliceCount]`.
  public var sliceStart: Int32
  public var sliceCount: Int32

  public init(
    tradeId: Ident, date: Int32, security: Int32, quantity: Int64, buyAccount: Int32, sellAccount: Int32,
    buyParticipant: Int32, sellParticipant: Int32, clearing: TradeClearing, taxFen: Int64, cancelled: Bool,
    withheld: Int64, sliceStart: Int32, sliceCount: Int32
  ) {
    self.tradeId = tradeId
    self.date = date
    self.security = security
    self.quantity = quantity
    self.buyAccount = buyAccount
    self.sellAccount = sellAccount
    self.buyParticipant = buyParticipant
    self.sellParticipant = sellParticipant
    self.clearing = clearing
    self.taxFen = taxFen
    self.cancelled = cancelled
    self.withheld = withheld
    self.sliceStart = sliceStart
    self.sliceCount = sliceCount
  }
}

public enum ActionKind: UInt8, Sendable {
  case dividend = 0, bonus
}

public struct ActionRecord: Sendable, Equatable {
  public var security: Int32
  public var recordDate: Int32
  public var payDate: Int32
  public var kind: ActionKind
  /// DIVIDEND: amount per share in 0.000001 CNY.
  public var perShareMicro: Int64
  /// BONUS: `bonus` shares per `base` shares.
  public var base: Int64
  public var bonus: Int64
  public var executed: Bool

  public init(
    security: Int32, recordDate: Int32, payDate: Int32, kind: ActionKind, perShareMicro: Int64, base: Int64,
    bonus: Int64, executed: Bool
  ) {
    self.security = security
    self.recordDate = recordDate
    self.payDate = payDate
    self.kind = kind
    self.perShareMicro = perShareMicro
    self.base = base
    self.bonus = bonus
    self.executed = executed
  }
}

public enum EntitlementKind: UInt8, Sendable {
  case cash = 0, shares

  public var word: String { self == .cash ? "CASH" : "SHARES" }
}

public struct EntitlementRecord: Sendable, Equatable {
  public var security: Int32
  public var recordDate: Int32
  public var payDate: Int32
  public var account: Int32
  public var kind: EntitlementKind
  /// Fen for CASH, shares for SHARES.
  public var value: Int64
  /// SHARES only: credited at OPEN of the pay date.
  public var credited: Bool

  public init(
    security: Int32, recordDate: Int32, payDate: Int32, account: Int32, kind: EntitlementKind, value: Int64,
    credited: Bool
  ) {
    self.security = security
    self.recordDate = recordDate
    self.payDate = payDate
    self.account = account
    self.kind = kind
    self.value = value
    self.credited = credited
  }
}

public struct RejectionRecord: Sendable, Equatable {
  public var seq: Int64
  public var record: String
  public var ref: String
  public var reason: RejectReason

  public init(seq: Int64, record: String, ref: String, reason: RejectReason) {
    self.seq = seq
    self.record = record
    self.ref = ref
    self.reason = reason
  }
}

/// One opened trading day.
public struct DayRecord: Sendable, Equatable {
  public var date: Int32
  public var closed: Bool
  public var settled: Bool
  /// Trades and clearing/settlement rows of a day are contiguous: they are only
  /// created while that day is open.
  public var tradeStart: Int32
  public var tradeEnd: Int32

  public init(date: Int32, closed: Bool, settled: Bool, tradeStart: Int32, tradeEnd: Int32) {
    self.date = date
    self.closed = closed
    self.settled = settled
    self.tradeStart = tradeStart
    self.tradeEnd = tradeEnd
  }
}

/// Scalars of the state machine.
public struct GlobalRecord: Sendable, Equatable {
  public var dayOpen: Bool = false
  /// The last opened trading day, 0 before the first OPEN.
  public var lastOpened: Int32 = 0
  /// The next lot creation number (SPEC §4.5).
  public var nextLotCreation: Int64 = 1
  /// The last sequence number applied.
  public var appliedSeq: Int64 = 0

  public init(dayOpen: Bool = false, lastOpened: Int32 = 0, nextLotCreation: Int64 = 1, appliedSeq: Int64 = 0)
  {
    self.dayOpen = dayOpen
    self.lastOpened = lastOpened
    self.nextLotCreation = nextLotCreation
    self.appliedSeq = appliedSeq
  }
}
