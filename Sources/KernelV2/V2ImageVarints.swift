// The large tables of V2's image (V2Image.swift) as zigzag LEB128 varints: a table is
// its row count, then byte strings (`ImageWriter.byteString`) of about `blockBytes`
// each that no row straddles. Fields that grow row by row (ids, dates, creation
// numbers, offsets into the lot pool or the slices) are written as the difference from
// the row before. Written so because each byte of an image costs the engine's durable
// run ~1.1 ns of page cache, and a varint ~1 ns a field to write or read.
//
// Reading checks every varint (at most 10 bytes, no bits beyond 64), every field's
// range (32-bit fields, flags, small enums) and that each block ends on a row's end
// and the rows on the count: a malformed table throws, it never traps.

import KernelAPI

/// Gathers rows of varints into blocks for an `ImageWriter`.
struct V2VarintWriter {
  static let blockBytes = 256 << 10
  /// Bytes of the largest row (a few fields of at most 10 bytes each).
  static let rowBytesMax = 256

  /// The block's storage, written through its pointer (no uniqueness check a field).
  private final class Storage {
    let bytes = UnsafeMutablePointer<UInt8>.allocate(
      capacity: V2VarintWriter.blockBytes + V2VarintWriter.rowBytesMax)
    deinit { bytes.deallocate() }
  }

  private let storage = Storage()
  private var used = 0

  @inline(__always) mutating func put(_ v: Int64) {
    putUnsigned(UInt64(bitPattern: (v << 1) ^ (v >> 63)))
  }

  @inline(__always) mutating func putUnsigned(_ value: UInt64) {
    var v = value
    let b = storage.bytes
    var i = used
    while v >= 0x80 {
      b[i] = UInt8(truncatingIfNeeded: v) | 0x80
      v >>= 7
      i &+= 1
    }
    b[i] = UInt8(truncatingIfNeeded: v)
    used = i &+ 1
  }

  /// After each row: a full block goes to `w`.
  @inline(__always) mutating func endRow(to w: inout ImageWriter) {
    if used >= Self.blockBytes { flush(to: &w) }
  }

  /// After the last row.
  mutating func flush(to w: inout ImageWriter) {
    guard used > 0 else { return }
    w.byteString(Array(UnsafeBufferPointer(start: storage.bytes, count: used)))
    used = 0
  }
}

/// Reads the rows a `V2VarintWriter` wrote, block by block.
struct V2VarintReader {
  /// The current block's bytes, read through their pointer.
  private final class Storage {
    var bytes = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
    var capacity = 1
    deinit { bytes.deallocate() }
  }

  private let storage = Storage()
  /// `storage.bytes`, kept here: a class's `var` is checked for exclusive access at each read.
  private var base = UnsafeMutablePointer<UInt8>(bitPattern: 1)!
  private var at = 0
  private var blockEnd = 0
  /// Rows still to read.
  private(set) var rowsLeft: Int

  /// A table's row count (at most `maxRows`), its blocks read as its rows are.
  init(from r: inout ImageReader, maxRows: Int) throws(DecodeError) {
    rowsLeft = try r.count(max: maxRows)
  }

  /// The rows to reserve room for: the count, up to 16M (a malformed count must not ask
  /// for more memory than there is; a larger table grows as it is read).
  var reserveHint: Int { min(rowsLeft, 1 << 24) }

  /// Before each row: the next block when this one is used up.
  @inline(__always) mutating func beginRow(from r: inout ImageReader) throws(DecodeError) {
    guard rowsLeft > 0 else { throw DecodeError(description: "V2 image: a table's rows beyond its count") }
    rowsLeft -= 1
    if at == blockEnd { try nextBlock(from: &r) }
  }

  private mutating func nextBlock(from r: inout ImageReader) throws(DecodeError) {
    let block = try r.byteString()
    guard !block.isEmpty else { throw DecodeError(description: "V2 image: an empty block of rows") }
    if block.count > storage.capacity {
      storage.bytes.deallocate()
      storage.bytes = UnsafeMutablePointer<UInt8>.allocate(capacity: block.count)
      storage.capacity = block.count
    }
    let to = storage.bytes
    block.withUnsafeBufferPointer { b in to.update(from: b.baseAddress!, count: b.count) }
    base = to
    at = 0
    blockEnd = block.count
  }

  /// After the last row: its block is used up.
  func end() throws(DecodeError) {
    guard rowsLeft == 0, at == blockEnd else {
      throw DecodeError(description: "V2 image: a block of rows ends inside a row")
    }
  }

  @inline(__always) mutating func unsigned() throws(DecodeError) -> UInt64 {
    let b = base
    if at < blockEnd {
      let first = b[at]
      if first < 0x80 {
        at &+= 1
        return UInt64(first)
      }
    }
    return try unsignedLong()
  }

  private mutating func unsignedLong() throws(DecodeError) -> UInt64 {
    let b = base
    var value: UInt64 = 0
    var shift: UInt64 = 0
    var i = at
    while i < blockEnd {
      let byte = b[i]
      i &+= 1
      if shift == 63 && byte > 1 { break }
      value |= UInt64(byte & 0x7F) << shift
      if byte < 0x80 {
        at = i
        return value
      }
      shift &+= 7
    }
    throw DecodeError(description: "V2 image: a varint overflows or ends its block early")
  }

  @inline(__always) mutating func int64() throws(DecodeError) -> Int64 {
    let u = try unsigned()
    return Int64(bitPattern: (u >> 1) ^ (0 &- (u & 1)))
  }

  /// A 32-bit field.
  @inline(__always) mutating func int32() throws(DecodeError) -> Int32 {
    try Self.narrow(try int64())
  }

  /// A 32-bit field written as the difference from `previous`.
  @inline(__always) mutating func int32(after previous: Int32) throws(DecodeError) -> Int32 {
    let d = try int64()
    let (v, overflow) = Int64(previous).addingReportingOverflow(d)
    guard !overflow else { throw DecodeError(description: "V2 image: a field beyond 64 bits") }
    return try Self.narrow(v)
  }

  /// A flag (0 or 1).
  @inline(__always) mutating func flag() throws(DecodeError) -> Bool {
    let v = try unsigned()
    guard v <= 1 else { throw DecodeError(description: "V2 image: \(v) where a flag belongs") }
    return v == 1
  }

  @inline(__always) static func narrow(_ v: Int64) throws(DecodeError) -> Int32 {
    guard let n = Int32(exactly: v) else {
      throw DecodeError(description: "V2 image: \(v) where a 32-bit field belongs")
    }
    return n
  }
}

extension V2Kernel {
  // MARK: Positions

  static func writePositions(_ rows: [V2Position], to w: inout ImageWriter) {
    w.i64(Int64(rows.count))
    var v = V2VarintWriter()
    var account: Int32 = 0
    var security: Int32 = 0
    var lotBase: Int32 = 0
    for p in rows {
      v.put(Int64(p.account) - Int64(account))
      v.put(Int64(p.security) - Int64(security))
      v.put(p.quantity)
      v.put(p.available)
      v.put(p.withheld)
      v.put(Int64(p.lotBase) - Int64(lotBase))
      v.put(Int64(p.lotHead) - Int64(p.lotBase))
      v.put(Int64(p.lotEnd) - Int64(p.lotHead))
      v.putUnsigned(UInt64(p.lotLog))
      v.putUnsigned(p.pending ? 1 : 0)
      account = p.account
      security = p.security
      lotBase = p.lotBase
      v.endRow(to: &w)
    }
    v.flush(to: &w)
  }

  static func readPositions(from r: inout ImageReader) throws(DecodeError) -> [V2Position] {
    var v = try V2VarintReader(from: &r, maxRows: Int(Int32.max))
    var rows: [V2Position] = []
    rows.reserveCapacity(v.reserveHint)
    var account: Int32 = 0
    var security: Int32 = 0
    var lotBase: Int32 = 0
    while v.rowsLeft > 0 {
      try v.beginRow(from: &r)
      account = try v.int32(after: account)
      security = try v.int32(after: security)
      var p = V2Position(account: account, security: security)
      p.quantity = try v.int64()
      p.available = try v.int64()
      p.withheld = try v.int64()
      lotBase = try v.int32(after: lotBase)
      p.lotBase = lotBase
      p.lotHead = try v.int32(after: lotBase)
      p.lotEnd = try v.int32(after: p.lotHead)
      let log = try v.unsigned()
      guard log <= 0xFF else { throw DecodeError(description: "V2 image: a lot segment of log \(log)") }
      p.lotLog = UInt8(log)
      p.pending = try v.flag()
      rows.append(p)
    }
    try v.end()
    return rows
  }

  // MARK: Lots

  /// A lot of the pool: 0 alone for an unused one (all fields 0), else 1 and its fields,
  /// the date and creation number as differences from the last lot so written.
  static func writeLots(_ rows: [V2Lot], to w: inout ImageWriter) {
    w.i64(Int64(rows.count))
    var v = V2VarintWriter()
    var acquired: Int32 = 0
    var creation: Int32 = 0
    for l in rows {
      if l.acquired == 0 && l.creation == 0 && l.accruedMicro == 0 && l.quantity == 0 {
        v.putUnsigned(0)
      } else {
        v.putUnsigned(1)
        v.put(Int64(l.acquired) - Int64(acquired))
        v.put(Int64(l.creation) - Int64(creation))
        v.put(l.accruedMicro)
        v.put(l.quantity)
        acquired = l.acquired
        creation = l.creation
      }
      v.endRow(to: &w)
    }
    v.flush(to: &w)
  }

  static func readLots(from r: inout ImageReader) throws(DecodeError) -> [V2Lot] {
    var v = try V2VarintReader(from: &r, maxRows: Int(Int32.max))
    var rows: [V2Lot] = []
    rows.reserveCapacity(v.reserveHint)
    var acquired: Int32 = 0
    var creation: Int32 = 0
    while v.rowsLeft > 0 {
      try v.beginRow(from: &r)
      if try v.flag() {
        acquired = try v.int32(after: acquired)
        creation = try v.int32(after: creation)
        guard creation >= 0 else { throw DecodeError(description: "V2 image: lot creation \(creation)") }
        let accrued = try v.int64()
        let quantity = try v.int64()
        rows.append(
          V2Lot(acquired: acquired, creation: Int64(creation), accruedMicro: accrued, quantity: quantity))
      } else {
        rows.append(LotPool.empty)
      }
    }
    try v.end()
    return rows
  }

  // MARK: Slices

  static func writeSlices(_ rows: [V2Slice], to w: inout ImageWriter) {
    w.i64(Int64(rows.count))
    var v = V2VarintWriter()
    var acquired: Int32 = 0
    var creation: Int32 = 0
    for s in rows {
      v.put(s.quantity)
      v.put(Int64(s.acquired) - Int64(acquired))
      v.put(Int64(s.creation) - Int64(creation))
      acquired = s.acquired
      creation = s.creation
      v.endRow(to: &w)
    }
    v.flush(to: &w)
  }

  static func readSlices(from r: inout ImageReader) throws(DecodeError) -> [V2Slice] {
    var v = try V2VarintReader(from: &r, maxRows: Int(Int32.max))
    var rows: [V2Slice] = []
    rows.reserveCapacity(v.reserveHint)
    var acquired: Int32 = 0
    var creation: Int32 = 0
    while v.rowsLeft > 0 {
      try v.beginRow(from: &r)
      let quantity = try v.int64()
      acquired = try v.int32(after: acquired)
      creation = try v.int32(after: creation)
      rows.append(V2Slice(quantity: quantity, acquired: acquired, creation: creation))
    }
    try v.end()
    return rows
  }

  // MARK: Trades

  /// A trade: its id word, date and first slice as differences from the trade before
  /// (its first slice from where the trade before's slices end).
  static func writeTrades(_ rows: [V2Trade], to w: inout ImageWriter) {
    w.i64(Int64(rows.count))
    var v = V2VarintWriter()
    var idWord: UInt64 = 0
    var date: Int32 = 0
    var sliceEnd: Int64 = 0
    for t in rows {
      v.put(Int64(bitPattern: t.idWord &- idWord))
      v.put(t.amountFen)
      v.put(t.quantity)
      v.put(Int64(t.date) - Int64(date))
      v.put(Int64(t.security))
      v.put(Int64(t.buyAccount))
      v.put(Int64(t.sellAccount))
      v.put(Int64(t.buyParticipant))
      v.put(Int64(t.sellParticipant))
      v.put(Int64(t.sliceStart) - sliceEnd)
      v.putUnsigned(UInt64(t.sliceCount) << 1 | (t.cancelled ? 1 : 0))
      idWord = t.idWord
      date = t.date
      sliceEnd = Int64(t.sliceStart) + Int64(t.sliceCount)
      v.endRow(to: &w)
    }
    v.flush(to: &w)
  }

  static func readTrades(from r: inout ImageReader) throws(DecodeError) -> [V2Trade] {
    var v = try V2VarintReader(from: &r, maxRows: Int(Int32.max))
    var rows: [V2Trade] = []
    rows.reserveCapacity(v.reserveHint)
    var idWord: UInt64 = 0
    var date: Int32 = 0
    var sliceEnd: Int32 = 0
    while v.rowsLeft > 0 {
      try v.beginRow(from: &r)
      idWord = idWord &+ UInt64(bitPattern: try v.int64())
      let amountFen = try v.int64()
      let quantity = try v.int64()
      date = try v.int32(after: date)
      let security = try v.int32()
      let buyAccount = try v.int32()
      let sellAccount = try v.int32()
      let buyParticipant = try v.int32()
      let sellParticipant = try v.int32()
      let sliceStart = try v.int32(after: sliceEnd)
      let word = try v.unsigned()
      guard word >> 1 <= UInt64(Int32.max) else {
        throw DecodeError(description: "V2 image: a trade of \(word >> 1) slices")
      }
      let sliceCount = Int32(word >> 1)
      let (end, overflow) = sliceStart.addingReportingOverflow(sliceCount)
      guard !overflow else { throw DecodeError(description: "V2 image: a trade's slices beyond 32 bits") }
      sliceEnd = end
      rows.append(
        V2Trade(
          idWord: idWord, amountFen: amountFen, quantity: quantity, date: date, security: security,
          buyAccount: buyAccount, sellAccount: sellAccount, buyParticipant: buyParticipant,
          sellParticipant: sellParticipant, sliceStart: sliceStart, sliceCount: sliceCount,
          cancelled: word & 1 == 1))
    }
    try v.end()
    return rows
  }
}
