// V2's own writer of effect records (docs/EFFECTS.md, encoding version 2) for the
// hot paths (an applied TRADE, an OPEN's many holdings, a CLOSE's entitlements):
// `kind:u8 length:u32le body`,
// integers little-endian, row ids u32, strings as `u32le byte count` + bytes. Written
// from docs/EFFECTS.md, not through KernelAPI's RecordCursor, so that an encoding slip
// in either is a dissent, not a shared error. Every other record goes through
// KernelAPI's EffectWriter.

import KernelAPI

/// Whole record sizes (kind, length and body) of the fixed-size records V2 encodes.
enum V2RecordBytes {
  static let eventHeader = 5 + 13
  static let clearingKey = 5 + 20
  static let settlementKey = 5 + 16
  static let positionKey = 5 + 12
  static let clearing = 5 + 84
  static let settlement = 5 + 26
  static let holding = 5 + 28
  /// ordinal i64, security id, record_date i32, pay_date i32, account id, kind u8, value i64.
  static let entitlement = 5 + 33
  /// A tax record of a trade id of `tradeId` bytes.
  static func tax(tradeId: Int) -> Int { 5 + 4 + 4 + tradeId + 4 + 4 + 8 + 8 }
}

/// Writes fields at a raw pointer into a buffer the caller sized exactly.
struct V2Cursor {
  var p: UnsafeMutableRawPointer

  init(_ p: UnsafeMutableRawPointer) { self.p = p }

  @inline(__always) mutating func u8(_ v: UInt8) {
    p.storeBytes(of: v, as: UInt8.self)
    p += 1
  }
  @inline(__always) mutating func i32(_ v: Int32) {
    p.storeBytes(of: v.littleEndian, as: Int32.self)
    p += 4
  }
  /// A canonical row id (u32; ids are never negative).
  @inline(__always) mutating func id(_ v: Int32) { i32(v) }
  @inline(__always) mutating func i64(_ v: Int64) {
    p.storeBytes(of: v.littleEndian, as: Int64.self)
    p += 8
  }
  @inline(__always) mutating func i128(_ v: Int128) {
    i64(Int64(truncatingIfNeeded: v))
    i64(Int64(truncatingIfNeeded: v >> 64))
  }
  /// Length-prefixed bytes (a trade id).
  @inline(__always) mutating func bytes(_ b: UnsafeRawBufferPointer) {
    let n = b.count
    i32(Int32(n))
    if n > 0 { p.copyMemory(from: b.baseAddress!, byteCount: n) }
    p += n
  }
  /// A record's kind and body length (`wholeBytes` - 5).
  @inline(__always) mutating func record(_ kind: EffectKind, wholeBytes: Int) {
    u8(kind.rawValue)
    i32(Int32(wholeBytes - 5))
  }

  @inline(__always) mutating func eventHeader(seq: Int64, outcome: EffectOutcome, count: Int) {
    record(.event, wholeBytes: V2RecordBytes.eventHeader)
    i64(seq)
    u8(outcome.rawValue)
    i32(Int32(count))
  }

  @inline(__always) mutating func clearingKey(
    _ row: Int32, tradeDate: Int32, settleDate: Int32, participant: Int32, security: Int32
  ) {
    record(.clearingKey, wholeBytes: V2RecordBytes.clearingKey)
    id(row)
    i32(tradeDate)
    i32(settleDate)
    id(participant)
    id(security)
  }

  @inline(__always) mutating func settlementKey(
    _ row: Int32, tradeDate: Int32, settleDate: Int32, participant: Int32
  ) {
    record(.settlementKey, wholeBytes: V2RecordBytes.settlementKey)
    id(row)
    i32(tradeDate)
    i32(settleDate)
    id(participant)
  }

  @inline(__always) mutating func positionKey(_ row: Int32, account: Int32, security: Int32) {
    record(.positionKey, wholeBytes: V2RecordBytes.positionKey)
    id(row)
    id(account)
    id(security)
  }

  @inline(__always) mutating func clearing(_ row: Int32, _ r: UnsafePointer<ClearingRecord>) {
    record(.clearing, wholeBytes: V2RecordBytes.clearing)
    id(row)
    i64(r.pointee.buyQuantity)
    i64(r.pointee.sellQuantity)
    i128(r.pointee.buyAmount)
    i128(r.pointee.sellAmount)
    i64(r.pointee.fees.handling)
    i64(r.pointee.fees.regulatory)
    i64(r.pointee.fees.transfer)
    i64(r.pointee.fees.stamp)
  }

  @inline(__always) mutating func settlement(_ row: Int32, _ r: UnsafePointer<SettlementRecord>) {
    record(.settlement, wholeBytes: V2RecordBytes.settlement)
    id(row)
    i128(r.pointee.netFen)
    u8(r.pointee.status.rawValue)
    i32(r.pointee.settledOn)
    u8(r.pointee.liveSides > 0 ? 1 : 0)
  }

  @inline(__always) mutating func holding(_ row: Int32, _ p: UnsafePointer<V2Position>) {
    record(.holding, wholeBytes: V2RecordBytes.holding)
    id(row)
    i64(p.pointee.quantity)
    i64(p.pointee.available)
    i64(p.pointee.withheld)
  }

  @inline(__always) mutating func entitlement(_ ordinal: Int32, _ e: UnsafePointer<EntitlementRecord>) {
    record(.entitlement, wholeBytes: V2RecordBytes.entitlement)
    i64(Int64(ordinal))
    id(e.pointee.security)
    i32(e.pointee.recordDate)
    i32(e.pointee.payDate)
    id(e.pointee.account)
    u8(e.pointee.kind.rawValue)
    i64(e.pointee.value)
  }

  @inline(__always) mutating func tax(
    tradeDate: Int32, tradeId: UnsafeRawBufferPointer, account: Int32, security: Int32, quantity: Int64,
    taxFen: Int64
  ) {
    record(.tax, wholeBytes: V2RecordBytes.tax(tradeId: tradeId.count))
    i32(tradeDate)
    bytes(tradeId)
    id(account)
    id(security)
    i64(quantity)
    i64(taxFen)
  }
}

/// How many rows of each keyed table (docs/EFFECTS.md, "Rows are named by id") the
/// stream before the next event has named: rows at or above these counts were created
/// since and get key records in the event that created them.
struct V2Keyed: Sendable {
  var participants = 0
  var accounts = 0
  var securities = 0
  var clearing = 0
  var settlement = 0
  var positions = 0
}
