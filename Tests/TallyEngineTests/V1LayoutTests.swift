// What V1's compact in-memory layout relies on (KernelV1 TradeTable.swift, LotPool.swift):
// the row sizes it was made for, the trade-id index through growth and hash-tag
// collisions, and that trade rows give the canonical bytes back, whether their clearing
// is computed again from the price (rows applied here) or kept as decoded (restored);
// and a table's record of its changed rows (added rows implied, not listed one by one);
// holdings.csv walked from the position directory, accounts beyond its eight lanes
// included, agrees with V2.
import KernelAPI
import KernelV2
import MarketGenerator
import TallyEngine
import TallyFormat
import XCTest

@testable import KernelV1

final class V1LayoutTests: XCTestCase {
  /// The day's room (`reserveCapacity(events:)`) holds the positions its purchases open:
  /// on a day that opens more positions than the opening held, the positions table and
  /// its columns keep the storage they were given (they doubled inside the apply loop,
  /// copying every row into fresh pages, before the room included them).
  func testTheDaysRoomHoldsThePositionsItsPurchasesOpen() throws {
    let lines: [ArraySlice<UInt8>]
    let reference: ReferenceData
    (reference, lines) = try TestMarket.loaded(
      "v1-position-room",
      MarketOptions(seed: 31, days: 1, tradesPerDay: 4_000, accounts: 300, securities: 60, participants: 4))
    var engine = Engine<V1Kernel>(reference: reference)
    let opening = engine.state.positions.count
    let openingRoom = engine.state.positions.rows.capacity
    engine.reserveCapacity(events: lines.count)
    let room = engine.state.positions.rows.capacity
    let securitiesRoom = engine.state.positionSecurities.capacity
    XCTAssertGreaterThanOrEqual(room, opening + lines.count)
    for (i, line) in lines.enumerated() { engine.apply(line: line, seq: Int64(i + 1)) }
    XCTAssertGreaterThan(
      engine.state.positions.count, openingRoom, "the day opened more positions than the opening had room for"
    )
    XCTAssertEqual(engine.state.positions.rows.capacity, room, "the positions kept their reserved storage")
    XCTAssertEqual(engine.state.positionSecurities.capacity, securitiesRoom)
    XCTAssertEqual(engine.state.selfCheckViolations(limit: 10), [])
  }

  func testHoldingsOfAccountsBeyondTheirDirectoryLineAgreeWithV2() throws {
    // Six accounts trading twelve securities for four days: most hold more than the
    // eight securities a directory line has room for.
    let m = try TestMarket.generate("v1-holdings-order", seed: 47, days: 4, tradesPerDay: 400, accounts: 6)
    defer { removeDirectory(m.directory) }
    var v1 = Engine<V1Kernel>(reference: m.reference)
    var v2 = Engine<V2Kernel>(reference: m.reference)
    for (i, line) in m.lines.enumerated() {
      v1.apply(line: line, seq: Int64(i + 1))
      v2.apply(line: line, seq: Int64(i + 1))
    }
    XCTAssertGreaterThan(v1.state.positionDirectory.overflowed.count, 6, "accounts overflowed their lines")
    XCTAssertEqual(v1.state.positionOrder().count, v1.state.positions.count)
    let holdings = outputs(v1)["holdings.csv"] ?? []
    XCTAssertGreaterThan(holdings.count, 1_000)
    XCTAssertEqual(holdings, outputs(v2)["holdings.csv"])
    // The report's rows (rendered from its own order) agree with the streamed file.
    XCTAssertEqual(
      ReportWriter.render(v1.state.report()).first { $0.name == "holdings.csv" }?.bytes, holdings)
  }

  /// The self-check finds a lot that no longer adds up (CLOSE's check, with the lots) and
  /// a position whose withheld exceeds its quantity (SETTLE's too, which leaves the lots
  /// out: SETTLE changes none).
  func testSelfCheckFindsBrokenLotsAndHoldings() throws {
    let m = try TestMarket.generate("v1-self-check", seed: 11, days: 2, tradesPerDay: 200, accounts: 30)
    defer { removeDirectory(m.directory) }
    var engine = Engine<V1Kernel>(reference: m.reference)
    for (i, line) in m.lines.enumerated() { engine.apply(line: line, seq: Int64(i + 1)) }
    XCTAssertEqual(engine.state.selfCheckViolations(limit: 10, lots: true), [])
    XCTAssertEqual(engine.state.selfCheckViolations(limit: 10, lots: false), [])
    let held = try XCTUnwrap(
      engine.state.positions.indices.first { engine.state.positions.rows[$0].quantity > 1 })
    var lotBroken = engine.state
    lotBroken.lotPool.addQuantity(lotBroken.positions.rows[held].firstLot, -1)
    XCTAssertEqual(lotBroken.selfCheckViolations(limit: 10, lots: true).count, 1)
    XCTAssertTrue(lotBroken.selfCheckViolations(limit: 10, lots: true)[0].contains("lots add up to"))
    XCTAssertEqual(lotBroken.selfCheckViolations(limit: 10, lots: false), [], "SETTLE's check reads no lot")
    var withheldBroken = engine.state
    withheldBroken.positions[Int32(held)].withheld = withheldBroken.positions.rows[held].quantity + 1
    for lots in [true, false] {
      let found = withheldBroken.selfCheckViolations(limit: 10, lots: lots)
      XCTAssertEqual(found.count, 1, "lots: \(lots)")
      XCTAssertTrue(found.first?.contains("withheld") ?? false, "\(found)")
    }
  }

  /// A kernel large enough for the self-check's walk to run in two halves, one on
  /// another thread (KernelV1 ForkJoin.swift): a problem in each half is reported, in
  /// position order, and the limit keeps the first.
  func testSelfCheckInTwoHalvesReportsBothInPositionOrder() throws {
    let m = try TestMarket.generate(
      "v1-self-check-halves", seed: 12, days: 1, tradesPerDay: 10, accounts: 60_000)
    defer { removeDirectory(m.directory) }
    let engine = Engine<V1Kernel>(reference: m.reference)
    let positions = engine.state.positions
    XCTAssertGreaterThanOrEqual(positions.count, ForkJoin.minimumItems, "the walk is split")
    XCTAssertEqual(engine.state.selfCheckViolations(limit: 10, lots: true), [])
    let split = positions.count / 2
    let early = try XCTUnwrap((0..<split).first { positions.rows[$0].quantity > 1 })
    let late = try XCTUnwrap((split + 10..<positions.count).first { positions.rows[$0].quantity > 1 })
    var broken = engine.state
    broken.lotPool.addQuantity(positions.rows[late].firstLot, -1)
    broken.lotPool.addQuantity(positions.rows[early].firstLot, -1)
    let found = broken.selfCheckViolations(limit: 10, lots: true)
    func names(_ row: Int) -> String {
      "\(engine.state.accounts.rows[Int(positions.rows[row].account)].id)/"
        + "\(engine.state.securities.rows[Int(positions.rows[row].security)].code)"
    }
    XCTAssertEqual(found.count, 2, "\(found)")
    XCTAssertTrue(found[0].contains(names(early)) && found[0].contains("lots add up to"), "\(found)")
    XCTAssertTrue(found[1].contains(names(late)) && found[1].contains("lots add up to"), "\(found)")
    XCTAssertEqual(broken.selfCheckViolations(limit: 1, lots: true), [found[0]])
    // A quantity changed in the second half alone: its security's holdings no longer
    // add up to what was issued, which only the halves' sums together can tell.
    var moved = engine.state
    moved.positions[Int32(late)].quantity += 1
    let movedFound = moved.selfCheckViolations(limit: 10, lots: false)
    XCTAssertEqual(movedFound.count, 1, "\(movedFound)")
    XCTAssertTrue(movedFound[0].hasPrefix("security "), "\(movedFound)")
  }

  func testCompactRowSizes() {
    XCTAssertEqual(
      MemoryLayout<TradeRow>.stride, 80, "a trade row, its id apart, is under half a TradeRecord (176)")
    XCTAssertEqual(MemoryLayout<LotPool.Node>.stride, 32, "a lot with its link in 32 bytes")
  }

  func testATableReportsItsChangedRowsAndEveryAddedRowOnce() {
    var t = Table<Int>()
    for v in 0..<10 { t.append(v) }
    XCTAssertEqual(t.takeDirty(), Array(0..<10), "rows added since tracking began")
    t[7] += 1
    t[2] += 1
    t[7] += 1
    t.append(10)
    t.append(11)
    t[11] += 1  // an added row changed again: reported once, with the added ones
    t.touch(5)
    XCTAssertEqual(t.takeDirty(), [2, 5, 7, 10, 11], "changed rows ascending, then the added")
    XCTAssertEqual(t.takeDirty(), [], "forgotten once taken")
    t[11] += 1  // added before the last take: an older row now
    XCTAssertEqual(t.takeDirty(), [11])
    t.setTracking(false)
    t.append(12)
    t[3] += 1
    XCTAssertEqual(t.takeDirty(), [], "nothing recorded while off")
    t.setTracking(true)
    t.append(13)
    t[12] += 1
    XCTAssertEqual(t.takeDirty(), [12, 13], "from where tracking began again")
    var loaded = Table(loaded: [1, 2, 3])
    XCTAssertEqual(loaded.takeDirty(), [], "loaded rows are not changes")
    loaded.append(4)
    XCTAssertEqual(loaded.takeDirty(), [3])
  }

  func testTradeIndexFindsEveryRowThroughGrowthAndTagCollisions() {
    var index = TradeIndex()
    // Every fourth key shares its upper hash bits (tag and home slot) with the one before.
    func hash(_ i: Int) -> UInt64 { mix64(UInt64(i / 4 * 2 + (i % 4 == 1 ? 0 : i % 4))) }
    let n = 5_000
    for i in 0..<n { index.insert(hash: hash(i), row: Int32(i)) }
    XCTAssertEqual(index.count, n)
    for i in 0..<n { XCTAssertEqual(index.find(hash: hash(i)) { $0 == Int32(i) }, Int32(i)) }
    XCTAssertNil(index.find(hash: hash(7)) { $0 == -1 }, "a hash match alone finds nothing")
    index.set(hash: hash(9), row: 77_777) { $0 == 9 }
    XCTAssertEqual(index.find(hash: hash(9)) { $0 == 77_777 }, 77_777)
    XCTAssertNil(index.find(hash: hash(9)) { $0 == 9 }, "set replaces the row of its key")
    XCTAssertEqual(index.count, n)
  }

  func testDecimalTradeIdValues() {
    func value(_ text: String) -> Int64 {
      var text = text
      return text.withUTF8 { TradeIndex.decimalValue(of: UnsafeRawBufferPointer($0)) }
    }
    XCTAssertEqual(value("0"), 0)
    XCTAssertEqual(value("7"), 7)
    XCTAssertEqual(value("1000600"), 1_000_600)
    XCTAssertEqual(value("999999999999999999"), 999_999_999_999_999_999)
    for text in ["", "00", "01", "0123", "1a", "-1", "+1", "1 ", "1234567890123456789", "T1", "１"] {
      XCTAssertEqual(value(text), -1, text)
    }
    XCTAssertEqual(TradeIndex.decimalValue(of: Ident("42")), 42)
    XCTAssertEqual(TradeIndex.decimalValue(of: Ident("042")), -1)
  }

  /// Keys of (date, id) as the kernel makes them, rows found through the windows and the
  /// table alike: ids of two dates sharing values (each date has its own window: trade
  /// ids start again every day), ids below and beyond a window, non-decimal ids, growth
  /// of both, and `set` replacing a key's row in either.
  func testTradeIndexWindowAndTableAgree() {
    var index = TradeIndex()
    index.reserveCapacityWhenNeeded(1_000)
    var keys: [(date: Int32, id: String)] = []
    let first: Int64 = 5_000_000
    for i in 0..<3_000 { keys.append((20_260_105, String(first + Int64(i)))) }
    for i in 0..<2_000 { keys.append((20_260_106, String(first + Int64(i) * 2))) }  // same values, next date
    for i in 0..<300 { keys.append((20_260_105, String(first - 100_000 - Int64(i)))) }  // below the window
    for i in 0..<300 { keys.append((20_260_105, String(first + Int64(TradeIndex.windowSpanMax) + Int64(i)))) }
    for i in 0..<300 { keys.append((20_260_105, "T\(i)")) }
    for i in 0..<300 { keys.append((20_260_105, "0\(i)")) }
    for i in 0..<500 { keys.append((20_260_107, String(1 + i))) }  // a third day numbered from 1
    for i in 0..<500 { keys.append((20_260_108, String(1 + i))) }  // and a fourth, the same ids
    func key(_ k: (date: Int32, id: String)) -> (hash: UInt64, decimal: Int64) {
      let id = Ident(k.id)
      return (TradeIndex.hash(id: id, date: k.date), TradeIndex.decimalValue(of: id))
    }
    func matches(_ k: (date: Int32, id: String)) -> (Int32) -> Bool {
      { Int($0) < keys.count && keys[Int($0)].date == k.date && keys[Int($0)].id == k.id }
    }
    for (row, k) in keys.enumerated() {
      let (hash, decimal) = key(k)
      XCTAssertNil(
        index.find(hash: hash, decimal: decimal, date: k.date, matches: matches(k)), "\(k) before its insert")
      index.insert(hash: hash, decimal: decimal, date: k.date, row: Int32(row))
    }
    // Every decimal id within its date's window span is in a window: the first date's
    // 3,000, the next date's 2,000 (values the first date also used), the 1,000 of the
    // days numbered from 1; ids below a window's start by more than its span, beyond
    // it, and non-decimal ids are in the table.
    XCTAssertEqual(index.windowCount, 6_000, "ids in the windows")
    XCTAssertEqual(index.count + index.windowCount, keys.count)
    for (row, k) in keys.enumerated() {
      let (hash, decimal) = key(k)
      XCTAssertEqual(
        index.find(hash: hash, decimal: decimal, date: k.date, matches: matches(k)), Int32(row), "\(k)")
    }
    let absent: [(date: Int32, id: String)] = [
      (20_260_109, String(first)), (20_260_106, String(first + 1)), (20_260_105, "T999"),
      (20_260_107, "501"), (20_260_104, "1"),
    ]
    for k in absent {
      let (hash, decimal) = key(k)
      XCTAssertNil(
        index.find(hash: hash, decimal: decimal, date: k.date, matches: matches(k)), "\(k) never inserted")
    }
    // `set` points a key at another row, in a window and in the table.
    for row in [0, 3_001, 5_500, 6_000, 6_300, 7_100] {
      let k = keys[row]
      let (hash, decimal) = key(k)
      index.set(hash: hash, decimal: decimal, date: k.date, row: Int32(keys.count + row), matches: matches(k))
      XCTAssertEqual(
        index.find(hash: hash, decimal: decimal, date: k.date) { $0 == Int32(keys.count + row) },
        Int32(keys.count + row))
    }
    XCTAssertEqual(index.count + index.windowCount, keys.count)
  }

  /// A state restored from its canonical rows (trade clearings kept as decoded) and the
  /// state it came from (clearings computed from the price) encode alike, and go on alike:
  /// the rest of the stream and a CANCEL of every trade of the open day.
  func testRestoredTradeRowsEncodeAndCancelAsTheOriginal() throws {
    let m = try TestMarket.generate("v1layout", seed: 7, days: 3, tradesPerDay: 300, accounts: 40)
    addTeardownBlock { removeDirectory(m.directory) }
    let lastClose = try XCTUnwrap(m.lines.lastIndex { $0.starts(with: Array("CLOSE".utf8)) })
    var original = Engine<V1Kernel>(reference: m.reference)
    for i in 0..<(lastClose - 20) { original.apply(line: m.lines[i], seq: Int64(i + 1)) }
    var a = original.state
    var b = try V1Kernel.restore(opening: V1Kernel(reference: m.reference, plantedFault: nil)) { put in
      var rows: [(StateTable, Int32, [UInt8])] = []
      a.forEachEncodedRow { rows.append(($0, $1, $2)) }
      for (table, id, bytes) in rows { try put(table, id, bytes) }
    }
    XCTAssertEqual(a.computeChecksum(), b.computeChecksum())
    XCTAssertTrue(b.trades.rows.allSatisfy(\.clearingRestored))
    XCTAssertEqual(
      (0..<a.trades.count).map { a.tradeRecord($0) }, (0..<b.trades.count).map { b.tradeRecord($0) })
    let day = try XCTUnwrap(a.days.rows.last)
    XCTAssertGreaterThan(day.tradeEnd, day.tradeStart)
    var seq = a.appliedSeq
    var applied = 0
    for t in day.tradeStart..<day.tradeEnd {
      seq += 1
      let cancel = Event.cancel(date: day.date, tradeId: a.tradeId(ofRow: Int(t)).text)
      let outcome = a.apply(cancel, seq: seq)
      XCTAssertEqual(outcome, b.apply(cancel, seq: seq), "trade row \(t)")
      if outcome == .applied { applied += 1 }
    }
    XCTAssertGreaterThan(applied, 0, "some cancels apply (their clearing is read back)")
    XCTAssertEqual(a.computeChecksum(), b.computeChecksum())
    XCTAssertEqual(a.report(holdings: true), b.report(holdings: true))
  }

  /// The lot pool on aligned lanes: lists through growth (the array moves and is
  /// realigned), freed slots reused, a copy changed apart from the original (copy on
  /// write; a copy reads right before its next append realigns it), extreme values.
  func testLotPoolThroughGrowthReuseAndCopies() {
    func lot(_ i: Int) -> Lot {
      Lot(
        acquired: Int32(20_240_101 + i % 300), creation: Int64(i), accruedMicro: Int64(i % 7),
        quantity: Int64(i + 1))
    }
    func list(_ pool: LotPool, _ first: Int32) -> [Lot] {
      var result: [Lot] = []
      var slot = first
      while slot != LotPool.none {
        result.append(pool[slot])
        slot = pool.next(after: slot)
      }
      return result
    }
    var pool = LotPool()
    XCTAssertTrue(pool.isAligned)
    // Three lists grown side by side, one node at a time: the array grows many times.
    var firsts = [Int32](repeating: LotPool.none, count: 3)
    var lasts = [Int32](repeating: LotPool.none, count: 3)
    var expected: [[Lot]] = [[], [], []]
    for i in 0..<5_000 {
      let k = i % 3
      let slot = pool.allocate(lot(i))
      pool.link(slot, after: lasts[k], first: &firsts[k], last: &lasts[k])
      expected[k].append(lot(i))
      XCTAssertTrue(pool.isAligned, "aligned after append \(i)")
    }
    XCTAssertEqual(pool.liveCount, 5_000)
    for k in 0..<3 { XCTAssertEqual(list(pool, firsts[k]), expected[k]) }
    // Freed slots are reused before the pool grows.
    let slots = pool.slotCount
    for _ in 0..<10 { pool.unlinkFirstAndFree(first: &firsts[0], last: &lasts[0]) }
    expected[0].removeFirst(10)
    for i in 0..<10 {
      let slot = pool.allocate(lot(9_000 + i))
      pool.link(slot, after: lasts[1], first: &firsts[1], last: &lasts[1])
      expected[1].append(lot(9_000 + i))
    }
    XCTAssertEqual(pool.slotCount, slots, "freed slots reused")
    pool.unlinkLastAndFree(first: &firsts[2], last: &lasts[2])
    expected[2].removeLast()
    // A copy shares its lanes until one side changes.
    let copy = pool
    var changed = pool
    changed.addQuantity(firsts[1], 1_000)
    changed.addAccrued(firsts[1], Int64.max / 2)
    XCTAssertEqual(list(copy, firsts[1]), expected[1], "the copy is unchanged")
    XCTAssertEqual(changed.quantity(firsts[1]), expected[1][0].quantity + 1_000)
    XCTAssertEqual(changed[firsts[1]].accruedMicro, expected[1][0].accruedMicro + Int64.max / 2)
    // A copy that allocates (here a freed slot: no append) is realigned; it still
    // reads every list.
    let extreme = Lot(acquired: Int32.max, creation: Int64.max, accruedMicro: Int64.min, quantity: Int64.max)
    var grown = copy
    let slot = grown.allocate(extreme)
    grown.link(slot, after: lasts[2], first: &firsts[2], last: &lasts[2])
    XCTAssertTrue(grown.isAligned)
    XCTAssertEqual(grown[slot], extreme)
    XCTAssertEqual(list(grown, firsts[2]), expected[2] + [extreme])
    for k in 0..<2 { XCTAssertEqual(list(grown, firsts[k]), expected[k]) }
    XCTAssertEqual(list(copy, firsts[0]), expected[0])
    var reserved = LotPool()
    reserved.reserveCapacity(1_000)
    XCTAssertTrue(reserved.isAligned)
    XCTAssertNotNil(reserved.unusedCapacity(limit: 10))
  }

  /// The directory's branch-free lane lookup against a scan of the lanes: every lane,
  /// absent securities, unused lanes (-1), extreme row ids.
  func testDirectoryLanePositionIsTheLaneScan() {
    var generator = LayoutTestGenerator(seed: 42)
    for round in 0..<2_000 {
      let used = round % 9
      var line = AccountPositions()
      var taken = Set<Int32>()
      for lane in 0..<used {
        var security: Int32
        repeat { security = Int32(truncatingIfNeeded: generator.next() % 40) } while taken.contains(security)
        taken.insert(security)
        line.securities[lane] = round == 7 ? Int32.max - Int32(lane) : security
        line.positions[lane] =
          lane == 0 && round % 2 == 0 ? Int32.max : Int32(truncatingIfNeeded: generator.next() % 3_000_000)
      }
      for security in [Int32(0), 1, 5, 39, 40, Int32.max, Int32.max - 3] + Array(taken) {
        var expected: Int32 = -1
        for lane in 0..<8 where line.securities[lane] == security { expected = line.positions[lane] }
        XCTAssertEqual(
          PositionDirectory.position(in: line, security: security), expected,
          "round \(round) security \(security)")
      }
    }
  }

  /// V1's byte compare of identifiers against `hasBytes`: every length 0-40 (small and
  /// heap strings), a difference at every position, non-ASCII text.
  func testIdentBytesCompareIsHasBytes() {
    for length in 0...40 {
      let text = String((0..<length).map { Character(UnicodeScalar(UInt8(65 + $0 % 26))) })
      let ident = Ident(text)
      var bytes = Array(text.utf8)
      bytes.withUnsafeBytes { XCTAssertTrue(ident.v1HasBytes($0)) }
      for i in 0..<length {
        bytes[i] ^= 1
        bytes.withUnsafeBytes {
          XCTAssertFalse(ident.v1HasBytes($0), "length \(length) differs at \(i)")
          XCTAssertEqual(ident.v1HasBytes($0), ident.hasBytes($0))
        }
        bytes[i] ^= 1
      }
      (bytes + [65]).withUnsafeBytes { XCTAssertFalse(ident.v1HasBytes($0), "a longer run") }
      if length > 0 {
        bytes.dropLast().withUnsafeBytes { XCTAssertFalse(ident.v1HasBytes($0), "a shorter run") }
      }
    }
    let accented = Ident("Société-Générale-账户-0001")
    Array("Société-Générale-账户-0001".utf8).withUnsafeBytes { XCTAssertTrue(accented.v1HasBytes($0)) }
    var index = FastIndex<Ident>()
    for i in 0..<500 { index[Ident("A\(100_000_000 + i)")] = Int32(i) }
    for i in [0, 1, 250, 499] {
      Array("A\(100_000_000 + i)".utf8).withUnsafeBytes { XCTAssertEqual(index.v1Find(bytes: $0), Int32(i)) }
    }
    Array("A100000500".utf8).withUnsafeBytes { XCTAssertNil(index.v1Find(bytes: $0)) }
  }

  /// The memo of securities and units: every id length 0-16 packs to a key of its own
  /// (ids that differ in one byte, or only in length with zero bytes, do not meet);
  /// a remembered row is found, an unremembered id is not; longer ids and a half-full
  /// memo remember nothing; `prepare` makes room (forgetting) only when needed;
  /// `v1Find(bytes:memo:)` gives the index's answer, remembered or not.
  func testIdMemoRemembersExactlyTheIdsFound() {
    var memo = IdMemo(ids: 2_000)
    var ids: [[UInt8]] = []
    for length in 0...16 {
      let base = (0..<length).map { UInt8(48 + ($0 * 7 + length) % 10) }
      ids.append(base)
      for i in 0..<length {
        var changed = base
        changed[i] ^= 0x40
        ids.append(changed)
      }
      if length > 0 { ids.append([UInt8](repeating: 0, count: length)) }
    }
    XCTAssertEqual(Set(ids).count, ids.count, "the ids are distinct")
    for (row, id) in ids.enumerated() {
      id.withUnsafeBytes {
        XCTAssertNil(memo.row($0), "not remembered yet: \(id)")
        memo.remember($0, row: Int32(row))
      }
    }
    for (row, id) in ids.enumerated() {
      id.withUnsafeBytes { XCTAssertEqual(memo.row($0), Int32(row), "\(id)") }
    }
    let long = [UInt8](repeating: 65, count: 17)
    long.withUnsafeBytes {
      memo.remember($0, row: 5)
      XCTAssertNil(memo.row($0), "ids over 16 bytes are not remembered")
    }
    var small = IdMemo(ids: 4)
    for i in 0..<10 { [UInt8(i)].withUnsafeBytes { small.remember($0, row: Int32(i)) } }
    let remembered = (0..<10).filter { i in [UInt8(i)].withUnsafeBytes { small.row($0) != nil } }
    XCTAssertEqual(remembered, [0, 1, 2, 3], "a full memo remembers no more")
    var off = IdMemo(ids: 0)
    [UInt8(1)].withUnsafeBytes {
      off.remember($0, row: 1)
      XCTAssertNil(off.row($0))
    }
    var group = TradeGroupMemo()
    group.prepare(securities: 1_000, units: 30)
    XCTAssertGreaterThanOrEqual(group.securities.roomIds, 1_000)
    [UInt8(7)].withUnsafeBytes { group.securities.remember($0, row: 7) }
    group.prepare(securities: 1_001, units: 30)
    [UInt8(7)].withUnsafeBytes { XCTAssertEqual(group.securities.row($0), 7, "room enough: kept") }
    group.prepare(securities: 100_000, units: 30)
    [UInt8(7)].withUnsafeBytes { XCTAssertNil(group.securities.row($0), "remade for more: forgotten") }
    var index = FastIndex<Ident>()
    for i in 0..<300 { index[Ident("\(600_000 + i)")] = Int32(i) }
    var units = IdMemo(ids: 600)
    for _ in 0..<2 {
      for i in [0, 17, 299] {
        Array("\(600_000 + i)".utf8).withUnsafeBytes {
          XCTAssertEqual(index.v1Find(bytes: $0, memo: &units), Int32(i))
        }
      }
      Array("600300".utf8).withUnsafeBytes { XCTAssertNil(index.v1Find(bytes: $0, memo: &units)) }
    }
  }
}

/// A small deterministic generator for the tests above (no system randomness).
private struct LayoutTestGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9e37_79b9_7f4a_7c15
    var z = state
    z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
    z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
    return z ^ (z >> 31)
  }
}

/// V1's packed rows (ImagePacking.swift) in 256 KiB blocks: rows never straddle two
/// blocks, and values of every length (one to ten bytes, the extremes included) read
/// back in order across many blocks.
final class V1PackedRowsTests: XCTestCase {
  func testRowsOfEveryLengthReadBackAcrossBlocks() throws {
    let extremes: [Int64] = [
      0, -1, 1, 63, -64, 64, 8_191, -8_192, .max, .min, Int64(Int32.max), Int64(Int32.min),
    ]
    func row(_ i: Int) -> [Int64] {
      let spread = Int64(i) &* 0x2545_F491_4F6C_DD1D
      return [Int64(i), extremes[i % extremes.count], spread >> (i % 60), -(spread >> (i % 50))]
    }
    let rows = 120_000  // ~2.6 MB packed: ten blocks and more
    var bytes: [UInt8] = []
    var w = ImageWriter { bytes.append(contentsOf: $0) }
    var p = PackedRowWriter()
    for i in 0..<rows {
      p.startRow(&w)
      for v in row(i) { p.put(v) }
    }
    p.finish(&w)
    w.u8(0xA5)
    w.flush()
    try bytes.withUnsafeBytes { raw in
      var r = ImageReader(raw)
      var reader = PackedRowReader()
      for i in 0..<rows {
        try reader.startRow(&r)
        XCTAssertEqual(try (0..<4).map { _ in try reader.take() }, row(i), "row \(i)")
      }
      try reader.finish(&r)
      XCTAssertEqual(try r.u8(), 0xA5)
      XCTAssertTrue(r.isAtEnd)
    }
    // Every block but the last ends at a row's end at or past the block size.
    try bytes.withUnsafeBytes { raw in
      var r = ImageReader(raw)
      var blocks: [Int] = []
      while true {
        let block = try r.byteString()
        if block.isEmpty { break }
        blocks.append(block.count)
      }
      XCTAssertGreaterThan(blocks.count, 8)
      for size in blocks.dropLast() {
        XCTAssertGreaterThanOrEqual(size, PackedRowWriter.blockBytes)
        XCTAssertLessThan(size, PackedRowWriter.blockBytes + PackedRowWriter.rowBytesMax)
      }
    }
  }
}
