// The owners of RocksDB's C objects and the helpers that cross the C boundary.
// Everything here is internal: no pointer type appears in the module's public API.
//
// Ownership rules of the RocksDB 7.8 C API that this file relies on (see c.cc):
// - rocksdb_options_set_block_based_table_factory copies the table options, so the
//   block-based options handle may die right after the call.
// - rocksdb_block_based_options_set_filter_policy TAKES OWNERSHIP of the filter policy
//   (shared_ptr reset): destroying the policy afterwards would be a double free. The
//   policy is therefore wrapped only until it is handed over (`FilterPolicy.handOver`).
// - rocksdb_block_based_options_set_block_cache copies a shared_ptr: the cache handle
//   is still ours and is destroyed after the database is closed.
// - rocksdb_readoptions_set_iterate_upper_bound keeps a pointer to the caller's bytes:
//   they must outlive every iterator made with those read options.
// - Strings returned through `char** errptr`, rocksdb_property_value and rocksdb_get are
//   malloc'ed by RocksDB and released with rocksdb_free.

import CRocksDB
import TallyEngine

/// Owns one RocksDB C object (options, read/write options, cache, write batch, checkpoint,
/// flush options) and destroys it exactly once, when the owner is deinitialized.
final class CHandle {
  let pointer: OpaquePointer
  private let destroy: (OpaquePointer) -> Void

  init(_ pointer: OpaquePointer?, _ what: StaticString, destroy: @escaping (OpaquePointer) -> Void) {
    guard let pointer else { preconditionFailure("RocksDB returned no \(what) handle") }
    self.pointer = pointer
    self.destroy = destroy
  }

  deinit { destroy(pointer) }
}

/// A bloom filter policy, owned by us until handed to block-based table options.
final class FilterPolicy {
  private var pointer: OpaquePointer?

  init(bitsPerKey: Int) {
    precondition(bitsPerKey > 0, "bloom filter needs at least one bit per key")
    pointer = rocksdb_filterpolicy_create_bloom_full(Double(bitsPerKey))
    precondition(pointer != nil, "RocksDB returned no filter policy")
  }

  /// Gives the policy to `tableOptions`, which frees it from then on.
  func handOver(to tableOptions: CHandle) {
    guard let policy = pointer else { preconditionFailure("filter policy handed over twice") }
    rocksdb_block_based_options_set_filter_policy(tableOptions.pointer, policy)
    pointer = nil
  }

  deinit {
    if let pointer { rocksdb_filterpolicy_destroy(pointer) }
  }
}

/// Read options for one scan, with the upper bound's bytes that RocksDB points into.
final class ScanReadOptions {
  let pointer: OpaquePointer
  private let upperBound: UnsafeMutableBufferPointer<CChar>?

  init(upperBound bound: [UInt8]?) {
    guard let options = rocksdb_readoptions_create() else {
      preconditionFailure("RocksDB returned no read options")
    }
    pointer = options
    if let bound {
      let buffer = UnsafeMutableBufferPointer<CChar>.allocate(capacity: max(bound.count, 1))
      for (index, byte) in bound.enumerated() { buffer[index] = CChar(bitPattern: byte) }
      upperBound = buffer
      rocksdb_readoptions_set_iterate_upper_bound(options, buffer.baseAddress, bound.count)
    } else {
      upperBound = nil
    }
  }

  deinit {
    rocksdb_readoptions_destroy(pointer)
    upperBound?.deallocate()
  }
}

/// An iterator; it keeps its read options (and their bound) alive until it is destroyed.
/// Deinit order matters: the iterator goes first (deinit body), the read options after
/// (stored properties are released once the body has run).
final class RocksIterator {
  let pointer: OpaquePointer
  private let readOptions: ScanReadOptions

  init(db: OpaquePointer, readOptions: ScanReadOptions) {
    guard let iterator = rocksdb_create_iterator(db, readOptions.pointer) else {
      preconditionFailure("RocksDB returned no iterator")
    }
    pointer = iterator
    self.readOptions = readOptions
  }

  var isValid: Bool { rocksdb_iter_valid(pointer) != 0 }

  /// The current key, copied out of RocksDB's memory.
  var key: [UInt8] {
    var length = 0
    let bytes = rocksdb_iter_key(pointer, &length)
    return copyBytes(bytes, length)
  }

  /// The current value, copied out of RocksDB's memory.
  var value: [UInt8] {
    var length = 0
    let bytes = rocksdb_iter_value(pointer, &length)
    return copyBytes(bytes, length)
  }

  func seek(_ target: [UInt8]) { withCBytes(target) { rocksdb_iter_seek(pointer, $0, $1) } }
  func seekForPrev(_ target: [UInt8]) {
    withCBytes(target) { rocksdb_iter_seek_for_prev(pointer, $0, $1) }
  }
  func seekToLast() { rocksdb_iter_seek_to_last(pointer) }
  func next() { rocksdb_iter_next(pointer) }
  func previous() { rocksdb_iter_prev(pointer) }

  /// Throws if the iterator stopped because of an error rather than the end of data.
  func checkStatus(_ operation: @autoclosure () -> String) throws {
    try withErrorPointer(operation()) { rocksdb_iter_get_error(pointer, $0) }
  }

  deinit { rocksdb_iter_destroy(pointer) }
}

// MARK: - Crossing the boundary

typealias ErrorPointer = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>

/// Runs a C call that reports failure through `char** errptr`, converts the error string
/// into a thrown `StoreError` prefixed with `operation`, and frees it.
func withErrorPointer<R>(_ operation: @autoclosure () -> String, _ call: (ErrorPointer) -> R) throws
  -> R
{
  var error: UnsafeMutablePointer<CChar>? = nil
  let result = call(&error)
  if let error {
    let message = String(cString: error)
    rocksdb_free(error)
    throw StoreError("\(operation()): \(message)")
  }
  return result
}

/// Calls `body` with a C view of `bytes`. An empty array still gets a valid pointer
/// (RocksDB builds Slices and memcpy's from it).
func withCBytes<R>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>, Int) throws -> R) rethrows -> R {
  try bytes.withUnsafeBufferPointer { buffer in
    if let base = buffer.baseAddress {
      return try base.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
        try body($0, buffer.count)
      }
    }
    return try withUnsafePointer(to: CChar(0)) { try body($0, 0) }
  }
}

/// Calls `body` with a C view of raw bytes; an empty view still gets a valid pointer.
func withCBytes<R>(_ bytes: UnsafeRawBufferPointer, _ body: (UnsafePointer<CChar>, Int) throws -> R) rethrows
  -> R
{
  if let base = bytes.baseAddress, bytes.count > 0 {
    return try body(base.assumingMemoryBound(to: CChar.self), bytes.count)
  }
  return try withUnsafePointer(to: CChar(0)) { try body($0, 0) }
}

/// Copies `length` bytes out of memory RocksDB owns.
func copyBytes(_ bytes: UnsafePointer<CChar>?, _ length: Int) -> [UInt8] {
  guard let bytes, length > 0 else { return [] }
  return Array(UnsafeRawBufferPointer(start: bytes, count: length))
}

/// Takes a malloc'ed C string from RocksDB, copies it and frees it.
func takeCString(_ string: UnsafeMutablePointer<CChar>?) -> String? {
  guard let string else { return nil }
  defer { rocksdb_free(string) }
  return String(cString: string)
}
