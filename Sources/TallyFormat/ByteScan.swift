// Finding and counting line feeds eight bytes at a time. Every event file and reference
// file is split into lines, and the 1M-trade day's 76 MB of events were scanned a byte
// at a time twice in a run (the capacity count, then the split) and twice more in a
// resume (there only to count past the lines already applied). A word holds eight
// bytes; a byte of it equals LF exactly when the same byte of `word ^ LF×8` is zero,
// and `zeroBytes` marks each zero byte with its top bit, exactly (no borrow from a
// neighbouring byte, unlike the shorter `(x - 0x01…) & ~x & 0x80…` test).

@usableFromInline enum LineFeeds {
  @usableFromInline static let lowSeven: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
  @usableFromInline static let topBits: UInt64 = 0x8080_8080_8080_8080
  static let lineFeeds: UInt64 = 0x0A0A_0A0A_0A0A_0A0A
  /// Eight commas (the TRADE fast path's field ends, EventParser).
  @usableFromInline static let commas: UInt64 = 0x2C2C_2C2C_2C2C_2C2C

  /// The top bit of each byte of `x` that is zero, and no other bit.
  @inlinable @inline(__always)
  static func zeroBytes(_ x: UInt64) -> UInt64 {
    ~(((x & lowSeven) &+ lowSeven) | x | lowSeven)
  }

  /// The index of the first LF in `bytes[start..<end]`, or `end` when there is none.
  @inline(__always)
  static func first(in bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Int {
    precondition(0 <= start && start <= end && end <= bytes.count, "a search lies within the bytes")
    var i = start
    // Little-endian words: the lowest marked byte is the first in memory.
    while i + 8 <= end {
      let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
      let marks = zeroBytes(word ^ lineFeeds)
      if marks != 0 { return i + marks.trailingZeroBitCount / 8 }
      i += 8
    }
    while i < end && bytes[i] != 10 { i += 1 }
    return i
  }

  /// How many LFs `bytes[start..<end]` holds.
  static func count(in bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Int {
    precondition(0 <= start && start <= end && end <= bytes.count, "a count lies within the bytes")
    var n = 0
    var i = start
    while i + 8 <= end {
      let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
      n += zeroBytes(word ^ lineFeeds).nonzeroBitCount
      i += 8
    }
    while i < end {
      if bytes[i] == 10 { n += 1 }
      i += 1
    }
    return n
  }
}

extension Fields {
  /// How many LFs `bytes[range]` holds (eight bytes at a time).
  public static func lineFeedCount(_ bytes: [UInt8], in range: Range<Int>) -> Int {
    bytes.withUnsafeBytes { LineFeeds.count(in: $0, from: range.lowerBound, to: range.upperBound) }
  }
}
