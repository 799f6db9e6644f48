// Identifiers compared with input bytes on V1's hot path: every TRADE looks up five
// (two accounts, the security, two units), each a hash and, on a hash slot's match, a
// compare of the stored identifier's UTF-8 with the line's bytes. KernelAPI's
// `Ident.hasBytes` compares through the generic `elementsEqual` a byte at a time (its
// own symbol and the inlined iterator: ~8% of the apply's samples, perf, V1's fifth
// round); here eight bytes at a time. Same answer: equal counts and equal bytes.

import KernelAPI

extension Ident {
  /// True when this identifier's UTF-8 bytes are `bytes` (`hasBytes`, eight bytes at a
  /// time).
  @inline(__always) func v1HasBytes(_ bytes: UnsafeRawBufferPointer) -> Bool {
    let utf8 = text.utf8
    guard utf8.count == bytes.count else { return false }
    if let equal = utf8.withContiguousStorageIfAvailable({ v1SameBytes(UnsafeRawBufferPointer($0), bytes) }) {
      return equal
    }
    return utf8.elementsEqual(bytes)
  }
}

extension Ident {
  /// The first 16 UTF-8 bytes, zero-padded, as two big-endian words: `(a.high, a.low)
  /// < (b.high, b.low)` implies `a < b` (bytes, then length: a zero pad sorts as the
  /// smallest byte, and a prefix sorts first), and equal prefixes say nothing (ids
  /// longer than 16 bytes, or one id a zero-padded prefix of the other).
  var v1SortPrefix: (high: UInt64, low: UInt64) {
    var text = text
    return text.withUTF8 { u in
      var high: UInt64 = 0
      var low: UInt64 = 0
      for i in 0..<16 {
        let byte = UInt64(i < u.count ? u[i] : 0)
        if i < 8 { high |= byte << UInt64(56 - 8 * i) } else { low |= byte << UInt64(56 - 8 * (i - 8)) }
      }
      return (high, low)
    }
  }
}

/// True when `a` and `b` hold the same bytes (`a.count == b.count` required).
@inline(__always) func v1SameBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
  precondition(a.count == b.count, "compared byte runs have one length")
  let n = a.count
  var i = 0
  while i + 8 <= n {
    if a.loadUnaligned(fromByteOffset: i, as: UInt64.self)
      != b.loadUnaligned(fromByteOffset: i, as: UInt64.self)
    {
      return false
    }
    i += 8
  }
  if i + 4 <= n {
    if a.loadUnaligned(fromByteOffset: i, as: UInt32.self)
      != b.loadUnaligned(fromByteOffset: i, as: UInt32.self)
    {
      return false
    }
    i += 4
  }
  while i < n {
    if a[i] != b[i] { return false }
    i += 1
  }
  return true
}

extension FastIndex where Key == Ident {
  /// The value of the identifier whose UTF-8 bytes are `bytes` (`self[bytes:]`, its
  /// compare `v1HasBytes`).
  @inline(__always) func v1Find(bytes: UnsafeRawBufferPointer) -> Int32? {
    v1Find(hash: Ident.fastHash(of: bytes), bytes: bytes)
  }

  /// `v1Find(bytes:)` with the bytes' `Ident.fastHash` already taken (its slot
  /// prefetched by then, in the trade pipeline and its resolver).
  @inline(__always) func v1Find(hash: UInt64, bytes: UnsafeRawBufferPointer) -> Int32? {
    find(hash: hash) { $0.v1HasBytes(bytes) }
  }
}
