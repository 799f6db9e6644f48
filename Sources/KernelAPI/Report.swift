// The seven outputs of SPEC §5 as sorted rows. Sorting is by identifier bytes
// (Ident) and happens here, once, from tables: never from Dictionary order.

public struct Report: Sendable, Equatable {
  public struct Clearing: Sendable, Equatable {
    public var tradeDate: Int32, settleDate: Int32, participant: String, security: String
    public var buyQuantity: Int64, sellQuantity: Int64, buyAmount: Int128, sellAmount: Int128
    public var fees: SideFees

    public init(
      tradeDate: Int32, settleDate: Int32, participant: String, security: String, buyQuantity: Int64,
      sellQuantity: Int64, buyAmount: Int128, sellAmount: Int128, fees: SideFees
    ) {
      self.tradeDate = tradeDate
      self.settleDate = settleDate
      self.participant = participant
      self.security = security
      self.buyQuantity = buyQuantity
      self.sellQuantity = sellQuantity
      self.buyAmount = buyAmount
      self.sellAmount = sellAmount
      self.fees = fees
    }
  }
  public struct Settlement: Sendable, Equatable {
    public var tradeDate: Int32, settleDate: Int32, participant: String, netFen: Int128
    public var status: SettlementStatus, settledOn: Int32

    public init(
      tradeDate: Int32, settleDate: Int32, participant: String, netFen: Int128, status: SettlementStatus,
      settledOn: Int32
    ) {
      self.tradeDate = tradeDate
      self.settleDate = settleDate
      self.participant = participant
      self.netFen = netFen
      self.status = status
      self.settledOn = settledOn
    }
  }
  public struct Balance: Sendable, Equatable {
    public var participant: String, balanceFen: Int128

    public init(participant: String, balanceFen: Int128) {
      self.participant = participant
      self.balanceFen = balanceFen
    }
  }
  public struct Holding: Sendable, Equatable {
    public var account: String, security: String, quantity: Int64, available: Int64, withheld: Int64

    public init(account: String, security: String, quantity: Int64, available: Int64, withheld: Int64) {
      self.account = account
      self.security = security
      self.quantity = quantity
      self.available = available
      self.withheld = withheld
    }
  }
  public struct Entitlement: Sendable, Equatable {
    public var security: String, recordDate: Int32, payDate: Int32, account: String
    public var kind: EntitlementKind, value: Int64

    public init(
      security: String, recordDate: Int32, payDate: Int32, account: String, kind: EntitlementKind,
      value: Int64
    ) {
      self.security = security
      self.recordDate = recordDate
      self.payDate = payDate
      self.account = account
      self.kind = kind
      self.value = value
    }
  }
  public struct Tax: Sendable, Equatable {
    public var tradeDate: Int32, tradeId: String, account: String, security: String
    public var quantity: Int64, taxFen: Int64

    public init(
      tradeDate: Int32, tradeId: String, account: String, security: String, quantity: Int64, taxFen: Int64
    ) {
      self.tradeDate = tradeDate
      self.tradeId = tradeId
      self.account = account
      self.security = security
      self.quantity = quantity
      self.taxFen = taxFen
    }
  }
  public struct Rejection: Sendable, Equatable {
    public var seq: Int64, record: String, ref: String, reason: RejectReason

    public init(seq: Int64, record: String, ref: String, reason: RejectReason) {
      self.seq = seq
      self.record = record
      self.ref = ref
      self.reason = reason
    }
  }

  public var clearing: [Clearing] = []
  public var settlement: [Settlement] = []
  public var balances: [Balance] = []
  public var holdings: [Holding] = []
  public var entitlements: [Entitlement] = []
  public var tax: [Tax] = []
  public var rejections: [Rejection] = []

  public init(
    clearing: [Clearing] = [], settlement: [Settlement] = [], balances: [Balance] = [],
    holdings: [Holding] = [], entitlements: [Entitlement] = [], tax: [Tax] = [], rejections: [Rejection] = []
  ) {
    self.clearing = clearing
    self.settlement = settlement
    self.balances = balances
    self.holdings = holdings
    self.entitlements = entitlements
    self.tax = tax
    self.rejections = rejections
  }
}
