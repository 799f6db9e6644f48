// Packed rows for V1's kernel image: the two largest tables (positions and the lot
// pool's nodes, ~330 MB copied whole on the 1M-account day) are written as zigzag
// LEB128 varints, most fields one to three bytes. Writing an image costs its bytes
// in the page cache, whose fresh pages cost this machine's kernel ~1.1 ns a byte, and
// the run's outputs wait for the image (docs/PERFORMANCE.md, thirteenth session); a
// varint costs ~1 ns a field. Rows are written in blocks (an image byte string each)
// and never straddle two blocks.

import KernelAPI

struct PackedRowWriter {
  /// A block is handed to the image when it holds at least this many bytes.
  static let blockBytes = 256 << 10
  /// The most bytes one row may take (sixteen fields of ten bytes).
  static let rowBytesMax = 160
  /// The block: its bytes up to `used`, written through a pointer to storage that
  /// does not move. (Through `Array.withUnsafeMutableBufferPointer` and a closure a row,
  /// the closure was not inlined and kept its cursor in memory: ~0.25 s of the 1M-account
  /// day's ~0.46 s image. An `append` a byte before that checked the array's uniqueness
  /// for every byte, ~5 ns a field.)
  private let block = ImageBlock(bytes: blockBytes + rowBytesMax)
  private var used = 0
  /// Where the current row's room ends (`startRow`).
  private var rowEnd = 0

  /// Starts a row of at most `rowBytesMax` bytes: a full block goes to the image first.
  /// Rows never straddle two blocks.
  @inline(__always) mutating func startRow(_ w: inout ImageWriter) {
    if used >= Self.blockBytes {
      w.byteString(UnsafeRawBufferPointer(start: block.raw, count: used))
      used = 0
    }
    rowEnd = used + Self.rowBytesMax
  }

  /// Writes one field of the row as a zigzag varint.
  @inline(__always) mutating func put(_ v: Int64) {
    // A varint of 64 bits takes at most ten bytes: the row stays within its room.
    precondition(used + 10 <= rowEnd, "a packed row within its room")
    var z = UInt64(bitPattern: (v << 1) ^ (v >> 63))
    let bytes = block.bytes
    var at = used
    while z >= 0x80 {
      bytes[at] = UInt8(truncatingIfNeeded: z) | 0x80
      at &+= 1
      z >>= 7
    }
    bytes[at] = UInt8(z)
    used = at &+ 1
  }

  /// The last block, then an empty one (the end).
  mutating func finish(_ w: inout ImageWriter) {
    if used > 0 { w.byteString(UnsafeRawBufferPointer(start: block.raw, count: used)) }
    w.byteString(UnsafeRawBufferPointer(start: nil, count: 0))
    used = 0
  }
}

struct PackedRowReader {
  private var block: [UInt8] = []
  private var at = 0

  /// Starts the next row: takes the next block when this one is used up.
  mutating func startRow(_ r: inout ImageReader) throws(DecodeError) {
    if at == block.count {
      block = try r.byteString()
      at = 0
      guard !block.isEmpty else { throw DecodeError(description: "image packed rows end early") }
    }
  }

  @inline(__always) mutating func take() throws(DecodeError) -> Int64 {
    var z: UInt64 = 0
    var shift: UInt64 = 0
    while true {
      guard at < block.count, shift < 64 else {
        throw DecodeError(description: "image packed row is cut or has a bad number")
      }
      let byte = block[at]
      at += 1
      z |= UInt64(byte & 0x7F) << shift
      if byte < 0x80 { break }
      shift += 7
    }
    return Int64(bitPattern: z >> 1) ^ -Int64(bitPattern: z & 1)
  }

  @inline(__always) mutating func take32() throws(DecodeError) -> Int32 {
    let v = try take()
    guard let narrow = Int32(exactly: v) else {
      throw DecodeError(description: "image packed value \(v) is not 32-bit")
    }
    return narrow
  }

  /// After the last row: the block is used up and the end follows.
  mutating func finish(_ r: inout ImageReader) throws(DecodeError) {
    guard at == block.count else { throw DecodeError(description: "image packed rows have bytes left over") }
    guard try r.byteString().isEmpty else { throw DecodeError(description: "image packed rows do not end") }
  }
}

extension V1Kernel {
  /// Positions packed: the account as a difference from the row before (positions are
  /// made account by account at the opening), the rest as they are.
  func writePackedPositions(_ w: inout ImageWriter) {
    let rows = positions.rows
    w.i64(Int64(rows.count))
    var p = PackedRowWriter()
    var account: Int32 = 0
    for r in rows {
      p.startRow(&w)
      p.put(Int64(r.account) - Int64(account))
      account = r.account
      p.put(Int64(r.security))
      p.put(r.quantity)
      p.put(r.available)
      p.put(r.withheld)
      p.put(Int64(r.firstLot))
      p.put(Int64(r.lastLot))
    }
    p.finish(&w)
  }

  static func readPackedPositions(_ r: inout ImageReader) throws(DecodeError) -> [PositionRecord] {
    let n = try r.count(max: Int(Int32.max))
    var rows: [PositionRecord] = []
    rows.reserveCapacity(n)
    var p = PackedRowReader()
    var account: Int64 = 0
    for _ in 0..<n {
      try p.startRow(&r)
      account += try p.take()
      guard let a = Int32(exactly: account) else {
        throw DecodeError(description: "image position account \(account)")
      }
      var row = PositionRecord(
        account: a, security: try p.take32(), quantity: try p.take(), available: try p.take(),
        withheld: try p.take())
      row.firstLot = try p.take32()
      row.lastLot = try p.take32()
      rows.append(row)
    }
    try p.finish(&r)
    return rows
  }
}

extension V1Kernel {
  /// Trade rows packed, after their identifiers: the date and the first lot slice as
  /// differences from the row before (trades come day by day, their slices in order).
  func writePackedTrades(_ w: inout ImageWriter) {
    let rows = trades.rows
    w.i64(Int64(rows.count))
    for t in rows {
      // As `w.string` of the id's String, without making it (a String a trade was ~6% of
      // writing the image, perf, twenty-third session): an ASCII id's UTF-8 is its bytes.
      tradeIds.withBytes(of: t) { b in
        if b.allSatisfy({ $0 < 0x80 }) {
          w.utf8(b)
        } else {
          w.string(String(decoding: b, as: UTF8.self))
        }
      }
    }
    var p = PackedRowWriter()
    var (date, slice): (Int64, Int64) = (0, 0)
    for t in rows {
      p.startRow(&w)
      p.put(Int64(t.date) - date)
      date = Int64(t.date)
      p.put(Int64(t.security))
      p.put(t.quantity)
      p.put(Int64(t.buyAccount))
      p.put(Int64(t.sellAccount))
      p.put(Int64(t.buyParticipant))
      p.put(Int64(t.sellParticipant))
      p.put(t.priceOrClearing)
      p.put(t.taxFen)
      p.put(t.withheld)
      p.put(Int64(t.sliceStart) - slice)
      slice = Int64(t.sliceStart)
      p.put(Int64(t.sliceCount))
      p.put((t.cancelled ? 1 : 0) | (t.clearingRestored ? 2 : 0))
    }
    p.finish(&w)
  }

  /// The trade rows, their ids appended to `tradeIds`.
  static func readPackedTrades(_ r: inout ImageReader, tradeIds: inout TradeIdBytes) throws(DecodeError)
    -> [TradeRow]
  {
    let n = try r.count(max: Int(Int32.max))
    var ids: [(start: Int64, count: Int32)] = []
    ids.reserveCapacity(n)
    for _ in 0..<n { ids.append(tradeIds.append(try r.ident())) }
    var rows: [TradeRow] = []
    rows.reserveCapacity(n)
    var p = PackedRowReader()
    var (date, slice): (Int64, Int64) = (0, 0)
    for i in 0..<n {
      try p.startRow(&r)
      date += try p.take()
      let security = try p.take32()
      let quantity = try p.take()
      let (buyAccount, sellAccount) = (try p.take32(), try p.take32())
      let (buyParticipant, sellParticipant) = (try p.take32(), try p.take32())
      let (priceOrClearing, taxFen, withheld) = (try p.take(), try p.take(), try p.take())
      slice += try p.take()
      let sliceCount = try p.take32()
      let flags = try p.take()
      guard let d = Int32(exactly: date), let s = Int32(exactly: slice), flags & ~3 == 0 else {
        throw DecodeError(description: "image trade \(i) has date \(date), slice \(slice), flags \(flags)")
      }
      rows.append(
        TradeRow(
          idStart: ids[i].start, date: d, security: security, quantity: quantity, buyAccount: buyAccount,
          sellAccount: sellAccount, buyParticipant: buyParticipant, sellParticipant: sellParticipant,
          priceOrClearing: priceOrClearing, taxFen: taxFen, withheld: withheld, sliceStart: s,
          sliceCount: sliceCount, idCount: ids[i].count, cancelled: flags & 1 != 0,
          clearingRestored: flags & 2 != 0))
    }
    try p.finish(&r)
    return rows
  }

  /// Consumed lot slices packed: the creation number as a difference from the slice
  /// before.
  func writePackedSlices(_ w: inout ImageWriter) {
    let rows = slices.rows
    w.i64(Int64(rows.count))
    var p = PackedRowWriter()
    var creation: Int64 = 0
    for l in rows {
      p.startRow(&w)
      p.put(Int64(l.acquired))
      p.put(l.creation &- creation)
      creation = l.creation
      p.put(l.accruedMicro)
      p.put(l.quantity)
    }
    p.finish(&w)
  }

  static func readPackedSlices(_ r: inout ImageReader) throws(DecodeError) -> [Lot] {
    let n = try r.count(max: Int(Int32.max))
    var rows: [Lot] = []
    rows.reserveCapacity(n)
    var p = PackedRowReader()
    var creation: Int64 = 0
    for _ in 0..<n {
      try p.startRow(&r)
      let acquired = try p.take32()
      creation &+= try p.take()
      rows.append(
        Lot(acquired: acquired, creation: creation, accruedMicro: try p.take(), quantity: try p.take()))
    }
    try p.finish(&r)
    return rows
  }
}

extension V1Kernel {
  /// Clearing rows packed field by field: copied whole, a row's four bytes of padding
  /// (after its three 32-bit ids) carried whatever the memory held, so two runs to the
  /// same state wrote different images. The amounts are 128-bit: their high and low
  /// halves (the high one is 0 below 2^63 fen).
  func writePackedClearing(_ w: inout ImageWriter) {
    let rows = clearingRows.rows
    w.i64(Int64(rows.count))
    var p = PackedRowWriter()
    for r in rows {
      p.startRow(&w)
      p.put(Int64(r.tradeDate))
      p.put(Int64(r.participant))
      p.put(Int64(r.security))
      p.put(r.buyQuantity)
      p.put(r.sellQuantity)
      p.put(Int64(truncatingIfNeeded: r.buyAmount >> 64))
      p.put(Int64(bitPattern: UInt64(truncatingIfNeeded: r.buyAmount)))
      p.put(Int64(truncatingIfNeeded: r.sellAmount >> 64))
      p.put(Int64(bitPattern: UInt64(truncatingIfNeeded: r.sellAmount)))
      p.put(r.fees.handling)
      p.put(r.fees.regulatory)
      p.put(r.fees.transfer)
      p.put(r.fees.stamp)
    }
    p.finish(&w)
  }

  static func readPackedClearing(_ r: inout ImageReader) throws(DecodeError) -> [ClearingRecord] {
    let n = try r.count(max: Int(Int32.max))
    var rows: [ClearingRecord] = []
    rows.reserveCapacity(n)
    var p = PackedRowReader()
    func amount(_ p: inout PackedRowReader) throws(DecodeError) -> Int128 {
      let high = try p.take()
      let low = UInt64(bitPattern: try p.take())
      return Int128(high) << 64 | Int128(low)
    }
    for _ in 0..<n {
      try p.startRow(&r)
      let (date, participant, security) = (try p.take32(), try p.take32(), try p.take32())
      let (buyQuantity, sellQuantity) = (try p.take(), try p.take())
      let buyAmount = try amount(&p)
      let sellAmount = try amount(&p)
      let fees = SideFees(
        handling: try p.take(), regulatory: try p.take(), transfer: try p.take(), stamp: try p.take())
      rows.append(
        ClearingRecord(
          tradeDate: date, participant: participant, security: security, buyQuantity: buyQuantity,
          sellQuantity: sellQuantity, buyAmount: buyAmount, sellAmount: sellAmount, fees: fees))
    }
    try p.finish(&r)
    return rows
  }
}
