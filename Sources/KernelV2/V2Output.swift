// V2Kernel: effects (docs/EFFECTS.md), canonical rows and change tracking
// (docs/CANONICAL-ROWS.md), restore, SPEC §5 report and self-check.

import KernelAPI

extension V2Kernel {
  // MARK: - Effects

  public mutating func enableEffects() { effectsOn = true }

  public mutating func takeEffects() -> [UInt8] {
    var out: [UInt8] = []
    swap(&out, &fxOut)
    return out
  }

  /// Swaps buffers with the caller: no allocation, no fresh pages per batch.
  public mutating func takeEffects(into out: inout [UInt8]) {
    swap(&fxOut, &out)
    // A buffer an exceptional event (an OPEN's holdings) made large is let go.
    if fxOut.capacity > 16 << 20 { fxOut = [] } else { fxOut.removeAll(keepingCapacity: true) }
  }

  /// An applied TRADE's records: its two clearing rows, two settlement rows and two
  /// holdings (each once, by row number), then its tax row. V2 encodes these itself
  /// (docs/EFFECTS.md, version 1) into one stack buffer sized up front and appends it
  /// with one copy: no per-record growth of the output, no per-event lists. Measured
  /// (perf, 1M-trade day): the encoders are static and reach the rows through pointers
  /// taken once (a method of `self` called inside the closures cost a retain and
  /// release per trade, ~45% of this function's samples), and they read only the
  /// fields the apply has just written (a copy of a whole clearing row also loaded
  /// its first cache line, which the apply never touches: those misses were a third
  /// of the function's samples).
  mutating func writeTradeEffects(seq: Int64, buyer: UnsafeRawBufferPointer, seller: UnsafeRawBufferPointer) {
    let t = lastTrade
    let c0 = Int(min(t.buyClearing, t.sellClearing))
    let c1 = Int(max(t.buyClearing, t.sellClearing))
    let s0 = Int(min(t.buySettlement, t.sellSettlement))
    let s1 = Int(max(t.buySettlement, t.sellSettlement))
    let samePosition = t.sellPosition == t.buyPosition
    let n = (c0 == c1 ? 1 : 2) + (s0 == s1 ? 1 : 2) + (samePosition ? 1 : 2) + (t.taxed ? 1 : 0)
    // The rows' keys (date, participant, security) are the trade's: read from the trade
    // row the apply has just appended, not from the clearing rows' first cache line,
    // which the apply does not touch (those loads missed: ~30% of this function).
    let i = Int(t.trade)
    let date = trades[i].date
    if settleCache.tradeDate != date { settleCache = (date, nextTradingDay(date)) }
    let settle = settleCache.settleDate
    let (first, second) =
      samePosition || t.sellPosition < t.buyPosition
      ? ((Int(t.sellPosition), seller), (Int(t.buyPosition), buyer))
      : ((Int(t.buyPosition), buyer), (Int(t.sellPosition), seller))
    let buyParticipant = trades[i].buyParticipant
    let sellParticipant = trades[i].sellParticipant
    let participant0 = c0 == Int(t.buyClearing) ? buyParticipant : sellParticipant
    let participant1 = c1 == Int(t.buyClearing) ? buyParticipant : sellParticipant
    let secRange = codes.securities[Int(trades[i].security)]
    let p0Range = codes.participants[Int(participant0)]
    let p1Range = codes.participants[Int(participant1)]
    let q0IsP0 = (s0 == Int(t.buySettlement) ? buyParticipant : sellParticipant) == participant0
    let q1IsP0 = (s1 == Int(t.buySettlement) ? buyParticipant : sellParticipant) == participant0
    // The tax row: the trade's own fields (its id as stored, the seller's account bytes).
    var taxId = ""
    var tax: (quantity: Int64, taxFen: Int64) = (0, 0)
    if t.taxed {
      taxId = trades[i].tradeId.text
      tax = (trades[i].quantity, trades[i].taxFen)
    }
    // The output leaves `self` while `self`'s rows and code arena are read: no
    // exclusivity conflict, no retain of the arena.
    var out: [UInt8] = []
    swap(&out, &fxOut)
    defer { swap(&out, &fxOut) }
    taxId.withUTF8 { idBytes in
      let taxIdBytes = UnsafeRawBufferPointer(idBytes)
      codes.arena.withUnsafeBytes { arena in
        clearingRows.withUnsafeBufferPointer { cr in
          settlementRows.withUnsafeBufferPointer { sr in
            positions.withUnsafeBufferPointer { pos in
              let secCode = V2Codes.slice(arena, secRange)
              let p0 = V2Codes.slice(arena, p0Range)
              let p1 = V2Codes.slice(arena, p1Range)
              let q0 = q0IsP0 ? p0 : p1
              let q1 = q1IsP0 ? p0 : p1
              var size = 18
              size += 5 + 8 + 4 + p0.count + 4 + secCode.count + 80
              if c1 != c0 { size += 5 + 8 + 4 + p1.count + 4 + secCode.count + 80 }
              size += 5 + 8 + 4 + q0.count + 22
              if s1 != s0 { size += 5 + 8 + 4 + q1.count + 22 }
              size += 5 + 4 + first.1.count + 4 + secCode.count + 24
              if !samePosition { size += 5 + 4 + second.1.count + 4 + secCode.count + 24 }
              let taxBody = 4 + 4 + taxIdBytes.count + 4 + seller.count + 4 + secCode.count + 16
              if t.taxed { size += 5 + taxBody }
              withUnsafeTemporaryAllocation(byteCount: size, alignment: 8) { buffer in
                var c = V2Cursor(buffer.baseAddress!)
                c.record(EffectKind.event, 13)
                c.i64(seq)
                c.u8(EffectOutcome.applied.rawValue)
                c.i32(Int32(n))
                Self.encodeClearing(cr.baseAddress! + c0, date, settle, p0, secCode, &c)
                if c1 != c0 { Self.encodeClearing(cr.baseAddress! + c1, date, settle, p1, secCode, &c) }
                Self.encodeSettlement(sr.baseAddress! + s0, date, settle, q0, &c)
                if s1 != s0 { Self.encodeSettlement(sr.baseAddress! + s1, date, settle, q1, &c) }
                Self.encodeHolding(pos.baseAddress! + first.0, first.1, secCode, &c)
                if !samePosition { Self.encodeHolding(pos.baseAddress! + second.0, second.1, secCode, &c) }
                if t.taxed {
                  c.record(EffectKind.tax, taxBody)
                  c.i32(date)
                  c.bytes(taxIdBytes)
                  c.bytes(seller)
                  c.bytes(secCode)
                  c.i64(tax.quantity)
                  c.i64(tax.taxFen)
                }
                precondition(c.p == buffer.baseAddress! + size, "V2: trade effects size mismatch")
                out.append(contentsOf: UnsafeRawBufferPointer(buffer))
              }
            }
          }
        }
      }
    }
  }

  @inline(__always)
  static func encodeClearing(
    _ r: UnsafePointer<ClearingRecord>, _ date: Int32, _ settle: Int32, _ participant: UnsafeRawBufferPointer,
    _ security: UnsafeRawBufferPointer, _ c: inout V2Cursor
  ) {
    c.record(EffectKind.clearing, 8 + 4 + participant.count + 4 + security.count + 80)
    c.i32(date)
    c.i32(settle)
    c.bytes(participant)
    c.bytes(security)
    c.i64(r.pointee.buyQuantity)
    c.i64(r.pointee.sellQuantity)
    c.i128(r.pointee.buyAmount)
    c.i128(r.pointee.sellAmount)
    c.i64(r.pointee.fees.handling)
    c.i64(r.pointee.fees.regulatory)
    c.i64(r.pointee.fees.transfer)
    c.i64(r.pointee.fees.stamp)
  }

  @inline(__always)
  static func encodeSettlement(
    _ r: UnsafePointer<SettlementRecord>, _ date: Int32, _ settle: Int32,
    _ participant: UnsafeRawBufferPointer,
    _ c: inout V2Cursor
  ) {
    c.record(EffectKind.settlement, 8 + 4 + participant.count + 22)
    c.i32(date)
    c.i32(settle)
    c.bytes(participant)
    c.i128(r.pointee.netFen)
    c.u8(r.pointee.status.rawValue)
    c.i32(r.pointee.settledOn)
    c.u8(r.pointee.liveSides > 0 ? 1 : 0)
  }

  @inline(__always)
  static func encodeHolding(
    _ p: UnsafePointer<V2Position>, _ account: UnsafeRawBufferPointer, _ security: UnsafeRawBufferPointer,
    _ c: inout V2Cursor
  ) {
    c.record(EffectKind.holding, 4 + account.count + 4 + security.count + 24)
    c.bytes(account)
    c.bytes(security)
    c.i64(p.pointee.quantity)
    c.i64(p.pointee.available)
    c.i64(p.pointee.withheld)
  }

  /// Moves what the EffectWriter holds (events other than applied TRADEs) to the output.
  mutating func flushWriter() {
    if fx.count == 0 { return }
    if fxOut.isEmpty {
      fx.take(into: &fxOut)
    } else {
      fxOut.append(contentsOf: fx.bytes)
      fx.removeAll()
    }
  }

  static func sortedUnique(_ a: inout [Int32]) {
    if a.count < 2 { return }
    a.sort()
    var w = 1
    for i in 1..<a.count where a[i] != a[w - 1] {
      a[w] = a[i]
      w += 1
    }
    a.removeLast(a.count - w)
  }

  mutating func writeEventEffects(seq: Int64, outcome: Outcome) {
    // The writer leaves `self` while rows are written through `self`'s (non-mutating)
    // row writers: no second reference to its buffer, so no copy-on-write per record.
    var w = EffectWriter()
    swap(&w, &fx)
    defer {
      swap(&w, &fx)
      touched.reset()
      flushWriter()
    }
    if case .rejected = outcome {
      _ = w.eventHeader(seq: seq, outcome: .rejected, count: 1)
      writeRejection(rejections.count - 1, into: &w)
      return
    }
    Self.sortedUnique(&touched.clearing)
    Self.sortedUnique(&touched.settlement)
    Self.sortedUnique(&touched.balance)
    Self.sortedUnique(&touched.holding)
    Self.sortedUnique(&touched.tax)
    Self.sortedUnique(&touched.taxRemoved)
    let n =
      touched.clearing.count + touched.settlement.count + touched.balance.count + touched.holding.count
      + touched.entitlements.count + touched.tax.count + touched.taxRemoved.count
    _ = w.eventHeader(seq: seq, outcome: .applied, count: n)
    for c in touched.clearing { writeClearing(c, into: &w) }
    for s in touched.settlement { writeSettlement(s, into: &w) }
    for p in touched.balance { writeBalance(p, into: &w) }
    if !touched.holding.isEmpty {
      // An OPEN may write a holding per position bought the day before: V2's encoder
      // writes them straight into the output (no second copy of a large buffer).
      if w.count > 0 {
        fxOut.append(contentsOf: w.bytes)
        w.removeAll()
      }
      appendHoldings(touched.holding)
    }
    for e in touched.entitlements { writeEntitlement(e, into: &w) }
    for x in touched.tax { writeTax(x, into: &w) }
    for x in touched.taxRemoved {
      w.taxRemoved(tradeDate: trades[Int(x)].date, tradeId: trades[Int(x)].tradeId.text)
    }
  }

  /// The holding records of `ids`, appended to the output by V2's encoder. An OPEN
  /// releasing a day's purchases writes ~1M of them (53 MB on the 1M-trade day): they
  /// are written in place into a new buffer made with room for them, through
  /// pointers taken once (no append, no uniqueness check, no retain per record),
  /// each group of 16 account rows read back to back first (their misses overlap).
  mutating func appendHoldings(_ ids: [Int32]) {
    var out: [UInt8] = []
    swap(&out, &fxOut)
    defer { swap(&out, &fxOut) }
    if ids.count < 1024 {
      // A few holdings (a CANCEL's, a SETTLE's): appended one by one (a new buffer
      // would copy the batch's bytes so far each time).
      for id in ids {
        var account = accounts[Int(positions[Int(id)].account)].id.text
        let range = codes.securities[Int(positions[Int(id)].security)]
        account.withUTF8 { a in
          codes.arena.withUnsafeBytes { arena in
            let sec = V2Codes.slice(arena, range)
            withUnsafeTemporaryAllocation(byteCount: 5 + 4 + a.count + 4 + sec.count + 24, alignment: 8) {
              buffer in
              var c = V2Cursor(buffer.baseAddress!)
              positions.withUnsafeBufferPointer { pos in
                Self.encodeHolding(pos.baseAddress! + Int(id), UnsafeRawBufferPointer(a), sec, &c)
              }
              precondition(c.p == buffer.baseAddress! + buffer.count, "V2: holding record size mismatch")
              out.append(contentsOf: UnsafeRawBufferPointer(buffer))
            }
          }
        }
      }
      return
    }
    var sink: UInt8 = 0
    var k = 0
    positions.withUnsafeBufferPointer { pos in
      accounts.withUnsafeBufferPointer { acc in
        codes.securities.withUnsafeBufferPointer { secs in
          codes.arena.withUnsafeBytes { arena in
            ids.withUnsafeBufferPointer { ids in
              var written = 0
              var slack = 4096
              while k < ids.count {
                // Room for the rest at the average record size so far (64 bytes before
                // the first): a longer identifier than foreseen only means one more round.
                let perRecord = k == 0 ? 64 : max(64, written / k + 8)
                let room = out.count + (ids.count - k) * perRecord + slack
                let before = k
                var next = [UInt8](unsafeUninitializedCapacity: room) { buffer, initialized in
                  let base = UnsafeMutableRawPointer(buffer.baseAddress!)
                  out.withUnsafeBytes { old in
                    if old.count > 0 { base.copyMemory(from: old.baseAddress!, byteCount: old.count) }
                  }
                  var at = out.count
                  var full = false
                  while k < ids.count && !full {
                    let end = min(k + 16, ids.count)
                    for j in k..<end {
                      let a = acc.baseAddress! + Int(pos[Int(ids[j])].account)
                      let r = UnsafeRawPointer(a)
                      sink &+=
                        r.load(as: UInt8.self)
                        &+ r.load(
                          fromByteOffset: MemoryLayout<AccountRecord>.size - 1, as: UInt8.self)
                    }
                    for j in k..<end {
                      let p = pos.baseAddress! + Int(ids[j])
                      let sec = V2Codes.slice(arena, secs[Int(p.pointee.security)])
                      var account = acc[Int(p.pointee.account)].id.text
                      let size = account.withUTF8 { a -> Int in
                        let size = 5 + 4 + a.count + 4 + sec.count + 24
                        if at + size > room { return 0 }
                        var c = V2Cursor(base + at)
                        Self.encodeHolding(p, UnsafeRawBufferPointer(a), sec, &c)
                        return size
                      }
                      if size == 0 {
                        full = true
                        break
                      }
                      at += size
                      k += 1
                    }
                  }
                  initialized = at
                }
                if k == before {
                  precondition(slack < EffectFormat.recordBytesMax, "V2: no room for a holding record")
                  slack *= 2
                }
                written += next.count - out.count
                swap(&out, &next)
              }
            }
          }
        }
      }
    }
    prefetchSink &+= Int64(sink)
  }

  func writeClearing(_ id: Int32, into w: inout EffectWriter) {
    writeClearing(id, settle: nextTradingDay(clearingRows[Int(id)].tradeDate), into: &w)
  }

  func writeClearing(_ id: Int32, settle: Int32, into w: inout EffectWriter) {
    let c = clearingRows[Int(id)]
    w.clearing(
      tradeDate: c.tradeDate, settleDate: settle,
      participant: participants[Int(c.participant)].id.text,
      security: securities[Int(c.security)].code.text, buyQuantity: c.buyQuantity,
      sellQuantity: c.sellQuantity,
      buyAmount: c.buyAmount, sellAmount: c.sellAmount, fees: c.fees)
  }

  func writeSettlement(_ id: Int32, into w: inout EffectWriter) {
    writeSettlement(id, settle: nextTradingDay(settlementRows[Int(id)].tradeDate), into: &w)
  }

  func writeSettlement(_ id: Int32, settle: Int32, into w: inout EffectWriter) {
    let s = settlementRows[Int(id)]
    w.settlement(
      tradeDate: s.tradeDate, settleDate: settle,
      participant: participants[Int(s.participant)].id.text,
      netFen: s.netFen, status: s.status, settledOn: s.settledOn, visible: s.liveSides > 0)
  }

  func writeBalance(_ id: Int32, into w: inout EffectWriter) {
    let p = participants[Int(id)]
    w.balance(participant: p.id.text, balanceFen: p.balance)
  }

  func writeHolding(_ id: Int32, into w: inout EffectWriter) {
    let p = positions[Int(id)]
    w.holding(
      account: accounts[Int(p.account)].id.text, security: securities[Int(p.security)].code.text,
      quantity: p.quantity, available: p.available, withheld: p.withheld)
  }

  /// A holding whose account identifier's bytes the caller has at hand.
  func writeHolding(_ id: Int32, account: UnsafeRawBufferPointer, into w: inout EffectWriter) {
    let p = positions[Int(id)]
    w.holding(
      accountBytes: account, security: securities[Int(p.security)].code.text,
      quantity: p.quantity, available: p.available, withheld: p.withheld)
  }

  func writeEntitlement(_ id: Int32, into w: inout EffectWriter) {
    let e = entitlements[Int(id)]
    w.entitlement(
      ordinal: Int64(id), security: securities[Int(e.security)].code.text, recordDate: e.recordDate,
      payDate: e.payDate, account: accounts[Int(e.account)].id.text, kind: e.kind, value: e.value)
  }

  func writeTax(_ id: Int32, into w: inout EffectWriter) {
    let t = trades[Int(id)]
    w.tax(
      tradeDate: t.date, tradeId: t.tradeId.text, account: accounts[Int(t.sellAccount)].id.text,
      security: securities[Int(t.security)].code.text, quantity: t.quantity, taxFen: t.taxFen)
  }

  func writeRejection(_ index: Int, into w: inout EffectWriter) {
    let r = rejections[index]
    w.rejection(seq: r.seq, record: r.record, ref: r.ref, reason: r.reason)
  }

  public func snapshotEffects() -> [UInt8] {
    var w = EffectWriter()
    let header = w.eventHeader(seq: globals.appliedSeq, outcome: .snapshot, count: 0)
    var n = 0
    // Observed canonical snapshot order: balances first, then the other kinds.
    for i in participants.indices {
      writeBalance(Int32(i), into: &w)
      n += 1
    }
    for (i, c) in clearingRows.enumerated() where c.buyQuantity != 0 || c.sellQuantity != 0 {
      writeClearing(Int32(i), into: &w)
      n += 1
    }
    for (i, s) in settlementRows.enumerated() where s.liveSides > 0 {
      writeSettlement(Int32(i), into: &w)
      n += 1
    }
    for (i, p) in positions.enumerated() where p.quantity > 0 {
      writeHolding(Int32(i), into: &w)
      n += 1
    }
    for i in entitlements.indices {
      writeEntitlement(Int32(i), into: &w)
      n += 1
    }
    for (i, t) in trades.enumerated() where t.taxFen > 0 && !t.cancelled {
      writeTax(Int32(i), into: &w)
      n += 1
    }
    for i in rejections.indices {
      writeRejection(i, into: &w)
      n += 1
    }
    w.patchCount(headerAt: header, count: n)
    return w.bytes
  }

  // MARK: - Canonical rows

  func rowCount(_ table: StateTable) -> Int {
    switch table {
    case .globals: return 1
    case .participants: return participants.count
    case .units: return units.count
    case .accounts: return accounts.count
    case .securities: return securities.count
    case .positions: return positions.count
    case .clearing: return clearingRows.count
    case .settlement: return settlementRows.count
    case .trades: return trades.count
    case .slices: return slices.count
    case .actions: return actions.count
    case .entitlements: return entitlements.count
    case .rejections: return rejections.count
    case .days: return days.count
    }
  }

  func encodeRow(_ table: StateTable, _ id: Int, into w: inout ByteWriter) {
    switch table {
    case .globals: globals.encode(into: &w)
    case .participants: participants[id].encode(into: &w)
    case .units: units[id].encode(into: &w)
    case .accounts: accounts[id].encode(into: &w)
    case .securities: securities[id].encode(into: &w)
    case .positions:
      let p = positions[id]
      p.record.encodeFields(lotCount: Int32(p.lotCount), into: &w)
      for j in Int(p.lotHead)..<Int(p.lotEnd) { pool.lots[j].lot.encode(into: &w) }
    case .clearing: clearingRows[id].encode(into: &w)
    case .settlement: settlementRows[id].encode(into: &w)
    case .trades: tradeRecord(id).encode(into: &w)
    case .slices: slices[id].lot.encode(into: &w)
    case .actions: actions[id].encode(into: &w)
    case .entitlements: entitlements[id].encode(into: &w)
    case .rejections: rejections[id].encode(into: &w)
    case .days: days[id].encode(into: &w)
    }
  }

  public func forEachEncodedRow(_ body: (StateTable, Int32, [UInt8]) -> Void) {
    var w = ByteWriter(capacity: 256)
    for table in StateTable.allCases {
      for id in 0..<rowCount(table) {
        w.reset()
        encodeRow(table, id, into: &w)
        body(table, Int32(id), w.bytes)
      }
    }
  }

  public mutating func setChangeTracking(_ on: Bool) {
    tracking = on
    forgetChanges()
  }

  public mutating func takeChangedRows(
    into w: inout ByteWriter, _ body: (StateTable, Int32, Range<Int>) -> Void
  ) {
    guard tracking else { return }
    for table in StateTable.allCases {
      let t = Int(table.rawValue)
      let count = rowCount(table)
      var ids = modified[t]
      Self.sortedUnique(&ids)
      let start = table == .globals ? 0 : min(watermark[t], count)
      for id in ids where Int(id) < start {
        let at = w.count
        encodeRow(table, Int(id), into: &w)
        body(table, id, at..<w.count)
      }
      for id in start..<count {
        let at = w.count
        encodeRow(table, id, into: &w)
        body(table, Int32(id), at..<w.count)
      }
    }
    forgetChanges()
  }

  public mutating func forgetChanges() {
    for table in StateTable.allCases {
      let t = Int(table.rawValue)
      watermark[t] = rowCount(table)
      modified[t].removeAll(keepingCapacity: true)
    }
  }

  // MARK: - Restore

  public static func restore(
    opening: consuming V2Kernel, stored: ((StateTable, Int32, [UInt8]) throws -> Void) throws -> Void
  ) throws -> V2Kernel {
    var k = opening
    try stored { table, id, bytes in try k.lay(table, Int(id), bytes) }
    k.rebuildDerived()
    k.forgetChanges()
    return k
  }

  static func put<R>(_ rows: inout [R], _ id: Int, _ row: R, _ table: StateTable) throws {
    if id < rows.count {
      rows[id] = row
    } else if id == rows.count {
      rows.append(row)
    } else {
      throw DecodeError(description: "\(table.name) row \(id) beyond the table's end \(rows.count)")
    }
  }

  mutating func lay(_ table: StateTable, _ id: Int, _ bytes: [UInt8]) throws {
    var r = ByteReader(bytes)
    switch table {
    case .globals:
      guard id == 0 else { throw DecodeError(description: "globals row \(id)") }
      globals = try GlobalRecord(from: &r)
    case .participants: try Self.put(&participants, id, try ParticipantRecord(from: &r), table)
    case .units: try Self.put(&units, id, try UnitRecord(from: &r), table)
    case .accounts: try Self.put(&accounts, id, try AccountRecord(from: &r), table)
    case .securities: try Self.put(&securities, id, try SecurityRecord(from: &r), table)
    case .positions:
      let (p, lots) = try PositionRecord.decode(from: &r)
      var v = V2Position(account: p.account, security: p.security)
      v.quantity = p.quantity
      v.available = p.available
      v.withheld = p.withheld
      if id < positions.count {
        v.lotBase = positions[id].lotBase
        v.lotLog = positions[id].lotLog
      }
      try Self.put(&positions, id, v, table)
      layLots(Int32(id), lots)
    case .clearing: try Self.put(&clearingRows, id, try ClearingRecord(from: &r), table)
    case .settlement: try Self.put(&settlementRows, id, try SettlementRecord(from: &r), table)
    case .trades:
      let record = try TradeRecord(from: &r)
      guard id <= trades.count else {
        throw DecodeError(description: "\(table.name) row \(id) beyond the table's end \(trades.count)")
      }
      layTrade(id, record)
    case .slices: try Self.put(&slices, id, V2Lot(try Lot(from: &r)), table)
    case .actions: try Self.put(&actions, id, try ActionRecord(from: &r), table)
    case .entitlements: try Self.put(&entitlements, id, try EntitlementRecord(from: &r), table)
    case .rejections: try Self.put(&rejections, id, try RejectionRecord(from: &r), table)
    case .days: try Self.put(&days, id, try DayRecord(from: &r), table)
    }
    guard r.isAtEnd else { throw DecodeError(description: "\(table.name) row \(id) has trailing bytes") }
  }

  // MARK: - SPEC §5

  /// Ranks of identifiers by their bytes (for sorting rows by ids without comparing text twice).
  static func ranks(_ n: Int, _ ident: (Int) -> Ident) -> [Int32] {
    var order = Array(0..<n)
    order.sort { ident($0) < ident($1) }
    var rank = [Int32](repeating: 0, count: n)
    for (r, i) in order.enumerated() { rank[i] = Int32(r) }
    return rank
  }

  public func report(holdings: Bool) -> Report {
    var r = Report()
    let pRank = Self.ranks(participants.count) { participants[$0].id }
    let sRank = Self.ranks(securities.count) { securities[$0].code }
    var cl = clearingRows.indices.filter {
      clearingRows[$0].buyQuantity != 0 || clearingRows[$0].sellQuantity != 0
    }
    cl.sort { a, b in
      let x = clearingRows[a]
      let y = clearingRows[b]
      return (x.tradeDate, pRank[Int(x.participant)], sRank[Int(x.security)])
        < (y.tradeDate, pRank[Int(y.participant)], sRank[Int(y.security)])
    }
    r.clearing = cl.map { i in
      let c = clearingRows[i]
      return Report.Clearing(
        tradeDate: c.tradeDate, settleDate: nextTradingDay(c.tradeDate),
        participant: participants[Int(c.participant)].id.text,
        security: securities[Int(c.security)].code.text, buyQuantity: c.buyQuantity,
        sellQuantity: c.sellQuantity,
        buyAmount: c.buyAmount, sellAmount: c.sellAmount, fees: c.fees)
    }
    var st = settlementRows.indices.filter { settlementRows[$0].liveSides > 0 }
    st.sort { a, b in
      let x = settlementRows[a]
      let y = settlementRows[b]
      return (x.tradeDate, pRank[Int(x.participant)]) < (y.tradeDate, pRank[Int(y.participant)])
    }
    r.settlement = st.map { i in
      let s = settlementRows[i]
      return Report.Settlement(
        tradeDate: s.tradeDate, settleDate: nextTradingDay(s.tradeDate),
        participant: participants[Int(s.participant)].id.text,
        netFen: s.netFen, status: s.status, settledOn: s.settledOn)
    }
    let byP = participants.indices.sorted { pRank[$0] < pRank[$1] }
    r.balances = byP.map {
      Report.Balance(participant: participants[$0].id.text, balanceFen: participants[$0].balance)
    }
    if holdings {
      forEachHolding { a, s, q, av, w in
        r.holdings.append(
          Report.Holding(account: a.text, security: s.text, quantity: q, available: av, withheld: w))
      }
    }
    var en = Array(entitlements.indices)
    if !en.isEmpty {
      let aRank = Self.ranks(accounts.count) { accounts[$0].id }
      en.sort { a, b in
        let x = entitlements[a]
        let y = entitlements[b]
        return (sRank[Int(x.security)], x.recordDate, aRank[Int(x.account)], x.kind.rawValue, a)
          < (sRank[Int(y.security)], y.recordDate, aRank[Int(y.account)], y.kind.rawValue, b)
      }
    }
    r.entitlements = en.map { i in
      let e = entitlements[i]
      return Report.Entitlement(
        security: securities[Int(e.security)].code.text, recordDate: e.recordDate, payDate: e.payDate,
        account: accounts[Int(e.account)].id.text, kind: e.kind, value: e.value)
    }
    var tx = trades.indices.filter { trades[$0].taxFen > 0 && !trades[$0].cancelled }
    tx.sort { a, b in
      let x = trades[a]
      let y = trades[b]
      if x.date != y.date { return x.date < y.date }
      return x.tradeId < y.tradeId
    }
    r.tax = tx.map { i in
      let t = trades[i]
      return Report.Tax(
        tradeDate: t.date, tradeId: t.tradeId.text, account: accounts[Int(t.sellAccount)].id.text,
        security: securities[Int(t.security)].code.text, quantity: t.quantity, taxFen: t.taxFen)
    }
    r.rejections = rejections.map {
      Report.Rejection(seq: $0.seq, record: $0.record, ref: $0.ref, reason: $0.reason)
    }
    return r
  }

  public func forEachHolding(
    _ body: (_ account: Ident, _ security: Ident, _ quantity: Int64, _ available: Int64, _ withheld: Int64) ->
      Void
  ) {
    let aRank = Self.ranks(accounts.count) { accounts[$0].id }
    let sRank = Self.ranks(securities.count) { securities[$0].code }
    var ids = positions.indices.filter { positions[$0].quantity > 0 || positions[$0].withheld > 0 }
    ids.sort { a, b in
      let x = positions[a]
      let y = positions[b]
      return (aRank[Int(x.account)], sRank[Int(x.security)]) < (aRank[Int(y.account)], sRank[Int(y.security)])
    }
    for i in ids {
      let p = positions[i]
      body(accounts[Int(p.account)].id, securities[Int(p.security)].code, p.quantity, p.available, p.withheld)
    }
  }

  // MARK: - Self-check

  public func selfCheckViolations(limit: Int) -> [String] {
    var out: [String] = []
    func note(_ s: @autoclosure () -> String) { if out.count < limit { out.append(s()) } }
    var held = [Int64](repeating: 0, count: securities.count)
    for (i, p) in positions.enumerated() {
      held[Int(p.security)] += p.quantity
      if p.quantity < 0 || p.available < 0 || p.withheld < 0 { note("position \(i): negative value") }
      if p.available + p.withheld > p.quantity { note("position \(i): available + withheld > quantity") }
      var sum: Int64 = 0
      var prev: V2Lot?
      for lot in pool.lots[Int(p.lotHead)..<Int(p.lotEnd)] {
        sum += lot.quantity
        if lot.quantity <= 0 { note("position \(i): empty lot") }
        if let q = prev, !q.orderedBefore(lot) { note("position \(i): lots out of order") }
        prev = lot
      }
      if sum != p.quantity { note("position \(i): lots sum \(sum) != quantity \(p.quantity)") }
    }
    for (i, s) in securities.enumerated() where held[i] != s.issuedQuantity {
      note("security \(s.code.text): held \(held[i]) != issued \(s.issuedQuantity)")
    }
    for (i, s) in settlementRows.enumerated() where s.liveSides < 0 {
      note("settlement \(i): negative live sides")
    }
    return out
  }
}
