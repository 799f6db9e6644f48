// SHA-256 for state and output digests, from swift-crypto (BoringSSL's
// implementation on Linux). The hand-written one it replaced is kept in the tests as
// the reference: same bytes, and docs/PERFORMANCE.md has both measured.
import Crypto
import Foundation

public enum Digests {
  /// SHA-256 of `bytes`: 32 bytes.
  public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
    Array(Crypto.SHA256.hash(data: bytes))
  }
}

/// An incremental SHA-256 (a value: a copy can be finalized while the original goes on).
public struct SHA256Stream {
  var hasher = Crypto.SHA256()
  public init() {}
  public mutating func update(_ bytes: [UInt8]) { hasher.update(data: bytes) }
  public mutating func update(_ bytes: ArraySlice<UInt8>) { hasher.update(data: bytes) }
  public mutating func update(_ bytes: UnsafeRawBufferPointer) { hasher.update(bufferPointer: bytes) }
  public func finalize() -> [UInt8] { Array(hasher.finalize()) }
}

extension Array where Element == UInt8 {
  /// Lower-case hexadecimal.
  public var hexString: String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(count * 2)
    for b in self {
      out.append(digits[Int(b >> 4)])
      out.append(digits[Int(b & 15)])
    }
    return String(decoding: out, as: UTF8.self)
  }
}
