// Identifiers of SPEC §1: participant, unit, account, security and trade ids.

/// Identifiers compare, hash and sort by their UTF-8 bytes (SPEC §1), never by
/// Swift's Unicode-aware String comparison, which would merge canonically
/// equivalent but different byte strings.
public struct Ident: Hashable, Comparable, Sendable, CustomStringConvertible {
  public let text: String

  @inlinable public init(_ text: String) { self.text = text }

  public var description: String { text }

  @inlinable public static func == (a: Ident, b: Ident) -> Bool {
    // Compare contiguous UTF-8 buffers (native strings always have them); the
    // fallback walks the views.
    let fast = a.text.utf8.withContiguousStorageIfAvailable { x in
      b.text.utf8.withContiguousStorageIfAvailable { y in x.count == y.count && x.elementsEqual(y) }
    }
    if let fast, let result = fast { return result }
    return a.text.utf8.elementsEqual(b.text.utf8)
  }

  @inlinable public static func < (a: Ident, b: Ident) -> Bool {
    // Contiguous UTF-8 buffers (native strings always have them) compare with memcmp's
    // order; the fallback walks the views. Same order either way: bytes, then length.
    let fast = a.text.utf8.withContiguousStorageIfAvailable { x in
      b.text.utf8.withContiguousStorageIfAvailable { y -> Bool in
        let n = Swift.min(x.count, y.count)
        var i = 0
        while i < n {
          if x[i] != y[i] { return x[i] < y[i] }
          i += 1
        }
        return x.count < y.count
      }
    }
    if let fast, let result = fast { return result }
    return a.text.utf8.lexicographicallyPrecedes(b.text.utf8)
  }

  @inlinable public func hash(into hasher: inout Hasher) {
    let hashed: Void? = text.utf8.withContiguousStorageIfAvailable {
      hasher.combine(bytes: UnsafeRawBufferPointer($0))
    }
    if hashed != nil { return }
    var count = 0
    for byte in text.utf8 {
      hasher.combine(byte)
      count += 1
    }
    hasher.combine(count)
  }
}
