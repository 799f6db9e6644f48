// The reference folder of SPEC §2, already parsed and validated (TallyFormat).

public struct ReferenceData: Sendable, Equatable {
  public struct SecurityRow: Sendable, Equatable {
    public var code: String, isin: String, name: String, kind: SecurityKind
    public init(code: String, isin: String, name: String, kind: SecurityKind) {
      self.code = code
      self.isin = isin
      self.name = name
      self.kind = kind
    }
  }
  /// One opening lot; `account` and `security` index `accounts` and `securities`
  /// (millions of lines: no identifier text is kept per line).
  public struct HoldingRow: Sendable, Equatable {
    public var account: Int32, security: Int32, quantity: Int64, acquiredDate: Int32
    public init(account: Int32, security: Int32, quantity: Int64, acquiredDate: Int32) {
      self.account = account
      self.security = security
      self.quantity = quantity
      self.acquiredDate = acquiredDate
    }
  }

  /// Trading days, any order as read; the state sorts them.
  public var calendar: [Int32]
  /// Edited after it was made (tests do), the list's lookup is built again: a kernel
  /// adopts the lookups as row ids, and a stale one named other rows (an edit that kept
  /// the count went unnoticed).
  public var securities: [SecurityRow] {
    didSet { securityLookup = Self.lookup(securities.map(\.code)) }
  }
  public var participants: [(id: String, name: String)]
  public var units: [(id: String, participant: String)]
  public var accounts: [(id: String, kind: AccountKind)] {
    didSet { accountLookup = Self.lookup(accounts.map(\.id)) }
  }
  /// Opening lots in file order (their order gives creation numbers).
  public var holdings: [HoldingRow]
  /// The fee table in force: built-in rows with the kinds of fees.csv replaced.
  public var feeRows: [FeeRateRow]
  /// Account and security identifier → index, as built while validating (the state
  /// adopts them instead of hashing a million identifiers again).
  public var accountLookup: FastIndex<Ident>
  public var securityLookup: FastIndex<Ident>

  public init(
    calendar: [Int32], securities: [SecurityRow], participants: [(id: String, name: String)],
    units: [(id: String, participant: String)], accounts: [(id: String, kind: AccountKind)],
    holdings: [HoldingRow], feeRows: [FeeRateRow]
  ) {
    self.calendar = calendar
    self.securities = securities
    self.participants = participants
    self.units = units
    self.accounts = accounts
    self.holdings = holdings
    self.feeRows = feeRows
    accountLookup = Self.lookup(accounts.map(\.id))
    securityLookup = Self.lookup(securities.map(\.code))
  }

  /// Identifier → index in `ids`.
  static func lookup(_ ids: [String]) -> FastIndex<Ident> {
    var lookup = FastIndex<Ident>()
    lookup.reserveCapacity(ids.count)
    for (i, id) in ids.enumerated() { lookup[Ident(id)] = Int32(i) }
    return lookup
  }

  /// With the lookups already built (the parser's path).
  public init(
    calendar: [Int32], securities: [SecurityRow], participants: [(id: String, name: String)],
    units: [(id: String, participant: String)], accounts: [(id: String, kind: AccountKind)],
    holdings: [HoldingRow], feeRows: [FeeRateRow], accountLookup: FastIndex<Ident>,
    securityLookup: FastIndex<Ident>
  ) {
    precondition(accountLookup.count == accounts.count && securityLookup.count == securities.count)
    self.calendar = calendar
    self.securities = securities
    self.participants = participants
    self.units = units
    self.accounts = accounts
    self.holdings = holdings
    self.feeRows = feeRows
    self.accountLookup = accountLookup
    self.securityLookup = securityLookup
  }

  public static func == (a: ReferenceData, b: ReferenceData) -> Bool {
    a.calendar == b.calendar && a.securities == b.securities
      && a.participants.map(\.id) == b.participants.map(\.id)
      && a.participants.map(\.name) == b.participants.map(\.name)
      && a.units.map(\.id) == b.units.map(\.id) && a.units.map(\.participant) == b.units.map(\.participant)
      && a.accounts.map(\.id) == b.accounts.map(\.id) && a.accounts.map(\.kind) == b.accounts.map(\.kind)
      && a.holdings == b.holdings && a.feeRows == b.feeRows
  }

  /// SPEC §2's built-in fee table.
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

  /// The built-in rows, with every kind that `fileRows` names replaced by the file's rows.
  public static func feeTable(replacingWith fileRows: [FeeRateRow]) -> [FeeRateRow] {
    let replaced = Set(fileRows.map(\.kind))
    return builtInFeeRows.filter { !replaced.contains($0.kind) } + fileRows
  }
}
