// V1's canonical rows (KernelAPI/StateCodec.swift): every row of the state visited in
// canonical order, the rows changed since the last commit, and the checksum.
import KernelAPI

extension PositionRecord {
  /// The canonical encoding of a position carries its lots (oldest first), from the pool.
  func encode(lots pool: LotPool, into w: inout ByteWriter) {
    var count: Int32 = 0
    var slot = firstLot
    while slot != LotPool.none {
      count += 1
      slot = pool.next(after: slot)
    }
    encodeFields(lotCount: count, into: &w)
    slot = firstLot
    while slot != LotPool.none {
      pool[slot].encode(into: &w)
      slot = pool.next(after: slot)
    }
  }

  /// Decodes a position, putting its lots into `pool`.
  init(from r: inout ByteReader, lots pool: inout LotPool) throws(DecodeError) {
    self.init(
      account: try r.i32(), security: try r.i32(), quantity: try r.i64(), available: try r.i64(),
      withheld: try r.i64())
    let count = Int(try r.i32())
    guard count >= 0 && count < 1 << 24 else { throw DecodeError(description: "bad lot count \(count)") }
    for _ in 0..<count {
      let slot = pool.allocate(try Lot(from: &r))
      var (first, last) = (firstLot, lastLot)
      pool.link(slot, after: last, first: &first, last: &last)
      (firstLot, lastLot) = (first, last)
    }
  }
}

extension V1Kernel {
  /// Visits every row of the business state in canonical order (table tag, then row id)
  /// with its encoding. The digest and a full snapshot are built from this. One writer
  /// serves every row: `body` must not keep the bytes beyond the call (a copy is fine).
  public func forEachEncodedRow(_ body: (StateTable, Int32, [UInt8]) -> Void) {
    var w = ByteWriter(capacity: 256)
    func visit<R: CanonicalRow>(_ tag: StateTable, _ table: Table<R>) {
      for i in table.indices {
        w.reset()
        table.rows[i].encode(into: &w)
        body(tag, Int32(i), w.bytes)
      }
    }
    globals.encode(into: &w)
    body(.globals, 0, w.bytes)
    visit(.participants, participants)
    visit(.units, units)
    visit(.accounts, accounts)
    visit(.securities, securities)
    for i in positions.indices {
      w.reset()
      positions.rows[i].encode(lots: lotPool, into: &w)
      body(.positions, Int32(i), w.bytes)
    }
    visit(.clearing, clearingRows)
    visit(.settlement, settlementRows)
    var rates = ClearingKernelV1.RatesOnDate.none
    for i in trades.indices {
      w.reset()
      tradeRecord(i, rates: &rates).encode(into: &w)
      body(.trades, Int32(i), w.bytes)
    }
    visit(.slices, slices)
    visit(.actions, actions)
    visit(.entitlements, entitlements)
    visit(.rejections, rejections)
    visit(.days, days)
  }

  /// Rows changed since the last call, in canonical order, encoded one after another
  /// into `w` (no array per row); `body` gets each row's table, id and byte range in
  /// `w.bytes`. Forgets them.
  public mutating func takeChangedRows(
    into w: inout ByteWriter, _ body: (StateTable, Int32, Range<Int>) -> Void
  ) {
    func visit<R: CanonicalRow>(_ tag: StateTable, _ table: inout Table<R>, _ w: inout ByteWriter) {
      for i in table.takeDirty() {
        let start = w.count
        table[i].encode(into: &w)
        body(tag, i, start..<w.count)
      }
    }
    if globalsDirty {
      let start = w.count
      globals.encode(into: &w)
      body(.globals, 0, start..<w.count)
      globalsDirty = false
    }
    visit(.participants, &participants, &w)
    visit(.units, &units, &w)
    visit(.accounts, &accounts, &w)
    visit(.securities, &securities, &w)
    for i in positions.takeDirty() {
      let start = w.count
      positions[i].encode(lots: lotPool, into: &w)
      body(.positions, i, start..<w.count)
    }
    visit(.clearing, &clearingRows, &w)
    visit(.settlement, &settlementRows, &w)
    var rates = ClearingKernelV1.RatesOnDate.none
    for i in trades.takeDirty() {
      let start = w.count
      tradeRecord(Int(i), rates: &rates).encode(into: &w)
      body(.trades, i, start..<w.count)
    }
    visit(.slices, &slices, &w)
    visit(.actions, &actions, &w)
    visit(.entitlements, &entitlements, &w)
    visit(.rejections, &rejections, &w)
    visit(.days, &days, &w)
  }

  /// `takeChangedRows(into:_:)` and the whole state's checksum in one walk over every
  /// row (a durable snapshot): each row is encoded once into `w`, hashed, and kept
  /// (handed to `body`) when it changed, its bytes dropped again when it did not. The
  /// two calls encoded each changed row twice and every other row once (the walk of
  /// `computeChecksum`): V1's digest snapshot of the cluster's 1M-event day took ~2.5
  /// s of a replica's thread, half of it encoding (perf, twenty-eighth session). The
  /// same calls of `body`, with the same bytes, in the same order, as
  /// `takeChangedRows`; the same checksum as `computeChecksum` (a sum: the order of
  /// the rows does not matter, and this walk visits every row once).
  public mutating func takeChangedRowsAndChecksum(
    into w: inout ByteWriter, _ body: (StateTable, Int32, Range<Int>) -> Void
  ) -> StateChecksum {
    var sum = StateChecksum()
    // Row `id`'s encoding, written at `start`: hashed, then handed over or dropped.
    func settle(_ tag: StateTable, _ id: Int32, from start: Int, changed: Bool, _ w: inout ByteWriter) {
      w.bytes.withUnsafeBytes { raw in
        sum.add(
          RowHash(table: tag.rawValue, id: id, raw: UnsafeRawBufferPointer(rebasing: raw[start..<w.count])))
      }
      if changed { body(tag, id, start..<w.count) } else { w.truncate(to: start) }
    }
    // Every row of a table, `changed` (ascending, from `takeDirty`) kept.
    func walk(
      _ tag: StateTable, count: Int, changed: [Int32], _ w: inout ByteWriter,
      encode: (Int, inout ByteWriter) -> Void
    ) {
      var k = 0
      for i in 0..<count {
        let start = w.count
        encode(i, &w)
        let isChanged = k < changed.count && changed[k] == Int32(i)
        if isChanged { k += 1 }
        settle(tag, Int32(i), from: start, changed: isChanged, &w)
      }
      precondition(k == changed.count, "every changed row of \(tag.name) is a row of it")
    }
    func visit<R: CanonicalRow>(
      _ tag: StateTable, _ table: inout Table<R>, _ w: inout ByteWriter, changed taken: [Int32]? = nil
    ) {
      let changed = taken ?? table.takeDirty()
      walk(tag, count: table.count, changed: changed, &w) { i, w in table.rows[i].encode(into: &w) }
    }
    // Room for every row the walk keeps, reserved (address space until written) before
    // it, from the three large tables' changed counts: the engine's estimate per event
    // fell short on the cluster's 1M-event day (~275 MB of rows), and the buffer grew by
    // doubling in the slices, copying 256 MB into fresh pages (~30% of the walk, perf,
    // twenty-eighth session). The sizes are KernelAPI's encodings (StateCodec.swift); a
    // bound that falls short only lets the buffer grow again.
    let changedPositions = positions.takeDirty()
    let changedTrades = trades.takeDirty()
    let changedSlices = slices.takeDirty()
    let lotBytes = Lot.encodedBytes
    let positionFieldBytes = PositionRecord.encodedFieldBytes
    w.reserveCapacity(
      w.count + (1 << 20) + changedTrades.count * TradeRecord.encodedBytesWithoutId + tradeIds.bytes.count
        + changedSlices.count * lotBytes + changedPositions.count * positionFieldBytes
        + lotPool.liveCount * lotBytes)
    let globalsStart = w.count
    globals.encode(into: &w)
    settle(.globals, 0, from: globalsStart, changed: globalsDirty, &w)
    globalsDirty = false
    visit(.participants, &participants, &w)
    visit(.units, &units, &w)
    visit(.accounts, &accounts, &w)
    visit(.securities, &securities, &w)
    walk(.positions, count: positions.count, changed: changedPositions, &w) { i, w in
      positions.rows[i].encode(lots: lotPool, into: &w)
    }
    visit(.clearing, &clearingRows, &w)
    visit(.settlement, &settlementRows, &w)
    var rates = ClearingKernelV1.RatesOnDate.none
    walk(.trades, count: trades.count, changed: changedTrades, &w) { i, w in
      tradeRecord(i, rates: &rates).encode(into: &w)
    }
    visit(.slices, &slices, &w, changed: changedSlices)
    visit(.actions, &actions, &w)
    visit(.entitlements, &entitlements, &w)
    visit(.rejections, &rejections, &w)
    visit(.days, &days, &w)
    return sum
  }

  /// Rows changed since the last call, each in its own array; forgets them.
  public mutating func takeChangedRows(_ body: (StateTable, Int32, [UInt8]) -> Void) {
    var w = ByteWriter(capacity: 4096)
    var rows: [(StateTable, Int32, Range<Int>)] = []
    takeChangedRows(into: &w) { rows.append(($0, $1, $2)) }
    for (table, id, range) in rows { body(table, id, Array(w.bytes[range])) }
  }

  /// Forgets which rows changed (a state whose rows are known to the store another way).
  public mutating func forgetChanges() {
    globalsDirty = false
    setChangeTracking(false)
    setChangeTracking(true)
  }
}

extension V1Kernel {
  /// The checksum of the whole state, computed from scratch.
  public func computeChecksum() -> StateChecksum {
    var c = StateChecksum()
    forEachEncodedRow { table, id, bytes in c.add(RowHash(table: table.rawValue, id: id, bytes: bytes)) }
    return c
  }
}
