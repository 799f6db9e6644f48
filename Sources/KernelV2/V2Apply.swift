// V2Kernel: the events of SPEC §3 and the rules of §4, checks in SPEC order.

import KernelAPI

extension V2Kernel {
  public mutating func apply(_ event: Event, seq: Int64) -> Outcome {
    let outcome: Outcome
    switch event {
    case .open(let date): outcome = open(date)
    case .trade(let t): outcome = trade(t)
    case .cancel(let date, let tradeId): outcome = cancel(date: date, tradeId: tradeId)
    case .close(let date): outcome = close(date)
    case .settle(let date): outcome = settle(date)
    case .deposit(let p, let amount): outcome = deposit(p, amount)
    case .dividend(let s, let recordDate, let perShare):
      outcome = scheduleAction(s, recordDate, .dividend, perShare: perShare, base: 0, bonus: 0)
    case .bonus(let s, let recordDate, let base, let bonus):
      outcome = scheduleAction(s, recordDate, .bonus, perShare: 0, base: base, bonus: bonus)
    case .participant(let id, let name): outcome = addParticipant(id, name)
    case .unit(let id, let participant): outcome = addUnit(id, participant)
    case .account(let id, let kind): outcome = addAccount(id, kind)
    case .security(let id, let isin, let name, let kind): outcome = addSecurity(id, isin, name, kind)
    case .malformed: outcome = .rejected(.malformed)
    }
    if effectsOn, case .trade = event, outcome == .applied {
      globals.appliedSeq = seq
      writeTradeEffects(seq: seq)
      return outcome
    }
    finish(seq: seq, outcome: outcome, record: event.recordWord) { event.refText }
    return outcome
  }

  public mutating func applyTrade(_ t: TradeLine, line: UnsafeRawBufferPointer, seq: Int64) -> Outcome {
    let idBytes = UnsafeRawBufferPointer(rebasing: line[t.tradeId])
    let outcome: Outcome
    if !globals.dayOpen {
      outcome = .rejected(.dayNotOpen)
    } else if t.date != globals.lastOpened {
      outcome = .rejected(.wrongDate)
    } else {
      // The three big tables' slots are read first, their misses overlapping; the
      // lookups then run in SPEC's check order on lines already on their way. (No
      // closures here: a closure kept in a local is a heap object, four per trade.)
      let day = Int32(days.count - 1)
      let idProbe = tradeIds.probe(idBytes, day: day)
      let buyerProbe = KeyBytesTable.Probe(plain: UnsafeRawBufferPointer(rebasing: line[t.buyAccount]))
      let sellerProbe = KeyBytesTable.Probe(plain: UnsafeRawBufferPointer(rebasing: line[t.sellAccount]))
      prefetchSink &+= Int64(
        truncatingIfNeeded: accountIx.touch(buyerProbe) &+ accountIx.touch(sellerProbe))
      tradeIds.prefetch(idProbe)
      outcome = tradeChecked(
        day: day, date: t.date, priceMilli: t.priceMilli, quantity: t.quantity,
        isDuplicate: tradeIds.find(idProbe) != nil,
        security: securityIx.find(UnsafeRawBufferPointer(rebasing: line[t.security])),
        buyAccount: accountIx.find(buyerProbe), sellAccount: accountIx.find(sellerProbe),
        buyUnit: unitIx.find(UnsafeRawBufferPointer(rebasing: line[t.buyUnit])),
        sellUnit: unitIx.find(UnsafeRawBufferPointer(rebasing: line[t.sellUnit])), tradeIdProbe: idProbe)
    }
    return tradeDone(outcome, seq: seq, tradeId: idBytes)
  }

  /// A TRADE's event frame: an applied one writes its own effects.
  @inline(__always)
  mutating func tradeDone(_ outcome: Outcome, seq: Int64, tradeId: UnsafeRawBufferPointer) -> Outcome {
    if outcome == .applied {
      globals.appliedSeq = seq
      if effectsOn { writeTradeEffects(seq: seq) }
      return outcome
    }
    finish(seq: seq, outcome: outcome, record: "TRADE") { String(decoding: tradeId, as: UTF8.self) }
    return outcome
  }

  // MARK: - Event frame

  mutating func finish(seq: Int64, outcome: Outcome, record: String, ref: () -> String) {
    if case .rejected(let reason) = outcome {
      rejections.append(RejectionRecord(seq: seq, record: record, ref: ref(), reason: reason))
    }
    globals.appliedSeq = seq
    if effectsOn { writeEventEffects(seq: seq, outcome: outcome) }
  }

  // MARK: - OPEN

  mutating func open(_ date: Int32) -> Outcome {
    if globals.dayOpen { return .rejected(.dayAlreadyOpen) }
    guard isTradingDay(date), nextTradingDay(date) != 0 else { return .rejected(.badDate) }
    if globals.lastOpened != 0 && date != nextTradingDay(globals.lastOpened) { return .rejected(.badDate) }
    globals.dayOpen = true
    globals.lastOpened = date
    let count = Int32(trades.count)
    days.append(DayRecord(date: date, closed: false, settled: false, tradeStart: count, tradeEnd: count))
    dayIx.insert(Int64(date), Int32(days.count - 1))
    // Every holding becomes available except what is withheld. Each position is
    // updated on its own, so the list's order does not matter (the change marks and the
    // effect's holdings are sorted where they are used): no sort of the list (a million
    // ids after the 1M-trade day), one pass through the rows' buffer.
    let collect = tracking || effectsOn
    var released: [Int32] = []
    positions.withUnsafeMutableBufferPointer { rows in
      for id in pendingPositions {
        rows[Int(id)].pending = false
        let p = rows[Int(id)]
        let available = p.quantity - p.withheld
        if available != p.available {
          rows[Int(id)].available = available
          if collect { released.append(id) }
        }
      }
    }
    for id in released {
      mark(.positions, id)
      if effectsOn { touched.holding.append(id) }
    }
    pendingPositions.removeAll(keepingCapacity: true)
    // Bonus shares whose pay date is today, in entitlement order.
    if let credits = creditsByPayDate.removeValue(forKey: date) {
      for e in credits.sorted() {
        let ent = entitlements[Int(e)]
        let pos = positionFor(account: ent.account, security: ent.security)
        positions[Int(pos)].quantity += ent.value
        positions[Int(pos)].available += ent.value
        insertLot(pos, newLot(acquired: ent.recordDate, quantity: ent.value))
        securities[Int(ent.security)].issuedQuantity += ent.value
        entitlements[Int(e)].credited = true
        mark(.positions, pos)
        mark(.entitlements, e)
        mark(.securities, ent.security)
        if effectsOn { touched.holding.append(pos) }
      }
    }
    return .applied
  }

  // MARK: - TRADE

  mutating func trade(_ t: TradeEvent) -> Outcome {
    guard globals.dayOpen else { return .rejected(.dayNotOpen) }
    guard t.date == globals.lastOpened else { return .rejected(.wrongDate) }
    let day = Int32(days.count - 1)
    var id = t.tradeId
    return id.withUTF8 { idBytes in
      let idProbe = tradeIds.probe(UnsafeRawBufferPointer(idBytes), day: day)
      return tradeChecked(
        day: day, date: t.date, priceMilli: t.priceMilli, quantity: t.quantity,
        isDuplicate: tradeIds.find(idProbe) != nil, security: securityIx.find(t.security),
        buyAccount: accountIx.find(t.buyAccount), sellAccount: accountIx.find(t.sellAccount),
        buyUnit: unitIx.find(t.buyUnit), sellUnit: unitIx.find(t.sellUnit), tradeIdProbe: idProbe)
    }
  }

  /// SPEC §3 TRADE checks in order, for an open day's trade of that day (the caller
  /// checked both); the lookups (pure reads) are done by the caller.
  @inline(__always)
  mutating func tradeChecked(
    day: Int32, date: Int32, priceMilli: Int64, quantity: Int64, isDuplicate: Bool, security: Int32?,
    buyAccount: Int32?, sellAccount: Int32?, buyUnit: Int32?, sellUnit: Int32?, sellPosition: Int32 = -1,
    buyPosition: Int32 = -1, buyClearing: Int32 = -1, sellClearing: Int32 = -1, slotsPrefetched: Bool = false,
    buyEmptySlot: Int = -1, buySlotCount: Int = -1,
    tradeIdProbe: TradeIdIndex.Probe, clearingDelta: UnsafeMutablePointer<V2ClearingDelta>? = nil
  ) -> Outcome {
    if isDuplicate { return .rejected(.duplicateTrade) }
    guard let sec = security else { return .rejected(.unknownSecurity) }
    guard priceMilli > 0 else { return .rejected(.invalidPrice) }
    guard quantity > 0 else { return .rejected(.invalidQuantity) }
    guard let buyer = buyAccount, let seller = sellAccount else {
      return .rejected(.unknownAccount)
    }
    // Both positions' slots and the seller's account kind, misses issued together.
    let sellKey = Self.positionKey(seller, sec)
    let buyKey = Self.positionKey(buyer, sec)
    // (A position id passed in is the one these keys map to: positions are never
    // removed or re-keyed; -1 means not known, looked up here.)
    // (Not when a look-ahead prefetched both slots already.)
    prefetchSink &+= Int64(accountKind[Int(seller)])
    if sellPosition < 0 && !slotsPrefetched { prefetchSink &+= positionIx.touch(sellKey) }
    if buyPosition < 0 && !slotsPrefetched { prefetchSink &+= positionIx.touch(buyKey) }
    guard let bu = buyUnit, let su = sellUnit else { return .rejected(.unknownUnit) }
    let sellFound = sellPosition >= 0 ? sellPosition : positionIx[sellKey]
    // A buyer without the position (the usual purchase): its slot is kept for the insert.
    // (A look-ahead that found none gives where its lookup ended: still empty, the
    // position is still absent and its insert goes there, with no probe again.)
    let buyLookup: (id: Int32?, emptySlot: Int)
    if buyPosition >= 0 {
      buyLookup = (buyPosition, -1)
    } else if buyEmptySlot >= 0 && positionIx.isEmpty(slot: buyEmptySlot, slotCount: buySlotCount) {
      buyLookup = (nil, buyEmptySlot)
    } else {
      buyLookup = positionIx.lookup(buyKey)
    }
    let buyFound = buyLookup.id
    if let b = buyFound { prefetchSink &+= positions[Int(b)].quantity }
    guard let sellPos = sellFound, positions[Int(sellPos)].available >= quantity
    else { return .rejected(.insufficientHoldings) }
    // The seller's oldest lot and the buyer's newest: read now, used after the fees.
    prefetchSink &+= pool.lots[Int(positions[Int(sellPos)].lotHead)].quantity
    if let b = buyFound, positions[Int(b)].lotEnd > positions[Int(b)].lotHead {
      prefetchSink &+= pool.lots[Int(positions[Int(b)].lotEnd) - 1].quantity
    }
    executeTrade(
      day: day, date: date, priceMilli: priceMilli, quantity: quantity, security: sec, buyer: buyer,
      buyFound: buyFound, seller: seller, sellPos: sellPos, buyParticipant: units[Int(bu)].participant,
      sellParticipant: units[Int(su)].participant, buyClearing: buyClearing, sellClearing: sellClearing,
      buyEmptySlot: buyLookup.emptySlot, tradeIdProbe: tradeIdProbe, clearingDelta: clearingDelta)
    return .applied
  }

  mutating func executeTrade(
    day: Int32, date: Int32, priceMilli: Int64, quantity: Int64, security sec: Int32, buyer: Int32,
    buyFound: Int32?, seller: Int32, sellPos: Int32, buyParticipant bp: Int32, sellParticipant sp: Int32,
    buyClearing: Int32 = -1, sellClearing: Int32 = -1, buyEmptySlot: Int = -1,
    tradeIdProbe: TradeIdIndex.Probe, clearingDelta: UnsafeMutablePointer<V2ClearingDelta>? = nil
  ) {
    let kind = securityKind[Int(sec)]
    let immediate = kind == .bond || plantedFault == .transfer
    let availableNow = immediate ? quantity : 0
    if date != feeDate {
      feeRates = fees.dayRates(on: date)
      feeDate = date
    }
    let tc = feeRates.withUnsafeBufferPointer {
      V2FeeSchedule.clear(
        kind: kind, amountFen: V2FeeSchedule.amountFen(priceMilli: priceMilli, quantity: quantity), rates: $0,
        truncateHandling: plantedFault == .feeRounding, availableNow: availableNow)
    }
    prepareToday(day)
    let tradeNo = Int32(trades.count)

    // Transfer: the seller first (its lots, then its counts, in one access of the rows).
    let sliceStart = Int32(slices.count)
    consumeOldest(sellPos, quantity)
    let sliceCount = Int32(slices.count) - sliceStart
    var taxFen: Int64 = 0
    if kind == .stock && accountKind[Int(seller)] == AccountKind.individual.rawValue {
      taxFen = dividendTax(slices: Int(sliceStart)..<Int(sliceStart + sliceCount), saleDate: date)
    }
    mark(.positions, sellPos)
    let buyPos: Int32
    if let found = buyFound {
      buyPos = found
      positions.withUnsafeMutableBufferPointer { rows in
        rows[Int(buyPos)].quantity += quantity
        rows[Int(buyPos)].available += availableNow
      }
      if !immediate { markPending(buyPos) }
      insertLot(buyPos, newLot(acquired: date, quantity: quantity))
    } else {
      // The usual purchase: the buyer's first position of the security, made whole (its
      // counts, its one-lot segment, its pending mark) and appended once. The same row,
      // lot, segment and pending list as `newPosition`, the counts, `markPending` and
      // `insertLot` one after another, which accessed the rows four times and the pool
      // twice, each access a uniqueness check (a runtime call). With the seller's counts
      // written in `consumeOldest`'s access of its row: 5 runtime calls fewer a trade,
      // engine only 2.445 -> 2.611M trades/s (medians of 18 runs, 6 alternated rounds).
      // (No positionIx insert between the buyer's lookup in `tradeChecked` and this one.)
      let lot = newLot(acquired: date, quantity: quantity)
      var row = V2Position(account: buyer, security: sec)
      row.quantity = quantity
      row.available = availableNow
      let base = pool.allocateOne(lot)
      row.lotBase = base
      row.lotHead = base
      row.lotEnd = base + 1
      row.lotLog = 0
      row.pending = !immediate
      buyPos = Int32(positions.count)
      positions.append(row)
      positionIx.insert(Self.positionKey(buyer, sec), buyPos, at: buyEmptySlot)
      if !immediate { pendingPositions.append(buyPos) }
    }
    mark(.positions, buyPos)

    // Clearing and settlement: the buyer's rows first.
    // (Rows found or made first; then each table's updates through one buffer access.)
    // A clearing row the look-ahead found (>= 0) is today's row of that participant and
    // security: `todayClearing` only ever fills a -1 during a day (see `prepareToday`).
    let bc =
      buyClearing >= 0 ? buyClearing : clearingRow(day: day, date: date, participant: bp, security: sec)
    let sc =
      sellClearing >= 0 ? sellClearing : clearingRow(day: day, date: date, participant: sp, security: sec)
    let bs = settlementRow(day: day, date: date, participant: bp)
    let ss = settlementRow(day: day, date: date, participant: sp)
    let delta = V2ClearingDelta(
      buyClearing: bc, sellClearing: sc, buySettlement: bs, sellSettlement: ss, quantity: quantity,
      clearing: tc)
    if let clearingDelta {
      clearingDelta.pointee = delta
    } else {
      withUnsafePointer(to: delta) { applyClearingDeltas(UnsafeBufferPointer(start: $0, count: 1)) }
    }
    mark(.clearing, bc)
    mark(.clearing, sc)
    mark(.settlement, bs)
    mark(.settlement, ss)

    let idWord = tradeIdWord(tradeIdProbe.key, decimal: tradeIdProbe.value)
    trades.append(
      V2Trade(
        idWord: idWord, amountFen: tc.amountFen, quantity: quantity, date: date,
        security: sec, buyAccount: buyer, sellAccount: seller, buyParticipant: bp, sellParticipant: sp,
        sliceStart: sliceStart, sliceCount: sliceCount, cancelled: false))
    if taxFen != 0 { tradeTax[tradeNo] = taxFen }
    tradeIds.insert(tradeIdProbe, id: tradeNo)
    days[Int(day)].tradeEnd = tradeNo + 1
    mark(.days, day)

    if effectsOn {
      lastTrade = TradeTouch(
        buyClearing: bc, sellClearing: sc, buySettlement: bs, sellSettlement: ss, sellPosition: sellPos,
        buyPosition: buyPos, trade: tradeNo, taxed: taxFen > 0)
    }
  }

  /// Adds applied TRADEs' figures to their clearing and settlement rows, in the order
  /// given (each table through one buffer access).
  @inline(__always)
  mutating func applyClearingDeltas(_ deltas: UnsafeBufferPointer<V2ClearingDelta>) {
    clearingRows.withUnsafeMutableBufferPointer { rows in
      for d in deltas {
        let (bc, sc, tc) = (Int(d.buyClearing), Int(d.sellClearing), d.clearing)
        rows[bc].buyQuantity += d.quantity
        rows[bc].buyAmount += Int128(tc.amountFen)
        Self.add(&rows[bc].fees, tc.buyerFees, sign: 1)
        rows[sc].sellQuantity += d.quantity
        rows[sc].sellAmount += Int128(tc.amountFen)
        Self.add(&rows[sc].fees, tc.sellerFees, sign: 1)
      }
    }
    settlementRows.withUnsafeMutableBufferPointer { rows in
      for d in deltas {
        let (bs, ss) = (Int(d.buySettlement), Int(d.sellSettlement))
        rows[bs].netFen += Int128(d.clearing.buyerNetFen)
        rows[bs].liveSides += 1
        rows[ss].netFen += Int128(d.clearing.sellerNetFen)
        rows[ss].liveSides += 1
      }
    }
  }

  @inline(__always)
  static func add(_ into: inout SideFees, _ f: SideFees, sign: Int64) {
    into.handling += sign * f.handling
    into.regulatory += sign * f.regulatory
    into.transfer += sign * f.transfer
    into.stamp += sign * f.stamp
  }

  /// Today's clearing row of (participant, security), made when missing (`prepareToday`
  /// was called for `day`).
  @inline(__always)
  mutating func clearingRow(day: Int32, date: Int32, participant: Int32, security: Int32) -> Int32 {
    let at = todayIndex(participant: participant, security: security)
    let known = todayClearing[at]
    if known >= 0 { return known }
    let id = clearingRowByKey(day: day, date: date, participant: participant, security: security)
    todayClearing[at] = id
    return id
  }

  mutating func clearingRowByKey(day: Int32, date: Int32, participant: Int32, security: Int32) -> Int32 {
    let key = Self.clearingKey(day: day, participant: participant, security: security)
    if let id = clearingIx[key] { return id }
    let id = Int32(clearingRows.count)
    clearingRows.append(ClearingRecord(tradeDate: date, participant: participant, security: security))
    clearingIx.insert(key, id)
    return id
  }

  /// Today's settlement row of the participant, made when missing (`prepareToday` was
  /// called for `day`).
  @inline(__always)
  mutating func settlementRow(day: Int32, date: Int32, participant: Int32) -> Int32 {
    let known = todaySettlement[Int(participant)]
    if known >= 0 { return known }
    let key = Self.settlementKey(day: day, participant: participant)
    let id: Int32
    if let found = settlementIx[key] {
      id = found
    } else {
      id = Int32(settlementRows.count)
      settlementRows.append(SettlementRecord(tradeDate: date, participant: participant))
      settlementIx.insert(key, id)
    }
    todaySettlement[Int(participant)] = id
    return id
  }

  /// SPEC §4.5: Σ slice × accrued × rate, rates 20% (≤ 30 days), 10% (31..365), 0%.
  /// Sum in 1e-7 CNY (µCNY × rate tenths), one half-up division to fen at the end.
  func dividendTax(slices taken: Range<Int>, saleDate: Int32) -> Int64 {
    // No slice ever accrued (the usual day): nothing to look up.
    if sliceAccrued.isEmpty { return 0 }
    var sum: Int128 = 0
    for i in taken {
      guard let accruedMicro = sliceAccrued[Int32(i)], accruedMicro > 0 else { continue }
      let s = slices[i]
      let held = CalendarDate.daysBetween(s.acquired, saleDate)
      let tenths: Int128 = held <= 30 ? 2 : (held <= 365 ? 1 : 0)
      sum += Int128(s.quantity) * Int128(accruedMicro) * tenths
    }
    // Most sales take lots that never accrued: no 128-bit division (a library call) then.
    if sum == 0 { return 0 }
    return Int64(Self.roundHalfUp(sum, 100_000))
  }

  /// round_half_up(n / d) for n ≥ 0 (away from zero for negative n), d > 0.
  @inline(__always) static func roundHalfUp(_ n: Int128, _ d: Int128) -> Int128 {
    let m = n.magnitude
    let q = (m + UInt128(d) / 2) / UInt128(d)
    return n < 0 ? -Int128(q) : Int128(q)
  }

  // MARK: - CANCEL

  mutating func cancel(date: Int32, tradeId: String) -> Outcome {
    guard let day = dayIx[Int64(date)], let t = tradeIds.find(tradeId, day: day) else {
      return .rejected(.unknownTrade)
    }
    let tr = trades[Int(t)]
    if tr.cancelled { return .rejected(.alreadyCancelled) }
    let settleDate = nextTradingDay(tr.date)
    if let sd = dayIx[Int64(settleDate)], days[Int(sd)].settled { return .rejected(.alreadySettled) }
    guard let buyPos = positionIx[Self.positionKey(tr.buyAccount, tr.security)],
      let sellPos = positionIx[Self.positionKey(tr.sellAccount, tr.security)]
    else { preconditionFailure("V2: trade without positions") }
    let bp = positions[Int(buyPos)]
    if bp.quantity - bp.withheld < tr.quantity { return .rejected(.cannotReverse) }

    let l = tradeLinks(Int(t))
    let q = tr.quantity
    let tc = tradeClearing(Int(t))
    clearingRows[Int(l.buyClearing)].buyQuantity -= q
    clearingRows[Int(l.buyClearing)].buyAmount -= Int128(tc.amountFen)
    Self.add(&clearingRows[Int(l.buyClearing)].fees, tc.buyerFees, sign: -1)
    clearingRows[Int(l.sellClearing)].sellQuantity -= q
    clearingRows[Int(l.sellClearing)].sellAmount -= Int128(tc.amountFen)
    Self.add(&clearingRows[Int(l.sellClearing)].fees, tc.sellerFees, sign: -1)
    settlementRows[Int(l.buySettlement)].netFen -= Int128(tc.buyerNetFen)
    settlementRows[Int(l.buySettlement)].liveSides -= 1
    settlementRows[Int(l.sellSettlement)].netFen -= Int128(tc.sellerNetFen)
    settlementRows[Int(l.sellSettlement)].liveSides -= 1
    trades[Int(t)].cancelled = true

    // The seller gets its quantity and slices back.
    positions[Int(sellPos)].quantity += q
    positions[Int(sellPos)].available += q
    for i in Int(tr.sliceStart)..<Int(tr.sliceStart + tr.sliceCount) { insertLot(sellPos, sliceLot(i)) }
    // The buyer loses it: first shares not yet available, then available ones.
    let b = positions[Int(buyPos)]
    let notYet = b.quantity - b.available - b.withheld
    if notYet < q { positions[Int(buyPos)].available -= q - notYet }
    positions[Int(buyPos)].quantity -= q
    precondition(
      positions[Int(buyPos)].available >= 0
        && positions[Int(buyPos)].available + positions[Int(buyPos)].withheld
          <= positions[Int(buyPos)].quantity,
      "V2: reversal broke the buyer's quantity ≥ available + withheld ≥ 0")
    removeNewest(buyPos, q)

    mark(.clearing, l.buyClearing)
    mark(.clearing, l.sellClearing)
    mark(.settlement, l.buySettlement)
    mark(.settlement, l.sellSettlement)
    mark(.trades, t)
    mark(.positions, sellPos)
    mark(.positions, buyPos)
    if effectsOn {
      touched.clearing.append(l.buyClearing)
      touched.clearing.append(l.sellClearing)
      touched.settlement.append(l.buySettlement)
      touched.settlement.append(l.sellSettlement)
      touched.holding.append(sellPos)
      touched.holding.append(buyPos)
      if taxFen(Int(t)) > 0 { touched.taxRemoved.append(t) }
    }
    return .applied
  }

  // MARK: - CLOSE and corporate actions

  mutating func close(_ date: Int32) -> Outcome {
    guard globals.dayOpen, date == globals.lastOpened, let day = dayIx[Int64(date)] else {
      return .rejected(.badDate)
    }
    globals.dayOpen = false
    days[Int(day)].closed = true
    mark(.days, day)
    let first = Int32(entitlements.count)
    if let due = actionsByRecordDate.removeValue(forKey: date) {
      let order = due.sorted()
      listNewPositions(of: order.map { actions[Int($0)].security })
      for a in order { execute(action: a) }
    }
    if effectsOn { touched.entitlements = first..<Int32(entitlements.count) }
    return .applied
  }

  /// Holders of record: positions of the security with quantity > 0, by account bytes.
  func holders(of security: Int32) -> [Int32] {
    var list = positionsOfSecurity[Int(security)].filter { positions[Int($0)].quantity > 0 }
    // One position per account: when the account rows are in identifier order, the
    // account's row id orders them alike.
    if accountsAscending {
      list.sort { positions[Int($0)].account < positions[Int($1)].account }
    } else {
      list.sort {
        Self.identLess(
          accounts[Int(positions[Int($0)].account)].id, accounts[Int(positions[Int($1)].account)].id)
      }
    }
    return list
  }

  mutating func execute(action a: Int32) {
    let act = actions[Int(a)]
    actions[Int(a)].executed = true
    mark(.actions, a)
    listNewPositions(of: [act.security])
    let list = holders(of: act.security)
    switch act.kind {
    case .dividend:
      for pos in list {
        let q = positions[Int(pos)].quantity
        let fen = Int64(Self.roundHalfUp(Int128(q) * Int128(act.perShareMicro), 10_000))
        accrue(pos, act.perShareMicro)
        mark(.positions, pos)
        if fen > 0 { appendEntitlement(act, account: positions[Int(pos)].account, kind: .cash, value: fen) }
      }
    case .bonus:
      let base = Int128(act.base)
      let bonus = Int128(act.bonus)
      var shares: [Int128] = []
      var remainders: [Int128] = []
      shares.reserveCapacity(list.count)
      remainders.reserveCapacity(list.count)
      var total: Int128 = 0
      var given: Int128 = 0
      for pos in list {
        let x = Int128(positions[Int(pos)].quantity) * bonus
        total += x
        shares.append(x / base)
        remainders.append(x % base)
        given += x / base
      }
      var leftover = Int(total / base - given)
      if leftover > 0 {
        // Largest remainder first; ties to the smaller account (list order), or the
        // greater under the planted fault.
        let towardGreatest = plantedFault == .corporateAction
        var order = Array(0..<list.count)
        order.sort { i, j in
          if remainders[i] != remainders[j] { return remainders[i] > remainders[j] }
          return towardGreatest ? i > j : i < j
        }
        for i in order where leftover > 0 {
          shares[i] += 1
          leftover -= 1
        }
      }
      for (i, pos) in list.enumerated() where shares[i] > 0 {
        appendEntitlement(act, account: positions[Int(pos)].account, kind: .shares, value: Int64(shares[i]))
      }
    }
  }

  mutating func appendEntitlement(_ act: ActionRecord, account: Int32, kind: EntitlementKind, value: Int64) {
    let id = Int32(entitlements.count)
    entitlements.append(
      EntitlementRecord(
        security: act.security, recordDate: act.recordDate, payDate: act.payDate, account: account,
        kind: kind,
        value: value, credited: false))
    if kind == .shares { creditsByPayDate[act.payDate, default: []].append(id) }
  }

  mutating func scheduleAction(
    _ security: String, _ recordDate: Int32, _ kind: ActionKind, perShare: Int64, base: Int64, bonus: Int64
  ) -> Outcome {
    guard let sec = securityIx.find(security) else { return .rejected(.unknownSecurity) }
    if kind == .dividend && perShare <= 0 { return .rejected(.invalidAmount) }
    if kind == .bonus && (base <= 0 || bonus <= 0) { return .rejected(.invalidRatio) }
    let pay = nextTradingDay(recordDate)
    guard isTradingDay(recordDate), pay != 0 else { return .rejected(.badDate) }
    if globals.lastOpened != 0
      && (recordDate < globals.lastOpened || (recordDate == globals.lastOpened && !globals.dayOpen))
    {
      return .rejected(.recordDatePassed)
    }
    let id = Int32(actions.count)
    actions.append(
      ActionRecord(
        security: sec, recordDate: recordDate, payDate: pay, kind: kind, perShareMicro: perShare, base: base,
        bonus: bonus, executed: false))
    actionsByRecordDate[recordDate, default: []].append(id)
    return .applied
  }

  // MARK: - SETTLE

  mutating func settle(_ date: Int32) -> Outcome {
    guard globals.lastOpened != 0, date == globals.lastOpened, let dday = dayIx[Int64(date)],
      !days[Int(dday)].settled
    else { return .rejected(.badDate) }
    days[Int(dday)].settled = true
    mark(.days, dday)
    let tradeDate = previousTradingDay(date)
    var payers: [Int32] = []
    var tday: Int32 = -1
    if tradeDate != 0, let td = dayIx[Int64(tradeDate)] {
      tday = td
      var rows: [Int32] = []
      for (i, s) in settlementRows.enumerated() where s.tradeDate == tradeDate && s.liveSides > 0 {
        rows.append(Int32(i))
      }
      rows.sort {
        participants[Int(settlementRows[Int($0)].participant)].id
          < participants[Int(settlementRows[Int($1)].participant)].id
      }
      // 1. Receivers are credited.
      for r in rows {
        let s = settlementRows[Int(r)]
        if s.netFen >= 0 {
          credit(s.participant, s.netFen)
          settlementRows[Int(r)].status = .settled
          settlementRows[Int(r)].settledOn = date
          touchSettlement(r)
        } else {
          payers.append(r)
        }
      }
    }
    // 2. Earlier defaults, in (trade date, participant) order.
    var defaults: [Int32] = []
    for (i, s) in settlementRows.enumerated() where s.status == .defaulted { defaults.append(Int32(i)) }
    defaults.sort { a, b in
      let x = settlementRows[Int(a)]
      let y = settlementRows[Int(b)]
      if x.tradeDate != y.tradeDate { return x.tradeDate < y.tradeDate }
      return participants[Int(x.participant)].id < participants[Int(y.participant)].id
    }
    for r in defaults {
      let s = settlementRows[Int(r)]
      let owed = -s.netFen
      if participants[Int(s.participant)].balance >= owed {
        credit(s.participant, -owed)
        settlementRows[Int(r)].status = .cured
        settlementRows[Int(r)].settledOn = date
        touchSettlement(r)
        release(tradeDate: s.tradeDate, participant: s.participant)
      }
    }
    // 3. Payers of T.
    for r in payers {
      let s = settlementRows[Int(r)]
      if participants[Int(s.participant)].balance >= -s.netFen {
        credit(s.participant, s.netFen)
        settlementRows[Int(r)].status = .settled
        settlementRows[Int(r)].settledOn = date
      } else {
        settlementRows[Int(r)].status = .defaulted
        if plantedFault != .settlement { withhold(day: tday, participant: s.participant) }
      }
      touchSettlement(r)
    }
    return .applied
  }

  mutating func touchSettlement(_ r: Int32) {
    mark(.settlement, r)
    if effectsOn { touched.settlement.append(r) }
  }

  mutating func credit(_ participant: Int32, _ amount: Int128) {
    participants[Int(participant)].balance += amount
    mark(.participants, participant)
    if effectsOn { touched.balance.append(participant) }
  }

  /// A default: each live trade the participant bought on that day withholds
  /// min(quantity, available now) from the buyer.
  mutating func withhold(day: Int32, participant: Int32) {
    let d = days[Int(day)]
    for t in Int(d.tradeStart)..<Int(d.tradeEnd) {
      let tr = trades[t]
      guard tr.buyParticipant == participant, !tr.cancelled else { continue }
      guard let pos = positionIx[Self.positionKey(tr.buyAccount, tr.security)] else { continue }
      let w = min(tr.quantity, positions[Int(pos)].available)
      positions[Int(pos)].available -= w
      positions[Int(pos)].withheld += w
      setWithheld(t, w)
      mark(.trades, Int32(t))
      mark(.positions, pos)
      if effectsOn && w > 0 { touched.holding.append(pos) }
    }
  }

  /// A cure: the shares withheld for the participant's trades of that date are released.
  mutating func release(tradeDate: Int32, participant: Int32) {
    guard let day = dayIx[Int64(tradeDate)] else { return }
    let d = days[Int(day)]
    for t in Int(d.tradeStart)..<Int(d.tradeEnd) {
      let tr = trades[t]
      let held = withheld(t)
      guard tr.buyParticipant == participant, held > 0 else { continue }
      guard let pos = positionIx[Self.positionKey(tr.buyAccount, tr.security)] else { continue }
      positions[Int(pos)].available += held
      positions[Int(pos)].withheld -= held
      precondition(positions[Int(pos)].withheld >= 0, "V2: released more than was withheld")
      setWithheld(t, 0)
      mark(.trades, Int32(t))
      mark(.positions, pos)
      if effectsOn { touched.holding.append(pos) }
    }
  }

  // MARK: - DEPOSIT and reference data

  mutating func deposit(_ participant: String, _ amountFen: Int64) -> Outcome {
    guard let p = participantIx.find(participant) else { return .rejected(.unknownParticipant) }
    guard amountFen > 0 else { return .rejected(.invalidAmount) }
    credit(p, Int128(amountFen))
    return .applied
  }

  mutating func addParticipant(_ id: String, _ name: String) -> Outcome {
    if participantIx.find(id) != nil { return .rejected(.duplicateParticipant) }
    let p = Int32(participants.count)
    participants.append(ParticipantRecord(id: Ident(id), name: name, balance: 0))
    participantIx.insert(id)
    if effectsOn { touched.balance.append(p) }
    return .applied
  }

  mutating func addUnit(_ id: String, _ participant: String) -> Outcome {
    if unitIx.find(id) != nil { return .rejected(.duplicateUnit) }
    guard let p = participantIx.find(participant) else { return .rejected(.unknownParticipant) }
    unitIx.insert(id)
    units.append(UnitRecord(id: Ident(id), participant: p))
    return .applied
  }

  mutating func addAccount(_ id: String, _ kind: AccountKind) -> Outcome {
    if accountIx.find(id) != nil { return .rejected(.duplicateAccount) }
    accountIx.insert(id)
    if accountsAscending, let last = accounts.last, !Self.identLess(last.id, Ident(id)) {
      accountsAscending = false
    }
    accounts.append(AccountRecord(id: Ident(id), kind: kind))
    accountKind.append(kind.rawValue)
    return .applied
  }

  mutating func addSecurity(_ id: String, _ isin: String, _ name: String, _ kind: SecurityKind) -> Outcome {
    if securityIx.find(id) != nil { return .rejected(.duplicateSecurity) }
    securityIx.insert(id)
    securities.append(SecurityRecord(code: Ident(id), isin: isin, name: name, kind: kind, issuedQuantity: 0))
    securityKind.append(kind)
    positionsOfSecurity.append([])
    positionsListed.append(positions.count)
    return .applied
  }
}
