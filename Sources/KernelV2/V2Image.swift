// V2Kernel's image (KernelAPI's KernelImage.swift): its whole state, written at the end
// of a durable run and loaded on resume instead of the reference folder and the day's
// events.
//
// Layout: a header (tag, version, planted fault), then one tagged section per table or
// index. The large tables as varints in blocks (V2ImageVarints.swift; image version 2,
// measured on the 1M-account day in `ImageTests.testImageBenchmark`): positions
// (`V2Position`), the lot pool (`V2Lot`, an unused lot one byte), trade rows
// (`V2Trade`) and slices (`V2Slice`), the growing fields as differences from the row
// before; the position table (`IntKeyTable`) as its slots' values alone, the keys read
// back from the positions (a position's key is its account and security); the account
// table (`KeyBytesTable`) as its slots' ids alone when every account id sits in its
// slot (at most 16 bytes; else whole), the keys read back from the accounts. Every byte
// of an image costs a durable run ~1.1 ns of page cache; a varint ~1 ns a field; the
// slots' order is kept, so a loaded table is the writer's, slot for slot.
// What is copied whole (`ImageWriter.array`, named in `imageLayout`):
//   - the lot pool's free lists, the per-account kind bytes, and two padding-free
//     mirrors made for the image (`V2ClearingImage`, `V2EntitlementImage`: their rows
//     hold enums and flags, checked on the way in);
//   - the other derived indexes, as they are: the trade-id index (its windows and its
//     table), the per-security position lists (one flat array), the pending positions,
//     and the change-tracking lists and bit sets.
// Written field by field: every row holding a string (participants, units, securities,
// rejections; the account ids and odd trade-id texts as one byte blob and its ends),
// the small tables with enums or flags (settlement, actions, days) and the scalars.
// Maps (`[Int32: …]`) are written sorted by key, never in dictionary order.
// Rebuilt on load from the rows: the small indexes (participants, units, securities,
// days, clearing and settlement keys) and the security kinds. Reset as after an
// opening: the per-day caches (today's clearing rows, fee rates, settle date), effects
// (off; `enableEffects` names every existing row), the scratch lists of an event.
//
// Reading checks every count against what is there (`ImageReader`), every row id
// stored in a row or an index against its table, the flags' and enums' bytes, and the
// lot segments against the pool: a malformed image throws, it never traps. What is not
// checked is that the rows are a state this kernel could reach (e.g. that a trade's
// clearing rows exist): the engine loads only an image whose SHA-256 it verified.

import KernelAPI

/// A clearing row as the image keeps it (96 bytes, no padding).
struct V2ClearingImage: Sendable {
  var buyAmount: Int128
  var sellAmount: Int128
  var buyQuantity: Int64
  var sellQuantity: Int64
  var handling: Int64
  var regulatory: Int64
  var transfer: Int64
  var stamp: Int64
  var tradeDate: Int32
  var participant: Int32
  var security: Int32
  var reserved: Int32 = 0

  init(_ c: ClearingRecord) {
    buyAmount = c.buyAmount
    sellAmount = c.sellAmount
    buyQuantity = c.buyQuantity
    sellQuantity = c.sellQuantity
    handling = c.fees.handling
    regulatory = c.fees.regulatory
    transfer = c.fees.transfer
    stamp = c.fees.stamp
    tradeDate = c.tradeDate
    participant = c.participant
    security = c.security
  }

  var record: ClearingRecord {
    ClearingRecord(
      tradeDate: tradeDate, participant: participant, security: security, buyQuantity: buyQuantity,
      sellQuantity: sellQuantity, buyAmount: buyAmount, sellAmount: sellAmount,
      fees: SideFees(handling: handling, regulatory: regulatory, transfer: transfer, stamp: stamp))
  }
}

/// An entitlement row as the image keeps it (32 bytes, no padding; kind and flag as
/// words, checked on the way in).
struct V2EntitlementImage: Sendable {
  var value: Int64
  var security: Int32
  var recordDate: Int32
  var payDate: Int32
  var account: Int32
  var kind: Int32
  var credited: Int32

  init(_ e: EntitlementRecord) {
    value = e.value
    security = e.security
    recordDate = e.recordDate
    payDate = e.payDate
    account = e.account
    kind = Int32(e.kind.rawValue)
    credited = e.credited ? 1 : 0
  }
}

extension V2Kernel {
  /// Changes with any change of what the image holds or how.
  static let imageVersion: Int64 = 2

  public static var imageLayout: String {
    func plain<T: BitwiseCopyable>(_ name: String, _: T.Type) -> (
      name: String, size: Int, stride: Int, alignment: Int
    ) {
      (name, MemoryLayout<T>.size, MemoryLayout<T>.stride, MemoryLayout<T>.alignment)
    }
    return imageLayoutSignature([
      plain("V2Image\(imageVersion)", UInt8.self),
      plain("V2Position", V2Position.self),
      plain("V2Lot", V2Lot.self),
      plain("V2Trade", V2Trade.self),
      plain("V2Slice", V2Slice.self),
      plain("V2ClearingImage", V2ClearingImage.self),
      plain("V2EntitlementImage", V2EntitlementImage.self),
      plain("KeyBytesTable.Slot", KeyBytesTable.Slot.self),
      plain("IntKeyTable.Slot", IntKeyTable.Slot.self),
      plain("Int", Int.self),
      plain("Int128", Int128.self),
    ])
  }

  /// A kernel with the reference data an image gives, every other field as declared
  /// (filled by `loadImage`).
  init(imageFees: V2FeeSchedule, calendar: [Int32], plantedFault: PlantedFault?) {
    self.plantedFault = plantedFault
    self.fees = imageFees
    self.calendar = calendar
  }

  // MARK: - Write

  public func writeImage(to w: inout ImageWriter) -> Bool {
    w.tag("V2IMAGE")
    w.i64(Self.imageVersion)
    w.string(plantedFault?.rawValue ?? "")

    w.tag("reference")
    w.array(fees.dates)
    w.array(fees.rates)
    w.array(fees.bounds)
    w.array(calendar)

    w.tag("globals")
    w.bool(globals.dayOpen)
    w.i32(globals.lastOpened)
    w.i64(globals.nextLotCreation)
    w.i64(globals.appliedSeq)

    w.tag("participants")
    w.i64(Int64(participants.count))
    for p in participants {
      w.ident(p.id)
      w.string(p.name)
      Self.writeInt128(p.balance, to: &w)
    }

    w.tag("units")
    w.i64(Int64(units.count))
    for u in units {
      w.ident(u.id)
      w.i32(u.participant)
    }

    w.tag("accounts")
    w.array(accountKind)
    Self.writeStrings(accounts.count, to: &w) { accounts[$0].id.text }
    w.bool(accountsAscending)

    w.tag("securities")
    w.i64(Int64(securities.count))
    for s in securities {
      w.ident(s.code)
      w.string(s.isin)
      w.string(s.name)
      w.u8(s.kind.rawValue)
      w.i64(s.issuedQuantity)
    }

    w.tag("positions")
    Self.writePositions(positions, to: &w)
    w.array(pendingPositions)
    Self.writeLots(pool.lots, to: &w)
    w.i64(Int64(pool.free.count))
    for list in pool.free { w.array(list) }

    w.tag("clearing")
    w.array(clearingRows.map(V2ClearingImage.init))

    w.tag("settlement")
    w.i64(Int64(settlementRows.count))
    for s in settlementRows {
      w.i32(s.tradeDate)
      w.i32(s.participant)
      Self.writeInt128(s.netFen, to: &w)
      w.i32(s.liveSides)
      w.u8(s.status.rawValue)
      w.i32(s.settledOn)
    }

    w.tag("trades")
    Self.writeTrades(trades, to: &w)
    Self.writeStrings(tradeIdTexts.count, to: &w) { tradeIdTexts[$0] }
    Self.writeMap(tradeTax, to: &w)
    Self.writeMap(tradeWithheld, to: &w)
    let overridden = clearingOverrides.keys.sorted()
    w.array(overridden)
    w.array(
      overridden.flatMap { t -> [Int64] in
        let c = clearingOverrides[t]!
        return [
          c.amountFen, c.buyerFees.handling, c.buyerFees.regulatory, c.buyerFees.transfer, c.buyerFees.stamp,
          c.sellerFees.handling, c.sellerFees.regulatory, c.sellerFees.transfer, c.sellerFees.stamp,
          c.buyerNetFen, c.sellerNetFen, c.buyerAvailableNow,
        ]
      })

    w.tag("slices")
    Self.writeSlices(slices, to: &w)
    Self.writeMap(sliceAccrued, to: &w)

    w.tag("actions")
    w.i64(Int64(actions.count))
    for a in actions {
      w.i32(a.security)
      w.i32(a.recordDate)
      w.i32(a.payDate)
      w.u8(a.kind.rawValue)
      w.i64(a.perShareMicro)
      w.i64(a.base)
      w.i64(a.bonus)
      w.bool(a.executed)
    }

    w.tag("entitlements")
    w.array(entitlements.map(V2EntitlementImage.init))

    w.tag("rejections")
    w.i64(Int64(rejections.count))
    for x in rejections {
      w.i64(x.seq)
      w.string(x.record)
      w.string(x.ref)
      w.u8(x.reason.rawValue)
    }

    w.tag("days")
    w.i64(Int64(days.count))
    for d in days {
      w.i32(d.date)
      w.bool(d.closed)
      w.bool(d.settled)
      w.i32(d.tradeStart)
      w.i32(d.tradeEnd)
    }

    w.tag("indexes")
    // The account table as its slots' ids when every id is short (the keys read back
    // from the accounts), else whole.
    let accountIdsOnly = accountIx.keysInlineUnsalted
    w.bool(accountIdsOnly)
    if accountIdsOnly { accountIx.writeImageIds(to: &w) } else { accountIx.writeImage(to: &w) }
    positionIx.writeImageValues(to: &w)
    tradeIds.writeImage(to: &w)
    w.array(positionsOfSecurity.map { Int32($0.count) })
    w.array(Array(positionsOfSecurity.joined()))
    w.array(positionsListed)
    Self.writeLists(actionsByRecordDate, to: &w)
    Self.writeLists(creditsByPayDate, to: &w)

    w.tag("tracking")
    w.bool(tracking)
    w.array(watermark)
    w.i64(Int64(modified.count))
    for list in modified { w.array(list) }
    w.i64(Int64(modifiedBits.count))
    for bits in modifiedBits { w.array(bits) }

    w.tag("end")
    w.flush()
    return true
  }

  static func writeInt128(_ v: Int128, to w: inout ImageWriter) {
    w.u64(UInt64(truncatingIfNeeded: v))
    w.i64(Int64(truncatingIfNeeded: v >> 64))
  }

  static func readInt128(from r: inout ImageReader) throws(DecodeError) -> Int128 {
    let low = try r.u64()
    let high = try r.i64()
    return Int128(high) << 64 | Int128(low)
  }

  /// `n` strings as one blob of their UTF-8 bytes after the end offset of each.
  static func writeStrings(_ n: Int, to w: inout ImageWriter, _ string: (Int) -> String) {
    var ends: [UInt32] = []
    ends.reserveCapacity(n)
    var blob: [UInt8] = []
    blob.reserveCapacity(n * 12)
    for i in 0..<n {
      var s = string(i)
      s.withUTF8 { blob.append(contentsOf: $0) }
      precondition(blob.count <= Int(UInt32.max), "V2: strings of an image beyond 4 GB")
      ends.append(UInt32(blob.count))
    }
    w.array(ends)
    w.array(blob)
  }

  /// Strings `writeStrings` wrote (at most `maxCount`), handed to `body` with their
  /// index, in order; returns how many.
  @discardableResult
  static func readStrings(
    from r: inout ImageReader, maxCount: Int, _ body: (Int, String) -> Void
  ) throws(DecodeError) -> Int {
    let ends = try r.array(of: UInt32.self, maxCount: maxCount)
    let blob = try r.array(of: UInt8.self, maxCount: Int(UInt32.max))
    var previous: UInt32 = 0
    for e in ends {
      guard e >= previous else { throw DecodeError(description: "V2 image: string ends out of order") }
      previous = e
    }
    guard Int(previous) == blob.count else {
      throw DecodeError(description: "V2 image: strings end at \(previous), their bytes at \(blob.count)")
    }
    // All ASCII (identifiers in practice): every piece is valid UTF-8, decoded as is.
    let ascii = blob.withUnsafeBytes { b -> Bool in
      var i = 0
      var or: UInt64 = 0
      while i + 8 <= b.count {
        or |= b.loadUnaligned(fromByteOffset: i, as: UInt64.self)
        i += 8
      }
      while i < b.count {
        or |= UInt64(b[i])
        i += 1
      }
      return or & 0x8080_8080_8080_8080 == 0
    }
    let valid = blob.withUnsafeBufferPointer { b -> Bool in
      var start = 0
      for (i, e) in ends.enumerated() {
        let piece = UnsafeBufferPointer(rebasing: b[start..<Int(e)])
        start = Int(e)
        if ascii {
          body(i, String(decoding: piece, as: UTF8.self))
        } else if let s = String(validating: piece, as: UTF8.self) {
          body(i, s)
        } else {
          return false
        }
      }
      return true
    }
    guard valid else { throw DecodeError(description: "V2 image: a string is not valid UTF-8") }
    return ends.count
  }

  /// A map by ascending key: the keys, then the values.
  static func writeMap(_ m: [Int32: Int64], to w: inout ImageWriter) {
    let keys = m.keys.sorted()
    w.array(keys)
    w.array(keys.map { m[$0]! })
  }

  /// A map `writeMap` wrote, its keys in `0..<keys`.
  static func readMap(from r: inout ImageReader, keys limit: Int) throws(DecodeError) -> [Int32: Int64] {
    let keys = try r.array(of: Int32.self, maxCount: limit)
    let values = try r.array(of: Int64.self, maxCount: keys.count)
    try checkAscendingIds(keys, below: limit)
    guard values.count == keys.count else {
      throw DecodeError(description: "V2 image: map of unequal halves")
    }
    var m: [Int32: Int64] = [:]
    m.reserveCapacity(keys.count)
    for (k, v) in zip(keys, values) { m[k] = v }
    return m
  }

  /// Lists by ascending key: the keys, each list's length, then the lists one after another.
  static func writeLists(_ m: [Int32: [Int32]], to w: inout ImageWriter) {
    let keys = m.keys.sorted()
    w.array(keys)
    w.array(keys.map { Int32(m[$0]!.count) })
    w.array(keys.flatMap { m[$0]! })
  }

  /// Lists `writeLists` wrote, every element in `0..<values`.
  static func readLists(from r: inout ImageReader, values limit: Int) throws(DecodeError) -> [Int32: [Int32]]
  {
    let keys = try r.array(of: Int32.self)
    let counts = try r.array(of: Int32.self, maxCount: keys.count)
    let flat = try r.array(of: Int32.self)
    guard counts.count == keys.count, zip(keys, keys.dropFirst()).allSatisfy({ $0 < $1 }) else {
      throw DecodeError(description: "V2 image: lists of unordered or missing keys")
    }
    try checkIds(flat, below: limit)
    var m: [Int32: [Int32]] = [:]
    var start = 0
    for (k, n) in zip(keys, counts) {
      guard n >= 0, Int(n) <= flat.count - start else {
        throw DecodeError(description: "V2 image: list lengths beyond their elements")
      }
      m[k] = Array(flat[start..<start + Int(n)])
      start += Int(n)
    }
    guard start == flat.count else { throw DecodeError(description: "V2 image: list elements left over") }
    return m
  }

  static func checkIds(_ ids: [Int32], below limit: Int) throws(DecodeError) {
    let bad = ids.withUnsafeBufferPointer { b in b.contains { $0 < 0 || Int($0) >= limit } }
    if bad { throw DecodeError(description: "V2 image: a row id beyond its table's \(limit) rows") }
  }

  static func checkAscendingIds(_ ids: [Int32], below limit: Int) throws(DecodeError) {
    try checkIds(ids, below: limit)
    guard zip(ids, ids.dropFirst()).allSatisfy({ $0 < $1 }) else {
      throw DecodeError(description: "V2 image: map keys out of order")
    }
  }

  // MARK: - Load

  public static func loadImage(from r: inout ImageReader, plantedFault: PlantedFault?) throws(DecodeError)
    -> V2Kernel?
  {
    try r.expect("V2IMAGE")
    let version = try r.i64()
    guard version == imageVersion else {
      throw DecodeError(description: "V2 image version \(version), this build reads \(imageVersion)")
    }
    let fault = try r.string()
    guard fault == (plantedFault?.rawValue ?? "") else {
      throw DecodeError(description: "V2 image of planted fault '\(fault)' offered to another kernel")
    }

    try r.expect("reference")
    let dates = try r.array(of: Int32.self)
    let rates = try r.array(of: UInt64.self)
    let bounds = try r.array(of: Int.self)
    let fees = try V2FeeSchedule(dates: dates, rates: rates, bounds: bounds)
    let calendar = try r.array(of: Int32.self)
    guard zip(calendar, calendar.dropFirst()).allSatisfy({ $0 < $1 }) else {
      throw DecodeError(description: "V2 image: calendar out of order")
    }
    var k = V2Kernel(imageFees: fees, calendar: calendar, plantedFault: plantedFault)

    try r.expect("globals")
    k.globals = GlobalRecord(
      dayOpen: try r.bool(), lastOpened: try r.i32(), nextLotCreation: try r.i64(), appliedSeq: try r.i64())

    let idsMax = 1 << 24
    try r.expect("participants")
    for _ in 0..<(try r.count(max: idsMax)) {
      k.participants.append(
        ParticipantRecord(id: try r.ident(), name: try r.string(), balance: try readInt128(from: &r)))
    }

    try r.expect("units")
    for _ in 0..<(try r.count(max: idsMax)) {
      let unit = UnitRecord(id: try r.ident(), participant: try r.i32())
      guard unit.participant >= 0, Int(unit.participant) < k.participants.count else {
        throw DecodeError(description: "V2 image: unit of participant \(unit.participant)")
      }
      k.units.append(unit)
    }

    try r.expect("accounts")
    k.accountKind = try r.array(of: UInt8.self, maxCount: Int(Int32.max))
    guard !k.accountKind.contains(where: { AccountKind(rawValue: $0) == nil }) else {
      throw DecodeError(description: "V2 image: an account kind is none")
    }
    k.accounts.reserveCapacity(k.accountKind.count)
    let accountCount = try readStrings(from: &r, maxCount: k.accountKind.count) { i, id in
      k.accounts.append(AccountRecord(id: Ident(id), kind: AccountKind(rawValue: k.accountKind[i])!))
    }
    guard accountCount == k.accountKind.count else {
      throw DecodeError(description: "V2 image: \(accountCount) accounts of \(k.accountKind.count) kinds")
    }
    k.accountsAscending = try r.bool()

    try r.expect("securities")
    for _ in 0..<(try r.count(max: idsMax)) {
      let code = try r.ident()
      let isin = try r.string()
      let name = try r.string()
      let raw = try r.u8()
      guard let kind = SecurityKind(rawValue: raw) else {
        throw DecodeError(description: "V2 image: security kind \(raw)")
      }
      k.securities.append(
        SecurityRecord(code: code, isin: isin, name: name, kind: kind, issuedQuantity: try r.i64()))
    }

    try r.expect("positions")
    k.positions = try readPositions(from: &r)
    k.pendingPositions = try r.array(of: Int32.self)
    k.pool.lots = try readLots(from: &r)
    let freeLists = try r.count(max: 64)
    guard freeLists == k.pool.free.count else {
      throw DecodeError(description: "V2 image: \(freeLists) free lists of lots")
    }
    for log in 0..<freeLists {
      let list = try r.array(of: Int32.self)
      guard list.isEmpty || (log < 31 && !list.contains { $0 < 0 || Int($0) + 1 << log > k.pool.lots.count })
      else { throw DecodeError(description: "V2 image: a free lot segment beyond the pool") }
      k.pool.free[log] = list
    }
    try k.checkPositions()

    try r.expect("clearing")
    k.clearingRows = try r.array(of: V2ClearingImage.self, maxCount: Int(Int32.max)).map(\.record)

    try r.expect("settlement")
    for _ in 0..<(try r.count(max: Int(Int32.max))) {
      let tradeDate = try r.i32()
      let participant = try r.i32()
      let netFen = try readInt128(from: &r)
      let liveSides = try r.i32()
      let raw = try r.u8()
      guard let status = SettlementStatus(rawValue: raw) else {
        throw DecodeError(description: "V2 image: settlement status \(raw)")
      }
      k.settlementRows.append(
        SettlementRecord(
          tradeDate: tradeDate, participant: participant, netFen: netFen, liveSides: liveSides,
          status: status,
          settledOn: try r.i32()))
    }

    try r.expect("trades")
    k.trades = try readTrades(from: &r)
    try readStrings(from: &r, maxCount: k.trades.count) { k.tradeIdTexts.append($1) }
    k.tradeTax = try readMap(from: &r, keys: k.trades.count)
    k.tradeWithheld = try readMap(from: &r, keys: k.trades.count)
    let overridden = try r.array(of: Int32.self, maxCount: k.trades.count)
    try checkAscendingIds(overridden, below: k.trades.count)
    let figures = try r.array(of: Int64.self, maxCount: 12 * overridden.count)
    guard figures.count == 12 * overridden.count else {
      throw DecodeError(description: "V2 image: clearing overrides without their figures")
    }
    for (j, t) in overridden.enumerated() {
      let f = figures[12 * j..<12 * j + 12].map { $0 }
      k.clearingOverrides[t] = TradeClearing(
        amountFen: f[0], buyerFees: SideFees(handling: f[1], regulatory: f[2], transfer: f[3], stamp: f[4]),
        sellerFees: SideFees(handling: f[5], regulatory: f[6], transfer: f[7], stamp: f[8]),
        buyerNetFen: f[9],
        sellerNetFen: f[10], buyerAvailableNow: f[11])
    }

    try r.expect("slices")
    k.slices = try readSlices(from: &r)
    k.sliceAccrued = try readMap(from: &r, keys: k.slices.count)

    try r.expect("actions")
    for _ in 0..<(try r.count(max: Int(Int32.max))) {
      let security = try r.i32()
      let recordDate = try r.i32()
      let payDate = try r.i32()
      let raw = try r.u8()
      guard let kind = ActionKind(rawValue: raw) else {
        throw DecodeError(description: "V2 image: action kind \(raw)")
      }
      k.actions.append(
        ActionRecord(
          security: security, recordDate: recordDate, payDate: payDate, kind: kind,
          perShareMicro: try r.i64(),
          base: try r.i64(), bonus: try r.i64(), executed: try r.bool()))
    }

    try r.expect("entitlements")
    let entitlements = try r.array(of: V2EntitlementImage.self, maxCount: Int(Int32.max))
    k.entitlements.reserveCapacity(entitlements.count)
    for e in entitlements {
      guard let kind = EntitlementKind(rawValue: UInt8(truncatingIfNeeded: e.kind)), e.kind >= 0, e.kind <= 1,
        e.credited == 0 || e.credited == 1
      else { throw DecodeError(description: "V2 image: entitlement kind \(e.kind) or flag \(e.credited)") }
      k.entitlements.append(
        EntitlementRecord(
          security: e.security, recordDate: e.recordDate, payDate: e.payDate, account: e.account, kind: kind,
          value: e.value, credited: e.credited == 1))
    }

    try r.expect("rejections")
    for _ in 0..<(try r.count(max: Int(Int32.max))) {
      let seq = try r.i64()
      let record = try r.string()
      let ref = try r.string()
      let raw = try r.u8()
      guard let reason = RejectReason(rawValue: raw) else {
        throw DecodeError(description: "V2 image: reject reason \(raw)")
      }
      k.rejections.append(RejectionRecord(seq: seq, record: record, ref: ref, reason: reason))
    }

    try r.expect("days")
    for _ in 0..<(try r.count(max: 1 << 15)) {
      k.days.append(
        DayRecord(
          date: try r.i32(), closed: try r.bool(), settled: try r.bool(), tradeStart: try r.i32(),
          tradeEnd: try r.i32()))
    }
    try k.checkRows()

    try r.expect("indexes")
    if try r.bool() {
      let accounts = k.accounts
      k.accountIx = try KeyBytesTable.loadImageIds(from: &r, ids: accounts.count, digitRuns: false) {
        accounts[Int($0)].id.text
      }
    } else {
      k.accountIx = try KeyBytesTable.loadImage(from: &r, ids: k.accounts.count, digitRuns: false)
    }
    let rows = k.positions
    k.positionIx = try IntKeyTable.loadImageValues(from: &r, values: rows.count) {
      positionKey(rows[Int($0)].account, rows[Int($0)].security)
    }
    k.tradeIds = try TradeIdIndex.loadImage(from: &r, trades: k.trades.count, days: k.days.count)
    guard k.accountIx.count == k.accounts.count, k.positionIx.count == k.positions.count else {
      throw DecodeError(description: "V2 image: account or position index of another size than its table")
    }
    let listed = try r.array(of: Int32.self, maxCount: k.securities.count)
    let flat = try r.array(of: Int32.self)
    k.positionsListed = try r.array(of: Int.self, maxCount: k.securities.count)
    guard listed.count == k.securities.count, k.positionsListed.count == k.securities.count,
      !k.positionsListed.contains(where: { $0 < 0 || $0 > k.positions.count })
    else { throw DecodeError(description: "V2 image: per-security position lists of another size") }
    try checkIds(flat, below: k.positions.count)
    var start = 0
    k.positionsOfSecurity.reserveCapacity(listed.count)
    for n in listed {
      guard n >= 0, Int(n) <= flat.count - start else {
        throw DecodeError(description: "V2 image: per-security position lists beyond their elements")
      }
      k.positionsOfSecurity.append(Array(flat[start..<start + Int(n)]))
      start += Int(n)
    }
    guard start == flat.count else {
      throw DecodeError(description: "V2 image: position list elements left over")
    }
    k.actionsByRecordDate = try readLists(from: &r, values: k.actions.count)
    k.creditsByPayDate = try readLists(from: &r, values: k.entitlements.count)

    try r.expect("tracking")
    k.tracking = try r.bool()
    let tables = k.watermark.count
    k.watermark = try r.array(of: Int.self, maxCount: tables)
    guard k.watermark.count == tables, try r.count(max: tables) == tables else {
      throw DecodeError(description: "V2 image: change tracking of another number of tables")
    }
    for t in 0..<tables {
      k.modified[t] = try r.array(of: Int32.self)
      try checkIds(k.modified[t], below: k.watermark[t])
    }
    guard try r.count(max: tables) == tables else {
      throw DecodeError(description: "V2 image: change bits of another number of tables")
    }
    for t in 0..<tables {
      k.modifiedBits[t] = try r.array(of: UInt64.self)
      guard k.watermark[t] >= 0, k.modifiedBits[t].count >= (k.watermark[t] + 63) / 64 else {
        throw DecodeError(description: "V2 image: change bits shorter than table \(t)'s rows")
      }
    }
    for table in StateTable.allCases where k.watermark[Int(table.rawValue)] > k.rowCount(table) {
      throw DecodeError(description: "V2 image: \(table.name) watermark beyond the table")
    }

    try r.expect("end")
    guard r.isAtEnd else { throw DecodeError(description: "V2 image: bytes after its end") }

    try k.rebuildSmallIndexes()
    // Rows existing now are named by the snapshot a stream starts from (effects are off).
    k.markAllKeyed()
    return k
  }

  // MARK: - Checks

  /// Positions refer to existing accounts and securities; their lots lie in their
  /// segment, inside the pool, and add up to their quantity; the pending flag is a
  /// flag; pending ids are positions.
  func checkPositions() throws(DecodeError) {
    let pendingOffset = MemoryLayout<V2Position>.offset(of: \V2Position.pending)!
    let stride = MemoryLayout<V2Position>.stride
    let lotCount = pool.lots.count
    // One pass (the rows are read once: ~140 MB on the 1M-account day). Also what the
    // apply relies on without checking again (its preconditions): each position's
    // counts (quantity ≥ available + withheld, both ≥ 0) and its live lots, each of a
    // positive quantity, adding up to its quantity. The pending flag's byte is checked
    // before the row is read as a `V2Position`.
    let bad = positions.withUnsafeBufferPointer { pos -> Int? in
      pool.lots.withUnsafeBufferPointer { lots -> Int? in
        guard let first = pos.baseAddress else { return nil }
        let raw = UnsafeRawPointer(first)
        for i in 0..<pos.count {
          if raw.load(fromByteOffset: i &* stride &+ pendingOffset, as: UInt8.self) > 1 { return i }
          let p = pos[i]
          if p.account < 0 || Int(p.account) >= accounts.count || p.security < 0
            || Int(p.security) >= securities.count || p.quantity < 0 || p.available < 0 || p.withheld < 0
            || p.available > p.quantity - p.withheld
          {
            return i
          }
          let capacity = p.lotLog == V2Position.noSegment ? 0 : (p.lotLog <= 30 ? 1 << Int(p.lotLog) : -1)
          if capacity < 0 || p.lotBase < 0 || Int(p.lotBase) + capacity > lotCount || p.lotHead < p.lotBase
            || p.lotEnd < p.lotHead || Int(p.lotEnd) > Int(p.lotBase) + capacity
          {
            return i
          }
          var sum: Int64 = 0
          for j in Int(p.lotHead)..<Int(p.lotEnd) {
            let q = lots[j].quantity
            if q <= 0 || q > Int64.max - sum { return i }
            sum += q
          }
          if sum != p.quantity { return i }
        }
        return nil
      }
    }
    if let i = bad { throw DecodeError(description: "V2 image: position \(i) malformed") }
    try Self.checkIds(pendingPositions, below: positions.count)
  }

  /// Every row id a row holds lies in its table; days hold their trades in order.
  func checkRows() throws(DecodeError) {
    let p = participants.count
    let s = securities.count
    let a = accounts.count
    func inRange(_ v: Int32, _ n: Int) -> Bool { v >= 0 && Int(v) < n }
    for c in clearingRows where !inRange(c.participant, p) || !inRange(c.security, s) {
      throw DecodeError(description: "V2 image: clearing row of participant \(c.participant)")
    }
    for x in settlementRows where !inRange(x.participant, p) {
      throw DecodeError(description: "V2 image: settlement row of participant \(x.participant)")
    }
    for x in actions where !inRange(x.security, s) {
      throw DecodeError(description: "V2 image: action of security \(x.security)")
    }
    for e in entitlements where !inRange(e.security, s) || !inRange(e.account, a) {
      throw DecodeError(description: "V2 image: entitlement of security \(e.security)")
    }
    let texts = tradeIdTexts.count
    let sliceCount = slices.count
    let bad = trades.withUnsafeBufferPointer { rows in
      rows.firstIndex { t in
        let idOK = t.idWord & V2Trade.textTag == 0 || t.idWord & ~V2Trade.textTag < UInt64(texts)
        return !idOK || !inRange(t.security, s) || !inRange(t.buyAccount, a) || !inRange(t.sellAccount, a)
          || !inRange(t.buyParticipant, p) || !inRange(t.sellParticipant, p) || t.sliceStart < 0
          || Int(t.sliceStart) + Int(t.sliceCount) > sliceCount
      }
    }
    if let t = bad { throw DecodeError(description: "V2 image: trade \(t) out of range") }
    // Days in order, each holding the trades of its date, the last up to the end.
    var next: Int32 = 0
    for d in days {
      guard d.tradeStart == next, d.tradeEnd >= d.tradeStart, Int(d.tradeEnd) <= trades.count else {
        throw DecodeError(description: "V2 image: day \(d.date) holds trades out of order")
      }
      for t in Int(d.tradeStart)..<Int(d.tradeEnd) where trades[t].date != d.date {
        throw DecodeError(description: "V2 image: trade \(t) not of its day \(d.date)")
      }
      next = d.tradeEnd
    }
    guard Int(next) == trades.count else { throw DecodeError(description: "V2 image: trades of no day") }
    // An open day is the last one; lot creation numbers stay within V2Lot's 32 bits.
    guard !globals.dayOpen || days.last?.date == globals.lastOpened,
      globals.nextLotCreation >= 0, globals.nextLotCreation <= Int64(Int32.max) + 1
    else { throw DecodeError(description: "V2 image: globals do not match the days") }
  }

  /// The indexes the image leaves out, from the rows (as `rebuildDerived`, checked).
  mutating func rebuildSmallIndexes() throws(DecodeError) {
    for p in participants { participantIx.insert(p.id.text) }
    for u in units { unitIx.insert(u.id.text) }
    for s in securities { securityIx.insert(s.code.text) }
    securityKind = securities.map(\.kind)
    guard positionsOfSecurity.count == securities.count else {
      throw DecodeError(description: "V2 image: position lists of another number of securities")
    }
    for (i, d) in days.enumerated() {
      guard dayIx[Int64(d.date)] == nil else {
        throw DecodeError(description: "V2 image: day \(d.date) twice")
      }
      dayIx.insert(Int64(d.date), Int32(i))
    }
    guard participants.count < 1 << 24, securities.count < 1 << 24, days.count < 1 << 15 else {
      throw DecodeError(description: "V2 image: beyond the key space of clearing rows")
    }
    for (i, c) in clearingRows.enumerated() {
      guard let day = dayIx[Int64(c.tradeDate)] else {
        throw DecodeError(description: "V2 image: clearing row \(i) of a day never opened")
      }
      let key = Self.clearingKey(day: day, participant: c.participant, security: c.security)
      guard clearingIx[key] == nil else {
        throw DecodeError(description: "V2 image: clearing row \(i) twice")
      }
      clearingIx.insert(key, Int32(i))
    }
    for (i, s) in settlementRows.enumerated() {
      guard let day = dayIx[Int64(s.tradeDate)] else {
        throw DecodeError(description: "V2 image: settlement row \(i) of a day never opened")
      }
      let key = Self.settlementKey(day: day, participant: s.participant)
      guard settlementIx[key] == nil else {
        throw DecodeError(description: "V2 image: settlement row \(i) twice")
      }
      settlementIx.insert(key, Int32(i))
    }
  }
}
