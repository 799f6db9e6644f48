// SPEC §1 field patterns, parsed from bytes (no String work on the hot path).
import KernelAPI

public enum Fields {
  @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b >= 48 && b <= 57 }

  /// `-?[0-9]{1,intMax}(\.[0-9]{1,fracMax})?` scaled to `fracMax` fraction digits.
  /// Generic over the byte collection: array slices, and unsafe buffer slices where a hot
  /// loop reads a file through a pointer (no retain of the file's array per field).
  @inlinable
  public static func fixed<C: RandomAccessCollection>(_ s: C, integerDigitsMax: Int, fractionDigitsMax: Int)
    -> Int64? where C.Element == UInt8, C.Index == Int
  {
    var i = s.startIndex
    let end = s.endIndex
    var negative = false
    if i < end && s[i] == UInt8(ascii: "-") {
      negative = true
      i += 1
    }
    var value: Int64 = 0
    var integerDigits = 0
    while i < end && s[i] >= 48 && s[i] <= 57 {
      value = value * 10 + Int64(s[i] - 48)
      integerDigits += 1
      i += 1
      if integerDigits > integerDigitsMax { return nil }
    }
    if integerDigits == 0 { return nil }
    var fractionDigits = 0
    if i < end && s[i] == UInt8(ascii: ".") {
      i += 1
      while i < end && s[i] >= 48 && s[i] <= 57 {
        value = value * 10 + Int64(s[i] - 48)
        fractionDigits += 1
        i += 1
        if fractionDigits > fractionDigitsMax { return nil }
      }
      if fractionDigits == 0 { return nil }
    }
    if i != end { return nil }
    while fractionDigits < fractionDigitsMax {
      value *= 10
      fractionDigits += 1
    }
    return negative ? -value : value
  }

  /// Price in 0.001 CNY.
  @inlinable public static func price<C: RandomAccessCollection>(_ s: C) -> Int64?
  where C.Element == UInt8, C.Index == Int {
    fixed(s, integerDigitsMax: 6, fractionDigitsMax: 3)
  }
  /// Quantity, `base`, `bonus`.
  @inlinable public static func quantity<C: RandomAccessCollection>(_ s: C) -> Int64?
  where C.Element == UInt8, C.Index == Int {
    fixed(s, integerDigitsMax: 10, fractionDigitsMax: 0)
  }
  /// Money amount in fen.
  @inlinable public static func money(_ s: ArraySlice<UInt8>) -> Int64? {
    fixed(s, integerDigitsMax: 13, fractionDigitsMax: 2)
  }
  /// Per-share amount in 0.000001 CNY.
  @inlinable public static func perShare(_ s: ArraySlice<UInt8>) -> Int64? {
    fixed(s, integerDigitsMax: 4, fractionDigitsMax: 6)
  }

  /// `YYYYMMDD`, a real calendar date.
  @inlinable public static func date<C: RandomAccessCollection>(_ s: C) -> Int32?
  where C.Element == UInt8, C.Index == Int {
    guard s.count == 8 else { return nil }
    var v: Int32 = 0
    for b in s {
      guard b >= 48 && b <= 57 else { return nil }
      v = v * 10 + Int32(b - 48)
    }
    return CalendarDate.isValid(v) ? v : nil
  }

  /// `date` of a field's bytes where they lie (a TRADE line's, `EventParser.tradeLine`):
  /// the eight digits checked and combined a word at a time. The same answer as the
  /// byte loop.
  @inlinable @inline(__always) public static func date(_ s: UnsafeRawBufferPointer) -> Int32? {
    guard s.count == 8 else { return nil }
    let w = UInt64(littleEndian: s.loadUnaligned(as: UInt64.self))
    // Every byte 0x30-0x39: its high nibble 3, and still 3 with 6 added (no byte
    // carries into the next: each is at most 0x3F then).
    let nibbles: UInt64 = 0xF0F0_F0F0_F0F0_F0F0
    let threes: UInt64 = 0x3030_3030_3030_3030
    guard w & nibbles == threes, (w &+ 0x0606_0606_0606_0606) & nibbles == threes else { return nil }
    // The first byte is the most significant digit: pairs, then fours, then eight.
    var v = w & 0x0F0F_0F0F_0F0F_0F0F
    v = (v &* 2561) >> 8 & 0x00FF_00FF_00FF_00FF
    v = (v &* 6_553_601) >> 16 & 0x0000_FFFF_0000_FFFF
    v = (v &* 42_949_672_960_001) >> 32
    let date = Int32(truncatingIfNeeded: v)
    return CalendarDate.isValid(date) ? date : nil
  }

  /// `HHMMSS`, a real time of day.
  @inlinable public static func time<C: RandomAccessCollection>(_ s: C) -> Int32?
  where C.Element == UInt8, C.Index == Int {
    guard s.count == 6 else { return nil }
    var v: Int32 = 0
    for b in s {
      guard b >= 48 && b <= 57 else { return nil }
      v = v * 10 + Int32(b - 48)
    }
    return v / 10000 < 24 && (v / 100) % 100 < 60 && v % 100 < 60 ? v : nil
  }

  public static func securityKind(_ s: ArraySlice<UInt8>) -> SecurityKind? {
    switch String(decoding: s, as: UTF8.self) {
    case "STOCK": return .stock
    case "FUND": return .fund
    case "BOND": return .bond
    default: return nil
    }
  }

  public static func accountKind(_ s: ArraySlice<UInt8>) -> AccountKind? {
    // The bytes compared as they are: a String made for every row of a million-line
    // accounts.csv cost ~10 ms of its read.
    s.withUnsafeBytes { accountKind(bytes: $0) }
  }

  /// The same, of bytes in memory (`FastAccountLines`).
  static func accountKind(bytes raw: UnsafeRawBufferPointer) -> AccountKind? {
    if individual.withUnsafeBytes({ ByteScan.equal(raw, $0) }) { return .individual }
    if institution.withUnsafeBytes({ ByteScan.equal(raw, $0) }) { return .institution }
    return nil
  }
  static let individual = Array("INDIVIDUAL".utf8)
  static let institution = Array("INSTITUTION".utf8)

  /// Splits at every comma; fields are taken as written.
  @inlinable
  public static func split(_ line: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
    var fields: [ArraySlice<UInt8>] = []
    fields.reserveCapacity(11)
    var start = line.startIndex
    var i = start
    while i < line.endIndex {
      if line[i] == UInt8(ascii: ",") {
        fields.append(line[start..<i])
        start = i + 1
      }
      i += 1
    }
    fields.append(line[start..<line.endIndex])
    return fields
  }

  /// Splits at every comma into `fields` (emptied first; its storage is reused).
  @inlinable
  public static func split(_ line: ArraySlice<UInt8>, into fields: inout [ArraySlice<UInt8>]) {
    fields.removeAll(keepingCapacity: true)
    var start = line.startIndex
    var i = start
    while i < line.endIndex {
      if line[i] == UInt8(ascii: ",") {
        fields.append(line[start..<i])
        start = i + 1
      }
      i += 1
    }
    fields.append(line[start..<line.endIndex])
  }

  /// The number of `\n` in `bytes` (a capacity hint).
  public static func lineCount(_ bytes: [UInt8]) -> Int {
    lineFeedCount(bytes, in: 0..<bytes.count)
  }

  /// True when the bytes are valid UTF-8 (ASCII fast path).
  @inlinable
  public static func isValidUTF8(_ bytes: ArraySlice<UInt8>) -> Bool {
    if bytes.allSatisfy({ $0 < 0x80 }) { return true }
    return String(validating: bytes, as: UTF8.self) != nil
  }

  @inlinable public static func text(_ s: ArraySlice<UInt8>) -> String { String(decoding: s, as: UTF8.self) }
}

/// The lines of a text file per SPEC §3: split at `\n`, one `\r` before it (or at
/// the end of the file) dropped, a UTF-8 byte-order mark at the very start ignored.
/// Yields every line with its 1-based line number, blank and comment lines included.
public struct LineReader: Sequence, IteratorProtocol {
  private let bytes: [UInt8]
  private var position: Int
  /// Where the lines end: `bytes.count` for a whole file.
  private let end: Int
  private var lineNumber = 0

  public init(_ bytes: [UInt8]) {
    self.bytes = bytes
    position = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
    end = bytes.count
  }

  /// The lines of `bytes[start..<end]` (a part of a file: `start` begins a line), the
  /// first numbered `firstNumber`.
  public init(_ bytes: [UInt8], from start: Int, to end: Int? = nil, firstNumber: Int) {
    let end = end ?? bytes.count
    precondition(0 <= start && start <= end && end <= bytes.count, "a part lies within the bytes")
    self.bytes = bytes
    self.end = end
    position = start
    lineNumber = firstNumber - 1
  }

  /// The byte offset of the next line (`end` when there is none).
  public var offset: Int { Swift.min(position, end) }

  public mutating func next() -> (number: Int, line: ArraySlice<UInt8>)? {
    guard position < end else { return nil }
    let start = position
    let stop = bytes.withUnsafeBytes { ByteScan.lineFeed(in: $0, from: start, to: end) }
    position = stop + 1
    var lineEnd = stop
    if lineEnd > start && bytes[lineEnd - 1] == 13 { lineEnd -= 1 }
    lineNumber += 1
    return (lineNumber, bytes[start..<lineEnd])
  }
}
