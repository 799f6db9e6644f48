// The storage port. The engine keeps its state in memory and commits what changed
// to a StateStore in atomic batches; adapters (RocksDBStore) implement it, and
// InMemoryStateStore serves tests. Keys and values are opaque bytes; the key
// layout is the engine's (docs/STATE-LAYOUT.md).

/// One atomic unit of change: every put and delete lands, or none does.
public struct StoreBatch: Sendable {
  public private(set) var puts: [(key: [UInt8], value: [UInt8])] = []
  public private(set) var deletes: [[UInt8]] = []

  public init() {}

  public mutating func put(_ key: [UInt8], _ value: [UInt8]) { puts.append((key, value)) }
  public mutating func delete(_ key: [UInt8]) { deletes.append(key) }

  public var isEmpty: Bool { puts.isEmpty && deletes.isEmpty }
  /// Bytes of keys and values, for metrics and limits.
  public var byteCount: Int {
    puts.reduce(0) { $0 + $1.key.count + $1.value.count } + deletes.reduce(0) { $0 + $1.count }
  }
}

/// Errors a store reports; the message names the operation and the path.
public struct StoreError: Error, CustomStringConvertible, Sendable {
  public var description: String
  public init(_ description: String) { self.description = description }
}

/// A durable key-value store with atomic batches and ordered scans.
/// A store is owned by one thread at a time (the engine's), hence not Sendable.
public protocol StateStore: AnyObject {
  /// The value stored under `key`, or nil.
  func value(for key: [UInt8]) throws -> [UInt8]?
  /// Applies the batch atomically. With `sync`, it is on stable storage when this returns.
  /// Within one batch, deletes are applied before puts.
  func commit(_ batch: StoreBatch, sync: Bool) throws
  /// Calls `body` for every key starting with `prefix`, in ascending byte order of keys,
  /// until `body` returns false.
  func scan(prefix: [UInt8], _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Bool) throws
}

/// A StateStore in memory, for tests and for runs without `--state`.
public final class InMemoryStateStore: StateStore {
  private var entries: [[UInt8]: [UInt8]] = [:]

  public init() {}

  public func value(for key: [UInt8]) throws -> [UInt8]? { entries[key] }

  public func commit(_ batch: StoreBatch, sync: Bool) throws {
    for key in batch.deletes { entries[key] = nil }
    for (key, value) in batch.puts { entries[key] = value }
  }

  public func scan(prefix: [UInt8], _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
    // Sorted so that callers see key order, never Dictionary order.
    let keys = entries.keys.filter { $0.starts(with: prefix) }.sorted { $0.lexicographicallyPrecedes($1) }
    for key in keys where try !body(key, entries[key]!) { return }
  }
}
