// The segment log's checksum, fed in pieces (`StreamChecksum`, which kernel images use
// for their chunks too): the same value whatever the pieces, the same value as the
// one-shot loop segment files were written with before it (copied below as the
// reference), and another value when any byte differs.
import SegmentLog
import XCTest

final class StreamChecksumTests: XCTestCase {
  /// The one-shot checksum as SegmentLog computed it before `StreamChecksum` (files
  /// written then must still verify).
  private func reference(_ bytes: [UInt8]) -> UInt64 {
    func rotated(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }
    let k: UInt64 = 0x9E37_79B9_7F4A_7C15
    var lanes: [UInt64] = [1, 2, 3, 4]
    let n = bytes.count
    var i = 0
    func word(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) } }
    while i + 32 <= n {
      for l in 0..<4 { lanes[l] = rotated((lanes[l] ^ word(i + 8 * l)) &* k, 29) }
      i += 32
    }
    var h = UInt64(n) &* k
    for lane in lanes { h = rotated((h ^ lane) &* k, 31) }
    while i < n {
      h = rotated((h ^ UInt64(bytes[i])) &* k, 23)
      i += 1
    }
    return h ^ (h >> 29)
  }

  private func sum(_ bytes: [UInt8], pieces: [Int]) -> UInt64 {
    var c = StreamChecksum()
    bytes.withUnsafeBytes { raw in
      var at = 0
      for p in pieces where at < raw.count {
        let end = min(at + p, raw.count)
        c.update(UnsafeRawBufferPointer(rebasing: raw[at..<end]))
        at = end
      }
      if at < raw.count { c.update(UnsafeRawBufferPointer(rebasing: raw[at...])) }
    }
    return c.value
  }

  func testPiecesGiveTheOneShotValueAndEveryFlippedByteChangesIt() {
    var random = SystemRandomNumberGenerator()
    for length in [0, 1, 31, 32, 33, 63, 64, 100, 10_000] {
      let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
      let whole = sum(bytes, pieces: [])
      XCTAssertEqual(whole, reference(bytes), "length \(length)")
      for pieces in [[1], [7, 33, 1, 64], [31, 32, 33], [4096]] {
        XCTAssertEqual(
          sum(bytes, pieces: Array(repeating: pieces, count: 400).flatMap { $0 }), whole,
          "\(length): \(pieces)")
      }
      for i in stride(from: 0, to: length, by: 37) {
        var other = bytes
        other[i] ^= 1 << UInt8(i % 8)
        XCTAssertNotEqual(sum(other, pieces: []), whole, "length \(length), byte \(i) flipped")
      }
    }
    // Zeros of two lengths differ (the length is in it).
    XCTAssertNotEqual(
      sum([UInt8](repeating: 0, count: 64), pieces: []), sum([UInt8](repeating: 0, count: 96), pieces: []))
  }
}
