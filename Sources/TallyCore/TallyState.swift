// The state machine of SPEC §3–§4: `apply(event, seq) -> Outcome`. Pure: no I/O,
// no clock, no randomness, no Dictionary iteration that reaches state or output.
// Dictionaries here are lookup indexes only, derived from the tables.

public struct TallyState {
  // MARK: Reference data that never changes during a run.
  public let calendar: [Int32]
  private let calendarIndex: [Int32: Int]
  public let feeRows: [FeeRateRow]
  public let kernel: any ClearingKernel

  // MARK: Business state (persisted, digested).
  public internal(set) var globals = GlobalRecord()
  public internal(set) var participants = Table<ParticipantRecord>()
  public internal(set) var units = Table<UnitRecord>()
  public internal(set) var accounts = Table<AccountRecord>()
  public internal(set) var securities = Table<SecurityRecord>()
  public internal(set) var positions = Table<PositionRecord>()
  public internal(set) var clearingRows = Table<ClearingRecord>()
  public internal(set) var settlementRows = Table<SettlementRecord>()
  public internal(set) var trades = Table<TradeRecord>()
  public internal(set) var slices = Table<Lot>()
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
  var positionByKey = FastIndex<Int64>()
  var clearingByKey: [ClearingKey: Int32] = [:]
  var settlementByKey: [Int64: Int32] = [:]
  var tradeByKey = FastIndex<TradeKey>()
  var dayByDate: [Int32: Int32] = [:]
  /// Positions of each security, in creation order (holders for corporate actions).
  var positionsOfSecurity: [[Int32]] = []
  /// Positions with shares not yet available (bought STOCK/FUND), released at OPEN.
  var awaitingAvailability: [Int32] = []
  var isAwaitingAvailability: [Bool] = []
  /// Scheduled actions not yet executed, in application order.
  var pendingActions: [Int32] = []
  /// SHARES entitlements not yet credited, in computation order.
  var uncreditedShares: [Int32] = []
  /// DEFAULTED settlement rows, sorted by (trade date, participant id bytes).
  var openDefaults: [Int32] = []

  struct ClearingKey: Hashable {
    var date: Int32
    var participant: Int32
    var security: Int32
  }

  struct TradeKey: Hashable, FastHashKey {
    var date: Int32
    var id: Ident

    var fastHash: UInt64 { mix64(id.fastHash ^ UInt64(UInt32(bitPattern: date))) }
    static var placeholder: TradeKey { TradeKey(date: 0, id: .placeholder) }
  }

  // MARK: - Start from reference data

  /// A fresh state from a validated reference folder.
  public init(reference: ReferenceData, kernel: any ClearingKernel) {
    let sortedCalendar = Array(Set(reference.calendar)).sorted()
    calendar = sortedCalendar
    var index: [Int32: Int] = [:]
    for (i, d) in sortedCalendar.enumerated() { index[d] = i }
    calendarIndex = index
    feeRows = reference.feeRows
    self.kernel = kernel
    for p in reference.participants { addParticipant(Ident(p.id), name: p.name) }
    for u in reference.units {
      guard let p = participantById[Ident(u.participant)] else {
        preconditionFailure("reference unit \(u.id) names unknown participant (not validated)")
      }
      addUnit(Ident(u.id), participant: p)
    }
    for a in reference.accounts { addAccount(Ident(a.id), kind: a.kind) }
    for s in reference.securities { addSecurity(Ident(s.code), isin: s.isin, name: s.name, kind: s.kind) }
    for h in reference.holdings {
      guard let a = accountById[Ident(h.account)], let s = securityById[Ident(h.security)] else {
        preconditionFailure("reference holding names unknown account or security (not validated)")
      }
      precondition(h.quantity > 0, "opening holding quantity must be positive")
      let p = position(account: a, security: s)
      positions[p].quantity += h.quantity
      positions[p].available += h.quantity
      insertLot(
        Lot(acquired: h.acquiredDate, creation: takeLotCreation(), accruedMicro: 0, quantity: h.quantity),
        into: p)
      securities[s].issuedQuantity += h.quantity
    }
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
    case .trade(let t): outcome = applyTrade(t)
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
      isAwaitingAvailability[Int(p)] = false
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

  mutating func applyTrade(_ t: TradeEvent) -> Outcome {
    guard globals.dayOpen else { return .rejected(.dayNotOpen) }
    guard t.date == globals.lastOpened else { return .rejected(.wrongDate) }
    let tradeKey = TradeKey(date: t.date, id: Ident(t.tradeId))
    if tradeByKey[tradeKey] != nil { return .rejected(.duplicateTrade) }
    guard let security = securityById[Ident(t.security)] else { return .rejected(.unknownSecurity) }
    guard t.priceMilli > 0 else { return .rejected(.invalidPrice) }
    guard t.quantity > 0 else { return .rejected(.invalidQuantity) }
    guard let buyAccount = accountById[Ident(t.buyAccount)],
      let sellAccount = accountById[Ident(t.sellAccount)]
    else { return .rejected(.unknownAccount) }
    guard let buyUnit = unitById[Ident(t.buyUnit)], let sellUnit = unitById[Ident(t.sellUnit)] else {
      return .rejected(.unknownUnit)
    }
    let q = t.quantity
    let sellPosition = positionByKey[Self.positionKey(sellAccount, security)]
    guard let sellPosition, positions[sellPosition].available >= q else {
      return .rejected(.insufficientHoldings)
    }

    let kind = securities[security].kind
    let c = kernel.clear(kind: kind, tradeDate: t.date, priceMilli: t.priceMilli, quantity: q)
    let buyParticipant = units[buyUnit].participant
    let sellParticipant = units[sellUnit].participant

    // Clearing (§4.1).
    let buyRow = clearingRow(date: t.date, participant: buyParticipant, security: security)
    clearingRows[buyRow].buyQuantity += q
    clearingRows[buyRow].buyAmount += Int128(c.amountFen)
    clearingRows[buyRow].fees.add(c.buyerFees)
    let sellRow = clearingRow(date: t.date, participant: sellParticipant, security: security)
    clearingRows[sellRow].sellQuantity += q
    clearingRows[sellRow].sellAmount += Int128(c.amountFen)
    clearingRows[sellRow].fees.add(c.sellerFees)
    emitClearing(buyRow)
    emitClearing(sellRow)
    let buySettlement = settlementRow(date: t.date, participant: buyParticipant)
    settlementRows[buySettlement].netFen += Int128(c.buyerNetFen)
    settlementRows[buySettlement].liveSides += 1
    let sellSettlement = settlementRow(date: t.date, participant: sellParticipant)
    settlementRows[sellSettlement].netFen += Int128(c.sellerNetFen)
    settlementRows[sellSettlement].liveSides += 1
    emitSettlement(buySettlement)
    emitSettlement(sellSettlement)

    // Transfer (§4.2) and lots (§4.5): the seller first, then the buyer.
    positions[sellPosition].quantity -= q
    positions[sellPosition].available -= q
    emitHolding(sellPosition)
    let sliceStart = Int32(slices.count)
    let taxable = accounts[sellAccount].kind == .individual && kind == .stock
    var taxUnits: Int128 = 0  // Σ quantity × accrued(µCNY) × rate(%), in 1e-8 CNY
    var remaining = q
    while remaining > 0 {
      precondition(!positions[sellPosition].lots.isEmpty, "lots do not cover the seller's quantity")
      var lot = positions[sellPosition].lots[0]
      let taken = min(remaining, lot.quantity)
      if taken == lot.quantity {
        positions[sellPosition].lots.removeFirst()
      } else {
        positions[sellPosition].lots[0].quantity -= taken
      }
      lot.quantity = taken
      slices.append(lot)
      remaining -= taken
      if taxable && lot.accruedMicro > 0 {
        let held = CalendarDate.daysBetween(lot.acquired, t.date)
        let percent: Int128 = held <= 30 ? 20 : (held <= 365 ? 10 : 0)
        taxUnits += Int128(taken) * Int128(lot.accruedMicro) * percent
      }
    }
    let taxFen = exactInt64(roundHalfUpDivide(taxUnits, by: 1_000_000), "tax")

    let buyPosition = position(account: buyAccount, security: security)
    positions[buyPosition].quantity += q
    positions[buyPosition].available += c.buyerAvailableNow
    if c.buyerAvailableNow < q { markAwaitingAvailability(buyPosition) }
    emitHolding(buyPosition)
    insertLot(
      Lot(acquired: t.date, creation: takeLotCreation(), accruedMicro: 0, quantity: q), into: buyPosition)

    let tradeIndex = trades.append(
      TradeRecord(
        tradeId: tradeKey.id, date: t.date, security: security, quantity: q, buyAccount: buyAccount,
        sellAccount: sellAccount, buyParticipant: buyParticipant, sellParticipant: sellParticipant,
        clearing: c,
        taxFen: taxFen, cancelled: false, withheld: 0, sliceStart: sliceStart,
        sliceCount: Int32(slices.count) - sliceStart))
    tradeByKey[tradeKey] = tradeIndex
    emitTax(tradeIndex)
    days[Int32(days.count - 1)].tradeEnd = tradeIndex + 1
    return .applied
  }

  // MARK: CANCEL

  mutating func applyCancel(date: Int32, tradeId: Ident) -> Outcome {
    guard let ti = tradeByKey[TradeKey(date: date, id: tradeId)] else { return .rejected(.unknownTrade) }
    let t = trades[ti]
    if t.cancelled { return .rejected(.alreadyCancelled) }
    if let settleDate = nextTradingDay(after: t.date), let d = dayByDate[settleDate], days[d].settled {
      return .rejected(.alreadySettled)
    }
    let buyPosition = positionByKey[Self.positionKey(t.buyAccount, t.security)]!
    let q = t.quantity
    if positions[buyPosition].quantity - positions[buyPosition].withheld < q {
      return .rejected(.cannotReverse)
    }
    let c = t.clearing
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
    let sellPosition = positionByKey[Self.positionKey(t.sellAccount, t.security)]!
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
    var remaining = q
    while remaining > 0 {
      precondition(!positions[buyPosition].lots.isEmpty, "lots do not cover the buyer's quantity")
      let last = positions[buyPosition].lots.count - 1
      let taken = min(remaining, positions[buyPosition].lots[last].quantity)
      if taken == positions[buyPosition].lots[last].quantity {
        positions[buyPosition].lots.removeLast()
      } else {
        positions[buyPosition].lots[last].quantity -= taken
      }
      remaining -= taken
    }
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
    var holders = positionsOfSecurity[Int(action.security)].filter { positions[$0].quantity > 0 }
    holders.sort { accounts[positions[$0].account].id < accounts[positions[$1].account].id }
    switch action.kind {
    case .dividend:
      for p in holders {
        let value = exactInt64(
          roundHalfUpDivide(Int128(positions[p].quantity) * Int128(action.perShareMicro), by: 10_000),
          "dividend")
        if value > 0 {
          entitlements.append(
            EntitlementRecord(
              security: action.security, recordDate: action.recordDate, payDate: action.payDate,
              account: positions[p].account, kind: .cash, value: value, credited: false))
          emitEntitlement(Int32(entitlements.count - 1))
        }
        for l in positions[p].lots.indices { positions[p].lots[l].accruedMicro += action.perShareMicro }
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
        let order = holders.indices.sorted { (remainders[$0], $1) > (remainders[$1], $0) }
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
    enforceSelfCheck(seq: seq, event: "SETTLE \(date)")
    return .applied
  }

  /// Settlement rows created on a trading day: those of its trades' dates, contiguous.
  func settlementRange(ofDay d: Int32) -> [Int32] {
    let day = days[d]
    var rows: [Int32] = []
    var seen = Set<Int32>()
    for t in day.tradeStart..<day.tradeEnd {
      for p in [trades[t].buyParticipant, trades[t].sellParticipant] where seen.insert(p).inserted {
        rows.append(settlementByKey[Self.settlementKey(day.date, p)]!)
      }
    }
    return rows.sorted()
  }

  mutating func withhold(_ row: SettlementRecord) {
    if skipsDefaultWithholding { return }  // a planted fault (PlantedFaults.swift), tests only
    let day = days[dayByDate[row.tradeDate]!]
    for t in day.tradeStart..<day.tradeEnd {
      let trade = trades[t]
      guard trade.buyParticipant == row.participant, !trade.cancelled else { continue }
      let p = positionByKey[Self.positionKey(trade.buyAccount, trade.security)]!
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
      let p = positionByKey[Self.positionKey(trade.buyAccount, trade.security)]!
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

  @inline(__always) static func positionKey(_ account: Int32, _ security: Int32) -> Int64 {
    Int64(account) << 32 | Int64(UInt32(bitPattern: security))
  }

  @inline(__always) static func settlementKey(_ date: Int32, _ participant: Int32) -> Int64 {
    Int64(date) << 32 | Int64(UInt32(bitPattern: participant))
  }

  mutating func takeLotCreation() -> Int64 {
    let n = globals.nextLotCreation
    globals.nextLotCreation += 1
    return n
  }

  mutating func position(account: Int32, security: Int32) -> Int32 {
    let key = Self.positionKey(account, security)
    if let p = positionByKey[key] { return p }
    let p = positions.append(
      PositionRecord(account: account, security: security, quantity: 0, available: 0, withheld: 0, lots: []))
    positionByKey[key] = p
    positionsOfSecurity[Int(security)].append(p)
    isAwaitingAvailability.append(false)
    return p
  }

  mutating func markAwaitingAvailability(_ p: Int32) {
    if !isAwaitingAvailability[Int(p)] {
      isAwaitingAvailability[Int(p)] = true
      awaitingAvailability.append(p)
    }
  }

  /// Inserts a lot in (acquired, creation, accrued) order, joining an identical lot.
  mutating func insertLot(_ lot: Lot, into p: Int32) {
    var i = positions[p].lots.count
    while i > 0 && lot.orderedBefore(positions[p].lots[i - 1]) { i -= 1 }
    if i > 0 && positions[p].lots[i - 1].sameLot(lot) {
      positions[p].lots[i - 1].quantity += lot.quantity
    } else {
      positions[p].lots.insert(lot, at: i)
    }
  }

  mutating func clearingRow(date: Int32, participant: Int32, security: Int32) -> Int32 {
    let key = ClearingKey(date: date, participant: participant, security: security)
    if let r = clearingByKey[key] { return r }
    let r = clearingRows.append(ClearingRecord(tradeDate: date, participant: participant, security: security))
    clearingByKey[key] = r
    return r
  }

  mutating func settlementRow(date: Int32, participant: Int32) -> Int32 {
    let key = Self.settlementKey(date, participant)
    if let r = settlementByKey[key] { return r }
    let r = settlementRows.append(SettlementRecord(tradeDate: date, participant: participant))
    settlementByKey[key] = r
    return r
  }

  mutating func addParticipant(_ id: Ident, name: String) {
    participantById[id] = participants.append(ParticipantRecord(id: id, name: name, balance: 0))
  }

  mutating func addUnit(_ id: Ident, participant: Int32) {
    unitById[id] = units.append(UnitRecord(id: id, participant: participant))
  }

  mutating func addAccount(_ id: Ident, kind: AccountKind) {
    accountById[id] = accounts.append(AccountRecord(id: id, kind: kind))
  }

  mutating func addSecurity(_ code: Ident, isin: String, name: String, kind: SecurityKind) {
    securityById[code] = securities.append(
      SecurityRecord(code: code, isin: isin, name: name, kind: kind, issuedQuantity: 0))
    positionsOfSecurity.append([])
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
