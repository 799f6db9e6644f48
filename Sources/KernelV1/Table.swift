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
  /// Rows before `added` changed since the last `takeDirty()`, in first-change order.
  public private(set) var dirty: [Int32] = []
  /// Rows from here on were added since the last `takeDirty()` (or since tracking
  /// started): changed by definition, so neither their appends nor their later changes
  /// are recorded one by one (a day adds a million trade rows, slices and clearing
  /// rows: a bit test and an append each, and the list's pages, were most of what
  /// `--state` cost V1's apply loop, perf, eleventh session).
  private var added: Int32 = 0
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
    added = Int32(rows.count)
  }

  public mutating func reserveCapacity(_ n: Int) {
    rows.reserveCapacity(n)
    dirtyBits.reserveCapacity(n / 64 + 1)
    if tracksChanges { dirty.reserveCapacity(n) }
  }

  @inline(__always) private mutating func markDirty(_ index: Int32) {
    guard tracksChanges && index < added else { return }
    let word = Int(index) >> 6
    let bit: UInt64 = 1 << UInt64(index & 63)
    if dirtyBits[word] & bit == 0 {
      dirtyBits[word] |= bit
      dirty.append(index)
    }
  }

  /// Adds a row; it is moved in (`consuming`: a borrowed row was copied, and a trade
  /// row's copy retained its id through a value witness, ~2% of a TRADE's apply, perf).
  /// Inlined: called out of line, a trade row was built on the stack field by field
  /// and then copied 16 bytes at a time, and a copy that spans two of those field
  /// stores cannot be forwarded from them: it waited for every older store to reach
  /// the cache, the stores to fresh lines among them (~1.5% of a run, perf, V1's fifth
  /// round).
  @discardableResult @inline(__always)
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

  /// Changes rows `a` and `b` (the same row or two) through `body`, which gets the rows'
  /// storage: one uniqueness check for both, where two `v1Change`s made two (a TRADE
  /// changes its buyer's and its seller's clearing and settlement rows; with V1's other
  /// merged row changes, engine only 0.5195 -> 0.5035 s in 30 alternated pairs,
  /// twenty-sixth session). `body` must change no row but `a` and `b` (both are marked
  /// changed).
  @inline(__always)
  mutating func changeTwo(_ a: Int32, _ b: Int32, _ body: (UnsafeMutablePointer<Row>) -> Void) {
    precondition(a >= 0 && Int(a) < rows.count && b >= 0 && Int(b) < rows.count, "rows of the table")
    markDirty(a)
    markDirty(b)
    rows.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
  }

  /// Starts loading row `index`, all its lines (KernelAPI `prefetchWhole`; nothing when
  /// out of range), and, when its changes are recorded, the word of its changed bit: a
  /// durable run's TRADE changes old positions, and the bit of each (a 512 KB bitset on
  /// the 1M-account day) was a miss nothing had asked for (perf, twenty-third session).
  @inline(__always) public func prefetch(_ index: Int32) {
    rows.prefetchWhole(Int(index))
    if tracksChanges && index < added { dirtyBits.prefetch(Int(index) >> 6) }
  }

  /// Starts loading, for writing, the line of the row `ahead` rows past the last:
  /// a table that grows by one row a trade (trade rows, new positions, lot slices)
  /// writes fresh lines, whose stores waited in order behind each other for their
  /// lines and filled the store buffer (the apply stalled on whichever load came
  /// next, perf, V1's fifth round). Nothing when that row is beyond the reserved
  /// room (the address stays within the array's allocation). A hint only: changes
  /// nothing observable.
  @inline(__always) func prefetchForAppend(ahead: Int) { rows.v1PrefetchForAppend(ahead: ahead) }

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

  /// Returns the changed row ids (ascending: the changed older rows, then every row
  /// added) and forgets them.
  public mutating func takeDirty() -> [Int32] {
    var changed = dirty.sorted()
    if tracksChanges { changed.append(contentsOf: added..<Int32(rows.count)) }
    for i in dirty { dirtyBits[Int(i) >> 6] &= ~(1 << UInt64(i & 63)) }
    dirty.removeAll(keepingCapacity: true)
    added = Int32(rows.count)
    return changed
  }

  /// Rebuilds a table from stored rows (load after restart); nothing is dirty.
  public init(loaded: [Row]) {
    rows = loaded
    dirtyBits = [UInt64](repeating: 0, count: loaded.count / 64 + 1)
    added = Int32(loaded.count)
  }
}

extension Table: Sendable where Row: Sendable {}

extension Table {
  /// The change tracking as a kernel image keeps it (V1Image.swift): a loaded table
  /// reports the same rows changed as the one written.
  func writeTracking(to w: inout ImageWriter) {
    w.bool(tracksChanges)
    w.i32(added)
    w.array(dirtyBits)
    w.array(dirty)
  }

  /// A table of `rows` with the change tracking `writeTracking` wrote; throws when it
  /// does not fit the rows.
  init(rows: [Row], trackingFrom r: inout ImageReader) throws(DecodeError) {
    let tracks = try r.bool()
    let added = try r.i32()
    let bits = try r.array(of: UInt64.self, maxCount: rows.count / 64 + 2)
    let dirty = try r.array(of: Int32.self, maxCount: rows.count)
    guard added >= 0, Int(added) <= rows.count, bits.count * 64 >= rows.count else {
      throw DecodeError(
        description: "image table of \(rows.count) rows has tracking for \(added) / \(bits.count * 64)")
    }
    for i in dirty {
      guard i >= 0, i < added, bits[Int(i) >> 6] & (1 << UInt64(i & 63)) != 0 else {
        throw DecodeError(description: "image table marks row \(i) changed without its bit")
      }
    }
    self.rows = rows
    self.dirtyBits = bits
    self.dirty = dirty
    self.added = added
    self.tracksChanges = tracks
  }
}

/// LLVM's prefetch intrinsic (KernelAPI's `Prefetch.swift` names it for reads; this is
/// V1's own name for it): `write` 1 emits `prefetchw` on x86-64, a load of the line in
/// a state that a store may change without asking again.
/// `releasenone`: a prefetch releases no object, so the optimizer may drop the retain
/// and release it otherwise kept around the call of an array's buffer whose address it
/// takes (an unknown call might free the buffer): a locked instruction each, which
/// waits for every store before it (~5% of V1's apply loop, perf, twenty-second round).
/// Not `readnone`: a call with no result and no effects would be deleted.
@_effects(releasenone)
@_silgen_name("llvm.prefetch.p0")
private func v1LLVMPrefetch(
  _ address: UnsafeRawPointer, _ write: Int32, _ locality: Int32, _ cacheType: Int32)

extension Array {
  /// Starts loading, for writing, the line of the element `ahead` past the last (a
  /// table's next rows, the trade ids' next bytes): nothing when it lies beyond the
  /// reserved room (the address stays within the allocation). A hint only.
  @inline(__always) func v1PrefetchForAppend(ahead: Int) {
    withUnsafeBufferPointer { b in
      let index = b.count + ahead
      guard ahead >= 0 && index < capacity, let base = b.baseAddress else { return }
      v1PrefetchForWrite(UnsafeRawPointer(base + index))
    }
  }
}

/// Starts loading the cache line at `address` for writing (kept in every level).
@inline(__always) func v1PrefetchForWrite(_ address: UnsafeRawPointer) { v1LLVMPrefetch(address, 1, 3, 1) }

/// Starts loading the cache line at `address` for reading (kept in every level).
@inline(__always) func v1PrefetchForRead(_ address: UnsafeRawPointer) { v1LLVMPrefetch(address, 0, 3, 1) }
