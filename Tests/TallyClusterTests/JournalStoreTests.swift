// The sequencer's journal on a real disk: the batches in a segment log, the dedupe
// records and `last_seq` in RocksDB, driven through the real `SequencerCore`.
import Foundation
import KernelAPI
import RocksDBStore
import SegmentLog
import TallyCluster
import TallyEngine
import XCTest

final class JournalStoreTests: XCTestCase {
  var folder = ""

  override func setUpWithError() throws {
    folder = FileManager.default.temporaryDirectory.path + "/tally-journal-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
  }

  override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

  func batch(_ client: String, _ number: Int64, _ lines: [String]) -> SequencerCore.ClientBatch {
    SequencerCore.ClientBatch(
      peer: [7],
      batch: IngestBatch(
        client: Array(client.utf8), batchNumber: number, eventLines: lines.map { Array($0.utf8) }),
      numberFrame: Array(String(number).utf8))
  }

  func open() throws -> JournalStore { try JournalStore(folder: folder, options: RocksDBOptions()) }

  /// Ingests `batches` as one group and performs its write as the sequencer does.
  @discardableResult
  func journal(_ core: inout SequencerCore, _ store: any StateStore, _ batches: [SequencerCore.ClientBatch])
    throws -> [ClosedRange<Int64>]
  {
    var acks: [ClosedRange<Int64>] = []
    var todo = try core.ingest(batches)
    while !todo.isEmpty {
      let a = todo.removeFirst()
      switch a {
      case .writeJournal(let write, _, _):
        try store.commit(write, sync: true)
        todo += try core.journalWritten(nowMs: 0)
      case .ack(_, _, let f, let l): acks.append(f...l)
      default: break
      }
    }
    return acks
  }

  /// Every batch the core serves from seq 1 on, decoded (first, last, lines).
  func everything(_ core: SequencerCore) throws -> [[String]] {
    var out: [[String]] = []
    var next: Int64 = 1
    while next <= core.lastSeq {
      let encoded = try XCTUnwrap(try core.batches(from: next, max: 4), "a batch starts at \(next)")
      for e in encoded {
        var r = ByteReader(e)
        let b = try JournalBatch(decoding: &r)
        out.append(["\(b.first)...\(b.last)"] + b.lines.map { String(decoding: $0, as: UTF8.self) })
        next = b.last + 1
      }
    }
    return out
  }

  func segmentFiles() throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: folder + "/journal-log").filter {
      $0.hasSuffix(".seg")
    }
    .sorted()
  }

  func testBatchesLiveInTheSegmentLogAndSurviveAReopenWithTheirDedupeRecords() throws {
    var expected: [[String]] = []
    do {
      let store = try open()
      var core = try SequencerCore(store: store, fetchBatchesMax: 8, dedupeCachedMax: 2)
      XCTAssertEqual(
        try journal(&core, store, [batch("c", 1, ["a", "b"]), batch("c", 2, []), batch("c", 3, ["c"])]),
        [1...2, 0...0, 3...3])
      XCTAssertEqual(
        try journal(&core, store, [batch("c", 4, [])]), [0...0], "only an empty batch: RocksDB alone")
      for n in 5...12 { try journal(&core, store, [batch("d", Int64(n), ["x\(n)", "y\(n)"])]) }
      XCTAssertEqual(core.lastSeq, 19)
      expected = try everything(core)
      XCTAssertEqual(expected.count, 10)
      XCTAssertEqual(expected.first, ["1...2", "a", "b"])
    }
    XCTAssertFalse(try segmentFiles().isEmpty, "the batches are in segment files")
    // RocksDB holds no batch, only the small records.
    let index = try RocksDBStateStore(path: folder + "/journal")
    var batchKeys = 0
    try index.scan(prefix: [0x10]) { _, _ in
      batchKeys += 1
      return true
    }
    XCTAssertEqual(batchKeys, 0)
    XCTAssertEqual(try index.value(for: [0x00] + Array("last_seq".utf8)), [19, 0, 0, 0, 0, 0, 0, 0])
    index.close()

    let store = try open()
    var again = try SequencerCore(store: store, fetchBatchesMax: 8, dedupeCachedMax: 2)
    XCTAssertEqual(again.lastSeq, 19)
    XCTAssertEqual(again.batchCount, 10)
    XCTAssertEqual(try everything(again), expected)
    // Retries long out of the (empty) cache: their original ranges, nothing journaled.
    XCTAssertEqual(
      try journal(&again, store, [batch("c", 1, ["a", "b"]), batch("c", 2, []), batch("c", 4, [])]),
      [1...2, 0...0, 0...0])
    XCTAssertEqual(again.lastSeq, 19)
    XCTAssertEqual(try journal(&again, store, [batch("c", 13, ["z"])]), [20...20])
    XCTAssertNil(try again.batches(from: 2, max: 1), "seq 2 is inside a batch, not at its start")
  }

  func testAnIndexWriteLostAfterTheLogsSyncIsWrittenAgainAtTheOpen() throws {
    do {
      let store = try open()
      var core = try SequencerCore(store: store, fetchBatchesMax: 8)
      try journal(&core, store, [batch("c", 1, ["a"])])
      try journal(&core, store, [batch("c", 2, ["b", "c"]), batch("c", 3, []), batch("c", 4, ["d"])])
    }
    // The crash window: the log synced, RocksDB's unsynced write of the dedupe records
    // and `last_seq` lost.
    let index = try RocksDBStateStore(path: folder + "/journal")
    var lose = StoreBatch()
    for number: UInt8 in 2...4 { lose.delete([0x11] + Array("c".utf8) + [0, 0, 0, 0, 0, 0, 0, 0, number]) }
    lose.put([0x00] + Array("last_seq".utf8), [1, 0, 0, 0, 0, 0, 0, 0])
    try index.commit(lose, sync: true)
    index.close()

    let store = try open()
    var core = try SequencerCore(store: store, fetchBatchesMax: 8, dedupeCachedMax: 1)
    XCTAssertEqual(core.lastSeq, 4, "last_seq from the log")
    // The retries are exactly once: the records came back from the log's entries.
    XCTAssertEqual(
      try journal(&core, store, [batch("c", 2, ["b", "c"]), batch("c", 3, []), batch("c", 4, ["d"])]),
      [2...3, 0...0, 4...4])
    XCTAssertEqual(core.lastSeq, 4)
  }

  func testATornLastEntryIsCutAndALostLogIsRefused() throws {
    do {
      let store = try open()
      var core = try SequencerCore(store: store, fetchBatchesMax: 8)
      try journal(&core, store, [batch("c", 1, ["a", "b"])])
    }
    // A write that never finished (so was never acked): half an entry after the last.
    let segment = folder + "/journal-log/" + (try XCTUnwrap(try segmentFiles().last))
    let handle = try XCTUnwrap(FileHandle(forWritingAtPath: segment))
    handle.seekToEndOfFile()
    handle.write(Data([0x54, 0x53, 0x47, 0x31, 0, 0, 0, 0] + [UInt8](repeating: 0xAB, count: 100)))
    handle.closeFile()
    do {
      let store = try open()
      XCTAssertTrue(store.cutTail?.contains("runs past the file") ?? false, store.cutTail ?? "nothing cut")
      let core = try SequencerCore(store: store, fetchBatchesMax: 8)
      XCTAssertEqual(core.lastSeq, 2)
      XCTAssertEqual(try everything(core), [["1...2", "a", "b"]])
    }
    // The log's files gone while RocksDB says seq 2 was journaled: refused, by name.
    try FileManager.default.removeItem(atPath: folder + "/journal-log")
    XCTAssertThrowsError(try open()) { error in
      let text = "\(error)"
      XCTAssertTrue(text.contains("ends at seq 2"), text)
      XCTAssertTrue(text.contains("journal-log"), text)
    }
  }

  func testALegacyJournalWithAGapIsRefusedByName() throws {
    let legacy = try RocksDBStateStore(path: folder + "/journal")
    var write = StoreBatch()
    for (first, last) in [(Int64(1), Int64(2)), (5, 6)] {  // seqs 3...4 missing
      let key: [UInt8] =
        [0x10] + (0..<8).map { UInt8(truncatingIfNeeded: UInt64(first) >> UInt64(56 - 8 * $0)) }
      write.put(
        key, JournalBatch(first: first, last: last, lines: [Array("a".utf8), Array("b".utf8)]).encoded)
    }
    try legacy.commit(write, sync: true)
    legacy.close()
    XCTAssertThrowsError(try open()) { error in
      let text = "\(error)"
      XCTAssertTrue(text.contains("seq 5...6 does not follow seq 2"), text)
      XCTAssertTrue(text.contains("journal"), text)
    }
  }

  func testAJournalKeptInRocksDBIsMovedIntoTheLogOnce() throws {
    // The layout before the log: the core writing straight into RocksDB.
    var expected: [[String]] = []
    do {
      let legacy = try RocksDBStateStore(path: folder + "/journal")
      var core = try SequencerCore(store: legacy, fetchBatchesMax: 8)
      try journal(&core, legacy, [batch("c", 1, ["a", "b"]), batch("c", 2, ["c"])])
      try journal(&core, legacy, [batch("c", 3, ["d"])])
      expected = try everything(core)
      legacy.close()
    }
    XCTAssertEqual(expected.count, 3)
    for _ in 0..<2 {
      let store = try open()
      var core = try SequencerCore(store: store, fetchBatchesMax: 8)
      XCTAssertEqual(core.lastSeq, 4)
      XCTAssertEqual(core.batchCount, 3)
      XCTAssertEqual(try everything(core), expected)
      XCTAssertEqual(try journal(&core, store, [batch("c", 2, ["c"])]), [3...3], "dedupe records kept")
    }
    let store = try open()
    var core = try SequencerCore(store: store, fetchBatchesMax: 8)
    XCTAssertEqual(try journal(&core, store, [batch("c", 4, ["e"])]), [5...5])
    XCTAssertEqual(try everything(core).last, ["5...5", "e"])
  }
}
