// V2Kernel: a durable snapshot's one walk over the state (`takeChangedRowsAndChecksum`).
// Every row is encoded once, straight into the commit's writer, and hashed there for
// the checksum; a row that changed since the last take stays in the writer and is
// handed to `body`, any other has its bytes dropped again. The protocol's default took
// the changed rows and then walked the whole state a second time for the checksum: on
// the 1M-trade day each new row was encoded twice and every row once more.
//
// The walk writes the trade, position and slice rows (nearly all of a day's rows and
// bytes) from V2's own row layouts with V2's cursor into a scratch buffer (`writeRow`),
// hashes them there and copies only the taken ones to the writer, instead of building
// a canonical record per row and appending it to the writer byte by byte. A trade row's
// clearing figures come from the rates of the row's date, looked up once for a run of
// rows of one date (a day's trades are consecutive rows), where `tradeClearing`
// searched the rate timelines sixteen times a row and divided each fee at full width; a
// decimal trade id's digits are written from its value without making a String. The
// bytes are those of `encodeRow`, which `takeChangedRows` and `forEachEncodedRow` keep
// using: ChangedRowsChecksumTests and SnapshotWalkTests compare the two ways, row by
// row and by checksum. The writer gets room for all taken rows at once
// (`takenBytesBound`).

import KernelAPI

/// The fee rates of one trade date, kept across a walk's trade rows.
struct V2WalkRates {
  var date: Int32 = -1
  var rates: [V2DayRate] = []
}

extension V2Kernel {
  public mutating func takeChangedRowsAndChecksum(
    into w: inout ByteWriter, _ body: (StateTable, Int32, Range<Int>) -> Void
  ) -> StateChecksum {
    let sum = walkRows(into: &w, body)
    // The rows taken are forgotten, as `takeChangedRows` forgets them (it forgets
    // nothing when tracking is off).
    if tracking { forgetChanges() }
    return sum
  }

  /// The walk itself, a non-mutating method: in the mutating one, every call of a row
  /// encoder from inside a buffer's closure copied the whole kernel value first (a
  /// retain and release of each of its arrays a row: about half the walk in perf).
  func walkRows(into w: inout ByteWriter, _ body: (StateTable, Int32, Range<Int>) -> Void) -> StateChecksum {
    var sum = StateChecksum()
    var rates = V2WalkRates()
    // Room for every row taken, reserved once: the writer grown by doubling copied the
    // rows so far into fresh pages (the engine's reserve, 256 bytes an event, was short
    // on the 1M-trade day: ~165 bytes a trade row plus its slices and positions; perf
    // showed the copy under the slices' encoding). Pages reserved and not written cost
    // no memory, so a bound that is too high costs nothing. A megabyte more for the row
    // encoded last and dropped again.
    if tracking { w.reserveCapacity(w.count + takenBytesBound() + (1 << 20)) }
    for table in StateTable.allCases {
      let t = Int(table.rawValue)
      let count = rowCount(table)
      // As `takeChangedRows` takes them: rows from `start` on are new since the last
      // take (the globals row is always taken), a row below it when it is listed as
      // changed (its bit is set exactly when it is listed: `markChanged`,
      // `forgetChanges`). Change tracking off, no row is taken.
      let start = !tracking ? count : table == .globals ? 0 : min(watermark[t], count)
      let listed = tracking ? modifiedBits[t] : []
      let tag = table.rawValue
      if table == .trades || table == .positions || table == .slices {
        // Each row written by V2's cursor into one scratch buffer and hashed there;
        // only a taken row is copied to the writer (one copy, where the writer's
        // appends checked its capacity byte by byte). These three tables hold nearly
        // all of a day's rows.
        var scratch = [UInt8](repeating: 0, count: 256)
        for id in 0..<count {
          let n = rowBytes(table, id)
          if scratch.count < n { scratch = [UInt8](repeating: 0, count: n) }
          let hash = scratch.withUnsafeMutableBytes { b in
            let end = writeRow(table, id, rates: &rates, at: b.baseAddress!)
            precondition(end == b.baseAddress! + n, "V2: \(table.name) row size mismatch")
            return RowHash(table: tag, id: Int32(id), raw: UnsafeRawBufferPointer(rebasing: b[..<n]))
          }
          sum.add(hash)
          let word = id &>> 6
          if id >= start || (word < listed.count && listed[word] &>> UInt64(id & 63) & 1 != 0) {
            let at = w.count
            w.raw(scratch[..<n])
            body(table, Int32(id), at..<w.count)
          }
        }
        continue
      }
      for id in 0..<count {
        let at = w.count
        encodeRow(table, id, into: &w)
        let hash = w.bytes.withUnsafeBytes {
          RowHash(table: tag, id: Int32(id), raw: UnsafeRawBufferPointer(rebasing: $0[at...]))
        }
        sum.add(hash)
        let word = id &>> 6
        if id >= start || (word < listed.count && listed[word] &>> UInt64(id & 63) & 1 != 0) {
          body(table, Int32(id), at..<w.count)
        } else {
          w.truncate(to: at)
        }
      }
    }
    return sum
  }

  /// At least the bytes of the rows a take hands over now: the trade, position and slice
  /// rows (nearly all of a day's bytes) bounded from their counts, the others measured.
  func takenBytesBound() -> Int {
    var bound = 0
    var scratch = ByteWriter(capacity: 256)
    LotPool.empty.lot.encode(into: &scratch)
    let lotBytes = scratch.count
    for table in StateTable.allCases {
      let t = Int(table.rawValue)
      let count = rowCount(table)
      let start = table == .globals ? 0 : min(watermark[t], count)
      let listed = modified[t].count
      let taken = count - start + listed
      if taken == 0 || count == 0 { continue }
      switch table {
      case .trades:
        // Row 0's size with 20 more id bytes (a decimal id has at most 20 digits), and
        // every kept id text's bytes.
        scratch.reset()
        encodeRow(.trades, 0, into: &scratch)
        bound += taken * (scratch.count + 20)
        for text in tradeIdTexts { bound += text.utf8.count }
      case .positions:
        // The fields of each row, and at most every lot in the pool.
        scratch.reset()
        positions[0].record.encodeFields(lotCount: 0, into: &scratch)
        bound += taken * scratch.count + lotBytes * pool.lots.count
      case .slices:
        bound += taken * lotBytes
      default:
        // Measured: each new row and each listed one encoded once more (the other
        // tables' rows are a small share of a day's taken bytes).
        for id in start..<count {
          scratch.reset()
          encodeRow(table, id, into: &scratch)
          bound += scratch.count
        }
        for id in modified[t] where Int(id) < start {
          scratch.reset()
          encodeRow(table, Int(id), into: &scratch)
          bound += scratch.count
        }
      }
    }
    return bound
  }

  /// The bytes of row `id` of the trades, positions or slices (`writeRow`).
  @inline(__always) func rowBytes(_ table: StateTable, _ id: Int) -> Int {
    switch table {
    case .trades: return tradeRowBytes(id)
    case .positions: return Self.positionFieldBytes + Self.lotBytes * positions[id].lotCount
    default: return Self.lotBytes
    }
  }

  /// A position row's fields (`PositionRecord.encodeFields`: two ids, three
  /// quantities, the lot count) and a lot (`Lot.encode`: acquired, creation, accrual,
  /// quantity), in bytes.
  static let positionFieldBytes = 4 + 4 + 8 + 8 + 8 + 4
  static let lotBytes = 4 + 8 + 8 + 8

  /// Writes row `id` of the trades, positions or slices at `p` (room for
  /// `rowBytes(table, id)`) as `encodeRow` encodes it; returns the end of what it wrote.
  @inline(__always)
  func writeRow(_ table: StateTable, _ id: Int, rates: inout V2WalkRates, at p: UnsafeMutableRawPointer)
    -> UnsafeMutableRawPointer
  {
    switch table {
    case .trades: return writeTradeRow(id, rates: &rates, at: p)
    case .positions:
      let position = positions[id]
      var c = V2Cursor(p)
      c.i32(position.account)
      c.i32(position.security)
      c.i64(position.quantity)
      c.i64(position.available)
      c.i64(position.withheld)
      c.i32(Int32(position.lotCount))
      pool.lots.withUnsafeBufferPointer { lots in
        for j in Int(position.lotHead)..<Int(position.lotEnd) { Self.writeLot(lots[j], into: &c) }
      }
      return c.p
    default:
      var c = V2Cursor(p)
      Self.writeLot(sliceLot(id), into: &c)
      return c.p
    }
  }

  /// A lot as `Lot.encode` writes it.
  @inline(__always) static func writeLot(_ lot: V2Lot, into c: inout V2Cursor) {
    c.i32(lot.acquired)
    c.i64(Int64(lot.creation))
    c.i64(lot.accruedMicro)
    c.i64(lot.quantity)
  }

  /// Trade row `t` encoded exactly as `tradeRecord(t).encode(into:)` encodes it (the
  /// walk's encoder, `writeTradeRow`, through a buffer).
  func encodeTradeRow(_ t: Int, rates: inout V2WalkRates, into w: inout ByteWriter) {
    let n = tradeRowBytes(t)
    var bytes = [UInt8](repeating: 0, count: n)
    bytes.withUnsafeMutableBytes { b in
      let end = writeTradeRow(t, rates: &rates, at: b.baseAddress!)
      precondition(end == b.baseAddress! + n, "V2: trade row size mismatch")
    }
    w.raw(bytes)
  }

  /// The bytes of trade row `t`'s encoding: its id (byte count and bytes) and 153 bytes
  /// of fields.
  @inline(__always) func tradeRowBytes(_ t: Int) -> Int {
    let word = trades[t].idWord
    if word & V2Trade.textTag != 0 { return 4 + tradeIdTexts[Int(word & ~V2Trade.textTag)].utf8.count + 153 }
    return 4 + Self.decimalDigits(word) + 153
  }

  /// Writes trade row `t` at `p` (room for `tradeRowBytes(t)`) in KernelAPI's
  /// `TradeRecord` field order, from V2's row: no String and no canonical record made,
  /// the clearing figures from `rates` (refreshed when the row's date is another).
  /// Returns the end of what it wrote.
  func writeTradeRow(_ t: Int, rates: inout V2WalkRates, at p: UnsafeMutableRawPointer)
    -> UnsafeMutableRawPointer
  {
    let tr = trades[t]
    var c = V2Cursor(p)
    if tr.idWord & V2Trade.textTag == 0 {
      Self.writeDecimal(tr.idWord, into: &c)
    } else {
      var text = tradeIdTexts[Int(tr.idWord & ~V2Trade.textTag)]
      text.withUTF8 { c.bytes(UnsafeRawBufferPointer($0)) }
    }
    c.i32(tr.date)
    c.i32(tr.security)
    c.i64(tr.quantity)
    c.i32(tr.buyAccount)
    c.i32(tr.sellAccount)
    c.i32(tr.buyParticipant)
    c.i32(tr.sellParticipant)
    let clearing = walkClearing(t, tr, rates: &rates)
    c.i64(clearing.amountFen)
    c.i64(clearing.buyerFees.handling)
    c.i64(clearing.buyerFees.regulatory)
    c.i64(clearing.buyerFees.transfer)
    c.i64(clearing.buyerFees.stamp)
    c.i64(clearing.sellerFees.handling)
    c.i64(clearing.sellerFees.regulatory)
    c.i64(clearing.sellerFees.transfer)
    c.i64(clearing.sellerFees.stamp)
    c.i64(clearing.buyerNetFen)
    c.i64(clearing.sellerNetFen)
    c.i64(clearing.buyerAvailableNow)
    c.i64(taxFen(t))
    c.u8(tr.cancelled ? 1 : 0)
    c.i64(withheld(t))
    c.i32(tr.sliceStart)
    c.i32(tr.sliceCount)
    return c.p
  }

  /// A canonical decimal trade id's text (`String(value)`: no leading zero, "0" for 0)
  /// as the canonical encoding writes a string: its byte count, then its digits.
  @inline(__always) static func writeDecimal(_ value: UInt64, into c: inout V2Cursor) {
    let digits = decimalDigits(value)
    c.i32(Int32(digits))
    // Digits from the last one back.
    var x = value
    var i = digits
    repeat {
      i -= 1
      c.p.storeBytes(of: UInt8(truncatingIfNeeded: 48 &+ x % 10), toByteOffset: i, as: UInt8.self)
      x /= 10
    } while i > 0
    c.p += digits
  }

  /// The digits of `value` written in decimal (1 for 0).
  @inline(__always) static func decimalDigits(_ value: UInt64) -> Int {
    var n = 1
    var x = value
    while x >= 10 {
      x /= 10
      n += 1
    }
    return n
  }

  /// `tradeClearing(t)` with the date's rates looked up once (`V2FeeSchedule`'s
  /// day-rate `clear`, the one the TRADE path uses: the same fees as the search of the
  /// timelines, FeeRateTests).
  @inline(__always)
  func walkClearing(_ t: Int, _ tr: V2Trade, rates: inout V2WalkRates) -> TradeClearing {
    if !clearingOverrides.isEmpty, let c = clearingOverrides[Int32(t)] { return c }
    if rates.date != tr.date || rates.rates.isEmpty {
      rates.date = tr.date
      rates.rates = fees.dayRates(on: tr.date)
    }
    let kind = securities[Int(tr.security)].kind
    let immediate = kind == .bond || plantedFault == .transfer
    return rates.rates.withUnsafeBufferPointer {
      V2FeeSchedule.clear(
        kind: kind, amountFen: tr.amountFen, rates: $0, truncateHandling: plantedFault == .feeRounding,
        availableNow: immediate ? tr.quantity : 0)
    }
  }
}
