// The one canonical binary encoding of the business state: little-endian
// fixed-width integers, strings as a u32 byte count and their UTF-8 bytes.
// Equal states encode to equal bytes in any process, so digests compare across
// replicas, and the durable store keeps rows in exactly this form.

public struct ByteWriter {
  public private(set) var bytes: [UInt8] = []

  public init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

  /// Bytes written so far.
  @inline(__always) public var count: Int { bytes.count }

  /// Room for `n` bytes in all without growing (a writer of hundreds of megabytes grown by
  /// doubling touches twice the memory and copies it).
  public mutating func reserveCapacity(_ n: Int) { bytes.reserveCapacity(n) }

  /// Forgets the bytes, keeps the capacity (one writer reused for millions of rows).
  @inline(__always) public mutating func reset() { bytes.removeAll(keepingCapacity: true) }

  /// Forgets the bytes from `count` on, keeps the capacity (a row encoded to be hashed
  /// and not kept).
  @inline(__always) public mutating func truncate(to count: Int) {
    precondition(count >= 0 && count <= bytes.count, "a writer is truncated within its bytes")
    bytes.removeLast(bytes.count - count)
  }

  /// The most bytes `packed` writes at once.
  public static let packedBytesMax = 64

  /// `n` bytes of fixed fields, stored by `body` at offsets in a scratch buffer (the
  /// same little-endian bytes `i32`/`i64` append) and appended in one copy: a record's
  /// fields one byte-append each were the largest part of encoding a snapshot's
  /// millions of rows (perf, twenty-eighth session).
  @inline(__always) public mutating func packed(_ n: Int, _ body: (inout PackedFields) -> Void) {
    precondition(n >= 0 && n <= Self.packedBytesMax, "packed fields of at most \(Self.packedBytesMax) bytes")
    var fields = PackedFields()
    body(&fields)
    withUnsafeBytes(of: &fields.storage) {
      bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: $0[0..<n]))
    }
  }

  @inline(__always) public mutating func u8(_ v: UInt8) { bytes.append(v) }
  @inline(__always) public mutating func bool(_ v: Bool) { bytes.append(v ? 1 : 0) }
  // Integers byte by byte, low byte first: each `append` of one byte inlines, where
  // `append(contentsOf:)` of the value's bytes was a generic call and a memmove each
  // time (measured alone, `swiftc -O`: integers 2x faster, a loop shaped like the
  // reference fingerprint's, 3.9M rows of two strings and two integers, 15-25% faster;
  // docs/PERFORMANCE.md).
  @inline(__always) public mutating func i32(_ v: Int32) {
    let u = UInt32(bitPattern: v)
    bytes.append(UInt8(truncatingIfNeeded: u))
    bytes.append(UInt8(truncatingIfNeeded: u &>> 8))
    bytes.append(UInt8(truncatingIfNeeded: u &>> 16))
    bytes.append(UInt8(truncatingIfNeeded: u &>> 24))
  }
  @inline(__always) public mutating func i64(_ v: Int64) {
    let u = UInt64(bitPattern: v)
    bytes.append(UInt8(truncatingIfNeeded: u))
    bytes.append(UInt8(truncatingIfNeeded: u &>> 8))
    bytes.append(UInt8(truncatingIfNeeded: u &>> 16))
    bytes.append(UInt8(truncatingIfNeeded: u &>> 24))
    bytes.append(UInt8(truncatingIfNeeded: u &>> 32))
    bytes.append(UInt8(truncatingIfNeeded: u &>> 40))
    bytes.append(UInt8(truncatingIfNeeded: u &>> 48))
    bytes.append(UInt8(truncatingIfNeeded: u &>> 56))
  }
  public mutating func i128(_ v: Int128) {
    i64(Int64(truncatingIfNeeded: v))
    i64(Int64(truncatingIfNeeded: v >> 64))
  }
  public mutating func string(_ s: String) {
    i32(Int32(s.utf8.count))
    // A native string's bytes in one copy (appending the UTF-8 view went a byte at a
    // time through its iterator: 1.7x slower measured alone); others through the view.
    if s.utf8.withContiguousStorageIfAvailable({ bytes.append(contentsOf: $0) }) == nil {
      bytes.append(contentsOf: s.utf8)
    }
  }
  public mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }
  public mutating func raw(_ b: ArraySlice<UInt8>) { bytes.append(contentsOf: b) }
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

  /// Appends the next `n` bytes to `out` (no intermediate array).
  public mutating func append(_ n: Int, to out: inout [UInt8]) throws(DecodeError) {
    out.append(contentsOf: try take(n))
  }

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

/// A scratch buffer of `ByteWriter.packed`: little-endian integers stored at byte offsets.
public struct PackedFields {
  @usableFromInline var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (
    0, 0, 0, 0, 0, 0, 0, 0
  )

  @inlinable public init() {}

  @inline(__always) public mutating func i32(_ v: Int32, at offset: Int) {
    precondition(offset >= 0 && offset + 4 <= ByteWriter.packedBytesMax, "a packed field within the buffer")
    withUnsafeMutableBytes(of: &storage) {
      $0.storeBytes(of: v.littleEndian, toByteOffset: offset, as: Int32.self)
    }
  }

  @inline(__always) public mutating func i64(_ v: Int64, at offset: Int) {
    precondition(offset >= 0 && offset + 8 <= ByteWriter.packedBytesMax, "a packed field within the buffer")
    withUnsafeMutableBytes(of: &storage) {
      $0.storeBytes(of: v.littleEndian, toByteOffset: offset, as: Int64.self)
    }
  }
}

extension SideFees {
  public func encode(into w: inout ByteWriter) {
    w.packed(32) {
      $0.i64(handling, at: 0)
      $0.i64(regulatory, at: 8)
      $0.i64(transfer, at: 16)
      $0.i64(stamp, at: 24)
    }
  }
  public init(from r: inout ByteReader) throws(DecodeError) {
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
  /// Bytes of a lot's encoding: acquired, creation, accrued, quantity.
  public static let encodedBytes = 28

  public func encode(into w: inout ByteWriter) {
    w.packed(Self.encodedBytes) {
      $0.i32(acquired, at: 0)
      $0.i64(creation, at: 4)
      $0.i64(accruedMicro, at: 12)
      $0.i64(quantity, at: 20)
    }
  }
  public init(from r: inout ByteReader) throws(DecodeError) {
    self.init(acquired: try r.i32(), creation: try r.i64(), accruedMicro: try r.i64(), quantity: try r.i64())
  }
}
extension PositionRecord {
  /// The canonical encoding of a position: its fields, the lot count, then each lot
  /// (oldest first, in (acquired, creation, accrued) order) as `Lot.encode`.
  public func encode(lots: some Collection<Lot>, into w: inout ByteWriter) {
    encodeFields(lotCount: Int32(lots.count), into: &w)
    for lot in lots { lot.encode(into: &w) }
  }

  /// Bytes of `encodeFields`: account, security, quantity, available, withheld, lot count.
  public static let encodedFieldBytes = 36

  /// The fields and the lot count; the caller writes the lots after it.
  public func encodeFields(lotCount: Int32, into w: inout ByteWriter) {
    w.packed(Self.encodedFieldBytes) {
      $0.i32(account, at: 0)
      $0.i32(security, at: 4)
      $0.i64(quantity, at: 8)
      $0.i64(available, at: 16)
      $0.i64(withheld, at: 24)
      $0.i32(lotCount, at: 32)
    }
  }

  /// Decodes a position's fields and its lots (the storage fields are left at `noLot`).
  public static func decode(from r: inout ByteReader) throws(DecodeError) -> (PositionRecord, [Lot]) {
    let p = PositionRecord(
      account: try r.i32(), security: try r.i32(), quantity: try r.i64(), available: try r.i64(),
      withheld: try r.i64())
    let count = Int(try r.i32())
    guard count >= 0 && count < PositionRecord.lotCountMax else {
      throw DecodeError(description: "bad lot count \(count)")
    }
    var lots: [Lot] = []
    lots.reserveCapacity(count)
    for _ in 0..<count { lots.append(try Lot(from: &r)) }
    return (p, lots)
  }

  /// Lots one position may hold in a decoded row.
  public static let lotCountMax = 1 << 24
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
  /// Bytes of a trade's encoding besides its id's UTF-8 bytes: the id's length and
  /// every field after it.
  public static let encodedBytesWithoutId = 157

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
