// Effects encoding version 2 (docs/EFFECTS.md): rows named by canonical row id, each
// row's key written once, in the event that creates it or in a snapshot; records of an
// event in canonical order. Checked on the records' bytes, not only through the text.
import Foundation
import KernelAPI
import KernelV2
import TallyFormat
import XCTest

/// One record of effect bytes, split by its framing alone.
struct RawRecord {
  var kind: UInt8
  var body: [UInt8]

  func u32(_ at: Int) -> Int {
    Int(body[at]) | Int(body[at + 1]) << 8 | Int(body[at + 2]) << 16 | Int(body[at + 3]) << 24
  }

  func i64(_ at: Int) -> Int64 {
    var v: UInt64 = 0
    for k in 0..<8 { v |= UInt64(body[at + k]) << UInt64(8 * k) }
    return Int64(bitPattern: v)
  }
}

func rawRecords(_ bytes: [UInt8]) -> [RawRecord] {
  var out: [RawRecord] = []
  var at = 0
  while at + 5 <= bytes.count {
    let n =
      Int(bytes[at + 1]) | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3]) << 16 | Int(bytes[at + 4]) << 24
    out.append(RawRecord(kind: bytes[at], body: Array(bytes[(at + 5)..<(at + 5 + n)])))
    at += 5 + n
  }
  precondition(at == bytes.count, "effect bytes end inside a record")
  return out
}

/// Row counts of the six keyed tables, in key kind order (0x02 ... 0x07).
func keyedRowCounts(_ k: V2Kernel) -> [Int] {
  var counts: [StateTable: Int] = [:]
  k.forEachEncodedRow { table, _, _ in counts[table, default: 0] += 1 }
  return [.participants, .accounts, .securities, .clearing, .settlement, .positions].map { counts[$0] ?? 0 }
}

func dictionaryCounts(_ d: EffectDictionary) -> [Int] {
  [
    d.participants.count, d.accounts.count, d.securities.count, d.clearing.count, d.settlement.count,
    d.positions.count,
  ]
}

/// Checks effect bytes of the events `seqs`: each a header whose count is the records
/// that follow, key records first, kinds ascending, ids ascending within a kind; each
/// key record names the next row of its table (`named`: rows named so far, per keyed
/// table, advanced here). Returns the number of key records.
@discardableResult
func checkEvents(
  _ bytes: [UInt8], seqs: ClosedRange<Int64>, named: inout [Int], _ what: String,
  file: StaticString = #filePath, line: UInt = #line
) -> Int {
  var keyRecords = 0
  var records = rawRecords(bytes)[...]
  for seq in seqs {
    guard let header = records.popFirst(), header.kind == EffectKind.event.rawValue else {
      XCTFail("\(what) seq \(seq): no event record", file: file, line: line)
      return keyRecords
    }
    XCTAssertEqual(header.i64(0), seq, "\(what): seq", file: file, line: line)
    let count = header.u32(9)
    XCTAssertLessThanOrEqual(count, records.count, "\(what) seq \(seq): count", file: file, line: line)
    var last: (kind: UInt8, order: Int64)? = nil
    for _ in 0..<min(count, records.count) {
      let r = records.removeFirst()
      XCTAssertNotEqual(
        r.kind, EffectKind.event.rawValue, "\(what) seq \(seq): count", file: file, line: line)
      // The order within a kind: the row id (first field), the entitlement's ordinal,
      // the rejection's seq; one tax or tax_removed record per event.
      let order: Int64
      switch r.kind {
      case EffectKind.entitlement.rawValue, EffectKind.rejection.rawValue: order = r.i64(0)
      case EffectKind.tax.rawValue, EffectKind.taxRemoved.rawValue: order = 0
      default: order = Int64(r.u32(0))
      }
      if let l = last {
        XCTAssertTrue(
          l.kind < r.kind || (l.kind == r.kind && l.order < order),
          "\(what) seq \(seq): record 0x\(String(r.kind, radix: 16)) \(order) out of canonical order",
          file: file, line: line)
      }
      last = (r.kind, order)
      if r.kind >= 0x02 && r.kind <= 0x07 {
        let table = Int(r.kind) - 2
        XCTAssertEqual(
          r.u32(0), named[table], "\(what) seq \(seq): key record of kind \(r.kind)", file: file, line: line)
        named[table] = max(named[table], r.u32(0) + 1)
        keyRecords += 1
      }
    }
  }
  XCTAssertTrue(records.isEmpty, "\(what): records after the last event", file: file, line: line)
  return keyRecords
}

final class EffectKeyTests: XCTestCase {
  func markets() throws -> [(name: String, reference: String, events: String)] {
    var out = [
      (
        "basic", sandboxRoot + "/Tests/Fixtures/basic/reference",
        sandboxRoot + "/Tests/Fixtures/basic/events.txt"
      )
    ]
    for name in try FileManager.default.contentsOfDirectory(atPath: fixturesRoot).sorted() {
      out.append((name, fixturesRoot + "/" + name + "/reference", fixturesRoot + "/" + name + "/events.txt"))
    }
    return out
  }

  /// Every event's records: a header whose count is the records that follow, key
  /// records first, kinds ascending, ids ascending within a kind; each key record names
  /// the next row of its table (rows named once, in creation order) and exactly the
  /// rows the event created; the keys written by events equal a later snapshot's.
  func testKeyRecordsNameEachRowOnceInTheEventThatCreatesIt() throws {
    for (name, reference, events) in try markets() {
      var k = V2Kernel(reference: try loadReference(reference), plantedFault: nil)
      k.enableEffects()
      var decoder = EffectDecoder()
      _ = try decoder.decode(k.snapshotEffects())
      var named = keyedRowCounts(k)
      XCTAssertEqual(dictionaryCounts(decoder.dictionary), named, "\(name): snapshot keys")
      var keyRecords = 0
      for (i, line) in eventLines(events).enumerated() {
        let seq = Int64(i + 1)
        applyLine(&k, line, seq: seq)
        let bytes = k.takeEffects()
        keyRecords += checkEvents(bytes, seqs: seq...seq, named: &named, "\(name)")
        XCTAssertEqual(named, keyedRowCounts(k), "\(name) seq \(seq): rows created and named")
        _ = try decoder.decode(bytes)
      }
      XCTAssertGreaterThan(keyRecords, 0, name)
      var fresh = EffectDecoder()
      _ = try fresh.decode(k.snapshotEffects())
      XCTAssertEqual(fresh.dictionary, decoder.dictionary, "\(name): keys written by events = snapshot's")
    }
  }

  /// Effects enabled mid-run: the rows existing then are the snapshot's, the stream
  /// goes on exactly as in a kernel whose effects were on from the start.
  func testEffectsEnabledMidRunContinueTheStream() throws {
    for (name, reference, events) in try markets() {
      let ref = try loadReference(reference)
      let lines = eventLines(events)
      var a = V2Kernel(reference: ref, plantedFault: nil)
      var b = V2Kernel(reference: ref, plantedFault: nil)
      a.enableEffects()
      var continuous = EffectDecoder()
      _ = try continuous.decode(a.snapshotEffects())
      let cut = lines.count / 2
      for (i, line) in lines[..<cut].enumerated() {
        applyLine(&a, line, seq: Int64(i + 1))
        applyLine(&b, line, seq: Int64(i + 1))
        _ = try continuous.decode(a.takeEffects())
      }
      b.enableEffects()
      let snapshot = b.snapshotEffects()
      XCTAssertEqual(a.snapshotEffects(), snapshot, "\(name): snapshot at \(cut)")
      var late = EffectDecoder()
      _ = try late.decode(snapshot)
      XCTAssertEqual(late.dictionary, continuous.dictionary, "\(name): keys at \(cut)")
      for (i, line) in lines[cut...].enumerated() {
        let seq = Int64(cut + i + 1)
        applyLine(&a, line, seq: seq)
        applyLine(&b, line, seq: seq)
        let bytes = b.takeEffects()
        XCTAssertEqual(a.takeEffects(), bytes, "\(name) seq \(seq)")
        XCTAssertEqual(try late.decode(bytes), try continuous.decode(bytes), "\(name) seq \(seq)")
      }
    }
  }

  /// One TRADE's bytes as docs/EFFECTS.md lays them out, written here field by field:
  /// the worked example's first trade creates both participants' clearing and
  /// settlement rows and the buyer's position.
  func testFirstTradeBytesAsTheDocLaysThemOut() throws {
    let base = sandboxRoot + "/Tests/Fixtures/basic"
    var k = V2Kernel(reference: try loadReference(base + "/reference"), plantedFault: nil)
    k.enableEffects()
    XCTAssertEqual(applyLine(&k, Array("OPEN,20260105".utf8)[...], seq: 1), .applied)
    _ = k.takeEffects()
    let line = Array("TRADE,1,20260105,093000,600000,10.00,300,A000000002,20001,A000000001,10001".utf8)
    XCTAssertEqual(applyLine(&k, line[...], seq: 2), .applied)
    let bytes = k.takeEffects()
    let report = k.report(holdings: true)
    // Participants P0001 = 0, P0002 = 1; accounts A000000001 = 0, A000000002 = 1;
    // security 600000 = 0; positions 0-2 from holdings.csv, the buyer's new one is 3.
    guard let buyRow = report.clearing.first(where: { $0.participant == "P0002" }),
      let sellRow = report.clearing.first(where: { $0.participant == "P0001" }),
      let buyNet = report.settlement.first(where: { $0.participant == "P0002" }),
      let sellNet = report.settlement.first(where: { $0.participant == "P0001" })
    else { return XCTFail("rows of the trade missing from the report") }
    var e: [UInt8] = []
    func u8(_ v: UInt8) { e.append(v) }
    func i32(_ v: Int32) { for s in 0..<4 { e.append(UInt8(truncatingIfNeeded: v >> Int32(8 * s))) } }
    func i64(_ v: Int64) { for s in 0..<8 { e.append(UInt8(truncatingIfNeeded: v >> Int64(8 * s))) } }
    func i128(_ v: Int128) { for s in 0..<16 { e.append(UInt8(truncatingIfNeeded: v >> Int128(8 * s))) } }
    func record(_ kind: UInt8, _ length: Int32) {
      u8(kind)
      i32(length)
    }
    record(0x01, 13)
    i64(2)
    u8(0)
    i32(11)
    for (id, participant): (Int32, Int32) in [(0, 1), (1, 0)] {
      record(0x05, 20)
      i32(id)
      i32(20_260_105)
      i32(20_260_106)
      i32(participant)
      i32(0)
    }
    for (id, participant): (Int32, Int32) in [(0, 1), (1, 0)] {
      record(0x06, 16)
      i32(id)
      i32(20_260_105)
      i32(20_260_106)
      i32(participant)
    }
    record(0x07, 12)
    i32(3)
    i32(1)
    i32(0)
    for (id, row): (Int32, Report.Clearing) in [(0, buyRow), (1, sellRow)] {
      record(0x10, 84)
      i32(id)
      i64(row.buyQuantity)
      i64(row.sellQuantity)
      i128(row.buyAmount)
      i128(row.sellAmount)
      i64(row.fees.handling)
      i64(row.fees.regulatory)
      i64(row.fees.transfer)
      i64(row.fees.stamp)
    }
    for (id, row): (Int32, Report.Settlement) in [(0, buyNet), (1, sellNet)] {
      record(0x11, 26)
      i32(id)
      i128(row.netFen)
      u8(0)
      i32(0)
      u8(1)
    }
    // The seller's position 0 (1500 - 300 shares), the buyer's new position 3 (300 not
    // yet available: STOCK, T+1).
    for (id, quantity, available): (Int32, Int64, Int64) in [(0, 1200, 1200), (3, 300, 0)] {
      record(0x13, 28)
      i32(id)
      i64(quantity)
      i64(available)
      i64(0)
    }
    XCTAssertEqual(buyRow.buyQuantity, 300)
    XCTAssertEqual(buyRow.buyAmount, 300_000)
    XCTAssertEqual(bytes, e)
  }

  /// Events of more than a thousand records (an OPEN releasing a day's purchases, a
  /// CLOSE paying a dividend to every holder) go through V2's bulk writer: the same
  /// bytes whether taken per event or in one batch (the bulk writer then copies the
  /// batch's bytes so far), decoded to the rows the report holds.
  func testLargeEventsThroughTheBulkWriter() throws {
    let buyers = 1100
    var accounts = "account,kind\nS000000001,INSTITUTION\n"
    for i in 1...buyers { accounts += "A\(String(1_000_000_000 + i).dropFirst()),INDIVIDUAL\n" }
    let files: [String: String] = [
      "calendar.csv": "date\n20260105\n20260106\n20260107\n20260108\n",
      "securities.csv": "security,isin,name,kind\n600000,CNE0000001D4,SPDB,STOCK\n",
      "participants.csv": "participant,name\nP0001,One\nP0002,Two\n",
      "units.csv": "unit,participant\n10001,P0001\n20001,P0002\n",
      "accounts.csv": accounts,
      "holdings.csv": "account,security,quantity,acquired_date\nS000000001,600000,1000000,20250101\n",
    ]
    let reference = try ReferenceParser.parse(prefix: "mem") { name in files[name].map { Array($0.utf8) } }
    var lines = ["DIVIDEND,600000,20260106,0.10", "OPEN,20260105"]
    for i in 1...buyers {
      let buyer = "A\(String(1_000_000_000 + i).dropFirst())"
      lines.append("TRADE,\(i),20260105,093000,600000,10.00,\(i % 7 + 1)00,\(buyer),20001,S000000001,10001")
    }
    lines += ["CLOSE,20260105", "OPEN,20260106", "CLOSE,20260106", "SETTLE,20260106"]
    var perEvent = V2Kernel(reference: reference, plantedFault: nil)
    var batch = V2Kernel(reference: reference, plantedFault: nil)
    perEvent.enableEffects()
    batch.enableEffects()
    let snapshot = perEvent.snapshotEffects()
    var decoder = EffectDecoder()
    _ = try decoder.decode(snapshot)
    var named = keyedRowCounts(perEvent)
    var all: [UInt8] = []
    var decoded: [EffectEvent] = []
    for (i, line) in lines.enumerated() {
      let seq = Int64(i + 1)
      XCTAssertEqual(applyLine(&perEvent, Array(line.utf8)[...], seq: seq), .applied, line)
      applyLine(&batch, Array(line.utf8)[...], seq: seq)
      var bytes: [UInt8] = []
      perEvent.takeEffects(into: &bytes)
      checkEvents(bytes, seqs: seq...seq, named: &named, "bulk")
      decoded += try decoder.decode(bytes)
      all += bytes
    }
    XCTAssertEqual(named, keyedRowCounts(perEvent))
    XCTAssertEqual(batch.takeEffects(), all, "one batch = the events' records")
    let report = perEvent.report(holdings: true)
    // OPEN 20260106: every buyer's shares become available.
    let open = decoded[buyers + 3]
    XCTAssertEqual(open.effects.count, buyers)
    func bought(_ account: String) -> Int64 { Int64(Int(account.dropFirst())! % 7 + 1) * 100 }
    for case .holding(let h) in open.effects {
      XCTAssertEqual([h.quantity, h.available, h.withheld], [bought(h.account), bought(h.account), 0])
    }
    // SETTLE 20260106: P0002 defaults, every buyer's shares are withheld.
    let settle = decoded[buyers + 5]
    var withheld: [Report.Holding] = []
    for case .holding(let h) in settle.effects { withheld.append(h) }
    XCTAssertEqual(withheld.count, buyers)
    for h in withheld {
      XCTAssertEqual([h.quantity, h.available, h.withheld], [bought(h.account), 0, bought(h.account)])
    }
    XCTAssertEqual(withheld, report.holdings.filter { $0.account != "S000000001" })
    // CLOSE 20260106: the dividend's entitlements, one per holder.
    let close = decoded[buyers + 4]
    var entitlements: [Report.Entitlement] = []
    for case .entitlement(_, let e) in close.effects { entitlements.append(e) }
    XCTAssertEqual(entitlements.count, buyers + 1)
    XCTAssertEqual(
      entitlements.sorted { ($0.account, $0.value) < ($1.account, $1.value) },
      report.entitlements.sorted { ($0.account, $0.value) < ($1.account, $1.value) })
    // A fresh snapshot at the end names every row the events named.
    var fresh = EffectDecoder()
    _ = try fresh.decode(perEvent.snapshotEffects())
    XCTAssertEqual(fresh.dictionary, decoder.dictionary)
  }
}
