// The segment log on a real disk: entries survive a reopen, segments roll and are
// dropped whole, a torn tail is cut off, and damage in an older segment is reported
// with its file and offset.
import Foundation
import XCTest

@testable import SegmentLog

final class SegmentLogTests: XCTestCase {
  var dir = ""

  override func setUpWithError() throws {
    dir = FileManager.default.temporaryDirectory.appendingPathComponent("seglog-\(UUID().uuidString)").path
  }
  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(atPath: dir)
  }

  func payload(_ first: Int64, _ bytes: Int) -> [UInt8] {
    (0..<bytes).map { UInt8(truncatingIfNeeded: Int(first) &* 31 &+ $0 &* 7) }
  }

  func segmentFiles() throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".seg") }.sorted()
  }

  func testEntriesSurviveReopenAndReadBack() throws {
    do {
      let log = try SegmentLog(directory: dir)
      var first: Int64 = 1
      for size in [0, 1, 39, 4_056, 4_057, 100_000] {
        try log.append(
          first: first, last: first + 9,
          parts: [Array(payload(first, size).prefix(3)), Array(payload(first, size).dropFirst(3))])
        first += 10
      }
      try log.sync()
      XCTAssertEqual(log.entries.count, 6)
      XCTAssertEqual(try log.read(5), payload(51, 100_000))
    }
    let log = try SegmentLog(directory: dir)
    XCTAssertEqual(log.entries.map(\.first), [1, 11, 21, 31, 41, 51])
    XCTAssertEqual(log.entries.map(\.length), [0, 1, 39, 4_056, 4_057, 100_000])
    for (i, e) in log.entries.enumerated() { XCTAssertEqual(try log.read(i), payload(e.first, e.length)) }
    XCTAssertEqual(log.totalBytes % SegmentLog.blockBytes, 0)
    // Appending continues the same segment after a reopen.
    try log.append(first: 61, last: 61, parts: [payload(61, 10)])
    try log.sync()
    XCTAssertEqual(try segmentFiles(), ["00000000000000000001.seg"])
    XCTAssertEqual(try SegmentLog(directory: dir).entries.last?.first, 61)
  }

  func testUnsyncedEntriesAreNotOnDisk() throws {
    do {
      let log = try SegmentLog(directory: dir)
      try log.append(first: 1, last: 5, parts: [payload(1, 500)])
      try log.sync()
      try log.append(first: 6, last: 7, parts: [payload(6, 500)])  // staged, never synced
    }
    XCTAssertEqual(try SegmentLog(directory: dir).entries.map(\.last), [5])
  }

  /// Entries staged beyond `stagedBytesMax` before one sync are written out first (the
  /// buffer stays at its limit), and still only a sync makes them durable and
  /// readable after a reopen.
  func testManyEntriesBeforeOneSyncKeepTheBufferSmall() throws {
    let entryBytes = 3 << 20
    let count = 9  // 27 MiB staged between syncs
    do {
      let log = try SegmentLog(directory: dir, segmentBytes: 64 << 20)
      for k in 0..<count {
        let first = Int64(k * 10 + 1)
        try log.append(first: first, last: first + 9, parts: [payload(first, entryBytes)])
        XCTAssertLessThanOrEqual(log.capacity, SegmentLog.stagedBytesMax, "entry \(k)")
      }
      try log.sync()
      for (i, e) in log.entries.enumerated() { XCTAssertEqual(try log.read(i), payload(e.first, entryBytes)) }
      // Written out but not synced is not durable either: a sync with nothing staged
      // still syncs what was written (checked here as reachable after the reopen).
      try log.append(first: 91, last: 95, parts: [payload(91, entryBytes)])
      try log.append(first: 96, last: 99, parts: [payload(96, entryBytes)])
      try log.append(first: 100, last: 100, parts: [payload(100, entryBytes)])
      XCTAssertTrue(log.unsynced)
      try log.sync()
      XCTAssertFalse(log.unsynced)
    }
    let log = try SegmentLog(directory: dir)
    XCTAssertEqual(log.entries.map(\.last), (0..<count).map { Int64($0 * 10 + 10) } + [95, 99, 100])
    for (i, e) in log.entries.enumerated() { XCTAssertEqual(try log.read(i), payload(e.first, entryBytes)) }
  }

  func testSegmentsRollAndTheOldestAreDroppedWhole() throws {
    let log = try SegmentLog(directory: dir, segmentBytes: 16_384)
    for k in 0..<10 {
      let first = Int64(k * 100 + 1)
      try log.append(first: first, last: first + 99, parts: [payload(first, 5_000)])  // 8 KiB on disk
      try log.sync()
    }
    XCTAssertEqual(log.segmentCount, 5)
    XCTAssertEqual(try segmentFiles().first, "00000000000000000001.seg")
    XCTAssertEqual(try segmentFiles().last, "00000000000000000801.seg")
    XCTAssertEqual(try log.dropOldestSegment(), 2)
    XCTAssertEqual(log.entries.first?.first, 201)
    XCTAssertEqual(log.totalBytes, 4 * 16_384)
    XCTAssertEqual(try log.read(0), payload(201, 5_000))
    while log.segmentCount > 1 { try log.dropOldestSegment() }
    XCTAssertEqual(try log.dropOldestSegment(), 0, "the newest segment is never dropped")
    XCTAssertEqual(try segmentFiles(), ["00000000000000000801.seg"])
    let reopened = try SegmentLog(directory: dir, segmentBytes: 16_384)
    XCTAssertEqual(reopened.entries.map(\.first), [801, 901])
  }

  /// Descriptors of this process open on files of the log's folder (/proc/self/fd).
  func descriptorsOnLog() throws -> Int {
    let fds = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")
    return fds.filter {
      (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0))?.hasPrefix(dir)
        ?? false
    }.count
  }

  func testReadingEverySegmentKeepsFewDescriptorsOpen() throws {
    let log = try SegmentLog(directory: dir, segmentBytes: 8_192)
    for k in 0..<30 {
      let first = Int64(k * 10 + 1)
      // 8 KiB on disk: a segment each.
      try log.append(first: first, last: first + 9, parts: [payload(first, 5_000)])
      try log.sync()
    }
    XCTAssertEqual(log.segmentCount, 30)
    let writerOnly = try descriptorsOnLog()
    // A replay from the start, twice: every entry read back right, each segment's reader
    // opened in turn, never more than the limit open.
    for _ in 0..<2 {
      for i in log.entries.indices {
        XCTAssertEqual(try log.read(i), payload(log.entries[i].first, 5_000))
        XCTAssertLessThanOrEqual(log.openReaderCount, SegmentLog.readersOpenMax)
      }
    }
    XCTAssertEqual(log.openReaderCount, SegmentLog.readersOpenMax)
    XCTAssertEqual(
      try descriptorsOnLog(), writerOnly + SegmentLog.readersOpenMax, "readers closed, not leaked")
    // Dropping segments closes theirs (the newest, read last, keeps its reader).
    while log.segmentCount > 1 { try log.dropOldestSegment() }
    XCTAssertEqual(log.openReaderCount, 1)
    XCTAssertEqual(try descriptorsOnLog(), writerOnly + 1)
  }

  func testATornTailIsCutOff() throws {
    do {
      let log = try SegmentLog(directory: dir)
      for k in 0..<3 {
        let first = Int64(k * 10 + 1)
        try log.append(first: first, last: first + 9, parts: [payload(first, 6_000)])
      }
      try log.sync()
    }
    let file = dir + "/" + (try segmentFiles()[0])
    let size = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int)
    XCTAssertEqual(size, 3 * 8_192)
    // Damage a byte of the last entry's payload: as if its write was torn.
    let h = try XCTUnwrap(FileHandle(forUpdatingAtPath: file))
    try h.seek(toOffset: UInt64(2 * 8_192 + 40 + 100))
    try h.write(contentsOf: [0xFF, 0xFE])
    try h.close()
    let log = try SegmentLog(directory: dir)
    XCTAssertEqual(log.entries.map(\.first), [1, 11])
    XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int, 2 * 8_192)
    // The log goes on from the cut.
    try log.append(first: 21, last: 22, parts: [payload(21, 10)])
    try log.sync()
    XCTAssertEqual(try SegmentLog(directory: dir).entries.map(\.last), [10, 20, 22])
  }

  /// A log of one synced entry with `tail` written after it (a torn write); its file.
  func oneEntryThen(_ tail: [UInt8]) throws -> String {
    do {
      let log = try SegmentLog(directory: dir)
      try log.append(first: 1, last: 1, parts: [payload(1, 10)])
      try log.sync()
    }
    let file = dir + "/" + (try segmentFiles()[0])
    let h = try XCTUnwrap(FileHandle(forUpdatingAtPath: file))
    try h.seekToEnd()
    try h.write(contentsOf: tail)
    try h.close()
    return file
  }

  func testGarbageAfterTheLastEntryIsCutOff() throws {
    let file = try oneEntryThen([UInt8](repeating: 0, count: 4_096) + [1, 2, 3])
    XCTAssertEqual(try SegmentLog(directory: dir).entries.count, 1)
    XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int, 4_096)
  }

  func testATornHeaderWithAnyLengthIsCutOff() throws {
    // The magic, then a length field of all ones (over Int.max), then garbage.
    let file = try oneEntryThen([0x54, 0x53, 0x47, 0x31, 0, 0, 0, 0] + [UInt8](repeating: 0xFF, count: 60))
    let log = try SegmentLog(directory: dir)
    XCTAssertEqual(log.entries.count, 1)
    XCTAssertTrue(log.cutTail?.contains("runs past the file") ?? false, log.cutTail ?? "nothing cut")
    XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int, 4_096)
  }

  func testDamageInAnOlderSegmentIsReportedWithFileAndOffset() throws {
    do {
      let log = try SegmentLog(directory: dir, segmentBytes: 8_192)
      for k in 0..<3 {
        let first = Int64(k * 10 + 1)
        try log.append(first: first, last: first + 9, parts: [payload(first, 5_000)])
        try log.sync()
      }
    }
    let oldest = dir + "/" + (try segmentFiles()[0])
    let h = try XCTUnwrap(FileHandle(forUpdatingAtPath: oldest))
    try h.write(contentsOf: [0x00, 0x00])  // the magic
    try h.close()
    XCTAssertThrowsError(try SegmentLog(directory: dir, segmentBytes: 8_192)) { error in
      XCTAssertTrue("\(error)".contains("00000000000000000001.seg: corrupt at offset 0"), "\(error)")
    }
  }

  func testReadChecksEveryPayloadAndTheOpenMayCheckOnlyTheLastEntry() throws {
    do {
      let log = try SegmentLog(directory: dir)
      for k in 0..<4 {
        try log.append(first: Int64(k * 10 + 1), last: Int64(k * 10 + 10), parts: [payload(Int64(k), 2_000)])
        try log.sync()
      }
    }
    let file = dir + "/" + (try segmentFiles()[0])
    var bytes = try XCTUnwrap(FileManager.default.contents(atPath: file))
    bytes[4_096 + 40 + 7] ^= 0x10  // the second entry's payload
    try bytes.write(to: URL(fileURLWithPath: file))
    // Checking only the last entry at open, the damage is found when the entry is read.
    let log = try SegmentLog(directory: dir, check: .lastEntry)
    XCTAssertEqual(log.entries.count, 4)
    XCTAssertNil(log.cutTail)
    XCTAssertEqual(try log.read(0), payload(0, 2_000))
    XCTAssertThrowsError(try log.read(1)) { XCTAssertTrue("\($0)".contains("checksum mismatch"), "\($0)") }
    XCTAssertEqual(try log.read(3), payload(3, 2_000))
  }

  func testTheLastEntryDamagedIsCutWhenOnlyItIsChecked() throws {
    do {
      let log = try SegmentLog(directory: dir)
      for k in 0..<3 {
        try log.append(first: Int64(k + 1), last: Int64(k + 1), parts: [payload(Int64(k), 1_000)])
        try log.sync()
      }
    }
    let file = dir + "/" + (try segmentFiles()[0])
    var bytes = try XCTUnwrap(FileManager.default.contents(atPath: file))
    bytes[2 * 4_096 + 40 + 500] ^= 0x01
    try bytes.write(to: URL(fileURLWithPath: file))
    let log = try SegmentLog(directory: dir, check: .lastEntry)
    XCTAssertEqual(log.entries.map(\.last), [1, 2])
    XCTAssertTrue(log.cutTail?.contains("checksum mismatch") ?? false, log.cutTail ?? "")
    XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int, 2 * 4_096)
  }

  func testSegmentsEndingByASeqAreDroppedButNeverTheNewest() throws {
    let log = try SegmentLog(directory: dir, segmentBytes: 8_192)
    for k in 0..<6 {  // two 4 KiB entries a segment: segments 1, 21, 41
      try log.append(first: Int64(k * 10 + 1), last: Int64(k * 10 + 10), parts: [payload(Int64(k), 3_000)])
      try log.sync()
    }
    XCTAssertEqual(log.segmentCount, 3)
    XCTAssertEqual(try log.dropSegments(endingBy: 19), 0, "segment 1 ends at 20")
    XCTAssertEqual(try log.dropSegments(endingBy: 35), 2, "segment 1 only: 21's ends at 40")
    XCTAssertEqual(log.entries.first?.first, 21)
    XCTAssertEqual(try log.dropSegments(endingBy: 1_000), 2, "segment 21, not the newest")
    XCTAssertEqual(log.segmentCount, 1)
    XCTAssertEqual(try segmentFiles(), ["00000000000000000041.seg"])
  }

  func testAForeignFileNameIsRefused() throws {
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/notes.seg", contents: Data()))
    XCTAssertThrowsError(try SegmentLog(directory: dir)) { error in
      XCTAssertTrue("\(error)".contains("notes.seg: not a segment file name"), "\(error)")
    }
  }

  func testChecksumSeesEveryByte() {
    let base = payload(7, 1_000)
    let sum = base.withUnsafeBytes { SegmentLog.checksum($0) }
    for i in stride(from: 0, to: base.count, by: 37) {
      var changed = base
      changed[i] ^= 1
      XCTAssertNotEqual(changed.withUnsafeBytes { SegmentLog.checksum($0) }, sum, "byte \(i)")
    }
    XCTAssertNotEqual(Array(base.prefix(999)).withUnsafeBytes { SegmentLog.checksum($0) }, sum)
  }
}
