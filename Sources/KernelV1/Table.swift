// State lives in tables: arrays indexed by dense ids assigned in event order, so
// that every replica assigns the same ids. A table remembers which rows changed
// since the last commit, so that a durable store writes only those (issue 3:
// commit cost follows what changed, not the size of the state).

import KernelAPI

public struct Table<Row> {
  public private(set) var rows: [Row] = []
  /// One bit per row: changed since the last `takeDirty()` (a bitset stays in cache
  /// where a Bool per row of a million-row table would not).
  private var dirtyBits: [UInt64] = []
  /// Rows changed or added since the last `takeDirty()`, in first-change order.
  public private(set) var dirty: [Int32] = []
  /// False: changes are not recorded (an in-memory run that never commits).
  public private(set) var tracksChanges = true

  public init() {}

  public var count: Int { rows.count }

  @inlinable public var indices: Range<Int> { 0..<count }

  /// Stops (or restarts) recording changed rows; what was recorded is forgotten.
  public mutating func setTracking(_ on: Bool) {
    tracksChanges = on
    for i in dirty { dirtyBits[Int(i) >> 6] &= ~(1 << UInt64(i & 63)) }
    dirty.removeAll()
  }

  public mutating func reserveCapacity(_ n: Int) {
    rows.reserveCapacity(n)
    dirtyBits.reserveCapacity(n / 64 + 1)
    if tracksChanges { dirty.reserveCapacity(n) }
  }

  @inline(__always) private mutating func markDirty(_ index: Int32) {
    guard tracksChanges else { return }
    let word = Int(index) >> 6
    let bit: UInt64 = 1 << UInt64(index & 63)
    if dirtyBits[word] & bit == 0 {
      dirtyBits[word] |= bit
      dirty.append(index)
    }
  }

  /// Adds a row; it is moved in (`consuming`: a borrowed row was copied, and a trade
  /// row's copy retained its id through a value witness, ~2% of a TRADE's apply, perf).
  @discardableResult
  public mutating func append(_ row: consuming Row) -> Int32 {
    precondition(rows.count < Int(Int32.max), "table is full")
    let index = Int32(rows.count)
    rows.append(row)
    if rows.count > dirtyBits.count * 64 { dirtyBits.append(0) }
    markDirty(index)
    return index
  }

  public subscript(index: Int32) -> Row {
    // _read borrows the row: reading one field copies (and retains) nothing else.
    _read { yield rows[Int(index)] }
    _modify {
      markDirty(index)
      yield &rows[Int(index)]
    }
  }

  /// Starts loading row `index`, all its lines (KernelAPI `prefetchWhole`; nothing when
  /// out of range).
  @inline(__always) public func prefetch(_ index: Int32) { rows.prefetchWhole(Int(index)) }

  /// The room reserved beyond the rows, at most `limit` rows of it (`PageWarmer`).
  func unusedCapacity(limit: Int = .max) -> MemoryRegion? {
    MemoryRegion.unusedCapacity(of: rows, limit: limit)
  }

  /// Marks a row changed whose canonical encoding changed outside the row itself
  /// (a position's pooled lots).
  @inline(__always) public mutating func touch(_ index: Int32) {
    precondition(Int(index) < rows.count, "touch of a row that does not exist")
    markDirty(index)
  }

  /// Returns the changed row ids (ascending) and forgets them.
  public mutating func takeDirty() -> [Int32] {
    let changed = dirty.sorted()
    for i in dirty { dirtyBits[Int(i) >> 6] &= ~(1 << UInt64(i & 63)) }
    dirty.removeAll(keepingCapacity: true)
    return changed
  }

  /// Rebuilds a table from stored rows (load after restart); nothing is dirty.
  public init(loaded: [Row]) {
    rows = loaded
    dirtyBits = [UInt64](repeating: 0, count: loaded.count / 64 + 1)
  }
}

extension Table: Sendable where Row: Sendable {}
