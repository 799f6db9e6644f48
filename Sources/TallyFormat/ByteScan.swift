// Finding a byte, and counting line feeds, eight bytes at a time. Every event file and
// reference file is split into lines, and the 1M-trade day's 76 MB of events were
// scanned a byte at a time twice in a run (the capacity count, then the split) and
// twice more in a resume (there only to count past the lines already applied); every
// TRADE line is split into fields at its commas. A word holds eight bytes; a byte of it
// equals `b` exactly when the same byte of `word ^ b×8` is zero, and `zeroBytes` marks
// each zero byte with its top bit, exactly (no borrow from a neighbouring byte, unlike
// the shorter `(x - 0x01…) & ~x & 0x80…` test).

@usableFromInline enum ByteScan {
  @usableFromInline static let lowSeven: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
  @usableFromInline static let topBits: UInt64 = 0x8080_8080_8080_8080

  /// The top bit of each byte of `x` that is zero, and no other bit.
  @inlinable @inline(__always)
  static func zeroBytes(_ x: UInt64) -> UInt64 {
    ~(((x & lowSeven) &+ lowSeven) | x | lowSeven)
  }

  /// The index of the first `byte` in `bytes[start..<end]`, or `end` when there is none.
  /// With `asciiOnly`, nil when a byte with its top bit comes before it (`byte` itself
  /// is ASCII).
  @inlinable @inline(__always)
  static func first(
    _ byte: UInt8, in bytes: UnsafeRawBufferPointer, from start: Int, to end: Int, asciiOnly: Bool = false
  ) -> Int? {
    precondition(0 <= start && start <= end && end <= bytes.count, "a search lies within the bytes")
    precondition(byte < 0x80, "the byte searched for is ASCII")
    let pattern = UInt64(byte) &* 0x0101_0101_0101_0101
    var i = start
    // Little-endian words: the lowest marked byte is the first in memory.
    while i + 8 <= end {
      let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
      let found = zeroBytes(word ^ pattern)
      let high = asciiOnly ? word & topBits : 0
      if found | high != 0 {
        // Each mark is bit 7 of its byte: the lower mark's byte comes first.
        if high != 0 && (found == 0 || high.trailingZeroBitCount < found.trailingZeroBitCount) { return nil }
        return i + found.trailingZeroBitCount / 8
      }
      i += 8
    }
    while i < end && bytes[i] != byte {
      if asciiOnly && bytes[i] >= 0x80 { return nil }
      i += 1
    }
    return i
  }

  /// The positions of a line's commas (`commas`), at most nine (a TRADE line's fields),
  /// as scalars: a SIMD vector written lane by lane went through the stack and stalled
  /// every reload (store forwarding), most of the scan's time.
  @usableFromInline struct CommaPositions {
    @usableFromInline var c0: Int32 = 0, c1: Int32 = 0, c2: Int32 = 0, c3: Int32 = 0, c4: Int32 = 0
    @usableFromInline var c5: Int32 = 0, c6: Int32 = 0, c7: Int32 = 0, c8: Int32 = 0
    /// The most a line may have.
    @usableFromInline static let max = 9

    @inlinable init() {}

    @inlinable @inline(__always)
    mutating func set(_ k: Int, _ v: Int32) {
      switch k {
      case 0: c0 = v
      case 1: c1 = v
      case 2: c2 = v
      case 3: c3 = v
      case 4: c4 = v
      case 5: c5 = v
      case 6: c6 = v
      case 7: c7 = v
      default: c8 = v
      }
    }
  }

  /// The positions of the commas in `bytes[start..<end]` when there are exactly
  /// `expected` (at most nine) and every byte there is ASCII; nil otherwise (a TRADE
  /// line's nine after its record type, `EventParser.tradeLine`; a holdings line's three,
  /// `FastHoldingLines`). One pass, eight bytes at a time: each word's commas as a mask,
  /// taken lowest first, where a field-by-field scan cost a call a field.
  @inlinable @inline(__always)
  static func commas(in bytes: UnsafeRawBufferPointer, from start: Int, to end: Int, expected: Int)
    -> CommaPositions?
  {
    precondition(0 <= start && start <= end && end <= bytes.count, "a line lies within the bytes")
    precondition(end <= Int(Int32.max) && expected <= CommaPositions.max, "positions fit")
    let commas: UInt64 = 0x2C2C_2C2C_2C2C_2C2C
    var positions = CommaPositions()
    var found = 0
    var high: UInt64 = 0
    var i = start
    while i + 8 <= end {
      let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
      high |= word
      var marks = zeroBytes(word ^ commas)
      while marks != 0 {
        guard found < expected else { return nil }
        positions.set(found, Int32(truncatingIfNeeded: i + marks.trailingZeroBitCount / 8))
        found += 1
        marks &= marks &- 1
      }
      i += 8
    }
    while i < end {
      let byte = bytes[i]
      high |= UInt64(byte)
      if byte == UInt8(ascii: ",") {
        guard found < expected else { return nil }
        positions.set(found, Int32(truncatingIfNeeded: i))
        found += 1
      }
      i += 1
    }
    guard found == expected, high & topBits == 0 else { return nil }
    return positions
  }

  /// Whether two byte strings are equal, eight bytes at a time (a generic
  /// `elementsEqual` over a String's UTF-8 went a byte at a time through its iterator).
  @inlinable @inline(__always)
  static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    let n = a.count
    guard n == b.count else { return false }
    var i = 0
    while i + 8 <= n {
      guard
        a.loadUnaligned(fromByteOffset: i, as: UInt64.self)
          == b.loadUnaligned(fromByteOffset: i, as: UInt64.self)
      else { return false }
      i += 8
    }
    while i < n {
      guard a[i] == b[i] else { return false }
      i += 1
    }
    return true
  }

  /// The index of the first LF in `bytes[start..<end]`, or `end` when there is none.
  @inline(__always)
  static func lineFeed(in bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Int {
    first(10, in: bytes, from: start, to: end)!
  }

  /// How many LFs `bytes[start..<end]` holds.
  static func lineFeedCount(in bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Int {
    precondition(0 <= start && start <= end && end <= bytes.count, "a count lies within the bytes")
    let lineFeeds: UInt64 = 0x0A0A_0A0A_0A0A_0A0A
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
  /// The index of the first LF in `bytes[start..<end]`, or `end` when there is none
  /// (eight bytes at a time).
  public static func lineFeed(in bytes: [UInt8], from start: Int, to end: Int) -> Int {
    bytes.withUnsafeBytes { ByteScan.lineFeed(in: $0, from: start, to: end) }
  }

  /// How many LFs `bytes[range]` holds (eight bytes at a time).
  public static func lineFeedCount(_ bytes: [UInt8], in range: Range<Int>) -> Int {
    bytes.withUnsafeBytes { ByteScan.lineFeedCount(in: $0, from: range.lowerBound, to: range.upperBound) }
  }
}
