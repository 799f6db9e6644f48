// The sequencer's journal on disk: the batches' lines in an append-only segment log
// written with direct I/O, everything small (the dedupe records, `last_seq`) in RocksDB.
//
// Why: the journal held every batch in RocksDB, which writes each byte into fresh
// page-cache pages twice (its WAL, then the memtable's flush to a table file) and stalls
// the writes ~150 ms at each 64 MiB flush. `perf record -a` of a cluster voting the
// 1M-event day at full rate: half of the sequencer's samples were the kernel copying
// those writes (`copy_folio_from_iter_atomic` under RocksDB's WAL writer, ~0.35 core-s)
// plus ~0.2 core-s in RocksDB's flush thread, on a machine where every core-second is
// a voted event lost (docs/PERFORMANCE.md, thirty-fifth session). The voter's stream
// records left RocksDB for the same reason (docs/DECISIONS.md, eighth session).
//
// The journal keeps its key layout for `SequencerCore`, which reads it through the
// `StateStore` port and is unchanged: a put under `0x10` + first seq is a journal entry
// of the segment log, every other key lives in RocksDB. A commit appends the entries
// (its other puts, the dedupe records and `last_seq`, embedded in the last entry's
// payload), makes them durable with one fdatasync, then writes the other puts to RocksDB
// without a sync: RocksDB is an index the open repairs from the log, never ahead of it.
// A crash after the log's sync and before (or during) RocksDB's write loses nothing: the
// next open finds entries past RocksDB's `last_seq` and writes their embedded puts again
// (synced). A commit without a journal entry (only empty client batches) is a synced
// RocksDB write, as before.
//
// An entry's payload: u32 LE byte count of the batch, the encoded `JournalBatch` (the
// value `SequencerCore` put), then the embedded puts: u32 LE count, and for each a u32 LE
// key length, the key, a u32 LE value length, the value. A journal written before
// (batches in RocksDB under `0x10`) is moved into the log once, at the open.
import KernelAPI
import RocksDBStore
import SegmentLog
import TallyEngine

/// A store that counts its journal batches without reading them (`SequencerCore`'s open).
public protocol JournalBatchCounting {
  var journalBatchCount: Int { get }
}

public final class JournalStore: StateStore, JournalBatchCounting {
  /// The RocksDB folder's name beside the segment log's in the sequencer's data folder.
  public static let indexFolder = "journal"
  public static let logFolder = "journal-log"
  /// Embedded puts in one entry, at most (a group commit writes one dedupe record per
  /// client message, at most `SequencerCore.groupCommitMessagesMax`, and `last_seq`).
  public static let embeddedPutsMax = 4_096

  let index: RocksDBStateStore
  let log: SegmentLog
  public var directory: String? { index.path }

  /// Opens (or creates) the journal of a sequencer data folder: RocksDB at
  /// `<folder>/journal`, the log at `<folder>/journal-log`.
  public init(folder: String, options: RocksDBOptions) throws {
    index = try RocksDBStateStore(path: folder + "/" + Self.indexFolder, options: options)
    // Written one group commit at a time, each synced: only the last entry can be torn.
    log = try SegmentLog(directory: folder + "/" + Self.logFolder, check: .lastEntry)
    try moveLegacyBatches()
    try repairIndex()
  }

  /// What the open cut off the log's end (a torn, never-acknowledged write), if anything.
  public var cutTail: String? { log.cutTail }
  public var journalBatchCount: Int { log.entries.count }
  /// Bytes of the log's segment files (the batches; RocksDB's small part not counted).
  public var logBytes: Int { log.totalBytes }
  /// RocksDB's write-stall total and properties (the journal pressure check).
  public var cumulativeWriteStallMilliseconds: Int64? { index.cumulativeWriteStallMilliseconds }
  public func property(_ name: String) -> String? { index.property(name) }

  static func isJournalKey(_ key: UnsafeRawBufferPointer) -> Bool {
    key.count == 9 && key[0] == SequencerCore.journalPrefix
  }

  /// The first seq in a journal key (big-endian after the prefix).
  static func firstSeq(ofKey key: UnsafeRawBufferPointer) -> Int64 {
    var v: UInt64 = 0
    for i in 1..<9 { v = v << 8 | UInt64(key[i]) }
    return Int64(bitPattern: v)
  }

  /// The last seq an encoded `JournalBatch` covers.
  static func lastSeq(ofBatch value: UnsafeRawBufferPointer) throws -> Int64 {
    guard let last = JournalBatch.lastSeq(ofEncoded: value) else {
      throw StoreError("sequencer journal: a batch shorter than its header")
    }
    return last
  }

  /// Stages one log entry: the batch's byte count, the batch, the embedded puts.
  func appendEntry(first: Int64, last: Int64, batch: UnsafeRawBufferPointer, embedded: [UInt8]) throws {
    var count = UInt32(batch.count).littleEndian
    try withUnsafeBytes(of: &count) { countBytes in
      try embedded.withUnsafeBytes { tail in
        try log.append(first: first, last: last, rawParts: [countBytes, batch, tail])
      }
    }
  }

  public func value(for key: [UInt8]) throws -> [UInt8]? {
    let isJournal = key.withUnsafeBytes { Self.isJournalKey($0) }
    guard isJournal else { return try index.value(for: key) }
    let first = key.withUnsafeBytes { Self.firstSeq(ofKey: $0) }
    guard let i = entryIndex(first: first) else { return nil }
    return try Self.decode(log.read(i), at: log.entries[i]).batch
  }

  /// The index of the entry that starts at `first` (binary search: entries ascend).
  func entryIndex(first: Int64) -> Int? {
    let entries = log.entries
    var lo = 0
    var hi = entries.count
    while lo < hi {
      let mid = (lo + hi) / 2
      if entries[mid].first < first { lo = mid + 1 } else { hi = mid }
    }
    return lo < entries.count && entries[lo].first == first ? lo : nil
  }

  public func commit(_ batch: StoreBatch, sync: Bool) throws {
    precondition(
      !batch.deletes.contains { $0.withUnsafeBytes { Self.isJournalKey($0) } },
      "sequencer journal: a journal batch is never deleted")
    // First pass: which puts are journal entries (their seqs and place), and the others.
    var entries: [(first: Int64, last: Int64, put: Int)] = []
    var others = StoreBatch()
    var put = 0
    try batch.forEachPut { key, value in
      if Self.isJournalKey(key) {
        entries.append((Self.firstSeq(ofKey: key), try Self.lastSeq(ofBatch: value), put))
      } else {
        others.put(key: key, value: value)
      }
      put += 1
    }
    guard !entries.isEmpty else {
      try index.commit(batch, sync: sync)
      return
    }
    precondition(others.putCount <= Self.embeddedPutsMax, "sequencer journal: too many puts in one commit")
    let trailer = Self.encodeEmbedded(others)
    // Second pass: the entries, in order, the others embedded in the last one.
    put = 0
    var next = 0
    try batch.forEachPut { _, value in
      defer { put += 1 }
      guard next < entries.count, entries[next].put == put else { return }
      let e = entries[next]
      next += 1
      try appendEntry(
        first: e.first, last: e.last, batch: value,
        embedded: next == entries.count ? trailer : Self.noEmbeddedPuts)
    }
    try log.sync(durably: sync)
    // The index after the log: never ahead of what is durable there. Unsynced: the
    // open writes it again from the log if it was lost.
    var indexWrite = others
    for d in batch.deletes { indexWrite.delete(d) }
    if !indexWrite.isEmpty { try index.commit(indexWrite, sync: false) }
  }

  public func scan(prefix: [UInt8], _ body: (_ key: [UInt8], _ value: [UInt8]) throws -> Bool) throws {
    guard prefix.first == SequencerCore.journalPrefix else {
      try index.scan(prefix: prefix, body)
      return
    }
    for i in log.entries.indices {
      let e = log.entries[i]
      let key = SequencerCore.journalKey(e.first)
      guard key.starts(with: prefix) else { continue }
      guard try body(key, Self.decode(log.read(i), at: e).batch) else { return }
    }
  }

  /// An empty list of embedded puts (every entry of a commit but its last).
  static let noEmbeddedPuts: [UInt8] = [0, 0, 0, 0]

  static func encodeEmbedded(_ puts: StoreBatch) -> [UInt8] {
    var w = ByteWriter()
    w.i32(Int32(puts.putCount))
    puts.forEachPut { key, value in
      w.i32(Int32(key.count))
      for byte in key { w.u8(byte) }
      w.i32(Int32(value.count))
      for byte in value { w.u8(byte) }
    }
    return w.bytes
  }

  /// An entry's payload split into the batch and its embedded puts.
  static func decode(_ payload: [UInt8], at entry: SegmentLog.Entry) throws -> (
    batch: [UInt8], embedded: [(key: [UInt8], value: [UInt8])]
  ) {
    func bad(_ what: String) -> StoreError {
      StoreError("sequencer journal: the entry of seqs \(entry.first)...\(entry.last) is malformed: \(what)")
    }
    var r = ByteReader(payload)
    guard let count = try? r.i32(), count >= 0, let batch = try? r.bytes(Int(count)) else {
      throw bad("its batch")
    }
    guard let puts = try? r.i32(), puts >= 0, puts <= Int32(Self.embeddedPutsMax) else {
      throw bad("its put count")
    }
    var embedded: [(key: [UInt8], value: [UInt8])] = []
    for _ in 0..<puts {
      guard let kc = try? r.i32(), kc >= 0, let key = try? r.bytes(Int(kc)), let vc = try? r.i32(), vc >= 0,
        let value = try? r.bytes(Int(vc))
      else { throw bad("an embedded put") }
      embedded.append((key, value))
    }
    guard r.isAtEnd else { throw bad("bytes after its puts") }
    let last = try batch.withUnsafeBytes { try lastSeq(ofBatch: $0) }
    guard last == entry.last else { throw bad("its batch ends at \(last)") }
    return (batch, embedded)
  }

  /// The index's `last_seq`, 0 when absent.
  func indexLastSeq() throws -> Int64 {
    try index.value(for: SequencerCore.lastSeqKey).flatMap { Int64(leBytes: $0) } ?? 0
  }

  /// Writes again the embedded puts of the entries past the index's `last_seq` (a crash
  /// between the log's sync and RocksDB's write), oldest first, synced.
  func repairIndex() throws {
    let indexed = try indexLastSeq()
    let logged = log.entries.last?.last ?? 0
    guard indexed <= logged else {
      throw StoreError(
        "sequencer journal: \(index.path) says the journal ends at seq \(indexed) but \(log.directory) ends at \(logged): the log lost acknowledged batches"
      )
    }
    guard indexed < logged else { return }
    var write = StoreBatch()
    for i in log.entries.indices where log.entries[i].last > indexed {
      for (key, value) in try Self.decode(log.read(i), at: log.entries[i]).embedded { write.put(key, value) }
    }
    // Entries whose commit embedded nothing still move `last_seq` (a moved legacy journal).
    write.put(SequencerCore.lastSeqKey, logged.leBytes)
    try index.commit(write, sync: true)
  }

  /// Moves the batches of a journal written before the log (RocksDB values under
  /// `0x10`) into the log, once; a move that crashed before its delete is finished.
  func moveLegacyBatches() throws {
    var keys: [[UInt8]] = []
    try index.scan(prefix: [SequencerCore.journalPrefix]) { key, value in
      let first = key.withUnsafeBytes { Self.firstSeq(ofKey: $0) }
      let last = try value.withUnsafeBytes { try Self.lastSeq(ofBatch: $0) }
      let logged = log.entries.last?.last ?? 0
      if first > logged {
        // The log's entries follow one another (SegmentLog checks it by precondition):
        // a legacy journal with a gap or an overlap is refused by name instead.
        guard first == logged + 1, last >= first else {
          throw StoreError(
            "sequencer journal: \(index.path): the batch at seq \(first)...\(last) does not follow seq \(logged); the journal is damaged"
          )
        }
        try value.withUnsafeBytes {
          try appendEntry(first: first, last: last, batch: $0, embedded: Self.noEmbeddedPuts)
        }
      }
      keys.append(key)
      return true
    }
    guard !keys.isEmpty else { return }
    try log.sync()
    var write = StoreBatch()
    for key in keys { write.delete(key) }
    try index.commit(write, sync: true)
  }
}
