// The input-log layout (`tally run --state`): commits log the applied lines, snapshots
// hold packed rows, a restart lays the snapshots over the opening state, verifies their
// checksum and applies the logged lines again. Checked against straight runs at every
// kind of cut, with damage and failures, on in-memory stores and a real RocksDB (whose
// snapshots go through its SST-file bulk load), and across kernel versions.
import Foundation
import KernelAPI
import KernelV1
import KernelV2
import RocksDBStore
import TallyEngine
import XCTest

final class InputLogTests: XCTestCase {
  private func market(_ label: String = #function) throws -> TestMarket {
    let m = try TestMarket.generate(String(label.prefix(20)))
    addTeardownBlock { removeDirectory(m.directory) }
    return m
  }

  private func open<K: BusinessKernel>(
    _ store: any StateStore, _ m: TestMarket, snapshotEvents: Int64 = 1_000_000, _: K.Type = V1Kernel.self
  ) throws -> DurableEngine<K> {
    try DurableEngine<K>(
      store: store, reference: m.reference, layout: .inputLog, snapshotEvents: snapshotEvents)
  }

  private func offer<K>(_ d: DurableEngine<K>, _ m: TestMarket, _ range: Range<Int>, commitEvery: Int = 0)
    throws
  {
    for i in range {
      try d.offer(line: m.lines[i], seq: Int64(i + 1))
      if commitEvery > 0 && (i + 1) % commitEvery == 0 { try d.commitInBackground() }
    }
    try d.finishCommit()
  }

  /// Keys of `store` under a one-byte prefix.
  private func keys(_ store: any StateStore, _ prefix: UInt8) throws -> [[UInt8]] {
    var result: [[UInt8]] = []
    try store.scan(prefix: [prefix]) { key, _ in
      result.append(key)
      return true
    }
    return result
  }

  private let snapshotPrefix: UInt8 = 0x40
  private let logPrefix: UInt8 = 0x41
  private let logDigestPrefix: UInt8 = 0x42

  func testACommitLogsTheLinesAndWritesNoRow() throws {
    let m = try market()
    let store = RecordingStore()
    let d = try open(store, m)
    XCTAssertEqual(d.layout, .inputLog)
    XCTAssertEqual(store.batches.count, 1, "a fresh folder is marked at once")
    try offer(d, m, 0..<100)
    try d.commit()
    XCTAssertEqual(store.batches.count, 2)
    let puts = Set(store.batches[1].puts.map(\.key))
    XCTAssertEqual(
      puts,
      [
        StateKeys.logEntry(1), [logDigestPrefix] + StateKeys.logEntry(1).dropFirst(), StateKeys.logged,
        StateKeys.stream,
      ])
    XCTAssertEqual(try storedRowCount(store), 0, "no state row is written by a commit")
    XCTAssertEqual(try StateKeys.committedSeq(in: store), 100)
    // The entry holds the lines themselves, in order.
    let entry = try XCTUnwrap(try store.value(for: StateKeys.logEntry(1)))
    let firstLine = Array(m.lines[0])
    XCTAssertEqual(Array(entry[12..<(12 + firstLine.count)]), firstLine)
  }

  func testRestartAfterACommitReplaysTheLogToAStraightRun() throws {
    let m = try market()
    let straight = try m.straightRun()
    let n = m.lines.count
    for split in [0, 1, 63, 64, 65, n / 2, n - 1, n] {
      let store = InMemoryStateStore()
      do {
        let first = try open(store, m)
        try offer(first, m, 0..<split, commitEvery: 50)
        try first.commit()
        try offer(first, m, split..<min(n, split + 37))  // lost with the "process"
      }
      let second = try open(store, m)
      XCTAssertEqual(second.committedSeq, Int64(split), "split \(split)")
      XCTAssertEqual(second.replayedEvents, Int64(split), "split \(split): the log is applied again at open")
      XCTAssertEqual(second.engine.statistics.events, 0, "replayed events are not this run's")
      for i in 0..<n {
        let outcome = try second.offer(line: m.lines[i], seq: Int64(i + 1))
        XCTAssertEqual(outcome == nil, i < split, "line \(i + 1) after a restart at \(split)")
      }
      try second.finishStream()
      try second.commit()
      XCTAssertEqual(second.engine.stateDigest, straight.digest, "split \(split)")
      assertSameOutputs(outputs(second.engine), straight.outputs)
      XCTAssertEqual(try open(store, m).engine.stateDigest, straight.digest, "split \(split) reopened")
    }
  }

  func testSnapshotsReplaceTheLogAndACrashLoopEndsAtTheStraightRun() throws {
    // Snapshots every 150 events, commits every 13, a "crash" every 97 applied events:
    // restarts read snapshots (several, rows repeating across them) and logs.
    let m = try market()
    let straight = try m.straightRun()
    let store = InMemoryStateStore()
    var restarts = 0
    var finished = false
    while !finished {
      let d = try open(store, m, snapshotEvents: 150)
      finished = try offerUntilCrash(d, m, commitEvery: 13, stopAfter: 97)
      if finished { XCTAssertEqual(d.engine.stateDigest, straight.digest) } else { restarts += 1 }
    }
    XCTAssertGreaterThan(restarts, 10)
    let snapshots = Set(try keys(store, snapshotPrefix).map { Array($0[1..<5]) })
    XCTAssertGreaterThan(snapshots.count, 3, "snapshots were taken")
    let reopened = try open(store, m, snapshotEvents: 150)
    XCTAssertEqual(reopened.engine.stateDigest, straight.digest)
    XCTAssertLessThan(reopened.replayedEvents, 150 + 13, "a restart applies at most a snapshot's worth again")
    assertSameOutputs(outputs(reopened.engine), straight.outputs)
    let byV2: DurableEngine<V2Kernel> = try open(store, m, snapshotEvents: 150, V2Kernel.self)
    XCTAssertEqual(byV2.engine.stateDigest, straight.digest, "V2 reads V1's snapshots and log")
    // A snapshot deletes the log entries it covers.
    XCTAssertEqual(try keys(store, logPrefix).count, try keys(store, logDigestPrefix).count)
    XCTAssertLessThan(try keys(store, logPrefix).count, 14)
  }

  func testAnExplicitSnapshotLeavesNoLogAndReopensWithoutReplay() throws {
    let m = try market()
    let straight = try m.straightRun()
    let store = InMemoryStateStore()
    let d = try open(store, m)
    try offer(d, m, 0..<m.lines.count, commitEvery: 100)
    try d.snapshot()
    XCTAssertEqual(d.snapshotNanos.count, 1)
    XCTAssertEqual(try keys(store, logPrefix), [], "the snapshot covers every logged line")
    XCTAssertGreaterThan(try keys(store, snapshotPrefix).count, 0)
    let reopened = try open(store, m)
    XCTAssertEqual(reopened.replayedEvents, 0)
    XCTAssertEqual(reopened.committedSeq, Int64(m.lines.count))
    XCTAssertEqual(reopened.engine.stateDigest, straight.digest)
    XCTAssertEqual(reopened.stateDigest, straight.digest, "the stored checksum is the snapshot's state")
  }

  func testDamageIsRefused() throws {
    let m = try market()
    func folder() throws -> RecordingStore {
      let store = RecordingStore()
      let d = try open(store, m)
      try offer(d, m, 0..<300, commitEvery: 50)
      try d.snapshot()
      try offer(d, m, 300..<500, commitEvery: 50)
      try d.commit()
      return store
    }
    // A byte of a snapshot row.
    do {
      let store = try folder()
      let key = try XCTUnwrap(try keys(store, snapshotPrefix).first)
      var value = try XCTUnwrap(try store.value(for: key))
      value[value.count - 1] ^= 0x01
      try store.overwrite([(key, value)])
      let message = errorText { _ = try open(store, m) }
      XCTAssertTrue(message?.contains("damaged") ?? false, message ?? "a damaged snapshot was accepted")
    }
    // A logged line.
    do {
      let store = try folder()
      let key = try XCTUnwrap(try keys(store, logPrefix).first)
      var value = try XCTUnwrap(try store.value(for: key))
      value[value.count - 2] ^= 0x01
      try store.overwrite([(key, value)])
      let message = errorText { _ = try open(store, m) }
      XCTAssertTrue(message?.contains("checksum") ?? false, message ?? "a damaged log entry was accepted")
    }
    // A lost log entry in the middle.
    do {
      let store = try folder()
      let entries = try keys(store, logPrefix)
      XCTAssertGreaterThan(entries.count, 2)
      try store.overwrite([], deleting: [entries[1]])
      let message = errorText { _ = try open(store, m) }
      XCTAssertTrue(
        message?.contains("continues at seq") ?? false, message ?? "a gap in the log was accepted")
    }
    // The last log entry lost: the marker says more.
    do {
      let store = try folder()
      try store.overwrite([], deleting: [try XCTUnwrap(try keys(store, logPrefix).last)])
      let message = errorText { _ = try open(store, m) }
      XCTAssertTrue(message?.contains("marker") ?? false, message ?? "a lost last entry was accepted")
    }
    // Other reference data.
    do {
      let store = try folder()
      var other = m.reference
      other.securities[0].name += " (renamed)"
      let message = errorText { _ = try DurableEngine<V1Kernel>(store: store, reference: other) }
      XCTAssertTrue(message?.contains("other reference data") ?? false, message ?? "other reference accepted")
    }
  }

  func testChunksOfASnapshotThatWasNotCountedAreDeletedAtOpen() throws {
    // A crash between a snapshot's bulk load and its counting batch leaves chunks under
    // the next number; the next open deletes them, and the next snapshot reuses it.
    let m = try market()
    let straight = try m.straightRun()
    let store = RecordingStore()
    do {
      let d = try open(store, m)
      try offer(d, m, 0..<200, commitEvery: 50)
      try d.commit()
    }
    let snapshots = try XCTUnwrap(try store.value(for: StateKeys.snapshots))
    XCTAssertEqual(snapshots, [1, 0, 0, 0, 0, 0, 0, 0])
    let orphan: [UInt8] = [snapshotPrefix, 0, 0, 0, 1, 0, 0, 0, 7]
    try store.overwrite([(orphan, [9, 1, 0, 0, 0, 3, 0, 0, 0, 1, 2, 3])])
    let d = try open(store, m)
    XCTAssertNil(try store.value(for: orphan), "the uncounted chunk is gone")
    try offer(d, m, 0..<m.lines.count, commitEvery: 50)
    try d.snapshot()
    XCTAssertEqual(try open(store, m).engine.stateDigest, straight.digest)
  }

  func testAFailedCommitStopsTheEngineAndTheFolderResumes() throws {
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
      store.failCommits = false
      // Its lines are in no entry now: the engine must not commit later lines after a gap.
      let again = errorText { try d.commit() }
      XCTAssertTrue(
        again?.contains("still holds seq 100") ?? false, again ?? "a commit after a failure passed")
      let snapshot = errorText { try d.snapshot() }
      XCTAssertNotNil(snapshot, "a snapshot after a failure passed")
      XCTAssertEqual(try StateKeys.committedSeq(in: store), 100)
    }
    let resumed = try open(store, m)
    XCTAssertEqual(resumed.committedSeq, 100)
    try offer(resumed, m, 0..<m.lines.count)
    try resumed.finishStream()
    try resumed.commit()
    XCTAssertEqual(resumed.engine.stateDigest, straight.digest)
    assertSameOutputs(outputs(resumed.engine), straight.outputs)
  }

  func testRealRocksDBBulkLoadedSnapshotsAcrossKernelVersions() throws {
    // V1 writes a folder (logs, two snapshots through the SST-file bulk load), V2 reopens
    // it, applies the rest and snapshots again, V1 reads the result: one digest.
    let m = try market()
    let straight = try m.straightRun()
    let path = m.directory + "/state"
    let third = m.lines.count / 3
    do {
      let store = try RocksDBStateStore(path: path)
      defer { store.close() }
      let d: DurableEngine<V1Kernel> = try open(store, m, snapshotEvents: 400)
      try offer(d, m, 0..<third, commitEvery: 64)
      try d.commit()
      XCTAssertGreaterThan(d.snapshotNanos.count, 0, "snapshots were taken on the way")
    }
    do {
      let store = try RocksDBStateStore(path: path)
      defer { store.close() }
      let d: DurableEngine<V2Kernel> = try open(store, m, snapshotEvents: 400, V2Kernel.self)
      XCTAssertEqual(d.committedSeq, Int64(third))
      try offer(d, m, 0..<m.lines.count, commitEvery: 64)
      try d.finishStream()
      try d.snapshot()
      XCTAssertEqual(d.engine.stateDigest, straight.digest)
      XCTAssertFalse(
        (try FileManager.default.contentsOfDirectory(atPath: path)).contains { $0.hasPrefix("tally-load-") },
        "the bulk-load files were moved into RocksDB's tree")
    }
    let store = try RocksDBStateStore(path: path)
    defer { store.close() }
    let d: DurableEngine<V1Kernel> = try open(store, m)
    XCTAssertEqual(d.replayedEvents, 0)
    XCTAssertEqual(d.engine.stateDigest, straight.digest)
    assertSameOutputs(outputs(d.engine), straight.outputs)
  }
}
