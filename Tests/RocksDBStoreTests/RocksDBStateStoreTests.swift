// RocksDBStateStore against a real RocksDB in a temporary directory per test.

import Foundation
import RocksDBStore
import TallyEngine
import XCTest

final class RocksDBStateStoreTests: XCTestCase {
  private var directory: URL!

  override func setUpWithError() throws {
    directory = FileManager.default.temporaryDirectory
      .appendingPathComponent("tally-rocksdb-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
  }

  override func tearDownWithError() throws {
    if let directory { try? FileManager.default.removeItem(at: directory) }
    directory = nil
  }

  private func dbPath(_ name: String = "db") -> String { directory.appendingPathComponent(name).path }

  private func open(_ name: String = "db", _ configure: (inout RocksDBOptions) -> Void = { _ in }) throws
    -> RocksDBStateStore
  {
    var options = RocksDBOptions()
    configure(&options)
    return try RocksDBStateStore(path: dbPath(name), options: options)
  }

  private func commit(_ store: RocksDBStateStore, sync: Bool = false, _ pairs: [([UInt8], [UInt8])]) throws {
    var batch = StoreBatch()
    for (key, value) in pairs { batch.put(key, value) }
    try store.commit(batch, sync: sync)
  }

  private func keys(_ store: RocksDBStateStore, prefix: [UInt8]) throws -> [[UInt8]] {
    var result: [[UInt8]] = []
    try store.scan(prefix: prefix) { key, _ in
      result.append(key)
      return true
    }
    return result
  }

  private func keys(_ store: RocksDBStateStore, from start: [UInt8], to end: [UInt8]?) throws -> [[UInt8]] {
    var result: [[UInt8]] = []
    try store.scan(from: start, to: end) { key, _ in
      result.append(key)
      return true
    }
    return result
  }

  // MARK: Point reads and batches

  func testPutGetMissing() throws {
    let store = try open()
    try commit(store, [([1, 2, 3], [9, 8, 7]), ([4], []), ([], [42])])
    XCTAssertEqual(try store.value(for: [1, 2, 3]), [9, 8, 7])
    XCTAssertEqual(try store.value(for: [4]), [], "an empty value is present, not missing")
    XCTAssertEqual(try store.value(for: []), [42], "the empty key is a key")
    XCTAssertNil(try store.value(for: [1, 2]))
    XCTAssertNil(try store.value(for: [1, 2, 3, 0]))
    XCTAssertNil(try store.value(for: [5]))
  }

  func testBatchAppliesDeletesThenPutsAtomically() throws {
    let store = try open()
    try commit(store, [([1], [1]), ([2], [2]), ([3], [3])])
    var batch = StoreBatch()
    batch.put([2], [20])  // also deleted below: the put wins
    batch.put([4], [40])
    batch.delete([1])
    batch.delete([2])
    batch.delete([9])  // deleting a missing key is fine
    try store.commit(batch, sync: false)
    XCTAssertNil(try store.value(for: [1]))
    XCTAssertEqual(try store.value(for: [2]), [20])
    XCTAssertEqual(try store.value(for: [3]), [3])
    XCTAssertEqual(try store.value(for: [4]), [40])
    XCTAssertEqual(try keys(store, prefix: []), [[2], [3], [4]])
  }

  func testStoreWorksThroughThePort() throws {
    let store: any StateStore = try open()
    var batch = StoreBatch()
    batch.put(Array("acct/1".utf8), Array("100".utf8))
    try store.commit(batch, sync: true)
    XCTAssertEqual(try store.value(for: Array("acct/1".utf8)), Array("100".utf8))
  }

  // MARK: Scans

  func testScanOrderAndPrefixBoundaries() throws {
    let store = try open()
    let all: [[UInt8]] = [
      [0x00, 0xFF], [0x01], [0x01, 0x00], [0x01, 0x01], [0x01, 0xFF], [0x01, 0xFF, 0x00],
      [0x01, 0xFF, 0xFF], [0x02], [0x02, 0x00], [0xFF], [0xFF, 0x00], [0xFF, 0xFF],
    ]
    // Committed in reverse order: the scan must sort by bytes, not by insertion.
    try commit(store, all.reversed().map { ($0, $0 + [0xEE]) })

    XCTAssertEqual(try keys(store, prefix: []), all)
    XCTAssertEqual(
      try keys(store, prefix: [0x01]),
      [[0x01], [0x01, 0x00], [0x01, 0x01], [0x01, 0xFF], [0x01, 0xFF, 0x00], [0x01, 0xFF, 0xFF]],
      "prefix [0x01] must not see [0x02...] keys")
    XCTAssertEqual(
      try keys(store, prefix: [0x01, 0xFF]), [[0x01, 0xFF], [0x01, 0xFF, 0x00], [0x01, 0xFF, 0xFF]])
    XCTAssertEqual(try keys(store, prefix: [0x01, 0xFF, 0xFF]), [[0x01, 0xFF, 0xFF]])
    XCTAssertEqual(try keys(store, prefix: [0xFF]), [[0xFF], [0xFF, 0x00], [0xFF, 0xFF]])
    XCTAssertEqual(try keys(store, prefix: [0xFF, 0xFF]), [[0xFF, 0xFF]])
    XCTAssertEqual(try keys(store, prefix: [0x00]), [[0x00, 0xFF]])
    XCTAssertEqual(try keys(store, prefix: [0x03]), [])
    XCTAssertEqual(try keys(store, prefix: [0x01, 0x00, 0x00]), [])

    var values: [[UInt8]] = []
    try store.scan(prefix: [0x02]) { key, value in
      XCTAssertEqual(value, key + [0xEE])
      values.append(value)
      return true
    }
    XCTAssertEqual(values, [[0x02, 0xEE], [0x02, 0x00, 0xEE]])
  }

  func testPrefixScansMatchTheInMemoryStore() throws {
    let store = try open()
    let reference = InMemoryStateStore()
    var generator = SplitMix64(seed: 7)
    let alphabet: [UInt8] = [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF]
    func randomKey() -> [UInt8] {
      (0..<Int(generator.next() % 4)).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }
    }
    for _ in 0..<5 {
      var batch = StoreBatch()
      for _ in 0..<200 { batch.put(randomKey(), [UInt8(truncatingIfNeeded: generator.next())]) }
      for _ in 0..<40 { batch.delete(randomKey()) }
      try store.commit(batch, sync: false)
      try reference.commit(batch, sync: false)
    }
    for _ in 0..<100 {
      let prefix = randomKey()
      var expected: [[UInt8]] = []
      try reference.scan(prefix: prefix) { key, value in
        expected.append(key + [0xAA] + value)
        return true
      }
      var actual: [[UInt8]] = []
      try store.scan(prefix: prefix) { key, value in
        actual.append(key + [0xAA] + value)
        return true
      }
      XCTAssertEqual(actual, expected, "prefix \(prefix)")
    }
  }

  func testScanStopsEarly() throws {
    let store = try open()
    try commit(store, (0..<10).map { ([7, UInt8($0)], [UInt8($0)]) })
    var seen: [[UInt8]] = []
    try store.scan(prefix: [7]) { key, _ in
      seen.append(key)
      return seen.count < 3
    }
    XCTAssertEqual(seen, [[7, 0], [7, 1], [7, 2]])

    struct Stop: Error {}
    XCTAssertThrowsError(try store.scan(prefix: [7]) { _, _ in throw Stop() }) { XCTAssertTrue($0 is Stop) }
    // The store is still usable after a body threw.
    XCTAssertEqual(try keys(store, prefix: [7]).count, 10)
  }

  func testScanBodyMayCommitAndSeesASnapshot() throws {
    let store = try open()
    try commit(store, [([1], [1]), ([2], [2])])
    var seen: [[UInt8]] = []
    try store.scan(prefix: []) { key, _ in
      seen.append(key)
      if key == [1] { try self.commit(store, [([3], [3])]) }
      return true
    }
    XCTAssertEqual(seen, [[1], [2]], "an iterator reads the state as of its creation")
    XCTAssertEqual(try store.value(for: [3]), [3])
  }

  func testRangeScan() throws {
    let store = try open()
    try commit(store, [[0x01], [0x01, 0x05], [0x02], [0x02, 0x00], [0x03], [0x04]].map { ($0, []) })
    XCTAssertEqual(try keys(store, from: [0x01, 0x05], to: [0x03]), [[0x01, 0x05], [0x02], [0x02, 0x00]])
    XCTAssertEqual(try keys(store, from: [0x01, 0x01], to: [0x02]), [[0x01, 0x05]], "end is exclusive")
    XCTAssertEqual(try keys(store, from: [0x02, 0x00], to: nil), [[0x02, 0x00], [0x03], [0x04]])
    XCTAssertEqual(try keys(store, from: [], to: [0x01, 0x05]), [[0x01]])
    XCTAssertEqual(try keys(store, from: [0x03], to: [0x03]), [], "empty range")
    XCTAssertEqual(try keys(store, from: [0x04], to: [0x01]), [], "reversed range")
    XCTAssertEqual(try keys(store, from: [0x05], to: nil), [])

    var seen = 0
    try store.scan(from: [], to: nil) { _, _ in
      seen += 1
      return seen < 2
    }
    XCTAssertEqual(seen, 2)
  }

  func testLastKey() throws {
    let store = try open()
    XCTAssertNil(try store.lastKey(prefix: []))
    XCTAssertNil(try store.lastKey(prefix: [0x4A]))

    // A journal: "J" + big-endian sequence number; other data around it.
    func journalKey(_ seq: UInt64) -> [UInt8] { [0x4A] + withUnsafeBytes(of: seq.bigEndian, Array.init) }
    try commit(store, [([0x49, 0xFF], []), ([0x4B], []), ([0x4A], [])])
    try commit(store, [1, 2, 255, 256, 70_000, 3].map { (journalKey($0), []) })
    XCTAssertEqual(try store.lastKey(prefix: [0x4A]), journalKey(70_000))
    XCTAssertEqual(try store.lastKey(prefix: journalKey(256)), journalKey(256))
    XCTAssertNil(try store.lastKey(prefix: journalKey(4)))
    XCTAssertEqual(try store.lastKey(prefix: []), [0x4B])
    XCTAssertNil(try store.lastKey(prefix: [0x00]))
    XCTAssertNil(try store.lastKey(prefix: [0x4C]))
    XCTAssertEqual(try store.lastKey(prefix: [0x49]), [0x49, 0xFF])

    // 0xFF edges: the successor of [0x01, 0xFF] is [0x02], which must not be returned.
    try commit(
      store, [([0x01, 0xFF], []), ([0x01, 0xFF, 0x10], []), ([0x02], []), ([0xFF, 0xFF, 0x01], [])])
    XCTAssertEqual(try store.lastKey(prefix: [0x01, 0xFF]), [0x01, 0xFF, 0x10])
    XCTAssertEqual(try store.lastKey(prefix: [0x01]), [0x01, 0xFF, 0x10])
    XCTAssertEqual(try store.lastKey(prefix: [0xFF]), [0xFF, 0xFF, 0x01])
    XCTAssertEqual(try store.lastKey(prefix: [0xFF, 0xFF]), [0xFF, 0xFF, 0x01])
    XCTAssertNil(try store.lastKey(prefix: [0xFF, 0xFF, 0xFF]))
    XCTAssertEqual(try store.lastKey(prefix: []), [0xFF, 0xFF, 0x01])

    var batch = StoreBatch()
    batch.delete(journalKey(70_000))
    try store.commit(batch, sync: false)
    XCTAssertEqual(try store.lastKey(prefix: [0x4A]), journalKey(256), "deleted keys are not last")
  }

  // MARK: Durability

  func testBulkLoadIsReadBackAfterReopenAndRefusesUnsortedKeys() throws {
    // load(sorted:) writes an SST file and moves it into the tree: no WAL, no memtable.
    var store: RocksDBStateStore? = try open()
    try commit(store!, sync: true, [([0x10, 0], [1]), ([0x50], [2])])
    let big = [UInt8](repeating: 0xAB, count: 3 << 20)
    try store!.load { put in
      for i in 0..<1_000 {
        let key: [UInt8] = [0x40, UInt8(i >> 8), UInt8(i & 0xFF)]
        let value = i == 500 ? big : [UInt8](repeating: UInt8(i & 0xFF), count: i % 40)
        try key.withUnsafeBytes { k in try value.withUnsafeBytes { v in try put(k, v) } }
      }
    }
    XCTAssertEqual(try store!.value(for: [0x40, 0x01, 0xF4]), big)
    try store!.load { _ in }  // nothing to load: no file
    let unsorted = errorText {
      try store!.load { put in
        for key: [UInt8] in [[0x60, 2], [0x60, 1]] {
          try key.withUnsafeBytes { k in try [UInt8]().withUnsafeBytes { v in try put(k, v) } }
        }
      }
    }
    XCTAssertNotNil(unsorted, "keys out of order must be refused")
    XCTAssertNil(try store!.value(for: [0x60, 2]), "a refused load adds nothing")
    store!.close()
    store = nil
    let reopened = try open()
    defer { reopened.close() }
    var loaded: [[UInt8]] = []
    try reopened.scan(prefix: [0x40]) { key, value in
      let i = Int(key[1]) << 8 | Int(key[2])
      XCTAssertEqual(value, i == 500 ? big : [UInt8](repeating: UInt8(i & 0xFF), count: i % 40))
      loaded.append(key)
      return true
    }
    XCTAssertEqual(loaded.count, 1_000)
    XCTAssertEqual(try reopened.value(for: [0x10, 0]), [1], "committed keys around the load are kept")
    XCTAssertEqual(try reopened.value(for: [0x50]), [2])
    XCTAssertFalse(
      try FileManager.default.contentsOfDirectory(atPath: dbPath()).contains { $0.hasPrefix("tally-load-") })
  }

  private func errorText(_ body: () throws -> Void) -> String? {
    do {
      try body()
      return nil
    } catch { return "\(error)" }
  }

  func testPersistsAcrossCloseAndReopen() throws {
    do {
      let store = try open()
      try commit(store, [([1], [10]), ([2], [20])])
      var batch = StoreBatch()
      batch.delete([1])
      batch.put([3], [30])
      try store.commit(batch, sync: false)
      store.close()
      store.close()  // idempotent
    }
    let reopened = try open()
    XCTAssertNil(try reopened.value(for: [1]))
    XCTAssertEqual(try reopened.value(for: [2]), [20])
    XCTAssertEqual(try reopened.value(for: [3]), [30])
    reopened.close()
    // deinit closes too: a store dropped without close() releases the lock.
    do { _ = try open() }
    XCTAssertEqual(try open().value(for: [2]), [20])
  }

  func testSyncCommit() throws {
    let store = try open()
    try commit(store, sync: true, [([1], [1])])
    XCTAssertEqual(try store.value(for: [1]), [1])
    try commit(store, sync: false, [([2], [2])])
    try store.commit(StoreBatch(), sync: true)  // a barrier for the unsynced commit
    try store.commit(StoreBatch(), sync: false)
    store.close()
    let reopened = try open()
    XCTAssertEqual(try reopened.value(for: [1]), [1])
    XCTAssertEqual(try reopened.value(for: [2]), [2])
  }

  func testSyncCommitWithoutWALFlushes() throws {
    let store = try open { $0.disableWAL = true }
    try commit(store, sync: true, [([1], [1])])
    // The sync commit flushed the memtable: the data is in an SST file, no WAL needed.
    XCTAssertEqual(store.property("rocksdb.num-immutable-mem-table"), "0")
    XCTAssertEqual(
      store.property("rocksdb.cur-size-active-mem-table").flatMap(Int.init).map { $0 < 4096 }, true)
    XCTAssertEqual(store.property("rocksdb.num-files-at-level0").flatMap(Int.init).map { $0 >= 1 }, true)
    try commit(store, sync: false, [([2], [2])])
    try store.commit(StoreBatch(), sync: true)
    store.close()
    let reopened = try open()
    XCTAssertEqual(try reopened.value(for: [1]), [1])
    XCTAssertEqual(try reopened.value(for: [2]), [2])
  }

  func testCheckpointOpensWithTheData() throws {
    let store = try open()
    try commit(store, [([1], [1]), ([2], [2])])  // unsynced, still in the memtable
    let copyPath = dbPath("checkpoint")
    try store.checkpoint(to: copyPath)
    try commit(store, [([3], [3])])
    XCTAssertThrowsError(try store.checkpoint(to: copyPath), "the target must not exist") {
      XCTAssertTrue(String(describing: $0).contains(copyPath), "\($0)")
    }

    let copy = try RocksDBStateStore(path: copyPath)
    XCTAssertEqual(try copy.value(for: [1]), [1])
    XCTAssertEqual(try copy.value(for: [2]), [2])
    XCTAssertNil(try copy.value(for: [3]), "the copy is the state at checkpoint time")
    try commit(copy, [([4], [4])])
    XCTAssertNil(try store.value(for: [4]), "the copy is independent")
  }

  // MARK: Opening

  func testOpeningUnderARegularFileThrows() throws {
    let file = directory.appendingPathComponent("plain-file")
    XCTAssertTrue(FileManager.default.createFile(atPath: file.path, contents: Data("x".utf8)))
    for path in [file.path, file.appendingPathComponent("db").path] {
      XCTAssertThrowsError(try RocksDBStateStore(path: path)) { error in
        XCTAssertTrue(error is StoreError, "\(error)")
        XCTAssertTrue(String(describing: error).contains(path), "\(error)")
      }
    }
  }

  func testOpeningUnderAMissingParentThrows() throws {
    let path = dbPath("missing-parent") + "/db"
    XCTAssertThrowsError(try RocksDBStateStore(path: path)) { error in
      XCTAssertTrue(String(describing: error).contains(path), "\(error)")
    }
  }

  func testOpeningMissingDatabaseWithoutCreateThrows() throws {
    let path = dbPath("absent")
    XCTAssertThrowsError(try open("absent") { $0.createIfMissing = false }) { error in
      XCTAssertTrue(String(describing: error).contains(path), "\(error)")
    }
  }

  func testOpeningTheSamePathTwiceThrows() throws {
    let store = try open()
    XCTAssertThrowsError(try open()) { error in
      XCTAssertTrue(error is StoreError)
      let text = String(describing: error)
      XCTAssertTrue(text.contains(dbPath()), text)
      XCTAssertTrue(text.lowercased().contains("lock"), text)
    }
    try commit(store, [([1], [1])])  // the first store is unharmed
    store.close()
    XCTAssertEqual(try open().value(for: [1]), [1])
  }

  /// Another process (RocksDB's own `ldb`, holding the store open in its REPL) has the lock.
  func testOpeningADatabaseLockedByAnotherProcessThrows() throws {
    guard let ldb = Self.ldbURL else { throw XCTSkip("ldb (rocksdb-tools) is not installed") }
    guard FileManager.default.fileExists(atPath: "/proc/locks") else { throw XCTSkip("needs /proc/locks") }
    try open().close()
    let lockFile = dbPath() + "/LOCK"
    let inode = try XCTUnwrap(
      FileManager.default.attributesOfItem(atPath: lockFile)[.systemFileNumber] as? NSNumber)

    let process = Process()
    process.executableURL = ldb
    process.arguments = ["--db=\(dbPath())", "query"]
    let input = Pipe()
    process.standardInput = input
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    defer {
      try? input.fileHandleForWriting.close()
      if process.isRunning { process.terminate() }
      process.waitUntilExit()
    }
    // Wait until ldb holds the POSIX lock on LOCK (visible in /proc/locks by inode).
    let deadline = Date().addingTimeInterval(20)
    while !(try String(contentsOfFile: "/proc/locks", encoding: .utf8)).contains(":\(inode.uint64Value) ") {
      guard Date() < deadline, process.isRunning else { return XCTFail("ldb never locked the store") }
      Thread.sleep(forTimeInterval: 0.05)
    }
    XCTAssertThrowsError(try open()) { error in
      let text = String(describing: error)
      XCTAssertTrue(text.contains(dbPath()), text)
      XCTAssertTrue(text.contains("LOCK"), text)
    }
  }

  func testEveryCompressionOpensOnThisBuild() throws {
    for compression in RocksDBOptions.Compression.allCases {
      let name = "compression-\(compression)"
      do {
        let store = try open(name) { $0.compression = compression }
        XCTAssertEqual(store.compression, compression, "this RocksDB build should link \(compression)")
        try commit(store, (0..<1000).map { (Array("key-\($0)".utf8), Array(repeating: 0x61, count: 100)) })
        try store.flush()
      }
      // Reopening with another codec is fine: compression is per SST file.
      let store = try open(name) { $0.compression = .none }
      XCTAssertEqual(try store.value(for: Array("key-999".utf8)), Array(repeating: 0x61, count: 100))
    }
  }

  // MARK: Size and maintenance

  func testLargeBatchCommitsAndReadsBack() throws {
    let store = try open { $0.writeBufferBytes = 4 << 20 }
    let count = 100_000
    func key(_ i: Int) -> [UInt8] { [0x10] + withUnsafeBytes(of: UInt32(i).bigEndian, Array.init) }
    func value(_ i: Int) -> [UInt8] { withUnsafeBytes(of: UInt64(i) &* 0x9E37_79B9_7F4A_7C15, Array.init) }
    var batch = StoreBatch()
    for i in 0..<count { batch.put(key(i), value(i)) }
    try store.commit(batch, sync: true)

    var expected = 0
    try store.scan(prefix: [0x10]) { k, v in
      XCTAssertEqual(k, key(expected))
      XCTAssertEqual(v, value(expected))
      expected += 1
      return true
    }
    XCTAssertEqual(expected, count)
    for i in [0, 1, 4_095, 65_536, 99_999] { XCTAssertEqual(try store.value(for: key(i)), value(i)) }
    XCTAssertNil(try store.value(for: key(count)))
    XCTAssertEqual(try store.lastKey(prefix: [0x10]), key(count - 1))
    store.close()
    XCTAssertEqual(try open().value(for: key(77_777)), value(77_777))
  }

  func testPropertiesFlushAndCompaction() throws {
    let store = try open()
    XCTAssertNotNil(store.property("rocksdb.stats"))
    XCTAssertNil(store.property("rocksdb.no-such-property"))
    try commit(store, (0..<100).map { ([UInt8($0)], [UInt8($0)]) })
    var batch = StoreBatch()
    for i in 0..<50 { batch.delete([UInt8(i)]) }
    try store.commit(batch, sync: false)
    try store.flush()
    XCTAssertEqual(store.property("rocksdb.num-files-at-level0"), "1")
    store.compactAll()
    XCTAssertEqual(store.property("rocksdb.num-files-at-level0"), "0")
    // estimate-num-keys is only an estimate (0 right after this compaction): not asserted.
    XCTAssertNotNil(store.property("rocksdb.estimate-num-keys").flatMap(Int.init))
    XCTAssertEqual(try keys(store, prefix: []).count, 50)
  }

  /// `backgroundWriteBytesPerSecond` paces a flush: 2 MiB of memtable written at 1 MiB/s
  /// takes more than a second (a lower bound only: a slow machine cannot fail it), and
  /// RocksDB's LOG names the limiter; a store without the setting has none.
  func testBackgroundWriteRateLimitPacesAFlush() throws {
    func fill(_ store: RocksDBStateStore) throws {
      // Incompressible values (xorshift bytes), so that no codec shrinks the flush.
      var x: UInt64 = 0x9E37_79B9_7F4A_7C15
      for chunk in 0..<32 {
        try commit(
          store,
          (0..<16).map { i in
            var value = [UInt8](repeating: 0, count: 4_096)
            for j in stride(from: 0, to: value.count, by: 8) {
              x ^= x << 13
              x ^= x >> 7
              x ^= x << 17
              withUnsafeBytes(of: x) { value.replaceSubrange(j..<(j + 8), with: $0) }
            }
            return ([UInt8(chunk), UInt8(i)], value)
          })
      }
    }
    func logMentionsALimiter(_ name: String) throws -> Bool {
      let log = try String(contentsOfFile: dbPath(name) + "/LOG", encoding: .utf8)
      let line = try XCTUnwrap(log.split(separator: "\n").first { $0.contains("Options.rate_limiter:") })
      return !line.contains("(nil)")
    }
    let paced = try open("paced") {
      $0.backgroundWriteBytesPerSecond = 1 << 20
      $0.compression = .none
    }
    try fill(paced)
    let clock = ContinuousClock()
    let started = clock.now
    try paced.flush()
    let seconds = (clock.now - started).components.seconds
    XCTAssertGreaterThanOrEqual(seconds, 1, "2 MiB flushed at 1 MiB/s in under a second")
    XCTAssertEqual(paced.property("rocksdb.num-files-at-level0"), "1")
    XCTAssertEqual(try keys(paced, prefix: []).count, 512)
    XCTAssertTrue(try logMentionsALimiter("paced"))
    paced.close()
    let unpaced = try open("unpaced") { $0.compression = .none }
    try fill(unpaced)
    try unpaced.flush()
    XCTAssertFalse(try logMentionsALimiter("unpaced"))
    unpaced.close()
  }

  /// A store written faster than its paced flushes: RocksDB stops the writes while a
  /// full memtable waits for the one ahead of it (two memtables at most), and counts
  /// the time in its DB stats, which `cumulativeWriteStallMilliseconds` reads. A fresh
  /// store reads 0; the stats line is parsed as hours, minutes and seconds, to the
  /// millisecond, and anything else in its place is refused.
  func testCumulativeWriteStallCountsStopsBehindAPacedFlush() throws {
    func parsed(_ clock: String) -> Int64? {
      RocksDBStateStore.cumulativeStallMilliseconds(
        dbStats: "x\nCumulative stall: \(clock) H:M:S, 2.0 percent\n")
    }
    XCTAssertEqual(parsed("01:02:3.250"), 3_723_250)
    XCTAssertEqual(parsed("00:00:0.000"), 0)
    XCTAssertEqual(parsed("00:00:12.5"), 12_500)
    XCTAssertEqual(parsed("00:00:07"), 7_000)
    for bad in [
      "00:00", "00:00:1.2.3", "aa:00:0.000", "00:00:0.0x0", "00:-1:0.000", "00:60:0.000",
      "99999999999999999:00:0.000",
    ] {
      XCTAssertNil(parsed(bad), bad)
    }
    XCTAssertNil(RocksDBStateStore.cumulativeStallMilliseconds(dbStats: "Uptime(secs): 1.0 total"))
    let store = try open("stalled") {
      $0.backgroundWriteBytesPerSecond = 1 << 20
      $0.writeBufferBytes = 256 << 10
      $0.compression = .none
    }
    XCTAssertEqual(store.cumulativeWriteStallMilliseconds, 0)
    // 1.5 MiB in 48 KiB commits: ~6 memtables, each flush a quarter of a second.
    let value = [UInt8](repeating: 0x5A, count: 48 << 10)
    for i in 0..<32 { try commit(store, [([UInt8(i)], value)]) }
    let stalled = try XCTUnwrap(store.cumulativeWriteStallMilliseconds)
    XCTAssertGreaterThan(stalled, 100, "the writes waited for the paced flushes")
    XCTAssertEqual(try keys(store, prefix: []).count, 32)
    store.close()
  }

  // MARK: ldb

  static let ldbURL: URL? = ["/usr/bin/ldb", "/usr/local/bin/ldb"]
    .first { FileManager.default.isExecutableFile(atPath: $0) }
    .map { URL(fileURLWithPath: $0) }

  func testLdbScanCommandReadsTheStore() throws {
    guard Self.ldbURL != nil else { throw XCTSkip("ldb (rocksdb-tools) is not installed") }
    let name = "it's a store"  // quoting matters
    let store = try open(name)
    try commit(store, [([0x01, 0x02], [0x0A, 0x0B]), ([0xFF], [])])
    store.close()

    let command = RocksDBStateStore.ldbScanCommand(path: dbPath(name))
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", command]
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    XCTAssertEqual(process.terminationStatus, 0, text)
    XCTAssertEqual(text, "0x0102 : 0x0A0B\n0xFF : 0x\n", command)
  }
}

/// A small deterministic generator, so the randomized test is reproducible.
private struct SplitMix64 {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
