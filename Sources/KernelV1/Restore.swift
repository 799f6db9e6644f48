// Rebuilding a state from stored rows (restart after a crash, a replica's
// checkpoint). Derived indexes are recomputed here from the tables alone.

import KernelAPI

/// The business tables as stored, each in row-id order.
public struct StoredTables: Sendable {
  public var globals = GlobalRecord()
  public var participants: [ParticipantRecord] = []
  public var units: [UnitRecord] = []
  public var accounts: [AccountRecord] = []
  public var securities: [SecurityRecord] = []
  public var positions: [PositionRecord] = []
  /// The positions' lots.
  public var lotPool = LotPool()
  public var clearing: [ClearingRecord] = []
  public var settlement: [SettlementRecord] = []
  public var trades: [TradeRecord] = []
  public var slices: [Lot] = []
  public var actions: [ActionRecord] = []
  public var entitlements: [EntitlementRecord] = []
  public var rejections: [RejectionRecord] = []
  public var days: [DayRecord] = []

  public init() {}

  /// The lots of position `p`, oldest first.
  public func lots(of p: Int) -> [Lot] {
    var result: [Lot] = []
    var slot = positions[p].firstLot
    while slot != LotPool.none {
      result.append(lotPool[slot])
      slot = lotPool.next(after: slot)
    }
    return result
  }

  /// The tables of `state` as they are (arrays are shared until one side changes).
  public init(state: V1Kernel) {
    globals = state.globals
    participants = state.participants.rows
    units = state.units.rows
    accounts = state.accounts.rows
    securities = state.securities.rows
    positions = state.positions.rows
    lotPool = state.lotPool
    clearing = state.clearingRows.rows
    settlement = state.settlementRows.rows
    trades = state.trades.indices.map { state.tradeRecord($0) }
    slices = state.slices.rows
    actions = state.actions.rows
    entitlements = state.entitlements.rows
    rejections = state.rejections.rows
    days = state.days.rows
  }

  /// Row count of `table` (globals: 1).
  public func count(of table: StateTable) -> Int {
    switch table {
    case .globals: return 1
    case .participants: return participants.count
    case .units: return units.count
    case .accounts: return accounts.count
    case .securities: return securities.count
    case .positions: return positions.count
    case .clearing: return clearing.count
    case .settlement: return settlement.count
    case .trades: return trades.count
    case .slices: return slices.count
    case .actions: return actions.count
    case .entitlements: return entitlements.count
    case .rejections: return rejections.count
    case .days: return days.count
    }
  }

  /// Decodes one stored row over the table's row `id` (replacing it) or as its next row
  /// (id = count). A state folder stores only the rows changed since the opening state:
  /// this lays them over the opening state rebuilt from the reference folder.
  public mutating func overlay(_ table: StateTable, id: Int32, bytes: [UInt8]) throws(DecodeError) {
    let count = self.count(of: table)
    guard id >= 0, Int(id) <= count, table != .globals || id == 0 else {
      throw DecodeError(description: "\(table.name) row \(id) out of order (the table has \(count) rows)")
    }
    if Int(id) == count {
      try add(table, id: id, bytes: bytes)
      return
    }
    var r = ByteReader(bytes)
    func replace<R: CanonicalRow>(_ rows: inout [R]) throws(DecodeError) {
      rows[Int(id)] = try R(from: &r)
    }
    switch table {
    case .globals: globals = try GlobalRecord(from: &r)
    case .participants: try replace(&participants)
    case .units: try replace(&units)
    case .accounts: try replace(&accounts)
    case .securities: try replace(&securities)
    case .positions:
      // The opening lots go back to the pool; the stored ones take their place.
      var (first, last) = (positions[Int(id)].firstLot, positions[Int(id)].lastLot)
      while first != LotPool.none { lotPool.unlinkFirstAndFree(first: &first, last: &last) }
      positions[Int(id)] = try PositionRecord(from: &r, lots: &lotPool)
    case .clearing: try replace(&clearing)
    case .settlement: try replace(&settlement)
    case .trades: try replace(&trades)
    case .slices: try replace(&slices)
    case .actions: try replace(&actions)
    case .entitlements: try replace(&entitlements)
    case .rejections: try replace(&rejections)
    case .days: try replace(&days)
    }
    guard r.isAtEnd else { throw DecodeError(description: "\(table.name) row \(id) has trailing bytes") }
  }

  /// Decodes one stored row into its table; rows of a table must arrive in id order 0, 1, 2, ...
  public mutating func add(_ table: StateTable, id: Int32, bytes: [UInt8]) throws(DecodeError) {
    var r = ByteReader(bytes)
    func put<R: CanonicalRow>(_ rows: inout [R]) throws(DecodeError) {
      guard Int(id) == rows.count else {
        throw DecodeError(description: "\(table.name) row \(id) out of order (expected \(rows.count))")
      }
      rows.append(try R(from: &r))
    }
    switch table {
    case .globals: globals = try GlobalRecord(from: &r)
    case .participants: try put(&participants)
    case .units: try put(&units)
    case .accounts: try put(&accounts)
    case .securities: try put(&securities)
    case .positions:
      guard Int(id) == positions.count else {
        throw DecodeError(description: "positions row \(id) out of order (expected \(positions.count))")
      }
      positions.append(try PositionRecord(from: &r, lots: &lotPool))
    case .clearing: try put(&clearing)
    case .settlement: try put(&settlement)
    case .trades: try put(&trades)
    case .slices: try put(&slices)
    case .actions: try put(&actions)
    case .entitlements: try put(&entitlements)
    case .rejections: try put(&rejections)
    case .days: try put(&days)
    }
    guard r.isAtEnd else { throw DecodeError(description: "\(table.name) row \(id) has trailing bytes") }
  }
}

extension V1Kernel {
  /// A state rebuilt from stored tables; nothing is dirty afterwards.
  public init(restoring stored: StoredTables, reference: ReferenceData, plantedFault: PlantedFault?) {
    self.init(
      reference: ReferenceData(
        calendar: reference.calendar, securities: [], participants: [], units: [], accounts: [], holdings: [],
        feeRows: reference.feeRows), plantedFault: plantedFault)
    globals = stored.globals
    globalsDirty = false
    participants = Table(loaded: stored.participants)
    units = Table(loaded: stored.units)
    accounts = Table(loaded: stored.accounts)
    securities = Table(loaded: stored.securities)
    positions = Table(loaded: stored.positions)
    lotPool = stored.lotPool
    clearingRows = Table(loaded: stored.clearing)
    settlementRows = Table(loaded: stored.settlement)
    var clearings: [TradeClearing] = []
    clearings.reserveCapacity(stored.trades.count)
    var ids = TradeIdBytes()
    trades = Table(
      loaded: stored.trades.map { Self.tradeRow(restoring: $0, clearings: &clearings, ids: &ids) })
    tradeIds = ids
    restoredTradeClearing = clearings
    slices = Table(loaded: stored.slices)
    actions = Table(loaded: stored.actions)
    entitlements = Table(loaded: stored.entitlements)
    rejections = Table(loaded: stored.rejections)
    days = Table(loaded: stored.days)
    rebuildIndexes()
  }

  mutating func rebuildIndexes() {
    participantById = [:]
    for i in participants.indices { participantById[participants.rows[i].id] = Int32(i) }
    unitById = [:]
    for i in units.indices { unitById[units.rows[i].id] = Int32(i) }
    accountById = [:]
    accountById.reserveCapacity(accounts.count)
    positionDirectory = PositionDirectory()
    positionDirectory.reserveAccounts(accounts.count)
    individualAccounts = RowBits()
    for i in accounts.indices {
      individualAccounts.append(accounts.rows[i].kind == .individual)
      accountById[accounts.rows[i].id] = Int32(i)
    }
    positionDirectory.addAccounts(accounts.count)
    securityById = [:]
    for i in securities.indices { securityById[securities.rows[i].code] = Int32(i) }
    tradeGroupMemo = TradeGroupMemo()
    positionsOfSecurity = [[Int32]](repeating: [], count: securities.count)
    positionsOfSecurityCount = [Int](repeating: 0, count: securities.count)
    positionSecurities = positions.rows.map { $0.security }
    awaitingAvailability = []
    isAwaitingAvailability = RowBits(clearCount: positions.count)
    for i in positions.indices {
      let p = positions.rows[i]
      positionDirectory.insert(account: p.account, security: p.security, position: Int32(i))
      if p.quantity != p.available + p.withheld {
        isAwaitingAvailability[Int32(i)] = true
        awaitingAvailability.append(Int32(i))
      }
    }
    clearingByKey = [:]
    clearingByKey.reserveCapacity(clearingRows.count)
    for i in clearingRows.indices {
      let c = clearingRows.rows[i]
      clearingByKey[ClearingKey(date: c.tradeDate, participant: c.participant, security: c.security)] = Int32(
        i)
    }
    settlementByKey = [:]
    for i in settlementRows.indices {
      let s = settlementRows.rows[i]
      settlementByKey[Self.settlementKey(s.tradeDate, s.participant)] = Int32(i)
    }
    tradeByKey = TradeIndex()
    tradeByKey.reserveCapacityWhenNeeded(trades.count)
    let tradeRows = trades.rows
    let ids = tradeIds
    for i in tradeRows.indices {
      let t = tradeRows[i]
      // A later row of the same key takes the slot (as a dictionary's assignment would).
      ids.withBytes(of: t) { id in
        tradeByKey.set(
          hash: TradeIndex.hash(id: id, date: t.date), decimal: TradeIndex.decimalValue(of: id),
          date: t.date, row: Int32(i)
        ) {
          tradeRows[Int($0)].date == t.date && ids.rowHas(tradeRows[Int($0)], id: id)
        }
      }
    }
    dayByDate = [:]
    for i in days.indices { dayByDate[days.rows[i].date] = Int32(i) }
    pendingActions = actions.indices.filter { !actions.rows[$0].executed }.map { Int32($0) }
    uncreditedShares = entitlements.indices.filter {
      entitlements.rows[$0].kind == .shares && !entitlements.rows[$0].credited
    }.map { Int32($0) }
    openDefaults = settlementRows.indices.filter { settlementRows.rows[$0].status == .defaulted }.map {
      Int32($0)
    }
    openDefaults.sort {
      let a = settlementRows.rows[Int($0)]
      let b = settlementRows.rows[Int($1)]
      if a.tradeDate != b.tradeDate { return a.tradeDate < b.tradeDate }
      return participants.rows[Int(a.participant)].id < participants.rows[Int(b.participant)].id
    }
  }
}
