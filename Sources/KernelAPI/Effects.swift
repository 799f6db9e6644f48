// Business effects (docs/EFFECTS.md): for every applied or rejected event, the
// SPEC §5 rows it created or changed, with their full new values. This file owns
// the canonical binary encoding (version 1), its decoder, the per-batch digest and
// the buffer the state machine writes into. The emission hooks are in
// EffectEmission.swift; the text rendering is TallyFormat's EffectText.

/// Version of the effect encoding (docs/EFFECTS.md). A change of any record's
/// layout is a new version.
public enum EffectFormat {
  public static let version: UInt8 = 1
  /// `TALLYFX` and the version byte: the first 8 bytes of an effects file.
  public static let fileMagic: [UInt8] = Array("TALLYFX".utf8) + [version]
  /// Limits a decoder enforces (a record is refused above them).
  public static let recordBytesMax = 1 << 20
  public static let effectsPerEventMax = 1 << 26
  /// The most bytes one `EffectWriter.append(bytes:_:)` makes room for (the largest
  /// event, an OPEN releasing a day's purchases, is ~53 MB on the 1M-trade day).
  public static let roomBytesMax = 1 << 30
}

/// Record kinds: the first byte of every record.
public enum EffectKind: UInt8, Sendable, CaseIterable {
  case event = 0x01
  case clearing = 0x10
  case settlement = 0x11
  case balance = 0x12
  case holding = 0x13
  case entitlement = 0x14
  case tax = 0x15
  case taxRemoved = 0x16
  case rejection = 0x17

  public var word: String {
    switch self {
    case .event: return "event"
    case .clearing: return "clearing"
    case .settlement: return "settlement"
    case .balance: return "balance"
    case .holding: return "holding"
    case .entitlement: return "entitlement"
    case .tax: return "tax"
    case .taxRemoved: return "tax_removed"
    case .rejection: return "rejection"
    }
  }
}

/// What an event record says happened to the event.
public enum EffectOutcome: UInt8, Sendable {
  case applied = 0
  case rejected = 1
  /// Not an event: the complete state as of `seq` (the start of an effects file or
  /// stream). A replay starts afresh from it.
  case snapshot = 2

  public var word: String {
    switch self {
    case .applied: return "APPLIED"
    case .rejected: return "REJECTED"
    case .snapshot: return "SNAPSHOT"
    }
  }
}

/// One effect row, decoded. The row structs are SPEC §5's columns (Report's rows).
public enum Effect: Sendable, Equatable {
  case clearing(Report.Clearing)
  /// `visible`: the row is in settlement.csv (the participant has live trade sides that date).
  case settlement(Report.Settlement, visible: Bool)
  case balance(Report.Balance)
  case holding(Report.Holding)
  /// `ordinal`: the run-wide number of the entitlement (application order), which
  /// orders rows whose SPEC §5 sort keys are equal.
  case entitlement(ordinal: Int64, Report.Entitlement)
  case tax(Report.Tax)
  case taxRemoved(tradeDate: Int32, tradeId: String)
  case rejection(Report.Rejection)

  public var kind: EffectKind {
    switch self {
    case .clearing: return .clearing
    case .settlement: return .settlement
    case .balance: return .balance
    case .holding: return .holding
    case .entitlement: return .entitlement
    case .tax: return .tax
    case .taxRemoved: return .taxRemoved
    case .rejection: return .rejection
    }
  }
}

/// One event's record: its header and its effects, in emission order.
public struct EffectEvent: Sendable, Equatable {
  public var seq: Int64
  public var outcome: EffectOutcome
  public var effects: [Effect]

  public init(seq: Int64, outcome: EffectOutcome, effects: [Effect]) {
    self.seq = seq
    self.outcome = outcome
    self.effects = effects
  }
}

// MARK: - Writing

/// Appends records in the canonical encoding: `kind:u8 length:u32le body`, all
/// integers little-endian, strings as `u32le byte count` + UTF-8 bytes.
public struct EffectWriter: Sendable {
  /// The records written so far (`bytes`); internal storage reachable from the
  /// inlinable writers, so that a kernel's per-record calls inline into its own code.
  @usableFromInline var storage: [UInt8] = []
  public var bytes: [UInt8] { storage }
  /// The settle date of the last trade date written (a calendar lookup saved per row).
  public var settleCacheTradeDate: Int32 = 0
  public var settleCacheSettleDate: Int32 = 0

  public init(capacity: Int = 0) { storage.reserveCapacity(capacity) }

  @inlinable public var count: Int { storage.count }

  public mutating func removeAll() { storage.removeAll(keepingCapacity: true) }

  /// Makes room for `bytes` more bytes at once: an event of a million records (an OPEN
  /// releasing a day's purchases, ~53 MB) would otherwise grow the buffer by doubling,
  /// copying what it holds at each step.
  public mutating func reserve(additional bytes: Int) {
    if storage.capacity - storage.count < bytes { storage.reserveCapacity(storage.count + bytes) }
  }

  /// Hands the records written so far to `out` and keeps `out`'s old buffer, emptied,
  /// to write on: a consumer that takes every batch into the same array allocates
  /// nothing in steady state (a fresh buffer per batch cost more in page faults than
  /// the digest of its bytes).
  public mutating func take(into out: inout [UInt8]) {
    swap(&storage, &out)
    storage.removeAll(keepingCapacity: true)
  }

  /// Appends records of exactly `bytes` bytes in total, written by `body` through a
  /// cursor (`RecordCursor.eventHeader`, `.clearing`, ...): one growth of the array and
  /// one uniqueness check for all of them. V1's seven records of a TRADE written this
  /// way cost about half of seven `record` calls (perf, the 1M-trade day: 0.53 s →
  /// 0.26-0.31 s a run; each growth was a generic `append(contentsOf:)` and a `memmove`).
  @inlinable @inline(__always)
  public mutating func append(bytes: Int, _ body: (inout RecordCursor) -> Void) {
    precondition(bytes >= 0 && bytes <= EffectFormat.roomBytesMax, "effect room of \(bytes) bytes")
    let start = storage.count
    // Room: zeros appended from a contiguous buffer on the stack (a memcpy; appending
    // a `repeatElement` sequence went element by element, and a shared zero array cost
    // a retain and release per call).
    if bytes <= MemoryLayout<SIMD64<UInt64>>.size {
      withUnsafeBytes(of: SIMD64<UInt64>()) { zeros in
        storage.append(contentsOf: UnsafeRawBufferPointer(rebasing: zeros[0..<bytes]))
      }
    } else {
      storage.append(contentsOf: repeatElement(0 as UInt8, count: bytes))
    }
    storage.withUnsafeMutableBytes { raw in
      var c = RecordCursor(room: UnsafeMutableRawBufferPointer(rebasing: raw[start..<(start + bytes)]))
      body(&c)
      precondition(c.remaining == 0, "effect records left \(c.remaining) of \(bytes) bytes unwritten")
    }
  }

  /// Appends one record of a body of exactly `size` bytes, written by `body`.
  @inlinable @inline(__always)
  mutating func record(_ kind: EffectKind, size: Int, _ body: (inout RecordCursor) -> Void) {
    precondition(size <= EffectFormat.recordBytesMax, "effect record of \(size) bytes exceeds recordBytesMax")
    append(bytes: 5 + size) { c in
      c.begin(kind, recordBytes: 5 + size)
      body(&c)
    }
  }

  // Whole record sizes (kind, length and body), for `append(bytes:_:)`.
  public static let eventHeaderBytes = 5 + 13
  @inlinable public static func clearingBytes(participant: Int, security: Int) -> Int {
    5 + 8 + 4 + participant + 4 + security + 80
  }
  @inlinable public static func settlementBytes(participant: Int) -> Int { 5 + 8 + 4 + participant + 22 }
  @inlinable public static func holdingBytes(account: Int, security: Int) -> Int {
    5 + 4 + account + 4 + security + 24
  }
  @inlinable public static func taxBytes(tradeId: Int, account: Int, security: Int) -> Int {
    5 + 4 + 4 + tradeId + 4 + account + 4 + security + 16
  }

  @inlinable @inline(__always) static func size(_ s: String) -> Int { 4 + s.utf8.count }

  /// Patches an event header's effect count (written by `eventHeader`).
  public mutating func patchCount(headerAt at: Int, count: Int) {
    let n = UInt32(count)
    let base = at + 5 + 8 + 1
    storage[base] = UInt8(truncatingIfNeeded: n)
    storage[base + 1] = UInt8(truncatingIfNeeded: n >> 8)
    storage[base + 2] = UInt8(truncatingIfNeeded: n >> 16)
    storage[base + 3] = UInt8(truncatingIfNeeded: n >> 24)
  }

  // One function per record kind: the emission hooks and `encode(_:)` both call
  // these, so a decoded and re-encoded record has the same bytes.

  /// Returns the offset to patch the effect count at (`patchCount`).
  @inlinable public mutating func eventHeader(seq: Int64, outcome: EffectOutcome, count: Int) -> Int {
    let at = storage.count
    append(bytes: Self.eventHeaderBytes) { $0.eventHeader(seq: seq, outcome: outcome, count: count) }
    return at
  }

  @inlinable public mutating func clearing(
    tradeDate: Int32, settleDate: Int32, participant: String, security: String, buyQuantity: Int64,
    sellQuantity: Int64, buyAmount: Int128, sellAmount: Int128, fees: SideFees
  ) {
    var code = security
    code.withUTF8 { bytes in
      clearing(
        tradeDate: tradeDate, settleDate: settleDate, participant: participant,
        securityBytes: UnsafeRawBufferPointer(bytes), buyQuantity: buyQuantity, sellQuantity: sellQuantity,
        buyAmount: buyAmount, sellAmount: sellAmount, fees: fees)
    }
  }

  /// A clearing row whose security code is given as bytes (a TRADE line's field): the
  /// same record as `clearing(…security: String…)` with that text.
  @inlinable public mutating func clearing(
    tradeDate: Int32, settleDate: Int32, participant: String, securityBytes: UnsafeRawBufferPointer,
    buyQuantity: Int64, sellQuantity: Int64, buyAmount: Int128, sellAmount: Int128, fees: SideFees
  ) {
    var id = participant
    id.withUTF8 { p in
      let p = UnsafeRawBufferPointer(p)
      append(bytes: Self.clearingBytes(participant: p.count, security: securityBytes.count)) {
        $0.clearing(
          tradeDate: tradeDate, settleDate: settleDate, participant: p, security: securityBytes,
          buyQuantity: buyQuantity, sellQuantity: sellQuantity, buyAmount: buyAmount, sellAmount: sellAmount,
          fees: fees)
      }
    }
  }

  @inlinable public mutating func settlement(
    tradeDate: Int32, settleDate: Int32, participant: String, netFen: Int128, status: SettlementStatus,
    settledOn: Int32, visible: Bool
  ) {
    var id = participant
    id.withUTF8 { p in
      let p = UnsafeRawBufferPointer(p)
      append(bytes: Self.settlementBytes(participant: p.count)) {
        $0.settlement(
          tradeDate: tradeDate, settleDate: settleDate, participant: p, netFen: netFen, status: status,
          settledOn: settledOn, visible: visible)
      }
    }
  }

  @inlinable public mutating func balance(participant: String, balanceFen: Int128) {
    record(.balance, size: Self.size(participant) + 16) { c in
      c.string(participant)
      c.i128(balanceFen)
    }
  }

  @inlinable public mutating func holding(
    account: String, security: String, quantity: Int64, available: Int64, withheld: Int64
  ) {
    var id = account
    id.withUTF8 { a in
      holding(
        accountBytes: UnsafeRawBufferPointer(a), security: security, quantity: quantity, available: available,
        withheld: withheld)
    }
  }

  /// A holding whose account identifier is given as bytes (a TRADE line's field):
  /// the same record as `holding(account:…)` with that text.
  @inlinable public mutating func holding(
    accountBytes: UnsafeRawBufferPointer, security: String, quantity: Int64, available: Int64, withheld: Int64
  ) {
    var code = security
    code.withUTF8 { bytes in
      holding(
        accountBytes: accountBytes, securityBytes: UnsafeRawBufferPointer(bytes), quantity: quantity,
        available: available, withheld: withheld)
    }
  }

  /// A holding whose account identifier and security code are both given as bytes.
  @inlinable public mutating func holding(
    accountBytes: UnsafeRawBufferPointer, securityBytes: UnsafeRawBufferPointer, quantity: Int64,
    available: Int64, withheld: Int64
  ) {
    append(bytes: Self.holdingBytes(account: accountBytes.count, security: securityBytes.count)) {
      $0.holding(
        account: accountBytes, security: securityBytes, quantity: quantity, available: available,
        withheld: withheld)
    }
  }

  public mutating func entitlement(
    ordinal: Int64, security: String, recordDate: Int32, payDate: Int32, account: String,
    kind: EntitlementKind,
    value: Int64
  ) {
    record(.entitlement, size: 8 + Self.size(security) + 8 + Self.size(account) + 1 + 8) { c in
      c.i64(ordinal)
      c.string(security)
      c.i32(recordDate)
      c.i32(payDate)
      c.string(account)
      c.u8(kind.rawValue)
      c.i64(value)
    }
  }

  @inlinable public mutating func tax(
    tradeDate: Int32, tradeId: String, account: String, security: String, quantity: Int64, taxFen: Int64
  ) {
    var (id, holder, code) = (tradeId, account, security)
    id.withUTF8 { i in
      holder.withUTF8 { a in
        code.withUTF8 { c in
          tax(
            tradeDate: tradeDate, tradeIdBytes: UnsafeRawBufferPointer(i),
            accountBytes: UnsafeRawBufferPointer(a),
            securityBytes: UnsafeRawBufferPointer(c), quantity: quantity, taxFen: taxFen)
        }
      }
    }
  }

  /// A tax row whose trade id, account identifier and security code are given as bytes
  /// (a TRADE line's fields): the same record as `tax(…)` with those texts.
  @inlinable public mutating func tax(
    tradeDate: Int32, tradeIdBytes: UnsafeRawBufferPointer, accountBytes: UnsafeRawBufferPointer,
    securityBytes: UnsafeRawBufferPointer, quantity: Int64, taxFen: Int64
  ) {
    append(
      bytes: Self.taxBytes(
        tradeId: tradeIdBytes.count, account: accountBytes.count, security: securityBytes.count)
    ) {
      $0.tax(
        tradeDate: tradeDate, tradeId: tradeIdBytes, account: accountBytes, security: securityBytes,
        quantity: quantity, taxFen: taxFen)
    }
  }

  public mutating func taxRemoved(tradeDate: Int32, tradeId: String) {
    record(.taxRemoved, size: 4 + Self.size(tradeId)) { c in
      c.i32(tradeDate)
      c.string(tradeId)
    }
  }

  public mutating func rejection(seq: Int64, record recordWord: String, ref: String, reason: RejectReason) {
    record(.rejection, size: 8 + Self.size(recordWord) + Self.size(ref) + 1) { c in
      c.i64(seq)
      c.string(recordWord)
      c.string(ref)
      c.u8(reason.rawValue)
    }
  }

  /// Appends a decoded event record again, byte for byte as the kernel wrote it.
  public mutating func encode(_ event: EffectEvent) {
    _ = eventHeader(seq: event.seq, outcome: event.outcome, count: event.effects.count)
    for e in event.effects { encode(e) }
  }

  public mutating func encode(_ effect: Effect) {
    switch effect {
    case .clearing(let c):
      clearing(
        tradeDate: c.tradeDate, settleDate: c.settleDate, participant: c.participant, security: c.security,
        buyQuantity: c.buyQuantity, sellQuantity: c.sellQuantity, buyAmount: c.buyAmount,
        sellAmount: c.sellAmount, fees: c.fees)
    case .settlement(let s, let visible):
      settlement(
        tradeDate: s.tradeDate, settleDate: s.settleDate, participant: s.participant, netFen: s.netFen,
        status: s.status, settledOn: s.settledOn, visible: visible)
    case .balance(let b): balance(participant: b.participant, balanceFen: b.balanceFen)
    case .holding(let h):
      holding(
        account: h.account, security: h.security, quantity: h.quantity, available: h.available,
        withheld: h.withheld)
    case .entitlement(let ordinal, let e):
      entitlement(
        ordinal: ordinal, security: e.security, recordDate: e.recordDate, payDate: e.payDate,
        account: e.account,
        kind: e.kind, value: e.value)
    case .tax(let t):
      tax(
        tradeDate: t.tradeDate, tradeId: t.tradeId, account: t.account, security: t.security,
        quantity: t.quantity, taxFen: t.taxFen)
    case .taxRemoved(let date, let id): taxRemoved(tradeDate: date, tradeId: id)
    case .rejection(let r): rejection(seq: r.seq, record: r.record, ref: r.ref, reason: r.reason)
    }
  }
}

/// Writes records into room made by `EffectWriter.append(bytes:_:)` (little-endian,
/// unaligned): the record writers below are the one layout of each record kind; the
/// `EffectWriter` methods of the same names call them.
public struct RecordCursor {
  // A pointer that moves through the room, not an offset: no overflow check per field
  // (the checked `offset += n` of each field cost more than its store). Bounds are
  // checked once per record (`begin`) and per identifier (`bytes`); `append` checks
  // that the records filled the room exactly.
  @usableFromInline var p: UnsafeMutableRawPointer
  @usableFromInline let end: UnsafeMutableRawPointer

  @inlinable init(room: UnsafeMutableRawBufferPointer) {
    p = room.baseAddress!
    end = p + room.count
  }

  /// Bytes of the room not yet written.
  @inlinable public var remaining: Int { end - p }

  // MARK: Records

  @inlinable @inline(__always) mutating func begin(_ kind: EffectKind, recordBytes: Int) {
    precondition(
      recordBytes >= 5 && recordBytes <= 5 + EffectFormat.recordBytesMax && recordBytes <= end - p,
      "effect record of \(recordBytes) bytes does not fit its room")
    u8(kind.rawValue)
    i32(Int32(truncatingIfNeeded: recordBytes - 5))
  }

  @inlinable @inline(__always)
  public mutating func eventHeader(seq: Int64, outcome: EffectOutcome, count: Int) {
    begin(.event, recordBytes: EffectWriter.eventHeaderBytes)
    i64(seq)
    u8(outcome.rawValue)
    i32(Int32(truncatingIfNeeded: count))
  }

  @inlinable @inline(__always)
  public mutating func clearing(
    tradeDate: Int32, settleDate: Int32, participant: UnsafeRawBufferPointer,
    security: UnsafeRawBufferPointer,
    buyQuantity: Int64, sellQuantity: Int64, buyAmount: Int128, sellAmount: Int128, fees: SideFees
  ) {
    begin(
      .clearing,
      recordBytes: EffectWriter.clearingBytes(participant: participant.count, security: security.count))
    i32(tradeDate)
    i32(settleDate)
    bytes(participant)
    bytes(security)
    i64(buyQuantity)
    i64(sellQuantity)
    i128(buyAmount)
    i128(sellAmount)
    i64(fees.handling)
    i64(fees.regulatory)
    i64(fees.transfer)
    i64(fees.stamp)
  }

  @inlinable @inline(__always)
  public mutating func settlement(
    tradeDate: Int32, settleDate: Int32, participant: UnsafeRawBufferPointer, netFen: Int128,
    status: SettlementStatus, settledOn: Int32, visible: Bool
  ) {
    begin(.settlement, recordBytes: EffectWriter.settlementBytes(participant: participant.count))
    i32(tradeDate)
    i32(settleDate)
    bytes(participant)
    i128(netFen)
    u8(status.rawValue)
    i32(settledOn)
    u8(visible ? 1 : 0)
  }

  @inlinable @inline(__always)
  public mutating func holding(
    account: UnsafeRawBufferPointer, security: UnsafeRawBufferPointer, quantity: Int64, available: Int64,
    withheld: Int64
  ) {
    begin(.holding, recordBytes: EffectWriter.holdingBytes(account: account.count, security: security.count))
    bytes(account)
    bytes(security)
    i64(quantity)
    i64(available)
    i64(withheld)
  }

  @inlinable @inline(__always)
  public mutating func tax(
    tradeDate: Int32, tradeId: UnsafeRawBufferPointer, account: UnsafeRawBufferPointer,
    security: UnsafeRawBufferPointer, quantity: Int64, taxFen: Int64
  ) {
    begin(
      .tax,
      recordBytes: EffectWriter.taxBytes(
        tradeId: tradeId.count, account: account.count, security: security.count))
    i32(tradeDate)
    bytes(tradeId)
    bytes(account)
    bytes(security)
    i64(quantity)
    i64(taxFen)
  }

  // MARK: Fields

  @inlinable @inline(__always) mutating func u8(_ v: UInt8) {
    p.storeBytes(of: v, as: UInt8.self)
    p += 1
  }
  @inlinable @inline(__always) mutating func i32(_ v: Int32) {
    p.storeBytes(of: v.littleEndian, as: Int32.self)
    p += 4
  }
  @inlinable @inline(__always) mutating func i64(_ v: Int64) {
    p.storeBytes(of: v.littleEndian, as: Int64.self)
    p += 8
  }
  @inlinable @inline(__always) mutating func i128(_ v: Int128) {
    i64(Int64(truncatingIfNeeded: v))
    i64(Int64(truncatingIfNeeded: v >> 64))
  }
  /// Length-prefixed bytes: the encoding of a string with these UTF-8 bytes. An
  /// identifier of SPEC §1's usual sizes (5-10 bytes) is copied by two overlapping
  /// word moves, not a `memmove` call (which cost more than the rest of its record).
  @inlinable @inline(__always) mutating func bytes(_ b: UnsafeRawBufferPointer) {
    let n = b.count
    precondition(n <= end - p - 4, "an identifier of \(n) bytes overruns its record's room")
    i32(Int32(truncatingIfNeeded: n))
    if let from = b.baseAddress, n > 0 {
      if n >= 8 && n <= 16 {
        let head = from.loadUnaligned(as: UInt64.self)
        let tail = from.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
        p.storeBytes(of: head, as: UInt64.self)
        p.storeBytes(of: tail, toByteOffset: n - 8, as: UInt64.self)
      } else if n >= 4 && n < 8 {
        let head = from.loadUnaligned(as: UInt32.self)
        let tail = from.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)
        p.storeBytes(of: head, as: UInt32.self)
        p.storeBytes(of: tail, toByteOffset: n - 4, as: UInt32.self)
      } else {
        p.copyMemory(from: from, byteCount: n)
      }
    }
    p += n
  }
  @inlinable @inline(__always) mutating func string(_ s: String) {
    var s = s
    s.withUTF8 { bytes(UnsafeRawBufferPointer($0)) }
  }
}

// MARK: - Reading

public enum EffectDecoder {
  /// Decodes a concatenation of event records (a batch's effect bytes, or a file's
  /// bytes after its magic). Refuses anything that breaks docs/EFFECTS.md.
  public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> [EffectEvent] {
    var r = ByteReader(bytes)
    var events: [EffectEvent] = []
    while !r.isAtEnd {
      let (kind, body) = try record(&r)
      guard kind == .event else {
        throw DecodeError(description: "effect record \(kind.word) outside an event")
      }
      var b = ByteReader(body)
      let seq = try b.i64()
      let outcomeRaw = try b.u8()
      guard let outcome = EffectOutcome(rawValue: outcomeRaw) else {
        throw DecodeError(description: "bad outcome \(outcomeRaw) at seq \(seq)")
      }
      let count = Int(UInt32(bitPattern: try b.i32()))
      guard b.isAtEnd else { throw DecodeError(description: "event record of seq \(seq) has trailing bytes") }
      guard seq >= 0, count <= EffectFormat.effectsPerEventMax else {
        throw DecodeError(description: "bad event record: seq \(seq), \(count) effects")
      }
      var effects: [Effect] = []
      effects.reserveCapacity(min(count, 1024))
      for _ in 0..<count {
        let (k, body) = try record(&r)
        effects.append(try effect(k, body, seq: seq))
      }
      events.append(EffectEvent(seq: seq, outcome: outcome, effects: effects))
    }
    return events
  }

  /// Decodes an effects file: the magic, then event records.
  public static func decodeFile(_ bytes: [UInt8]) throws(DecodeError) -> [EffectEvent] {
    guard bytes.count >= 8, Array(bytes.prefix(7)) == Array(EffectFormat.fileMagic.prefix(7)) else {
      throw DecodeError(description: "not an effects file (no TALLYFX magic)")
    }
    guard bytes[7] == EffectFormat.version else {
      throw DecodeError(description: "effects file version \(bytes[7]); this reads \(EffectFormat.version)")
    }
    return try decode(Array(bytes[8...]))
  }

  static func record(_ r: inout ByteReader) throws(DecodeError) -> (EffectKind, [UInt8]) {
    let raw = try r.u8()
    guard let kind = EffectKind(rawValue: raw) else {
      throw DecodeError(description: "unknown effect record kind 0x\(String(raw, radix: 16))")
    }
    let n = Int(UInt32(bitPattern: try r.i32()))
    guard n <= EffectFormat.recordBytesMax else {
      throw DecodeError(description: "effect record of \(n) bytes")
    }
    return (kind, try r.bytes(n))
  }

  static func effect(_ kind: EffectKind, _ body: [UInt8], seq: Int64) throws(DecodeError) -> Effect {
    var b = ByteReader(body)
    let e: Effect
    switch kind {
    case .event:
      throw DecodeError(description: "event record of seq \(seq) has fewer effects than it announced")
    case .clearing:
      e = .clearing(
        Report.Clearing(
          tradeDate: try b.i32(), settleDate: try b.i32(), participant: try b.string(),
          security: try b.string(),
          buyQuantity: try b.i64(), sellQuantity: try b.i64(), buyAmount: try b.i128(),
          sellAmount: try b.i128(),
          fees: SideFees(
            handling: try b.i64(), regulatory: try b.i64(), transfer: try b.i64(), stamp: try b.i64())))
    case .settlement:
      let s = Report.Settlement(
        tradeDate: try b.i32(), settleDate: try b.i32(), participant: try b.string(), netFen: try b.i128(),
        status: try b.enumeration(SettlementStatus.self), settledOn: try b.i32())
      let visible = try b.u8()
      guard visible <= 1 else { throw DecodeError(description: "bad visible flag \(visible)") }
      e = .settlement(s, visible: visible == 1)
    case .balance:
      e = .balance(Report.Balance(participant: try b.string(), balanceFen: try b.i128()))
    case .holding:
      e = .holding(
        Report.Holding(
          account: try b.string(), security: try b.string(), quantity: try b.i64(), available: try b.i64(),
          withheld: try b.i64()))
    case .entitlement:
      let ordinal = try b.i64()
      e = .entitlement(
        ordinal: ordinal,
        Report.Entitlement(
          security: try b.string(), recordDate: try b.i32(), payDate: try b.i32(), account: try b.string(),
          kind: try b.enumeration(EntitlementKind.self), value: try b.i64()))
    case .tax:
      e = .tax(
        Report.Tax(
          tradeDate: try b.i32(), tradeId: try b.string(), account: try b.string(), security: try b.string(),
          quantity: try b.i64(), taxFen: try b.i64()))
    case .taxRemoved:
      e = .taxRemoved(tradeDate: try b.i32(), tradeId: try b.string())
    case .rejection:
      e = .rejection(
        Report.Rejection(
          seq: try b.i64(), record: try b.string(), ref: try b.string(),
          reason: try b.enumeration(RejectReason.self)))
    }
    guard b.isAtEnd else {
      throw DecodeError(description: "\(kind.word) effect at seq \(seq) has trailing bytes")
    }
    return e
  }
}

// MARK: - Digest

/// A fast 128-bit digest of effect bytes, for votes on every batch (SHA-256 stays
/// for state digests at checkpoints). It detects divergence between honest replicas;
/// it is not built to resist a forger (CurveZMQ authenticates nodes). Definition in
/// docs/EFFECTS.md, "Digest": four independent 64-bit lanes over the bytes read as
/// little-endian 8-byte words (word j to lane j mod 4, the last word zero-padded),
/// then the length, then a final mix. Four lanes, not one chain: a chain's multiply
/// latency bounded the digest at ~3 GB/s, a fifth of a replica's effect cost on the
/// 1M-trade day; independent lanes run at the multiplier's throughput. Any change to
/// one word changes its lane's final value (each step is a bijection of the lane), so
/// a single differing word is always detected.
public enum EffectDigest {
  public static let byteCount = 16
  static let seeds: (UInt64, UInt64, UInt64, UInt64) = (
    0x7461_6C6C_7966_7832,  // "tallyfx2"
    0x9E37_79B9_7F4A_7C15, 0xBF58_476D_1CE4_E5B9, 0x94D0_49BB_1331_11EB
  )
  static let prime: UInt64 = 0x9FB2_1C65_1E98_DF25

  @inline(__always) static func fmix(_ x: UInt64) -> UInt64 {
    var k = x
    k ^= k >> 33
    k &*= 0xFF51_AFD7_ED55_8CCD
    k ^= k >> 33
    k &*= 0xC4CE_B9FE_1A85_EC53
    k ^= k >> 33
    return k
  }

  @inline(__always) static func step(_ lane: UInt64, _ w: UInt64) -> UInt64 {
    ((lane ^ w) &* prime).rotatedLeft(by: 29)
  }

  public static func of(_ bytes: [UInt8]) -> [UInt8] {
    var (l0, l1, l2, l3) = seeds
    bytes.withUnsafeBytes { raw in
      let n = raw.count
      @inline(__always) func word(_ i: Int) -> UInt64 {
        UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))
      }
      var i = 0
      while i + 32 <= n {
        l0 = step(l0, word(i))
        l1 = step(l1, word(i + 8))
        l2 = step(l2, word(i + 16))
        l3 = step(l3, word(i + 24))
        i += 32
      }
      // The tail (under 32 bytes): whole words, then a zero-padded last one, to lanes 0,
      // 1, 2, 3 in order (word j to lane j mod 4 still).
      var lane = 0
      while i < n {
        var w: UInt64 = 0
        if i + 8 <= n {
          w = word(i)
        } else {
          for k in 0..<(n - i) { w |= UInt64(raw[i + k]) << UInt64(8 * k) }
        }
        switch lane {
        case 0: l0 = step(l0, w)
        case 1: l1 = step(l1, w)
        case 2: l2 = step(l2, w)
        default: l3 = step(l3, w)
        }
        lane += 1
        i += 8
      }
    }
    var a = fmix(l0 ^ l2.rotatedLeft(by: 32) ^ UInt64(bytes.count))
    let b = fmix(l1 ^ l3.rotatedLeft(by: 32) ^ a)
    a = a &+ b
    var out = [UInt8](repeating: 0, count: 16)
    for k in 0..<8 {
      out[k] = UInt8(truncatingIfNeeded: a >> UInt64(8 * k))
      out[8 + k] = UInt8(truncatingIfNeeded: b >> UInt64(8 * k))
    }
    return out
  }
}

extension UInt64 {
  @inline(__always) func rotatedLeft(by k: UInt64) -> UInt64 { (self << k) | (self >> (64 - k)) }
}
