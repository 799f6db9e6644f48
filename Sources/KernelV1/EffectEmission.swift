// The emission hooks the state machine calls right after each mutation of a
// SPEC §5 row (`emitClearing(row)`, `emitHolding(position)`, ...) and at the end of
// every event (`emitEvent`). A hook only notes which row was touched; at the end of
// the event each touched row is written once, with its final value, in the canonical
// order of docs/EFFECTS.md: by kind, then by the row's creation number (rows of a
// kind are numbered in the order they first appear in the run). That order depends
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
    let at = buffer.writer.eventHeader(
      seq: seq, outcome: isRejected ? .rejected : .applied, count: buffer.touched.count)
    var written = 0
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
    if written != buffer.touched.count { buffer.writer.patchCount(headerAt: at, count: written) }
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
  /// generic path writes, in the same canonical order (kind, then row number, each
  /// row once). Only the fields the apply just wrote are read back; the rest (dates,
  /// participants, identifiers) come from `rows` and the trade's own bytes (reading a
  /// row's key fields missed the cache: they lie on lines the apply did not touch).
  mutating func writeTradeEffects(seq: Int64, rows: TradeRows, bytes: TradeBytes) {
    precondition(effects.touched.isEmpty, "a TRADE's effects are written by one path only")
    var w = EffectWriter()
    swap(&w, &effects.writer)  // write while reading self, without copying either
    writeTrade(seq: seq, rows: rows, bytes: bytes, into: &w)
    swap(&w, &effects.writer)
    precondition(effects.writer.count <= EffectBuffer.bytesMax, "effects buffer over bytesMax")
  }

  func writeTrade(seq: Int64, rows r: TradeRows, bytes: TradeBytes, into w: inout EffectWriter) {
    var buyParticipant = participants.rows[Int(r.buyParticipant)].id.text
    var sellParticipant = participants.rows[Int(r.sellParticipant)].id.text
    let settleDate = cachedSettleDate(r.date, &w)
    buyParticipant.withUTF8 { buyer in
      sellParticipant.withUTF8 { seller in
        writeTrade(
          seq: seq, rows: r, bytes: bytes, settleDate: settleDate,
          buyParticipant: UnsafeRawBufferPointer(buyer),
          sellParticipant: UnsafeRawBufferPointer(seller), into: &w)
      }
    }
  }

  /// All of a TRADE's records in one room of the buffer (`EffectWriter.append(bytes:)`):
  /// their sizes are known from the identifiers before any is written.
  @inline(__always) func writeTrade(
    seq: Int64, rows r: TradeRows, bytes: TradeBytes, settleDate: Int32,
    buyParticipant: UnsafeRawBufferPointer,
    sellParticipant: UnsafeRawBufferPointer, into w: inout EffectWriter
  ) {
    let hasTax = r.taxFen > 0
    let twoClearing = r.buyClearing != r.sellClearing
    let twoSettlement = r.buySettlement != r.sellSettlement
    let twoHoldings = r.buyPosition != r.sellPosition
    let security = bytes.security.count
    var size = EffectWriter.eventHeaderBytes
    size += EffectWriter.clearingBytes(participant: buyParticipant.count, security: security)
    size += EffectWriter.settlementBytes(participant: buyParticipant.count)
    if twoClearing {
      size += EffectWriter.clearingBytes(participant: sellParticipant.count, security: security)
    }
    if twoSettlement { size += EffectWriter.settlementBytes(participant: sellParticipant.count) }
    size += EffectWriter.holdingBytes(account: bytes.sellAccount.count, security: security)
    if twoHoldings { size += EffectWriter.holdingBytes(account: bytes.buyAccount.count, security: security) }
    if hasTax {
      size += EffectWriter.taxBytes(
        tradeId: bytes.tradeId.count, account: bytes.sellAccount.count, security: security)
    }
    let count = (twoClearing ? 2 : 1) + (twoSettlement ? 2 : 1) + (twoHoldings ? 2 : 1) + (hasTax ? 1 : 0)
    w.append(bytes: size) { c in
      c.eventHeader(seq: seq, outcome: .applied, count: count)
      func clearing(_ row: Int32, _ participant: UnsafeRawBufferPointer) {
        let i = Int(row)
        c.clearing(
          tradeDate: r.date, settleDate: settleDate, participant: participant, security: bytes.security,
          buyQuantity: clearingRows.rows[i].buyQuantity, sellQuantity: clearingRows.rows[i].sellQuantity,
          buyAmount: clearingRows.rows[i].buyAmount, sellAmount: clearingRows.rows[i].sellAmount,
          fees: clearingRows.rows[i].fees)
      }
      func settlement(_ row: Int32, _ participant: UnsafeRawBufferPointer) {
        let i = Int(row)
        c.settlement(
          tradeDate: r.date, settleDate: settleDate, participant: participant,
          netFen: settlementRows.rows[i].netFen, status: settlementRows.rows[i].status,
          settledOn: settlementRows.rows[i].settledOn, visible: settlementRows.rows[i].liveSides > 0)
      }
      func holding(_ p: Int32, _ account: UnsafeRawBufferPointer) {
        let i = Int(p)
        c.holding(
          account: account, security: bytes.security, quantity: positions.rows[i].quantity,
          available: positions.rows[i].available, withheld: positions.rows[i].withheld)
      }
      // Rows of a kind in creation order; a row both sides share is written once.
      func bothSides(
        _ buyRow: Int32, _ sellRow: Int32, _ write: (Int32, UnsafeRawBufferPointer) -> Void
      ) {
        if buyRow < sellRow {
          write(buyRow, buyParticipant)
          write(sellRow, sellParticipant)
        } else if buyRow > sellRow {
          write(sellRow, sellParticipant)
          write(buyRow, buyParticipant)
        } else {
          write(buyRow, buyParticipant)
        }
      }
      bothSides(r.buyClearing, r.sellClearing, clearing)
      bothSides(r.buySettlement, r.sellSettlement, settlement)
      if !twoHoldings {
        holding(r.sellPosition, bytes.sellAccount)
      } else if r.sellPosition < r.buyPosition {
        holding(r.sellPosition, bytes.sellAccount)
        holding(r.buyPosition, bytes.buyAccount)
      } else {
        holding(r.buyPosition, bytes.buyAccount)
        holding(r.sellPosition, bytes.sellAccount)
      }
      if hasTax {
        c.tax(
          tradeDate: r.date, tradeId: bytes.tradeId, account: bytes.sellAccount, security: bytes.security,
          quantity: r.quantity, taxFen: r.taxFen)
      }
    }
  }

  /// Holdings written together when an event touches many (an OPEN releasing a day's
  /// purchases touches about one per trade).
  static let holdingGroup = 16

  /// Writes a group of touched holdings (sorted keys of one kind). Their account rows
  /// are random rows of a large table: all of the group's account identifiers are read
  /// first, back to back, so that the cache misses overlap instead of following one
  /// another, then the records are written.
  func writeHoldingGroup(_ keys: ArraySlice<UInt64>, into w: inout EffectWriter) {
    precondition(keys.count == Self.holdingGroup, "a holding group has holdingGroup rows")
    // On the stack: an array per group was a heap allocation per 16 records.
    withUnsafeTemporaryAllocation(of: (account: Ident, security: Ident).self, capacity: Self.holdingGroup) {
      ids in
      var size = 0
      for (j, k) in keys.enumerated() {
        let p = Int(UInt32(truncatingIfNeeded: k))
        let account = accounts.rows[Int(positions.rows[p].account)].id
        let security = securities.rows[Int(positions.rows[p].security)].code
        ids.initializeElement(at: j, to: (account, security))
        size += EffectWriter.holdingBytes(
          account: account.text.utf8.count, security: security.text.utf8.count)
      }
      // The group's records in one room of the buffer.
      w.append(bytes: size) { c in
        for (j, k) in keys.enumerated() {
          let p = Int(UInt32(truncatingIfNeeded: k))
          var (account, security) = (ids[j].account.text, ids[j].security.text)
          account.withUTF8 { a in
            security.withUTF8 { s in
              c.holding(
                account: UnsafeRawBufferPointer(a), security: UnsafeRawBufferPointer(s),
                quantity: positions.rows[p].quantity, available: positions.rows[p].available,
                withheld: positions.rows[p].withheld)
            }
          }
        }
      }
      _ = ids.deinitialize()
    }
  }

  /// The holding record of position `p` whose account identifier is `account`. Fields
  /// one by one: copying the record would copy more than the record needs.
  @inline(__always) func writeHolding(_ p: Int, account: String, into w: inout EffectWriter) {
    w.holding(
      account: account, security: securities.rows[Int(positions.rows[p].security)].code.text,
      quantity: positions.rows[p].quantity, available: positions.rows[p].available,
      withheld: positions.rows[p].withheld)
  }

  @inline(__always) func cachedSettleDate(_ tradeDate: Int32, _ w: inout EffectWriter) -> Int32 {
    if w.settleCacheTradeDate != tradeDate {
      w.settleCacheTradeDate = tradeDate
      w.settleCacheSettleDate = settleDate(of: tradeDate)
    }
    return w.settleCacheSettleDate
  }

  /// Writes one touched row; false when the row has nothing to say (a trade without tax).
  func writeRow(_ kind: EffectKind, _ id: Int32, into w: inout EffectWriter) -> Bool {
    switch kind {
    case .clearing:
      let c = clearingRows.rows[Int(id)]
      w.clearing(
        tradeDate: c.tradeDate, settleDate: cachedSettleDate(c.tradeDate, &w),
        participant: participants.rows[Int(c.participant)].id.text,
        security: securities.rows[Int(c.security)].code.text, buyQuantity: c.buyQuantity,
        sellQuantity: c.sellQuantity, buyAmount: c.buyAmount, sellAmount: c.sellAmount, fees: c.fees)
    case .settlement:
      let s = settlementRows.rows[Int(id)]
      w.settlement(
        tradeDate: s.tradeDate, settleDate: cachedSettleDate(s.tradeDate, &w),
        participant: participants.rows[Int(s.participant)].id.text, netFen: s.netFen, status: s.status,
        settledOn: s.settledOn, visible: s.liveSides > 0)
    case .balance:
      let p = participants.rows[Int(id)]
      w.balance(participant: p.id.text, balanceFen: p.balance)
    case .holding:
      let i = Int(id)
      writeHolding(i, account: accounts.rows[Int(positions.rows[i].account)].id.text, into: &w)
    case .entitlement:
      let e = entitlements.rows[Int(id)]
      w.entitlement(
        ordinal: Int64(id), security: securities.rows[Int(e.security)].code.text, recordDate: e.recordDate,
        payDate: e.payDate, account: accounts.rows[Int(e.account)].id.text, kind: e.kind, value: e.value)
    case .tax:
      guard trades.rows[Int(id)].taxFen > 0 else { return false }
      let t = trades.rows[Int(id)]
      if t.cancelled {
        w.taxRemoved(tradeDate: t.date, tradeId: t.tradeId.text)
      } else {
        w.tax(
          tradeDate: t.date, tradeId: t.tradeId.text, account: accounts.rows[Int(t.sellAccount)].id.text,
          security: securities.rows[Int(t.security)].code.text, quantity: t.quantity, taxFen: t.taxFen)
      }
    case .rejection:
      let r = rejections.rows[Int(id)]
      w.rejection(seq: r.seq, record: r.record, ref: r.ref, reason: r.reason)
    case .event, .taxRemoved:
      preconditionFailure("\(kind.word) is not a touchable row")
    }
    return true
  }

  /// The complete SPEC §5 state as one snapshot record at the applied seq: what an
  /// effects file or stream starts from (reference data, or a resumed state).
  public func snapshotEffects() -> [UInt8] {
    var w = EffectWriter(capacity: 4096)
    let at = w.eventHeader(seq: globals.appliedSeq, outcome: .snapshot, count: 0)
    var n = 0
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
