// V2's own writer of effect records (docs/EFFECTS.md, encoding version 1) for the
// TRADE hot path: `kind:u8 length:u32le body`, integers little-endian, strings as
// `u32le byte count` + bytes. Every other record goes through KernelAPI's EffectWriter.

import KernelAPI

/// Writes fields at a raw pointer into a buffer the caller sized exactly.
struct V2Cursor {
  var p: UnsafeMutableRawPointer

  init(_ p: UnsafeMutableRawPointer) { self.p = p }

  @inline(__always) mutating func u8(_ v: UInt8) {
    p.storeBytes(of: v, as: UInt8.self)
    p += 1
  }
  @inline(__always) mutating func i32(_ v: Int32) {
    p.storeBytes(of: v.littleEndian, as: Int32.self)
    p += 4
  }
  @inline(__always) mutating func i64(_ v: Int64) {
    p.storeBytes(of: v.littleEndian, as: Int64.self)
    p += 8
  }
  @inline(__always) mutating func i128(_ v: Int128) {
    i64(Int64(truncatingIfNeeded: v))
    i64(Int64(truncatingIfNeeded: v >> 64))
  }
  /// Length-prefixed bytes. An identifier of the usual sizes (4-16 bytes) is copied
  /// by two overlapping word moves: a `memmove` call per identifier cost more than
  /// the rest of its record.
  @inline(__always) mutating func bytes(_ b: UnsafeRawBufferPointer) {
    let n = b.count
    i32(Int32(n))
    if n >= 8 && n <= 16 {
      let from = b.baseAddress!
      p.storeBytes(of: from.loadUnaligned(as: UInt64.self), as: UInt64.self)
      p.storeBytes(
        of: from.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self), toByteOffset: n - 8, as: UInt64.self)
    } else if n >= 4 && n < 8 {
      let from = b.baseAddress!
      p.storeBytes(of: from.loadUnaligned(as: UInt32.self), as: UInt32.self)
      p.storeBytes(
        of: from.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self), toByteOffset: n - 4, as: UInt32.self)
    } else if n > 0 {
      p.copyMemory(from: b.baseAddress!, byteCount: n)
    }
    p += n
  }
  /// A record's kind and body length.
  @inline(__always) mutating func record(_ kind: EffectKind, _ bodySize: Int) {
    u8(kind.rawValue)
    i32(Int32(bodySize))
  }
}

/// The UTF-8 bytes of each participant's and security's identifier, by row id, in
/// ONE arena (no array per identifier: no retain/release per record written).
struct V2Codes: Sendable {
  var arena: [UInt8] = []
  /// (start, count) in `arena`.
  var participants: [(Int32, Int32)] = []
  var securities: [(Int32, Int32)] = []

  mutating func add(_ text: String) -> (Int32, Int32) {
    let start = Int32(arena.count)
    arena.append(contentsOf: text.utf8)
    return (start, Int32(arena.count) - start)
  }

  @inline(__always)
  static func slice(_ arena: UnsafeRawBufferPointer, _ r: (Int32, Int32)) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(rebasing: arena[Int(r.0)..<Int(r.0 + r.1)])
  }

  @inline(__always)
  func with<R>(security: Int32, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    arena.withUnsafeBytes { body(Self.slice($0, securities[Int(security)])) }
  }
}
