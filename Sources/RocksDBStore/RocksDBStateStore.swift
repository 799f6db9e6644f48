// RocksDBStateStore: the StateStore port on RocksDB (librocksdb 7.8, C API). This module
// is the only place that touches RocksDB's handles and pointers; callers see [UInt8],
// String and StoreError.
//
// Tuning choices (defaults in RocksDBOptions):
// - WAL on. Every commit is one WriteBatch written through the WAL; `sync: true` fsyncs
//   the WAL before returning (the engine syncs at its durability points, e.g. the end of
//   a batch of events), `sync: false` leaves it in the OS page cache: it survives a
//   process crash but not a power loss. `disableWAL` is only for rebuildable data.
// - Compression: LZ4 for every level (cheap on 2 cores, ~2x on our keys/values). The
//   Debian build links snappy, zlib, bzip2, lz4 and zstd; a codec that is missing makes
//   open fall back to no compression, reported by `compression`.
// - Full bloom filter, 10 bits/key (~1% false positives) for `value(for:)`: a miss costs
//   no disk read. Prefix scans do not use it (no prefix extractor: key layouts vary).
// - One LRU block cache (64 MiB) that also holds index and filter blocks, so memory is
//   bounded; level-0 filters/indexes stay pinned. 64 MiB memtable, at most 512 open
//   files, dynamic level sizes, 1 MiB incremental syncs of SST files.
// - Background writes (flushes, compactions) unpaced unless `backgroundWriteBytesPerSecond`
//   is set (the sequencer's journal sets it: its commits fsync on the ack path).
//
// Reading a store from the shell (the store must be closed, or use a secondary instance):
//   ldb --db=PATH scan --hex
//   ldb --db=PATH --secondary_path=/tmp/ldb-secondary scan --hex   # while Tally runs
// `RocksDBStateStore.ldbScanCommand(path:)` builds the first line with the path quoted.

import CRocksDB
import TallyEngine

#if canImport(Glibc)
  import Glibc
#endif

/// A durable `StateStore` in a RocksDB database directory.
///
/// Not thread-safe and not `Sendable`: like every `StateStore`, it is owned by one thread at
/// a time. `close()` ends its use; any later call is a programming error and traps.
public final class RocksDBStateStore: StateStore {
  /// The database directory, as given to `init`.
  public let path: String
  public var directory: String? { path }
  /// The SST compression in effect: the requested one, or `.none` if this RocksDB build
  /// does not link the requested codec.
  public let compression: RocksDBOptions.Compression

  private var db: OpaquePointer?  // rocksdb_t*; nil once closed
  private let walDisabled: Bool
  // Kept alive for the database's lifetime (the DB copies options, but the cache is shared).
  private let options: CHandle
  private let cache: CHandle?
  private let readOptions: CHandle
  private let writeOptions: CHandle
  private let syncWriteOptions: CHandle
  /// One write batch for every commit, cleared after it: RocksDB keeps its buffer's
  /// capacity, so a commit of thousands of rows does not grow a new one into fresh pages.
  private let writeBatch = CHandle(
    rocksdb_writebatch_create(), "write batch", destroy: rocksdb_writebatch_destroy)
  /// Bulk loads so far (names their SST files).
  private var loads = 0
  /// Iterators alive inside `scan`/`lastKey`; the database must not close under them.
  private var activeIterators = 0

  /// Opens (and by default creates) the database at `path`.
  /// Throws a `StoreError` naming the path and RocksDB's message if the path is not a
  /// usable directory, the database is locked by another instance (in this or another
  /// process), or its files are corrupt.
  public init(path: String, options settings: RocksDBOptions = .init()) throws {
    precondition(!path.isEmpty, "RocksDBStateStore needs a path")
    precondition(settings.blockCacheBytes >= 0, "blockCacheBytes must be >= 0")
    precondition(settings.writeBufferBytes > 0, "writeBufferBytes must be > 0")
    precondition(settings.bloomFilterBitsPerKey >= 0, "bloomFilterBitsPerKey must be >= 0")
    precondition(settings.backgroundWriteBytesPerSecond >= 0, "backgroundWriteBytesPerSecond must be >= 0")
    precondition(settings.memtablesMax >= 2, "memtablesMax must be >= 2")
    precondition(
      settings.maxOpenFiles == -1 || (settings.maxOpenFiles > 0 && settings.maxOpenFiles <= Int(Int32.max)),
      "maxOpenFiles must be -1 or positive")

    let options = CHandle(rocksdb_options_create(), "options", destroy: rocksdb_options_destroy)
    let opts = options.pointer
    rocksdb_options_set_create_if_missing(opts, settings.createIfMissing ? 1 : 0)
    rocksdb_options_set_write_buffer_size(opts, settings.writeBufferBytes)
    rocksdb_options_set_max_write_buffer_number(opts, Int32(settings.memtablesMax))
    rocksdb_options_set_max_open_files(opts, Int32(settings.maxOpenFiles))
    rocksdb_options_set_level_compaction_dynamic_level_bytes(opts, 1)
    rocksdb_options_set_bytes_per_sync(opts, 1 << 20)
    rocksdb_options_set_keep_log_file_num(opts, 5)
    if settings.backgroundWriteBytesPerSecond > 0 {
      // Refilled every 100 ms (RocksDB's default period), fairness 10 (its default: low
      // priority compactions get a turn one time in ten). The options hold their own
      // reference to the limiter, so this handle is released at once.
      let limiter = rocksdb_ratelimiter_create(Int64(settings.backgroundWriteBytesPerSecond), 100_000, 10)
      rocksdb_options_set_ratelimiter(opts, limiter)
      rocksdb_ratelimiter_destroy(limiter)
    }
    if settings.vectorMemtable {
      rocksdb_options_set_allow_concurrent_memtable_write(opts, 0)
      rocksdb_options_set_memtable_vector_rep(opts)
    }

    // Table format: block cache, bloom filter. The factory copies the table options.
    let table = CHandle(
      rocksdb_block_based_options_create(), "block-based table options",
      destroy: rocksdb_block_based_options_destroy)
    var cache: CHandle? = nil
    if settings.blockCacheBytes > 0 {
      let lru = CHandle(
        rocksdb_cache_create_lru(settings.blockCacheBytes), "LRU cache", destroy: rocksdb_cache_destroy)
      rocksdb_block_based_options_set_block_cache(table.pointer, lru.pointer)
      rocksdb_block_based_options_set_cache_index_and_filter_blocks(table.pointer, 1)
      rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(table.pointer, 1)
      cache = lru
    } else {
      rocksdb_block_based_options_set_no_block_cache(table.pointer, 1)
    }
    if settings.bloomFilterBitsPerKey > 0 {
      FilterPolicy(bitsPerKey: settings.bloomFilterBitsPerKey).handOver(to: table)
    }
    rocksdb_options_set_block_based_table_factory(opts, table.pointer)

    // Open; if the codec is not compiled in, RocksDB refuses the options: retry without.
    var compression = settings.compression
    rocksdb_options_set_compression(opts, compression.cValue)
    var handle: OpaquePointer?
    do {
      handle = try Self.open(options: options, path: path)
    } catch let error as StoreError
      where compression != .none && error.description.contains("not linked with the binary")
    {
      compression = .none
      rocksdb_options_set_compression(opts, compression.cValue)
      handle = try Self.open(options: options, path: path)
    }
    guard let handle else { preconditionFailure("rocksdb_open gave neither a handle nor an error") }

    let readOptions = CHandle(
      rocksdb_readoptions_create(), "read options", destroy: rocksdb_readoptions_destroy)
    let writeOptions = CHandle(
      rocksdb_writeoptions_create(), "write options", destroy: rocksdb_writeoptions_destroy)
    let syncWriteOptions = CHandle(
      rocksdb_writeoptions_create(), "write options", destroy: rocksdb_writeoptions_destroy)
    rocksdb_writeoptions_set_sync(syncWriteOptions.pointer, 1)
    if settings.disableWAL {
      // RocksDB rejects sync writes without a WAL; a sync commit flushes instead.
      rocksdb_writeoptions_disable_WAL(writeOptions.pointer, 1)
      rocksdb_writeoptions_disable_WAL(syncWriteOptions.pointer, 1)
      rocksdb_writeoptions_set_sync(syncWriteOptions.pointer, 0)
    }

    self.path = path
    self.compression = compression
    self.db = handle
    self.walDisabled = settings.disableWAL
    self.options = options
    self.cache = cache
    self.readOptions = readOptions
    self.writeOptions = writeOptions
    self.syncWriteOptions = syncWriteOptions
  }

  private static func open(options: CHandle, path: String) throws -> OpaquePointer? {
    try withErrorPointer("RocksDB open of '\(path)' failed") { rocksdb_open(options.pointer, path, $0) }
  }

  deinit { close() }

  /// Closes the database; idempotent. Must not be called from inside a `scan` body.
  public func close() {
    precondition(activeIterators == 0, "RocksDBStateStore.close() called inside a scan of '\(path)'")
    guard let db else { return }
    rocksdb_close(db)
    self.db = nil
  }

  /// The open database handle; use after `close()` is a programming error.
  private func handle(_ operation: StaticString) -> OpaquePointer {
    guard let db else { preconditionFailure("RocksDBStateStore.\(operation) after close() of '\(path)'") }
    return db
  }

  // MARK: StateStore

  public func value(for key: [UInt8]) throws -> [UInt8]? {
    let db = handle("value(for:)")
    // get_pinned, not rocksdb_get: its nil result means "not found" even for empty values
    // (rocksdb_get returns malloc(0), which may be NULL).
    let slice = try withErrorPointer("RocksDB get from '\(path)' failed") { error in
      withCBytes(key) { rocksdb_get_pinned(db, readOptions.pointer, $0, $1, error) }
    }
    guard let slice else { return nil }
    defer { rocksdb_pinnableslice_destroy(slice) }
    var length = 0
    let bytes = rocksdb_pinnableslice_value(slice, &length)
    return copyBytes(bytes, length)
  }

  /// One RocksDB WriteBatch: the deletes, then the puts (a key both deleted and put ends
  /// up put). With `sync`, the WAL is fsynced before this returns (with `disableWAL`, the
  /// memtable is flushed instead). An empty batch with `sync` is a durability barrier for
  /// earlier unsynced commits.
  public func commit(_ batch: StoreBatch, sync: Bool) throws {
    let db = handle("commit(_:sync:)")
    if batch.isEmpty {
      if sync { try makeDurable(db) }
      return
    }
    let wb = writeBatch.pointer
    rocksdb_writebatch_clear(wb)
    defer { rocksdb_writebatch_clear(wb) }
    for key in batch.deletes {
      withCBytes(key) { rocksdb_writebatch_delete(wb, $0, $1) }
    }
    // Straight from the batch's one buffer: RocksDB copies each slice into its batch.
    batch.forEachPut { key, value in
      withCBytes(key) { keyBytes, keyLength in
        withCBytes(value) { rocksdb_writebatch_put(wb, keyBytes, keyLength, $0, $1) }
      }
    }
    precondition(
      Int(rocksdb_writebatch_count(wb)) == batch.putCount + batch.deletes.count,
      "write batch lost operations")
    let options = sync && !walDisabled ? syncWriteOptions : writeOptions
    try withErrorPointer(
      "RocksDB commit of \(batch.putCount) puts and \(batch.deletes.count) deletes to '\(path)' failed"
    ) { rocksdb_write(db, options.pointer, wb, $0) }
    if sync && walDisabled { try flush() }
  }

  private func makeDurable(_ db: OpaquePointer) throws {
    if walDisabled {
      try flush()
    } else {
      try withErrorPointer("RocksDB WAL sync of '\(path)' failed") { rocksdb_flush_wal(db, 1, $0) }
    }
  }

  public func scan(prefix: [UInt8], _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Bool) throws {
    try iterate(from: prefix, upTo: Self.successor(of: prefix), "prefix scan", body)
  }

  // MARK: Extras

  /// Calls `body` for every key in `[start, end)` (to the last key if `end` is nil), in
  /// ascending byte order, until `body` returns false.
  public func scan(
    from start: [UInt8], to end: [UInt8]?, _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Bool
  ) throws {
    if let end, !start.lexicographicallyPrecedes(end) { return }
    try iterate(from: start, upTo: end, "range scan", body)
  }

  /// The greatest key that starts with `prefix`, or nil; e.g. the highest sequence number
  /// of a journal whose keys are a prefix followed by a big-endian sequence number.
  public func lastKey(prefix: [UInt8]) throws -> [UInt8]? {
    let db = handle("lastKey(prefix:)")
    let iterator = RocksIterator(db: db, readOptions: ScanReadOptions(upperBound: nil))
    activeIterators += 1
    defer { activeIterators -= 1 }
    if let successor = Self.successor(of: prefix) {
      // Last key <= successor; the successor itself is outside the prefix.
      iterator.seekForPrev(successor)
      if iterator.isValid && iterator.key == successor { iterator.previous() }
    } else {
      // Empty or all-0xFF prefix: its keys, if any, are the last ones.
      iterator.seekToLast()
    }
    guard iterator.isValid else {
      try iterator.checkStatus("RocksDB lastKey in '\(path)' failed")
      return nil
    }
    let key = iterator.key
    return key.starts(with: prefix) ? key : nil
  }

  /// Writes a consistent copy of the database (hard links for SST files) to `target`,
  /// which must not exist yet. The copy opens as an independent `RocksDBStateStore`.
  /// The memtable is flushed first, so the copy holds even unsynced or WAL-less commits.
  public func checkpoint(to target: String) throws {
    let db = handle("checkpoint(to:)")
    let raw = try withErrorPointer("RocksDB checkpoint of '\(path)' failed") {
      rocksdb_checkpoint_object_create(db, $0)
    }
    let checkpoint = CHandle(raw, "checkpoint", destroy: rocksdb_checkpoint_object_destroy)
    try withExtendedLifetime(checkpoint) {
      try withErrorPointer("RocksDB checkpoint of '\(path)' to '\(target)' failed") {
        rocksdb_checkpoint_create(checkpoint.pointer, target, 0, $0)  // 0: always flush first
      }
    }
  }

  /// Milliseconds RocksDB has held back this store's writes since it opened (slowed or
  /// stopped them while its flushes or compactions fell behind): the "Cumulative
  /// stall" of its DB stats, a counter that only grows. Nil if the stats do not have it.
  /// For operations (metrics, logs, status) only.
  public var cumulativeWriteStallMilliseconds: Int64? {
    guard let stats = property("rocksdb.dbstats") else { return nil }
    return Self.cumulativeStallMilliseconds(dbStats: stats)
  }

  /// The "Cumulative stall: HH:MM:SS.mmm H:M:S, ..." line of RocksDB's DB stats, in
  /// whole milliseconds (digits only: no floating point on the way).
  public static func cumulativeStallMilliseconds(dbStats: String) -> Int64? {
    guard let line = dbStats.split(separator: "\n").first(where: { $0.hasPrefix("Cumulative stall: ") })
    else { return nil }
    let clock = line.dropFirst("Cumulative stall: ".count).prefix { $0 != " " }
    let parts = clock.split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count == 3 else { return nil }
    let seconds = parts[2].split(separator: ".", omittingEmptySubsequences: false)
    guard seconds.count <= 2, let h = Int64(parts[0]), let m = Int64(parts[1]), let s = Int64(seconds[0]),
      (0...1_000_000_000).contains(h), (0..<60).contains(m), (0..<60).contains(s)
    else { return nil }
    // The fraction's first three digits, as milliseconds ("25" is 250).
    let fraction = seconds.count == 2 ? seconds[1] : ""
    guard fraction.allSatisfy(\.isASCII), fraction.allSatisfy(\.isNumber) else { return nil }
    let ms = Int64(String((fraction + "000").prefix(3)))!
    return (h * 3_600 + m * 60 + s) * 1_000 + ms
  }

  /// A RocksDB property such as "rocksdb.estimate-num-keys" or "rocksdb.stats"; nil if
  /// RocksDB does not know the name.
  public func property(_ name: String) -> String? {
    let db = handle("property(_:)")
    return takeCString(rocksdb_property_value(db, name))
  }

  /// Bulk load through RocksDB's SST file writer and file ingestion: the puts are written
  /// into one new SST file in the database folder (compressed as the store's files,
  /// fsynced), which RocksDB then moves into its tree; no write-ahead log, no memtable.
  /// A snapshot of the 1M-trade day through one write batch had cost seconds of fresh
  /// pages (batch, WAL, memtable, flush); see docs/PERFORMANCE.md.
  public func load(
    sorted body: (_ put: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) throws -> Void
  ) throws {
    let db = handle("load(sorted:)")
    let envOptions = CHandle(rocksdb_envoptions_create(), "env options", destroy: rocksdb_envoptions_destroy)
    let writer = CHandle(
      rocksdb_sstfilewriter_create(envOptions.pointer, options.pointer), "SST file writer",
      destroy: rocksdb_sstfilewriter_destroy)
    loads += 1
    let file = "\(path)/tally-load-\(loads).sst"
    unlink(file)
    defer { unlink(file) }  // moved into the tree on success; a leftover on failure
    try withErrorPointer("RocksDB SST file \(file) cannot be opened") {
      rocksdb_sstfilewriter_open(writer.pointer, file, $0)
    }
    var puts = 0
    try body { key, value in
      try withCBytes(key) { keyBytes, keyLength in
        try withCBytes(value) { valueBytes, valueLength in
          try withErrorPointer("RocksDB SST file \(file): put failed (keys must ascend)") {
            rocksdb_sstfilewriter_put(writer.pointer, keyBytes, keyLength, valueBytes, valueLength, $0)
          }
        }
      }
      puts += 1
    }
    guard puts > 0 else { return }  // RocksDB refuses an empty file
    try withErrorPointer("RocksDB SST file \(file) cannot be finished") {
      rocksdb_sstfilewriter_finish(writer.pointer, $0)
    }
    let ingest = CHandle(
      rocksdb_ingestexternalfileoptions_create(), "ingest options",
      destroy: rocksdb_ingestexternalfileoptions_destroy)
    rocksdb_ingestexternalfileoptions_set_move_files(ingest.pointer, 1)
    try withExtendedLifetime((envOptions, ingest)) {
      try file.withCString { name in
        var names: [UnsafePointer<CChar>?] = [name]
        try withErrorPointer("RocksDB ingestion of \(file) into '\(path)' failed") { error in
          names.withUnsafeMutableBufferPointer { list in
            rocksdb_ingest_external_file(db, list.baseAddress, 1, ingest.pointer, error)
          }
        }
      }
    }
  }

  /// Flushes the memtable to SST files and waits for it.
  public func flush() throws {
    let db = handle("flush()")
    let flushOptions = CHandle(
      rocksdb_flushoptions_create(), "flush options", destroy: rocksdb_flushoptions_destroy)
    try withExtendedLifetime(flushOptions) {
      rocksdb_flushoptions_set_wait(flushOptions.pointer, 1)
      try withErrorPointer("RocksDB flush of '\(path)' failed") {
        rocksdb_flush(db, flushOptions.pointer, $0)
      }
    }
  }

  /// Compacts the whole key space (drops deleted data, rewrites files with the current
  /// compression). Blocks until done. RocksDB's C API reports no error here.
  public func compactAll() {
    let db = handle("compactAll()")
    rocksdb_compact_range(db, nil, 0, nil, 0)
  }

  /// The shell command that lists the store at `path` with RocksDB's `ldb` tool, keys and
  /// values in hex: one `0x0102 : 0x0A0B` line per key, an empty value prints as `0x`.
  /// Run it while no process has the store open (ldb takes the lock), or add
  /// `--secondary_path=DIR` to read beside a running engine.
  public static func ldbScanCommand(path: String) -> String {
    let quoted = "'" + path.replacingAll("'", with: "'\\''") + "'"
    return "ldb --db=\(quoted) scan --hex"
  }

  // MARK: Internals

  private func iterate(
    from start: [UInt8], upTo bound: [UInt8]?, _ operation: String,
    _ body: ([UInt8], [UInt8]) throws -> Bool
  ) throws {
    let db = handle("scan")
    let iterator = RocksIterator(db: db, readOptions: ScanReadOptions(upperBound: bound))
    activeIterators += 1
    defer { activeIterators -= 1 }
    iterator.seek(start)
    while iterator.isValid {
      guard try body(iterator.key, iterator.value) else { return }
      iterator.next()
    }
    try iterator.checkStatus("RocksDB \(operation) of '\(path)' failed")
  }

  /// The smallest key greater than every key starting with `prefix`, or nil if there is
  /// none (empty or all-0xFF prefix): [0x01, 0xFF] -> [0x02].
  static func successor(of prefix: [UInt8]) -> [UInt8]? {
    var bytes = prefix
    while let last = bytes.last {
      if last == 0xFF {
        bytes.removeLast()
      } else {
        bytes[bytes.count - 1] = last + 1
        return bytes
      }
    }
    return nil
  }
}

extension RocksDBOptions.Compression {
  /// RocksDB's C constant for the codec.
  var cValue: Int32 {
    switch self {
    case .none: Int32(rocksdb_no_compression)
    case .snappy: Int32(rocksdb_snappy_compression)
    case .lz4: Int32(rocksdb_lz4_compression)
    case .zstd: Int32(rocksdb_zstd_compression)
    }
  }
}

extension String {
  fileprivate func replacingAll(_ target: Character, with replacement: String) -> String {
    var result = ""
    for character in self {
      if character == target { result += replacement } else { result.append(character) }
    }
    return result
  }
}
