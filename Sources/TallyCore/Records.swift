// The rows of the state tables. Every field here is business state: it is
// persisted, digested and compared across replicas. Derived indexes live in
// TallyState and are rebuilt from these rows on load.

public struct ParticipantRecord: Sendable, Equatable {
  public var id: Ident
  public var name: String
  /// Settlement reserve in fen. Sums of money are Int128: SPEC's per-field limits
  /// allow totals beyond Int64 (e.g. 10^4 deposits of 10^13 CNY).
  public var balance: Int128
}

public struct UnitRecord: Sendable, Equatable {
  public var id: Ident
  public var participant: Int32
}

public struct AccountRecord: Sendable, Equatable {
  public var id: Ident
  public var kind: AccountKind
}

public struct SecurityRecord: Sendable, Equatable {
  public var code: Ident
  public var isin: String
  public var name: String
  public var kind: SecurityKind
  /// Opening holdings plus bonus shares credited: what the register must add up to.
  public var issuedQuantity: Int64
}

/// A lot (SPEC §4.5). Lots of a position stay sorted by (acquired, creation, accrued).
public struct Lot: Sendable, Equatable {
  public var acquired: Int32
  public var creation: Int64
  /// Dividends per share accrued while held, in 0.000001 CNY.
  public var accruedMicro: Int64
  public var quantity: Int64

  @inlinable func orderedBefore(_ other: Lot) -> Bool {
    (acquired, creation, accruedMicro) < (other.acquired, other.creation, other.accruedMicro)
  }

  @inlinable func sameLot(_ other: Lot) -> Bool {
    acquired == other.acquired && creation == other.creation && accruedMicro == other.accruedMicro
  }
}

public struct PositionRecord: Sendable, Equatable {
  public var account: Int32
  public var security: Int32
  public var quantity: Int64
  public var available: Int64
  public var withheld: Int64
  /// The position's lots in the state's `LotPool`, oldest first (storage, not business
  /// state: the canonical encoding carries the lots themselves).
  public var firstLot: Int32 = LotPool.none
  public var lastLot: Int32 = LotPool.none

  public init(account: Int32, security: Int32, quantity: Int64, available: Int64, withheld: Int64) {
    self.account = account
    self.security = security
    self.quantity = quantity
    self.available = available
    self.withheld = withheld
  }
}

/// (trade date, participant, security) → sums (SPEC §4.1).
public struct ClearingRecord: Sendable, Equatable {
  public var tradeDate: Int32
  public var participant: Int32
  public var security: Int32
  public var buyQuantity: Int64 = 0
  public var sellQuantity: Int64 = 0
  public var buyAmount: Int128 = 0
  public var sellAmount: Int128 = 0
  public var fees = SideFees()
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
}

public struct RejectionRecord: Sendable, Equatable {
  public var seq: Int64
  public var record: String
  public var ref: String
  public var reason: RejectReason
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
}
