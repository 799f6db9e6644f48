// State lives in tables: arrays indexed by dense ids assigned in event order, so
// that every replica assigns the same ids. A table remembers which rows changed
// since the last commit, so that a durable store writes only those (issue 3:
// commit cost follows what changed, not the size of the state).

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
    a.text.utf8.lexicographicallyPrecedes(b.text.utf8)
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

public struct Table<Row> {
  public private(set) var rows: [Row] = []
  private var dirtyFlags: [Bool] = []
  /// Rows changed or added since the last `takeDirty()`, in first-change order.
  public private(set) var dirty: [Int32] = []

  public init() {}

  public var count: Int { rows.count }

  @inlinable public var indices: Range<Int> { 0..<count }

  public mutating func reserveCapacity(_ n: Int) {
    rows.reserveCapacity(n)
    dirtyFlags.reserveCapacity(n)
    dirty.reserveCapacity(n)
  }

  @discardableResult
  public mutating func append(_ row: Row) -> Int32 {
    precondition(rows.count < Int(Int32.max), "table is full")
    let index = Int32(rows.count)
    rows.append(row)
    dirtyFlags.append(true)
    dirty.append(index)
    return index
  }

  public subscript(index: Int32) -> Row {
    // _read borrows the row: reading one field copies (and retains) nothing else.
    _read { yield rows[Int(index)] }
    _modify {
      let i = Int(index)
      if !dirtyFlags[i] {
        dirtyFlags[i] = true
        dirty.append(index)
      }
      yield &rows[i]
    }
  }

  /// Marks a row changed whose canonical encoding changed outside the row itself
  /// (a position's pooled lots).
  @inline(__always) public mutating func touch(_ index: Int32) {
    let i = Int(index)
    if !dirtyFlags[i] {
      dirtyFlags[i] = true
      dirty.append(index)
    }
  }

  /// Returns the changed row ids (ascending) and forgets them.
  public mutating func takeDirty() -> [Int32] {
    let changed = dirty.sorted()
    for i in dirty { dirtyFlags[Int(i)] = false }
    dirty.removeAll(keepingCapacity: true)
    return changed
  }

  /// Rebuilds a table from stored rows (load after restart); nothing is dirty.
  public init(loaded: [Row]) {
    rows = loaded
    dirtyFlags = [Bool](repeating: false, count: loaded.count)
  }
}
