// A buffered byte writer: lines are assembled as bytes (digits written directly,
// no String formatting per field) and flushed to the file every 1 MiB.

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

final class ByteSink {
  static let flushThreshold = 1 << 20
  /// Room for the longest line we ever write past the threshold.
  private static let slack = 1 << 16

  let path: String
  private var file: UnsafeMutablePointer<FILE>?
  private let buffer: UnsafeMutablePointer<UInt8>
  private var count = 0
  private(set) var bytesWritten = 0

  init(path: String) throws {
    self.path = path
    guard let f = fopen(path, "wb") else {
      throw MarketGeneratorError.io(path: path, reason: ByteSink.errnoText())
    }
    file = f
    buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: ByteSink.flushThreshold + ByteSink.slack)
  }

  deinit {
    if let f = file { fclose(f) }
    buffer.deallocate()
  }

  static func errnoText() -> String {
    let code = errno
    if let s = strerror(code) { return String(cString: s) + " (errno \(code))" }
    return "errno \(code)"
  }

  // MARK: writing

  @inline(__always)
  func byte(_ b: UInt8) {
    buffer[count] = b
    count &+= 1
  }

  @inline(__always)
  func comma() { byte(UInt8(ascii: ",")) }

  func text(_ s: String) {
    for b in s.utf8 { byte(b) }
  }

  func bytes(_ b: [UInt8]) {
    for x in b { byte(x) }
  }

  /// A non-negative integer in decimal, no leading zeros.
  @inline(__always)
  func uint(_ v: Int) {
    var n = v
    var digits = 1
    var probe = n
    while probe >= 10 {
      probe /= 10
      digits &+= 1
    }
    var i = count &+ digits &- 1
    while true {
      buffer[i] = UInt8(truncatingIfNeeded: 48 &+ n % 10)
      n /= 10
      if n == 0 { break }
      i &-= 1
    }
    count &+= digits
  }

  /// A non-negative integer in exactly `width` digits (zero-padded; `v < 10^width`).
  @inline(__always)
  func fixed(_ v: Int, width: Int) {
    var n = v
    var i = count &+ width &- 1
    while i >= count {
      buffer[i] = UInt8(truncatingIfNeeded: 48 &+ n % 10)
      n /= 10
      i &-= 1
    }
    count &+= width
  }

  /// A decimal with exactly `decimals` fraction digits from an integer in units of 10^-decimals.
  @inline(__always)
  func decimal(_ units: Int, decimals: Int) {
    var scale = 1
    for _ in 0..<decimals { scale &*= 10 }
    if units < 0 {
      byte(UInt8(ascii: "-"))
      uint(-units / scale)
      byte(UInt8(ascii: "."))
      fixed(-units % scale, width: decimals)
    } else {
      uint(units / scale)
      byte(UInt8(ascii: "."))
      fixed(units % scale, width: decimals)
    }
  }

  /// Ends the line and flushes when the buffer is past its threshold.
  @inline(__always)
  func endLine() throws {
    byte(10)
    if count >= ByteSink.flushThreshold { try flush() }
  }

  func flush() throws {
    guard count > 0 else { return }
    guard let f = file else { throw MarketGeneratorError.io(path: path, reason: "file already closed") }
    let n = fwrite(buffer, 1, count, f)
    if n != count {
      throw MarketGeneratorError.io(path: path, reason: "write failed: " + ByteSink.errnoText())
    }
    bytesWritten += count
    count = 0
  }

  func close() throws {
    try flush()
    guard let f = file else { return }
    file = nil
    if fclose(f) != 0 {
      throw MarketGeneratorError.io(path: path, reason: "close failed: " + ByteSink.errnoText())
    }
  }
}
