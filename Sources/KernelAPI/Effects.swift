// Business effects (docs/EFFECTS.md): for every applied or rejected event, the
// SPEC §5 rows it created or changed, with their full new values. This file owns
// the canonical binary encoding (version 2), its decoder, the per-batch digest and
// the buffer the state machine writes into. The text rendering is TallyFormat's
// EffectText.
//
// Version 2 names rows by their canonical row ids (docs/CANONICAL-ROWS.md), not by
// their key strings: a row's key is written once, in a key record of the event that
// creates it (or in a snapshot), and a decoder keeps the id → key dictionary. A
// TRADE's records shrank from ~436 to ~250 bytes and no longer read identifier
// strings (issue 9: the effects cost).

/// Version of the effect encoding (docs/EFFECTS.md). A change of any record's
/// layout is a new version.
public enum EffectFormat {
  public static let version: UInt8 = 2
  /// `TALLYFX` and the version byte: the first 8 bytes of an effects file.
  public static let fileMagic: [UInt8] = Array("TALLYFX".utf8) + [version]
  /// Limits a decoder enforces (a record is refused above them).
  public static let recordBytesMax = 1 << 20
  public static let effectsPerEventMax = 1 << 26
  /// The most bytes one `EffectWriter.append(bytes:_:)` makes room for (the largest
  /// event, an OPEN releasing a day's purchases, is ~33 MB on the 1M-trade day).
  public static let roomBytesMax = 1 << 30
  /// The most rows a decoder's dictionary keeps per table (a row id at or above it is
  /// refused): far above the 1M-account day's ~5M positions.
  public static let dictionaryRowsMax = 1 << 28
}

/// Record kinds: the first byte of every record. Key records (0x02-0x07) name a row
/// once; value records (0x10-0x17) carry a row's new value.
public enum EffectKind: UInt8, Sendable, CaseIterable {
  case event = 0x01
  case participantKey = 0x02
  case accountKey = 0x03
  case securityKey = 0x04
  case clearingKey = 0x05
  case settlementKey = 0x06
  case positionKey = 0x07
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
    case .participantKey: return "participant_key"
    case .accountKey: return "account_key"
    case .securityKey: return "security_key"
    case .clearingKey: return "clearing_key"
    case .settlementKey: return "settlement_key"
    case .positionKey: return "position_key"
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

  /// A key record: it names a row for the records that follow and is not an effect.
  public var isKey: Bool { rawValue >= 0x02 && rawValue <= 0x07 }
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

/// One effect row, decoded (its keys resolved through the dictionary). The row structs
/// are SPEC §5's columns (Report's rows).
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

/// One event's record, decoded: its header and its effects (value records, keys
/// resolved), in emission order. Key records are not effects: they feed the decoder.
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
/// integers little-endian, strings as `u32le byte count` + UTF-8 bytes, row ids u32.
public struct EffectWriter: Sendable {
  /// The records written so far (`bytes`); internal storage reachable from the
  /// inlinable writers, so that a kernel's per-record calls inline into its own code.
  @usableFromInline var storage: [UInt8] = []
  public var bytes: [UInt8] { storage }

  /// No room is reserved for `capacity` 0: reserving room on the empty array allocated
  /// a buffer of none (`reserveCapacity(0)` copies the shared empty storage), which a
  /// kernel that makes a writer per event paid as a malloc and a free each time.
  public init(capacity: Int = 0) {
    if capacity > 0 { storage.reserveCapacity(capacity) }
  }

  @inlinable public var count: Int { storage.count }

  public mutating func removeAll() { storage.removeAll(keepingCapacity: true) }

  /// Makes room for `bytes` more bytes at once: an event of a million records (an OPEN
  /// releasing a day's purchases, ~33 MB) would otherwise grow the buffer by doubling,
  /// copying what it holds at each step.
  public mutating func reserve(additional bytes: Int) {
    if storage.capacity - storage.count < bytes { storage.reserveCapacity(storage.count + bytes) }
  }

  /// Starts loading for writing the cache lines of the `bytes` bytes that begin
  /// `aheadBytes` past the records written so far, where the buffer's capacity reaches.
  /// A kernel that writes a few hundred bytes of records an event calls it once an
  /// event, so that each line is asked for several events before its first store: the
  /// buffer a batch writes into is memory the allocator recycled, long out of every
  /// cache, and stores to lines not yet loaded filled the core's store buffer (perf of a
  /// V1 replica: the records' writing stalled ~300 ns a TRADE). Changes nothing but time.
  @inlinable @inline(__always)
  public func prefetchForAppend(aheadBytes: Int, bytes: Int) {
    let capacity = storage.capacity
    storage.withUnsafeBufferPointer { b in
      let start = b.count + aheadBytes
      guard aheadBytes >= 0 && bytes >= 0 && start + bytes <= capacity, let base = b.baseAddress else {
        return
      }
      var offset = 0
      while offset < bytes {
        llvmPrefetch(UnsafeRawPointer(base + start + offset), 1, 3, 1)
        offset += 64
      }
    }
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

  // Whole record sizes (kind, length and body), for `append(bytes:_:)`.
  public static let eventHeaderBytes = 5 + 13
  public static let clearingKeyBytes = 5 + 20
  public static let settlementKeyBytes = 5 + 16
  public static let positionKeyBytes = 5 + 12
  public static let clearingBytes = 5 + 4 + 80
  public static let settlementBytes = 5 + 26
  public static let balanceBytes = 5 + 20
  public static let holdingBytes = 5 + 28
  public static let entitlementBytes = 5 + 33
  /// A participant, account or security key record of an identifier of `name` bytes.
  @inlinable public static func nameKeyBytes(name: Int) -> Int { 5 + 8 + name }
  @inlinable public static func taxBytes(tradeId: Int) -> Int { 5 + 8 + tradeId + 24 }
  @inlinable public static func taxRemovedBytes(tradeId: Int) -> Int { 5 + 8 + tradeId }
  @inlinable public static func rejectionBytes(record: Int, ref: Int) -> Int { 5 + 17 + record + ref }

  /// Patches an event header's record count (written by `eventHeader`).
  public mutating func patchCount(headerAt at: Int, count: Int) {
    let n = UInt32(count)
    let base = at + 5 + 8 + 1
    storage[base] = UInt8(truncatingIfNeeded: n)
    storage[base + 1] = UInt8(truncatingIfNeeded: n >> 8)
    storage[base + 2] = UInt8(truncatingIfNeeded: n >> 16)
    storage[base + 3] = UInt8(truncatingIfNeeded: n >> 24)
  }

  // One function per record kind, each a room of one record written by the cursor's
  // writer of the same name (the one layout of each kind).

  /// Returns the offset to patch the record count at (`patchCount`).
  @inlinable public mutating func eventHeader(seq: Int64, outcome: EffectOutcome, count: Int) -> Int {
    let at = storage.count
    append(bytes: Self.eventHeaderBytes) { $0.eventHeader(seq: seq, outcome: outcome, count: count) }
    return at
  }

  public mutating func participantKey(_ id: Int32, _ participant: String) {
    nameKey(.participantKey, id, participant)
  }
  public mutating func accountKey(_ id: Int32, _ account: String) { nameKey(.accountKey, id, account) }
  public mutating func securityKey(_ id: Int32, _ security: String) { nameKey(.securityKey, id, security) }

  @inlinable mutating func nameKey(_ kind: EffectKind, _ id: Int32, _ name: String) {
    var s = name
    s.withUTF8 { b in
      let b = UnsafeRawBufferPointer(b)
      append(bytes: Self.nameKeyBytes(name: b.count)) { $0.nameKey(kind, id, b) }
    }
  }

  @inlinable public mutating func clearingKey(
    _ row: Int32, tradeDate: Int32, settleDate: Int32, participant: Int32, security: Int32
  ) {
    append(bytes: Self.clearingKeyBytes) {
      $0.clearingKey(
        row, tradeDate: tradeDate, settleDate: settleDate, participant: participant, security: security)
    }
  }

  @inlinable public mutating func settlementKey(
    _ row: Int32, tradeDate: Int32, settleDate: Int32, participant: Int32
  ) {
    append(bytes: Self.settlementKeyBytes) {
      $0.settlementKey(row, tradeDate: tradeDate, settleDate: settleDate, participant: participant)
    }
  }

  @inlinable public mutating func positionKey(_ row: Int32, account: Int32, security: Int32) {
    append(bytes: Self.positionKeyBytes) { $0.positionKey(row, account: account, security: security) }
  }

  @inlinable public mutating func clearing(
    _ row: Int32, buyQuantity: Int64, sellQuantity: Int64, buyAmount: Int128, sellAmount: Int128,
    fees: SideFees
  ) {
    append(bytes: Self.clearingBytes) {
      $0.clearing(
        row, buyQuantity: buyQuantity, sellQuantity: sellQuantity, buyAmount: buyAmount,
        sellAmount: sellAmount, fees: fees)
    }
  }

  @inlinable public mutating func settlement(
    _ row: Int32, netFen: Int128, status: SettlementStatus, settledOn: Int32, visible: Bool
  ) {
    append(bytes: Self.settlementBytes) {
      $0.settlement(row, netFen: netFen, status: status, settledOn: settledOn, visible: visible)
    }
  }

  @inlinable public mutating func balance(participant: Int32, balanceFen: Int128) {
    append(bytes: Self.balanceBytes) { $0.balance(participant: participant, balanceFen: balanceFen) }
  }

  @inlinable public mutating func holding(_ row: Int32, quantity: Int64, available: Int64, withheld: Int64) {
    append(bytes: Self.holdingBytes) {
      $0.holding(row, quantity: quantity, available: available, withheld: withheld)
    }
  }

  public mutating func entitlement(
    ordinal: Int64, security: Int32, recordDate: Int32, payDate: Int32, account: Int32, kind: EntitlementKind,
    value: Int64
  ) {
    append(bytes: Self.entitlementBytes) {
      $0.entitlement(
        ordinal: ordinal, security: security, recordDate: recordDate, payDate: payDate, account: account,
        kind: kind, value: value)
    }
  }

  public mutating func tax(
    tradeDate: Int32, tradeId: String, account: Int32, security: Int32, quantity: Int64, taxFen: Int64
  ) {
    var id = tradeId
    id.withUTF8 { i in
      let i = UnsafeRawBufferPointer(i)
      append(bytes: Self.taxBytes(tradeId: i.count)) {
        $0.tax(
          tradeDate: tradeDate, tradeId: i, account: account, security: security, quantity: quantity,
          taxFen: taxFen)
      }
    }
  }

  public mutating func taxRemoved(tradeDate: Int32, tradeId: String) {
    var id = tradeId
    id.withUTF8 { i in
      let i = UnsafeRawBufferPointer(i)
      append(bytes: Self.taxRemovedBytes(tradeId: i.count)) {
        $0.taxRemoved(tradeDate: tradeDate, tradeId: i)
      }
    }
  }

  public mutating func rejection(seq: Int64, record recordWord: String, ref: String, reason: RejectReason) {
    var (word, r) = (recordWord, ref)
    word.withUTF8 { w in
      r.withUTF8 { f in
        let (w, f) = (UnsafeRawBufferPointer(w), UnsafeRawBufferPointer(f))
        append(bytes: Self.rejectionBytes(record: w.count, ref: f.count)) {
          $0.rejection(seq: seq, record: w, ref: f, reason: reason)
        }
      }
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

  /// A participant, account or security key record: `id`, the identifier's bytes.
  @inlinable @inline(__always)
  public mutating func nameKey(_ kind: EffectKind, _ id: Int32, _ name: UnsafeRawBufferPointer) {
    precondition(
      kind == .participantKey || kind == .accountKey || kind == .securityKey, "\(kind.word) is no name key")
    begin(kind, recordBytes: EffectWriter.nameKeyBytes(name: name.count))
    row(id)
    bytes(name)
  }

  @inlinable @inline(__always)
  public mutating func clearingKey(
    _ id: Int32, tradeDate: Int32, settleDate: Int32, participant: Int32, security: Int32
  ) {
    begin(.clearingKey, recordBytes: EffectWriter.clearingKeyBytes)
    row(id)
    i32(tradeDate)
    i32(settleDate)
    row(participant)
    row(security)
  }

  @inlinable @inline(__always)
  public mutating func settlementKey(_ id: Int32, tradeDate: Int32, settleDate: Int32, participant: Int32) {
    begin(.settlementKey, recordBytes: EffectWriter.settlementKeyBytes)
    row(id)
    i32(tradeDate)
    i32(settleDate)
    row(participant)
  }

  @inlinable @inline(__always)
  public mutating func positionKey(_ id: Int32, account: Int32, security: Int32) {
    begin(.positionKey, recordBytes: EffectWriter.positionKeyBytes)
    row(id)
    row(account)
    row(security)
  }

  @inlinable @inline(__always)
  public mutating func clearing(
    _ id: Int32, buyQuantity: Int64, sellQuantity: Int64, buyAmount: Int128, sellAmount: Int128,
    fees: SideFees
  ) {
    begin(.clearing, recordBytes: EffectWriter.clearingBytes)
    row(id)
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
    _ id: Int32, netFen: Int128, status: SettlementStatus, settledOn: Int32, visible: Bool
  ) {
    begin(.settlement, recordBytes: EffectWriter.settlementBytes)
    row(id)
    i128(netFen)
    u8(status.rawValue)
    i32(settledOn)
    u8(visible ? 1 : 0)
  }

  @inlinable @inline(__always)
  public mutating func balance(participant: Int32, balanceFen: Int128) {
    begin(.balance, recordBytes: EffectWriter.balanceBytes)
    row(participant)
    i128(balanceFen)
  }

  @inlinable @inline(__always)
  public mutating func holding(_ id: Int32, quantity: Int64, available: Int64, withheld: Int64) {
    begin(.holding, recordBytes: EffectWriter.holdingBytes)
    row(id)
    i64(quantity)
    i64(available)
    i64(withheld)
  }

  @inlinable @inline(__always)
  public mutating func entitlement(
    ordinal: Int64, security: Int32, recordDate: Int32, payDate: Int32, account: Int32, kind: EntitlementKind,
    value: Int64
  ) {
    begin(.entitlement, recordBytes: EffectWriter.entitlementBytes)
    i64(ordinal)
    row(security)
    i32(recordDate)
    i32(payDate)
    row(account)
    u8(kind.rawValue)
    i64(value)
  }

  @inlinable @inline(__always)
  public mutating func tax(
    tradeDate: Int32, tradeId: UnsafeRawBufferPointer, account: Int32, security: Int32, quantity: Int64,
    taxFen: Int64
  ) {
    begin(.tax, recordBytes: EffectWriter.taxBytes(tradeId: tradeId.count))
    i32(tradeDate)
    bytes(tradeId)
    row(account)
    row(security)
    i64(quantity)
    i64(taxFen)
  }

  @inlinable @inline(__always)
  public mutating func taxRemoved(tradeDate: Int32, tradeId: UnsafeRawBufferPointer) {
    begin(.taxRemoved, recordBytes: EffectWriter.taxRemovedBytes(tradeId: tradeId.count))
    i32(tradeDate)
    bytes(tradeId)
  }

  @inlinable @inline(__always)
  public mutating func rejection(
    seq: Int64, record: UnsafeRawBufferPointer, ref: UnsafeRawBufferPointer, reason: RejectReason
  ) {
    begin(.rejection, recordBytes: EffectWriter.rejectionBytes(record: record.count, ref: ref.count))
    i64(seq)
    bytes(record)
    bytes(ref)
    u8(reason.rawValue)
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
  /// A row id (u32): canonical ids are never negative.
  @inlinable @inline(__always) mutating func row(_ id: Int32) {
    precondition(id >= 0, "a negative row id in an effect record")
    i32(id)
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
}

// MARK: - Reading

/// What a decoder knows of the rows records name: the keys of every row whose key
/// record it has read (docs/EFFECTS.md, "Keys"), by table and row id.
public struct EffectDictionary: Sendable, Equatable {
  public struct ClearingKey: Sendable, Equatable {
    public var tradeDate: Int32
    public var settleDate: Int32
    public var participant: Int32
    public var security: Int32
  }
  public struct SettlementKey: Sendable, Equatable {
    public var tradeDate: Int32
    public var settleDate: Int32
    public var participant: Int32
  }
  public struct PositionKey: Sendable, Equatable {
    public var account: Int32
    public var security: Int32
  }
  public var participants: [String] = []
  public var accounts: [String] = []
  public var securities: [String] = []
  public var clearing: [ClearingKey] = []
  public var settlement: [SettlementKey] = []
  public var positions: [PositionKey] = []

  public init() {}

  /// The keys of the reference rows (docs/CANONICAL-ROWS.md: reference rows first, in
  /// file order; a position where holdings.csv first names its (account, security)),
  /// without building a state: what a decoder of the voted stream knows before seq 1
  /// (the voter's explanation of a dissent). Equal to what the seq-0 snapshot's key
  /// records give (`EffectsTests`).
  public init(reference: ReferenceData) {
    participants = reference.participants.map(\.id)
    accounts = reference.accounts.map(\.id)
    securities = reference.securities.map(\.code)
    var seen = Set<UInt64>()
    seen.reserveCapacity(reference.holdings.count)
    for h in reference.holdings
    where seen.insert(UInt64(UInt32(bitPattern: h.account)) << 32 | UInt64(UInt32(bitPattern: h.security)))
      .inserted
    {
      positions.append(PositionKey(account: h.account, security: h.security))
    }
  }

  /// Adds the row `id` of a table holding `table.count` rows: the next id appends, a
  /// known id must repeat its key exactly (a batch delivered twice), a later id is a gap.
  static func learn<T: Equatable>(_ table: inout [T], _ id: Int32, _ key: T, _ kind: EffectKind)
    throws(DecodeError)
  {
    let i = Int(id)
    if i == table.count {
      guard i < EffectFormat.dictionaryRowsMax else {
        throw DecodeError(description: "\(kind.word) \(id): over dictionaryRowsMax rows")
      }
      table.append(key)
    } else if i < table.count {
      guard table[i] == key else {
        throw DecodeError(description: "\(kind.word) \(id) names another key than it did before")
      }
    } else {
      throw DecodeError(description: "\(kind.word) \(id) arrived before row \(table.count) of its table")
    }
  }
}

/// Decodes records (docs/EFFECTS.md) into events whose effects carry their SPEC §5
/// keys. It keeps the dictionary of row keys across calls, so the bytes of a stream or
/// file are decoded in order, from a snapshot (which resets it) or from a decoder that
/// has read everything before them.
public struct EffectDecoder: Sendable {
  public private(set) var dictionary = EffectDictionary()
  /// Lenient only: key records read out of order (a batch's own, without the rows
  /// before them), by table and id.
  var sparse = SparseKeys()

  struct SparseKeys: Sendable {
    var participants: [Int32: String] = [:]
    var accounts: [Int32: String] = [:]
    var securities: [Int32: String] = [:]
    var clearing: [Int32: EffectDictionary.ClearingKey] = [:]
    var settlement: [Int32: EffectDictionary.SettlementKey] = [:]
    var positions: [Int32: EffectDictionary.PositionKey] = [:]
  }
  /// Ids missing from the dictionary decode as placeholders (`participant#3`,
  /// `position#17`) instead of failing: for one batch read without the records before
  /// it (the voter's explanation of a dissent).
  public let lenient: Bool

  /// A decoder that starts from `dictionary` (e.g. the reference rows' keys).
  public init(lenient: Bool = false, dictionary: EffectDictionary = EffectDictionary()) {
    self.lenient = lenient
    self.dictionary = dictionary
  }

  /// Decodes a concatenation of event records (a batch's effect bytes, or a file's
  /// bytes after its magic) with a fresh dictionary: the bytes must start with a
  /// snapshot, or name no row of an earlier event.
  public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> [EffectEvent] {
    var d = EffectDecoder()
    return try d.decode(bytes)
  }

  /// Decodes an effects file: the magic, then event records from a snapshot.
  public static func decodeFile(_ bytes: [UInt8]) throws(DecodeError) -> [EffectEvent] {
    guard bytes.count >= 8, Array(bytes.prefix(7)) == Array(EffectFormat.fileMagic.prefix(7)) else {
      throw DecodeError(description: "not an effects file (no TALLYFX magic)")
    }
    guard bytes[7] == EffectFormat.version else {
      throw DecodeError(description: "effects file version \(bytes[7]); this reads \(EffectFormat.version)")
    }
    return try decode(Array(bytes[8...]))
  }

  /// The records of the events of `bytes` whose seqs lie in `seqs` (a batch's events
  /// are in seq order, so they are one run of bytes), from the framing alone; empty when
  /// none does. A consumer keeps what it has not applied yet and decodes that.
  public static func records(of bytes: [UInt8], seqs: ClosedRange<Int64>) throws(DecodeError) -> [UInt8] {
    let kept = try events(bytes).filter { seqs.contains($0.seq) }
    guard let from = kept.first?.range.lowerBound, let to = kept.last?.range.upperBound else { return [] }
    return Array(bytes[from..<to])
  }

  /// The events of `bytes` by seq and byte range, from the framing alone (no
  /// dictionary): to keep some of a batch's events (`tally follow` drops those it has).
  public static func events(_ bytes: [UInt8]) throws(DecodeError) -> [(seq: Int64, range: Range<Int>)] {
    var r = ByteReader(bytes)
    var out: [(seq: Int64, range: Range<Int>)] = []
    var at = 0
    while !r.isAtEnd {
      let (kind, body) = try record(&r)
      guard kind == .event else {
        throw DecodeError(description: "effect record \(kind.word) outside an event")
      }
      let (seq, _, count) = try header(body)
      var end = at + 5 + body.count
      for _ in 0..<count {
        let (k, b) = try record(&r)
        guard k != .event else {
          throw DecodeError(description: "event record of seq \(seq) has fewer records than it announced")
        }
        end += 5 + b.count
      }
      out.append((seq, at..<end))
      at = end
    }
    return out
  }

  /// Decodes event records in order, learning their key records.
  public mutating func decode(_ bytes: [UInt8]) throws(DecodeError) -> [EffectEvent] {
    try read(bytes, values: true)
  }

  /// Reads only the key records of `bytes` (value records are skipped, not checked
  /// beyond their framing): keeps the dictionary current at a fraction of `decode`'s cost.
  public mutating func learnKeys(_ bytes: [UInt8]) throws(DecodeError) {
    _ = try read(bytes, values: false)
  }

  mutating func read(_ bytes: [UInt8], values: Bool) throws(DecodeError) -> [EffectEvent] {
    var r = ByteReader(bytes)
    var events: [EffectEvent] = []
    while !r.isAtEnd {
      let (kind, body) = try Self.record(&r)
      guard kind == .event else {
        throw DecodeError(description: "effect record \(kind.word) outside an event")
      }
      let (seq, outcome, count) = try Self.header(body)
      if outcome == .snapshot {
        dictionary = EffectDictionary()
        sparse = SparseKeys()
      }
      var effects: [Effect] = []
      if values { effects.reserveCapacity(min(count, 1024)) }
      for _ in 0..<count {
        let (k, body) = try Self.record(&r)
        guard k != .event else {
          throw DecodeError(description: "event record of seq \(seq) has fewer records than it announced")
        }
        if k.isKey {
          try learn(k, body, seq: seq)
        } else if values {
          effects.append(try effect(k, body, seq: seq))
        }
      }
      if values { events.append(EffectEvent(seq: seq, outcome: outcome, effects: effects)) }
    }
    return events
  }

  static func header(_ body: [UInt8]) throws(DecodeError) -> (Int64, EffectOutcome, Int) {
    var b = ByteReader(body)
    let seq = try b.i64()
    let outcomeRaw = try b.u8()
    guard let outcome = EffectOutcome(rawValue: outcomeRaw) else {
      throw DecodeError(description: "bad outcome \(outcomeRaw) at seq \(seq)")
    }
    let count = Int(UInt32(bitPattern: try b.i32()))
    guard b.isAtEnd else { throw DecodeError(description: "event record of seq \(seq) has trailing bytes") }
    guard seq >= 0, count <= EffectFormat.effectsPerEventMax else {
      throw DecodeError(description: "bad event record: seq \(seq), \(count) records")
    }
    return (seq, outcome, count)
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

  mutating func learn(_ kind: EffectKind, _ body: [UInt8], seq: Int64) throws(DecodeError) {
    var b = ByteReader(body)
    let id = try Self.rowId(&b, kind)
    switch kind {
    case .participantKey:
      try keep(&dictionary.participants, &sparse.participants, id, try b.string(), kind)
    case .accountKey:
      try keep(&dictionary.accounts, &sparse.accounts, id, try b.string(), kind)
    case .securityKey:
      try keep(&dictionary.securities, &sparse.securities, id, try b.string(), kind)
    case .clearingKey:
      let key = EffectDictionary.ClearingKey(
        tradeDate: try b.i32(), settleDate: try b.i32(), participant: try Self.rowId(&b, kind),
        security: try Self.rowId(&b, kind))
      _ = try participantName(key.participant)
      _ = try securityName(key.security)
      try keep(&dictionary.clearing, &sparse.clearing, id, key, kind)
    case .settlementKey:
      let key = EffectDictionary.SettlementKey(
        tradeDate: try b.i32(), settleDate: try b.i32(), participant: try Self.rowId(&b, kind))
      _ = try participantName(key.participant)
      try keep(&dictionary.settlement, &sparse.settlement, id, key, kind)
    case .positionKey:
      let key = EffectDictionary.PositionKey(
        account: try Self.rowId(&b, kind), security: try Self.rowId(&b, kind))
      _ = try accountName(key.account)
      _ = try securityName(key.security)
      try keep(&dictionary.positions, &sparse.positions, id, key, kind)
    default:
      preconditionFailure("\(kind.word) is not a key record")
    }
    guard b.isAtEnd else {
      throw DecodeError(description: "\(kind.word) record at seq \(seq) has trailing bytes")
    }
  }

  /// Adds a key to its table; a lenient decoder keeps one it cannot append (a batch read
  /// without the rows before it) aside, by id.
  func keep<T: Equatable>(
    _ table: inout [T], _ aside: inout [Int32: T], _ id: Int32, _ key: T, _ kind: EffectKind
  )
    throws(DecodeError)
  {
    if lenient && Int(id) > table.count {
      if let known = aside[id], known != key {
        throw DecodeError(description: "\(kind.word) \(id) names another key than it did before")
      }
      aside[id] = key
      return
    }
    try EffectDictionary.learn(&table, id, key, kind)
  }

  static func rowId(_ b: inout ByteReader, _ kind: EffectKind) throws(DecodeError) -> Int32 {
    let id = try b.i32()
    guard id >= 0, Int(id) < EffectFormat.dictionaryRowsMax else {
      throw DecodeError(description: "\(kind.word) record names row \(UInt32(bitPattern: id))")
    }
    return id
  }

  /// The identifier of row `id` of a name table (the dense table, else the lenient
  /// decoder's keys read out of order); a placeholder when lenient and unknown.
  func name(_ table: [String], _ aside: [Int32: String], _ id: Int32, _ what: String) throws(DecodeError)
    -> String
  {
    if Int(id) < table.count { return table[Int(id)] }
    if let known = aside[id] { return known }
    guard lenient else { throw DecodeError(description: "\(what) \(id) is not in the dictionary") }
    return "\(what)#\(id)"
  }
  func participantName(_ id: Int32) throws(DecodeError) -> String {
    try name(dictionary.participants, sparse.participants, id, "participant")
  }
  func accountName(_ id: Int32) throws(DecodeError) -> String {
    try name(dictionary.accounts, sparse.accounts, id, "account")
  }
  func securityName(_ id: Int32) throws(DecodeError) -> String {
    try name(dictionary.securities, sparse.securities, id, "security")
  }

  /// A row's key from the dense table or the lenient decoder's keys read out of order.
  func row<T>(_ table: [T], _ aside: [Int32: T], _ id: Int32) -> T? {
    Int(id) < table.count ? table[Int(id)] : aside[id]
  }

  func clearingKey(_ id: Int32) throws(DecodeError) -> (Int32, Int32, String, String) {
    if let k = row(dictionary.clearing, sparse.clearing, id) {
      return (k.tradeDate, k.settleDate, try participantName(k.participant), try securityName(k.security))
    }
    guard lenient else { throw DecodeError(description: "clearing row \(id) is not in the dictionary") }
    return (0, 0, "clearing#\(id)", "")
  }

  func settlementKey(_ id: Int32) throws(DecodeError) -> (Int32, Int32, String) {
    if let k = row(dictionary.settlement, sparse.settlement, id) {
      return (k.tradeDate, k.settleDate, try participantName(k.participant))
    }
    guard lenient else { throw DecodeError(description: "settlement row \(id) is not in the dictionary") }
    return (0, 0, "settlement#\(id)")
  }

  func positionKey(_ id: Int32) throws(DecodeError) -> (String, String) {
    if let k = row(dictionary.positions, sparse.positions, id) {
      return (try accountName(k.account), try securityName(k.security))
    }
    guard lenient else { throw DecodeError(description: "position \(id) is not in the dictionary") }
    return ("position#\(id)", "")
  }

  func effect(_ kind: EffectKind, _ body: [UInt8], seq: Int64) throws(DecodeError) -> Effect {
    var b = ByteReader(body)
    let e: Effect
    switch kind {
    case .event, .participantKey, .accountKey, .securityKey, .clearingKey, .settlementKey, .positionKey:
      preconditionFailure("\(kind.word) is not a value record")
    case .clearing:
      let (tradeDate, settleDate, participant, security) = try clearingKey(try Self.rowId(&b, kind))
      e = .clearing(
        Report.Clearing(
          tradeDate: tradeDate, settleDate: settleDate, participant: participant, security: security,
          buyQuantity: try b.i64(), sellQuantity: try b.i64(), buyAmount: try b.i128(),
          sellAmount: try b.i128(),
          fees: SideFees(
            handling: try b.i64(), regulatory: try b.i64(), transfer: try b.i64(), stamp: try b.i64())))
    case .settlement:
      let (tradeDate, settleDate, participant) = try settlementKey(try Self.rowId(&b, kind))
      let s = Report.Settlement(
        tradeDate: tradeDate, settleDate: settleDate, participant: participant, netFen: try b.i128(),
        status: try b.enumeration(SettlementStatus.self), settledOn: try b.i32())
      let visible = try b.u8()
      guard visible <= 1 else { throw DecodeError(description: "bad visible flag \(visible)") }
      e = .settlement(s, visible: visible == 1)
    case .balance:
      let participant = try participantName(try Self.rowId(&b, kind))
      e = .balance(Report.Balance(participant: participant, balanceFen: try b.i128()))
    case .holding:
      let (account, security) = try positionKey(try Self.rowId(&b, kind))
      e = .holding(
        Report.Holding(
          account: account, security: security, quantity: try b.i64(), available: try b.i64(),
          withheld: try b.i64()))
    case .entitlement:
      let ordinal = try b.i64()
      let security = try securityName(try Self.rowId(&b, kind))
      let recordDate = try b.i32()
      let payDate = try b.i32()
      let account = try accountName(try Self.rowId(&b, kind))
      e = .entitlement(
        ordinal: ordinal,
        Report.Entitlement(
          security: security, recordDate: recordDate, payDate: payDate, account: account,
          kind: try b.enumeration(EntitlementKind.self), value: try b.i64()))
    case .tax:
      let tradeDate = try b.i32()
      let tradeId = try b.string()
      let account = try accountName(try Self.rowId(&b, kind))
      let security = try securityName(try Self.rowId(&b, kind))
      e = .tax(
        Report.Tax(
          tradeDate: tradeDate, tradeId: tradeId, account: account, security: security,
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
