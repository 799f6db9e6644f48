// The storage port. The engine keeps its state in memory and commits what changed
// to a StateStore in atomic batches; adapters (RocksDBStore) implement it, and
// InMemoryStateStore serves tests. Keys and values are opaque bytes; the key
// layout is the engine's (docs/STATE-LAYOUT.md).

/// One atomic unit of change: every put and delete lands, or none does.
///
/// Keys and values live in one byte buffer with offsets (a commit of millions of rows
/// makes no heap array per row); `puts` gives them back as arrays for tests and tools.
public struct StoreBatch: Sendable {
  /// One put: the key at `start`, its value right after it.
  struct Entry: Sendable {
    var start: Int
    var keyCount: Int32
    var valueCount: Int32
  }
  /// Bytes of one put's key or value, at most (RocksDB slices are size_t, rows are small).
  public static let partByteCountMax = Int(Int32.max)

  private var data: [UInt8] = []
  private var entries: [Entry] = []
  public private(set) var deletes: [[UInt8]] = []

  public init() {}

  /// Room for `puts` puts of `bytes` bytes in all.
  public mutating func reserveCapacity(puts: Int, bytes: Int) {
    entries.reserveCapacity(puts)
    data.reserveCapacity(bytes)
  }

  public mutating func put(_ key: [UInt8], _ value: [UInt8]) {
    precondition(key.count <= Self.partByteCountMax && value.count <= Self.partByteCountMax)
    entries.append(Entry(start: data.count, keyCount: Int32(key.count), valueCount: Int32(value.count)))
    data.append(contentsOf: key)
    data.append(contentsOf: value)
  }

  /// A put from raw bytes (a key built on the stack, a row inside a larger buffer).
  public mutating func put(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
    precondition(key.count <= Self.partByteCountMax && value.count <= Self.partByteCountMax)
    entries.append(Entry(start: data.count, keyCount: Int32(key.count), valueCount: Int32(value.count)))
    data.append(contentsOf: key)
    data.append(contentsOf: value)
  }

  public mutating func delete(_ key: [UInt8]) { deletes.append(key) }

  /// Empties the batch, keeping its buffers' capacity for the next one.
  public mutating func removeAll() {
    data.removeAll(keepingCapacity: true)
    entries.removeAll(keepingCapacity: true)
    deletes.removeAll()
  }

  public var putCount: Int { entries.count }

  /// The puts in order, as arrays (tests, tools; commits use `forEachPut`).
  public var puts: [(key: [UInt8], value: [UInt8])] {
    entries.map { e in
      let keyEnd = e.start + Int(e.keyCount)
      return (Array(data[e.start..<keyEnd]), Array(data[keyEnd..<(keyEnd + Int(e.valueCount))]))
    }
  }

  /// Calls `body` with every put's key and value bytes, in order, without copying them.
  public func forEachPut(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) rethrows {
    try data.withUnsafeBytes { raw in
      for e in entries {
        let keyEnd = e.start + Int(e.keyCount)
        try body(
          UnsafeRawBufferPointer(rebasing: raw[e.start..<keyEnd]),
          UnsafeRawBufferPointer(rebasing: raw[keyEnd..<(keyEnd + Int(e.valueCount))]))
      }
    }
  }

  /// Appends every put of `other` (in its order) after this batch's puts, and its deletes.
  public mutating func append(contentsOf other: StoreBatch) {
    let base = data.count
    data.append(contentsOf: other.data)
    for var e in other.entries {
      e.start += base
      entries.append(e)
    }
    deletes.append(contentsOf: other.deletes)
  }

  public var isEmpty: Bool { entries.isEmpty && deletes.isEmpty }
  /// Bytes of keys and values, for metrics and limits.
  public var byteCount: Int { data.count + deletes.reduce(0) { $0 + $1.count } }
}

/// Errors a store reports; the message names the operation and the path.
public struct StoreError: Error, CustomStringConvertible, Sendable {
  public var description: String
  public init(_ description: String) { self.description = description }
}

/// A durable key-value store with atomic batches and ordered scans.
/// A store is owned by one thread at a time (the engine's), hence not Sendable.
public protocol StateStore: AnyObject {
  /// The folder the store keeps its files in (nil for a store in memory): a state
  /// folder of the segment-log layout keeps its input log beside them.
  var directory: String? { get }
  /// The value stored under `key`, or nil.
  func value(for key: [UInt8]) throws -> [UInt8]?
  /// Applies the batch atomically. With `sync`, it is on stable storage when this returns.
  /// Within one batch, deletes are applied before puts.
  func commit(_ batch: StoreBatch, sync: Bool) throws
  /// Calls `body` for every key starting with `prefix`, in ascending byte order of keys,
  /// until `body` returns false.
  func scan(prefix: [UInt8], _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Bool) throws
  /// Writes the puts `body` hands to `put`, in strictly ascending key order, straight into
  /// storage (no log, no memtable where the store can): durable and visible when this
  /// returns, but not atomic with any commit; callers make them count with a later commit.
  /// For bulk data (a snapshot of hundreds of megabytes).
  func load(
    sorted body: (_ put: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) throws -> Void)
    throws
}

extension StateStore {
  public var directory: String? { nil }

  /// A store without a bulk path commits the puts as one synced batch.
  public func load(
    sorted body: (_ put: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) throws -> Void
  ) throws {
    var batch = StoreBatch()
    var last: [UInt8]? = nil
    try body { key, value in
      let k = Array(key)
      if let last { precondition(last.lexicographicallyPrecedes(k), "load(sorted:) keys must ascend") }
      last = k
      batch.put(key: key, value: value)
    }
    if !batch.isEmpty { try commit(batch, sync: true) }
  }
}

/// A StateStore in memory, for tests and for runs without `--state`.
public final class InMemoryStateStore: StateStore {
  private var entries: [[UInt8]: [UInt8]] = [:]

  public init() {}

  public func value(for key: [UInt8]) throws -> [UInt8]? { entries[key] }

  public func commit(_ batch: StoreBatch, sync: Bool) throws {
    for key in batch.deletes { entries[key] = nil }
    batch.forEachPut { key, value in entries[Array(key)] = Array(value) }
  }

  public func scan(prefix: [UInt8], _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
    // Sorted so that callers see key order, never Dictionary order.
    let keys = entries.keys.filter { $0.starts(with: prefix) }.sorted { $0.lexicographicallyPrecedes($1) }
    for key in keys where try !body(key, entries[key]!) { return }
  }
}
