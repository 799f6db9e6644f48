// A kernel's image of its whole state: what a resume loads instead of parsing the
// reference folder again and applying the logged events again (issue 8: "resume of a
// completed state folder ≤ 2 s"). The image is a cache beside the truth, never the
// truth: the state folder's input log and snapshots stay what a state is made of, and
// an image that does not verify (its checksum, its header, its seq) is ignored and the
// state rebuilt the long way (docs/STATE-LAYOUT.md, "Kernel images").
//
// Each version writes and reads its own layout (N-version: no shared representation
// of the state beyond the canonical rows), with the primitives below: integers, exact
// UTF-8 strings, and arrays of plain values copied whole. An image is only ever read
// by the build that wrote it; a version that lays out plain values in arrays names
// their sizes in `layoutSignature` so that another build's image is refused, not
// misread. Limits: `KernelImageLimits`.

/// Limits every reader enforces.
public enum KernelImageLimits {
  /// Elements of one array (rows of the largest table are far fewer).
  public static let arrayCountMax = 1 << 32
  /// Bytes of one string or identifier.
  public static let stringBytesMax = 1 << 20
  /// Bytes the writer gathers before handing them to its sink.
  public static let bufferBytes = 1 << 20
}

/// Writes an image as a sequence of byte pieces handed to `sink` in order (the engine
/// writes them to a file and hashes them); their concatenation is the image. Small
/// values are gathered in a buffer; an array's elements, and any piece of
/// `directBytes` or more, go to the sink straight from the caller's storage, without a
/// copy. (The buffer is written through a pointer: an `Array.append(contentsOf:)` a
/// value, with its uniqueness check and `memmove` call, was ~15% of writing V1's image,
/// and its 256 KiB blocks of packed rows were copied through the buffer: perf,
/// twenty-fourth session.) A writer is used in place (`inout`); a copy would share its
/// gathering buffer.
public struct ImageWriter {
  private let gathered = ImageBlock(bytes: KernelImageLimits.bufferBytes)
  private var used = 0
  private let sink: (UnsafeRawBufferPointer) -> Void
  /// Bytes written so far (handed to the sink or still gathered).
  public private(set) var count = 0

  /// Pieces of at least this many bytes are handed to the sink as they are (after what
  /// is gathered).
  public static let directBytes = 64 << 10

  public init(sink: @escaping (UnsafeRawBufferPointer) -> Void) {
    self.sink = sink
  }

  private mutating func gather(_ bytes: UnsafeRawBufferPointer) {
    let n = bytes.count
    guard n > 0, let from = bytes.baseAddress else { return }
    if n >= Self.directBytes {
      flush()
      sink(bytes)
    } else {
      if used + n > KernelImageLimits.bufferBytes { flush() }
      (gathered.raw + used).copyMemory(from: from, byteCount: n)
      used += n
    }
    count += n
  }

  @inline(__always) private mutating func plain<T: FixedWidthInteger>(_ v: T) {
    let n = MemoryLayout<T>.size
    if used + n > KernelImageLimits.bufferBytes { flush() }
    (gathered.raw + used).storeBytes(of: v.littleEndian, as: T.self)
    used += n
    count += n
  }

  public mutating func u8(_ v: UInt8) { plain(v) }
  public mutating func bool(_ v: Bool) { plain(UInt8(v ? 1 : 0)) }
  public mutating func i32(_ v: Int32) { plain(v) }
  public mutating func i64(_ v: Int64) { plain(v) }
  public mutating func u64(_ v: UInt64) { plain(v) }

  /// A section name: the reader checks it (`expect`), so that a reader that lost its
  /// place stops at the next section instead of reading garbage into a table.
  public mutating func tag(_ name: StaticString) {
    precondition(name.utf8CodeUnitCount < 256, "a tag is short")
    u8(UInt8(name.utf8CodeUnitCount))
    gather(UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
  }

  /// The exact UTF-8 bytes of `s`, after their count (as `byteString` of them).
  public mutating func string(_ s: String) {
    var s = s
    s.withUTF8 { byteString(UnsafeRawBufferPointer($0)) }
  }

  public mutating func ident(_ id: Ident) { string(id.text) }

  /// `string(_:)` of the String whose UTF-8 is `b` (valid UTF-8: the caller's to
  /// know), without making the String.
  public mutating func utf8(_ b: UnsafeRawBufferPointer) { byteString(b) }

  /// Bytes after their count (e.g. a row's canonical encoding).
  public mutating func byteString(_ b: [UInt8]) { byteString(b[...]) }

  public mutating func byteString(_ b: ArraySlice<UInt8>) { b.withUnsafeBytes { byteString($0) } }

  /// The elements of `a`, bit for bit, after their count and size: only for plain
  /// values (`BitwiseCopyable`) whose every field the writer's build lays out the same
  /// as the reader's (see `layoutSignature` in the header comment).
  public mutating func array<T: BitwiseCopyable>(_ a: [T]) {
    precondition(a.count <= KernelImageLimits.arrayCountMax, "an array of an image is within its limit")
    i64(Int64(a.count))
    i32(Int32(MemoryLayout<T>.stride))
    a.withUnsafeBytes { gather($0) }
  }

  /// The elements of `a`, as `array` writes an array of them (read back as an array).
  public mutating func array<T: BitwiseCopyable>(_ a: ArraySlice<T>) {
    precondition(a.count <= KernelImageLimits.arrayCountMax, "an array of an image is within its limit")
    i64(Int64(a.count))
    i32(Int32(MemoryLayout<T>.stride))
    a.withUnsafeBytes { gather($0) }
  }

  /// Bytes after their count, from memory the caller owns (e.g. a block of packed rows):
  /// what `string`, `utf8` and the array forms of `byteString` write.
  public mutating func byteString(_ b: UnsafeRawBufferPointer) {
    precondition(b.count <= KernelImageLimits.stringBytesMax, "a byte string of an image is at most 1 MiB")
    i32(Int32(b.count))
    gather(b)
  }

  /// Hands what is gathered to the sink; call once at the end (and whenever wanted).
  public mutating func flush() {
    guard used > 0 else { return }
    sink(UnsafeRawBufferPointer(start: gathered.raw, count: used))
    used = 0
  }
}

/// Bytes at a fixed address, allocated once and freed with the last holder: the room an
/// image's writers fill through a pointer (`ImageWriter`'s gathering buffer, a kernel's
/// blocks of packed rows).
public final class ImageBlock {
  public let bytes: UnsafeMutablePointer<UInt8>
  public let count: Int

  public init(bytes count: Int) {
    precondition(count > 0, "an image block holds at least one byte")
    self.count = count
    bytes = .allocate(capacity: count)
  }

  /// The same bytes, untyped.
  public var raw: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bytes) }

  deinit { bytes.deallocate() }
}

/// Reads an image from memory the caller keeps alive (a mapped file). Every length is
/// checked against what is left and against `KernelImageLimits`; anything malformed
/// throws.
public struct ImageReader {
  private let bytes: UnsafeRawBufferPointer
  public private(set) var offset = 0

  public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

  public var isAtEnd: Bool { offset == bytes.count }

  private mutating func take(_ n: Int) throws(DecodeError) -> UnsafeRawBufferPointer {
    guard n >= 0, n <= bytes.count - offset else {
      throw DecodeError(
        description: "image ends early: \(n) bytes wanted at offset \(offset) of \(bytes.count)")
    }
    defer { offset += n }
    return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n])
  }

  private mutating func plain<T: FixedWidthInteger>(_: T.Type) throws(DecodeError) -> T {
    let b = try take(MemoryLayout<T>.size)
    return T(littleEndian: b.loadUnaligned(as: T.self))
  }

  public mutating func u8() throws(DecodeError) -> UInt8 { try plain(UInt8.self) }
  public mutating func bool() throws(DecodeError) -> Bool {
    let v = try u8()
    guard v <= 1 else { throw DecodeError(description: "image holds \(v) where a flag (0 or 1) belongs") }
    return v == 1
  }
  public mutating func i32() throws(DecodeError) -> Int32 { try plain(Int32.self) }
  public mutating func i64() throws(DecodeError) -> Int64 { try plain(Int64.self) }
  public mutating func u64() throws(DecodeError) -> UInt64 { try plain(UInt64.self) }

  /// A count written as `i64` or `i32`, checked to lie in `0...max`.
  public mutating func count(max: Int) throws(DecodeError) -> Int {
    let n = try i64()
    guard n >= 0, n <= Int64(max) else {
      throw DecodeError(description: "image count \(n) is outside 0...\(max)")
    }
    return Int(n)
  }

  /// Checks the next section name (`ImageWriter.tag`).
  public mutating func expect(_ name: StaticString) throws(DecodeError) {
    let n = Int(try u8())
    let b = try take(n)
    let want = UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
    guard b.elementsEqual(want) else {
      throw DecodeError(
        description:
          "image section '\(name)' expected at offset \(offset - n - 1), found '\(String(decoding: b, as: UTF8.self))'"
      )
    }
  }

  /// A string written by `ImageWriter.string`: its bytes must be valid UTF-8 (they are
  /// kept exactly: identifiers compare by their bytes).
  public mutating func string() throws(DecodeError) -> String {
    let n = Int(try i32())
    guard n >= 0, n <= KernelImageLimits.stringBytesMax else {
      throw DecodeError(description: "image string of \(n) bytes is outside its limit")
    }
    let b = try take(n).bindMemory(to: UInt8.self)
    // Decoded (which repairs what is not UTF-8), then compared with the bytes: equal,
    // they were valid. (`String(validating:)` took a generic path, ~10% of a resume's
    // load of a million account and trade ids, perf.)
    var s = String(decoding: b, as: UTF8.self)
    guard s.withUTF8({ $0.elementsEqual(b) }) else {
      throw DecodeError(description: "image string at offset \(offset - n) is not valid UTF-8")
    }
    return s
  }

  public mutating func ident() throws(DecodeError) -> Ident { Ident(try string()) }

  /// Bytes written by `ImageWriter.byteString`.
  public mutating func byteString() throws(DecodeError) -> [UInt8] {
    let n = Int(try i32())
    guard n >= 0, n <= KernelImageLimits.stringBytesMax else {
      throw DecodeError(description: "image byte string of \(n) bytes is outside its limit")
    }
    return Array(try take(n))
  }

  /// An array written by `ImageWriter.array`, of at most `maxCount` elements of the
  /// same size as the writer's, with room for `extraCapacity` more (so that a caller
  /// that appends does not copy it all again into new pages).
  public mutating func array<T: BitwiseCopyable>(
    of _: T.Type, maxCount: Int = KernelImageLimits.arrayCountMax, extraCapacity: Int = 0
  )
    throws(DecodeError) -> [T]
  {
    precondition(
      extraCapacity >= 0 && extraCapacity <= KernelImageLimits.arrayCountMax, "extra capacity within limits")
    let n = try count(max: Swift.min(maxCount, KernelImageLimits.arrayCountMax))
    let stride = Int(try i32())
    guard stride == MemoryLayout<T>.stride else {
      throw DecodeError(
        description:
          "image array of \(T.self) has elements of \(stride) bytes, this build's are \(MemoryLayout<T>.stride)"
      )
    }
    let (bytesWanted, overflow) = n.multipliedReportingOverflow(by: stride)
    guard !overflow else { throw DecodeError(description: "image array of \(n) elements is too large") }
    let b = try take(bytesWanted)
    let a = [T](unsafeUninitializedCapacity: n + extraCapacity) { out, initialized in
      if n > 0 {
        UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(out)[..<bytesWanted])
          .copyMemory(from: b)
      }
      initialized = n
    }
    precondition(a.count == n, "the array holds what was read")
    return a
  }
}

/// The sizes and strides of the plain types a version copies whole into its image, as
/// one string for its header: another build that lays them out differently writes
/// another signature, and its image is refused.
public func imageLayoutSignature(_ types: [(name: String, size: Int, stride: Int, alignment: Int)]) -> String
{
  types.map { "\($0.name):\($0.size)/\($0.stride)/\($0.alignment)" }.joined(separator: ",")
}
