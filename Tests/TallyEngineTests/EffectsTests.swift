// Business effects (docs/EFFECTS.md): replaying an embedded run's effect records
// alone rebuilds the seven SPEC §5 files byte for byte; the encoding round-trips and
// refuses damaged bytes; effects and digests are the same whether taken per event,
// per batch, or with effects off (they never change the state).
import Foundation
import KernelAPI
import MarketGenerator
import TallyEngine
import TallyFormat
import XCTest

@testable import KernelV1

final class EffectsTests: XCTestCase {
  static let basic = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/basic").path

  /// Applies `lines` with effects on, taking them every `chunk` events.
  func runWithEffects(
    _ reference: ReferenceData, kernel: String = "v1", lines: [ArraySlice<UInt8>], chunk: Int
  )
    throws -> (engine: AnyEngine, records: [UInt8], chunks: [[UInt8]])
  {
    let engine = try AnyEngine(kernel: kernel, reference: reference)
    engine.enableEffects()
    var records = engine.snapshotEffects()
    var chunks: [[UInt8]] = []
    for (i, line) in lines.enumerated() {
      engine.apply(line: line, seq: Int64(i + 1))
      if (i + 1) % chunk == 0 || i + 1 == lines.count {
        let taken = engine.takeEffects()
        chunks.append(taken)
        records += taken
      }
    }
    return (engine, records, chunks)
  }

  func replayed(_ records: [UInt8]) throws -> [String: [UInt8]] {
    var replay = EffectReplay()
    try replay.apply(try EffectDecoder.decode(records))
    var files: [String: [UInt8]] = [:]
    for f in ReportWriter.render(replay.report()) { files[f.name] = f.bytes }
    return files
  }

  func testBasicExampleReplaysToTheExpectedFiles() throws {
    let reference = try FileIO.loadReference(Self.basic + "/reference")
    var lines: [ArraySlice<UInt8>] = []
    try EventLines.forEach(files: [Self.basic + "/events.txt"]) { lines.append($0.bytes) }
    let run = try runWithEffects(reference, lines: lines, chunk: 5)
    let files = try replayed(run.records)
    XCTAssertEqual(files.count, 7)
    for name in ReportWriter.fileNames {
      let expected = try FileIO.read(Self.basic + "/expected/" + name)
      XCTAssertEqual(files[name], expected, "\(name) rebuilt from effects differs from the worked example")
    }
    // Every event has exactly one record, in seq order, after the snapshot at seq 0.
    let events = try EffectDecoder.decode(run.records)
    XCTAssertEqual(events.map(\.seq), Array(0...Int64(lines.count)))
    XCTAssertEqual(events[0].outcome, .snapshot)
    let rejected = events.filter { $0.outcome == .rejected }
    XCTAssertEqual(rejected.count, run.engine.statistics.rejected)
    for e in rejected {
      guard case .rejection(let r) = e.effects.last else { return XCTFail("seq \(e.seq): no rejection row") }
      XCTAssertEqual(r.seq, e.seq)
    }
  }

  func testGeneratedWeeksReplayByteIdenticalWithBothKernels() throws {
    var kinds = Set<EffectKind>()
    for (seed, kernel) in [(UInt64(11), "v1"), (22, "v2"), (33, "v1"), (44, "v1")] {
      var options = MarketOptions(
        seed: seed, days: 5, tradesPerDay: 1_500, accounts: 300, securities: 20, participants: 6)
      options.cancelsPerMillion = 8_000
      options.badLinesPerMillion = 5_000
      let dir = try makeTemporaryDirectory("effects-week-\(seed)")
      defer { removeDirectory(dir) }
      let summary = try MarketGenerator.generate(options, into: dir)
      let reference = try FileIO.loadReference(dir + "/reference")
      var lines: [ArraySlice<UInt8>] = []
      try EventLines.forEach(files: [dir + "/events.txt"]) { lines.append($0.bytes) }
      let run = try runWithEffects(reference, kernel: kernel, lines: lines, chunk: 997)
      var keys = EffectDecoder()
      try keys.learnKeys(Array(run.records[try EffectDecoder.events(run.records)[0].range]))
      XCTAssertEqual(EffectDictionary(reference: reference), keys.dictionary, "reference keys, seed \(seed)")
      let direct = Dictionary(uniqueKeysWithValues: run.engine.outputFiles().map { ($0.name, $0.bytes) })
      assertSameOutputs(direct, try replayed(run.records))
      let events = try EffectDecoder.decode(run.records)
      kinds.formUnion(events.flatMap { $0.effects.map(\.kind) })
      XCTAssertGreaterThan(summary.cancels, 0)
      // The state is the same as a run without effects: effects only observe.
      let plain = try AnyEngine(kernel: kernel, reference: reference)
      for (i, line) in lines.enumerated() { plain.apply(line: line, seq: Int64(i + 1)) }
      XCTAssertEqual(plain.stateDigest, run.engine.stateDigest)
      // Chunking does not change the bytes.
      let other = try runWithEffects(reference, kernel: kernel, lines: lines, chunk: 1)
      XCTAssertEqual(other.records, run.records)
    }
    for k in [
      EffectKind.clearing, .settlement, .balance, .holding, .entitlement, .tax, .taxRemoved, .rejection,
    ] {
      XCTAssertTrue(kinds.contains(k), "no \(k.word) effect in the generated weeks")
    }
  }

  /// An OPEN that releases more bought positions than `bitmapTouchedMin` takes the
  /// bitmap path of V1's effect writer: its records must still equal V2's (written
  /// independently) byte for byte, and rebuild the run's outputs.
  func testAnOpenReleasingThousandsOfHoldingsHasTheSameEffectsInBothKernels() throws {
    let options = MarketOptions(
      seed: 7, days: 2, tradesPerDay: 3 * KernelV1.EffectBuffer.bitmapTouchedMin, accounts: 20_000,
      securities: 30, participants: 5)
    let dir = try makeTemporaryDirectory("effects-big-open")
    defer { removeDirectory(dir) }
    _ = try MarketGenerator.generate(options, into: dir)
    let reference = try FileIO.loadReference(dir + "/reference")
    var lines: [ArraySlice<UInt8>] = []
    try EventLines.forEach(files: [dir + "/events.txt"]) { lines.append($0.bytes) }
    let v1 = try runWithEffects(reference, kernel: "v1", lines: lines, chunk: 5_000)
    let v2 = try runWithEffects(reference, kernel: "v2", lines: lines, chunk: 5_000)
    XCTAssertEqual(v1.records, v2.records)
    let events = try EffectDecoder.decode(v1.records)
    let largest = events.map { $0.effects.filter { $0.kind == .holding }.count }.max() ?? 0
    XCTAssertGreaterThan(largest, KernelV1.EffectBuffer.bitmapTouchedMin, "no event took the bitmap path")
    let direct = Dictionary(uniqueKeysWithValues: v1.engine.outputFiles().map { ($0.name, $0.bytes) })
    assertSameOutputs(direct, try replayed(v1.records))
  }

  /// The bitmap sort equals sort-then-unique on keys of several kinds as dense as an
  /// event that takes it (at least `bitmapTouchedMin` keys), and declines (keys
  /// untouched) when the rows are too sparse for bitmaps. Seeded: the same keys each run.
  func testBitmapSortOfTouchedRowsEqualsSortAndUnique() {
    var state: UInt64 = 0x5EED
    func next(_ bound: UInt64) -> UInt64 {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return (state >> 33) % bound
    }
    let kinds = [EffectKind.clearing, .holding, .tax, .rejection]
    for _ in 0..<20 {
      let count = KernelV1.EffectBuffer.bitmapTouchedMin + Int(next(16_000))
      let keys = (0..<count).map { _ in
        UInt64(kinds[Int(next(4))].rawValue) << 32 | next(30_000)
      }
      var sorted = keys
      XCTAssertTrue(V1Kernel.sortUniqueByBitmap(&sorted), "\(count) keys")
      XCTAssertEqual(sorted, Array(Set(keys)).sorted())
    }
    var sparse: [UInt64] = (0..<5_000).map { UInt64(EffectKind.holding.rawValue) << 32 | UInt64($0) * 1_000 }
    sparse.reverse()
    let before = sparse
    XCTAssertFalse(V1Kernel.sortUniqueByBitmap(&sparse))
    XCTAssertEqual(sparse, before)
  }

  /// A replica restarts from its last commit and replays: the effects it produces
  /// again must be byte-identical (derived indexes are rebuilt in another order on
  /// restore; the canonical order of effects within an event must not depend on it).
  func testEffectsAfterARestoreEqualAnUninterruptedRun() throws {
    var options = MarketOptions(
      seed: 9, days: 5, tradesPerDay: 800, accounts: 200, securities: 15, participants: 5)
    options.cancelsPerMillion = 10_000
    let dir = try makeTemporaryDirectory("effects-restore")
    defer { removeDirectory(dir) }
    _ = try MarketGenerator.generate(options, into: dir)
    let reference = try FileIO.loadReference(dir + "/reference")
    var lines: [ArraySlice<UInt8>] = []
    try EventLines.forEach(files: [dir + "/events.txt"]) { lines.append($0.bytes) }
    let straight = try runWithEffects(reference, lines: lines, chunk: 1)
    var expected: [[UInt8]] = straight.chunks
    let store = InMemoryStateStore()
    var durable = try DurableEngine<V1Kernel>(store: store, reference: reference)
    durable.enableEffects()
    var restarts = 0
    for (i, line) in lines.enumerated() {
      let seq = Int64(i + 1)
      if seq > durable.engine.appliedSeq {
        durable.apply(line: line, seq: seq)
        XCTAssertEqual(
          durable.takeEffects(), expected[i], "seq \(seq): effects differ after \(restarts) restarts")
      }
      if i % 397 == 396 {
        try durable.commit()
        // Restart from the commit, as a crashed replica does.
        durable = try DurableEngine<V1Kernel>(store: store, reference: reference)
        durable.enableEffects()
        restarts += 1
      }
    }
    expected = []
    XCTAssertGreaterThan(restarts, 5)
  }

  func testCancelRemovesTaxAndDefaultsShowInEffects() throws {
    var options = MarketOptions(
      seed: 5, days: 5, tradesPerDay: 1_500, accounts: 300, securities: 20, participants: 6)
    options.cancelsPerMillion = 20_000
    let dir = try makeTemporaryDirectory("effects-cancel")
    defer { removeDirectory(dir) }
    _ = try MarketGenerator.generate(options, into: dir)
    let reference = try FileIO.loadReference(dir + "/reference")
    var lines: [ArraySlice<UInt8>] = []
    try EventLines.forEach(files: [dir + "/events.txt"]) { lines.append($0.bytes) }
    let run = try runWithEffects(reference, lines: lines, chunk: 5_000)
    let all = try EffectDecoder.decode(run.records).flatMap(\.effects)
    let statuses = Set(
      all.compactMap { e -> SettlementStatus? in
        if case .settlement(let s, _) = e { return s.status }
        return nil
      })
    XCTAssertTrue(statuses.contains(.settled))
    XCTAssertTrue(statuses.contains(.defaulted), "the generated week should default a payer")
    XCTAssertTrue(
      all.contains { if case .entitlement(_, let e) = $0 { return e.kind == .shares } else { return false } })
    XCTAssertTrue(
      all.contains { if case .entitlement(_, let e) = $0 { return e.kind == .cash } else { return false } })
  }

  func testEncodingSplitsIntoEventsAndRefusesDamage() throws {
    let reference = try FileIO.loadReference(Self.basic + "/reference")
    var lines: [ArraySlice<UInt8>] = []
    try EventLines.forEach(files: [Self.basic + "/events.txt"]) { lines.append($0.bytes) }
    let records = try runWithEffects(reference, lines: lines, chunk: 100).records
    let events = try EffectDecoder.decode(records)
    // The framing alone splits the bytes into events; decoding them in order, piece by
    // piece with one decoder, gives the same events as decoding them at once.
    let ranges = try EffectDecoder.events(records)
    XCTAssertEqual(ranges.map(\.seq), events.map(\.seq))
    XCTAssertEqual(ranges.first?.range.lowerBound, 0)
    XCTAssertEqual(ranges.last?.range.upperBound, records.count)
    var decoder = EffectDecoder()
    var pieces: [EffectEvent] = []
    for r in ranges { pieces += try decoder.decode(Array(records[r.range])) }
    XCTAssertEqual(pieces, events)
    // Truncations are refused (except at a record boundary, which decodes a prefix).
    var refused = 0
    for n in stride(from: 1, to: records.count, by: 7) {
      if (try? EffectDecoder.decode(Array(records.prefix(n)))) == nil { refused += 1 }
    }
    XCTAssertGreaterThan(refused, records.count / 7 / 2)
    var bad = records
    bad[0] = 0x7F
    XCTAssertThrowsError(try EffectDecoder.decode(bad))
    XCTAssertThrowsError(try EffectDecoder.decodeFile(records), "no magic")
    XCTAssertEqual(try EffectDecoder.decodeFile(EffectFormat.fileMagic + records), events)
    var v1 = EffectFormat.fileMagic + records
    v1[7] = 1
    XCTAssertThrowsError(try EffectDecoder.decodeFile(v1)) {
      XCTAssertTrue("\($0)".contains("version 1"), "\($0)")
    }
  }

  /// Version 2's dictionary (docs/EFFECTS.md, "Rows are named by id"): events after the
  /// snapshot name reference rows by id only, so they do not decode alone; a key record
  /// that skips an id or contradicts a known key is refused; a repeated one (a batch
  /// delivered twice) is accepted; a lenient decoder names unknown rows by placeholders.
  func testTheDictionaryRefusesUnknownIdsGapsAndContradictions() throws {
    let reference = try FileIO.loadReference(Self.basic + "/reference")
    var lines: [ArraySlice<UInt8>] = []
    try EventLines.forEach(files: [Self.basic + "/events.txt"]) { lines.append($0.bytes) }
    let records = try runWithEffects(reference, lines: lines, chunk: 100).records
    let ranges = try EffectDecoder.events(records)
    let snapshot = Array(records[ranges[0].range])
    let rest = Array(records[ranges[1].range.lowerBound...])
    XCTAssertThrowsError(try EffectDecoder.decode(rest), "events without their snapshot decode") {
      XCTAssertTrue("\($0)".contains("not in the dictionary"), "\($0)")
    }
    var seeded = EffectDecoder()
    try seeded.learnKeys(snapshot)
    // The reference rows' keys computed from the reference alone equal the snapshot's.
    XCTAssertEqual(EffectDictionary(reference: reference), seeded.dictionary)
    XCTAssertEqual(try seeded.decode(rest), Array(try EffectDecoder.decode(records).dropFirst()))
    XCTAssertEqual(seeded.dictionary.participants, ["P0001", "P0002"])
    // The same batch again: its key records repeat known keys.
    var twice = EffectDecoder()
    _ = try twice.decode(records)
    XCTAssertNoThrow(try twice.decode(rest))

    func keys(_ body: (inout EffectWriter) -> Void) -> [UInt8] {
      var w = EffectWriter()
      _ = w.eventHeader(seq: 0, outcome: .snapshot, count: 2)
      body(&w)
      return w.bytes
    }
    XCTAssertThrowsError(
      try EffectDecoder.decode(
        keys {
          $0.participantKey(1, "P1"); $0.balance(participant: 1, balanceFen: 0)
        })
    ) {
      XCTAssertTrue("\($0)".contains("before row 0"), "\($0)")
    }
    XCTAssertThrowsError(
      try EffectDecoder.decode(
        keys {
          $0.participantKey(0, "P1")
          $0.participantKey(0, "P2")
        }))
    XCTAssertNoThrow(
      try EffectDecoder.decode(
        keys {
          $0.participantKey(0, "P1")
          $0.participantKey(0, "P1")
        }))
    // A position naming an account the dictionary lacks.
    XCTAssertThrowsError(
      try EffectDecoder.decode(
        keys {
          $0.securityKey(0, "600000")
          $0.positionKey(0, account: 0, security: 0)
        }))
    // Lenient: placeholders instead of errors, the values intact.
    var lenient = EffectDecoder(lenient: true)
    var w = EffectWriter()
    _ = w.eventHeader(seq: 9, outcome: .applied, count: 5)
    w.securityKey(2, "600000")  // a batch's own key records, without the rows before them
    w.positionKey(18, account: 3, security: 2)
    w.holding(17, quantity: 100, available: 40, withheld: 0)
    w.holding(18, quantity: 5, available: 5, withheld: 0)
    w.clearing(5, buyQuantity: 1, sellQuantity: 2, buyAmount: 3, sellAmount: 4, fees: SideFees())
    let events = try lenient.decode(w.bytes)
    XCTAssertEqual(
      events,
      [
        EffectEvent(
          seq: 9, outcome: .applied,
          effects: [
            .holding(
              Report.Holding(account: "position#17", security: "", quantity: 100, available: 40, withheld: 0)),
            .holding(
              Report.Holding(account: "account#3", security: "600000", quantity: 5, available: 5, withheld: 0)
            ),
            .clearing(
              Report.Clearing(
                tradeDate: 0, settleDate: 0, participant: "clearing#5", security: "", buyQuantity: 1,
                sellQuantity: 2, buyAmount: 3, sellAmount: 4, fees: SideFees())),
          ])
      ])
  }

  /// Identifiers of every length from 1 to 40 bytes (the cursor copies 4-7 and 8-16 bytes
  /// by overlapping word moves, others by memcpy), multi-byte UTF-8 among them, written
  /// through one room (`append(bytes:)`) decode to the same rows as written one by one
  /// from Strings, and both hold exactly the identifiers' bytes.
  func testRecordsWrittenThroughOneRoomEqualTheStringWritersForEveryIdentifierLength() throws {
    for n in 1...40 {
      var bytes = [UInt8]((0..<n).map { UInt8(65 + ($0 * 7) % 26) })
      if n >= 3 { bytes.replaceSubrange(1..<3, with: [0xC3, 0xA9]) }  // "é" inside
      let id = String(decoding: bytes, as: UTF8.self)
      let security = String(id.reversed())
      let participant = "P" + id
      var oneByOne = EffectWriter()
      _ = oneByOne.eventHeader(seq: 0, outcome: .snapshot, count: 10)
      oneByOne.participantKey(0, participant)
      oneByOne.accountKey(0, id)
      oneByOne.securityKey(0, security)
      oneByOne.clearingKey(0, tradeDate: 20_260_105, settleDate: 20_260_106, participant: 0, security: 0)
      oneByOne.settlementKey(0, tradeDate: 20_260_105, settleDate: 20_260_106, participant: 0)
      oneByOne.positionKey(0, account: 0, security: 0)
      oneByOne.clearing(
        0, buyQuantity: 300, sellQuantity: 0, buyAmount: 3000, sellAmount: -1, fees: SideFees())
      oneByOne.settlement(0, netFen: -3019, status: .pending, settledOn: 0, visible: true)
      oneByOne.holding(0, quantity: 1200, available: 900, withheld: 300)
      oneByOne.tax(
        tradeDate: 20_260_105, tradeId: id + "T", account: 0, security: 0, quantity: 100, taxFen: 7)
      var room = EffectWriter()
      func utf8(_ s: String) -> [UInt8] { Array(s.utf8) }
      let (p, s, a, t) = (utf8(participant), utf8(security), utf8(id), utf8(id + "T"))
      p.withUnsafeBytes { p in
        s.withUnsafeBytes { s in
          a.withUnsafeBytes { a in
            t.withUnsafeBytes { t in
              let size =
                EffectWriter.eventHeaderBytes + EffectWriter.nameKeyBytes(name: p.count)
                + EffectWriter.nameKeyBytes(name: a.count) + EffectWriter.nameKeyBytes(name: s.count)
                + EffectWriter.clearingKeyBytes + EffectWriter.settlementKeyBytes
                + EffectWriter.positionKeyBytes
                + EffectWriter.clearingBytes + EffectWriter.settlementBytes + EffectWriter.holdingBytes
                + EffectWriter.taxBytes(tradeId: t.count)
              room.append(bytes: size) { c in
                c.eventHeader(seq: 0, outcome: .snapshot, count: 10)
                c.nameKey(.participantKey, 0, p)
                c.nameKey(.accountKey, 0, a)
                c.nameKey(.securityKey, 0, s)
                c.clearingKey(0, tradeDate: 20_260_105, settleDate: 20_260_106, participant: 0, security: 0)
                c.settlementKey(0, tradeDate: 20_260_105, settleDate: 20_260_106, participant: 0)
                c.positionKey(0, account: 0, security: 0)
                c.clearing(
                  0, buyQuantity: 300, sellQuantity: 0, buyAmount: 3000, sellAmount: -1, fees: SideFees())
                c.settlement(0, netFen: -3019, status: .pending, settledOn: 0, visible: true)
                c.holding(0, quantity: 1200, available: 900, withheld: 300)
                c.tax(tradeDate: 20_260_105, tradeId: t, account: 0, security: 0, quantity: 100, taxFen: 7)
              }
            }
          }
        }
      }
      XCTAssertEqual(room.bytes, oneByOne.bytes, "identifier of \(n) bytes")
      let events = try EffectDecoder.decode(room.bytes)
      XCTAssertEqual(events.first?.effects.count, 4, "key records are not effects")
      guard case .clearing(let c) = events.first?.effects[0] else { return XCTFail("no clearing for \(n)") }
      XCTAssertEqual(c.participant, participant)
      XCTAssertEqual(c.security, security)
      XCTAssertEqual(c.settleDate, 20_260_106)
      guard case .holding(let h) = events.first?.effects[2] else { return XCTFail("no holding for \(n)") }
      XCTAssertEqual(Array(h.account.utf8), bytes, "identifier of \(n) bytes")
      XCTAssertEqual(h.security, security)
      guard case .tax(let tax) = events.first?.effects[3] else { return XCTFail("no tax for \(n)") }
      XCTAssertEqual(tax.tradeId, id + "T")
      XCTAssertEqual(tax.account, id)
    }
  }
  /// Rooms larger than the writer's 512-byte stack block of zeros (they take its other
  /// path; an OPEN's group of 16 holdings is 528 bytes), after records already written
  /// and across the buffer's growth, hold exactly what the same records written one by
  /// one hold; a run of them grows the buffer by doubling, not once per room.
  func testRoomsLargerThanTheZeroBlockEqualRecordsWrittenOneByOne() {
    for holdings in [15, 16, 17, 40, 200] {
      var oneByOne = EffectWriter()
      var rooms = EffectWriter()
      var reallocations = 0
      for round in 0..<30 {
        let seq = Int64(round)
        _ = oneByOne.eventHeader(seq: seq, outcome: .applied, count: holdings)
        for h in 0..<holdings {
          oneByOne.holding(Int32(h), quantity: Int64(round * 1_000 + h), available: Int64(h), withheld: 1)
        }
        let capacity = rooms.bytes.capacity
        rooms.append(bytes: EffectWriter.eventHeaderBytes + holdings * EffectWriter.holdingBytes) { c in
          c.eventHeader(seq: seq, outcome: .applied, count: holdings)
          for h in 0..<holdings {
            c.holding(Int32(h), quantity: Int64(round * 1_000 + h), available: Int64(h), withheld: 1)
          }
        }
        if rooms.bytes.capacity != capacity { reallocations += 1 }
      }
      XCTAssertEqual(rooms.bytes, oneByOne.bytes, "rooms of \(holdings) holdings")
      XCTAssertLessThanOrEqual(
        reallocations, 12, "rooms of \(holdings) holdings: the buffer grows by doubling")
    }
  }

  func testDigestSeesEveryByteAndIsStable() {
    let bytes = (0..<1_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
    let d = EffectDigest.of(bytes)
    XCTAssertEqual(d.count, 16)
    XCTAssertEqual(EffectDigest.of(bytes), d)
    for i in [0, 7, 8, 16, 24, 31, 500, 999] {
      var x = bytes
      x[i] ^= 1
      XCTAssertNotEqual(EffectDigest.of(x), d, "flipping byte \(i) keeps the digest")
    }
    XCTAssertNotEqual(EffectDigest.of(bytes + [0]), d, "a trailing zero keeps the digest")
    XCTAssertNotEqual(EffectDigest.of([]), EffectDigest.of([0]))
    // Pinned: the digest is part of the wire contract (docs/EFFECTS.md). The values come
    // from Tests/interop/subscribe.py's separate implementation of the definition; the
    // lengths reach every lane from the tail (13 bytes: lanes 0-1; 57: 1 block, then
    // lanes 0-3; 1,000: 31 blocks, then lane 0).
    XCTAssertEqual(EffectDigest.of(Array("tally effects".utf8)).hexString, "73e4c91b353e990376531cf7e4a9d888")
    XCTAssertEqual(EffectDigest.of(Array(bytes[0..<57])).hexString, "70afa882c1777a39e243368418709c37")
    XCTAssertEqual(EffectDigest.of(bytes).hexString, "d95b5a4fd7468567bd3b0dda2f12197b")
    XCTAssertEqual(EffectDigest.of([]).hexString, "b6971429be281685eed9a9883e40bdb4")
  }

  func testTextNamesFieldsAndTheFirstDifference() throws {
    let reference = try FileIO.loadReference(Self.basic + "/reference")
    var lines: [ArraySlice<UInt8>] = []
    try EventLines.forEach(files: [Self.basic + "/events.txt"]) { lines.append($0.bytes) }
    let good = try EffectDecoder.decode(try runWithEffects(reference, lines: lines, chunk: 100).records)
    let faulty = try EffectDecoder.decode(
      try runWithEffects(reference, kernel: "v1-faulty", lines: lines, chunk: 100).records)
    let text = String(decoding: EffectText.render(good), as: UTF8.self)
    XCTAssertTrue(text.hasPrefix("event 0 SNAPSHOT "))
    XCTAssertTrue(text.contains("\nclearing 20260105,20260106,P0002,600000,300,0,3000.00,0.00,"))
    guard let diff = EffectText.firstDifference(majority: good, dissenter: faulty) else {
      return XCTFail("a truncated handling fee shows no difference")
    }
    XCTAssertTrue(diff.lines.joined().contains("handling_fee"), diff.lines.joined(separator: "\n"))
    XCTAssertNil(EffectText.firstDifference(majority: good, dissenter: good))
  }
}
