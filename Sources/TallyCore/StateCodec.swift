// The one canonical binary encoding of the business state: little-endian
// fixed-width integers, strings as a u32 byte count and their UTF-8 bytes.
// Equal states encode to equal bytes in any process, so digests compare across
// replicas, and the durable store keeps rows in exactly this form.

public struct ByteWriter {
  public private(set) var bytes: [UInt8] = []

  public init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

  /// Bytes written so far.
  @inline(__always) public var count: Int { bytes.count }

  /// Forgets the bytes, keeps the capacity (one writer reused for millions of rows).
  @inline(__always) public mutating func reset() { bytes.removeAll(keepingCapacity: true) }

  @inline(__always) public mutating func u8(_ v: UInt8) { bytes.append(v) }
  @inline(__always) public mutating func bool(_ v: Bool) { bytes.append(v ? 1 : 0) }
  @inline(__always) public mutating func i32(_ v: Int32) {
    withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
  }
  @inline(__always) public mutating func i64(_ v: Int64) {
    withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
  }
  public mutating func i128(_ v: Int128) {
    i64(Int64(truncatingIfNeeded: v))
    i64(Int64(truncatingIfNeeded: v >> 64))
  }
  public mutating func string(_ s: String) {
    i32(Int32(s.utf8.count))
    bytes.append(contentsOf: s.utf8)
  }
  public mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }
}

public struct DecodeError: Error, CustomStringConvertible, Sendable {
  public var description: String
  public init(description: String) { self.description = description }
}

public struct ByteReader {
  private let bytes: [UInt8]
  private var i = 0

  public init(_ bytes: [UInt8]) { self.bytes = bytes }

  public var isAtEnd: Bool { i == bytes.count }

  public mutating func bytes(_ n: Int) throws(DecodeError) -> [UInt8] { Array(try take(n)) }

  mutating func take(_ n: Int) throws(DecodeError) -> ArraySlice<UInt8> {
    guard n >= 0, i + n <= bytes.count else {
      throw DecodeError(description: "record truncated at byte \(i) (needs \(n) of \(bytes.count - i))")
    }
    defer { i += n }
    return bytes[i..<(i + n)]
  }
  public mutating func u8() throws(DecodeError) -> UInt8 { try take(1).first! }
  public mutating func bool() throws(DecodeError) -> Bool { try u8() != 0 }
  public mutating func i32() throws(DecodeError) -> Int32 {
    var u: UInt32 = 0
    for (k, b) in try take(4).enumerated() { u |= UInt32(b) << UInt32(8 * k) }
    return Int32(bitPattern: u)
  }
  public mutating func i64() throws(DecodeError) -> Int64 {
    var u: UInt64 = 0
    for (k, b) in try take(8).enumerated() { u |= UInt64(b) << UInt64(8 * k) }
    return Int64(bitPattern: u)
  }
  public mutating func i128() throws(DecodeError) -> Int128 {
    let low = UInt64(bitPattern: try i64())
    let high = try i64()
    return Int128(high) << 64 | Int128(low)
  }
  public mutating func string() throws(DecodeError) -> String {
    let n = Int(try i32())
    let slice = try take(n)
    guard let s = String(validating: slice, as: UTF8.self) else {
      throw DecodeError(description: "string is not UTF-8")
    }
    return s
  }
  mutating func enumeration<E: RawRepresentable>(_ type: E.Type) throws(DecodeError) -> E
  where E.RawValue == UInt8 {
    let raw = try u8()
    guard let e = E(rawValue: raw) else { throw DecodeError(description: "bad \(E.self) value \(raw)") }
    return e
  }
}

/// A table row that has a canonical encoding.
public protocol CanonicalRow {
  func encode(into w: inout ByteWriter)
  init(from r: inout ByteReader) throws(DecodeError)
}

extension SideFees {
  func encode(into w: inout ByteWriter) {
    w.i64(handling)
    w.i64(regulatory)
    w.i64(transfer)
    w.i64(stamp)
  }
  init(from r: inout ByteReader) throws(DecodeError) {
    self.init(handling: try r.i64(), regulatory: try r.i64(), transfer: try r.i64(), stamp: try r.i64())
  }
}

extension ParticipantRecord: CanonicalRow {
  public func encode(into w: inout ByteWriter) {
    w.string(id.text)
    w.string(name)
    w.i128(balance)
  }
  public init(from r: inout ByteReader) throws(DecodeError) {
    self.init(id: Ident(try r.string()), name: try r.string(), balance: try r.i128())
  }
}

extension UnitRecord: CanonicalRow {
  public func encode(into w: inout ByteWriter) {
    w.string(id.text)
    w.i32(participant)
  }
  public init(from r: inout ByteReader) throws(DecodeError) {
    self.init(id: Ident(try r.string()), participant: try r.i32())
  }
}

extension AccountRecord: CanonicalRow {
  public func encode(into w: inout ByteWriter) {
    w.string(id.text)
    w.u8(kind.rawValue)
  }
  public init(from r: inout ByteReader) throws(DecodeError) {
    self.init(id: Ident(try r.string()), kind: try r.enumeration(AccountKind.self))
  }
}

extension SecurityRecord: CanonicalRow {
  public func encode(into w: inout ByteWriter) {
    w.string(code.text)
    w.string(isin)
    w.string(name)
    w.u8(kind.rawValue)
    w.i64(issuedQuantity)
  }
  public init(from r: inout ByteReader) throws(DecodeError) {
    self.init(
      code: Ident(try r.string()), isin: try r.string(), name: try r.string(),
      kind: try r.enumeration(SecurityKind.self), issuedQuantity: try r.i64())
  }
}

extension Lot: CanonicalRow {
  public func encode(into w: inout ByteWriter) {
    w.i32(acquired)
    w.i64(creation)
    w.i64(accruedMicro)
    w.i64(quantity)
  }
  public init(from r: inout ByteReader) throws(DecodeError) {
    self.init(acquired: try r.i32(), creation: try r.i64(), accruedMicro: try r.i64(), quantity: try r.i64())
  }
}

extension PositionRecord {
  /// The canonical encoding of a position carries its lots (oldest first), from the pool.
  func encode(lots pool: LotPool, into w: inout ByteWriter) {
    w.i32(account)
    w.i32(security)
    w.i64(quantity)
    w.i64(available)
    w.i64(withheld)
    var count: Int32 = 0
    var slot = firstLot
    while slot != LotPool.none {
      count += 1
      slot = pool.next(after: slot)
    }
    w.i32(count)
    slot = firstLot
    while slot != LotPool.none {
      pool[slot].encode(into: &w)
      slot = pool.next(after: slot)
    }
  }

  /// Decodes a position, putting its lots into `pool`.
  init(from r: inout ByteReader, lots pool: inout LotPool) throws(DecodeError) {
    self.init(
      account: try r.i32(), security: try r.i32(), quantity: try r.i64(), available: try r.i64(),
      withheld: try r.i64())
    let count = Int(try r.i32())
    guard count >= 0 && count < 1 << 24 else { throw DecodeError(description: "bad lot count \(count)") }
    for _ in 0..<count {
      let slot = pool.allocate(try Lot(from: &r))
      var (first, last) = (firstLot, lastLot)
      pool.link(slot, after: last, first: &first, last: &last)
      (firstLot, lastLot) = (first, last)
    }
  }
}

extension ClearingRecord: CanonicalRow {
  public func encode(into w: inout ByteWriter) {
    w.i32(tradeDate)
    w.i32(participant)
    w.i32(security)
    w.i64(buyQuantity)
    w.i64(sellQuantity)
    w.i128(buyAmount)
    w.i128(sellAmount)
    fees.encode(into: &w)
  }
  public init(from r: inout ByteReader) throws(DecodeError) {
    self.init(
      tradeDate: try r.i32(), participant: try r.i32(), security: try r.i32(), buyQuantity: try r.i64(),
      sellQuantity: try r.i64(), buyAmount: try r.i128(), sellAmount: try r.i128(),
      fees: try SideFees(from: &r))
  }
}

extension SettlementRecord: CanonicalRow {
  public func encode(into w: inout ByteWriter) {
    w.i32(tradeDate)
    w.i32(participant)
    w.i128(netFen)
    w.i32(liveSides)
    w.u8(status.rawValue)
    w.i32(settledOn)
  }
  public init(from r: inout ByteReader) throws(DecodeError) {
    self.init(
      tradeDate: try r.i32(), participant: try r.i32(), netFen: try r.i128(), liveSides: try r.i32(),
      status: try r.enumeration(SettlementStatus.self), settledOn: try r.i32())
  }
}

extension TradeRecord: CanonicalRow {
  public func encode(into w: inout ByteWriter) {
    w.string(tradeId.text)
    w.i32(date)
    w.i32(security)
    w.i64(quantity)
    w.i32(buyAccount)
    w.i32(sellAccount)
    w.i32(buyParticipant)
    w.i32(sellParticipant)
    w.i64(clearing.amountFen)
    clearing.buyerFees.encode(into: &w)
    clearing.sellerFees.encode(into: &w)
    w.i64(clearing.buyerNetFen)
    w.i64(clearing.sellerNetFen)
    w.i64(clearing.buyerAvailableNow)
    w.i64(taxFen)
    w.bool(cancelled)
    w.i64(withheld)
    w.i32(sliceStart)
    w.i32(sliceCount)
  }
  public init(from r: inout ByteReader) throws(DecodeError) {
    let tradeId = Ident(try r.string())
    let date = try r.i32()
    let security = try r.i32()
    let quantity = try r.i64()
    let buyAccount = try r.i32()
    let sellAccount = try r.i32()
    let buyParticipant = try r.i32()
    let sellParticipant = try r.i32()
    let clearing = TradeClearing(
      amountFen: try r.i64(), buyerFees: try SideFees(from: &r), sellerFees: try SideFees(from: &r),
      buyerNetFen: try r.i64(), sellerNetFen: try r.i64(), buyerAvailableNow: try r.i64())
    self.init(
      tradeId: tradeId, date: date, security: security, quantity: quantity, buyAccount: buyAccount,
      sellAccount: sellAccount, buyParticipant: buyParticipant, sellParticipant: sellParticipant,
      clearing: clearing, taxFen: try r.i64(), cancelled: try r.bool(), withheld: try r.i64(),
      sliceStart: try r.i32(), sliceCount: try r.i32())
  }
}

extension ActionRecord: CanonicalRow {
  public func encode(into w: inout ByteWriter) {
    w.i32(security)
    w.i32(recordDate)
    w.i32(payDate)
    w.u8(kind.rawValue)
    w.i64(perShareMicro)
    w.i64(base)
    w.i64(bonus)
    w.bool(executed)
  }
  public init(from r: inout ByteReader) throws(DecodeError) {
    self.init(
      security: try r.i32(), recordDate: try r.i32(), payDate: try r.i32(),
      kind: try r.enumeration(ActionKind.self),
      perShareMicro: try r.i64(), base: try r.i64(), bonus: try r.i64(), executed: try r.bool())
  }
}

extension EntitlementRecord: CanonicalRow {
  public func encode(into w: inout ByteWriter) {
    w.i32(security)
    w.i32(recordDate)
    w.i32(payDate)
    w.i32(account)
    w.u8(kind.rawValue)
    w.i64(value)
    w.bool(credited)
  }
  public init(from r: inout ByteReader) throws(DecodeError) {
    self.init(
      security: try r.i32(), recordDate: try r.i32(), payDate: try r.i32(), account: try r.i32(),
      kind: try r.enumeration(EntitlementKind.self), value: try r.i64(), credited: try r.bool())
  }
}

extension RejectionRecord: CanonicalRow {
  public func encode(into w: inout ByteWriter) {
    w.i64(seq)
    w.string(record)
    w.string(ref)
    w.u8(reason.rawValue)
  }
  public init(from r: inout ByteReader) throws(DecodeError) {
    self.init(
      seq: try r.i64(), record: try r.string(), ref: try r.string(),
      reason: try r.enumeration(RejectReason.self))
  }
}

extension DayRecord: CanonicalRow {
  public func encode(into w: inout ByteWriter) {
    w.i32(date)
    w.bool(closed)
    w.bool(settled)
    w.i32(tradeStart)
    w.i32(tradeEnd)
  }
  public init(from r: inout ByteReader) throws(DecodeError) {
    self.init(
      date: try r.i32(), closed: try r.bool(), settled: try r.bool(), tradeStart: try r.i32(),
      tradeEnd: try r.i32())
  }
}

extension GlobalRecord: CanonicalRow {
  public func encode(into w: inout ByteWriter) {
    w.bool(dayOpen)
    w.i32(lastOpened)
    w.i64(nextLotCreation)
    w.i64(appliedSeq)
  }
  public init(from r: inout ByteReader) throws(DecodeError) {
    self.init(
      dayOpen: try r.bool(), lastOpened: try r.i32(), nextLotCreation: try r.i64(), appliedSeq: try r.i64())
  }
}

/// The tables of the state, each with a stable one-byte tag (the key prefix in stores).
public enum StateTable: UInt8, CaseIterable, Sendable {
  case globals = 1, participants, units, accounts, securities, positions, clearing, settlement, trades
  case slices, actions, entitlements, rejections, days

  public var name: String {
    switch self {
    case .globals: return "globals"
    case .participants: return "participants"
    case .units: return "units"
    case .accounts: return "accounts"
    case .securities: return "securities"
    case .positions: return "positions"
    case .clearing: return "clearing"
    case .settlement: return "settlement"
    case .trades: return "trades"
    case .slices: return "slices"
    case .actions: return "actions"
    case .entitlements: return "entitlements"
    case .rejections: return "rejections"
    case .days: return "days"
    }
  }
}

extension TallyState {
  /// Visits every row of the business state in canonical order (table tag, then row id)
  /// with its encoding. The digest and a full snapshot are built from this. One writer
  /// serves every row: `body` must not keep the bytes beyond the call (a copy is fine).
  public func forEachEncodedRow(_ body: (StateTable, Int32, [UInt8]) -> Void) {
    var w = ByteWriter(capacity: 256)
    func visit<R: CanonicalRow>(_ tag: StateTable, _ table: Table<R>) {
      for i in table.indices {
        w.reset()
        table.rows[i].encode(into: &w)
        body(tag, Int32(i), w.bytes)
      }
    }
    globals.encode(into: &w)
    body(.globals, 0, w.bytes)
    visit(.participants, participants)
    visit(.units, units)
    visit(.accounts, accounts)
    visit(.securities, securities)
    for i in positions.indices {
      w.reset()
      positions.rows[i].encode(lots: lotPool, into: &w)
      body(.positions, Int32(i), w.bytes)
    }
    visit(.clearing, clearingRows)
    visit(.settlement, settlementRows)
    visit(.trades, trades)
    visit(.slices, slices)
    visit(.actions, actions)
    visit(.entitlements, entitlements)
    visit(.rejections, rejections)
    visit(.days, days)
  }

  /// Rows changed since the last call, in canonical order, encoded one after another
  /// into `w` (no array per row); `body` gets each row's table, id and byte range in
  /// `w.bytes`. Forgets them.
  public mutating func takeChangedRows(
    into w: inout ByteWriter, _ body: (StateTable, Int32, Range<Int>) -> Void
  ) {
    func visit<R: CanonicalRow>(_ tag: StateTable, _ table: inout Table<R>, _ w: inout ByteWriter) {
      for i in table.takeDirty() {
        let start = w.count
        table[i].encode(into: &w)
        body(tag, i, start..<w.count)
      }
    }
    if globalsDirty {
      let start = w.count
      globals.encode(into: &w)
      body(.globals, 0, start..<w.count)
      globalsDirty = false
    }
    visit(.participants, &participants, &w)
    visit(.units, &units, &w)
    visit(.accounts, &accounts, &w)
    visit(.securities, &securities, &w)
    for i in positions.takeDirty() {
      let start = w.count
      positions[i].encode(lots: lotPool, into: &w)
      body(.positions, i, start..<w.count)
    }
    visit(.clearing, &clearingRows, &w)
    visit(.settlement, &settlementRows, &w)
    visit(.trades, &trades, &w)
    visit(.slices, &slices, &w)
    visit(.actions, &actions, &w)
    visit(.entitlements, &entitlements, &w)
    visit(.rejections, &rejections, &w)
    visit(.days, &days, &w)
  }

  /// Rows changed since the last call, each in its own array; forgets them.
  public mutating func takeChangedRows(_ body: (StateTable, Int32, [UInt8]) -> Void) {
    var w = ByteWriter(capacity: 4096)
    var rows: [(StateTable, Int32, Range<Int>)] = []
    takeChangedRows(into: &w) { rows.append(($0, $1, $2)) }
    for (table, id, range) in rows { body(table, id, Array(w.bytes[range])) }
  }

  /// Forgets which rows changed (a state whose rows are known to the store another way).
  public mutating func forgetChanges() {
    globalsDirty = false
    setChangeTracking(false)
    setChangeTracking(true)
  }
}
