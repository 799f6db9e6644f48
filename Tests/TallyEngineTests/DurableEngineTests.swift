// DurableEngine: what one commit writes (rows, checksum and position in one batch),
// what it costs, restarts, verification on load, and the refusal of a state that
// belongs to other inputs. DurableEngineTests uses in-memory stores (a recording
// store shows each batch); DurableEngineRocksDBTests checks the same against a real
// RocksDB that is closed and reopened. The real process, killed, is in TallyCLITests.
import Foundation
import KernelAPI
import KernelV1
import MarketGenerator
import RocksDBStore
import TallyEngine
import TallyFormat
import XCTest

final class DurableEngineTests: XCTestCase {
  private func market(_ label: String = #function) throws -> TestMarket {
    let m = try TestMarket.generate(String(label.prefix(20)))
    addTeardownBlock { removeDirectory(m.directory) }
    XCTAssertGreaterThan(m.lines.count, 1_000, "the tests below need a few hundred events on each side")
    return m
  }

  private func open(_ store: any StateStore, _ m: TestMarket, reference: ReferenceData? = nil) throws
    -> DurableEngine<V1Kernel>
  {
    try DurableEngine<V1Kernel>(store: store, reference: reference ?? m.reference)
  }

  /// Offers lines `range` (seq = index + 1).
  private func offer(_ d: DurableEngine<V1Kernel>, _ m: TestMarket, _ range: Range<Int>) throws {
    for i in range { try d.offer(line: m.lines[i], seq: Int64(i + 1)) }
  }

  // MARK: The atomic commit

  func testAFreshStoreGetsTheMarkersAndTheOpeningChecksumInOneBatch() throws {
    // tally-state/3: the opening state is rebuilt from the reference folder on restart,
    // so a fresh store holds no row, only what identifies and verifies it.
    let m = try market()
    let store = RecordingStore()
    let d = try open(store, m)
    XCTAssertEqual(d.committedSeq, 0)
    XCTAssertEqual(store.batches.count, 1, "opening an empty store commits once")
    let keys = Set(store.batches[0].puts.map(\.key))
    XCTAssertEqual(keys, [StateKeys.format, StateKeys.reference, StateKeys.layout, StateKeys.checksum])
    XCTAssertEqual(try storedRowCount(store), 0, "the opening state is not stored row by row")
    XCTAssertEqual(
      try store.value(for: StateKeys.checksum), d.engine.state.computeChecksum().encoded,
      "the stored checksum is the opening state's, computed from every row")
    XCTAssertEqual(d.stateDigest, d.engine.stateDigest)
    let reopened = try open(store, m)
    XCTAssertEqual(reopened.committedSeq, 0)
    XCTAssertEqual(reopened.engine.stateDigest, d.engine.stateDigest)
    assertSameOutputs(outputs(reopened.engine), outputs(d.engine))
  }

  func testACommitWritesRowsChecksumAndSeqInOneBatchAndReopensToTheSameState() throws {
    let m = try market()
    let store = RecordingStore()
    let d = try open(store, m)
    try offer(d, m, 0..<300)
    XCTAssertEqual(store.batches.count, 1, "offering events writes nothing before a commit")
    try d.commit()
    XCTAssertEqual(store.batches.count, 2, "one commit is one batch")
    XCTAssertEqual(d.committedSeq, 300)

    let batch = store.batches[1]
    let puts = Dictionary(batch.puts.map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b })
    XCTAssertEqual(puts.count, batch.puts.count, "a batch puts each key once")
    guard let globals = puts[StateKeys.row(.globals, 0)] else {
      return XCTFail("the globals row is not in the batch")
    }
    var reader = ByteReader(globals)
    XCTAssertEqual(try GlobalRecord(from: &reader).appliedSeq, 300, "the position travels with the rows")
    XCTAssertEqual(puts[StateKeys.checksum], d.checksum.encoded, "the checksum travels with the rows")
    XCTAssertNotNil(puts[StateKeys.stream], "the stream fingerprint travels with the rows")
    let tables = Set(puts.keys.compactMap { $0.count == 5 ? $0[0] : nil })
    XCTAssertTrue(tables.contains(StateTable.trades.rawValue), "changed trade rows are in the same batch")
    XCTAssertTrue(tables.contains(StateTable.positions.rawValue), "changed positions are in the same batch")
    XCTAssertTrue(batch.deletes.isEmpty)

    // The incremental checksum equals one computed from scratch.
    XCTAssertEqual(d.stateDigest, d.engine.stateDigest)

    // Reopened: same position, same digest, same outputs.
    let reopened = try open(store, m)
    XCTAssertEqual(reopened.committedSeq, 300)
    XCTAssertEqual(reopened.engine.appliedSeq, 300)
    XCTAssertEqual(reopened.stateDigest, d.engine.stateDigest)
    XCTAssertEqual(reopened.engine.stateDigest, d.engine.stateDigest)
    assertSameOutputs(outputs(reopened.engine), outputs(d.engine))

    // Uncommitted events are not in the store.
    try offer(d, m, 300..<400)
    XCTAssertEqual(try storedAppliedSeq(store), 300)
    XCTAssertEqual(try open(store, m).committedSeq, 300)
  }

  func testCommitCostFollowsWhatChanged() throws {
    let m = try market()
    let store = RecordingStore()
    let d = try open(store, m)
    try offer(d, m, 0..<1_000)
    try d.commit()
    let rows = try storedRowCount(store)
    XCTAssertGreaterThan(rows, 1_000)

    try offer(d, m, 1_000..<1_003)
    try d.commit()
    let small = store.batches.last!
    XCTAssertLessThanOrEqual(small.puts.count, 40, "three events change a few rows, not \(small.puts.count)")
    XCTAssertLessThan(
      small.puts.count * 25, rows, "a small commit writes far fewer rows than the state holds")
    XCTAssertTrue(small.puts.contains { $0.key == StateKeys.row(.globals, 0) })
    XCTAssertTrue(small.puts.contains { $0.key == StateKeys.checksum })

    // Nothing changed: at most the checksum is written.
    try d.commit()
    XCTAssertLessThanOrEqual(store.batches.last!.puts.count, 1)
    XCTAssertEqual(try open(store, m).stateDigest, d.engine.stateDigest)
  }

  func testTheInitialCommitAndAnIdleReopenDoNotRewriteTheState() throws {
    let m = try market()
    let store = RecordingStore()
    let d = try open(store, m)
    try offer(d, m, 0..<500)
    try d.commit()
    let rows = try storedRowCount(store)
    let reopened = try open(store, m)
    try offer(reopened, m, 0..<500)  // all skipped
    try reopened.commit()
    XCTAssertLessThan(
      store.batches.last!.puts.count * 25, rows, "a restored state starts clean: its first commit is small")
    XCTAssertEqual(try open(store, m).stateDigest, d.engine.stateDigest)
  }

  // MARK: Restarts

  func testRestartAfterACommitMatchesAStraightRun() throws {
    let m = try market()
    let straight = try m.straightRun()
    let n = m.lines.count
    for split in [0, 1, 63, 64, 65, n / 2, n - 1, n] {
      let store = InMemoryStateStore()
      do {
        let first = try open(store, m)
        try offer(first, m, 0..<split)
        try first.commit()
        // Work after the last commit is lost with the process.
        try offer(first, m, split..<min(n, split + 37))
      }
      let second = try open(store, m)
      XCTAssertEqual(second.committedSeq, Int64(split), "split \(split)")
      for i in 0..<n {
        let outcome = try second.offer(line: m.lines[i], seq: Int64(i + 1))
        XCTAssertEqual(outcome == nil, i < split, "line \(i + 1) after a restart at \(split)")
      }
      try second.finishStream()
      try second.commit()
      assertSameOutputs(outputs(second.engine), straight.outputs)
      XCTAssertEqual(second.engine.stateDigest, straight.digest, "split \(split)")
      XCTAssertEqual(second.stateDigest, straight.digest, "split \(split)")
      XCTAssertEqual(try open(store, m).stateDigest, straight.digest, "split \(split)")
    }
  }

  func testManyRestartsMatchAStraightRun() throws {
    // A crash loop in one process: commit every 13 events, "crash" every 97 (losing
    // what was not committed), reopen, re-offer the stream from the start.
    let m = try market()
    let straight = try m.straightRun()
    let store = InMemoryStateStore()
    var restarts = 0
    var finished = false
    while !finished {
      let d = try open(store, m)
      var sinceCommit = 0
      var applied = 0
      finished = true
      for i in 0..<m.lines.count {
        guard try d.offer(line: m.lines[i], seq: Int64(i + 1)) != nil else { continue }
        applied += 1
        sinceCommit += 1
        if sinceCommit == 13 {
          try d.commit()
          sinceCommit = 0
        }
        if applied == 97 {
          finished = false
          break
        }
      }
      if finished {
        try d.finishStream()
        try d.commit()
        assertSameOutputs(outputs(d.engine), straight.outputs)
        XCTAssertEqual(d.engine.stateDigest, straight.digest)
      } else {
        restarts += 1
      }
    }
    XCTAssertGreaterThan(restarts, 10)
    XCTAssertEqual(try open(store, m).stateDigest, straight.digest)
  }

  func testBackgroundCommitsMatchAStraightRun() throws {
    // tally run's pipeline: commits written while the next events apply, the last one
    // synchronous; a commit "killed" half way (the engine dropped after waiting) reopens
    // at its seq.
    let m = try market()
    let straight = try m.straightRun()
    let store = RecordingStore()
    do {
      let d = try open(store, m)
      for i in 0..<(m.lines.count / 2) {
        try d.offer(line: m.lines[i], seq: Int64(i + 1))
        if (i + 1) % 13 == 0 { try d.commitInBackground() }
      }
      try d.finishCommit()
      XCTAssertEqual(d.committedSeq, Int64(m.lines.count / 2 / 13 * 13))
      XCTAssertEqual(d.stateDigest, try open(store, m).stateDigest)
    }
    let d = try open(store, m)
    XCTAssertEqual(d.committedSeq, Int64(m.lines.count / 2 / 13 * 13))
    for i in 0..<m.lines.count {
      try d.offer(line: m.lines[i], seq: Int64(i + 1))
      if (i + 1) % 13 == 0 { try d.commitInBackground() }
    }
    try d.finishStream()
    try d.commit()
    XCTAssertEqual(d.committedSeq, Int64(m.lines.count))
    XCTAssertEqual(d.stateDigest, straight.digest, "the pipelined checksum is the state's")
    XCTAssertEqual(d.engine.stateDigest, straight.digest)
    assertSameOutputs(outputs(d.engine), straight.outputs)
    XCTAssertEqual(d.commitNanos.count, m.lines.count / 13 + 1)
    let reopened = try open(store, m)
    XCTAssertEqual(reopened.stateDigest, straight.digest)
    assertSameOutputs(outputs(reopened.engine), straight.outputs)
  }

  func testABackgroundCommitFailureIsThrownByTheNextCall() throws {
    let m = try market()
    let store = FailingStore()
    let d = try open(store, m)
    try offer(d, m, 0..<100)
    try d.commit()
    try offer(d, m, 100..<150)
    store.failCommits = true
    try d.commitInBackground()  // handed over: its failure comes later
    XCTAssertEqual(d.committedSeq, 100, "a failed background commit moves nothing")
    store.failCommits = false
    try offer(d, m, 150..<160)
    let message = errorText { try d.commitInBackground() }
    XCTAssertTrue(message?.contains("failed") ?? false, message ?? "a background failure was swallowed")
    XCTAssertEqual(try storedAppliedSeq(store.inner), 100)
    // The failed commit's rows are written with the next one.
    try d.commit()
    XCTAssertEqual(d.committedSeq, 160)
    XCTAssertEqual(try storedAppliedSeq(store.inner), 160)
    let reopened = try open(store, m)
    XCTAssertEqual(reopened.stateDigest, d.engine.stateDigest, "the store must hold the engine's state")
    assertSameOutputs(outputs(reopened.engine), outputs(d.engine))
  }

  func testAFailedCommitKeepsTheStoredPosition() throws {
    let m = try market()
    let straight = try m.straightRun()
    let store = FailingStore()
    do {
      let d = try open(store, m)
      try offer(d, m, 0..<100)
      try d.commit()
      try offer(d, m, 100..<150)
      store.failCommits = true
      let message = errorText { try d.commit() }
      XCTAssertTrue(message?.contains("still holds seq 100") ?? false, message ?? "the commit did not fail")
      XCTAssertEqual(d.committedSeq, 100)
      XCTAssertEqual(try storedAppliedSeq(store.inner), 100)
      store.failCommits = false
    }
    let resumed = try open(store, m)
    XCTAssertEqual(resumed.committedSeq, 100)
    try offer(resumed, m, 0..<m.lines.count)
    try resumed.finishStream()
    try resumed.commit()
    XCTAssertEqual(resumed.engine.stateDigest, straight.digest)
    assertSameOutputs(outputs(resumed.engine), straight.outputs)
  }

  func testACommitRetriedAfterAFailedOneStoresTheWholeState() throws {
    // The commit that failed took the changed rows out of the engine; a retry in the
    // same process must still write them (or refuse), never claim seq 150 while the
    // store holds seq 100 or a mix.
    let m = try market()
    let store = FailingStore()
    let d = try open(store, m)
    try offer(d, m, 0..<100)
    try d.commit()
    try offer(d, m, 100..<150)
    store.failCommits = true
    XCTAssertNotNil(errorText { try d.commit() })
    store.failCommits = false
    if let message = errorText({ try d.commit() }) {
      // Refusing to commit after a failure is acceptable too.
      XCTAssertEqual(try storedAppliedSeq(store.inner), 100, message)
      return
    }
    XCTAssertEqual(
      d.committedSeq, try storedAppliedSeq(store.inner), "committedSeq must be what the store holds")
    XCTAssertEqual(try storedAppliedSeq(store.inner), 150)
    let reopened = try open(store, m)
    XCTAssertEqual(reopened.stateDigest, d.engine.stateDigest, "the store must hold the engine's state")
    assertSameOutputs(outputs(reopened.engine), outputs(d.engine))
  }

  // MARK: Verification on load

  func testADamagedRowIsRefusedWithTheChecksum() throws {
    let m = try market()
    let store = RecordingStore()
    let d = try open(store, m)
    try offer(d, m, 0..<500)
    try d.commit()
    XCTAssertNoThrow(try open(store, m))

    // Trade row 0 gets trade row 1's bytes: it decodes, but it is not the committed state.
    let row0 = StateKeys.row(.trades, 0)
    let original = try XCTUnwrap(try store.value(for: row0))
    let other = try XCTUnwrap(try store.value(for: StateKeys.row(.trades, 1)))
    XCTAssertNotEqual(original, other)
    try store.overwrite([(row0, other)])
    let message = errorText { _ = try open(store, m) }
    XCTAssertNotNil(message, "a damaged row was loaded")
    XCTAssertTrue(message?.contains("damaged") ?? false, message ?? "")
    XCTAssertTrue(message?.contains("checksum") ?? false, message ?? "")

    try store.overwrite([(row0, original)])
    XCTAssertEqual(try open(store, m).stateDigest, d.engine.stateDigest, "repaired, it loads again")
  }

  func testADamagedPositionIsRefused() throws {
    // The globals row carries the applied seq: a stored seq that is not the committed
    // one must not resume silently at the wrong event.
    let m = try market()
    let store = RecordingStore()
    let d = try open(store, m)
    try offer(d, m, 0..<500)
    try d.commit()
    let key = StateKeys.row(.globals, 0)
    var reader = ByteReader(try XCTUnwrap(try store.value(for: key)))
    var globals = try GlobalRecord(from: &reader)
    globals.appliedSeq = 400
    var writer = ByteWriter()
    globals.encode(into: &writer)
    try store.overwrite([(key, writer.bytes)])
    let message = errorText { _ = try open(store, m) }
    XCTAssertTrue(message?.contains("damaged") ?? false, message ?? "a rewound position was accepted")
  }

  func testMissingOrExtraRowsAndABadChecksumAreRefused() throws {
    let m = try market()
    let store = RecordingStore()
    let d = try open(store, m)
    try offer(d, m, 0..<500)
    try d.commit()
    let lastTrade = Int32(d.engine.state.trades.count - 1)

    // A row missing.
    let key = StateKeys.row(.trades, lastTrade)
    let value = try XCTUnwrap(try store.value(for: key))
    try store.overwrite([], deleting: [key])
    XCTAssertNotNil(errorText { _ = try open(store, m) }, "a missing row was not noticed")
    try store.overwrite([(key, value)])

    // A row too many (a copy of the last one under the next id).
    let extra = StateKeys.row(.trades, lastTrade + 1)
    try store.overwrite([(extra, value)])
    XCTAssertNotNil(errorText { _ = try open(store, m) }, "an extra row was not noticed")
    try store.overwrite([], deleting: [extra])

    // A row that does not decode.
    try store.overwrite([(key, [0xFF])])
    XCTAssertNotNil(errorText { _ = try open(store, m) }, "an undecodable row was loaded")
    try store.overwrite([(key, value)])

    // The checksum changed or missing.
    let checksum = try XCTUnwrap(try store.value(for: StateKeys.checksum))
    var bad = checksum
    bad[0] ^= 1
    try store.overwrite([(StateKeys.checksum, bad)])
    let changed = errorText { _ = try open(store, m) }
    XCTAssertTrue(changed?.contains("damaged") ?? false, changed ?? "a wrong checksum was accepted")
    try store.overwrite([], deleting: [StateKeys.checksum])
    let missing = errorText { _ = try open(store, m) }
    XCTAssertTrue(missing?.contains("checksum") ?? false, missing ?? "a missing checksum was accepted")

    try store.overwrite([(StateKeys.checksum, checksum)])
    XCTAssertEqual(try open(store, m).stateDigest, d.engine.stateDigest)
  }

  func testALostChangeToAnOpeningRowIsRefused() throws {
    // Stored rows are changes to the opening state rebuilt from the reference folder:
    // a stored change that goes missing must not fall back silently to the opening row.
    let m = try market()
    let store = RecordingStore()
    let d = try open(store, m)
    try offer(d, m, 0..<500)
    try d.commit()
    let opening = try open(RecordingStore(), m).engine.state.positions.count
    var changed: [UInt8]?
    try store.scan(prefix: [StateTable.positions.rawValue]) { key, _ in
      guard let id = StateKeys.rowId(key), Int(id) < opening else { return true }
      changed = key
      return false
    }
    let key = try XCTUnwrap(changed, "500 events change some opening position")
    let value = try XCTUnwrap(try store.value(for: key))
    try store.overwrite([], deleting: [key])
    let message = errorText { _ = try open(store, m) }
    XCTAssertTrue(message?.contains("damaged") ?? false, message ?? "a lost change was not noticed")
    try store.overwrite([(key, value)])
    XCTAssertEqual(try open(store, m).stateDigest, d.engine.stateDigest)
  }

  // MARK: Refusals

  func testOtherReferenceDataIsRefused() throws {
    let m = try market()
    let store = InMemoryStateStore()
    let d = try open(store, m)
    try offer(d, m, 0..<200)
    try d.commit()

    var moreAccounts = m.reference
    moreAccounts.accounts.append((id: "Z000000001", kind: moreAccounts.accounts[0].kind))
    var otherHolding = m.reference
    otherHolding.holdings[0].quantity += 100
    var otherFees = m.reference
    otherFees.feeRows[0].rateText = "0.0001"
    for (what, reference) in [
      ("one more account", moreAccounts), ("a holding", otherHolding), ("a fee", otherFees),
    ] {
      let message = errorText { _ = try open(store, m, reference: reference) }
      XCTAssertTrue(message?.contains("other reference data") ?? false, "\(what): \(message ?? "accepted")")
    }
    XCTAssertEqual(try open(store, m).committedSeq, 200, "the refusals changed nothing")
  }

  func testAnotherEventStreamIsRefused() throws {
    let m = try market()
    let store = InMemoryStateStore()
    let d = try open(store, m)
    try offer(d, m, 0..<200)
    try d.commit()

    // The first line differs: refused once the fingerprinted lines were offered.
    let resumed = try open(store, m)
    var lines = m.lines
    lines[0] = ArraySlice(Array("OPEN,20991231".utf8))
    let message = errorText {
      for (i, line) in lines.enumerated() { try resumed.offer(line: line, seq: Int64(i + 1)) }
      try resumed.finishStream()
    }
    XCTAssertTrue(
      message?.contains("another event stream") ?? false, message ?? "another stream was accepted")
    XCTAssertEqual(resumed.engine.appliedSeq, 200, "nothing of the other stream was applied")

    // Two lines swapped.
    let swapped = try open(store, m)
    lines = m.lines
    lines.swapAt(10, 11)
    XCTAssertNotEqual(lines[10], lines[11])
    XCTAssertNotNil(
      errorText {
        for (i, line) in lines.enumerated() { try swapped.offer(line: line, seq: Int64(i + 1)) }
      }, "swapped lines were accepted")

    // The same stream is accepted.
    let same = try open(store, m)
    try offer(same, m, 0..<m.lines.count)
    try same.finishStream()
  }

  func testAStreamShorterThanTheFingerprintIsRefused() throws {
    let m = try market()
    let store = InMemoryStateStore()
    let d = try open(store, m)
    try offer(d, m, 0..<200)
    try d.commit()
    let resumed = try open(store, m)
    try offer(resumed, m, 0..<30)
    let message = errorText { try resumed.finishStream() }
    XCTAssertTrue(
      message?.contains("longer event stream") ?? false, message ?? "a 30-line stream was accepted")
  }

  func testAStreamEndingBeforeTheCommittedPositionIsRefused() throws {
    // The state holds seq 1000; the stream offered now ends at 400 (its first lines
    // are the same). Its outputs would describe 600 events it does not have.
    let m = try market()
    let store = InMemoryStateStore()
    let d = try open(store, m)
    try offer(d, m, 0..<1_000)
    try d.commit()
    let resumed = try open(store, m)
    try offer(resumed, m, 0..<400)
    XCTAssertNotNil(
      errorText { try resumed.finishStream() },
      "a stream of 400 events finished a state at seq \(resumed.engine.appliedSeq) without an error")
  }

  func testAnEarlyCommitFingerprintsTheLinesItHasSeen() throws {
    // Committed after 10 lines: the fingerprint covers those 10, then grows.
    let m = try market()
    let store = InMemoryStateStore()
    let d = try open(store, m)
    try offer(d, m, 0..<10)
    try d.commit()
    var lines = m.lines
    lines[4] = ArraySlice(Array("DEPOSIT,P0001,1".utf8))
    let resumed = try open(store, m)
    let message = errorText {
      for i in 0..<10 { try resumed.offer(line: lines[i], seq: Int64(i + 1)) }
    }
    XCTAssertTrue(
      message?.contains("another event stream") ?? false, message ?? "another stream was accepted")

    // The right stream resumes, and after the next commit the fingerprint is complete.
    let right = try open(store, m)
    try offer(right, m, 0..<300)
    try right.commit()
    lines = m.lines
    lines[40] = lines[41]
    let later = try open(store, m)
    XCTAssertNotNil(
      errorText { for i in 0..<100 { try later.offer(line: lines[i], seq: Int64(i + 1)) } },
      "line 41 changed after the fingerprint grew to 64 lines")
  }

  func testAnotherFormatIsRefused() throws {
    let m = try market()
    let store = RecordingStore()
    let d = try open(store, m)
    try offer(d, m, 0..<100)
    try d.commit()
    try store.overwrite([(StateKeys.format, Array("tally-state/0 spec/2025-01".utf8))])
    let message = errorText { _ = try open(store, m) }
    XCTAssertTrue(
      message?.contains("tally-state/0 spec/2025-01") ?? false, message ?? "another format was accepted")
    XCTAssertTrue(message?.contains(StateKeys.formatVersion) ?? false, message ?? "")

    // A format marker without the reference fingerprint is not this reference's state.
    try store.overwrite(
      [(StateKeys.format, Array(StateKeys.formatVersion.utf8))], deleting: [StateKeys.reference])
    XCTAssertNotNil(
      errorText { _ = try open(store, m) }, "a state without a reference fingerprint was accepted")
  }
}

/// The same properties against a real RocksDB in a temporary folder: what a commit
/// leaves on disk after the store is closed and reopened.
final class DurableEngineRocksDBTests: XCTestCase {
  private var dir = ""
  private var reference: ReferenceData!
  private var lines: [ArraySlice<UInt8>] = []

  override func setUpWithError() throws {
    dir = try makeTemporaryDirectory("durable")
    _ = try MarketGenerator.generate(
      MarketOptions(seed: 11, days: 3, tradesPerDay: 600, accounts: 80, securities: 15, participants: 4),
      into: dir + "/market")
    reference = try FileIO.loadReference(dir + "/market/reference")
    lines = []
    try EventLines.forEach(files: [dir + "/market/events.txt"]) { lines.append($0.bytes) }
    XCTAssertGreaterThan(lines.count, 1_500)
  }

  override func tearDown() { removeDirectory(dir) }

  private var statePath: String { dir + "/state" }

  private func openStore() throws -> RocksDBStateStore { try RocksDBStateStore(path: statePath) }

  private func open(_ store: RocksDBStateStore, reference: ReferenceData? = nil) throws -> DurableEngine<
    V1Kernel
  > {
    let reference = reference ?? self.reference!
    return try DurableEngine<V1Kernel>(store: store, reference: reference)
  }

  private func offer(_ d: DurableEngine<V1Kernel>, _ range: Range<Int>) throws {
    for i in range { try d.offer(line: lines[i], seq: Int64(i + 1)) }
  }

  private func memoryEngine(through count: Int) throws -> Engine<V1Kernel> {
    var engine = Engine<V1Kernel>(reference: reference)
    for i in 0..<count { engine.apply(line: lines[i], seq: Int64(i + 1)) }
    return engine
  }

  /// Commits `count` events into a new state folder and closes it.
  private func commitInto(_ count: Int) throws {
    let store = try openStore()
    defer { store.close() }
    let d = try open(store)
    try offer(d, 0..<count)
    try d.commit()
  }

  private func errorText(_ body: () throws -> Void) -> String? {
    do {
      try body()
      return nil
    } catch {
      return "\(error)"
    }
  }

  func testACommitReopensWithTheSameSeqAndDigestAsTheMemoryEngine() throws {
    try commitInto(700)
    let memory = try memoryEngine(through: 700)
    let store = try openStore()
    defer { store.close() }
    let d = try open(store)
    XCTAssertEqual(d.committedSeq, 700)
    XCTAssertEqual(d.stateDigest, memory.stateDigest)
    XCTAssertEqual(d.engine.stateDigest, memory.stateDigest)
    XCTAssertEqual(outputs(d.engine).count, 7)
    XCTAssertEqual(outputs(d.engine).mapValues { $0.count }, outputs(memory).mapValues { $0.count })
    XCTAssertTrue(outputs(d.engine) == outputs(memory), "outputs of the reopened state differ")
  }

  func testWorkAfterTheLastCommitIsNotStored() throws {
    do {
      let store = try openStore()
      defer { store.close() }
      let d = try open(store)
      try offer(d, 0..<500)
      try d.commit()
      try offer(d, 500..<900)  // never committed
    }
    let store = try openStore()
    defer { store.close() }
    let d = try open(store)
    XCTAssertEqual(d.committedSeq, 500)
    XCTAssertEqual(d.stateDigest, try memoryEngine(through: 500).stateDigest)
  }

  func testRestartMatchesAStraightRun() throws {
    let straight = try memoryEngine(through: lines.count)
    let half = lines.count / 2
    try commitInto(half)
    let store = try openStore()
    defer { store.close() }
    let d = try open(store)
    XCTAssertEqual(d.committedSeq, Int64(half))
    try offer(d, 0..<lines.count)
    try d.finishStream()
    try d.commit()
    XCTAssertEqual(d.engine.stateDigest, straight.stateDigest)
    XCTAssertEqual(d.stateDigest, straight.stateDigest)
    XCTAssertTrue(
      outputs(d.engine) == outputs(straight), "outputs after a restart differ from a straight run")
    store.close()
    let again = try open(try openStore())
    XCTAssertEqual(again.committedSeq, Int64(lines.count))
    XCTAssertEqual(again.stateDigest, straight.stateDigest)
  }

  func testACommitAfterAFewEventsWritesFewRows() throws {
    let rocks = try openStore()
    defer { rocks.close() }
    let store = CountingStore(rocks)
    let d = try DurableEngine<V1Kernel>(store: store, reference: reference)
    try offer(d, 0..<1_200)
    try d.commit()
    var rows = 0
    for table in StateTable.allCases {
      try rocks.scan(prefix: [table.rawValue]) { _, _ in
        rows += 1
        return true
      }
    }
    XCTAssertGreaterThan(rows, 1_200)
    try offer(d, 1_200..<1_203)
    try d.commit()
    let written = store.putsPerBatch.last ?? .max
    XCTAssertLessThanOrEqual(written, 40, "three events' commit wrote \(written) keys")
    XCTAssertLessThan(written * 25, rows, "a small commit writes far fewer rows than the \(rows) stored")
    XCTAssertEqual(d.stateDigest, try memoryEngine(through: 1_203).stateDigest)
  }

  func testADamagedRowIsRefused() throws {
    try commitInto(600)
    do {
      let store = try openStore()
      defer { store.close() }
      let other = try XCTUnwrap(try store.value(for: StateKeys.row(.trades, 1)))
      var batch = StoreBatch()
      batch.put(StateKeys.row(.trades, 0), other)
      try store.commit(batch, sync: true)
    }
    let store = try openStore()
    defer { store.close() }
    let message = errorText { _ = try open(store) }
    XCTAssertTrue(message?.contains("damaged") ?? false, message ?? "a damaged row was loaded")
    XCTAssertTrue(message?.contains("checksum") ?? false, message ?? "")
  }

  func testOtherReferenceDataIsRefused() throws {
    try commitInto(300)
    var other = reference!
    other.accounts.append((id: "Z000000001", kind: other.accounts[0].kind))
    let store = try openStore()
    defer { store.close() }
    let message = errorText { _ = try open(store, reference: other) }
    XCTAssertTrue(
      message?.contains("other reference data") ?? false, message ?? "other reference data was accepted")
    XCTAssertEqual(try open(store).committedSeq, 300)
  }

  func testAnotherEventStreamIsRefused() throws {
    try commitInto(300)
    let store = try openStore()
    defer { store.close() }
    let d = try open(store)
    var other = lines
    other.remove(at: 1)
    let message = errorText {
      for (i, line) in other.enumerated() { try d.offer(line: line, seq: Int64(i + 1)) }
      try d.finishStream()
    }
    XCTAssertTrue(
      message?.contains("another event stream") ?? false, message ?? "another stream was accepted")
  }

  func testAnotherFormatIsRefused() throws {
    try commitInto(100)
    do {
      let store = try openStore()
      defer { store.close() }
      var batch = StoreBatch()
      batch.put(StateKeys.format, Array("tally-state/0 spec/2025-01".utf8))
      try store.commit(batch, sync: true)
    }
    let store = try openStore()
    defer { store.close() }
    let message = errorText { _ = try open(store) }
    XCTAssertTrue(message?.contains("tally-state/0") ?? false, message ?? "another format was accepted")
  }

  func testAStateFolderInUseIsRefused() throws {
    let first = try openStore()
    defer { first.close() }
    XCTAssertThrowsError(try openStore(), "RocksDB's lock keeps a second user out")
  }
}

/// Passes everything to a store and counts the puts of each committed batch.
final class CountingStore: StateStore {
  let inner: any StateStore
  private(set) var putsPerBatch: [Int] = []

  init(_ inner: any StateStore) { self.inner = inner }

  func value(for key: [UInt8]) throws -> [UInt8]? { try inner.value(for: key) }

  func commit(_ batch: StoreBatch, sync: Bool) throws {
    try inner.commit(batch, sync: sync)
    putsPerBatch.append(batch.puts.count)
  }

  func scan(prefix: [UInt8], _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
    try inner.scan(prefix: prefix, body)
  }
}
