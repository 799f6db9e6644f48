// The emission hooks the state machine calls right after each mutation of a
// SPEC §5 row (`emitClearing(row)`, `emitHolding(position)`, ...) and at the end of
// every event (`emitEvent`). A hook only notes which row was touched; at the end of
// the event each touched row is written once, with its final value, in the canonical
// order of docs/EFFECTS.md: by kind, then by row id (canonical ids are creation
// numbers), after the key records of the rows the event created. That order depends
// neither on the order of the hooks nor on the order of derived indexes (which a
// restored state rebuilds differently). Disabled (the default), every hook is one
// predictable branch.

import KernelAPI

/// Where the state machine writes effect records; the engine takes them per batch.
public struct EffectBuffer: Sendable {
  /// Above this many bytes the engine did not take the buffer (one batch of SPEC §7
  /// is far below it): a programming error, stopped loudly.
  public static let bytesMax = 1 << 30
  /// A linear scan dedupes the touched rows of an event up to this many; beyond it they
  /// are appended as they come and deduplicated when sorted (an OPEN that makes a
  /// million bought positions available touches each once: a set cost more per row
  /// than the rest of its record).
  static let linearTouchedMax = 16
  /// From this many touched rows an event's keys are sorted through bitmaps
  /// (`sortUniqueByBitmap`), if they need at most `bitmapWordsPerKeyMax` bitmap words
  /// a key; below, or sparser, by `sort`.
  static let bitmapTouchedMin = 4_096
  static let bitmapWordsPerKeyMax = 4
  /// Bytes reserved a touched row when an event touches many (a holding record with
  /// SPEC §1's longest identifiers stays under it; a longer one only grows the buffer).
  static let reservedBytesPerRow = 64

  public internal(set) var enabled = false
  var touched: [UInt64] = []
  var writer = EffectWriter(capacity: 0)
  /// Rows per table whose key the stream already carries (in a snapshot or an earlier
  /// event's key records): rows at and above these counts were created by the event
  /// being written, which writes their key records.
  var keysEmitted = KeyCounts()

  struct KeyCounts: Equatable {
    var participants = 0
    var accounts = 0
    var securities = 0
    var clearing = 0
    var settlement = 0
    var positions = 0
    var total: Int { participants + accounts + securities + clearing + settlement + positions }
  }

  public init() {}

  @inline(__always) static func key(_ kind: EffectKind, _ id: Int32) -> UInt64 {
    UInt64(kind.rawValue) << 32 | UInt64(UInt32(bitPattern: id))
  }

  @inline(__always) mutating func touch(_ kind: EffectKind, _ id: Int32) {
    let k = Self.key(kind, id)
    if touched.count < Self.linearTouchedMax && touched.contains(k) { return }
    touched.append(k)
  }
}

extension V1Kernel {
  // MARK: Control (the engine)

  /// Turns effect production on; until then every hook returns at once.
  public mutating func enableEffects() {
    effects.enabled = true
    effects.writer.removeAll()
    effects.keysEmitted = keyCounts
  }

  /// The rows of each keyed table: the stream (a snapshot of this state, or the
  /// records of the events before it) carries the keys of all of them.
  var keyCounts: EffectBuffer.KeyCounts {
    EffectBuffer.KeyCounts(
      participants: participants.count, accounts: accounts.count, securities: securities.count,
      clearing: clearingRows.count, settlement: settlementRows.count, positions: positions.count)
  }

  /// The effect records of the events applied since the last call (a batch).
  public mutating func takeEffects() -> [UInt8] {
    let bytes = effects.writer.bytes
    effects.writer = EffectWriter(capacity: min(bytes.count, 1 << 20))
    return bytes
  }

  /// The same, swapping buffers with `out` (no allocation per batch).
  public mutating func takeEffects(into out: inout [UInt8]) { effects.writer.take(into: &out) }

  // MARK: Hooks (called from the apply functions)

  @inline(__always) mutating func emitClearing(_ row: Int32) {
    if effects.enabled { effects.touch(.clearing, row) }
  }

  @inline(__always) mutating func emitSettlement(_ row: Int32) {
    if effects.enabled { effects.touch(.settlement, row) }
  }

  @inline(__always) mutating func emitBalance(_ participant: Int32) {
    if effects.enabled { effects.touch(.balance, participant) }
  }

  @inline(__always) mutating func emitHolding(_ position: Int32) {
    if effects.enabled { effects.touch(.holding, position) }
  }

  @inline(__always) mutating func emitEntitlement(_ index: Int32) {
    if effects.enabled { effects.touch(.entitlement, index) }
  }

  /// A trade whose tax row may have appeared (TRADE) or gone (CANCEL).
  @inline(__always) mutating func emitTax(_ trade: Int32) {
    if effects.enabled { effects.touch(.tax, trade) }
  }

  @inline(__always) mutating func emitRejection(_ index: Int32) {
    if effects.enabled { effects.touch(.rejection, index) }
  }

  /// Ends event `seq`: writes its header and every touched row's final value.
  @inline(__always) mutating func emitEvent(seq: Int64, outcome: Outcome) {
    if effects.enabled { writeEvent(seq: seq, outcome: outcome) }
  }

  // MARK: Writing

  mutating func writeEvent(seq: Int64, outcome: Outcome) {
    var buffer = EffectBuffer()
    swap(&buffer, &effects)  // write the buffer while reading self, without copying either
    write(seq: seq, outcome: outcome, into: &buffer)
    swap(&buffer, &effects)
  }

  /// Non-mutating on purpose: reading `self` from a closure in a mutating method
  /// copied the whole state (measured: 10x the cost of apply).
  func write(seq: Int64, outcome: Outcome, into buffer: inout EffectBuffer) {
    let isRejected: Bool
    if case .rejected = outcome { isRejected = true } else { isRejected = false }
    // Kind, then row number (creation order): the touched keys sort as integers; a row
    // touched twice (only possible beyond `linearTouchedMax`) is written once.
    if buffer.touched.count >= EffectBuffer.bitmapTouchedMin, Self.sortUniqueByBitmap(&buffer.touched) {
      // Sorted and unique already (an OPEN releasing a day's purchases: ~1M holdings).
    } else if buffer.touched.count > 1 {
      buffer.touched.sort()
      if buffer.touched.count > EffectBuffer.linearTouchedMax {
        var kept = 1
        for i in 1..<buffer.touched.count where buffer.touched[i] != buffer.touched[kept - 1] {
          buffer.touched[kept] = buffer.touched[i]
          kept += 1
        }
        buffer.touched.removeLast(buffer.touched.count - kept)
      }
    }
    if buffer.touched.count >= EffectBuffer.bitmapTouchedMin {
      buffer.writer.reserve(additional: buffer.touched.count * EffectBuffer.reservedBytesPerRow)
    }
    // The key records of the rows this event created, then the touched rows' values.
    let keys = keyCounts
    let newKeys = keys.total - buffer.keysEmitted.total
    let announced = newKeys + buffer.touched.count
    let at = buffer.writer.eventHeader(
      seq: seq, outcome: isRejected ? .rejected : .applied, count: announced)
    writeKeys(from: buffer.keysEmitted, to: keys, into: &buffer.writer)
    buffer.keysEmitted = keys
    var written = newKeys
    var i = 0
    let touched = buffer.touched
    while i < touched.count {
      let k = touched[i]
      guard let kind = EffectKind(rawValue: UInt8(truncatingIfNeeded: k >> 32)) else {
        preconditionFailure("bad touched effect key")
      }
      if kind == .holding && i + Self.holdingGroup <= touched.count
        && touched[i + Self.holdingGroup - 1] >> 32 == k >> 32
      {
        writeHoldingGroup(touched[i..<(i + Self.holdingGroup)], into: &buffer.writer)
        written += Self.holdingGroup
        i += Self.holdingGroup
        continue
      }
      if writeRow(kind, Int32(bitPattern: UInt32(truncatingIfNeeded: k)), into: &buffer.writer) {
        written += 1
      }
      i += 1
    }
    if written != announced { buffer.writer.patchCount(headerAt: at, count: written) }
    precondition(
      buffer.writer.count <= EffectBuffer.bytesMax,
      "effects buffer over bytesMax: the engine must take it per batch")
    buffer.touched.removeAll(keepingCapacity: true)
  }

  /// Sorts and deduplicates touched keys (kind << 32 | row) with one bitmap per kind:
  /// two passes over the keys and one over the bitmaps, linear where `sort` is
  /// n log n (the 1M day's second OPEN touches ~1M holdings). False (keys untouched)
  /// when the rows are too sparse for bitmaps to pay: more than `bitmapWordsPerKeyMax`
  /// words a key. (Measured: the OPEN's cost with effects, ~0.2 s, is its 53 MB of
  /// records, not the ordering of its keys.)
  static func sortUniqueByBitmap(_ keys: inout [UInt64]) -> Bool {
    let kinds = Int(UInt8.max) + 1
    var rowsOfKind = [Int](repeating: 0, count: kinds)  // 1 + the largest row, per kind
    for k in keys {
      let kind = Int(k >> 32)
      rowsOfKind[kind] = max(rowsOfKind[kind], Int(UInt32(truncatingIfNeeded: k)) + 1)
    }
    var firstWord = [Int](repeating: 0, count: kinds + 1)
    for kind in 0..<kinds { firstWord[kind + 1] = firstWord[kind] + (rowsOfKind[kind] + 63) / 64 }
    guard firstWord[kinds] <= keys.count * EffectBuffer.bitmapWordsPerKeyMax else { return false }
    var bits = [UInt64](repeating: 0, count: firstWord[kinds])
    for k in keys {
      let row = Int(UInt32(truncatingIfNeeded: k))
      bits[firstWord[Int(k >> 32)] + row >> 6] |= 1 << UInt64(row & 63)
    }
    keys.removeAll(keepingCapacity: true)
    for kind in 0..<kinds where rowsOfKind[kind] > 0 {
      for w in firstWord[kind]..<firstWord[kind + 1] {
        var word = bits[w]
        while word != 0 {
          let row = (w - firstWord[kind]) << 6 + word.trailingZeroBitCount
          keys.append(UInt64(kind) << 32 | UInt64(row))
          word &= word - 1
        }
      }
    }
    return true
  }

  /// An applied TRADE's records, written straight from the rows it changed (the
  /// per-row bookkeeping of `touch` cost more than the writing): the same bytes the
  /// generic path writes, in the same canonical order (key records of the rows it
  /// created, then values by kind and row id, each row once). Only the fields the
  /// apply just wrote are read back: version 2 names rows by id, so no identifier is
  /// read (reading them from the 1M-row account table missed the cache twice a trade).
  mutating func writeTradeEffects(seq: Int64, rows: TradeRows, bytes: TradeBytes) {
    precondition(effects.touched.isEmpty, "a TRADE's effects are written by one path only")
    let keys = keyCounts
    var w = EffectWriter()
    swap(&w, &effects.writer)  // write while reading self, without copying either
    writeTrade(seq: seq, rows: rows, bytes: bytes, keysFrom: effects.keysEmitted, to: keys, into: &w)
    swap(&w, &effects.writer)
    effects.keysEmitted = keys
    precondition(effects.writer.count <= EffectBuffer.bytesMax, "effects buffer over bytesMax")
  }

  /// All of a TRADE's records in one room of the buffer (`EffectWriter.append(bytes:)`):
  /// their sizes are known before any is written. A TRADE creates at most the buyer's
  /// and the seller's clearing and settlement rows and the buyer's position. Mutating
  /// although it changes nothing of `self`: non-mutating, its closure's capture of
  /// `self` was a copy of the whole kernel struct (a 1.4 KB `memcpy` a TRADE, ~3% of a
  /// V1 replica's samples, perf of `cluster bench-replica`); `w` is not part of `self`.
  mutating func writeTrade(
    seq: Int64, rows r: TradeRows, bytes: TradeBytes, keysFrom old: EffectBuffer.KeyCounts,
    to new: EffectBuffer.KeyCounts, into w: inout EffectWriter
  ) {
    precondition(
      old.participants == new.participants && old.accounts == new.accounts
        && old.securities == new.securities,
      "a TRADE creates no participant, account or security")
    let hasTax = r.taxFen > 0
    let twoClearing = r.buyClearing != r.sellClearing
    let twoSettlement = r.buySettlement != r.sellSettlement
    let twoHoldings = r.buyPosition != r.sellPosition
    let newClearing = new.clearing - old.clearing
    let newSettlement = new.settlement - old.settlement
    let newPositions = new.positions - old.positions
    precondition(
      newPositions == 0 || (newPositions == 1 && new.positions - 1 == Int(r.buyPosition)),
      "a TRADE creates only the buyer's position")
    // The row keys' bytes only (a TRADE creates no named row): `keyBytes(from:to:)`,
    // an instance method, was a call that copied the kernel struct.
    let keyBytes = Self.rowKeyBytes(from: old, to: new)
    var size = EffectWriter.eventHeaderBytes + keyBytes
    size += (twoClearing ? 2 : 1) * EffectWriter.clearingBytes
    size += (twoSettlement ? 2 : 1) * EffectWriter.settlementBytes
    size += (twoHoldings ? 2 : 1) * EffectWriter.holdingBytes
    if hasTax { size += EffectWriter.taxBytes(tradeId: bytes.tradeId.count) }
    let count =
      newClearing + newSettlement + newPositions + (twoClearing ? 2 : 1) + (twoSettlement ? 2 : 1)
      + (twoHoldings ? 2 : 1) + (hasTax ? 1 : 0)
    w.append(bytes: size) { c in
      c.eventHeader(seq: seq, outcome: .applied, count: count)
      if keyBytes > 0 {
        // Every row a TRADE creates is of its date, the open day's (`dayRows`, reset
        // for it by the apply): its settle date without a calendar lookup, a call
        // that copied the kernel struct.
        precondition(dayRows.date == r.date, "a TRADE's rows are of the open day")
        writeRowKeys(from: old, to: new, known: (r.date, dayRows.settleDate), into: &c)
      }
      func clearing(_ row: Int32) {
        let i = Int(row)
        c.clearing(
          row, buyQuantity: clearingRows.rows[i].buyQuantity, sellQuantity: clearingRows.rows[i].sellQuantity,
          buyAmount: clearingRows.rows[i].buyAmount, sellAmount: clearingRows.rows[i].sellAmount,
          fees: clearingRows.rows[i].fees)
      }
      func settlement(_ row: Int32) {
        let i = Int(row)
        c.settlement(
          row, netFen: settlementRows.rows[i].netFen, status: settlementRows.rows[i].status,
          settledOn: settlementRows.rows[i].settledOn, visible: settlementRows.rows[i].liveSides > 0)
      }
      func holding(_ row: Int32) {
        let i = Int(row)
        c.holding(
          row, quantity: positions.rows[i].quantity, available: positions.rows[i].available,
          withheld: positions.rows[i].withheld)
      }
      // Rows of a kind in id order; a row both sides share is written once.
      func bothSides(_ a: Int32, _ b: Int32, _ write: (Int32) -> Void) {
        write(min(a, b))
        if a != b { write(max(a, b)) }
      }
      bothSides(r.buyClearing, r.sellClearing, clearing)
      bothSides(r.buySettlement, r.sellSettlement, settlement)
      bothSides(r.sellPosition, r.buyPosition, holding)
      if hasTax {
        c.tax(
          tradeDate: r.date, tradeId: bytes.tradeId, account: r.sellAccount, security: r.security,
          quantity: r.quantity, taxFen: r.taxFen)
      }
    }
  }

  /// Holdings written together when an event touches many (an OPEN releasing a day's
  /// purchases touches about one per trade): one room of the buffer for the group.
  static let holdingGroup = 16

  /// Writes a group of touched holdings (sorted keys of one kind).
  func writeHoldingGroup(_ keys: ArraySlice<UInt64>, into w: inout EffectWriter) {
    precondition(keys.count == Self.holdingGroup, "a holding group has holdingGroup rows")
    w.append(bytes: Self.holdingGroup * EffectWriter.holdingBytes) { c in
      for k in keys {
        let p = Int32(bitPattern: UInt32(truncatingIfNeeded: k))
        let i = Int(p)
        c.holding(
          p, quantity: positions.rows[i].quantity, available: positions.rows[i].available,
          withheld: positions.rows[i].withheld)
      }
    }
  }

  /// Bytes of the key records of the clearing, settlement and position rows `from ..<
  /// to` (those `writeRowKeys` writes; no row's name is read).
  @inline(__always)
  static func rowKeyBytes(from: EffectBuffer.KeyCounts, to: EffectBuffer.KeyCounts) -> Int {
    (to.clearing - from.clearing) * EffectWriter.clearingKeyBytes
      + (to.settlement - from.settlement) * EffectWriter.settlementKeyBytes
      + (to.positions - from.positions) * EffectWriter.positionKeyBytes
  }

  /// Bytes of the key records of rows `from ..< to` of every keyed table.
  func keyBytes(from: EffectBuffer.KeyCounts, to: EffectBuffer.KeyCounts) -> Int {
    var n = Self.rowKeyBytes(from: from, to: to)
    for i in from.participants..<to.participants {
      n += EffectWriter.nameKeyBytes(name: participants.rows[i].id.text.utf8.count)
    }
    for i in from.accounts..<to.accounts {
      n += EffectWriter.nameKeyBytes(name: accounts.rows[i].id.text.utf8.count)
    }
    for i in from.securities..<to.securities {
      n += EffectWriter.nameKeyBytes(name: securities.rows[i].code.text.utf8.count)
    }
    return n
  }

  /// Writes the key records of rows `from ..< to` of every keyed table (tables in kind
  /// order, rows by id) into a room of `keyBytes(from:to:)` bytes; one appended room,
  /// also for a snapshot's millions of keys.
  func writeKeys(from: EffectBuffer.KeyCounts, to: EffectBuffer.KeyCounts, into w: inout EffectWriter) {
    let n = keyBytes(from: from, to: to)
    if n > 0 { w.append(bytes: n) { writeKeys(from: from, to: to, into: &$0) } }
  }

  /// The same, through the cursor of a room already made (a TRADE's one room).
  func writeKeys(from: EffectBuffer.KeyCounts, to: EffectBuffer.KeyCounts, into c: inout RecordCursor) {
    func name(_ kind: EffectKind, _ id: Int, _ text: String) {
      var text = text
      text.withUTF8 { c.nameKey(kind, Int32(id), UnsafeRawBufferPointer($0)) }
    }
    for i in from.participants..<to.participants { name(.participantKey, i, participants.rows[i].id.text) }
    for i in from.accounts..<to.accounts { name(.accountKey, i, accounts.rows[i].id.text) }
    for i in from.securities..<to.securities { name(.securityKey, i, securities.rows[i].code.text) }
    writeRowKeys(from: from, to: to, known: nil, into: &c)
  }

  /// The key records of the clearing, settlement and position rows `from ..< to` (the
  /// keys a TRADE can create). `known`: the rows' one trade date and its settle date
  /// (a TRADE's), looked up in the calendar otherwise. Inlined: a call copied the
  /// kernel struct.
  @inline(__always)
  func writeRowKeys(
    from: EffectBuffer.KeyCounts, to: EffectBuffer.KeyCounts, known: (tradeDate: Int32, settleDate: Int32)?,
    into c: inout RecordCursor
  ) {
    // Otherwise the settle date of the last trade date seen (rows come in creation
    // order, so by date: a snapshot's millions of keys look up a few dates).
    var settle: (tradeDate: Int32, settleDate: Int32) = (0, 0)
    @inline(__always) func settleDateOf(_ tradeDate: Int32) -> Int32 {
      if let known {
        precondition(known.tradeDate == tradeDate, "a row of another trade date than the known one")
        precondition(known.settleDate >= 0, "trade date \(tradeDate) has no next trading day")
        return known.settleDate
      }
      if settle.tradeDate != tradeDate { settle = (tradeDate, settleDate(of: tradeDate)) }
      return settle.settleDate
    }
    for i in from.clearing..<to.clearing {
      let row = clearingRows.rows[i]
      c.clearingKey(
        Int32(i), tradeDate: row.tradeDate, settleDate: settleDateOf(row.tradeDate),
        participant: row.participant,
        security: row.security)
    }
    for i in from.settlement..<to.settlement {
      let row = settlementRows.rows[i]
      c.settlementKey(
        Int32(i), tradeDate: row.tradeDate, settleDate: settleDateOf(row.tradeDate),
        participant: row.participant)
    }
    for i in from.positions..<to.positions {
      c.positionKey(Int32(i), account: positions.rows[i].account, security: positions.rows[i].security)
    }
  }

  /// Writes one touched row; false when the row has nothing to say (a trade without tax).
  func writeRow(_ kind: EffectKind, _ id: Int32, into w: inout EffectWriter) -> Bool {
    switch kind {
    case .clearing:
      let c = clearingRows.rows[Int(id)]
      w.clearing(
        id, buyQuantity: c.buyQuantity, sellQuantity: c.sellQuantity, buyAmount: c.buyAmount,
        sellAmount: c.sellAmount, fees: c.fees)
    case .settlement:
      let s = settlementRows.rows[Int(id)]
      w.settlement(id, netFen: s.netFen, status: s.status, settledOn: s.settledOn, visible: s.liveSides > 0)
    case .balance:
      w.balance(participant: id, balanceFen: participants.rows[Int(id)].balance)
    case .holding:
      let p = positions.rows[Int(id)]
      w.holding(id, quantity: p.quantity, available: p.available, withheld: p.withheld)
    case .entitlement:
      let e = entitlements.rows[Int(id)]
      w.entitlement(
        ordinal: Int64(id), security: e.security, recordDate: e.recordDate, payDate: e.payDate,
        account: e.account, kind: e.kind, value: e.value)
    case .tax:
      guard trades.rows[Int(id)].taxFen > 0 else { return false }
      let t = trades.rows[Int(id)]
      if t.cancelled {
        w.taxRemoved(tradeDate: t.date, tradeId: tradeIds.text(of: t))
      } else {
        w.tax(
          tradeDate: t.date, tradeId: tradeIds.text(of: t), account: t.sellAccount, security: t.security,
          quantity: t.quantity, taxFen: t.taxFen)
      }
    case .rejection:
      let r = rejections.rows[Int(id)]
      w.rejection(seq: r.seq, record: r.record, ref: r.ref, reason: r.reason)
    case .event, .taxRemoved, .participantKey, .accountKey, .securityKey, .clearingKey, .settlementKey,
      .positionKey:
      preconditionFailure("\(kind.word) is not a touchable row")
    }
    return true
  }

  /// The complete SPEC §5 state as one snapshot record at the applied seq: what an
  /// effects file or stream starts from (reference data, or a resumed state). The key
  /// of every row ever created first (later records may name any of them, a position
  /// at 0 shares too), then the visible rows' values.
  public func snapshotEffects() -> [UInt8] {
    var w = EffectWriter(capacity: 4096)
    let at = w.eventHeader(seq: globals.appliedSeq, outcome: .snapshot, count: 0)
    let keys = keyCounts
    writeKeys(from: EffectBuffer.KeyCounts(), to: keys, into: &w)
    var n = keys.total
    func row(_ kind: EffectKind, _ id: Int) {
      if writeRow(kind, Int32(id), into: &w) { n += 1 }
    }
    for i in participants.indices { row(.balance, i) }
    for i in clearingRows.indices
    where clearingRows.rows[i].buyQuantity != 0 || clearingRows.rows[i].sellQuantity != 0 {
      row(.clearing, i)
    }
    for i in settlementRows.indices where settlementRows.rows[i].liveSides > 0 { row(.settlement, i) }
    for i in positions.indices where positions.rows[i].quantity > 0 { row(.holding, i) }
    for i in entitlements.indices { row(.entitlement, i) }
    for i in trades.indices where trades.rows[i].taxFen > 0 && !trades.rows[i].cancelled { row(.tax, i) }
    for i in rejections.indices { row(.rejection, i) }
    w.patchCount(headerAt: at, count: n)
    return w.bytes
  }
}
