// Tuning knobs for RocksDBStateStore. Plain Swift values; the adapter turns them
// into RocksDB's C option handles when it opens the database.

/// How a `RocksDBStateStore` configures RocksDB. The defaults suit the engine's state and
/// journal: a few GB at most, point reads by key, ordered prefix scans.
public struct RocksDBOptions: Sendable {
  /// SST block compression. Compression is per file, so a store may be reopened with a
  /// different setting; old files keep theirs until compacted.
  public enum Compression: String, Sendable, CaseIterable {
    case none, snappy, lz4, zstd

    /// The names an option or a config accepts, for its error: "none, snappy, lz4, zstd".
    public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
  }

  /// Create the database directory if it does not exist (its parent directory must exist).
  public var createIfMissing = true
  /// Capacity of the LRU block cache (uncompressed data, index and filter blocks).
  /// 0 disables the block cache.
  public var blockCacheBytes: Int = 64 << 20
  /// Memtable size before it is flushed to an SST file.
  public var writeBufferBytes: Int = 64 << 20
  /// Compression for SST files. If this RocksDB build lacks the codec, the store falls
  /// back to `.none` and reports it in `RocksDBStateStore.compression`.
  public var compression: Compression = .lz4
  /// Bits per key of the full bloom filter used by point reads; 0 disables the filter.
  public var bloomFilterBitsPerKey: Int = 10
  /// Table files RocksDB keeps open; -1 means unlimited.
  public var maxOpenFiles: Int = 512
  /// Skip the write-ahead log. Unflushed writes are LOST on a crash or kill, whatever
  /// `sync` says per commit; only for data that can be rebuilt (e.g. a derived index
  /// or a scratch store replayed from the journal). A `sync` commit then flushes the
  /// memtable to SST files instead of syncing the WAL.
  public var disableWAL = false
  /// A vector memtable: inserts append and sort once at flush, instead of a skip-list
  /// insert per key. Right for stores that are written in large batches and read back
  /// only on restart (engine state); reads of unflushed keys are slower.
  public var vectorMemtable = false
  /// At most this many bytes a second written by memtable flushes and compactions (a
  /// RocksDB rate limiter); 0, the default, sets no limit. For a store whose commits wait
  /// on an fsync of the WAL (the sequencer's journal): a flush written at the disk's
  /// full speed makes those fsyncs wait behind it on the device (a 64 MiB memtable:
  /// 40-160 ms once every ~750,000 journaled events, docs/PERFORMANCE.md seventeenth
  /// session). Paced, the flush's writes leave room for them. It must stay above the
  /// store's sustained write rate, or flushes fall behind and RocksDB stops the writes
  /// whenever `memtablesMax` memtables are full.
  public var backgroundWriteBytesPerSecond: Int = 0
  /// Memtables in memory at once, the one written and those full and waiting for their
  /// flush (RocksDB's `max_write_buffer_number`, its default 2). When all are full,
  /// writes stop until a flush ends: a store with paced flushes that takes bursts
  /// above its pace wants one more, so that a burst fills memory instead of stopping.
  public var memtablesMax: Int = 2

  public init() {}
}
