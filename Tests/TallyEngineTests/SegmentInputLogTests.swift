// The segment-log layout (`tally run --state` folders): commits append the applied lines
// to segment files beside a real RocksDB store, snapshots drop the segments they cover,
// a restart applies the entries after its last snapshot again. Checked against straight
// runs through a crash loop, and with a torn tail (cut, the lines applied again from the
// events) and damage in an older segment (refused).
import Foundation
import KernelAPI
import KernelV1
import KernelV2
import RocksDBStore
import TallyEngine
import XCTest

final class SegmentInputLogTests: XCTestCase {
  /// Small segments (8 KiB: a few commits each) so that a short day spans many.
  private let segmentBytes = 8 << 10

  private func market(_ label: String = #function) throws -> TestMarket {
    let m = try TestMarket.generate(String(label.prefix(20)))
    addTeardownBlock { removeDirectory(m.directory) }
    return m
  }

  private func open<K: BusinessKernel>(
    _ store: any StateStore, _ m: TestMarket, snapshotEvents: Int64 = 1_000_000, _: K.Type = V1Kernel.self,
    segmentBytes: Int? = nil
  ) throws -> DurableEngine<K> {
    try DurableEngine<K>(
      store: store, reference: m.reference, layout: .segmentLog, snapshotEvents: snapshotEvents,
      segmentBytes: segmentBytes ?? self.segmentBytes)
  }

  private func segments(_ path: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: path + "/input-log").filter { $0.hasSuffix(".seg") }
      .sorted()
  }

  func testACrashLoopWithSnapshotsEndsAtTheStraightRunAndDropsCoveredSegments() throws {
    // Snapshots every 150 events, commits every 13, a "crash" (the store closed without
    // a commit) every 97 applied events.
    let m = try market()
    let straight = try m.straightRun()
    let path = m.directory + "/state"
    var restarts = 0
    var finished = false
    var mostSegments = 0
    while !finished {
      let store = try RocksDBStateStore(path: path)
      defer { store.close() }
      let d = try open(store, m, snapshotEvents: 150)
      XCTAssertEqual(d.layout, .segmentLog)
      XCTAssertLessThan(d.replayedEvents, 150 + 13, "a restart applies at most a snapshot's worth again")
      finished = try offerUntilCrash(d, m, commitEvery: 13, stopAfter: 97)
      mostSegments = max(mostSegments, try segments(path).count)
      if finished { XCTAssertEqual(d.engine.stateDigest, straight.digest) } else { restarts += 1 }
    }
    XCTAssertGreaterThan(restarts, 10)
    XCTAssertLessThan(mostSegments, 12, "snapshots drop the segments they cover")
    let store = try RocksDBStateStore(path: path)
    defer { store.close() }
    XCTAssertEqual(try StateKeys.committedSeq(in: store), Int64(m.lines.count), "the log's last entry")
    var count = ByteReader(try XCTUnwrap(try store.value(for: StateKeys.snapshots)))
    let snapshots = try count.i64()
    XCTAssertGreaterThan(snapshots, 5, "snapshots were taken")
    XCTAssertNotEqual(
      try segments(path).first, "00000000000000000001.seg", "the segments the snapshots cover were deleted")
    let reopened: DurableEngine<V2Kernel> = try open(store, m, snapshotEvents: 150, V2Kernel.self)
    XCTAssertEqual(reopened.committedSeq, Int64(m.lines.count))
    XCTAssertEqual(reopened.engine.stateDigest, straight.digest, "V2 reads V1's snapshots and segments")
    assertSameOutputs(outputs(reopened.engine), straight.outputs)
  }

  /// A folder with every line committed in many segments and no snapshot.
  private func loggedFolder(_ m: TestMarket, segmentBytes: Int? = nil) throws -> String {
    let path = m.directory + "/state"
    let store = try RocksDBStateStore(path: path)
    defer { store.close() }
    let d = try open(store, m, segmentBytes: segmentBytes)
    for i in 0..<m.lines.count {
      try d.offer(line: m.lines[i], seq: Int64(i + 1))
      if (i + 1) % 20 == 0 { try d.commit() }
    }
    try d.commit()
    if segmentBytes == nil { XCTAssertGreaterThan(try segments(path).count, 3) }
    return path
  }

  /// Lines offered in blocks (`offer(lines:of:firstSeq:)`, as `tally run` offers them)
  /// are logged as lines offered one at a time are: the same segment files, byte for
  /// byte, when the commits fall at the same seqs; and the folder reopens to the
  /// straight run.
  func testLinesOfferedInBlocksAreLoggedAsLinesOneAtATime() throws {
    let m = try market()
    let straight = try m.straightRun()
    let byLine = try loggedFolder(m)
    let inBlocks = m.directory + "/state-blocks"
    var bytes: [UInt8] = []
    var ranges: [Range<Int>] = []
    for line in m.lines {
      ranges.append(bytes.count..<(bytes.count + line.count))
      bytes.append(contentsOf: line)
      bytes.append(UInt8(ascii: "\n"))
    }
    do {
      let store = try RocksDBStateStore(path: inBlocks)
      defer { store.close() }
      let d = try open(store, m)
      // Blocks of 7 lines and of the rest up to each commit at a multiple of 20 (as
      // `loggedFolder` commits), an empty block among them.
      var next = 0
      while next < ranges.count {
        let commitAt = min(ranges.count, (next / 20 + 1) * 20)
        let end = min(commitAt, next + 7)
        try d.offer(lines: ranges[next..<next], of: bytes, firstSeq: Int64(next + 1))
        try d.offer(lines: ranges[next..<end], of: bytes, firstSeq: Int64(next + 1))
        next = end
        if next == commitAt && next % 20 == 0 { try d.commit() }
      }
      try d.commit()
      XCTAssertEqual(d.engine.stateDigest, straight.digest)
    }
    let files = try segments(byLine)
    XCTAssertGreaterThan(files.count, 3)
    XCTAssertEqual(try segments(inBlocks), files)
    for name in files {
      let a = try XCTUnwrap(FileManager.default.contents(atPath: byLine + "/input-log/" + name))
      let b = try XCTUnwrap(FileManager.default.contents(atPath: inBlocks + "/input-log/" + name))
      XCTAssertEqual(a, b, "segment \(name)")
    }
    let store = try RocksDBStateStore(path: inBlocks)
    defer { store.close() }
    let reopened: DurableEngine<V1Kernel> = try open(store, m)
    XCTAssertEqual(reopened.replayedEvents, Int64(m.lines.count), "every logged line applied again")
    XCTAssertEqual(reopened.engine.stateDigest, straight.digest)
  }

  private func append(_ bytes: [UInt8], to file: String) throws {
    let handle = try XCTUnwrap(FileHandle(forWritingAtPath: file))
    try handle.seekToEnd()
    try handle.write(contentsOf: Data(bytes))
    try handle.close()
  }

  func testATornTailIsCutAndTheRunGoesOn() throws {
    let m = try market()
    let straight = try m.straightRun()
    let path = try loggedFolder(m)
    // Half an entry after the last synced one: a crash inside a write never acknowledged.
    let newest = path + "/input-log/" + (try segments(path).last!)
    var torn = [UInt8](repeating: 0, count: 4096)
    torn[0] = 0x54  // the magic's first byte, the rest missing
    torn[1] = 0x53
    torn[2] = 0x47
    torn[3] = 0x31
    torn[8] = 200
    try append(torn, to: newest)
    let store = try RocksDBStateStore(path: path)
    defer { store.close() }
    let d = try open(store, m)
    XCTAssertEqual(d.committedSeq, Int64(m.lines.count))
    XCTAssertEqual(d.engine.stateDigest, straight.digest)
    XCTAssertTrue(d.cutTail?.contains("4096 bytes cut") ?? false, d.cutTail ?? "no cut reported")
  }

  func testADamagedLastEntryIsCutAsATornWriteAndAppliedAgain() throws {
    let m = try market()
    let straight = try m.straightRun()
    let path = try loggedFolder(m)
    let newest = path + "/input-log/" + (try segments(path).last!)
    var bytes = try XCTUnwrap(FileManager.default.contents(atPath: newest))
    // A digit near the end of the file: inside the last entry's payload.
    let digit = try XCTUnwrap((0..<bytes.count).reversed().first { bytes[$0] >= 0x31 && bytes[$0] <= 0x38 })
    bytes[digit] += 1
    try bytes.write(to: URL(fileURLWithPath: newest))
    let store = try RocksDBStateStore(path: path)
    defer { store.close() }
    let d = try open(store, m)
    XCTAssertNotNil(d.cutTail, "the cut is reported")
    XCTAssertTrue(d.cutTail?.contains("checksum mismatch") ?? false, d.cutTail ?? "")
    XCTAssertLessThan(d.committedSeq, Int64(m.lines.count), "the last entry's lines are not in the state")
    XCTAssertGreaterThan(d.committedSeq, Int64(m.lines.count) - 30)
    for i in 0..<m.lines.count { try d.offer(line: m.lines[i], seq: Int64(i + 1)) }
    try d.finishStream()
    try d.commit()
    XCTAssertEqual(d.engine.stateDigest, straight.digest, "the cut lines applied again from the inputs")
  }

  func testDamageBeforeTheLastEntryIsRefused() throws {
    // Not a torn write (each commit syncs its one entry): the replay refuses the folder,
    // in the newest segment as in an older one.
    let m = try market()
    let large = 64 << 20  // one segment: the first entry is the newest segment's
    let path = try loggedFolder(m, segmentBytes: large)
    XCTAssertEqual(try segments(path).count, 1)
    let newest = path + "/input-log/" + (try segments(path).last!)
    var bytes = try XCTUnwrap(FileManager.default.contents(atPath: newest))
    let digit = try XCTUnwrap((100..<4096).first { bytes[$0] >= 0x31 && bytes[$0] <= 0x38 })
    bytes[digit] += 1
    try bytes.write(to: URL(fileURLWithPath: newest))
    let store = try RocksDBStateStore(path: path)
    defer { store.close() }
    XCTAssertThrowsError(try open(store, m, segmentBytes: large)) { error in
      XCTAssertTrue("\(error)".contains("damaged") && "\(error)".contains("checksum"), "\(error)")
    }
  }

  func testDamageInAnOlderSegmentIsRefused() throws {
    let m = try market()
    let path = try loggedFolder(m)
    let oldest = path + "/input-log/" + (try segments(path).first!)
    var bytes = try XCTUnwrap(FileManager.default.contents(atPath: oldest))
    // One digit of a logged line, inside the first entry's payload (after its header).
    let digit = try XCTUnwrap((100..<bytes.count).first { bytes[$0] >= 0x31 && bytes[$0] <= 0x38 })
    bytes[digit] += 1
    try bytes.write(to: URL(fileURLWithPath: oldest))
    let store = try RocksDBStateStore(path: path)
    defer { store.close() }
    XCTAssertThrowsError(try open(store, m)) { error in
      XCTAssertTrue("\(error)".contains("damaged") && "\(error)".contains("checksum"), "\(error)")
    }
  }

  func testAnInputLogWithoutStateMarkersIsRefused() throws {
    let m = try market()
    let path = try loggedFolder(m)
    // The store's own files gone, the input log left behind.
    for name in try FileManager.default.contentsOfDirectory(atPath: path) where name != "input-log" {
      try FileManager.default.removeItem(atPath: path + "/" + name)
    }
    let store = try RocksDBStateStore(path: path)
    defer { store.close() }
    XCTAssertThrowsError(try open(store, m)) { XCTAssertTrue("\($0)".contains("no state markers"), "\($0)") }
  }
}
