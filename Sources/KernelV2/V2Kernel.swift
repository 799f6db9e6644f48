// V2Kernel: the second, independently written business kernel (N-version voting),
// written from docs/SPEC.md, docs/CANONICAL-ROWS.md and docs/EFFECTS.md only.
//
// Techniques that differ from a typical implementation
// ----------------------------------------------------
// - Lots of ALL positions live in one flat pool (`LotPool`) of power-of-two segments,
//   one per position, in V2's compact 24-byte `V2Lot`; the position row (`V2Position`,
//   V2's own layout) holds the segment and its live range `lotHead..<lotEnd`, oldest
//   first (a purchase's new position is appended whole, with its one-lot segment).
//   A sale advances `lotHead`; a lot that does not fit compacts the segment or
//   moves it to a segment twice as large (freed segments reused per size, LIFO).
//   Returned slices go in by binary search (or straight in front of `lotHead`). A
//   sale's slices are kept in 16 bytes (`V2Slice`), their rare accruals apart.
// - Every derived index (identifier lookups, position / clearing / settlement keys,
//   per-day trade-id indexes, scheduled actions, pending
//   bonus credits, positions with shares not yet available) is rebuilt by ONE routine,
//   `rebuildDerived`, from the canonical rows: the opening state and a restart take the
//   same path, incrementally over rows not indexed yet.
// - Lookups use V2's own concrete hash tables (V2Tables.swift), looked up straight from
//   the event line's bytes: identifiers of up to 16 bytes sit inline in 24-byte slots
//   (one cache miss per lookup; longer ones in an arena); trade ids by (bytes, day):
//   decimal ids in a per-day window indexed by their value, 4 bytes a trade
//   (V2TradeIds.swift), any other in one table salted by the day.
// - Memory-level parallelism on the TRADE path: the slots of the trade id and both
//   accounts are read first, back to back, then both positions' slots, then both
//   position rows, then the seller's oldest and the buyer's newest lot, so that the
//   cache misses of each level overlap (results still checked in SPEC order). Account
//   kinds are one byte per account, apart from the account rows. Groups of TRADEs run
//   these levels together (V2TradeGroups.swift); a hash slot is prefetched whole, with
//   the slot a probe reads next. A `TradeResolver` (V2TradeResolver.swift) interns the
//   accounts, security and units on the thread that splits the lines: for a resolved
//   trade the chain starts at the position slots.
// - Trade rows in V2's own 56-byte layout (`V2Trade`): clearing figures are recomputed
//   from the amount when needed (SPEC §4.1); restored rows that differ keep overrides;
//   the cancelled flag is the slice count's top bit; participant ids are kept whole
//   (32 bits: the rows set no participant limit of their own).
// - Clearing and settlement keys pack (day ordinal, participant, security) into one
//   Int64 (`clearingKey` checks participant and security ids < 2^24, day ordinals
//   < 2^15); a CANCEL finds a trade's four rows again by key (no per-trade links kept).
//   A TRADE finds today's four rows by index instead (`todayClearing`, by participant
//   and security, filled lazily from the keyed tables), and its fee rates from the
//   ones looked up once per trade date (`feeRates`). Without effects, a TRADE group's
//   additions to those rows are made after its last trade (`applyClearingDeltas`).
// - Effects (encoding version 2: rows named by canonical row id, each key written once):
//   an applied TRADE writes its records itself (V2Encoding.swift: one stack buffer
//   sized up front, one copy into the output, no identifier string read); a row is
//   "new" (gets its key record) when its id is at or above the per-table count of rows
//   already named (`keyed`); other events collect the row ids they touched per effect
//   kind and write them at their end, sorted by id and deduplicated (an OPEN's many
//   holdings through V2's encoder too). V2Output.swift's header says more.
//   `takeEffects(into:)` swaps buffers with the caller.
// - Capacity: positions and the lot pool are reserved at init for a day's growth
//   (reserved, never-written pages cost no memory; a later grow would copy them), and
//   `reserveCapacity(events:)` writes the pages the next events' appends fill first
//   (`prefault`): the OS zeroes fresh pages before the apply loop, not inside it.
// - Change tracking: per table, an append watermark plus a list of modified row ids.
// - Image (V2Image.swift): a resume loads the plain row arrays and the large indexes
//   copied whole (memcpy-speed: ~0.23 s for the 1M-account, 1M-trade day), rebuilds
//   the small indexes, and keeps change tracking as it was.
// - Tax and dividends use exact Int128 arithmetic in sub-units (1e-7 CNY for the tax,
//   µCNY for accruals) with a single half-up division at the end.

import KernelAPI

/// A lot in V2's own compact layout (24 bytes; KernelAPI's `Lot` is 32): the creation
/// number fits 32 bits (checked where lots are made).
struct V2Lot: Sendable {
  var accruedMicro: Int64
  var quantity: Int64
  var acquired: Int32
  var creation: Int32

  init(acquired: Int32, creation: Int64, accruedMicro: Int64, quantity: Int64) {
    precondition(creation >= 0 && creation <= Int64(Int32.max), "V2: lot creation number beyond 32 bits")
    self.acquired = acquired
    self.creation = Int32(creation)
    self.accruedMicro = accruedMicro
    self.quantity = quantity
  }

  init(_ lot: Lot) {
    self.init(
      acquired: lot.acquired, creation: lot.creation, accruedMicro: lot.accruedMicro, quantity: lot.quantity)
  }

  var lot: Lot {
    Lot(acquired: acquired, creation: Int64(creation), accruedMicro: accruedMicro, quantity: quantity)
  }

  @inline(__always) func orderedBefore(_ o: V2Lot) -> Bool {
    if acquired != o.acquired { return acquired < o.acquired }
    if creation != o.creation { return creation < o.creation }
    return accruedMicro < o.accruedMicro
  }

  @inline(__always) func sameLot(_ o: V2Lot) -> Bool {
    acquired == o.acquired && creation == o.creation && accruedMicro == o.accruedMicro
  }
}

/// A slice of a sold lot (`V2Kernel.slices`) in 16 bytes: the lot's accrual, rarely not
/// 0 (only lots held over a dividend's record date have one), is kept apart
/// (`V2Kernel.sliceAccrued`), so that a day's 1.25 slices a trade write 8 bytes fewer each
/// into fresh pages.
struct V2Slice: Sendable {
  var quantity: Int64
  var acquired: Int32
  var creation: Int32

  static let filler = V2Slice(quantity: 0, acquired: 0, creation: 0)
}

/// A position row plus where its lots are: the live lots are `pool[lotHead..<lotEnd]`,
/// inside the segment `pool[lotBase ..< lotBase + 1 << lotLog]` (oldest first).
struct V2Position: Sendable {
  var account: Int32
  var security: Int32
  var quantity: Int64 = 0
  var available: Int64 = 0
  var withheld: Int64 = 0
  var lotBase: Int32 = 0
  var lotHead: Int32 = 0
  var lotEnd: Int32 = 0
  /// log2 of the segment's capacity; `V2Position.noSegment` before the first lot.
  var lotLog: UInt8 = V2Position.noSegment
  /// In `pendingPositions`: may hold shares not yet available.
  var pending = false
  /// The row's last two bytes, kept 0 (an image copies rows whole: no padding of
  /// undefined bytes).
  private var reserved: UInt16 = 0

  static let noSegment: UInt8 = 0xFF

  init(account: Int32, security: Int32) {
    self.account = account
    self.security = security
  }

  var lotCount: Int { Int(lotEnd - lotHead) }

  var record: PositionRecord {
    PositionRecord(
      account: account, security: security, quantity: quantity, available: available, withheld: withheld)
  }
}

/// Every position's lots in ONE flat array of power-of-two segments, one per position
/// (no array per position): a sale advances the position's `lotHead`; a lot that does
/// not fit compacts the segment or moves it to a segment twice as large; segments left
/// behind are reused through one free list per size (LIFO: deterministic).
struct LotPool: Sendable {
  var lots: [V2Lot] = []
  var free: [[Int32]] = Array(repeating: [], count: 32)

  static let empty = V2Lot(acquired: 0, creation: 0, accruedMicro: 0, quantity: 0)

  mutating func allocate(log: Int) -> Int32 {
    // (Read first: an empty list, the usual case, is not accessed for writing.)
    if !free[log].isEmpty, let base = free[log].popLast() { return base }
    let base = lots.count
    precondition(base + (1 << log) < Int(Int32.max), "V2: lot pool beyond 32-bit indexes")
    // One lot (a new position's first segment, one per bought position) by a plain
    // append: the repeated-element append is a generic loop around it.
    if log == 0 {
      lots.append(Self.empty)
    } else {
      lots.append(contentsOf: repeatElement(Self.empty, count: 1 << log))
    }
    return Int32(base)
  }

  /// `allocate(log: 0)` with `lot` written in its one place: a fresh segment is the lot
  /// appended itself (one access of the array, where an empty lot appended and then
  /// overwritten was two, each a uniqueness check: a runtime call).
  @inline(__always)
  mutating func allocateOne(_ lot: V2Lot) -> Int32 {
    if !free[0].isEmpty, let base = free[0].popLast() {
      lots.withUnsafeMutableBufferPointer { $0[Int(base)] = lot }
      return base
    }
    let base = lots.count
    precondition(base + 1 < Int(Int32.max), "V2: lot pool beyond 32-bit indexes")
    lots.append(lot)
    return Int32(base)
  }

  mutating func release(base: Int32, log: UInt8) {
    if log != V2Position.noSegment { free[Int(log)].append(base) }
  }
}

/// The four rows a trade added to (row ids), found again by key on a CANCEL.
struct TradeLinks: Sendable {
  var buyClearing: Int32
  var sellClearing: Int32
  var buySettlement: Int32
  var sellSettlement: Int32
}

/// A trade row in V2's own layout (56 bytes of plain data, no reference counted field;
/// the canonical `TradeRecord` is 176): the trade id is a word (`idWord`: a canonical
/// decimal id's value, which gives its text back exactly, else the index of its text in
/// `V2Kernel.tradeIdTexts`); the clearing figures are not stored but
/// recomputed from the amount when needed (a CANCEL, an encoding), as SPEC §4.1 defines
/// them from (kind, date, amount); the tax and the withheld quantity, rarely not 0, are
/// kept apart (`V2Kernel.tradeTax`, `tradeWithheld`); `cancelled` is bit 31 of the
/// slice count's word.
struct V2Trade: Sendable {
  /// Bit 63 clear: the value of a canonical decimal id (`TradeIdIndex.decimalValue`, at
  /// most 18 digits); set: the low bits index `V2Kernel.tradeIdTexts`.
  var idWord: UInt64
  var amountFen: Int64
  var quantity: Int64
  var date: Int32
  var security: Int32
  var buyAccount: Int32
  var sellAccount: Int32
  var buyParticipant: Int32
  var sellParticipant: Int32
  var sliceStart: Int32
  private var sliceWord: UInt32

  /// `idWord`'s tag: the id's text is kept aside.
  static let textTag: UInt64 = 1 << 63

  init(
    idWord: UInt64, amountFen: Int64, quantity: Int64, date: Int32, security: Int32, buyAccount: Int32,
    sellAccount: Int32, buyParticipant: Int32, sellParticipant: Int32, sliceStart: Int32, sliceCount: Int32,
    cancelled: Bool
  ) {
    precondition(sliceCount >= 0, "V2: negative slice count")
    self.idWord = idWord
    self.amountFen = amountFen
    self.quantity = quantity
    self.date = date
    self.security = security
    self.buyAccount = buyAccount
    self.sellAccount = sellAccount
    self.buyParticipant = buyParticipant
    self.sellParticipant = sellParticipant
    self.sliceStart = sliceStart
    self.sliceWord = UInt32(sliceCount) | (cancelled ? 1 << 31 : 0)
  }

  /// A row that is never kept (`V2Kernel.prefault` writes and drops it).
  static let filler = V2Trade(
    idWord: 0, amountFen: 0, quantity: 0, date: 0, security: 0, buyAccount: 0, sellAccount: 0,
    buyParticipant: 0, sellParticipant: 0, sliceStart: 0, sliceCount: 0, cancelled: false)

  var sliceCount: Int32 { Int32(sliceWord & 0x7FFF_FFFF) }

  var cancelled: Bool {
    get { sliceWord >> 31 != 0 }
    set { sliceWord = sliceWord & 0x7FFF_FFFF | (newValue ? 1 << 31 : 0) }
  }
}

/// An applied TRADE's figures for its clearing and settlement rows
/// (`V2Kernel.applyClearingDeltas`).
struct V2ClearingDelta {
  var buyClearing: Int32
  var sellClearing: Int32
  var buySettlement: Int32
  var sellSettlement: Int32
  var quantity: Int64
  var clearing: TradeClearing
}

/// The rows an applied TRADE touched (its effects are written straight from these).
struct TradeTouch: Sendable {
  var buyClearing: Int32 = 0
  var sellClearing: Int32 = 0
  var buySettlement: Int32 = 0
  var sellSettlement: Int32 = 0
  var sellPosition: Int32 = 0
  var buyPosition: Int32 = 0
  var trade: Int32 = 0
  var taxed = false
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
  /// Each account's kind, one byte per account (1 MB per million: stays in cache).
  var accountKind: [UInt8] = []
  /// The account rows are in ascending identifier bytes (row order is SPEC §5's account
  /// order: no ranks to sort for the outputs). Derived: rebuildDerived, addAccount.
  var accountsAscending = true
  var securities: [SecurityRecord] = []
  /// Each security's kind, one byte per security (always cached; a TRADE reads it, not
  /// the 64-byte row). Derived: rebuildDerived, addSecurity.
  var securityKind: [SecurityKind] = []
  var positions: [V2Position] = []
  var pool = LotPool()
  var clearingRows: [ClearingRecord] = []
  var settlementRows: [SettlementRecord] = []
  var trades: [V2Trade] = []
  /// The texts of trade ids that are no canonical decimal id (`V2Trade.idWord`), in the
  /// order their rows were made; at most one per trade row.
  var tradeIdTexts: [String] = []
  /// The trade rows' `taxFen` and `withheld` where not 0, by trade number (looked up
  /// only, never iterated).
  var tradeTax: [Int32: Int64] = [:]
  var tradeWithheld: [Int32: Int64] = [:]
  /// Restored trade rows whose clearing figures differ from the recomputed ones (rows
  /// written elsewhere): looked up only, never iterated.
  var clearingOverrides: [Int32: TradeClearing] = [:]
  var slices: [V2Slice] = []
  /// The slices' `accruedMicro` where not 0, by slice id (looked up only, never iterated).
  var sliceAccrued: [Int32: Int64] = [:]
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
  /// By security: its positions with ids `0 ..< positionsListed[s]` are in
  /// `positionsOfSecurity[s]`; newer ones are added when a corporate action of that
  /// security needs its list (`listNewPositions(of:)`), not one by one during the day (a
  /// list grown by doubling copies itself into fresh memory), and only for the
  /// securities whose actions are due (a few of a thousand lists grow, not all).
  var positionsListed: [Int] = []
  /// Positions that may hold shares not yet available (bought STOCK/FUND).
  var pendingPositions: [Int32] = []
  var clearingIx = IntKeyTable()
  var settlementIx = IntKeyTable()
  var dayIx = IntKeyTable()
  /// (trade id bytes, day ordinal) → trade number (V2TradeIds.swift).
  var tradeIds = TradeIdIndex()
  var actionsByRecordDate: [Int32: [Int32]] = [:]
  var creditsByPayDate: [Int32: [Int32]] = [:]
  /// Today's clearing rows by (participant, security) at `todayIndex`, and settlement
  /// rows by participant: a TRADE finds its four rows by index (an 80 KB array for
  /// 20 x 1,000, mostly in the L2) instead of hashing four keys. Filled
  /// lazily: -1 is "not asked yet" (`clearingIx` / `settlementIx` then answer, or the row
  /// is made, and the id is kept). Valid for day `todayDay` with `todayParticipants`
  /// participants and `todayStride` securities; `prepareToday` starts it over when any
  /// of them changed. Never iterated.
  var todayDay: Int32 = -1
  var todayParticipants = 0
  var todayStride = 0
  var todayClearing: [Int32] = []
  var todaySettlement: [Int32] = []
  /// The fee rates in force on `feeDate` (`V2FeeSchedule.dayRates(on:)`), by slot.
  var feeDate: Int32 = -1
  var feeRates: [V2DayRate] = []

  // Effects.
  var effectsOn = false
  var fx = EffectWriter()
  /// The effect bytes of the events applied since the last take.
  var fxOut: [UInt8] = []
  /// Rows the effect stream has named (key records), per keyed table: rows at or above
  /// these counts get key records at the end of the event that created them.
  var keyed = V2Keyed()
  /// The settle date of the last trade date written (a calendar search saved per trade).
  var settleCache: (tradeDate: Int32, settleDate: Int32) = (0, 0)
  var touched = Touched()
  var lastTrade = TradeTouch()
  /// Where the hot path's early reads go (so that the compiler keeps them).
  var prefetchSink: Int64 = 0

  // Change tracking: rows at or above the watermark are new (taken whole, never
  // marked); `modified` lists the others once each, in marking order, and
  // `modifiedBits` (one bit a row below the watermark) says which are listed. A day's
  // million trades mark seven rows each, nearly all new or marked already: testing a
  // bit instead of appending keeps the lists to the distinct old rows changed.
  var tracking = false
  var watermark: [Int] = Array(repeating: 0, count: 15)
  var modified: [[Int32]] = Array(repeating: [], count: 15)
  var modifiedBits: [[UInt64]] = Array(repeating: [], count: 15)

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
    // Made whole (an append per account was a uniqueness check each: 1M of them).
    precondition(accounts.isEmpty, "V2: accounts made twice")
    accounts = reference.accounts.map { AccountRecord(id: Ident($0.id), kind: $0.kind) }
    for s in reference.securities {
      securities.append(
        SecurityRecord(code: Ident(s.code), isin: s.isin, name: s.name, kind: s.kind, issuedQuantity: 0))
    }
    layOpeningHoldings(reference.holdings)
    rebuildDerived()
    // The opening rows are named by the seq-0 snapshot.
    markAllKeyed()
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
    accountKind = accounts.map { $0.kind.rawValue }
    accountIx.insertAll(upTo: accounts.count) { accounts[$0].id.text }
    accountsAscending = Self.identsAscending(accounts.count) { accounts[$0].id }
    while securityIx.count < securities.count { securityIx.insert(securities[securityIx.count].code.text) }
    securityKind = securities.map { $0.kind }
    positionIx.insertDense(upTo: positions.count) {
      Self.positionKey(positions[$0].account, positions[$0].security)
    }
    // Each security's positions, every list reserved at its final size.
    var perSecurity = [Int32](repeating: 0, count: securities.count)
    pendingPositions = []
    for i in positions.indices {
      let p = positions[i]
      perSecurity[Int(p.security)] += 1
      let pending = p.available + p.withheld < p.quantity
      if pending != p.pending { positions[i].pending = pending }
      if pending { pendingPositions.append(Int32(i)) }
    }
    positionsOfSecurity = perSecurity.map { n in
      var list: [Int32] = []
      list.reserveCapacity(Int(n))
      return list
    }
    for (i, p) in positions.enumerated() { positionsOfSecurity[Int(p.security)].append(Int32(i)) }
    positionsListed = Array(repeating: positions.count, count: securities.count)
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
    let expected = tradeIds.expectedTrades
    while tradeIds.count < trades.count {
      let t = trades[tradeIds.count]
      guard let day = dayIx[Int64(t.date)] else { preconditionFailure("V2: trade of a day never opened") }
      // A day's window sized for that day's trades (the hint for the rows laid here).
      tradeIds.expectedTrades = Int(days[Int(day)].tradeEnd - days[Int(day)].tradeStart)
      tradeIds.insert(tradeIdText(tradeIds.count), day: day, id: Int32(tradeIds.count))
    }
    tradeIds.expectedTrades = expected
    actionsByRecordDate = [:]
    for (i, a) in actions.enumerated() where !a.executed {
      actionsByRecordDate[a.recordDate, default: []].append(Int32(i))
    }
    creditsByPayDate = [:]
    for (i, e) in entitlements.enumerated() where e.kind == .shares && !e.credited {
      creditsByPayDate[e.payDate, default: []].append(Int32(i))
    }
    todayDay = -1
  }

  /// Makes `todayClearing` / `todaySettlement` those of day `day` (see their comment).
  @inline(__always) mutating func prepareToday(_ day: Int32) {
    if day == todayDay && participants.count == todayParticipants && securities.count == todayStride {
      return
    }
    todayDay = day
    todayParticipants = participants.count
    todayStride = securities.count
    todayClearing = Array(repeating: -1, count: participants.count * securities.count)
    todaySettlement = Array(repeating: -1, count: participants.count)
  }

  /// Where today's clearing row of (participant, security) is kept in `todayClearing`;
  /// -1 when the table is not today's. Read later (`knownClearingRow(at:)`), the entry
  /// is the row, or -1 when not asked yet (a hint: the look-ahead prefetches with it).
  @inline(__always) func knownClearingIndex(day: Int32, participant: Int32, security: Int32) -> Int {
    guard day == todayDay && participants.count == todayParticipants && securities.count == todayStride
    else { return -1 }
    return todayIndex(participant: participant, security: security)
  }

  /// The entry `knownClearingIndex` gave (-1: none).
  @inline(__always) func knownClearingRow(at index: Int) -> Int32 {
    index >= 0 ? todayClearing[index] : -1
  }

  /// Where (participant, security) is in `todayClearing`: by security, then participant,
  /// so that a trade's two entries (one security, two participants) share a cache line
  /// (20 participants: 80 bytes a security), where by participant they lay a security's
  /// whole stride apart (two misses of the L2 a trade, the table being evicted by the
  /// day's stream of rows).
  @inline(__always) func todayIndex(participant: Int32, security: Int32) -> Int {
    Int(security) * todayParticipants + Int(participant)
  }

  // MARK: - Trade rows

  /// The clearing and settlement rows a trade added to.
  func tradeLinks(_ t: Int) -> TradeLinks {
    let tr = trades[t]
    guard let day = dayIx[Int64(tr.date)],
      let bc = clearingIx[Self.clearingKey(day: day, participant: tr.buyParticipant, security: tr.security)],
      let sc = clearingIx[Self.clearingKey(day: day, participant: tr.sellParticipant, security: tr.security)],
      let bs = settlementIx[Self.settlementKey(day: day, participant: tr.buyParticipant)],
      let ss = settlementIx[Self.settlementKey(day: day, participant: tr.sellParticipant)]
    else { preconditionFailure("V2: trade without its clearing rows") }
    return TradeLinks(buyClearing: bc, sellClearing: sc, buySettlement: bs, sellSettlement: ss)
  }

  /// Slice `i` as the lot it gives back (a CANCEL) or encodes.
  func sliceLot(_ i: Int) -> V2Lot {
    let s = slices[i]
    let accrued = sliceAccrued.isEmpty ? 0 : sliceAccrued[Int32(i)] ?? 0
    return V2Lot(
      acquired: s.acquired, creation: Int64(s.creation), accruedMicro: accrued, quantity: s.quantity)
  }

  /// Lays slice `id` (a restart).
  mutating func laySlice(_ id: Int, _ lot: V2Lot) throws {
    try Self.put(
      &slices, id, V2Slice(quantity: lot.quantity, acquired: lot.acquired, creation: lot.creation), .slices)
    sliceAccrued[Int32(id)] = lot.accruedMicro != 0 ? lot.accruedMicro : nil
  }

  /// Trade row `t`'s tax (fen).
  @inline(__always) func taxFen(_ t: Int) -> Int64 {
    tradeTax.isEmpty ? 0 : tradeTax[Int32(t)] ?? 0
  }

  /// Trade row `t`'s withheld quantity.
  @inline(__always) func withheld(_ t: Int) -> Int64 {
    tradeWithheld.isEmpty ? 0 : tradeWithheld[Int32(t)] ?? 0
  }

  mutating func setWithheld(_ t: Int, _ w: Int64) {
    tradeWithheld[Int32(t)] = w != 0 ? w : nil
  }

  /// A trade's clearing figures (SPEC §4.1), recomputed from its amount.
  func tradeClearing(_ t: Int) -> TradeClearing {
    if !clearingOverrides.isEmpty, let c = clearingOverrides[Int32(t)] { return c }
    let tr = trades[t]
    let kind = securities[Int(tr.security)].kind
    let immediate = kind == .bond || plantedFault == .transfer
    return fees.clear(
      kind: kind, date: tr.date, amountFen: tr.amountFen, truncateHandling: plantedFault == .feeRounding,
      availableNow: immediate ? tr.quantity : 0)
  }

  func tradeRecord(_ t: Int) -> TradeRecord {
    let tr = trades[t]
    return TradeRecord(
      tradeId: Ident(tradeIdText(t)), date: tr.date, security: tr.security, quantity: tr.quantity,
      buyAccount: tr.buyAccount, sellAccount: tr.sellAccount, buyParticipant: tr.buyParticipant,
      sellParticipant: tr.sellParticipant, clearing: tradeClearing(t), taxFen: taxFen(t),
      cancelled: tr.cancelled, withheld: withheld(t), sliceStart: tr.sliceStart, sliceCount: tr.sliceCount)
  }

  /// The word a trade row keeps for trade id `bytes` (see `V2Trade.idWord`): its
  /// decimal value, or its text kept in `tradeIdTexts`.
  @inline(__always)
  mutating func tradeIdWord(_ bytes: UnsafeRawBufferPointer, decimal: UInt64) -> UInt64 {
    if decimal != TradeIdIndex.notDecimal {
      precondition(decimal & V2Trade.textTag == 0, "V2: decimal trade id beyond 63 bits")
      return decimal
    }
    tradeIdTexts.append(String(decoding: bytes, as: UTF8.self))
    return V2Trade.textTag | UInt64(tradeIdTexts.count - 1)
  }

  mutating func tradeIdWord(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    tradeIdWord(bytes, decimal: TradeIdIndex.decimalValue(bytes))
  }

  /// Trade row `t`'s trade id, as it was given.
  func tradeIdText(_ t: Int) -> String {
    let w = trades[t].idWord
    if w & V2Trade.textTag == 0 { return String(w) }
    return tradeIdTexts[Int(w & ~V2Trade.textTag)]
  }

  /// Lays a decoded trade row (a restart).
  mutating func layTrade(_ id: Int, _ r: TradeRecord) {
    var text = r.tradeId.text
    let word = text.withUTF8 { tradeIdWord(UnsafeRawBufferPointer($0)) }
    let v = V2Trade(
      idWord: word, amountFen: r.clearing.amountFen, quantity: r.quantity, date: r.date,
      security: r.security, buyAccount: r.buyAccount,
      sellAccount: r.sellAccount, buyParticipant: r.buyParticipant, sellParticipant: r.sellParticipant,
      sliceStart: r.sliceStart, sliceCount: r.sliceCount, cancelled: r.cancelled)
    if id < trades.count { trades[id] = v } else { trades.append(v) }
    tradeTax[Int32(id)] = r.taxFen != 0 ? r.taxFen : nil
    setWithheld(id, r.withheld)
    clearingOverrides[Int32(id)] = nil
    if tradeClearing(id) != r.clearing { clearingOverrides[Int32(id)] = r.clearing }
  }

  // MARK: - Change marks

  @inline(__always) mutating func mark(_ table: StateTable, _ id: Int32) {
    if tracking { markChanged(Int(table.rawValue), Int(id)) }
  }

  /// Lists row `id` of table `t` as changed, unless it is new since the last take (it
  /// is taken with the new rows) or listed already.
  @inline(__always) mutating func markChanged(_ t: Int, _ id: Int) {
    guard id < watermark[t] else { return }
    let bit = UInt64(1) &<< UInt64(id & 63)
    let seen = modifiedBits[t].withUnsafeMutableBufferPointer { words -> Bool in
      let old = words[id &>> 6]
      words[id &>> 6] = old | bit
      return old & bit != 0
    }
    if !seen { modified[t].append(Int32(id)) }
  }

  @inline(__always) mutating func markPending(_ position: Int32) {
    if !positions[Int(position)].pending {
      positions[Int(position)].pending = true
      pendingPositions.append(position)
    }
  }

  /// The position of (account, security), created when missing.
  mutating func positionFor(account: Int32, security: Int32) -> Int32 {
    if let id = positionIx[Self.positionKey(account, security)] { return id }
    return newPosition(account: account, security: security)
  }

  /// A new position of (account, security), which has none; `emptySlot`: where
  /// `positionIx.lookup` of its key just ended (-1: not looked up).
  mutating func newPosition(account: Int32, security: Int32, emptySlot: Int = -1) -> Int32 {
    let key = Self.positionKey(account, security)
    let id = Int32(positions.count)
    positions.append(V2Position(account: account, security: security))
    positionIx.insert(key, id, at: emptySlot)
    return id
  }

  /// Completes the lists of securities `of` (each list in id order: it stays ascending),
  /// in one pass over the positions created since the oldest of their lists was last
  /// completed.
  mutating func listNewPositions(of wanted: [Int32]) {
    let end = positions.count
    var from = end
    var want = [Bool](repeating: false, count: securities.count)
    for s in wanted where positionsListed[Int(s)] < end {
      want[Int(s)] = true
      from = min(from, positionsListed[Int(s)])
    }
    if from == end { return }
    // The lists leave `self` while the rows' buffer is read (no exclusivity conflict).
    var lists: [[Int32]] = []
    swap(&lists, &positionsOfSecurity)
    positions.withUnsafeBufferPointer { rows in
      for i in from..<end {
        let s = Int(rows[i].security)
        if want[s] && i >= positionsListed[s] { lists[s].append(Int32(i)) }
      }
    }
    swap(&lists, &positionsOfSecurity)
    for s in wanted { positionsListed[Int(s)] = end }
  }

  mutating func newLot(acquired: Int32, quantity: Int64) -> V2Lot {
    let lot = V2Lot(
      acquired: acquired, creation: globals.nextLotCreation, accruedMicro: 0, quantity: quantity)
    globals.nextLotCreation += 1
    return lot
  }

  /// Grows geometrically: the engine may call this once per batch. Then writes, once,
  /// the pages that the next `events` TRADEs will fill first (`prefault`).
  public mutating func reserveCapacity(events: Int) {
    @inline(__always) func grow<T>(_ a: inout [T], _ more: Int) {
      let need = a.count + more
      if a.capacity < need { a.reserveCapacity(max(need, a.capacity * 2)) }
    }
    grow(&trades, events)
    grow(&slices, events * 2)
    grow(&pool.lots, events * 2)
    grow(&positions, events)
    grow(&pendingPositions, events)
    tradeIds.expectedTrades = events
    positionIx.reserveCapacity(positionIx.count + events)
    // A TRADE appends a trade row, usually a new position (the buyer's first of that
    // security) with a one-lot segment, a slice or two and a pending mark. Reserved
    // capacity is address space only: its pages are zeroed by the operating system at
    // the first write, which on the 1M-trade day (~150 MB appended: per trade a 56-byte
    // trade row, a 48-byte position, a 24-byte lot, 1.25 16-byte slices and a 4-byte
    // pending mark) was the largest single cost inside the apply loop (`clear_page_erms`,
    // ~half of it on a loaded machine). Written here, before the events, that cost is
    // paid before the first trade instead of on the way (the same bytes: an event
    // appends at most one trade row and one position; a sale takes a slice per lot it
    // reaches, 1.25 a trade on that day: room for 1.25 is written, as a page written
    // here and never filled is zeroed for nothing, while one filled beyond it costs the
    // same zeroing in the loop; lots beyond one per event fault as before).
    Self.prefault(&trades, events, V2Trade.filler)
    Self.prefault(&positions, events, V2Position(account: 0, security: 0))
    Self.prefault(&slices, events + events / 4, V2Slice.filler)
    Self.prefault(&pool.lots, events, LotPool.empty)
    Self.prefault(&pendingPositions, events, 0)
  }

  /// Makes the pages behind up to `n` elements of `a`'s spare capacity resident (the
  /// count, the contents and the state are as before). An empty array (the trade rows
  /// and slices before the first day) is replaced by a buffer of the same capacity with
  /// one byte written per 4 KB page (raw bytes into uninitialized memory: no element
  /// made or destroyed); a non-empty one gets `filler` appended and dropped again.
  static func prefault<T>(_ a: inout [T], _ n: Int, _ filler: T) {
    let k = min(n, a.capacity - a.count)
    if k <= 0 { return }
    if a.isEmpty {
      a = [T](unsafeUninitializedCapacity: a.capacity) { buffer, initialized in
        let raw = UnsafeMutableRawBufferPointer(buffer)
        let end = k * MemoryLayout<T>.stride
        var offset = 0
        while offset < end {
          raw.storeBytes(of: 0, toByteOffset: offset, as: UInt8.self)
          offset += 4096
        }
        initialized = 0
      }
      return
    }
    a.append(contentsOf: repeatElement(filler, count: k))
    a.removeLast(k)
  }
}
