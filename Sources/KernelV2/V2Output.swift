// V2Kernel: effects (docs/EFFECTS.md, encoding version 2), canonical rows and change
// tracking (docs/CANONICAL-ROWS.md), restore, SPEC §5 report and self-check.
//
// Effects, version 2 (rows named by canonical row id, keys written once):
// - Which rows get key records: V2 keeps, per keyed table (participants, accounts,
//   securities, clearing, settlement, positions), the count of rows the stream has
//   already named (`keyed`, V2Keyed). Every row at or above that count when an event
//   ends was created by that event and gets its key record there, in kind order then
//   by id, before the event's value records; the counts then move to the tables'
//   ends. Ids are dense and in creation order, so "created by this event" is exactly
//   "id ≥ count before it": no per-row flag, no list of new rows. The counts are set
//   to the tables' ends when the kernel is made (the seq-0 snapshot carries the
//   reference rows), when effects are enabled mid-run, and after a restore from
//   stored rows: every row existing then is named by the stream before (its snapshot).
// - An applied TRADE writes its records itself (V2Encoding.swift, V2's own encoder
//   written from docs/EFFECTS.md): one stack buffer sized up front, one copy into the
//   output. Its new rows are known from the row ids the apply returned against the
//   counts (at most the buyer's and seller's clearing and settlement rows and the
//   buyer's position), their keys from the trade's own ids: a TRADE reads no
//   identifier string (only a taxed sale's trade id, which the tax record carries).
// - Other events collect the row ids they touched per effect kind and write them at
//   their end, sorted by id and deduplicated: clearing, settlement, balance, tax,
//   tax_removed and rejection records through KernelAPI's EffectWriter; holdings (an
//   OPEN's many) and entitlements (a CLOSE's many) through V2's encoder, fixed-size
//   records written straight into the output (one new buffer for a large event).
//   Entitlements must not go through EffectWriter.entitlement: its room
//   (`entitlementBytes`, 5 + 37) is 4 bytes larger than the version 2 record (5 + 33:
//   ordinal, security id, two dates, account id, kind, value), and it traps.
// - `snapshotEffects()`: the SNAPSHOT header, the key records of every row of the six
//   keyed tables (kind order, ids ascending, hidden rows too), then the values in the
//   snapshot order of docs/EFFECTS.md.

import KernelAPI

extension V2Kernel {
  // MARK: - Effects

  public mutating func enableEffects() {
    effectsOn = true
    // Rows existing now are named by the snapshot a stream starts from.
    markAllKeyed()
  }

  /// Every existing row counts as named by the stream (its snapshot).
  mutating func markAllKeyed() {
    keyed = V2Keyed(
      participants: participants.count, accounts: accounts.count, securities: securities.count,
      clearing: clearingRows.count, settlement: settlementRows.count, positions: positions.count)
  }

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

  /// An applied TRADE's records: the key records of the rows it created (clearing,
  /// settlement, then the buyer's position, each by id), its one or two clearing rows,
  /// one or two settlement rows and one or two holdings (each once, by row id), then
  /// its tax row. Encoded by V2 into one stack buffer sized up front and appended with
  /// one copy. The encoders reach the rows through pointers taken once and read only
  /// the value fields the apply has just written; the keys come from the trade row's
  /// ids (no identifier string is read, no clearing row's key fields).
  mutating func writeTradeEffects(seq: Int64) {
    let t = lastTrade
    let c0 = min(t.buyClearing, t.sellClearing)
    let c1 = max(t.buyClearing, t.sellClearing)
    let s0 = min(t.buySettlement, t.sellSettlement)
    let s1 = max(t.buySettlement, t.sellSettlement)
    let h0 = min(t.sellPosition, t.buyPosition)
    let h1 = max(t.sellPosition, t.buyPosition)
    let i = Int(t.trade)
    let date = trades[i].date
    if settleCache.tradeDate != date { settleCache = (date, nextTradingDay(date)) }
    let settle = settleCache.settleDate
    let buyParticipant = trades[i].buyParticipant
    let sellParticipant = trades[i].sellParticipant
    let security = trades[i].security
    let buyAccount = trades[i].buyAccount
    let participantC0 = c0 == t.buyClearing ? buyParticipant : sellParticipant
    let participantC1 = c1 == t.buyClearing ? buyParticipant : sellParticipant
    let participantS0 = s0 == t.buySettlement ? buyParticipant : sellParticipant
    let participantS1 = s1 == t.buySettlement ? buyParticipant : sellParticipant
    // The rows this trade created: ids at or above the counts already named.
    let newC0 = Int(c0) >= keyed.clearing
    let newC1 = c1 != c0 && Int(c1) >= keyed.clearing
    let newS0 = Int(s0) >= keyed.settlement
    let newS1 = s1 != s0 && Int(s1) >= keyed.settlement
    let newPosition = Int(t.buyPosition) >= keyed.positions
    let keys =
      (newC0 ? 1 : 0) + (newC1 ? 1 : 0) + (newS0 ? 1 : 0) + (newS1 ? 1 : 0) + (newPosition ? 1 : 0)
    precondition(
      clearingRows.count - keyed.clearing == (newC0 ? 1 : 0) + (newC1 ? 1 : 0)
        && settlementRows.count - keyed.settlement == (newS0 ? 1 : 0) + (newS1 ? 1 : 0)
        && positions.count - keyed.positions == (newPosition ? 1 : 0),
      "V2: a trade created rows other than its own")
    keyed.clearing = clearingRows.count
    keyed.settlement = settlementRows.count
    keyed.positions = positions.count
    let n = keys + (c0 == c1 ? 1 : 2) + (s0 == s1 ? 1 : 2) + (h0 == h1 ? 1 : 2) + (t.taxed ? 1 : 0)
    // The tax row: the trade's own fields (its id as stored, the seller's account id).
    var taxId = ""
    var tax: (quantity: Int64, taxFen: Int64, seller: Int32) = (0, 0, 0)
    if t.taxed {
      taxId = tradeIdText(i)
      tax = (trades[i].quantity, taxFen(i), trades[i].sellAccount)
    }
    var size = V2RecordBytes.eventHeader
    size += (newC0 ? 1 : 0) * V2RecordBytes.clearingKey + (newC1 ? 1 : 0) * V2RecordBytes.clearingKey
    size += (newS0 ? 1 : 0) * V2RecordBytes.settlementKey + (newS1 ? 1 : 0) * V2RecordBytes.settlementKey
    size += (newPosition ? 1 : 0) * V2RecordBytes.positionKey
    size += (c0 == c1 ? 1 : 2) * V2RecordBytes.clearing
    size += (s0 == s1 ? 1 : 2) * V2RecordBytes.settlement
    size += (h0 == h1 ? 1 : 2) * V2RecordBytes.holding
    // The output leaves `self` while `self`'s rows are read: no exclusivity conflict.
    var out: [UInt8] = []
    swap(&out, &fxOut)
    defer { swap(&out, &fxOut) }
    taxId.withUTF8 { idBytes in
      let taxIdBytes = UnsafeRawBufferPointer(idBytes)
      if t.taxed { size += V2RecordBytes.tax(tradeId: taxIdBytes.count) }
      clearingRows.withUnsafeBufferPointer { cr in
        settlementRows.withUnsafeBufferPointer { sr in
          positions.withUnsafeBufferPointer { pos in
            withUnsafeTemporaryAllocation(byteCount: size, alignment: 8) { buffer in
              var c = V2Cursor(buffer.baseAddress!)
              c.eventHeader(seq: seq, outcome: .applied, count: n)
              if newC0 {
                c.clearingKey(
                  c0, tradeDate: date, settleDate: settle, participant: participantC0, security: security)
              }
              if newC1 {
                c.clearingKey(
                  c1, tradeDate: date, settleDate: settle, participant: participantC1, security: security)
              }
              if newS0 {
                c.settlementKey(s0, tradeDate: date, settleDate: settle, participant: participantS0)
              }
              if newS1 {
                c.settlementKey(s1, tradeDate: date, settleDate: settle, participant: participantS1)
              }
              if newPosition { c.positionKey(t.buyPosition, account: buyAccount, security: security) }
              c.clearing(c0, cr.baseAddress! + Int(c0))
              if c1 != c0 { c.clearing(c1, cr.baseAddress! + Int(c1)) }
              c.settlement(s0, sr.baseAddress! + Int(s0))
              if s1 != s0 { c.settlement(s1, sr.baseAddress! + Int(s1)) }
              c.holding(h0, pos.baseAddress! + Int(h0))
              if h1 != h0 { c.holding(h1, pos.baseAddress! + Int(h1)) }
              if t.taxed {
                c.tax(
                  tradeDate: date, tradeId: taxIdBytes, account: tax.seller, security: security,
                  quantity: tax.quantity, taxFen: tax.taxFen)
              }
              precondition(c.p == buffer.baseAddress! + size, "V2: trade effects size mismatch")
              out.append(contentsOf: UnsafeRawBufferPointer(buffer))
            }
          }
        }
      }
    }
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

  /// Key records of the rows not named yet (created by the event ending), by kind then id.
  var unkeyedRows: Int {
    (participants.count - keyed.participants) + (accounts.count - keyed.accounts)
      + (securities.count - keyed.securities) + (clearingRows.count - keyed.clearing)
      + (settlementRows.count - keyed.settlement) + (positions.count - keyed.positions)
  }

  /// Writes the key records of rows `from` (a table's first unnamed row, per table) to
  /// the tables' ends: participants, accounts, securities, clearing, settlement,
  /// positions (docs/EFFECTS.md kinds 0x02-0x07), each by ascending id.
  func writeKeys(from k: V2Keyed, into w: inout EffectWriter) {
    for i in k.participants..<participants.count { w.participantKey(Int32(i), participants[i].id.text) }
    for i in k.accounts..<accounts.count { w.accountKey(Int32(i), accounts[i].id.text) }
    for i in k.securities..<securities.count { w.securityKey(Int32(i), securities[i].code.text) }
    for i in k.clearing..<clearingRows.count {
      let c = clearingRows[i]
      w.clearingKey(
        Int32(i), tradeDate: c.tradeDate, settleDate: nextTradingDay(c.tradeDate), participant: c.participant,
        security: c.security)
    }
    for i in k.settlement..<settlementRows.count {
      let s = settlementRows[i]
      w.settlementKey(
        Int32(i), tradeDate: s.tradeDate, settleDate: nextTradingDay(s.tradeDate), participant: s.participant)
    }
    for i in k.positions..<positions.count {
      w.positionKey(Int32(i), account: positions[i].account, security: positions[i].security)
    }
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
    // Rows the event created (a rejected event creates none): named first.
    let keys = unkeyedRows
    if case .rejected = outcome {
      _ = w.eventHeader(seq: seq, outcome: .rejected, count: keys + 1)
      if keys > 0 { writeKeys(from: keyed, into: &w) }
      markAllKeyed()
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
    _ = w.eventHeader(seq: seq, outcome: .applied, count: keys + n)
    if keys > 0 { writeKeys(from: keyed, into: &w) }
    markAllKeyed()
    for c in touched.clearing { writeClearing(c, into: &w) }
    for s in touched.settlement { writeSettlement(s, into: &w) }
    for p in touched.balance { writeBalance(p, into: &w) }
    if !touched.holding.isEmpty || !touched.entitlements.isEmpty {
      // An OPEN may write a holding per position bought the day before, a CLOSE an
      // entitlement per holder: V2's encoder writes them straight into the output (no
      // second copy of a large buffer), after the records written so far.
      if w.count > 0 {
        fxOut.append(contentsOf: w.bytes)
        w.removeAll()
      }
      var out: [UInt8] = []
      swap(&out, &fxOut)
      appendHoldings(touched.holding, into: &out)
      appendEntitlements(touched.entitlements, into: &out)
      swap(&out, &fxOut)
    }
    for x in touched.tax { writeTax(x, into: &w) }
    for x in touched.taxRemoved {
      w.taxRemoved(tradeDate: trades[Int(x)].date, tradeId: tradeIdText(Int(x)))
    }
  }

  /// Appends `count` records of `recordBytes` bytes each, record `j` written by
  /// `write(&cursor, j)` (V2's encoder). Many (an OPEN releasing a day's purchases:
  /// ~1M holdings, 33 MB on the 1M-trade day) are written in place into one new buffer
  /// made with room for them (the bytes so far copied once, slack left for the rest of
  /// the batch), through a pointer taken once: no append, no uniqueness check per
  /// record. A few (a CANCEL's, a SETTLE's) are appended one by one from the stack.
  static func appendFixed(
    count: Int, recordBytes: Int, into out: inout [UInt8], _ write: (inout V2Cursor, Int) -> Void
  ) {
    if count == 0 { return }
    let bytes = count * recordBytes
    if count < 1024 || out.capacity - out.count >= bytes {
      withUnsafeTemporaryAllocation(byteCount: recordBytes, alignment: 8) { buffer in
        for j in 0..<count {
          var c = V2Cursor(buffer.baseAddress!)
          write(&c, j)
          precondition(c.p == buffer.baseAddress! + recordBytes, "V2: effect record size mismatch")
          out.append(contentsOf: UnsafeRawBufferPointer(buffer))
        }
      }
      return
    }
    let old = out.count
    let total = old + bytes
    let next = [UInt8](unsafeUninitializedCapacity: total + (1 << 20)) { buffer, initialized in
      let base = UnsafeMutableRawPointer(buffer.baseAddress!)
      out.withUnsafeBytes { o in
        if o.count > 0 { base.copyMemory(from: o.baseAddress!, byteCount: o.count) }
      }
      var c = V2Cursor(base + old)
      for j in 0..<count { write(&c, j) }
      precondition(c.p == base + total, "V2: effect records size mismatch")
      initialized = total
    }
    out = next
  }

  /// The holding records of positions `ids` (ascending), by V2's encoder.
  func appendHoldings(_ ids: [Int32], into out: inout [UInt8]) {
    positions.withUnsafeBufferPointer { pos in
      Self.appendFixed(count: ids.count, recordBytes: V2RecordBytes.holding, into: &out) { c, j in
        c.holding(ids[j], pos.baseAddress! + Int(ids[j]))
      }
    }
  }

  /// The entitlement records of `ids` (by ordinal = row id), by V2's encoder.
  func appendEntitlements(_ ids: Range<Int32>, into out: inout [UInt8]) {
    entitlements.withUnsafeBufferPointer { ent in
      Self.appendFixed(count: ids.count, recordBytes: V2RecordBytes.entitlement, into: &out) { c, j in
        let id = ids.lowerBound + Int32(j)
        c.entitlement(id, ent.baseAddress! + Int(id))
      }
    }
  }

  func writeClearing(_ id: Int32, into w: inout EffectWriter) {
    let c = clearingRows[Int(id)]
    w.clearing(
      id, buyQuantity: c.buyQuantity, sellQuantity: c.sellQuantity, buyAmount: c.buyAmount,
      sellAmount: c.sellAmount, fees: c.fees)
  }

  func writeSettlement(_ id: Int32, into w: inout EffectWriter) {
    let s = settlementRows[Int(id)]
    w.settlement(id, netFen: s.netFen, status: s.status, settledOn: s.settledOn, visible: s.liveSides > 0)
  }

  func writeBalance(_ id: Int32, into w: inout EffectWriter) {
    w.balance(participant: id, balanceFen: participants[Int(id)].balance)
  }

  func writeHolding(_ id: Int32, into w: inout EffectWriter) {
    let p = positions[Int(id)]
    w.holding(id, quantity: p.quantity, available: p.available, withheld: p.withheld)
  }

  func writeTax(_ id: Int32, into w: inout EffectWriter) {
    let t = trades[Int(id)]
    w.tax(
      tradeDate: t.date, tradeId: tradeIdText(Int(id)), account: t.sellAccount, security: t.security,
      quantity: t.quantity, taxFen: taxFen(Int(id)))
  }

  func writeRejection(_ index: Int, into w: inout EffectWriter) {
    let r = rejections[index]
    w.rejection(seq: r.seq, record: r.record, ref: r.ref, reason: r.reason)
  }

  public func snapshotEffects() -> [UInt8] {
    var w = EffectWriter()
    let header = w.eventHeader(seq: globals.appliedSeq, outcome: .snapshot, count: 0)
    // The key of every row of the six keyed tables, hidden rows too.
    writeKeys(from: V2Keyed(), into: &w)
    var n =
      participants.count + accounts.count + securities.count + clearingRows.count + settlementRows.count
      + positions.count
    // docs/EFFECTS.md's snapshot order: balances, then the other kinds, each by id.
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
    // Entitlements by V2's encoder, between what `w` holds so far and the rest.
    var out = w.bytes
    w.removeAll()
    appendEntitlements(0..<Int32(entitlements.count), into: &out)
    n += entitlements.count
    for (i, t) in trades.enumerated() where taxFen(i) > 0 && !t.cancelled {
      writeTax(Int32(i), into: &w)
      n += 1
    }
    for i in rejections.indices {
      writeRejection(i, into: &w)
      n += 1
    }
    out.append(contentsOf: w.bytes)
    // The header's count (the last field of the event record at `header`), little-endian.
    for k in 0..<4 { out[header + 14 + k] = UInt8(truncatingIfNeeded: n >> (8 * k)) }
    return out
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
    case .slices: sliceLot(id).lot.encode(into: &w)
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
      let start = table == .globals ? 0 : min(watermark[t], count)
      // The listed rows in id order: from the bits when many are listed, else sorted.
      let words = modifiedBits[t]
      if modified[t].count >= words.count / 16 {
        for (i, word) in words.enumerated() where word != 0 {
          var rest = word
          while rest != 0 {
            let id = i &* 64 &+ rest.trailingZeroBitCount
            rest &= rest &- 1
            guard id < start else { continue }
            let at = w.count
            encodeRow(table, id, into: &w)
            body(table, Int32(id), at..<w.count)
          }
        }
      } else {
        var ids = modified[t]
        ids.sort()
        for id in ids where Int(id) < start {
          let at = w.count
          encodeRow(table, Int(id), into: &w)
          body(table, id, at..<w.count)
        }
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
      let ids = modified[t]
      modifiedBits[t].withUnsafeMutableBufferPointer { words in
        for id in ids { words[Int(id) &>> 6] = 0 }
      }
      modified[t].removeAll(keepingCapacity: true)
      watermark[t] = rowCount(table)
      let need = (watermark[t] + 63) / 64
      if modifiedBits[t].count < need {
        modifiedBits[t].append(contentsOf: repeatElement(0, count: need - modifiedBits[t].count))
      }
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
    // Every row existing now was named by the stream before (its snapshot).
    k.markAllKeyed()
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
    case .slices: try laySlice(id, V2Lot(try Lot(from: &r)))
    case .actions: try Self.put(&actions, id, try ActionRecord(from: &r), table)
    case .entitlements: try Self.put(&entitlements, id, try EntitlementRecord(from: &r), table)
    case .rejections: try Self.put(&rejections, id, try RejectionRecord(from: &r), table)
    case .days: try Self.put(&days, id, try DayRecord(from: &r), table)
    }
    guard r.isAtEnd else { throw DecodeError(description: "\(table.name) row \(id) has trailing bytes") }
  }

  // MARK: - SPEC §5

  /// Ranks of the rows of `table` by their identifiers' bytes (for sorting rows by ids
  /// without comparing text twice). `ident` reads a row's identifier and captures
  /// nothing: a comparator that reached the rows through `self` was seen copying the
  /// whole kernel value (some sixty references retained and released) per comparison,
  /// ~25 s for a million accounts out of order.
  static func ranks<R>(_ table: [R], _ ident: (R) -> Ident) -> [Int32] {
    var rank = [Int32](repeating: 0, count: table.count)
    table.withUnsafeBufferPointer { rows in
      var keys = (0..<rows.count).map { V2IdentKey(ident(rows[$0]), row: $0) }
      keys.sort { V2IdentKey.less($0, $1, rows, ident) }
      for (r, k) in keys.enumerated() { rank[Int(k.row)] = Int32(r) }
    }
    return rank
  }

  /// `a < b` by UTF-8 bytes (SPEC §1; Ident's `<`), compared a word at a time.
  @inline(__always) static func identLess(_ a: Ident, _ b: Ident) -> Bool {
    var x = a.text
    var y = b.text
    return x.withUTF8 { xa in
      y.withUTF8 { yb in bytesLess(UnsafeRawBufferPointer(xa), UnsafeRawBufferPointer(yb)) }
    }
  }

  /// Lexicographic order of byte strings (unsigned bytes; a prefix first).
  @inline(__always) static func bytesLess(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    let n = min(a.count, b.count)
    var i = 0
    while i + 8 <= n {
      let x = UInt64(bigEndian: a.loadUnaligned(fromByteOffset: i, as: UInt64.self))
      let y = UInt64(bigEndian: b.loadUnaligned(fromByteOffset: i, as: UInt64.self))
      if x != y { return x < y }
      i += 8
    }
    while i < n {
      if a[i] != b[i] { return a[i] < b[i] }
      i += 1
    }
    return a.count < b.count
  }

  /// Whether `ident(0..<n)` are in strictly ascending bytes (one pass).
  static func identsAscending(_ n: Int, _ ident: (Int) -> Ident) -> Bool {
    if n < 2 { return true }
    var previous = ident(0)
    for i in 1..<n {
      let next = ident(i)
      if !identLess(previous, next) { return false }
      previous = next
    }
    return true
  }

  /// Account ranks by identifier bytes, or nil when row order already is that order.
  func accountRanks() -> [Int32]? {
    accountsAscending ? nil : Self.ranks(accounts) { $0.id }
  }

  public func report(holdings: Bool) -> Report {
    var r = Report()
    let pRank = Self.ranks(participants) { $0.id }
    let sRank = Self.ranks(securities) { $0.code }
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
      let aRank = accountRanks()
      en.sort { a, b in
        let x = entitlements[a]
        let y = entitlements[b]
        let xa = aRank?[Int(x.account)] ?? x.account
        let ya = aRank?[Int(y.account)] ?? y.account
        return (sRank[Int(x.security)], x.recordDate, xa, x.kind.rawValue, a)
          < (sRank[Int(y.security)], y.recordDate, ya, y.kind.rawValue, b)
      }
    }
    r.entitlements = en.map { i in
      let e = entitlements[i]
      return Report.Entitlement(
        security: securities[Int(e.security)].code.text, recordDate: e.recordDate, payDate: e.payDate,
        account: accounts[Int(e.account)].id.text, kind: e.kind, value: e.value)
    }
    var tx = trades.indices.filter { taxFen($0) > 0 && !trades[$0].cancelled }
    tx.sort { a, b in
      let x = trades[a]
      let y = trades[b]
      if x.date != y.date { return x.date < y.date }
      return Self.identLess(Ident(tradeIdText(a)), Ident(tradeIdText(b)))
    }
    r.tax = tx.map { i in
      let t = trades[i]
      return Report.Tax(
        tradeDate: t.date, tradeId: tradeIdText(i), account: accounts[Int(t.sellAccount)].id.text,
        security: securities[Int(t.security)].code.text, quantity: t.quantity, taxFen: taxFen(i))
    }
    r.rejections = rejections.map {
      Report.Rejection(seq: $0.seq, record: $0.record, ref: $0.ref, reason: $0.reason)
    }
    return r
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

/// An identifier as a sort key: its first 16 bytes as two big-endian words
/// (zero-padded), its length and its row. Keys are compared as words, in an array of
/// their own (no text read, no row of the table touched: a million account rows in
/// random order are a cache miss a comparison); only two identifiers longer than 16
/// bytes that share their first 16 are compared as text.
struct V2IdentKey: Sendable {
  var hi: UInt64
  var lo: UInt64
  var count: Int32
  var row: Int32

  init(_ id: Ident, row: Int) {
    var text = id.text
    (hi, lo, count) = text.withUTF8 { b in
      var words: (UInt64, UInt64) = (0, 0)
      if b.count >= 16 {
        let raw = UnsafeRawBufferPointer(b)
        words.0 = UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        words.1 = UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
      } else {
        for i in 0..<b.count {
          let shift = UInt64(56 - 8 * (i & 7))
          if i < 8 { words.0 |= UInt64(b[i]) << shift } else { words.1 |= UInt64(b[i]) << shift }
        }
      }
      return (words.0, words.1, Int32(b.count))
    }
    self.row = Int32(row)
  }

  /// `x`'s identifier before `y`'s in bytes (SPEC §1). Equal first 16 bytes (padded)
  /// with one identifier of at most 16 bytes: that one is a prefix of the other (its
  /// padding matched zero bytes), so the shorter is first; both longer: the texts,
  /// read from the rows.
  @inline(__always) static func less<R>(
    _ x: V2IdentKey, _ y: V2IdentKey, _ rows: UnsafeBufferPointer<R>, _ ident: (R) -> Ident
  ) -> Bool {
    if x.hi != y.hi { return x.hi < y.hi }
    if x.lo != y.lo { return x.lo < y.lo }
    if x.count <= 16 || y.count <= 16 { return x.count < y.count }
    return V2Kernel.identLess(ident(rows[Int(x.row)]), ident(rows[Int(y.row)]))
  }
}
