// The voter's stream records on disk: a voter folder from before the segment log (its
// records were RocksDB values) is moved into the log when it opens, once, and the
// stream goes on from where it was.
import Foundation
import KernelAPI
import RocksDBStore
import SegmentLog
import TallyEngine
import XCTest

@testable import TallyCluster

final class VotedStreamStoreTests: XCTestCase {
  func testALegacyVoterFolderIsMovedIntoTheSegmentLog() throws {
    let dir = FileManager.default.temporaryDirectory.path + "/tally-voted-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let batches: [(Int64, Int64, [UInt8], [UInt8])] = [
      (1, 10, [UInt8](repeating: 0xA1, count: EffectDigest.byteCount), Array("first records".utf8)),
      (11, 11, [UInt8](repeating: 0xB2, count: EffectDigest.byteCount), []),
      (12, 40, [UInt8](repeating: 0xC3, count: EffectDigest.byteCount), [UInt8](repeating: 7, count: 9_000)),
    ]
    do {
      // What the voter wrote before: key 0x31 + first (big-endian), value
      // first:i64 last:i64 digest records; the next seq under "streamed".
      let store = try RocksDBStateStore(path: dir + "/voted")
      var write = StoreBatch()
      for (first, last, digest, records) in batches {
        var w = ByteWriter()
        w.i64(first)
        w.i64(last)
        w.raw(digest)
        w.raw(records)
        let key =
          [VotedStream.legacyPrefix]
          + (0..<8).map { UInt8(truncatingIfNeeded: UInt64(first) >> UInt64(56 - 8 * $0)) }
        write.put(key, w.bytes)
      }
      write.put(VotedStream.legacyNextKey, Int64(41).leBytes)
      try store.commit(write, sync: true)
    }
    for _ in 0..<2 {  // the second open finds nothing left to move
      let store = try RocksDBStateStore(path: dir + "/voted")
      let stream = try VotedStream(store: store, directory: dir + "/voted-stream")
      XCTAssertEqual(stream.next, 41)
      XCTAssertEqual(stream.log.entries.map { [$0.first, $0.last] }, [[1, 10], [11, 11], [12, 40]])
      for (i, b) in batches.enumerated() { XCTAssertEqual(try stream.log.read(i), b.2 + b.3) }
      var left = 0
      try store.scan(prefix: [VotedStream.legacyPrefix]) { _, _ in
        left += 1
        return true
      }
      XCTAssertEqual(left, 0, "the moved records leave RocksDB")
      XCTAssertNil(try store.value(for: VotedStream.legacyNextKey))
    }
  }
}
