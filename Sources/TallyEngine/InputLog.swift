// The input-log layout of a state folder (`tally run --state`): commits log the event
// lines applied since the last commit (one key, a few hundred kilobytes), and the state
// rows are written only in snapshots: the rows changed since the previous snapshot,
// packed into a few large values. A restart lays the snapshots over the opening state,
// verifies the checksum, and applies the logged lines again. Per-row keys had made
// every commit RocksDB work for tens of thousands of keys (docs/PERFORMANCE.md,
// docs/DECISIONS.md). Key layout: docs/STATE-LAYOUT.md.
import Foundation
import KernelAPI
import SegmentLog

/// How a state folder keeps the state; fixed when the folder is made.
public enum StateLayout: String, Sendable, CaseIterable {
  /// Every commit writes the changed rows, one key a row (replica folders made before
  /// replicas kept an input log; still read and written).
  case rows
  /// Commits log the applied event lines; rows go into rare packed snapshots.
  case inputLog = "input-log"
  /// The input-log layout with the lines in append-only segment files beside the store
  /// (`SegmentLog`, the folder's `input-log/`) instead of RocksDB values: each line is
  /// written once (no write-ahead log, memtable or flush copies of it). `tally run
  /// --state` makes new folders so; replicas log no lines and keep `inputLog`.
  case segmentLog = "segment-log"

  /// Whether commits log lines and rows go into snapshots (the input-log family).
  public var logsInput: Bool { self != .rows }
}

extension StateKeys {
  public static let layout = meta("layout")
  /// i64: the last seq whose line is durable (in a snapshot or the log).
  public static let logged = meta("logged")
  /// i64: the number of snapshots stored.
  public static let snapshots = meta("snapshots")
  static let snapshotPrefix: UInt8 = 0x40
  static let logPrefix: UInt8 = 0x41
  static let logDigestPrefix: UInt8 = 0x42

  /// `0x40 [snapshot number u32 BE] [chunk number u32 BE]`.
  static func snapshotChunk(_ snapshot: Int, _ chunk: Int) -> [UInt8] {
    [snapshotPrefix] + bigEndian(UInt32(snapshot)) + bigEndian(UInt32(chunk))
  }

  /// `0x41 [first seq u64 BE]`: the lines of one commit.
  public static func logEntry(_ first: Int64) -> [UInt8] { seqKey(logPrefix, first) }

  /// `0x42 [first seq u64 BE]`: SHA-256 of that entry's value, checked when it is applied
  /// again (a damaged line would otherwise be applied as another event).
  static func logDigest(_ first: Int64) -> [UInt8] { seqKey(logDigestPrefix, first) }

  private static func seqKey(_ prefix: UInt8, _ seq: Int64) -> [UInt8] {
    let u = UInt64(bitPattern: seq)
    return [prefix] + bigEndian(UInt32(u >> 32)) + bigEndian(UInt32(truncatingIfNeeded: u))
  }

  private static func bigEndian(_ v: UInt32) -> [UInt8] {
    [
      UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8),
      UInt8(truncatingIfNeeded: v),
    ]
  }

  /// The last seq a state folder holds durably: its `logged` marker (in the segment-log
  /// layout the last snapshot's; the input log's last entry when later), or (a folder of
  /// the rows layout) the applied seq of its stored globals row; 0 for an empty folder.
  /// Opening a segment log cuts a torn tail off it, as the folder's next open would.
  public static func committedSeq(in store: any StateStore) throws -> Int64 {
    if let logged = try store.value(for: logged) {
      var r = ByteReader(logged)
      let marker = try r.i64()
      guard try store.value(for: layout) == Array(StateLayout.segmentLog.rawValue.utf8) else { return marker }
      return max(marker, try SegmentInputLog.open(store).entries.last?.last ?? 0)
    }
    guard let bytes = try store.value(for: row(.globals, 0)) else { return 0 }
    var r = ByteReader(bytes)
    return try GlobalRecord(from: &r).appliedSeq
  }
}

/// Limits of the input-log layout.
public enum InputLogLimits {
  /// Bytes of one snapshot value (rows are packed until a chunk reaches this).
  public static let snapshotChunkBytes = 4 << 20
  /// Events between snapshots by default: a restart after a crash applies at most this
  /// many logged lines again (a few seconds). A completed run ends with a log commit, not a snapshot.
  public static let snapshotEventsDefault: Int64 = 2_000_000
  /// Snapshots a folder may hold: each holds only what changed since the one before, and
  /// a restart reads them all. A folder past it is refused with advice.
  public static let snapshotsMax = 4_096
}

/// Packs rows (`[table u8][id i32 LE][length i32 LE][bytes]`) into values of about
/// `InputLogLimits.snapshotChunkBytes`, handed to `put` under ascending chunk keys.
struct SnapshotPacker {
  let snapshot: Int
  var chunk: [UInt8] = []
  var chunks = 0

  init(snapshot: Int) { self.snapshot = snapshot }

  mutating func add(
    table: StateTable, id: Int32, row: UnsafeRawBufferPointer,
    _ put: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void
  ) throws {
    if chunk.capacity == 0 { chunk.reserveCapacity(InputLogLimits.snapshotChunkBytes + 4096) }
    chunk.append(table.rawValue)
    appendLE32(&chunk, UInt32(bitPattern: id))
    appendLE32(&chunk, UInt32(row.count))
    chunk.append(contentsOf: row)
    if chunk.count >= InputLogLimits.snapshotChunkBytes { try flush(put) }
  }

  mutating func flush(_ put: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) throws {
    guard !chunk.isEmpty else { return }
    let key = StateKeys.snapshotChunk(snapshot, chunks)
    try key.withUnsafeBytes { k in try chunk.withUnsafeBytes { v in try put(k, v) } }
    chunks += 1
    chunk.removeAll(keepingCapacity: true)
  }
}

@inline(__always) func appendLE32(_ out: inout [UInt8], _ v: UInt32) {
  withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
}

/// Deletes snapshot chunks that no counted snapshot owns: a snapshot whose chunks were
/// loaded but whose counting batch was not written (a crash between the two). Their
/// number is the next snapshot's, so they go before it is written.
func deleteUncountedSnapshotChunks(_ store: any StateStore, snapshots: Int) throws {
  var batch = StoreBatch()
  try store.scan(prefix: [StateKeys.snapshotPrefix]) { key, _ in
    guard key.count == 9 else { throw DurableError("unexpected snapshot key \(key.hexString)") }
    let n = Int(key[1]) << 24 | Int(key[2]) << 16 | Int(key[3]) << 8 | Int(key[4])
    if n >= snapshots { batch.delete(key) }
    return true
  }
  if !batch.isEmpty { try store.commit(batch, sync: true) }
}

/// Lays every snapshot's rows over the opening state, snapshot by snapshot in the order
/// they were taken: a later snapshot's row replaces an earlier one of the same id (the
/// `BusinessKernel.restore` rule), and rows a snapshot appends come in id order after
/// those of the snapshots before it.
func overlaySnapshotRows(
  _ store: any StateStore, snapshots: Int, rowCount: ((StateTable, Int) -> Void)? = nil,
  _ overlay: (StateTable, Int32, [UInt8]) throws -> Void
) throws {
  var counts = [Int](repeating: 0, count: Int(StateTable.allCases.map(\.rawValue).max()!) + 1)
  var chunk = 0
  try store.scan(prefix: [StateKeys.snapshotPrefix]) { key, value in
    guard key.count == 9 else { throw DurableError("unexpected snapshot key \(key.hexString)") }
    let n = Int(key[1]) << 24 | Int(key[2]) << 16 | Int(key[3]) << 8 | Int(key[4])
    guard n < snapshots else { return false }  // uncounted chunks sort last; deleted at open
    try value.withUnsafeBytes { raw in
      let b = raw.bindMemory(to: UInt8.self)
      var i = 0
      while i < b.count {
        guard i + 9 <= b.count else {
          throw DurableError("state folder is damaged: snapshot \(n) chunk \(chunk) is cut")
        }
        let id = Int32(bitPattern: le32(b, i + 1))
        let count = Int(Int32(bitPattern: le32(b, i + 5)))
        guard count >= 0, i + 9 + count <= b.count, let table = StateTable(rawValue: b[i]) else {
          throw DurableError(
            "state folder is damaged: snapshot \(n) chunk \(chunk) has a bad row at byte \(i)")
        }
        try overlay(table, id, Array(UnsafeRawBufferPointer(rebasing: raw[(i + 9)..<(i + 9 + count)])))
        counts[Int(table.rawValue)] += 1
        i += 9 + count
      }
    }
    chunk += 1
    return true
  }
  if let rowCount { for table in StateTable.allCases { rowCount(table, counts[Int(table.rawValue)]) } }
}

@inline(__always) private func le32(_ b: UnsafeBufferPointer<UInt8>, _ i: Int) -> UInt32 {
  UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
}

/// One logged commit: `[last seq i64 LE]` then each line as `[length i32 LE][bytes]`.
enum LogEntry {
  /// The entry's lines joined (each followed by nothing: ranges give them) and their ranges.
  static func decode(_ value: [UInt8], first: Int64) throws -> (last: Int64, ranges: [Range<Int>]) {
    let cut = DurableError("state folder is damaged: log entry at seq \(first) is cut")
    guard value.count >= 8 else { throw cut }
    var last: Int64 = 0
    for k in 0..<8 { last |= Int64(value[k]) << (8 * k) }
    var ranges: [Range<Int>] = []
    ranges.reserveCapacity(Int(max(0, min(last - first + 1, 1 << 20))))
    // One borrow of the entry for all its lines (a resume reads a million of them).
    try value.withUnsafeBufferPointer { b in
      var i = 8
      while i < b.count {
        guard i + 4 <= b.count else { throw cut }
        let n = Int(le32(b, i))
        guard i + 4 + n <= b.count else { throw cut }
        ranges.append((i + 4)..<(i + 4 + n))
        i += 4 + n
      }
    }
    guard Int64(ranges.count) == last - first + 1 else {
      throw DurableError(
        "state folder is damaged: log entry at seq \(first) holds \(ranges.count) lines, not \(last - first + 1)"
      )
    }
    return (last, ranges)
  }
}

/// A resume's log entry, read from the store, checked against its SHA-256, decoded and
/// split on the other core (`HandoffPipe`) while the engine applies the ones before (a
/// resume of the 1M-event day reads ~100 entries, 80 MB of lines: reading, hashing and
/// decoding them on the applying thread was ~0.15 s of it, splitting the lines ~0.17 s).
struct LogEntryRead {
  let first: Int64
  let last: Int64
  let value: [UInt8]
  /// The lines, split by the reader (the applying core only applies).
  let split: SplitLines
}

/// A value handed to another thread that alone uses it for a while, the handing thread
/// leaving it alone meanwhile (the store to a resume's log reader; the engine to its
/// committer, whose fields the two threads split: DurableEngine's pipeline notes). The
/// compiler cannot check that split, hence `@unchecked`; each use says why it holds.
struct HandedOver<Value>: @unchecked Sendable {
  let value: Value
  init(_ value: Value) { self.value = value }
}

/// The segment-log layout's input log: `SegmentLog` files in the state folder's
/// `input-log/`, each entry one commit's lines (`LogEntry`'s encoding), checked by the
/// segment log's own checksum.
enum SegmentInputLog {
  /// The folder inside the store's folder.
  static let folderName = "input-log"

  static func open(_ store: any StateStore, segmentBytes: Int = SegmentLog.segmentBytesDefault) throws
    -> SegmentLog
  {
    guard let directory = store.directory else {
      throw DurableError(
        "the segment-log layout keeps its input log in the store's folder; this store has none")
    }
    // Each commit syncs its one entry: only the last can be torn (the others are
    // checked as the replay reads them).
    do {
      return try SegmentLog(
        directory: directory + "/" + folderName, segmentBytes: segmentBytes, check: .lastEntry)
    } catch {
      throw DurableError("state folder's input log cannot be opened: \(error)")
    }
  }
}
