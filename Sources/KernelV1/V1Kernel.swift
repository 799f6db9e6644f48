// The state machine of SPEC §3–§4: `apply(event, seq) -> Outcome`. Pure: no I/O,
// no clock, no randomness, no Dictionary iteration that reaches state or output.
// Dictionaries here are lookup indexes only, derived from the tables.

import KernelAPI

public struct V1Kernel: Sendable {
  // MARK: Reference data that never changes during a run.
  public let calendar: [Int32]
  private let calendarIndex: [Int32: Int]
  public let feeRows: [FeeRateRow]
  /// Fee arithmetic (and the fee and transfer planted faults).
  public let fees: ClearingKernelV1
  /// The fee rates of the last TRADE's date (`fees.rates(on:)`), resolved once a day.
  var feeRates = ClearingKernelV1.RatesOnDate.none

  // MARK: Business state (persisted, digested).
  public internal(set) var globals = GlobalRecord()
  public internal(set) var participants = Table<ParticipantRecord>()
  public internal(set) var units = Table<UnitRecord>()
  public internal(set) var accounts = Table<AccountRecord>()
  public internal(set) var securities = Table<SecurityRecord>()
  public internal(set) var positions = Table<PositionRecord>()
  public internal(set) var clearingRows = Table<ClearingRecord>()
  public internal(set) var settlementRows = Table<SettlementRecord>()
  /// Compact rows (TradeTable.swift); `tradeRecord(_:)` gives the canonical row.
  public internal(set) var trades = Table<TradeRow>()
  /// The trade ids of `trades`' rows (TradeTable.swift).
  var tradeIds = TradeIdBytes()
  /// The clearing of each restored trade row (`TradeRow.clearingRestored`), as decoded.
  var restoredTradeClearing: [TradeClearing] = []
  public internal(set) var slices = Table<Lot>()
  /// The lots of every position (linked per position; see LotPool).
  public internal(set) var lotPool = LotPool()
  public internal(set) var actions = Table<ActionRecord>()
  public internal(set) var entitlements = Table<EntitlementRecord>()
  public internal(set) var rejections = Table<RejectionRecord>()
  public internal(set) var days = Table<DayRecord>()
  var globalsDirty = true
  /// Effect records of the events applied since the engine last took them (EffectEmission.swift).
  var effects = EffectBuffer()

  // MARK: Derived indexes (rebuilt on load, never iterated into state).
  var participantById = FastIndex<Ident>()
  var unitById = FastIndex<Ident>()
  var accountById = FastIndex<Ident>()
  var securityById = FastIndex<Ident>()
  /// Securities and units of TRADEs remembered by their bytes (`IdMemo.swift`).
  var tradeGroupMemo = TradeGroupMemo()
  var positionDirectory = PositionDirectory()
  /// Whether `accounts[a]` is an individual's account, one bit each (read on every
  /// sale of a stock: a 1M-account market fits in 125 KB, in cache, where a byte each
  /// missed it on most trades and the 24-byte account rows miss it always).
  var individualAccounts = RowBits()
  var clearingByKey = FastIndex<ClearingKey>()
  /// The open day's clearing and settlement rows, looked up directly (see `DayRows`).
  var dayRows = DayRows()
  var settlementByKey = FastIndex<Int64>()
  var tradeByKey = TradeIndex()
  var dayByDate: [Int32: Int32] = [:]
  /// Positions of each security, in creation order (holders for corporate actions):
  /// the list of security `s` is complete for the positions below
  /// `positionsOfSecurityCount[s]`, filled in only when an action on `s` reads it
  /// (`indexPositions(ofSecurities:)`). Kept up on every new position, the lists cost a
  /// scattered append per bought position for a few actions a day; filled in for every
  /// security at an action, 3.7M appends to a thousand lists for six actions (~25 ms
  /// of the 1M day's CLOSE, perf, V1's seventh round).
  var positionsOfSecurity: [[Int32]] = []
  var positionsOfSecurityCount: [Int] = []
  /// The security of every position, by position row id (`positions.rows[p].security`
  /// in a column of its own): the pass of `indexPositions` over the positions reads 4
  /// bytes a position here where it read a 40-byte row (~200 MB on the 1M-account
  /// day: ~16 ms of V1's CLOSE, perf, twenty-sixth session). Appended with each new
  /// position (a position's security never changes), rebuilt on load.
  var positionSecurities: [Int32] = []
  /// Positions with shares not yet available (bought STOCK/FUND), released at OPEN.
  var awaitingAvailability: [Int32] = []
  /// Whether a position is in `awaitingAvailability`, a bit each (`RowBits`).
  var isAwaitingAvailability = RowBits()
  /// Scheduled actions not yet executed, in application order.
  var pendingActions: [Int32] = []
  /// SHARES entitlements not yet credited, in computation order.
  var uncreditedShares: [Int32] = []
  /// DEFAULTED settlement rows, sorted by (trade date, participant id bytes).
  var openDefaults: [Int32] = []

  struct ClearingKey: Hashable, FastHashKey {
    var date: Int32
    var participant: Int32
    var security: Int32

    var fastHash: UInt64 {
      mix64(
        UInt64(UInt32(bitPattern: date)) << 32 ^ UInt64(UInt32(bitPattern: participant)) << 20
          ^ UInt64(UInt32(bitPattern: security)))
    }
    static var placeholder: ClearingKey { ClearingKey(date: 0, participant: 0, security: 0) }
  }

  // MARK: - Start from reference data

  /// A fresh state from a validated reference folder.
  public init(reference: ReferenceData, plantedFault: PlantedFault?) {
    let sortedCalendar = Array(Set(reference.calendar)).sorted()
    calendar = sortedCalendar
    var index: [Int32: Int] = [:]
    for (i, d) in sortedCalendar.enumerated() { index[d] = i }
    calendarIndex = index
    feeRows = reference.feeRows
    fees = ClearingKernelV1(feeRows: reference.feeRows, plantedFault: plantedFault)
    for p in reference.participants { addParticipant(Ident(p.id), name: p.name) }
    for u in reference.units {
      guard let p = participantById[Ident(u.participant)] else {
        preconditionFailure("reference unit \(u.id) names unknown participant (not validated)")
      }
      addUnit(Ident(u.id), participant: p)
    }
    // The opening state's large tables (~300 MB on the 1M-account day: accounts and
    // their directory lines, then positions and lots) have their room reserved first,
    // its pages mapped on another core meanwhile, from the end (this thread fills them
    // from the front, faster than the other can map them).
    accounts.reserveCapacity(reference.accounts.count)
    positionDirectory.reserveAccounts(reference.accounts.count)
    positions.reserveCapacity(reference.holdings.count)
    positionSecurities.reserveCapacity(reference.holdings.count)
    isAwaitingAvailability.reserveCapacity(reference.holdings.count)
    lotPool.reserveCapacity(reference.holdings.count + reference.holdings.count / 2)
    PageWarmer.warm(
      inTurn: [
        [accounts.unusedCapacity(), positionDirectory.unusedCapacity()].compactMap { $0 },
        [positions.unusedCapacity(), lotPool.unusedCapacity(limit: reference.holdings.count)].compactMap {
          $0
        },
      ], fromTheEnd: true)
    // Accounts and securities keep their reference order: row id = index in the files,
    // so the parser's lookups are adopted as they are.
    for a in reference.accounts {
      accounts.append(AccountRecord(id: Ident(a.id), kind: a.kind))
      individualAccounts.append(a.kind == .individual)
    }
    positionDirectory.addAccounts(reference.accounts.count)
    precondition(positionDirectory.accountCount == accounts.count, "every account has its directory line")
    accountById = reference.accountLookup
    if accountById.count != accounts.count {
      // The account list was edited after parsing: index it again.
      accountById = FastIndex()
      for i in accounts.indices { accountById[accounts.rows[i].id] = Int32(i) }
    }
    for s in reference.securities {
      securities.append(
        SecurityRecord(code: Ident(s.code), isin: s.isin, name: s.name, kind: s.kind, issuedQuantity: 0))
      positionsOfSecurity.append([])
      positionsOfSecurityCount.append(0)
    }
    securityById = reference.securityLookup
    if securityById.count != securities.count {
      securityById = FastIndex()
      for i in securities.indices { securityById[securities.rows[i].code] = Int32(i) }
    }
    precondition(accountById.count == accounts.count && securityById.count == securities.count)
    // Lines of one account and security usually follow each other: the last position
    // is tried before the index. A position's first line appends its row whole, with
    // its quantity and its one lot (as a purchase's new position does): an empty row
    // appended and then added to was read back while its store still waited for its
    // fresh line. Securities' issued quantities are summed apart and set once (all
    // positive: the sums overflow exactly when the row-by-row adds would).
    var issued = [Int64](repeating: 0, count: securities.count)
    var last: (account: Int32, security: Int32, position: Int32) = (-1, -1, -1)
    for h in reference.holdings {
      precondition(
        h.account >= 0 && Int(h.account) < accounts.count && h.security >= 0
          && Int(h.security) < securities.count,
        "reference holding names unknown account or security (not validated)")
      precondition(h.quantity > 0, "opening holding quantity must be positive")
      let lot = Lot(
        acquired: h.acquiredDate, creation: takeLotCreation(), accruedMicro: 0, quantity: h.quantity)
      issued[Int(h.security)] += h.quantity
      let held: Int32?
      if h.account == last.account && h.security == last.security {
        held = last.position
      } else {
        held = positionDirectory.find(account: h.account, security: h.security)
      }
      if let p = held {
        v1Change(&positions[p]) {
          $0.quantity += h.quantity
          $0.available += h.quantity
        }
        insertLot(lot, into: p)
        last = (h.account, h.security, p)
      } else {
        let p = newPosition(
          account: h.account, security: h.security, quantity: h.quantity, availableNow: h.quantity, lot: lot)
        last = (h.account, h.security, p)
      }
    }
    for s in issued.indices where issued[s] != 0 { securities[Int32(s)].issuedQuantity += issued[s] }
  }

  /// Trade id bytes reserved a coming event (`reserveCapacity(events:)`).
  static let tradeIdBytesReserved = 10

  /// Room for about `events` more events, most of them trades (a run that knows its
  /// input size spares the doubling copies, and the fresh pages behind them).
  public mutating func reserveCapacity(events: Int) {
    defer { PageWarmer.warm(reservedRegions(events: events), yielding: true) }
    trades.reserveCapacity(trades.count + events)
    // A day's trade ids: the generator's and the exchange's are up to ~10 digits.
    tradeIds.reserveCapacity(tradeIds.bytes.count + events * Self.tradeIdBytesReserved)
    // Slices: the 1M-trade day takes 1.254 a trade, just over the 1.25 reserved here
    // before, and the table's doubling then copied 40 MB into 80 MB of fresh pages.
    // Room not written to is address space only.
    slices.reserveCapacity(slices.count + events + events / 2)
    tradeByKey.reserveCapacityWhenNeeded(trades.count + events)
    lotPool.reserveCapacity(lotPool.liveCount + events)
    // New positions: at most one a TRADE (the buyer's). The opening reserves its own
    // holdings only, so on the cluster's day (100,000 accounts: ~400,000 opening
    // positions, ~900,000 opened by purchases) the table doubled twice inside the
    // apply loop, each time copying every row into fresh pages, with the columns kept
    // beside it (perf: 8% of V1's engine-only loop in page faults and copies,
    // thirty-first session).
    positions.reserveCapacity(positions.count + events)
    positionSecurities.reserveCapacity(positionSecurities.count + events)
    isAwaitingAvailability.reserveCapacity(isAwaitingAvailability.count + events)
  }

  /// What the day's TRADEs write first-hand: the room of the trade rows, slices, lots
  /// and (at most one a trade) new positions, ~200 MB of fresh pages on the 1M-trade
  /// day, whose zeroing by the OS was about half the apply loop's time when met there
  /// (`PageWarmer` maps them on another core meanwhile).
  func reservedRegions(events: Int) -> [MemoryRegion] {
    [
      trades.unusedCapacity(), slices.unusedCapacity(), lotPool.unusedCapacity(),
      positions.unusedCapacity(limit: events), MemoryRegion.unusedCapacity(of: tradeIds.bytes),
    ].compactMap { $0 }
  }

  /// Stops (or restarts) recording which rows changed. A run that never commits
  /// (the in-memory `tally run`) spares the bookkeeping on every row it touches.
  public mutating func setChangeTracking(_ on: Bool) {
    participants.setTracking(on)
    units.setTracking(on)
    accounts.setTracking(on)
    securities.setTracking(on)
    positions.setTracking(on)
    clearingRows.setTracking(on)
    settlementRows.setTracking(on)
    trades.setTracking(on)
    slices.setTracking(on)
    actions.setTracking(on)
    entitlements.setTracking(on)
    rejections.setTracking(on)
    days.setTracking(on)
  }

  // MARK: - Calendar

  public func isTradingDay(_ date: Int32) -> Bool { calendarIndex[date] != nil }

  public func nextTradingDay(after date: Int32) -> Int32? {
    if let i = calendarIndex[date] { return i + 1 < calendar.count ? calendar[i + 1] : nil }
    var lo = 0
    var hi = calendar.count
    while lo < hi {
      let mid = (lo + hi) / 2
      if calendar[mid] <= date { lo = mid + 1 } else { hi = mid }
    }
    return lo < calendar.count ? calendar[lo] : nil
  }

  public func previousTradingDay(before date: Int32) -> Int32? {
    var lo = 0
    var hi = calendar.count
    while lo < hi {
      let mid = (lo + hi) / 2
      if calendar[mid] < date { lo = mid + 1 } else { hi = mid }
    }
    return lo > 0 ? calendar[lo - 1] : nil
  }

  // MARK: - Apply

  /// Applies one event with its sequence number. Every event is applied or rejected;
  /// a rejection is recorded in `rejections` with the reason.
  @discardableResult
  public mutating func apply(_ event: Event, seq: Int64) -> Outcome {
    precondition(seq > globals.appliedSeq, "seq \(seq) applied out of order after \(globals.appliedSeq)")
    let outcome: Outcome
    switch event {
    case .trade(let t): return applyTrade(t, seq: seq)
    case .open(let d): outcome = applyOpen(d)
    case .cancel(let d, let id): outcome = applyCancel(date: d, tradeId: Ident(id))
    case .close(let d): outcome = applyClose(d, seq: seq)
    case .settle(let d): outcome = applySettle(d, seq: seq)
    case .deposit(let p, let amount): outcome = applyDeposit(Ident(p), amountFen: amount)
    case .dividend(let s, let record, let perShare):
      outcome = applyAction(
        security: Ident(s), recordDate: record, kind: .dividend, perShareMicro: perShare, base: 0, bonus: 0)
    case .bonus(let s, let record, let base, let bonus):
      outcome = applyAction(
        security: Ident(s), recordDate: record, kind: .bonus, perShareMicro: 0, base: base, bonus: bonus)
    case .participant(let id, let name):
      if participantById[Ident(id)] != nil {
        outcome = .rejected(.duplicateParticipant)
      } else {
        addParticipant(Ident(id), name: name)
        emitBalance(Int32(participants.count - 1))
        outcome = .applied
      }
    case .unit(let id, let participant):
      if unitById[Ident(id)] != nil {
        outcome = .rejected(.duplicateUnit)
      } else if let p = participantById[Ident(participant)] {
        addUnit(Ident(id), participant: p)
        outcome = .applied
      } else {
        outcome = .rejected(.unknownParticipant)
      }
    case .account(let id, let kind):
      if accountById[Ident(id)] != nil {
        outcome = .rejected(.duplicateAccount)
      } else {
        addAccount(Ident(id), kind: kind)
        outcome = .applied
      }
    case .security(let id, let isin, let name, let kind):
      if securityById[Ident(id)] != nil {
        outcome = .rejected(.duplicateSecurity)
      } else {
        addSecurity(Ident(id), isin: isin, name: name, kind: kind)
        outcome = .applied
      }
    case .malformed: outcome = .rejected(.malformed)
    }
    if case .rejected(let reason) = outcome {
      rejections.append(
        RejectionRecord(seq: seq, record: event.recordWord, ref: event.refText, reason: reason))
      emitRejection(Int32(rejections.count - 1))
    }
    globals.appliedSeq = seq
    globalsDirty = true
    emitEvent(seq: seq, outcome: outcome)
    return outcome
  }

  // MARK: OPEN

  mutating func applyOpen(_ date: Int32) -> Outcome {
    if globals.dayOpen { return .rejected(.dayAlreadyOpen) }
    guard isTradingDay(date), nextTradingDay(after: date) != nil else { return .rejected(.badDate) }
    if globals.lastOpened != 0 && nextTradingDay(after: globals.lastOpened) != date {
      return .rejected(.badDate)
    }
    globals.dayOpen = true
    globals.lastOpened = date
    let start = Int32(trades.count)
    let d = days.append(
      DayRecord(date: date, closed: false, settled: false, tradeStart: start, tradeEnd: start))
    dayByDate[date] = d
    // Every holding becomes available except what is withheld.
    for p in awaitingAvailability {
      let free = positions[p].quantity - positions[p].withheld
      if positions[p].available != free {
        positions[p].available = free
        emitHolding(p)
      }
      isAwaitingAvailability[p] = false
    }
    awaitingAvailability.removeAll(keepingCapacity: true)
    // Bonus shares whose pay date is today.
    var stillWaiting: [Int32] = []
    for e in uncreditedShares {
      let row = entitlements[e]
      guard row.payDate == date else {
        stillWaiting.append(e)
        continue
      }
      let p = position(account: row.account, security: row.security)
      positions[p].quantity += row.value
      positions[p].available += row.value
      insertLot(
        Lot(acquired: row.recordDate, creation: takeLotCreation(), accruedMicro: 0, quantity: row.value),
        into: p)
      securities[row.security].issuedQuantity += row.value
      entitlements[e].credited = true
      emitHolding(p)
    }
    uncreditedShares = stillWaiting
    return .applied
  }

  // MARK: TRADE

  /// A TRADE already parsed into an `Event` (tests, tools): the same checks, state
  /// changes and effects as the line path below.
  mutating func applyTrade(_ t: TradeEvent, seq: Int64) -> Outcome {
    var rows = TradeRows()
    var id = t.tradeId
    return id.withUTF8 { i in
      let idBytes = UnsafeRawBufferPointer(i)
      let tradeHash = TradeIndex.hash(id: idBytes, date: t.date)
      let tradeDecimal = TradeIndex.decimalValue(of: idBytes)
      let found = TradeLookups(
        trade: tradeRow(hash: tradeHash, decimal: tradeDecimal, date: t.date, idBytes: idBytes),
        security: securityById[Ident(t.security)],
        buyAccount: accountById[Ident(t.buyAccount)], sellAccount: accountById[Ident(t.sellAccount)],
        buyUnit: unitById[Ident(t.buyUnit)], sellUnit: unitById[Ident(t.sellUnit)])
      let outcome = applyTrade(
        date: t.date, priceMilli: t.priceMilli, quantity: t.quantity, found: found, rows: &rows,
        idBytes: idBytes, tradeHash: tradeHash, tradeDecimal: tradeDecimal)
      finishTrade(
        seq: seq, outcome: outcome, rows: rows, tradeIdText: t.tradeId,
        bytes: TradeBytes(tradeId: UnsafeRawBufferPointer(i)))
      noteTradeEnd()
      return outcome
    }
  }

  /// A TRADE straight from its line's bytes (the hot path: no String is made unless
  /// the trade is applied or rejected). `fields` holds the byte ranges of the six
  /// identifiers within `line`.
  public mutating func applyTrade(_ t: TradeLine, line: UnsafeRawBufferPointer, seq: Int64) -> Outcome {
    let outcome = applyTrade(t, line: line, seq: seq, grouped: nil)
    noteTradeEnd()
    return outcome
  }

  /// The line path, with what `prefetchGroup` found for the trade when it came in a
  /// group (`grouped`): its trade-id hash and its account and security rows, which no
  /// TRADE changes (accounts and securities are only added by their own events), so
  /// they are not looked up twice. Its trade id is looked up here: an earlier trade of
  /// the group may have taken it.
  @inline(__always)
  mutating func applyTrade(
    _ t: TradeLine, line: UnsafeRawBufferPointer, seq: Int64, grouped: GroupedTrade?
  ) -> Outcome {
    precondition(seq > globals.appliedSeq, "seq \(seq) applied out of order after \(globals.appliedSeq)")
    @inline(__always) func bytes(_ r: Range<Int>) -> UnsafeRawBufferPointer {
      UnsafeRawBufferPointer(rebasing: line[r])
    }
    let idBytes = bytes(t.tradeId)
    let date = t.date
    let tradeHash: UInt64
    let tradeDecimal: Int64
    let security: Int32?
    let buyAccount: Int32?
    let sellAccount: Int32?
    if let g = grouped {
      tradeHash = g.tradeHash
      tradeDecimal = g.tradeDecimal
      security = g.security >= 0 ? g.security : nil
      buyAccount = g.buy >= 0 ? g.buy : nil
      sellAccount = g.sell >= 0 ? g.sell : nil
    } else {
      let buyAccountBytes = bytes(t.buyAccount)
      let sellAccountBytes = bytes(t.sellAccount)
      // The three lookups in large tables (trade ids, accounts) read their first slots
      // together: their cache misses overlap.
      tradeHash = TradeIndex.hash(id: idBytes, date: date)
      tradeDecimal = TradeIndex.decimalValue(of: idBytes)
      tradeByKey.prefetch(hash: tradeHash, decimal: tradeDecimal, date: date)
      let buyProbe = accountById.probe(hash: Ident.fastHash(of: buyAccountBytes))
      let sellProbe = accountById.probe(hash: Ident.fastHash(of: sellAccountBytes))
      security = securityById.v1Find(bytes: bytes(t.security))
      buyAccount = accountById.find(buyProbe) { $0.v1HasBytes(buyAccountBytes) }
      sellAccount = accountById.find(sellProbe) { $0.v1HasBytes(sellAccountBytes) }
    }
    let found = TradeLookups(
      trade: tradeRow(hash: tradeHash, decimal: tradeDecimal, date: date, idBytes: idBytes),
      security: security,
      buyAccount: buyAccount, sellAccount: sellAccount,
      buyUnit: grouped.map { $0.buyUnit >= 0 ? $0.buyUnit : nil } ?? unitById.v1Find(bytes: bytes(t.buyUnit)),
      sellUnit: grouped.map { $0.sellUnit >= 0 ? $0.sellUnit : nil }
        ?? unitById.v1Find(bytes: bytes(t.sellUnit)),
      buyPosition: grouped.flatMap { $0.buyPosition >= 0 ? $0.buyPosition : nil },
      sellPosition: grouped.flatMap { $0.sellPosition >= 0 ? $0.sellPosition : nil })
    var rows = TradeRows()
    let outcome = applyTrade(
      date: date, priceMilli: t.priceMilli, quantity: t.quantity, found: found, rows: &rows,
      idBytes: idBytes, tradeHash: tradeHash,
      tradeDecimal: tradeDecimal)
    finishTrade(
      seq: seq, outcome: outcome, rows: rows, tradeIdText: String(decoding: idBytes, as: UTF8.self),
      bytes: TradeBytes(tradeId: idBytes))
    return outcome
  }

  /// Ends TRADE `seq` on either path: the applied seq, the rejection row when rejected,
  /// and the event's effects. An applied trade's records are written straight from the
  /// rows it changed, rows named by id (reading identifiers from the 1M-row account
  /// table missed the cache twice a trade: most of version 1's effects cost).
  /// `tradeIdText` is only read for a rejection (an autoclosure: no String is made for
  /// an applied trade).
  mutating func finishTrade(
    seq: Int64, outcome: Outcome, rows: TradeRows, tradeIdText: @autoclosure () -> String, bytes: TradeBytes
  ) {
    globals.appliedSeq = seq
    globalsDirty = true
    if case .rejected(let reason) = outcome {
      rejections.append(RejectionRecord(seq: seq, record: "TRADE", ref: tradeIdText(), reason: reason))
      emitRejection(Int32(rejections.count - 1))
      emitEvent(seq: seq, outcome: outcome)
    } else if effects.enabled {
      writeTradeEffects(seq: seq, rows: rows, bytes: bytes)
    }
  }

  /// A TRADE's trade id as UTF-8 bytes (a field of its line, or its Event's string):
  /// the one text its effect records carry (in a tax row; rows are named by id).
  struct TradeBytes {
    var tradeId: UnsafeRawBufferPointer
  }

  /// What a TRADE's identifiers name (nil: unknown). Looked up before any check:
  /// lookups change nothing, so the checks below still run in SPEC §3's order.
  struct TradeLookups {
    var trade: Int32?
    var security: Int32?
    var buyAccount: Int32?
    var sellAccount: Int32?
    var buyUnit: Int32?
    var sellUnit: Int32?
    /// The buyer's and seller's positions in the security when already found (a
    /// pipeline stage found them; positions are never removed): nil, look them up.
    var buyPosition: Int32? = nil
    var sellPosition: Int32? = nil
  }

  /// The rows an applied TRADE changed (its effects, docs/EFFECTS.md), and what the
  /// effect writer would otherwise read back from rows the apply did not touch (a row's
  /// key fields: a cache miss per row, measured).
  struct TradeRows {
    var date: Int32 = 0
    var buyParticipant: Int32 = -1
    var sellParticipant: Int32 = -1
    var quantity: Int64 = 0
    var taxFen: Int64 = 0
    var buyClearing: Int32 = -1
    var sellClearing: Int32 = -1
    var buySettlement: Int32 = -1
    var sellSettlement: Int32 = -1
    var sellPosition: Int32 = -1
    var buyPosition: Int32 = -1
    var security: Int32 = -1
    var sellAccount: Int32 = -1
  }

  /// Applies a TRADE whose identifiers are looked up; `rows` gets what it changed.
  mutating func applyTrade(
    date: Int32, priceMilli: Int64, quantity: Int64, found: TradeLookups, rows: inout TradeRows,
    idBytes: UnsafeRawBufferPointer, tradeHash: UInt64, tradeDecimal: Int64
  ) -> Outcome {
    guard globals.dayOpen else { return .rejected(.dayNotOpen) }
    guard date == globals.lastOpened else { return .rejected(.wrongDate) }
    if found.trade != nil { return .rejected(.duplicateTrade) }
    guard let security = found.security else { return .rejected(.unknownSecurity) }
    guard priceMilli > 0 else { return .rejected(.invalidPrice) }
    guard quantity > 0 else { return .rejected(.invalidQuantity) }
    guard let buyAccount = found.buyAccount, let sellAccount = found.sellAccount else {
      return .rejected(.unknownAccount)
    }
    guard let buyUnit = found.buyUnit, let sellUnit = found.sellUnit else { return .rejected(.unknownUnit) }
    let t = (date: date, priceMilli: priceMilli)
    let q = quantity
    let sellPosition =
      found.sellPosition ?? positionDirectory.find(account: sellAccount, security: security)
    guard let sellPosition, positions[sellPosition].available >= q else {
      return .rejected(.insufficientHoldings)
    }

    let kind = securities[security].kind
    if feeRates.date != t.date { feeRates = fees.rates(on: t.date) }
    let c = ClearingKernelV1.clear(kind: kind, priceMilli: t.priceMilli, quantity: q, ratesAt: &feeRates)
    if dayRows.date != t.date { resetDayRows(date: t.date) }
    let buyParticipant = units[buyUnit].participant
    let sellParticipant = units[sellUnit].participant

    // Clearing (§4.1).
    let buyRow = clearingRow(date: t.date, participant: buyParticipant, security: security)
    let sellRow = clearingRow(date: t.date, participant: sellParticipant, security: security)
    // Both sides' rows changed in one access to the table (`changeTwo`): each access is
    // a uniqueness check. The same row when one participant is on both sides.
    clearingRows.changeTwo(buyRow, sellRow) { rows in
      rows[Int(buyRow)].buyQuantity += q
      rows[Int(buyRow)].buyAmount += Int128(c.amountFen)
      rows[Int(buyRow)].fees.add(c.buyerFees)
      rows[Int(sellRow)].sellQuantity += q
      rows[Int(sellRow)].sellAmount += Int128(c.amountFen)
      rows[Int(sellRow)].fees.add(c.sellerFees)
    }
    rows.date = t.date
    rows.buyParticipant = buyParticipant
    rows.sellParticipant = sellParticipant
    rows.quantity = q
    rows.security = security
    rows.sellAccount = sellAccount
    rows.buyClearing = buyRow
    rows.sellClearing = sellRow
    let buySettlement = settlementRow(date: t.date, participant: buyParticipant)
    let sellSettlement = settlementRow(date: t.date, participant: sellParticipant)
    settlementRows.changeTwo(buySettlement, sellSettlement) { rows in
      rows[Int(buySettlement)].netFen += Int128(c.buyerNetFen)
      rows[Int(buySettlement)].liveSides += 1
      rows[Int(sellSettlement)].netFen += Int128(c.sellerNetFen)
      rows[Int(sellSettlement)].liveSides += 1
    }
    rows.buySettlement = buySettlement
    rows.sellSettlement = sellSettlement

    // Transfer (§4.2) and lots (§4.5): the seller first, then the buyer. The seller's
    // quantity and available shares go down with the lots taken (`takeOldestLots`).
    rows.sellPosition = sellPosition
    let sliceStart = Int32(slices.count)
    let taxable = kind == .stock && individualAccounts[sellAccount]
    // Σ quantity × accrued(µCNY) × rate(%) over the slices taken, in 1e-8 CNY.
    let taxUnits = takeOldestLots(of: sellPosition, quantity: q, taxDate: taxable ? t.date : nil)
    let taxFen = exactInt64(roundHalfUpDivide(taxUnits, byPowerOfTen: 6), "tax")
    rows.taxFen = taxFen

    let buyLot = Lot(acquired: t.date, creation: takeLotCreation(), accruedMicro: 0, quantity: q)
    let buyPosition: Int32
    if let held = found.buyPosition ?? positionDirectory.find(account: buyAccount, security: security) {
      buyPosition = held
      if c.buyerAvailableNow < q { markAwaitingAvailability(buyPosition) }
      insertLot(buyLot, into: buyPosition, addingQuantity: q, available: c.buyerAvailableNow)
    } else {
      // Most purchases on a large day open a position. Its row is appended whole, with
      // its quantity and its one lot: adding to the row just appended read it back
      // while its store still waited for its fresh line (no store-to-load forwarding
      // from the append's copy): ~a third of the apply's own samples (perf, V1's fifth
      // round). The same row, lot slot and flags as `newPosition` then the adds and
      // `insertLot` into an empty position.
      buyPosition = newPosition(
        account: buyAccount, security: security, quantity: q, availableNow: c.buyerAvailableNow, lot: buyLot)
    }
    rows.buyPosition = buyPosition

    let tradeIndex = trades.append(
      Self.tradeRow(
        id: tradeIds.append(idBytes), date: t.date, security: security, priceMilli: t.priceMilli, quantity: q,
        buyAccount: buyAccount, sellAccount: sellAccount, buyParticipant: buyParticipant,
        sellParticipant: sellParticipant, taxFen: taxFen, sliceStart: sliceStart,
        sliceCount: Int32(slices.count) - sliceStart))
    // `found.trade` was nil: no row of this (date, id) is in the index.
    tradeByKey.insert(hash: tradeHash, decimal: tradeDecimal, date: t.date, row: tradeIndex)
    // The open day's `tradeEnd` is brought up to the trade rows by the caller once its
    // trades are applied (`noteTradeEnd`): a batch of TRADEs writes the day's row once,
    // where each wrote it (a uniqueness check a trade); nothing reads it in between.
    return .applied
  }

  /// Brings the open day's row up to the trade rows (after TRADEs; see `applyTrade`).
  /// The trades of a day are the rows from its `tradeStart` on: TRADEs apply only on
  /// the open day, the last row of `days`.
  @inline(__always) mutating func noteTradeEnd() {
    guard let last = days.rows.last, last.tradeEnd != Int32(trades.count) else { return }
    days[Int32(days.count - 1)].tradeEnd = Int32(trades.count)
  }

  // MARK: CANCEL

  mutating func applyCancel(date: Int32, tradeId: Ident) -> Outcome {
    guard let ti = tradeRow(id: tradeId, date: date) else { return .rejected(.unknownTrade) }
    let t = trades[ti]
    if t.cancelled { return .rejected(.alreadyCancelled) }
    if let settleDate = nextTradingDay(after: t.date), let d = dayByDate[settleDate], days[d].settled {
      return .rejected(.alreadySettled)
    }
    let buyPosition = positionDirectory.find(account: t.buyAccount, security: t.security)!
    let q = t.quantity
    if positions[buyPosition].quantity - positions[buyPosition].withheld < q {
      return .rejected(.cannotReverse)
    }
    let c = clearing(of: t)
    let buyRow = clearingByKey[
      ClearingKey(date: t.date, participant: t.buyParticipant, security: t.security)]!
    clearingRows[buyRow].buyQuantity -= q
    clearingRows[buyRow].buyAmount -= Int128(c.amountFen)
    clearingRows[buyRow].fees.subtract(c.buyerFees)
    let sellRow = clearingByKey[
      ClearingKey(date: t.date, participant: t.sellParticipant, security: t.security)]!
    clearingRows[sellRow].sellQuantity -= q
    clearingRows[sellRow].sellAmount -= Int128(c.amountFen)
    clearingRows[sellRow].fees.subtract(c.sellerFees)
    emitClearing(buyRow)
    emitClearing(sellRow)
    let buySettlement = settlementByKey[Self.settlementKey(t.date, t.buyParticipant)]!
    settlementRows[buySettlement].netFen -= Int128(c.buyerNetFen)
    settlementRows[buySettlement].liveSides -= 1
    let sellSettlement = settlementByKey[Self.settlementKey(t.date, t.sellParticipant)]!
    settlementRows[sellSettlement].netFen -= Int128(c.sellerNetFen)
    settlementRows[sellSettlement].liveSides -= 1
    emitSettlement(buySettlement)
    emitSettlement(sellSettlement)

    // Seller: quantity, availability and the exact slices back.
    let sellPosition = positionDirectory.find(account: t.sellAccount, security: t.security)!
    positions[sellPosition].quantity += q
    positions[sellPosition].available += q
    for s in t.sliceStart..<(t.sliceStart + t.sliceCount) { insertLot(slices[s], into: sellPosition) }
    emitHolding(sellPosition)

    // Buyer: shares not yet available first, then available ones; lots newest first.
    let position = positions[buyPosition]
    let notYetAvailable = position.quantity - position.available - position.withheld
    let fromNotYet = min(q, notYetAvailable)
    positions[buyPosition].available -= q - fromNotYet
    positions[buyPosition].quantity -= q
    emitHolding(buyPosition)
    removeNewestLots(of: buyPosition, quantity: q)
    trades[ti].cancelled = true
    emitTax(ti)
    return .applied
  }

  // MARK: CLOSE

  mutating func applyClose(_ date: Int32, seq: Int64) -> Outcome {
    guard globals.dayOpen, date == globals.lastOpened else { return .rejected(.badDate) }
    globals.dayOpen = false
    days[dayByDate[date]!].closed = true
    var stillPending: [Int32] = []
    // The holders of every security with an action today, in one pass over the
    // positions (actions create no position).
    indexPositions(
      ofSecurities: pendingActions.filter { actions[$0].recordDate == date }.map { actions[$0].security })
    for a in pendingActions {
      if actions[a].recordDate == date {
        executeAction(a)
      } else {
        stillPending.append(a)
      }
    }
    pendingActions = stillPending
    enforceSelfCheck(seq: seq, event: "CLOSE \(date)")
    return .applied
  }

  mutating func executeAction(_ a: Int32) {
    let action = actions[a]
    indexPositions(ofSecurities: [action.security])
    let holders = holdersInAccountOrder(of: action.security)
    switch action.kind {
    case .dividend:
      for (k, p) in holders.enumerated() {
        // The next holders' first lots (the accrual walks each holder's lots).
        if k + Self.holderPrefetchDistance < holders.count {
          lotPool.prefetch(positions.rows[Int(holders[k + Self.holderPrefetchDistance])].firstLot)
        }
        let value = exactInt64(
          roundHalfUpDivide(Int128(positions[p].quantity) * Int128(action.perShareMicro), byPowerOfTen: 4),
          "dividend")
        if value > 0 {
          entitlements.append(
            EntitlementRecord(
              security: action.security, recordDate: action.recordDate, payDate: action.payDate,
              account: positions[p].account, kind: .cash, value: value, credited: false))
          emitEntitlement(Int32(entitlements.count - 1))
        }
        accrueDividend(of: p, perShareMicro: action.perShareMicro)
      }
    case .bonus:
      let bonus = Int128(action.bonus)
      let base = Int128(action.base)
      var shares: [Int128] = []
      var remainders: [Int128] = []
      var sum: Int128 = 0
      var given: Int128 = 0
      for p in holders {
        let product = Int128(positions[p].quantity) * bonus
        sum += product
        shares.append(product / base)
        remainders.append(product % base)
        given += product / base
      }
      var leftover = sum / base - given
      precondition(leftover >= 0 && leftover <= Int128(holders.count), "bonus leftover out of range")
      if leftover > 0 {
        // Largest remainder first; ties to the smaller account (holders are in account order).
        // The planted corporate-action fault (tests only) breaks ties the other way.
        let tiesToGreater = fees.plantedFault == .corporateAction
        let order = holders.indices.sorted {
          tiesToGreater
            ? (remainders[$0], $0) > (remainders[$1], $1) : (remainders[$0], $1) > (remainders[$1], $0)
        }
        for i in order where leftover > 0 {
          shares[i] += 1
          leftover -= 1
        }
      }
      for (i, p) in holders.enumerated() where shares[i] > 0 {
        entitlements.append(
          EntitlementRecord(
            security: action.security, recordDate: action.recordDate, payDate: action.payDate,
            account: positions[p].account, kind: .shares, value: exactInt64(shares[i], "bonus shares"),
            credited: false))
        uncreditedShares.append(Int32(entitlements.count - 1))
        emitEntitlement(Int32(entitlements.count - 1))
      }
    }
    actions[a].executed = true
  }

  // MARK: SETTLE

  mutating func applySettle(_ date: Int32, seq: Int64) -> Outcome {
    guard globals.lastOpened != 0, date == globals.lastOpened, let d = dayByDate[date], !days[d].settled
    else {
      return .rejected(.badDate)
    }
    days[d].settled = true
    var payers: [Int32] = []
    if let tradeDate = previousTradingDay(before: date), let td = dayByDate[tradeDate] {
      let range = settlementRange(ofDay: td)
      // 1. Receivers are credited: the CCP guarantees them whatever the payers do.
      for s in range where settlementRows[s].liveSides > 0 {
        if settlementRows[s].netFen >= 0 {
          participants[settlementRows[s].participant].balance += settlementRows[s].netFen
          settlementRows[s].status = .settled
          settlementRows[s].settledOn = date
          emitBalance(settlementRows[s].participant)
          emitSettlement(s)
        } else {
          payers.append(s)
        }
      }
    }
    // 2. Earlier defaults, in (trade date, participant) order.
    var stillDefaulted: [Int32] = []
    for s in openDefaults {
      let owed = -settlementRows[s].netFen
      let p = settlementRows[s].participant
      if participants[p].balance >= owed {
        participants[p].balance -= owed
        settlementRows[s].status = .cured
        settlementRows[s].settledOn = date
        emitBalance(p)
        emitSettlement(s)
        releaseWithholding(settlementRows[s])
      } else {
        stillDefaulted.append(s)
      }
    }
    openDefaults = stillDefaulted
    // 3. Payers in participant order: all or nothing.
    payers.sort {
      participants[settlementRows[$0].participant].id < participants[settlementRows[$1].participant].id
    }
    for s in payers {
      let owed = -settlementRows[s].netFen
      let p = settlementRows[s].participant
      if participants[p].balance >= owed {
        participants[p].balance -= owed
        settlementRows[s].status = .settled
        settlementRows[s].settledOn = date
        emitBalance(p)
        emitSettlement(s)
      } else {
        settlementRows[s].status = .defaulted
        emitSettlement(s)
        withhold(settlementRows[s])
        openDefaults.append(s)
      }
    }
    // SETTLE changes no lot: they are checked at every CLOSE (SelfCheck.swift).
    enforceSelfCheck(seq: seq, event: "SETTLE \(date)", lots: false)
    return .applied
  }

  /// Settlement rows created on a trading day, ascending: the rows of its date. Only
  /// an applied TRADE makes a settlement row, of its date (the open day) and of both its
  /// participants, so these are the rows of the participants of the day's trades (which
  /// this read from a million trade rows, with a Set and an array a trade). A few dozen
  /// rows a day: scanned.
  func settlementRange(ofDay d: Int32) -> [Int32] {
    let date = days[d].date
    var rows: [Int32] = []
    for s in settlementRows.indices where settlementRows.rows[s].tradeDate == date { rows.append(Int32(s)) }
    return rows
  }

  mutating func withhold(_ row: SettlementRecord) {
    if skipsDefaultWithholding { return }  // a planted fault (PlantedFaults.swift), tests only
    let day = days[dayByDate[row.tradeDate]!]
    for t in day.tradeStart..<day.tradeEnd {
      let trade = trades[t]
      guard trade.buyParticipant == row.participant, !trade.cancelled else { continue }
      let p = positionDirectory.find(account: trade.buyAccount, security: trade.security)!
      let amount = min(trade.quantity, positions[p].available)
      guard amount > 0 else { continue }
      positions[p].available -= amount
      positions[p].withheld += amount
      emitHolding(p)
      trades[t].withheld = amount
    }
  }

  mutating func releaseWithholding(_ row: SettlementRecord) {
    let day = days[dayByDate[row.tradeDate]!]
    for t in day.tradeStart..<day.tradeEnd {
      let trade = trades[t]
      guard trade.buyParticipant == row.participant, trade.withheld > 0 else { continue }
      let p = positionDirectory.find(account: trade.buyAccount, security: trade.security)!
      positions[p].available += trade.withheld
      positions[p].withheld -= trade.withheld
      emitHolding(p)
      trades[t].withheld = 0
    }
  }

  // MARK: DEPOSIT, DIVIDEND, BONUS

  mutating func applyDeposit(_ participant: Ident, amountFen: Int64) -> Outcome {
    guard let p = participantById[participant] else { return .rejected(.unknownParticipant) }
    guard amountFen > 0 else { return .rejected(.invalidAmount) }
    participants[p].balance += Int128(amountFen)
    emitBalance(p)
    return .applied
  }

  mutating func applyAction(
    security: Ident, recordDate: Int32, kind: ActionKind, perShareMicro: Int64, base: Int64, bonus: Int64
  ) -> Outcome {
    guard let s = securityById[security] else { return .rejected(.unknownSecurity) }
    switch kind {
    case .dividend: if perShareMicro <= 0 { return .rejected(.invalidAmount) }
    case .bonus: if base <= 0 || bonus <= 0 { return .rejected(.invalidRatio) }
    }
    guard isTradingDay(recordDate), let payDate = nextTradingDay(after: recordDate) else {
      return .rejected(.badDate)
    }
    let last = globals.lastOpened
    if last != 0 && (recordDate < last || (recordDate == last && !globals.dayOpen)) {
      return .rejected(.recordDatePassed)
    }
    let a = actions.append(
      ActionRecord(
        security: s, recordDate: recordDate, payDate: payDate, kind: kind, perShareMicro: perShareMicro,
        base: base, bonus: bonus, executed: false))
    pendingActions.append(a)
    return .applied
  }

  // MARK: - Helpers

  @inline(__always) static func settlementKey(_ date: Int32, _ participant: Int32) -> Int64 {
    Int64(date) << 32 | Int64(UInt32(bitPattern: participant))
  }

  mutating func takeLotCreation() -> Int64 {
    let n = globals.nextLotCreation
    globals.nextLotCreation += 1
    return n
  }

  mutating func position(account: Int32, security: Int32) -> Int32 {
    if let p = positionDirectory.find(account: account, security: security) { return p }
    return newPosition(account: account, security: security)
  }

  /// A new empty position; the account has none in the security.
  mutating func newPosition(account: Int32, security: Int32) -> Int32 {
    let p = positions.append(
      PositionRecord(account: account, security: security, quantity: 0, available: 0, withheld: 0))
    positionSecurities.append(security)
    positionDirectory.insert(account: account, security: security, position: p)
    isAwaitingAvailability.append(false)
    return p
  }

  /// A purchase's new position: `quantity` shares of which `availableNow` available,
  /// in the one lot `lot` (SPEC §4.2, §4.5), awaiting availability when not all are.
  mutating func newPosition(
    account: Int32, security: Int32, quantity: Int64, availableNow: Int64, lot: Lot
  ) -> Int32 {
    precondition(quantity > 0 && availableNow >= 0 && availableNow <= quantity, "a purchase's new position")
    precondition(lot.quantity == quantity, "a new position holds its one lot")
    let slot = lotPool.allocate(lot)
    var row = PositionRecord(
      account: account, security: security, quantity: quantity, available: availableNow, withheld: 0)
    row.firstLot = slot
    row.lastLot = slot
    let p = positions.append(row)
    positionSecurities.append(security)
    positionDirectory.insert(account: account, security: security, position: p)
    let awaiting = availableNow < quantity
    isAwaitingAvailability.append(awaiting)
    if awaiting { awaitingAvailability.append(p) }
    return p
  }

  /// Holders ahead of the one read whose rows are prefetched (CLOSE's actions).
  static let holderPrefetchDistance = 16

  /// Completes the lists of `positionsOfSecurity` of `wanted` (security row ids) with
  /// the positions created since each was last completed: one pass over the positions
  /// from the oldest of their counts, appending only to the wanted lists (each list
  /// ends the same as if every new position had been appended to its security's list).
  mutating func indexPositions(ofSecurities wanted: [Int32]) {
    var from = positions.count
    var isWanted = [Bool](repeating: false, count: securities.count)
    for s in wanted {
      precondition(s >= 0 && Int(s) < securities.count, "positions of an unknown security")
      isWanted[Int(s)] = true
      from = min(from, positionsOfSecurityCount[Int(s)])
    }
    guard from < positions.count else { return }
    precondition(positionSecurities.count == positions.count, "a security for every position")
    positionSecurities.withUnsafeBufferPointer { securityOf in
      for p in from..<securityOf.count {
        let s = Int(securityOf[p])
        if isWanted[s] && p >= positionsOfSecurityCount[s] { positionsOfSecurity[s].append(Int32(p)) }
      }
    }
    for s in wanted { positionsOfSecurityCount[Int(s)] = positions.count }
  }

  /// The positions of security `s` holding shares, in account id order (SPEC: holders
  /// of a corporate action). `positionsOfSecurity[s]` must be complete. Sorted by the
  /// account ids' first 16 bytes packed big-endian in two words (zero-padded: the
  /// same order as the bytes, a prefix first), the ids themselves compared only when
  /// those tie; an account holds one position of a security, so no two holders tie.
  /// Comparing the ids in the sort read two positions and two account rows at random
  /// per comparison (~15 ms of the 1M day's CLOSE, perf, V1's seventh round).
  func holdersInAccountOrder(of s: Int32) -> [Int32] {
    precondition(positionsOfSecurityCount[Int(s)] == positions.count, "holders of an indexed security")
    struct Holder {
      var high: UInt64
      var low: UInt64
      var account: Int32
      var position: Int32
    }
    // The positions (anywhere in 150 MB) and then their accounts' rows (in 24 MB) are
    // read in two passes, each prefetching `holderPrefetchDistance` rows ahead: read
    // one after another they were a miss each, ~10 ms of the 1M day's CLOSE (perf).
    let list = positionsOfSecurity[Int(s)]
    let rows = positions.rows
    var held: [(account: Int32, position: Int32)] = []
    for k in list.indices {
      if k + Self.holderPrefetchDistance < list.count {
        rows.prefetchWhole(Int(list[k + Self.holderPrefetchDistance]))
      }
      let p = list[k]
      if rows[Int(p)].quantity > 0 { held.append((rows[Int(p)].account, p)) }
    }
    var holders: [Holder] = []
    holders.reserveCapacity(held.count)
    for k in held.indices {
      if k + Self.holderPrefetchDistance < held.count {
        accounts.rows.prefetchWhole(Int(held[k + Self.holderPrefetchDistance].account))
      }
      let (high, low) = accounts.rows[Int(held[k].account)].id.v1SortPrefix
      holders.append(Holder(high: high, low: low, account: held[k].account, position: held[k].position))
    }
    holders.sort {
      if $0.high != $1.high { return $0.high < $1.high }
      if $0.low != $1.low { return $0.low < $1.low }
      return accounts.rows[Int($0.account)].id < accounts.rows[Int($1.account)].id
    }
    return holders.map { $0.position }
  }

  mutating func markAwaitingAvailability(_ p: Int32) {
    if !isAwaitingAvailability[p] {
      isAwaitingAvailability[p] = true
      awaitingAvailability.append(p)
    }
  }

  mutating func clearingRow(date: Int32, participant: Int32, security: Int32) -> Int32 {
    let cached = dayRows.clearingSlot(date: date, participant: participant, security: security)
    if let cached, dayRows.clearing[cached] >= 0 { return dayRows.clearing[cached] }
    let key = ClearingKey(date: date, participant: participant, security: security)
    let r: Int32
    if let found = clearingByKey[key] {
      r = found
    } else {
      r = clearingRows.append(ClearingRecord(tradeDate: date, participant: participant, security: security))
      clearingByKey[key] = r
    }
    if let cached { dayRows.clearing[cached] = r }
    return r
  }

  mutating func settlementRow(date: Int32, participant: Int32) -> Int32 {
    let cached = dayRows.settlementSlot(date: date, participant: participant)
    if let cached, dayRows.settlement[cached] >= 0 { return dayRows.settlement[cached] }
    let key = Self.settlementKey(date, participant)
    let r: Int32
    if let found = settlementByKey[key] {
      r = found
    } else {
      r = settlementRows.append(SettlementRecord(tradeDate: date, participant: participant))
      settlementByKey[key] = r
    }
    if let cached { dayRows.settlement[cached] = r }
    return r
  }

  /// Makes `dayRows` the direct tables of trade date `date` (a TRADE's date is the
  /// open day), empty, sized for today's participants and securities.
  mutating func resetDayRows(date: Int32) {
    dayRows = DayRows(
      date: date, settleDate: nextTradingDay(after: date) ?? -1, participants: participants.count,
      securities: securities.count)
  }

  mutating func addParticipant(_ id: Ident, name: String) {
    participantById[id] = participants.append(ParticipantRecord(id: id, name: name, balance: 0))
  }

  mutating func addUnit(_ id: Ident, participant: Int32) {
    unitById[id] = units.append(UnitRecord(id: id, participant: participant))
  }

  mutating func addAccount(_ id: Ident, kind: AccountKind) {
    let a = accounts.append(AccountRecord(id: id, kind: kind))
    accountById[id] = a
    positionDirectory.addAccount(a)
    individualAccounts.append(kind == .individual)
  }

  mutating func addSecurity(_ code: Ident, isin: String, name: String, kind: SecurityKind) {
    securityById[code] = securities.append(
      SecurityRecord(code: code, isin: isin, name: name, kind: kind, issuedQuantity: 0))
    positionsOfSecurity.append([])
    positionsOfSecurityCount.append(0)
  }
}

extension SideFees {
  @inlinable mutating func add(_ other: SideFees) {
    handling += other.handling
    regulatory += other.regulatory
    transfer += other.transfer
    stamp += other.stamp
  }

  @inlinable mutating func subtract(_ other: SideFees) {
    handling -= other.handling
    regulatory -= other.regulatory
    transfer -= other.transfer
    stamp -= other.stamp
  }
}

/// Changes `row` through `body`: the fields of a table row changed in one access
/// (`table[i]`'s `_modify`: one uniqueness check, bounds check and dirty mark where
/// each field's `table[i].field += x` made its own).
@inline(__always) func v1Change<Row>(_ row: inout Row, _ body: (inout Row) -> Void) { body(&row) }

/// One bit per row: an account's kind (SPEC §1, for the dividend tax), a position
/// awaiting availability. A bit each keeps a million-row list in cache (125 KB a
/// million rows) where a byte each (`[Bool]`, 3 MB for the 1M-account day's positions)
/// missed it on most trades.
struct RowBits: Sendable {
  private var words: [UInt64] = []
  private(set) var count = 0

  init() {}

  /// `count` bits, all clear.
  init(clearCount count: Int) {
    words = [UInt64](repeating: 0, count: (count + 63) / 64)
    self.count = count
  }

  mutating func reserveCapacity(_ n: Int) { words.reserveCapacity((n + 63) / 64) }

  mutating func append(_ bit: Bool) {
    if count & 63 == 0 { words.append(0) }
    if bit { words[count >> 6] |= 1 << UInt64(count & 63) }
    count += 1
  }

  /// Starts loading the word of bit `i`.
  @inline(__always) func prefetch(_ i: Int32) { words.prefetch(Int(i) >> 6) }

  @inline(__always) subscript(_ i: Int32) -> Bool {
    get {
      precondition(i >= 0 && Int(i) < count, "row bit out of range")
      return words[Int(i) >> 6] & (1 << UInt64(i & 63)) != 0
    }
    set {
      precondition(i >= 0 && Int(i) < count, "row bit out of range")
      let bit: UInt64 = 1 << UInt64(i & 63)
      if newValue { words[Int(i) >> 6] |= bit } else { words[Int(i) >> 6] &= ~bit }
    }
  }
}

/// A TRADE's clearing rows (trade date, participant, security) and settlement rows
/// (trade date, participant) of one trade date, by participant and security row ids:
/// two direct tables in front of `clearingByKey` and `settlementByKey` (hashing and
/// probing those four times a trade was ~3% of a 1M-trade run). Rows are never
/// removed, so a row id once found stays right. Derived: starts empty after a restore;
/// ids beyond the sizes it was made with (a participant or security added during the
/// day), and markets too large for a small table, go to the indexes.
struct DayRows: Sendable {
  /// Entries a table may have (4 MiB of row ids).
  static let entriesMax = 1 << 20

  private(set) var date: Int32 = 0
  /// The settle date of `date` (its next trading day; -1 when the calendar has none):
  /// the one settle date of the key records a TRADE's new rows carry.
  private(set) var settleDate: Int32 = -1
  private let participants: Int
  private let securities: Int
  /// -1: not looked up yet.
  var clearing: [Int32]
  var settlement: [Int32]

  init() {
    participants = 0
    securities = 0
    clearing = []
    settlement = []
  }

  init(date: Int32, settleDate: Int32, participants: Int, securities: Int) {
    self.date = date
    self.settleDate = settleDate
    let fits = participants * securities <= Self.entriesMax
    self.participants = fits ? participants : 0
    self.securities = fits ? securities : 0
    clearing = [Int32](repeating: -1, count: self.participants * self.securities)
    settlement = [Int32](repeating: -1, count: self.participants)
  }

  @inline(__always) func clearingSlot(date: Int32, participant: Int32, security: Int32) -> Int? {
    guard date == self.date, participant >= 0, Int(participant) < participants, security >= 0,
      Int(security) < securities
    else { return nil }
    return Int(participant) * securities + Int(security)
  }

  @inline(__always) func settlementSlot(date: Int32, participant: Int32) -> Int? {
    guard date == self.date, participant >= 0, Int(participant) < participants else { return nil }
    return Int(participant)
  }
}
