import Foundation
import XCTest

@testable import TallyEngine

/// SHA-256 from swift-crypto: the standard vectors, byte-identical to the hand-written
/// implementation it replaced, and both measured (docs/PERFORMANCE.md).
final class DigestTests: XCTestCase {
  func testStandardVectors() {
    XCTAssertEqual(
      Digests.sha256([]).hexString, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    XCTAssertEqual(
      Digests.sha256(Array("abc".utf8)).hexString,
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    XCTAssertEqual(
      Digests.sha256(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)).hexString,
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    XCTAssertEqual(
      Digests.sha256([UInt8](repeating: 0x61, count: 1_000_000)).hexString,
      "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
  }

  /// Every length across the padding boundaries, pseudo-random bytes from a fixed seed.
  func testSameBytesAsTheHandWrittenImplementation() {
    var x: UInt64 = 0x9E37_79B9_7F4A_7C15
    for length in 0...300 {
      var bytes: [UInt8] = []
      for _ in 0..<length {
        x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        bytes.append(UInt8(truncatingIfNeeded: x >> 56))
      }
      XCTAssertEqual(Digests.sha256(bytes), HandWrittenSHA256.hash(bytes), "length \(length)")
    }
  }

  /// Both implementations on the engine's two shapes of input: the 32-byte-ish state
  /// checksum (one digest per commit) and a large output bundle. Prints the figures.
  func testBenchmarkLibraryAgainstHandWritten() {
    func measure(_ label: String, _ input: [UInt8], _ count: Int, _ f: ([UInt8]) -> [UInt8]) -> Double {
      var sink = 0
      let clock = ContinuousClock()
      let start = clock.now
      for _ in 0..<count { sink &+= f(input).count }
      let seconds = (clock.now - start).seconds
      XCTAssertEqual(sink, 32 * count)
      let perSecond = Double(count) / seconds
      print(
        String(
          format: "sha256 %@ %d bytes: %.0f hashes/s, %.1f MB/s", label, input.count, perSecond,
          perSecond * Double(input.count) / 1e6))
      return perSecond
    }
    let small = [UInt8](repeating: 7, count: 40)
    let large = [UInt8](repeating: 7, count: 4 << 20)
    XCTAssertEqual(Digests.sha256(small), HandWrittenSHA256.hash(small))
    XCTAssertEqual(Digests.sha256(large), HandWrittenSHA256.hash(large))
    let libSmall = measure("swift-crypto", small, 100_000, Digests.sha256)
    let ownSmall = measure("hand-written", small, 100_000, HandWrittenSHA256.hash)
    let libLarge = measure("swift-crypto", large, 4, Digests.sha256)
    let ownLarge = measure("hand-written", large, 2, HandWrittenSHA256.hash)
    print(
      String(
        format: "sha256 library/hand-written speed: %.2fx (40 bytes), %.2fx (4 MiB)", libSmall / ownSmall,
        libLarge / ownLarge))
  }
}

extension Duration {
  fileprivate var seconds: Double {
    Double(components.seconds) + Double(components.attoseconds) / 1e18
  }
}
