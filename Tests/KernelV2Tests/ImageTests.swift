// V2's kernel image (V2Image.swift): a kernel loaded from an image goes on exactly as
// the one that wrote it (outcomes, effects, change tracking, rows, reports), with its
// planted fault; a malformed image throws. With `TALLY_V2_IMAGE_BENCH` naming a market
// folder (`reference/`, `events.txt`), `testImageBenchmark` also times writeImage and
// loadImage on it.
import Foundation
import KernelAPI
import TallyFormat
import XCTest

@testable import KernelV2

/// The image of `k`, as the engine gets it (the sink's pieces, concatenated).
func imageBytes(_ k: V2Kernel) -> [UInt8] {
  final class Sink {
    var bytes: [UInt8] = []
  }
  let sink = Sink()
  var w = ImageWriter { sink.bytes.append(contentsOf: $0) }
  let kept = k.writeImage(to: &w)
  w.flush()
  precondition(kept, "V2 keeps an image")
  precondition(w.count == sink.bytes.count, "the writer counts what it hands over")
  return sink.bytes
}

func loadImage(_ bytes: [UInt8], fault: PlantedFault? = nil) throws -> V2Kernel {
  try bytes.withUnsafeBytes { b in
    var r = ImageReader(b)
    guard let k = try V2Kernel.loadImage(from: &r, plantedFault: fault) else {
      throw DecodeError(description: "no image")
    }
    return k
  }
}

/// What `takeChangedRows` hands over, as one comparable value.
struct ChangedRows: Equatable {
  var rows: [String] = []
}

func takeChanged(_ k: inout V2Kernel) -> ChangedRows {
  var w = ByteWriter()
  var taken: [(StateTable, Int32, Range<Int>)] = []
  k.takeChangedRows(into: &w) { t, id, range in taken.append((t, id, range)) }
  var out = ChangedRows()
  for (t, id, range) in taken { out.rows.append("\(t.name) \(id) \(Array(w.bytes[range]))") }
  return out
}

/// The same, as a checksum (a million rows).
func changedChecksum(_ k: inout V2Kernel) -> StateChecksum {
  var w = ByteWriter()
  var c = StateChecksum()
  var taken: [(UInt8, Int32, Range<Int>)] = []
  k.takeChangedRows(into: &w) { t, id, range in taken.append((t.rawValue, id, range)) }
  w.bytes.withUnsafeBytes { b in
    for (t, id, range) in taken {
      c.add(RowHash(table: t, id: id, raw: UnsafeRawBufferPointer(rebasing: b[range])))
    }
  }
  return c
}

func holdingsList(_ k: V2Kernel) -> [String] {
  var out: [String] = []
  k.forEachHolding { a, s, q, av, w in out.append("\(a) \(s) \(q) \(av) \(w)") }
  return out
}

/// Applies `lines` (seqs from `firstSeq`) to `k`, consecutive TRADE lines through
/// `applyTrades` (the group path) when `grouped`, else one by one.
func applyAll(
  _ k: inout V2Kernel, _ lines: ArraySlice<ArraySlice<UInt8>>, firstSeq: Int64, grouped: Bool
) -> [Outcome] {
  var outcomes: [Outcome] = []
  var i = lines.startIndex
  while i < lines.endIndex {
    let seq = firstSeq + Int64(i - lines.startIndex)
    guard grouped, EventParser.tradeLine(lines[i]) != nil else {
      outcomes.append(applyLine(&k, lines[i], seq: seq))
      i += 1
      continue
    }
    var bytes: [UInt8] = []
    var inputs: [TradeInput] = []
    while i < lines.endIndex, let t = EventParser.tradeLine(lines[i]) {
      let start = bytes.count
      bytes += Array(lines[i])
      inputs.append(
        TradeInput(trade: t, line: start..<bytes.count, seq: firstSeq + Int64(i - lines.startIndex)))
      i += 1
    }
    var out = [Outcome](repeating: .applied, count: inputs.count)
    bytes.withUnsafeBytes { b in
      inputs.withUnsafeBufferPointer { t in
        out.withUnsafeMutableBufferPointer { o in k.applyTrades(t, bytes: b, outcomes: o) }
      }
    }
    outcomes += out
  }
  return outcomes
}

final class ImageTests: XCTestCase {
  func fixtureNames() throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: fixturesRoot).sorted()
  }

  /// Cut points: every few events, and right after every OPEN, CLOSE, SETTLE, CANCEL,
  /// DIVIDEND, BONUS and reference-data event (and 0 and the end).
  func cuts(_ lines: [ArraySlice<UInt8>], every: Int) -> [Int] {
    var cuts = Set([0, lines.count])
    for (i, line) in lines.enumerated() {
      if i % every == 3 { cuts.insert(i) }
      if EventParser.tradeLine(line) != nil { continue }
      switch EventParser.parse(line) {
      case .trade, .deposit, .malformed: break
      default: cuts.insert(i + 1)
      }
    }
    return cuts.sorted()
  }

  struct Variant {
    /// Change tracking on (from the start) before the cut.
    var tracking: Bool
    /// Effects on (and taken) before the cut in the writer.
    var effectsBefore: Bool
    /// takeChangedRows every this many events before the cut (0: never).
    var takeEvery: Int
    var grouped: Bool
    var fault: PlantedFault?
  }

  func checkRoundTrip(_ name: String, _ lines: [ArraySlice<UInt8>], cut: Int, _ v: Variant) throws {
    let dir = fixturesRoot + "/" + name
    var a = V2Kernel(reference: try loadReference(dir + "/reference"), plantedFault: v.fault)
    if v.tracking { a.setChangeTracking(true) }
    if v.effectsBefore { a.enableEffects() }
    var seq: Int64 = 1
    var i = 0
    while i < cut {
      let n = v.takeEvery > 0 ? min(v.takeEvery, cut - i) : cut - i
      _ = applyAll(&a, lines[i..<i + n], firstSeq: seq, grouped: v.grouped)
      seq += Int64(n)
      i += n
      if v.takeEvery > 0 && i < cut { _ = takeChanged(&a) }
      _ = a.takeEffects()
    }
    let what = "\(name) cut \(cut) \(v)"
    let image = imageBytes(a)
    var b = try loadImage(image, fault: v.fault)
    XCTAssertEqual(b.plantedFault, v.fault, what)
    XCTAssertEqual(imageBytes(b), image, "\(what): the loaded kernel's image")
    XCTAssertEqual(b.appliedSeq, a.appliedSeq, what)
    XCTAssertEqual(rowsText(b), rowsText(a), "\(what): rows")
    XCTAssertEqual(b.takeEffects(), [], "\(what): effects start off, nothing pending")
    if !v.effectsBefore { a.enableEffects() }
    b.enableEffects()
    XCTAssertEqual(b.snapshotEffects(), a.snapshotEffects(), "\(what): snapshot")
    // The rest of the events, compared in chunks of varying size.
    let chunks = [1, 5, 17, 3, 40]
    var c = 0
    while i < lines.count {
      let n = min(chunks[c % chunks.count], lines.count - i)
      c += 1
      let oa = applyAll(&a, lines[i..<i + n], firstSeq: seq, grouped: v.grouped)
      let ob = applyAll(&b, lines[i..<i + n], firstSeq: seq, grouped: !v.grouped)
      XCTAssertEqual(ob, oa, "\(what): outcomes at seq \(seq)")
      XCTAssertEqual(b.takeEffects(), a.takeEffects(), "\(what): effects at seq \(seq)")
      if c % 2 == 1 {
        XCTAssertEqual(takeChanged(&b), takeChanged(&a), "\(what): changed rows at seq \(seq)")
      }
      seq += Int64(n)
      i += n
    }
    XCTAssertEqual(takeChanged(&b), takeChanged(&a), "\(what): changed rows at the end")
    XCTAssertEqual(rowsText(b), rowsText(a), "\(what): rows at the end")
    XCTAssertEqual(b.report(holdings: true), a.report(holdings: true), "\(what): report")
    XCTAssertEqual(holdingsList(b), holdingsList(a), "\(what): holdings")
    XCTAssertEqual(b.snapshotEffects(), a.snapshotEffects(), "\(what): snapshot at the end")
    XCTAssertEqual(b.appliedSeq, a.appliedSeq, what)
    XCTAssertEqual(b.selfCheckViolations(limit: 10), a.selfCheckViolations(limit: 10), what)
    XCTAssertEqual(b.selfCheckViolations(limit: 10), [], what)
  }

  func testRoundTripOnFixtures() throws {
    let variants = [
      Variant(tracking: true, effectsBefore: false, takeEvery: 0, grouped: false, fault: nil),
      Variant(tracking: true, effectsBefore: true, takeEvery: 23, grouped: true, fault: nil),
      Variant(tracking: false, effectsBefore: false, takeEvery: 0, grouped: true, fault: nil),
      Variant(tracking: true, effectsBefore: false, takeEvery: 7, grouped: false, fault: nil),
    ]
    var checked = 0
    for name in try fixtureNames() {
      let lines = eventLines(fixturesRoot + "/" + name + "/events.txt")
      for (j, cut) in cuts(lines, every: 37).enumerated() {
        // Every cut with the first variant, the others in turn.
        try checkRoundTrip(name, lines, cut: cut, variants[0])
        try checkRoundTrip(name, lines, cut: cut, variants[1 + j % (variants.count - 1)])
        checked += 2
      }
    }
    XCTAssertGreaterThan(checked, 100)
  }

  /// Change tracking switched on or off after the load behaves alike too.
  func testTrackingSwitchedAfterLoad() throws {
    let name = "gen-seed22"
    let dir = fixturesRoot + "/" + name
    let lines = eventLines(dir + "/events.txt")
    let cut = lines.count / 2
    for on in [false, true] {
      var a = V2Kernel(reference: try loadReference(dir + "/reference"), plantedFault: nil)
      a.setChangeTracking(!on)
      _ = applyAll(&a, lines[..<cut], firstSeq: 1, grouped: true)
      var b = try loadImage(imageBytes(a))
      a.setChangeTracking(on)
      b.setChangeTracking(on)
      _ = applyAll(&a, lines[cut...], firstSeq: Int64(cut + 1), grouped: true)
      _ = applyAll(&b, lines[cut...], firstSeq: Int64(cut + 1), grouped: true)
      XCTAssertEqual(takeChanged(&b), takeChanged(&a))
      XCTAssertEqual(rowsText(b), rowsText(a))
    }
  }

  func testPlantedFaultsSurviveTheRoundTrip() throws {
    for fault in PlantedFault.allCases {
      for name in try fixtureNames() {
        let lines = eventLines(fixturesRoot + "/" + name + "/events.txt")
        for cut in [lines.count / 3, 2 * lines.count / 3] {
          try checkRoundTrip(
            name, lines, cut: cut,
            Variant(tracking: true, effectsBefore: true, takeEvery: 11, grouped: true, fault: fault))
        }
      }
    }
    // An image is the kernel's with its fault: another kernel refuses it.
    let dir = fixturesRoot + "/gen-seed21"
    let k = V2Kernel(reference: try loadReference(dir + "/reference"), plantedFault: .transfer)
    XCTAssertThrowsError(try loadImage(imageBytes(k), fault: nil))
    XCTAssertThrowsError(try loadImage(imageBytes(k), fault: .settlement))
    XCTAssertEqual(try loadImage(imageBytes(k), fault: .transfer).plantedFault, .transfer)
  }

  /// Mid-day state of a fixture (trades applied, a day open).
  func midDayImage() throws -> [UInt8] {
    let dir = fixturesRoot + "/gen-seed23"
    let lines = eventLines(dir + "/events.txt")
    var k = V2Kernel(reference: try loadReference(dir + "/reference"), plantedFault: nil)
    k.setChangeTracking(true)
    _ = applyAll(&k, lines[..<(lines.count / 2 + 7)], firstSeq: 1, grouped: true)
    return imageBytes(k)
  }

  func testTruncatedImagesThrow() throws {
    let image = try midDayImage()
    XCTAssertNoThrow(try loadImage(image))
    var lengths = Set(0..<min(600, image.count))
    var n = 600
    while n < image.count {
      lengths.insert(n)
      lengths.insert(n + 1)
      n += max(1, n / 40)
    }
    lengths.insert(image.count - 1)
    for length in lengths.sorted() where length < image.count {
      XCTAssertThrowsError(try loadImage(Array(image[..<length])), "truncated at \(length) of \(image.count)")
    }
    XCTAssertThrowsError(try loadImage(image + [0]), "a trailing byte")
  }

  /// Every byte of every count, stride and tag, changed: the load throws or (a change
  /// that still makes a well-formed image) gives a kernel; it never traps.
  func testCorruptedImagesNeverTrap() throws {
    let image = try midDayImage()
    // Offsets of the first 8 bytes, every 7th byte up to 4 KB, and bytes spread over the rest.
    var offsets = Set(0..<min(4096, image.count)).filter { $0 < 64 || $0 % 7 == 0 }
    var o = 4096
    while o < image.count {
      offsets.insert(o)
      o += max(1, image.count / 3000)
    }
    var threw = 0
    for offset in offsets.sorted() {
      for change: UInt8 in [0x01, 0x80, 0xFF] {
        var bad = image
        bad[offset] ^= change
        do {
          let k = try loadImage(bad)
          // A well-formed image: it serves its rows without trapping.
          _ = k.selfCheckViolations(limit: 1)
        } catch {
          threw += 1
        }
      }
    }
    XCTAssertGreaterThan(threw, offsets.count / 2, "changes to counts, strides and tags throw")
    // The header (tag, version, fault's length: bytes 0..<20), the next section's tag
    // (20..<30) and the first array's count and stride (30..<42): every change throws.
    for offset in 0..<42 {
      for change: UInt8 in [0x01, 0x10, 0x80, 0xFF] {
        var bad = image
        bad[offset] ^= change
        XCTAssertThrowsError(try loadImage(bad), "header byte \(offset) ^ \(change)")
      }
    }
  }

  func testLayoutNamesTheCopiedTypes() {
    let layout = V2Kernel.imageLayout
    for name in ["V2Position", "V2Lot", "V2Trade", "V2Slice", "KeyBytesTable.Slot", "IntKeyTable.Slot"] {
      XCTAssertTrue(layout.contains(name + ":"), name)
    }
    // No type copied whole ends in padding (size == stride): an image holds no
    // undefined bytes.
    for entry in layout.split(separator: ",") {
      let sizes = entry.split(separator: ":").last!.split(separator: "/")
      XCTAssertEqual(sizes[0], sizes[1], String(entry))
    }
  }

  /// The same events give the same image, byte for byte (no dictionary order, no
  /// undefined byte reaches it).
  func testImagesAreDeterministic() throws {
    for name in try fixtureNames() {
      let dir = fixturesRoot + "/" + name
      let lines = eventLines(dir + "/events.txt")
      var images: [[UInt8]] = []
      for grouped in [false, true] {
        var k = V2Kernel(reference: try loadReference(dir + "/reference"), plantedFault: nil)
        k.setChangeTracking(true)
        k.enableEffects()
        _ = applyAll(&k, lines[...], firstSeq: 1, grouped: grouped)
        _ = k.takeEffects()
        images.append(imageBytes(k))
      }
      XCTAssertEqual(images[0], images[1], name)
    }
  }

  /// An account id of more than 16 bytes: the account table is written whole (not as
  /// its slots' ids), and loads the same.
  func testLongAccountIdKeepsTheWholeAccountTable() throws {
    let dir = fixturesRoot + "/gen-seed21"
    var k = V2Kernel(reference: try loadReference(dir + "/reference"), plantedFault: nil)
    _ = applyAll(&k, eventLines(dir + "/events.txt")[...], firstSeq: 1, grouped: true)
    XCTAssertTrue(k.accountIx.keysInlineUnsalted)
    let short = try loadImage(imageBytes(k))
    XCTAssertEqual(short.computeChecksum(), k.computeChecksum())
    XCTAssertEqual(short.accountIx.find(k.accounts[3].id.text), 3)
    let long = "ACCOUNT-ID-OF-MORE-THAN-SIXTEEN-BYTES"
    XCTAssertEqual(k.addAccount(long, k.accounts[0].kind), .applied)
    XCTAssertFalse(k.accountIx.keysInlineUnsalted)
    let image = imageBytes(k)
    let b = try loadImage(image)
    XCTAssertEqual(b.computeChecksum(), k.computeChecksum())
    XCTAssertEqual(b.accountIx.find(long), Int32(k.accounts.count - 1))
    XCTAssertEqual(b.accountIx.find(k.accounts[3].id.text), 3)
    XCTAssertEqual(imageBytes(b), image)
  }

  /// With `TALLY_V2_IMAGE_BENCH=<market folder>`: the whole day applied, then writeImage
  /// and loadImage timed (best of 3), the loaded kernel checked against the writer.
  func testImageBenchmark() throws {
    guard let dir = ProcessInfo.processInfo.environment["TALLY_V2_IMAGE_BENCH"] else {
      // Without a market: the same steps on a fixture.
      try benchmark(fixturesRoot + "/gen-seed21", print: false)
      return
    }
    try benchmark(dir, print: true)
  }

  func benchmark(_ dir: String, print: Bool) throws {
    func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
    var t0 = now()
    let reference = try loadReference(dir + "/reference")
    let lines = eventLines(dir + "/events.txt")
    var k = V2Kernel(reference: reference, plantedFault: nil)
    k.setChangeTracking(true)
    k.reserveCapacity(events: lines.count)
    _ = applyAll(&k, lines[...], firstSeq: 1, grouped: true)
    let applied = now() - t0
    var image: [UInt8] = []
    var writeTimes: [Double] = []
    for _ in 0..<3 {
      final class Sink {
        var bytes: [UInt8] = []
      }
      let sink = Sink()
      sink.bytes.reserveCapacity(image.count)
      t0 = now()
      var w = ImageWriter { sink.bytes.append(contentsOf: $0) }
      XCTAssertTrue(k.writeImage(to: &w))
      w.flush()
      writeTimes.append(now() - t0)
      image = sink.bytes
    }
    // The kernel's own part: a sink that keeps nothing; and the large pieces.
    var pieces: [Int] = []
    var bare: [Double] = []
    for _ in 0..<3 {
      pieces = []
      t0 = now()
      var w = ImageWriter { if $0.count >= 1 << 20 { pieces.append($0.count) } }
      XCTAssertTrue(k.writeImage(to: &w))
      w.flush()
      bare.append(now() - t0)
    }
    var loadTimes: [Double] = []
    var loaded: V2Kernel?
    for _ in 0..<3 {
      loaded = nil
      t0 = now()
      loaded = try loadImage(image)
      loadTimes.append(now() - t0)
    }
    guard var b = loaded else { return XCTFail("no kernel loaded") }
    // What the two largest indexes would cost rebuilt from the rows instead of copied.
    t0 = now()
    var accountIx = KeyBytesTable()
    accountIx.insertAll(upTo: b.accounts.count) { b.accounts[$0].id.text }
    let accountRebuild = now() - t0
    t0 = now()
    var positionIx = IntKeyTable()
    positionIx.reserveCapacity(b.positionIx.slotCount * 2 / 3)
    positionIx.insertDense(upTo: b.positions.count) {
      V2Kernel.positionKey(b.positions[$0].account, b.positions[$0].security)
    }
    let positionRebuild = now() - t0
    XCTAssertEqual(accountIx.count, b.accountIx.count)
    XCTAssertEqual(positionIx.count, b.positionIx.count)
    XCTAssertEqual(b.computeChecksum(), k.computeChecksum())
    XCTAssertEqual(b.appliedSeq, k.appliedSeq)
    XCTAssertEqual(changedChecksum(&b), changedChecksum(&k))
    XCTAssertEqual(b.report(holdings: false), k.report(holdings: false))
    if print {
      // The large sections: bytes as written (varints) against their rows copied whole.
      func bytes(_ write: (inout ImageWriter) -> Void) -> Int {
        var w = ImageWriter { _ in }
        write(&w)
        w.flush()
        return w.count
      }
      let sections: [(String, Int, Int)] = [
        (
          "positions", bytes { V2Kernel.writePositions(k.positions, to: &$0) },
          k.positions.count * MemoryLayout<V2Position>.stride
        ),
        (
          "lots", bytes { V2Kernel.writeLots(k.pool.lots, to: &$0) },
          k.pool.lots.count * MemoryLayout<V2Lot>.stride
        ),
        (
          "trades", bytes { V2Kernel.writeTrades(k.trades, to: &$0) },
          k.trades.count * MemoryLayout<V2Trade>.stride
        ),
        (
          "slices", bytes { V2Kernel.writeSlices(k.slices, to: &$0) },
          k.slices.count * MemoryLayout<V2Slice>.stride
        ),
        (
          "position index", bytes { k.positionIx.writeImageValues(to: &$0) },
          k.positionIx.slotCount * MemoryLayout<IntKeyTable.Slot>.stride
        ),
        (
          "account index", bytes { k.accountIx.writeImageIds(to: &$0) },
          bytes { k.accountIx.writeImage(to: &$0) }
        ),
      ]
      Swift.print(
        "V2 image sections (MB, written / copied whole): "
          + sections.map {
            "\($0.0) \(String(format: "%.1f / %.1f", Double($0.1) / 1e6, Double($0.2) / 1e6))"
          }
          .joined(separator: ", "))
      let mb = Double(image.count) / 1e6
      Swift.print(
        "V2 image: \(lines.count) events applied in \(String(format: "%.2f", applied)) s; image "
          + "\(String(format: "%.1f", mb)) MB; writeImage \(writeTimes.map { String(format: "%.3f", $0) }) s; "
          + "loadImage \(loadTimes.map { String(format: "%.3f", $0) }) s; writeImage to a sink that keeps "
          + "nothing \(bare.map { String(format: "%.3f", $0) }) s; pieces of 1 MB or more (MB): "
          + "\(pieces.map { String(format: "%.1f", Double($0) / 1e6) }); rebuilt instead: account index "
          + "\(String(format: "%.3f", accountRebuild)) s, position index \(String(format: "%.3f", positionRebuild)) s"
      )
    }
  }
}
