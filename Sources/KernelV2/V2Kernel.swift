// V2Kernel: the second, independently written business kernel (N-version voting),
// written from docs/SPEC.md, docs/CANONICAL-ROWS.md and docs/EFFECTS.md only.
//
// Techniques that differ from a typical implementation
// ----------------------------------------------------
// - Lots are kept per position in their own array (`LotBook`), oldest first, with a
//   consumed-prefix offset `head`: a sale advances `head` instead of unlinking nodes
//   of a pooled list; the prefix is compacted away when it dominates the array.
//   Returned slices go in by binary search (or straight in front of `head`).
// - Every derived index (identifier lookups, position / clearing / settlement keys,
//   per-day trade-id indexes, the per-trade row links, scheduled actions, pending
//   bonus credits, positions with shares not yet available) is rebuilt by ONE routine,
//   `rebuildDerived`, from the canonical rows: the opening state and a restart take the
//   same path, incrementally over rows not indexed yet.
// - Lookups use V2's own concrete hash tables (V2Tables.swift): identifier bytes in
//   one arena per table, looked up straight from the event line's bytes; trade ids are
//   keyed (bytes, day) in ONE table instead of one index per day.
// - Clearing and settlement keys pack (day ordinal, participant, security) into one
//   Int64; a trade keeps direct links to its four rows, so a CANCEL never looks up.
// - Effects: each event collects the row numbers it touched per effect kind and writes
//   them at its end, sorted by row number (= creation number) and deduplicated.
// - Change tracking: per table, an append watermark plus a list of modified row ids.
// - Tax and dividends use exact Int128 arithmetic in sub-units (1e-7 CNY for the tax,
//   µCNY for accruals) with a single half-up division at the end.

import KernelAPI

/// The lots of one position: `lots[head...]`, ascending (acquired, creation, accrued).
struct LotBook: Sendable {
  var lots: [Lot] = []
  var head = 0

  var live: ArraySlice<Lot> { lots[head...] }
  var count: Int { lots.count - head }

  /// Inserts a lot, merging with an equal-keyed one (CANONICAL-ROWS §6).
  mutating func insert(_ lot: Lot) {
    if head == lots.count {
      lots.removeAll(keepingCapacity: true)
      head = 0
      lots.append(lot)
      return
    }
    if let last = lots.last, last.orderedBefore(lot) {
      lots.append(lot)
      return
    }
    // First index in head..<count whose lot is not ordered before `lot`.
    var low = head
    var high = lots.count
    while low < high {
      let mid = (low + high) >> 1
      if lots[mid].orderedBefore(lot) { low = mid + 1 } else { high = mid }
    }
    if low < lots.count && lots[low].sameLot(lot) {
      lots[low].quantity += lot.quantity
    } else if low == head && head > 0 {
      head -= 1
      lots[head] = lot
    } else {
      lots.insert(lot, at: low)
    }
  }

  /// A dividend's accrual: every live lot gains the same amount, so the order holds.
  mutating func accrue(_ micro: Int64) {
    for i in head..<lots.count { lots[i].accruedMicro += micro }
  }

  /// Takes `quantity` from the oldest lots, appending each slice taken to `slices`.
  mutating func consumeOldest(_ quantity: Int64, into slices: inout [Lot]) {
    var left = quantity
    while left > 0 {
      precondition(head < lots.count, "V2: lots short of the position's quantity")
      let lot = lots[head]
      if lot.quantity <= left {
        slices.append(lot)
        left -= lot.quantity
        head += 1
      } else {
        var part = lot
        part.quantity = left
        slices.append(part)
        lots[head].quantity -= left
        left = 0
      }
    }
    if head == lots.count {
      lots.removeAll(keepingCapacity: true)
      head = 0
    } else if head > 16 && head * 2 > lots.count {
      lots.removeFirst(head)
      head = 0
    }
  }

  /// Takes `quantity` from the newest lots (a cancelled purchase).
  mutating func removeNewest(_ quantity: Int64) {
    var left = quantity
    while left > 0 {
      precondition(head < lots.count, "V2: lots short of the position's quantity")
      let n = lots.count - 1
      if lots[n].quantity <= left {
        left -= lots[n].quantity
        lots.removeLast()
      } else {
        lots[n].quantity -= left
        left = 0
      }
    }
    if head == lots.count {
      lots.removeAll(keepingCapacity: true)
      head = 0
    }
  }
}

/// The four rows a trade added to (row ids).
struct TradeLinks: Sendable {
  var buyClearing: Int32
  var sellClearing: Int32
  var buySettlement: Int32
  var sellSettlement: Int32
}

/// Rows one event touched, per effect kind (row ids; sorted and deduplicated at the end).
struct Touched: Sendable {
  var clearing: [Int32] = []
  var settlement: [Int32] = []
  var balance: [Int32] = []
  var holding: [Int32] = []
  var entitlements: Range<Int32> = 0..<0
  var tax: [Int32] = []
  var taxRemoved: [Int32] = []

  mutating func reset() {
    clearing.removeAll(keepingCapacity: true)
    settlement.removeAll(keepingCapacity: true)
    balance.removeAll(keepingCapacity: true)
    holding.removeAll(keepingCapacity: true)
    entitlements = 0..<0
    tax.removeAll(keepingCapacity: true)
    taxRemoved.removeAll(keepingCapacity: true)
  }
}

public struct V2Kernel: BusinessKernel {
  public static let versionName = "v2"
  public let plantedFault: PlantedFault?

  let fees: V2FeeSchedule
  /// Trading days, ascending.
  let calendar: [Int32]

  // Canonical rows (CANONICAL-ROWS.md), one array per table.
  var globals = GlobalRecord()
  var participants: [ParticipantRecord] = []
  var units: [UnitRecord] = []
  var accounts: [AccountRecord] = []
  var securities: [SecurityRecord] = []
  var positions: [PositionRecord] = []
  var books: [LotBook] = []
  var clearingRows: [ClearingRecord] = []
  var settlementRows: [SettlementRecord] = []
  var trades: [TradeRecord] = []
  var slices: [Lot] = []
  var actions: [ActionRecord] = []
  var entitlements: [EntitlementRecord] = []
  var rejections: [RejectionRecord] = []
  var days: [DayRecord] = []

  // Derived (rebuildDerived).
  var participantIx = KeyBytesTable()
  var unitIx = KeyBytesTable()
  var accountIx = KeyBytesTable()
  var securityIx = KeyBytesTable()
  var positionIx = IntKeyTable()
  var positionsOfSecurity: [[Int32]] = []
  /// Positions that may hold shares not yet available (bought STOCK/FUND).
  var pendingPositions: [Int32] = []
  var isPending: [Bool] = []
  var clearingIx = IntKeyTable()
  var settlementIx = IntKeyTable()
  var dayIx = IntKeyTable()
  /// (trade id bytes, salt = day ordinal) → trade number.
  var tradeIx = KeyBytesTable()
  var links: [TradeLinks] = []
  var actionsByRecordDate: [Int32: [Int32]] = [:]
  var creditsByPayDate: [Int32: [Int32]] = [:]

  // Effects.
  var effectsOn = false
  var fx = EffectWriter()
  var touched = Touched()

  // Change tracking: rows at or above the watermark are new; `modified` lists others.
  var tracking = false
  var watermark: [Int] = Array(repeating: 0, count: 15)
  var modified: [[Int32]] = Array(repeating: [], count: 15)

  public init(reference: ReferenceData, plantedFault: PlantedFault?) {
    self.plantedFault = plantedFault
    fees = V2FeeSchedule(feeRows: reference.feeRows)
    calendar = reference.calendar.sorted()
    for p in reference.participants {
      participants.append(ParticipantRecord(id: Ident(p.id), name: p.name, balance: 0))
    }
    for p in participants { participantIx.insert(p.id.text) }
    for u in reference.units {
      guard let p = participantIx.find(u.participant) else {
        preconditionFailure("V2: unit of an unknown participant")
      }
      units.append(UnitRecord(id: Ident(u.id), participant: p))
    }
    accounts.reserveCapacity(reference.accounts.count)
    for a in reference.accounts { accounts.append(AccountRecord(id: Ident(a.id), kind: a.kind)) }
    for s in reference.securities {
      securities.append(
        SecurityRecord(code: Ident(s.code), isin: s.isin, name: s.name, kind: s.kind, issuedQuantity: 0))
    }
    var pos = IntKeyTable()
    pos.reserveCapacity(reference.holdings.count)
    for h in reference.holdings {
      let key = Self.positionKey(h.account, h.security)
      let id: Int32
      if let existing = pos[key] {
        id = existing
      } else {
        id = Int32(positions.count)
        pos.insert(key, id)
        positions.append(
          PositionRecord(account: h.account, security: h.security, quantity: 0, available: 0, withheld: 0))
        books.append(LotBook())
      }
      positions[Int(id)].quantity += h.quantity
      positions[Int(id)].available += h.quantity
      securities[Int(h.security)].issuedQuantity += h.quantity
      books[Int(id)].insert(
        Lot(
          acquired: h.acquiredDate, creation: globals.nextLotCreation, accruedMicro: 0, quantity: h.quantity))
      globals.nextLotCreation += 1
    }
    positionIx = pos
    rebuildDerived()
  }

  public var appliedSeq: Int64 { globals.appliedSeq }

  // MARK: - Keys and calendar

  @inline(__always) static func positionKey(_ account: Int32, _ security: Int32) -> Int64 {
    Int64(account) << 32 | Int64(security)
  }

  @inline(__always) static func clearingKey(day: Int32, participant: Int32, security: Int32) -> Int64 {
    precondition(participant < 1 << 24 && security < 1 << 24 && day < 1 << 15, "V2: key space exceeded")
    return Int64(day) << 48 | Int64(participant) << 24 | Int64(security)
  }

  @inline(__always) static func settlementKey(day: Int32, participant: Int32) -> Int64 {
    Int64(day) << 32 | Int64(participant)
  }

  /// Index of the first calendar day > date.
  @inline(__always) func calendarUpperBound(_ date: Int32) -> Int {
    var low = 0
    var high = calendar.count
    while low < high {
      let mid = (low + high) >> 1
      if calendar[mid] <= date { low = mid + 1 } else { high = mid }
    }
    return low
  }

  func isTradingDay(_ date: Int32) -> Bool {
    let i = calendarUpperBound(date)
    return i > 0 && calendar[i - 1] == date
  }

  /// The next trading day after `date`, 0 when none.
  func nextTradingDay(_ date: Int32) -> Int32 {
    let i = calendarUpperBound(date)
    return i < calendar.count ? calendar[i] : 0
  }

  /// The trading day before `date`, 0 when none.
  func previousTradingDay(_ date: Int32) -> Int32 {
    var low = 0
    var high = calendar.count
    while low < high {
      let mid = (low + high) >> 1
      if calendar[mid] < date { low = mid + 1 } else { high = mid }
    }
    return low > 0 ? calendar[low - 1] : 0
  }

  // MARK: - Derived state

  /// Builds every derived index from the canonical rows, incrementally over rows not
  /// indexed yet (rows never change their keys), and recomputes the scheduled work.
  mutating func rebuildDerived() {
    while participantIx.count < participants.count {
      participantIx.insert(participants[participantIx.count].id.text)
    }
    while unitIx.count < units.count { unitIx.insert(units[unitIx.count].id.text) }
    accountIx.reserveCapacity(accounts.count)
    while accountIx.count < accounts.count { accountIx.insert(accounts[accountIx.count].id.text) }
    while securityIx.count < securities.count { securityIx.insert(securities[securityIx.count].code.text) }
    positionIx.reserveCapacity(positions.count)
    while positionIx.count < positions.count {
      let p = positions[positionIx.count]
      positionIx.insert(Self.positionKey(p.account, p.security), Int32(positionIx.count))
    }
    positionsOfSecurity = Array(repeating: [], count: securities.count)
    for (i, p) in positions.enumerated() { positionsOfSecurity[Int(p.security)].append(Int32(i)) }
    pendingPositions = []
    isPending = Array(repeating: false, count: positions.count)
    for (i, p) in positions.enumerated() where p.available + p.withheld < p.quantity {
      pendingPositions.append(Int32(i))
      isPending[i] = true
    }
    while dayIx.count < days.count { dayIx.insert(Int64(days[dayIx.count].date), Int32(dayIx.count)) }
    while clearingIx.count < clearingRows.count {
      let c = clearingRows[clearingIx.count]
      guard let day = dayIx[Int64(c.tradeDate)] else {
        preconditionFailure("V2: clearing row of a day never opened")
      }
      clearingIx.insert(
        Self.clearingKey(day: day, participant: c.participant, security: c.security), Int32(clearingIx.count))
    }
    while settlementIx.count < settlementRows.count {
      let s = settlementRows[settlementIx.count]
      guard let day = dayIx[Int64(s.tradeDate)] else {
        preconditionFailure("V2: settlement row of a day never opened")
      }
      settlementIx.insert(Self.settlementKey(day: day, participant: s.participant), Int32(settlementIx.count))
    }
    while links.count < trades.count {
      let t = trades[links.count]
      guard let day = dayIx[Int64(t.date)],
        let bc = clearingIx[Self.clearingKey(day: day, participant: t.buyParticipant, security: t.security)],
        let sc = clearingIx[Self.clearingKey(day: day, participant: t.sellParticipant, security: t.security)],
        let bs = settlementIx[Self.settlementKey(day: day, participant: t.buyParticipant)],
        let ss = settlementIx[Self.settlementKey(day: day, participant: t.sellParticipant)]
      else { preconditionFailure("V2: trade without its clearing rows") }
      precondition(tradeIx.count == links.count, "V2: trade index out of step")
      tradeIx.insert(t.tradeId.text, salt: day)
      links.append(TradeLinks(buyClearing: bc, sellClearing: sc, buySettlement: bs, sellSettlement: ss))
    }
    actionsByRecordDate = [:]
    for (i, a) in actions.enumerated() where !a.executed {
      actionsByRecordDate[a.recordDate, default: []].append(Int32(i))
    }
    creditsByPayDate = [:]
    for (i, e) in entitlements.enumerated() where e.kind == .shares && !e.credited {
      creditsByPayDate[e.payDate, default: []].append(Int32(i))
    }
  }

  // MARK: - Change marks

  @inline(__always) mutating func mark(_ table: StateTable, _ id: Int32) {
    if tracking { modified[Int(table.rawValue)].append(id) }
  }

  @inline(__always) mutating func markPending(_ position: Int32) {
    if !isPending[Int(position)] {
      isPending[Int(position)] = true
      pendingPositions.append(position)
    }
  }

  /// The position of (account, security), created when missing.
  mutating func positionFor(account: Int32, security: Int32) -> Int32 {
    let key = Self.positionKey(account, security)
    if let id = positionIx[key] { return id }
    let id = Int32(positions.count)
    positions.append(
      PositionRecord(account: account, security: security, quantity: 0, available: 0, withheld: 0))
    books.append(LotBook())
    isPending.append(false)
    positionIx.insert(key, id)
    positionsOfSecurity[Int(security)].append(id)
    return id
  }

  mutating func newLot(acquired: Int32, quantity: Int64) -> Lot {
    let lot = Lot(acquired: acquired, creation: globals.nextLotCreation, accruedMicro: 0, quantity: quantity)
    globals.nextLotCreation += 1
    return lot
  }

  /// Grows geometrically: the engine may call this once per batch.
  public mutating func reserveCapacity(events: Int) {
    @inline(__always) func grow<T>(_ a: inout [T], _ more: Int) {
      let need = a.count + more
      if a.capacity < need { a.reserveCapacity(max(need, a.capacity * 2)) }
    }
    grow(&trades, events)
    grow(&links, events)
    grow(&slices, events * 2)
  }
}
