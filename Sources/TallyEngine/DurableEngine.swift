// The engine with its state in a StateStore (RocksDB for real runs). State lives
// in memory. In the rows layout (older replica folders) every commit writes the rows
// that changed since the last commit, the state checksum and the applied sequence number
// in ONE atomic batch, so state and position never disagree. In the input-log layout
// (`tally run --state`, new replica folders, InputLog.swift) a commit writes the event
// lines applied since the last one, and the rows go into rare packed snapshots (a
// replica's at its digest checkpoints only). The opening state is not stored: it is a
// pure function of the reference folder (whose fingerprint the store keeps), so a
// restart rebuilds it, lays the stored rows (every row changed since the opening)
// over it, recomputes the checksum and refuses to run if it differs from the
// stored one. Key layout: docs/STATE-LAYOUT.md.
import Dispatch
import KernelAPI
import KernelV1
import KernelV2
import SegmentLog
import TallyFormat

/// A kernel image that a resume does not use (`DurableEngine.init(store:image:…)`), and
/// why: the folder is then opened the long way.
public struct ImageRefused: Error, CustomStringConvertible, Sendable {
  public var reason: String
  public var description: String { "kernel image not used: \(reason)" }
}

public struct DurableError: Error, CustomStringConvertible, Sendable {
  public var description: String
  public init(_ description: String) { self.description = description }
}

public enum StateKeys {
  /// Bumped when the stored layout or the business rules change incompatibly.
  /// 3: only rows changed since the opening state are stored (2 stored every row).
  /// 4: a layout marker; the input-log layout (InputLog.swift) beside the rows layout.
  public static let formatVersion = "tally-state/4 spec/2026-11"
  static let metaPrefix: UInt8 = 0
  public static let format = meta("format")
  public static let reference = meta("reference")
  public static let stream = meta("stream")
  public static let checksum = meta("checksum")

  static func meta(_ name: String) -> [UInt8] { [metaPrefix] + Array(name.utf8) }

  /// `[table tag][row id, u32 big-endian]`: rows of a table sort by id.
  public static func row(_ table: StateTable, _ id: Int32) -> [UInt8] {
    let u = UInt32(bitPattern: id)
    return [
      table.rawValue, UInt8(u >> 24), UInt8(truncatingIfNeeded: u >> 16), UInt8(truncatingIfNeeded: u >> 8),
      UInt8(truncatingIfNeeded: u),
    ]
  }

  public static func rowId(_ key: [UInt8]) -> Int32? {
    guard key.count == 5 else { return nil }
    return Int32(
      bitPattern: UInt32(key[1]) << 24 | UInt32(key[2]) << 16 | UInt32(key[3]) << 8 | UInt32(key[4]))
  }
}

/// What a state folder's `reference` marker says it was made with, so that it is only
/// ever resumed with that reference data. Two kinds (docs/STATE-LAYOUT.md):
/// - the SHA-256 of the reference folder's files (`ReferenceFiles.digest`), prefixed
///   `files-sha256:`: what `tally run --state` stores since the twenty-ninth session. Its
///   run hashes those files anyway (for the kernel image), and a second hash of the
///   parsed reference's canonical encoding was ~0.2 s of CPU on the 1M-account day, on
///   two cores already busy with the opening state, the event reader and the page
///   warmer (perf, docs/PERFORMANCE.md);
/// - the bare SHA-256 of the canonical encoding (`referenceFingerprint`): references
///   built in memory (tests, tools), cluster replicas, and every folder made before.
/// Byte-identical files are the stricter rule: files that parse to the same data but
/// differ in a byte (CRLF line endings, say) are another reference for a
/// files-kind folder.
public enum ReferenceMarker {
  static let filesPrefix = Array("files-sha256:".utf8)

  /// The marker of a folder made from reference files with this digest.
  public static func files(_ digest: [UInt8]) -> [UInt8] { filesPrefix + digest }

  /// Whether `marker` names reference files (else it is a canonical fingerprint).
  public static func isFiles(_ marker: [UInt8]) -> Bool { marker.starts(with: filesPrefix) }

  /// The marker as an operator reads it (`tally inspect`): its kind and its digest in
  /// hexadecimal.
  public static func text(_ marker: [UInt8]) -> String {
    isFiles(marker)
      ? "the reference folder's files, SHA-256 \(digest(ofFiles: marker).hexString)"
      : "the reference's canonical encoding, SHA-256 \(marker.hexString)"
  }

  /// The files' digest a files-kind marker holds.
  public static func digest(ofFiles marker: [UInt8]) -> [UInt8] {
    precondition(isFiles(marker), "a files-kind reference marker")
    return Array(marker[filesPrefix.count...])
  }
}

/// SHA-256 of the canonical encoding of a reference folder (`ReferenceMarker`'s
/// canonical kind).
public func referenceFingerprint(_ r: ReferenceData) -> [UInt8] {
  // Hashed in chunks as it is written: the encoding of 4 M holdings is not built whole.
  var sha = SHA256Stream()
  var w = ByteWriter(capacity: fingerprintChunkBytes + 4096)
  @inline(__always) func drain(_ w: inout ByteWriter, _ sha: inout SHA256Stream) {
    if w.count >= fingerprintChunkBytes {
      sha.update(w.bytes)
      w.reset()
    }
  }
  w.string("reference/1")
  w.i32(Int32(r.calendar.count))
  for d in r.calendar { w.i32(d) }
  w.i32(Int32(r.securities.count))
  for s in r.securities {
    w.string(s.code)
    w.string(s.isin)
    w.string(s.name)
    w.u8(s.kind.rawValue)
  }
  w.i32(Int32(r.participants.count))
  for p in r.participants {
    w.string(p.id)
    w.string(p.name)
  }
  w.i32(Int32(r.units.count))
  for u in r.units {
    w.string(u.id)
    w.string(u.participant)
  }
  // Each account's and security's id as encoded (length, bytes), made once: a holding
  // names both, and reading their Strings again for each of the 3.9M holdings of the
  // 1M-account day was most of the fingerprint (0.38 s of CPU in a `tally run --state`
  // of 4.3 s, perf). The bytes hashed are the same.
  var accountIds = EncodedIds(capacity: r.accounts.count)
  w.i32(Int32(r.accounts.count))
  for a in r.accounts {
    w.string(a.id)
    w.u8(a.kind.rawValue)
    accountIds.append(a.id)
    drain(&w, &sha)
  }
  var securityCodes = EncodedIds(capacity: r.securities.count)
  for s in r.securities { securityCodes.append(s.code) }
  w.i32(Int32(r.holdings.count))
  // The hash is of the byte stream, not of how it is cut: what is pending goes first.
  sha.update(w.bytes)
  w.reset()
  hashHoldings(r.holdings, accounts: accountIds, securities: securityCodes, into: &sha)
  w.i32(Int32(r.feeRows.count))
  for f in r.feeRows {
    w.u8(f.kind.rawValue)
    w.u8(f.fee.rawValue)
    w.u8(f.side.rawValue)
    w.string(f.rateText)
    w.i32(f.effectiveDate)
  }
  sha.update(w.bytes)
  return sha.finalize()
}

/// Bytes of the reference encoding hashed at a time.
let fingerprintChunkBytes = 1 << 20

/// Identifiers as `ByteWriter.string` encodes them (u32 length, low byte first, then the
/// UTF-8 bytes), one after another, with where each starts.
struct EncodedIds {
  private var writer: ByteWriter
  /// `starts[i] ..< starts[i + 1]`: identifier i's encoding in `bytes`.
  private(set) var starts: [Int] = [0]
  /// The longest encoding's bytes.
  private(set) var widest = 0

  init(capacity: Int) {
    writer = ByteWriter(capacity: capacity * 16)
    starts.reserveCapacity(capacity + 1)
  }

  mutating func append(_ id: String) {
    writer.string(id)
    widest = max(widest, writer.count - starts[starts.count - 1])
    starts.append(writer.count)
  }

  var bytes: [UInt8] { writer.bytes }
  var count: Int { starts.count - 1 }
}

/// The holdings' part of the reference fingerprint, into `sha`: per holding its
/// account's and security's encoded ids, its quantity (i64) and acquired date (i32),
/// low byte first, as `ByteWriter` writes them, hashed a chunk at a time.
func hashHoldings(
  _ holdings: [ReferenceData.HoldingRow], accounts: EncodedIds, securities: EncodedIds,
  into sha: inout SHA256Stream
) {
  // The largest encoded holding: the two longest ids and 12 bytes.
  let longest = accounts.widest + securities.widest + 12
  let out = UnsafeMutableRawBufferPointer.allocate(byteCount: fingerprintChunkBytes + longest, alignment: 8)
  defer { out.deallocate() }
  var n = 0
  accounts.bytes.withUnsafeBytes { accountBytes in
    securities.bytes.withUnsafeBytes { securityBytes in
      @inline(__always) func put(_ ids: EncodedIds, _ source: UnsafeRawBufferPointer, _ i: Int) {
        let (start, end) = (ids.starts[i], ids.starts[i + 1])
        UnsafeMutableRawBufferPointer(rebasing: out[n..<n + (end - start)])
          .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[start..<end]))
        n += end - start
      }
      for h in holdings {
        let (a, s) = (Int(h.account), Int(h.security))
        precondition(
          a >= 0 && a < accounts.count && s >= 0 && s < securities.count,
          "fingerprint of a holding with an unknown account or security")
        put(accounts, accountBytes, a)
        put(securities, securityBytes, s)
        out.storeBytes(of: UInt64(bitPattern: h.quantity).littleEndian, toByteOffset: n, as: UInt64.self)
        out.storeBytes(
          of: UInt32(bitPattern: h.acquiredDate).littleEndian, toByteOffset: n + 8, as: UInt32.self)
        n += 12
        if n >= fingerprintChunkBytes {
          sha.update(UnsafeRawBufferPointer(rebasing: out[..<n]))
          n = 0
        }
      }
    }
  }
  sha.update(UnsafeRawBufferPointer(rebasing: out[..<n]))
}

/// A fingerprint of the first event lines of a stream, so that a state folder is
/// never resumed with another stream.
struct StreamFingerprint: Equatable {
  static let lineCountMax = 64
  var lineCount: Int64 = 0
  var sha = SHA256Stream()
  var digest: [UInt8] = SHA256Stream().finalize()

  var isComplete: Bool { lineCount >= Int64(Self.lineCountMax) }

  mutating func add(_ line: ArraySlice<UInt8>) {
    precondition(!isComplete, "fingerprint takes only the first lines")
    var w = ByteWriter()
    w.i32(Int32(line.count))
    sha.update(w.bytes)
    sha.update(line)
    lineCount += 1
    digest = sha.finalize()
  }

  var encoded: [UInt8] {
    var w = ByteWriter()
    w.i64(lineCount)
    w.raw(digest)
    return w.bytes
  }

  static func == (a: StreamFingerprint, b: StreamFingerprint) -> Bool {
    a.lineCount == b.lineCount && a.digest == b.digest
  }
}

public final class DurableEngine<K: BusinessKernel> {
  public private(set) var engine: Engine<K>
  public let store: any StateStore
  public var sync: Bool
  /// The last sequence number durably committed (waits for a commit in flight).
  public var committedSeq: Int64 {
    settle()
    return settledSeq
  }
  /// The checksum of the committed state (waits for a commit in flight).
  public var checksum: StateChecksum {
    settle()
    return settledChecksum
  }
  /// Commit latencies in nanoseconds, from taking the rows to the end of the write, for
  /// metrics and benchmarks (not state). Waits for a commit in flight.
  public var commitNanos: [Int64] {
    settle()
    return settledNanos
  }
  /// Snapshot latencies in nanoseconds (input-log layout; a snapshot of the rows layout
  /// is a commit).
  public var snapshotNanos: [Int64] {
    settle()
    return settledSnapshotNanos
  }
  /// How the folder keeps the state (the folder's own when it existed).
  public let layout: StateLayout
  /// Input-log layout: whether commits log the applied lines. A cluster replica logs
  /// none (`logLines: false`): its lines are in the sequencer's journal, durable before
  /// they were acknowledged, and a restart resumes from its last snapshot and fetches the
  /// rest again (docs/DECISIONS.md). The folder's `logged` marker then moves only with
  /// snapshots (or with the entries of a folder written before, applied again at open).
  public let logsLines: Bool
  /// Input-log layout: a commit after this many events since the last snapshot is one.
  public let snapshotEvents: Int64
  /// Input-log layout: the logged events applied again at open.
  public private(set) var replayedEvents: Int64 = 0
  /// Segment-log layout: what the open cut off the input log's end (an entry written but
  /// never synced, so never acknowledged: its events are applied again from the inputs).
  public private(set) var cutTail: String? = nil
  /// How long the open took, for `--timings` (not state): the opening state built (with
  /// the reference's fingerprint on the other core) and any stored rows laid over it and
  /// checked; then the logged lines applied again.
  public private(set) var openDurations: (opening: Duration, replay: Duration) = (.zero, .zero)
  /// The seq at which `checksum` (and `stateDigest`) was taken: the committed seq in the
  /// rows layout, the last snapshot's seq in the input-log layout (0: the opening state,
  /// whose checksum that layout does not compute). Waits for a commit in flight.
  public var digestSeq: Int64 {
    settle()
    return layout == .rows ? settledSeq : settledSnapshotSeq
  }

  private var settledSeq: Int64
  private var settledChecksum: StateChecksum
  private var settledNanos: [Int64] = []
  private var settledSnapshotNanos: [Int64] = []
  private var settledSnapshotSeq: Int64 = 0

  // Input-log layout, apply thread: the lines applied since the last commit (8 bytes
  // for the last seq, then `[length i32 LE][line]` each), the seq of the first, and the
  // events applied since the last snapshot.
  private var pendingLines: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0]
  private var pendingFirst: Int64 = 0
  private var pendingCount: Int64 = 0
  private var sinceSnapshot: Int64 = 0
  // Input-log layout, committer (as `rowHashes`): the first seqs of the log entries
  // stored since the last snapshot (the next snapshot deletes them) and the snapshots
  // stored.
  private var logKeys: [Int64] = []
  private var snapshotCount = 0
  /// Input-log layout: a failed commit or snapshot leaves the engine unable to commit
  /// (its lines are in no entry, or a snapshot's chunks are stored but not counted); every later commit fails
  /// with it, and a restart resumes from the folder.
  private var broken: DurableError?
  /// The log buffer of the last written entry, handed back to the apply thread.
  private var spareLines: [UInt8] = []
  /// Segment-log layout: the input log (`SegmentInputLog`); the committer's while a
  /// commit is in flight, the replay reader's while a resume reads it.
  private var segmentLog: SegmentLog?

  // Commit pipeline (depth 1): `commitInBackground()` takes the changed rows on the
  // apply thread and leaves hashing, the write and the fsync to `committer` while the
  // next events apply. While a commit is in flight, ONLY the committer touches
  // `rowHashes`, `rowBytes`, `rowEntries`, `commitBatch`, `undo`, `store`, `job` and
  // `outcome`; the apply
  // thread touches them again only after `inFlight.wait()` (which orders memory).
  private let committer = DispatchQueue(label: "tally.durable.commit")
  private let inFlight = DispatchGroup()
  private var isInFlight = false
  private var job: CommitJob?
  private var outcome: CommitOutcome?
  /// A background commit's failure, thrown by the next commit call.
  private var pendingError: DurableError?

  private var rowHashes: [[RowHash]]
  private var fingerprint = StreamFingerprint()
  private var storedFingerprint: (count: Int64, digest: [UInt8])?
  private var fingerprintDirty = false
  /// Lines offered so far (a stream shorter than the applied seq is another stream).
  private var offeredLines: Int64 = 0
  /// The changed rows of the commit being made, encoded one after another; after a
  /// failed write it still holds that commit's rows, written with the next one.
  private var rowBytes = ByteWriter(capacity: 1 << 20)
  private var rowEntries: [(table: StateTable, id: Int32, range: Range<Int>)] = []
  /// The batch a commit writes and the row hashes it replaced (to undo them if the write
  /// fails), kept from commit to commit: built anew, their megabytes came from fresh
  /// pages every commit.
  private var commitBatch = StoreBatch()
  private var undo: [(table: Int, id: Int, old: RowHash?)] = []

  /// Opens the state in `store`: a fresh state from `reference` when the store is
  /// empty, else the opening state from `reference` with the stored rows laid over it,
  /// verified. Throws when the store belongs to other reference data or another
  /// format, or when its checksum does not verify. With `stopBeforeLastLogEntry` (a
  /// replica) an input-log folder is opened at the seq before its last log entry: the
  /// engine applies those lines again from the journal, with their effects (a replica's
  /// last commit owes its effect records to the next, ReplicaCore's `owedEffects`).
  /// `segmentBytes`: the size of the segment-log layout's files (tests make it small).
  /// `referenceFiles`: the digest of the reference folder's files (`ReferenceFiles.digest`,
  /// throwing when they cannot be vouched for), called on another core while the opening
  /// state is built. Given, a fresh folder is marked with it (`ReferenceMarker`), and a
  /// folder so marked is checked against it; without it, a fresh folder is marked with
  /// the canonical fingerprint, and a folder marked with files is refused.
  public init(
    store: any StateStore, reference: ReferenceData, plantedFault: PlantedFault? = nil, sync: Bool = true,
    layout: StateLayout = .rows, snapshotEvents: Int64 = InputLogLimits.snapshotEventsDefault,
    stopBeforeLastLogEntry: Bool = false, logLines: Bool = true,
    segmentBytes: Int = SegmentLog.segmentBytesDefault,
    referenceFiles: (@Sendable () throws -> [UInt8])? = nil
  )
    throws
  {
    precondition(snapshotEvents >= 1)
    let openClock = ContinuousClock()
    let openStarted = openClock.now
    self.logsLines = logLines
    self.store = store
    self.sync = sync
    self.snapshotEvents = snapshotEvents
    let existing: [UInt8]?
    do { existing = try store.value(for: StateKeys.format) } catch { throw DurableError("\(error)") }
    var storedReference: [UInt8]? = nil
    if let existing {
      guard existing == Array(StateKeys.formatVersion.utf8) else {
        throw DurableError(
          "state folder was written by '\(String(decoding: existing, as: UTF8.self))', this is '\(StateKeys.formatVersion)'; use a new --state folder"
        )
      }
      storedReference = try store.value(for: StateKeys.reference)
      guard let l = try store.value(for: StateKeys.layout),
        let stored = StateLayout(rawValue: String(decoding: l, as: UTF8.self))
      else { throw DurableError("state folder has no layout marker: it is incomplete or damaged") }
      self.layout = stored
    } else {
      self.layout = layout
    }
    if self.layout == .segmentLog {
      precondition(
        logLines && !stopBeforeLastLogEntry, "the segment-log layout is a run's, which logs every line")
      let log = try SegmentInputLog.open(store, segmentBytes: segmentBytes)
      if existing == nil && !log.entries.isEmpty {
        throw DurableError(
          "state folder has an input log but no state markers: it is damaged; use a new --state folder")
      }
      segmentLog = log
      cutTail = log.cutTail
    }
    var storedChecksum: StateChecksum? = nil
    if existing != nil { (storedChecksum, storedFingerprint) = try Self.storedChecksumAndStream(store) }
    // The reference's marker (its files' digest, or its canonical encoding's SHA-256:
    // ~0.1-0.2 s on a 1M-account day) is computed on the other core while the kernel
    // builds its opening state from the same read-only value.
    let marker = try Self.referenceMarkerWork(
      stored: storedReference, reference: reference, files: referenceFiles)
    var opening = K(reference: reference, plantedFault: plantedFault)
    let referencePrint: [UInt8]
    switch marker.wait() {
    case .success(let print): referencePrint = print
    case .failure(let error): throw DurableError("\(error)")
    }
    if existing != nil, storedReference != referencePrint {
      throw DurableError(
        "state folder was made with other reference data; use the same --reference or a new --state folder")
    }
    if self.layout.logsInput {
      // No row hashes: the opening state is the reference's (fingerprinted), and each
      // snapshot's checksum is computed whole when it is taken and checked whole when it
      // is read (hashing the 7 M opening rows had cost every run and restart 0.4 s).
      rowHashes = []
      settledChecksum = storedChecksum ?? StateChecksum()
      guard existing != nil else {
        opening.setChangeTracking(true)
        opening.forgetChanges()
        engine = Engine(state: consume opening)
        settledSeq = 0
        snapshotCount = 1
        var markers = Self.markers(referencePrint, layout: self.layout)
        var w = ByteWriter()
        w.i64(1)  // snapshot 0 is the opening state: no rows, no checksum
        markers.put(StateKeys.snapshots, w.bytes)
        markers.put(StateKeys.logged, [UInt8](repeating: 0, count: 8))  // i64 0: nothing logged yet
        try commit(extra: markers)
        openDurations = (openClock.now - openStarted, .zero)
        return
      }
      guard let n = try store.value(for: StateKeys.snapshots), n.count == 8 else {
        throw DurableError("state folder has no snapshot count: it is incomplete or damaged")
      }
      var r = ByteReader(n)
      let storedSnapshots = Int(try r.i64())
      try deleteUncountedSnapshotChunks(store, snapshots: storedSnapshots)
      // The opening state is moved, never copied: a second reference to its tables (a
      // `var state = opening` here had one) made the first change of each table copy it
      // whole into fresh pages, hundreds of MB on the 1M-account day, in every resume and
      // replica restart.
      var state: K
      if storedSnapshots > 1 {
        do {
          state = try K.restore(opening: consume opening) { overlay in
            try overlaySnapshotRows(store, snapshots: storedSnapshots, overlay)
          }
        } catch let error as DurableError {
          throw error
        } catch {
          throw DurableError("state folder cannot be read: \(error)")
        }
        let sum = state.computeChecksum()
        guard let storedChecksum, storedChecksum == sum else {
          throw DurableError(
            "state folder is damaged: its last snapshot's checksum \(StateDigest.of(storedChecksum ?? StateChecksum()).hexString) differs from the loaded rows' \(StateDigest.of(sum).hexString); refusing to run"
          )
        }
      } else {
        state = consume opening
      }
      state.setChangeTracking(true)
      state.forgetChanges()
      engine = Engine(state: consume state)
      settledSeq = engine.appliedSeq
      settledSnapshotSeq = storedSnapshots > 1 ? engine.appliedSeq : 0
      snapshotCount = storedSnapshots
      let opened = openClock.now
      try replayLog(stopBeforeLast: stopBeforeLastLogEntry)
      openDurations = (opened - openStarted, openClock.now - opened)
      return
    }
    // Rows layout: the opening state and the hash of each of its rows; the stored rows are
    // changes to it.
    var (hashes, sum) = TallyEngine.rowHashes(of: opening)
    guard existing != nil else {
      // A fresh state: the first commit writes the markers and the opening checksum only.
      // Tracking on explicitly: a kernel's initial setting is its own (V2 starts off, V1
      // on; the cluster test of v1/v2/v1 found the difference).
      opening.setChangeTracking(true)
      opening.forgetChanges()
      engine = Engine(state: consume opening)
      settledSeq = 0
      settledChecksum = sum
      rowHashes = hashes
      try commit(extra: Self.markers(referencePrint, layout: .rows))
      return
    }
    let restored: K
    do {
      restored = try K.restore(opening: consume opening) { overlay in
        try overlayStoredRows(store, hashes: &hashes, checksum: &sum, overlay)
      }
    } catch let error as DurableError {
      throw error
    } catch {
      throw DurableError("state folder cannot be read: \(error)")
    }
    guard let storedChecksum else {
      throw DurableError("state folder has no checksum: it is incomplete or damaged")
    }
    guard storedChecksum == sum else {
      throw DurableError(
        "state folder is damaged: stored checksum \(StateDigest.of(storedChecksum).hexString) differs from the loaded rows' \(StateDigest.of(sum).hexString); refusing to run"
      )
    }
    rowHashes = hashes
    settledChecksum = sum
    var tracked = restored
    tracked.setChangeTracking(true)
    tracked.forgetChanges()
    engine = Engine(state: tracked)
    settledSeq = engine.appliedSeq
  }

  /// Opens a state folder of the segment-log layout (`tally run --state`) from its
  /// kernel image (KernelImageFile.swift) instead of the reference folder and the log:
  /// the folder must be at the image's seq (its log ends there), made with the image's
  /// reference fingerprint, and the image's chunk checksums must verify (checked on both
  /// core while the kernel loads). Any mismatch throws `ImageRefused`, and the caller
  /// opens the folder the long way.
  /// `alsoCheck` runs on the other core before the digest (the caller's own check of
  /// the image, such as the reference files'); a reason it returns refuses the image.
  public init(
    store: any StateStore, image: KernelImageFile.Mapped, plantedFault: PlantedFault?, sync: Bool = true,
    snapshotEvents: Int64 = InputLogLimits.snapshotEventsDefault,
    segmentBytes: Int = SegmentLog.segmentBytesDefault,
    alsoCheck: @escaping @Sendable () -> String? = { nil }
  ) throws {
    precondition(snapshotEvents >= 1)
    let openClock = ContinuousClock()
    let openStarted = openClock.now
    self.logsLines = true
    self.store = store
    self.sync = sync
    self.snapshotEvents = snapshotEvents
    func refuse(_ why: String) -> ImageRefused { ImageRefused(reason: why) }
    guard let existing = try store.value(for: StateKeys.format),
      existing == Array(StateKeys.formatVersion.utf8)
    else { throw refuse("the folder is not of this state format") }
    guard let l = try store.value(for: StateKeys.layout),
      StateLayout(rawValue: String(decoding: l, as: UTF8.self)) == .segmentLog
    else { throw refuse("the folder is not of the segment-log layout") }
    self.layout = .segmentLog
    guard let storedReference = try store.value(for: StateKeys.reference),
      storedReference == image.trailer.referencePrint
    else { throw refuse("the image was made with other reference data than the folder") }
    let log = try SegmentInputLog.open(store, segmentBytes: segmentBytes)
    segmentLog = log
    cutTail = log.cutTail
    let marker = try StateKeys.committedSeq(in: store)
    let logged = max(marker, log.entries.last?.last ?? 0)
    guard logged == image.trailer.seq else {
      throw refuse("the folder holds events through seq \(logged), the image is at seq \(image.trailer.seq)")
    }
    let (checksum, stream) = try Self.storedChecksumAndStream(store)
    settledChecksum = checksum ?? StateChecksum()
    storedFingerprint = stream
    guard let n = try store.value(for: StateKeys.snapshots), n.count == 8 else {
      throw DurableError("state folder has no snapshot count: it is incomplete or damaged")
    }
    var r = ByteReader(n)
    let storedSnapshots = Int(try r.i64())
    try deleteUncountedSnapshotChunks(store, snapshots: storedSnapshots)
    // Checked whole before it is loaded (on both cores); the caller's own check runs on
    // the other core meanwhile and while the kernel loads.
    // The log entries since the last snapshot are read and checked too (not applied):
    // a folder whose log is damaged is refused as the long way would refuse it, and not
    // left to fail at a later resume that has no image.
    let snapshotSeq = storedSnapshots > 1 ? marker : 0
    let handedLog = HandedOver(log)
    let checked = BackgroundWork { () -> Result<String?, DurableError> in
      if let refused = alsoCheck() { return .success(refused) }
      do { try Self.checkLogEntries(handedLog.value, after: snapshotSeq, through: logged) } catch {
        return .failure(error as? DurableError ?? DurableError("\(error)"))
      }
      return .success(nil)
    }
    guard image.bodyVerifies() else {
      _ = checked.wait()
      throw refuse("the image does not match its checksums (cut or damaged)")
    }
    var loaded: K?
    do {
      var reader = ImageReader(image.body)
      loaded = try K.loadImage(from: &reader, plantedFault: plantedFault)
    } catch {
      _ = checked.wait()
      throw refuse("the image does not load: \(error)")
    }
    if let refused = try checked.wait().get() { throw refuse(refused) }
    guard let state = loaded else { throw refuse("kernel \(K.versionName) keeps no image") }
    guard state.appliedSeq == image.trailer.seq else {
      throw refuse("the image's kernel is at seq \(state.appliedSeq), its trailer says \(image.trailer.seq)")
    }
    engine = Engine(state: state)
    rowHashes = []
    settledSeq = engine.appliedSeq
    settledSnapshotSeq = snapshotSeq
    snapshotCount = storedSnapshots
    // What a replay of the log since the last snapshot would have counted.
    sinceSnapshot = logged - settledSnapshotSeq
    openDurations = (openClock.now - openStarted, .zero)
  }

  /// An existing folder's stored checksum and stream fingerprint (either may be absent).
  private static func storedChecksumAndStream(_ store: any StateStore) throws -> (
    StateChecksum?, (count: Int64, digest: [UInt8])?
  ) {
    var checksum: StateChecksum? = nil
    if let bytes = try store.value(for: StateKeys.checksum) {
      guard let c = try? StateChecksum(decoding: bytes) else {
        throw DurableError("state folder's checksum does not decode: it is damaged")
      }
      checksum = c
    }
    var stream: (count: Int64, digest: [UInt8])? = nil
    if let f = try store.value(for: StateKeys.stream) {
      var r = ByteReader(f)
      let count = try r.i64()
      stream = (count, Array(f.dropFirst(8)))
    }
    return (checksum, stream)
  }

  /// Reads the segment log's entries after `snapshotSeq` and checks each as a replay
  /// would (its checksum, its lines, contiguous, ending at `logged`), without applying
  /// them: what a resume from a kernel image checks of the folder's log.
  private static func checkLogEntries(_ log: SegmentLog, after snapshotSeq: Int64, through logged: Int64)
    throws(DurableError)
  {
    var expected = snapshotSeq + 1
    for i in log.entries.indices where log.entries[i].last >= expected {
      let e = log.entries[i]
      guard e.first == expected else {
        throw DurableError(
          "state folder is damaged: its log continues at seq \(e.first) after seq \(expected - 1); refusing to run"
        )
      }
      let value: [UInt8]
      do { value = try log.read(i) } catch {
        throw DurableError("state folder is damaged: \(error); refusing to run")
      }
      let last: Int64
      do { (last, _) = try LogEntry.decode(value, first: e.first) } catch {
        throw DurableError(
          "state folder is damaged: its log entry at seq \(e.first) does not decode: \(error)")
      }
      guard last == e.last else {
        throw DurableError(
          "state folder is damaged: its log entry at seq \(e.first) ends at \(last), its header says \(e.last); refusing to run"
        )
      }
      expected = last + 1
    }
    guard expected - 1 == logged else {
      throw DurableError(
        "state folder is damaged: its log ends at seq \(expected - 1) but its marker says \(logged); refusing to run"
      )
    }
  }

  /// Starts computing the reference marker to store (a fresh folder: `stored` nil) or to
  /// compare with the stored one, of the stored one's kind (`ReferenceMarker`).
  private static func referenceMarkerWork(
    stored: [UInt8]?, reference: ReferenceData, files: (@Sendable () throws -> [UInt8])?
  ) throws -> BackgroundWork<Result<[UInt8], any Error>> {
    let wantsFiles = stored.map(ReferenceMarker.isFiles) ?? (files != nil)
    guard wantsFiles else { return BackgroundWork { .success(referenceFingerprint(reference)) } }
    guard let files else {
      throw DurableError(
        "state folder was made from a reference folder's files (its marker is their SHA-256); open it with that folder (tally run/inspect --reference)"
      )
    }
    return BackgroundWork { Result { ReferenceMarker.files(try files()) } }
  }

  /// The markers a fresh folder's first commit writes (the commit adds the checksum).
  private static func markers(_ referencePrint: [UInt8], layout: StateLayout) -> StoreBatch {
    var batch = StoreBatch()
    batch.put(StateKeys.format, Array(StateKeys.formatVersion.utf8))
    batch.put(StateKeys.reference, referencePrint)
    batch.put(StateKeys.layout, Array(layout.rawValue.utf8))
    return batch
  }

  /// Input-log layout, at open: applies the logged lines after the snapshots again, in
  /// order (their changes go into the next snapshot), and checks that they end where the
  /// folder's `logged` marker says.
  private func replayLog(stopBeforeLast: Bool) throws {
    let marker = try StateKeys.committedSeq(in: store)
    // The last seq logged: the marker (moved by every commit of the input-log layout);
    // in the segment-log layout the marker is the last snapshot's, the log's last entry
    // the position.
    let logged = max(marker, segmentLog?.entries.last?.last ?? 0)
    // Room for the lines to apply again (tables grown by doubling touch twice the pages).
    if logged > engine.appliedSeq { engine.reserveCapacity(events: Int(logged - engine.appliedSeq)) }
    // Each entry is read, checked, decoded and split on the other core (`LogEntryRead`) and
    // applied here when the next one arrives: with `stopBeforeLast` the last is checked
    // and left for the journal. Only the reader touches the store (or the segment log)
    // until it is done.
    let pipe = HandoffPipe<LogEntryRead>(depth: 4)
    let from = engine.appliedSeq + 1
    func damaged(continuesAt first: Int64, after expected: Int64) -> DurableError {
      DurableError(
        "state folder is damaged: its log continues at seq \(first) after seq \(expected - 1); refusing to run"
      )
    }
    let reader: BackgroundWork<[Int64]>
    if let segmentLog {
      precondition(!stopBeforeLast, "the segment-log layout is a run's")
      let log = HandedOver(segmentLog)
      reader = BackgroundWork { () -> [Int64] in
        do {
          let entries = log.value.entries
          var expected = from
          for i in entries.indices where entries[i].last >= from {
            let e = entries[i]
            guard e.first == expected else { throw damaged(continuesAt: e.first, after: expected) }
            let value: [UInt8]
            do { value = try log.value.read(i) } catch {
              throw DurableError("state folder is damaged: \(error); refusing to run")
            }
            let (last, ranges) = try LogEntry.decode(value, first: e.first)
            guard last == e.last else {
              throw DurableError(
                "state folder is damaged: its log entry at seq \(e.first) ends at \(last), its header says \(e.last); refusing to run"
              )
            }
            expected = last + 1
            let split = SplitLines(ranges[...], of: value, firstSeq: e.first)
            guard pipe.put(.init(first: e.first, last: last, value: value, split: split)) else { break }
          }
          pipe.finish(nil)
        } catch {
          pipe.finish(error)
        }
        return []
      }
    } else {
      let store = HandedOver(self.store)
      reader = BackgroundWork { () -> [Int64] in
        var keys: [Int64] = []
        var expected = from
        do {
          try store.value.scan(prefix: [StateKeys.logPrefix]) { key, value in
            guard key.count == 9 else { throw DurableError("unexpected log key \(key.hexString)") }
            var first: Int64 = 0
            for k in 1..<9 { first = first << 8 | Int64(key[k]) }
            guard first == expected else { throw damaged(continuesAt: first, after: expected) }
            var sha = SHA256Stream()
            sha.update(value)
            guard try store.value.value(for: StateKeys.logDigest(first)) == sha.finalize() else {
              throw DurableError(
                "state folder is damaged: its log entry at seq \(first) does not match its checksum; refusing to run"
              )
            }
            let (last, ranges) = try LogEntry.decode(value, first: first)
            keys.append(first)
            expected = last + 1
            let split = SplitLines(ranges[...], of: value, firstSeq: first)
            return pipe.put(.init(first: first, last: last, value: value, split: split))
          }
          pipe.finish(nil)
        } catch {
          pipe.finish(error)
        }
        return keys
      }
    }
    var held: LogEntryRead? = nil
    func apply(_ e: LogEntryRead) {
      engine.apply(split: e.split, of: e.value)
      precondition(engine.appliedSeq == e.last, "a logged line was not applied")
      sinceSnapshot += e.last - e.first + 1
    }
    do {
      while let e = try pipe.take() {
        if let h = held { apply(h) }
        held = e
      }
    } catch {
      pipe.cancel()
      _ = reader.wait()
      throw error
    }
    // Every entry, applied or left, is deleted by the next snapshot (a left one is
    // replaced by the next log commit, from the same seq).
    logKeys.append(contentsOf: reader.wait())
    var stoppedAt: Int64? = nil
    if let h = held {
      if stopBeforeLast { stoppedAt = h.last } else { apply(h) }
    }
    // Applied again, not applied now: the run's statistics count events of its inputs.
    replayedEvents = Int64(engine.statistics.events)
    engine.statistics = RunStatistics()
    guard logged == (stoppedAt ?? engine.appliedSeq) else {
      throw DurableError(
        "state folder is damaged: it holds events through seq \(engine.appliedSeq) but its marker says \(logged); refusing to run"
      )
    }
    settledSeq = engine.appliedSeq
  }

  /// Input-log layout: keeps applied lines for the next commit's log entry.
  @inline(__always)
  private func logLine(_ line: UnsafeRawBufferPointer, seq: Int64) {
    guard countApplied(1, firstSeq: seq) else { return }
    appendLE32(&pendingLines, UInt32(line.count))
    pendingLines.append(contentsOf: line)
  }

  /// Counts `count` applied lines from seq `firstSeq` toward the next snapshot and, in
  /// the input-log layout, toward the next commit's log entry; whether their bytes are
  /// to be logged (`logLine`, `logLines`).
  @inline(__always)
  private func countApplied(_ count: Int, firstSeq: Int64) -> Bool {
    sinceSnapshot += Int64(count)
    guard logsLines, count > 0 else { return false }
    if pendingCount == 0 { pendingFirst = firstSeq }
    pendingCount += Int64(count)
    return true
  }

  private func logLines(_ lines: ArraySlice<Range<Int>>, of bytes: [UInt8], firstSeq: Int64) {
    guard countApplied(lines.count, firstSeq: firstSeq) else { return }
    // As `logLine` one line after another (each line's length, u32 little-endian, then
    // its bytes), but the room for all of them made at once and filled through one
    // access: two appends a line took Array's generic path and a `memmove` call each,
    // ~7% of the apply thread of a `tally run --state` (perf, twenty-third session).
    var total = 0
    for r in lines {
      precondition(
        r.lowerBound >= 0 && r.lowerBound <= r.upperBound && r.upperBound <= bytes.count, "line in its bytes")
      precondition(r.count <= Int(UInt32.max), "a logged line's length fits its u32")
      total += 4 + r.count
    }
    var at = pendingLines.count
    pendingLines.append(contentsOf: repeatElement(0, count: total))
    pendingLines.withUnsafeMutableBytes { out in
      bytes.withUnsafeBytes { raw in
        // In bounds: the room is `total` bytes from `at`, and every range is in `bytes`.
        for r in lines {
          out.storeBytes(of: UInt32(r.count).littleEndian, toByteOffset: at, as: UInt32.self)
          if r.count > 0 {
            (out.baseAddress! + at + 4).copyMemory(from: raw.baseAddress! + r.lowerBound, byteCount: r.count)
          }
          at += 4 + r.count
        }
      }
    }
  }
}

/// The hash of every row of `state`, per table in row order, and their sum.
func rowHashes<K: BusinessKernel>(of state: K) -> (hashes: [[RowHash]], checksum: StateChecksum) {
  var hashes = [[RowHash]](repeating: [], count: Int(StateTable.allCases.map(\.rawValue).max()!) + 1)
  var sum = StateChecksum()
  state.forEachEncodedRow { table, id, bytes in
    let h = RowHash(table: table.rawValue, id: id, bytes: bytes)
    hashes[Int(table.rawValue)].append(h)
    sum.add(h)
  }
  return (hashes, sum)
}

/// Hands every stored row to `overlay` (which lays it over the opening state), keeping
/// the row hashes and their sum up to date.
func overlayStoredRows(
  _ store: any StateStore, hashes: inout [[RowHash]], checksum sum: inout StateChecksum,
  rowCount: ((StateTable, Int) -> Void)? = nil, _ overlay: (StateTable, Int32, [UInt8]) throws -> Void
) throws {
  for table in StateTable.allCases {
    let t = Int(table.rawValue)
    var n = 0
    try store.scan(prefix: [table.rawValue]) { key, value in
      guard let id = StateKeys.rowId(key) else { throw DurableError("unexpected key \(key.hexString)") }
      try overlay(table, id, value)
      let h = RowHash(table: table.rawValue, id: id, bytes: value)
      if Int(id) < hashes[t].count {
        sum.replace(hashes[t][Int(id)], with: h)
        hashes[t][Int(id)] = h
      } else {
        hashes[t].append(h)
        sum.add(h)
      }
      n += 1
      return true
    }
    rowCount?(table, n)
  }
}

extension DurableEngine {
  /// Room for about `events` more events offered (see `Engine.reserveCapacity(events:)`),
  /// less those the stored state has applied already: a resumed run would otherwise
  /// grow every day-sized table (1M trade rows, the trade index rehashed) for events it
  /// only skips.
  public func reserveCapacity(events: Int) {
    let alreadyApplied = max(0, engine.appliedSeq - offeredLines)
    let toApply = max(0, Int64(events) - alreadyApplied)
    if toApply > 0 { engine.reserveCapacity(events: Int(toApply)) }
  }

  /// Offers the next event line with its seq. Lines already applied (seq ≤ the
  /// stored position) are only checked against the stream fingerprint.
  /// Returns nil for a line that was skipped. Pre-specialised for each kernel version
  /// (exported: a caller that names the kernel type calls the specialised code).
  @discardableResult
  @_specialize(exported:true,where K == V1Kernel)
  @_specialize(exported:true,where K == V2Kernel)
  public func offer(line: ArraySlice<UInt8>, seq: Int64) throws -> Outcome? {
    offeredLines += 1
    if !fingerprint.isComplete {
      fingerprint.add(line)
      if let stored = storedFingerprint, fingerprint.lineCount == stored.count {
        guard fingerprint.digest == stored.digest else {
          throw DurableError(
            "state folder was made from another event stream (its first \(stored.count) events differ); use the same event files or a new --state folder"
          )
        }
      }
      if storedFingerprint.map({ fingerprint.lineCount > $0.count }) ?? true { fingerprintDirty = true }
    }
    if seq <= engine.appliedSeq { return nil }
    let outcome = engine.apply(line: line, seq: seq)
    if layout.logsInput { line.withUnsafeBytes { logLine($0, seq: seq) } }
    return outcome
  }

  /// Call after the last line was offered: a stream shorter than the stored
  /// fingerprint is another stream.
  public func finishStream() throws {
    if let stored = storedFingerprint, fingerprint.lineCount < stored.count {
      throw DurableError(
        "state folder was made from a longer event stream (\(stored.count) first events fingerprinted, this one has \(fingerprint.lineCount)); use the same event files or a new --state folder"
      )
    }
    if offeredLines < engine.appliedSeq {
      throw DurableError(
        "state folder is at seq \(engine.appliedSeq) but these event files have only \(offeredLines) events; use the same event files or a new --state folder"
      )
    }
  }

  /// Applies a journaled line (cluster replicas: the journal is the stream, so no
  /// fingerprint check).
  @discardableResult
  @_specialize(exported:true,where K == V1Kernel)
  @_specialize(exported:true,where K == V2Kernel)
  public func apply(line: ArraySlice<UInt8>, seq: Int64) -> Outcome {
    let outcome = engine.apply(line: line, seq: seq)
    if layout.logsInput { line.withUnsafeBytes { logLine($0, seq: seq) } }
    return outcome
  }

  /// Applies journaled lines (slices of `bytes`) as seqs `firstSeq`, …: see
  /// `Engine.apply(lines:of:firstSeq:)` (TRADE runs go to the kernel together).
  @_specialize(exported:true,where K == V1Kernel)
  @_specialize(exported:true,where K == V2Kernel)
  public func apply(
    lines: ArraySlice<Range<Int>>, of bytes: [UInt8], firstSeq: Int64, outcome: (Int, Outcome) -> Void
  ) {
    engine.apply(lines: lines, of: bytes, firstSeq: firstSeq, outcome: outcome)
    if layout.logsInput { logLines(lines, of: bytes, firstSeq: firstSeq) }
  }

  /// The same with the lines split before (`split`: all of `lines`, numbered from
  /// their first seq): what `apply(lines:of:firstSeq:outcome:)` does, without the split.
  @_specialize(exported:true,where K == V1Kernel)
  @_specialize(exported:true,where K == V2Kernel)
  public func apply(
    split: SplitLines, lines: ArraySlice<Range<Int>>, of bytes: [UInt8], outcome: (Int, Outcome) -> Void
  ) {
    precondition(split.count == lines.count, "the split holds the lines")
    engine.apply(split: split, of: bytes, outcome: outcome)
    if layout.logsInput { logLines(lines, of: bytes, firstSeq: split.firstSeq) }
  }

  /// Offers consecutive event lines (slices of `bytes`) as seqs `firstSeq`, …, as
  /// `offer(line:seq:)` does one by one: lines already applied are only checked against
  /// the stream fingerprint, the rest applied together. Returns how many were applied.
  /// With `split` (all the lines `lines` is a slice of, split before: `SplitLines`,
  /// indexed alike) the lines applied are not split again.
  @discardableResult
  @_specialize(exported:true,where K == V1Kernel)
  @_specialize(exported:true,where K == V2Kernel)
  public func offer(
    lines: ArraySlice<Range<Int>>, of bytes: [UInt8], firstSeq: Int64, split: SplitLines? = nil
  ) throws -> Int {
    var next = lines.startIndex
    var seq = firstSeq
    var applied = 0
    // Line by line while the fingerprint is being taken.
    while next < lines.endIndex && !fingerprint.isComplete {
      if try offer(line: bytes[lines[next]], seq: seq) != nil { applied += 1 }
      next += 1
      seq += 1
    }
    // Lines applied before (a resumed run) are only counted.
    let appliedSeq = engine.appliedSeq
    if seq <= appliedSeq && next < lines.endIndex {
      let skipped = Int(min(Int64(lines.endIndex - next), appliedSeq - seq + 1))
      offeredLines += Int64(skipped)
      next += skipped
      seq += Int64(skipped)
    }
    let rest = lines.endIndex - next
    if rest > 0 {
      offeredLines += Int64(rest)
      if let split {
        precondition(split.firstSeq + Int64(next) == seq, "the split numbers the lines as offered")
        engine.apply(split: split, of: bytes, range: next..<lines.endIndex)
      } else {
        engine.apply(lines: lines[next...], of: bytes, firstSeq: seq)
      }
      if layout.logsInput { logLines(lines[next...], of: bytes, firstSeq: seq) }
      applied += rest
    }
    return applied
  }

  /// Business effects (docs/EFFECTS.md): on for replicas, taken per journal batch.
  public func enableEffects() { engine.enableEffects() }
  public func takeEffects() -> [UInt8] { engine.takeEffects() }

  /// Applies an already parsed event (cluster replicas).
  @discardableResult
  public func apply(_ event: Event, seq: Int64) -> Outcome {
    precondition(layout == .rows, "the input-log layout logs lines: apply the event's line")
    return engine.apply(event, seq: seq)
  }

  /// Commits what changed since the last commit, atomically with the position and
  /// with `extra` (a replica's vote log rides in the same batch). Returns when the
  /// commit is durable (after the one in flight, if any).
  public func commit(extra: StoreBatch = StoreBatch()) throws {
    try start(CommitJob(batch: extra))
    outcome = write(job!)
    try finishCommit()
  }

  /// Like `commit(extra:)`, with the extra writes made from the new state digest
  /// (a replica's vote carries the digest of exactly the state it commits). With
  /// `withDigest` the commit states the whole state's digest and `extraFromDigest` gets
  /// it: the rows layout has it from its row hashes at every commit, the input-log
  /// layout takes a snapshot for it (its whole checksum, computed once). Without,
  /// `extraFromDigest` gets nil and the input-log layout writes only a log entry.
  public func commit(withDigest: Bool, extraFromDigest: @escaping ([UInt8]?) -> StoreBatch) throws {
    var job = CommitJob(batch: StoreBatch())
    job.extraFromDigest = { digest in extraFromDigest(withDigest ? digest : nil) }
    try start(job, snapshot: withDigest)
    outcome = write(self.job!)
    try finishCommit()
  }

  /// Takes what changed since the last commit and writes it in the background while the
  /// caller applies the next events. Waits for the previous commit first; a failure of
  /// a background commit is thrown by the next call (this one, `commit` or
  /// `finishCommit`). `committedSeq` and `checksum` tell what is durable.
  public func commitInBackground(extra: StoreBatch = StoreBatch()) throws {
    try start(CommitJob(batch: extra))
    runInBackground()
  }

  /// Commits everything as a snapshot (input-log layout; a commit in the rows layout),
  /// returning when it is durable: a completed run ends with one, so that a restart
  /// reads rows and applies no line again.
  public func snapshot(extra: StoreBatch = StoreBatch()) throws {
    try start(CommitJob(batch: extra), snapshot: true)
    outcome = write(job!)
    try finishCommit()
  }

  /// `snapshot()` written in the background: `finishCommit()`
  /// waits for both.
  public func snapshotInBackground() throws {
    try start(CommitJob(batch: StoreBatch()), snapshot: true)
    runInBackground()
  }

  private func runInBackground() {
    // Safe: while a commit is in flight the two threads touch disjoint fields (the
    // pipeline notes) and the DispatchGroup's enter/leave/wait order their memory.
    let box = HandedOver(self)
    inFlight.enter()
    isInFlight = true
    committer.async {
      let d = box.value
      d.outcome = d.write(d.job!)
      d.inFlight.leave()
    }
  }

  /// Waits for the commit in flight, if any; throws its failure.
  public func finishCommit() throws {
    settle()
    if let error = pendingError {
      pendingError = nil
      throw error
    }
  }

  /// Waits for the commit in flight and takes its outcome (apply thread only).
  private func settle() {
    if isInFlight {
      inFlight.wait()
      isInFlight = false
    }
    guard let o = outcome else { return }
    outcome = nil
    job = nil
    switch o {
    case .failed(let error): pendingError = error
    case .committed(let sum, let seq, let written, let nanos, let wasSnapshot):
      if let written {
        storedFingerprint = written
        if fingerprint.lineCount == written.count { fingerprintDirty = false }
      }
      settledChecksum = sum
      settledSeq = seq
      if wasSnapshot && layout.logsInput {
        settledSnapshotNanos.append(nanos)
        settledSnapshotSeq = seq
      } else {
        settledNanos.append(nanos)
      }
    }
  }

  /// Starts a commit on the apply thread: waits for the previous one, takes the changed
  /// rows into `rowBytes` (after a failed commit's rows, which are written again) and
  /// what the commit must carry. Without a background commit, writes it right away.
  private func start(_ new: CommitJob, snapshot: Bool = false) throws {
    try finishCommit()
    var job = new
    job.started = ContinuousClock().now
    job.seq = engine.appliedSeq
    job.previousSeq = settledSeq
    job.checksum = settledChecksum
    if fingerprintDirty { job.fingerprint = (fingerprint.lineCount, fingerprint.digest, fingerprint.encoded) }
    switch layout {
    case .rows:
      job.kind = .rows
    case .inputLog, .segmentLog:
      job.kind = snapshot || sinceSnapshot >= snapshotEvents ? .snapshot : .log
    }
    if job.kind == .log {
      takePendingLines(into: &job)
    } else {
      // The entries are gathered in a local array, moved back after: appended to the
      // property one by one, each row paid the runtime's exclusivity check of a class's
      // property twice (~1% of a digest snapshot, perf, twenty-eighth session).
      var entries = rowEntries
      rowEntries = []
      if layout.logsInput {
        // About 200 bytes of rows an event; reserved, not touched (growing a buffer of
        // hundreds of megabytes by doubling cost a second of fresh pages and copies).
        // About 3 rows an event (a trade, its slices, two positions): the entries'
        // doublings copied up to 70 MB into fresh pages on the 1M-event day.
        let events = Int(min(sinceSnapshot, 1 << 24))
        rowBytes.reserveCapacity(rowBytes.count + events * 256 + (1 << 20))
        entries.reserveCapacity(entries.count + events * 4 + 1024)
      }
      if job.kind == .snapshot {
        // The whole state's checksum, computed anew (the input-log layout keeps no row
        // hashes): what a restart that reads this snapshot must find. Taken with the
        // changed rows in one walk: a kernel may encode each row once for both (V1's
        // 1M-trade digest snapshot encoded its changed rows twice and every row once
        // more, ~2.5 s on the replica's thread, docs/PERFORMANCE.md).
        job.checksum = engine.takeChangedRowsAndChecksum(into: &rowBytes) { table, id, range in
          entries.append((table, id, range))
        }
        if layout == .segmentLog {
          // Logged all the same: the segment log's entries follow one another.
          takePendingLines(into: &job)
        } else {
          // The snapshot holds these lines' effects: they need no log entry.
          pendingLines.removeSubrange(8...)
          pendingCount = 0
        }
        sinceSnapshot = 0
      } else {
        engine.takeChangedRows(into: &rowBytes) { table, id, range in entries.append((table, id, range)) }
      }
      rowEntries = entries
    }
    self.job = job
  }

  /// The lines applied since the last commit become the job's log entry (none when
  /// there are none).
  private func takePendingLines(into job: inout CommitJob) {
    guard pendingCount > 0 else { return }
    withUnsafeBytes(of: (pendingFirst + pendingCount - 1).littleEndian) { last in
      for k in 0..<8 { pendingLines[k] = last[k] }
    }
    job.logFirst = pendingFirst
    job.logLast = pendingFirst + pendingCount - 1
    // The buffer goes to the committer; the one it wrote last time comes back.
    job.lines = pendingLines
    pendingLines = spareLines
    spareLines = []
    pendingLines.removeAll(keepingCapacity: true)
    pendingLines.append(contentsOf: [0, 0, 0, 0, 0, 0, 0, 0] as [UInt8])
    pendingCount = 0
  }

  /// Segment-log layout, committer: appends the job's entry (if any) and syncs it.
  private func appendEntry(_ job: CommitJob) throws {
    guard job.logFirst > 0, let segmentLog else { return }
    try segmentLog.append(first: job.logFirst, last: job.logLast, parts: [job.lines])
    try segmentLog.sync(durably: sync)
  }

  /// Hashes the taken rows, writes them with the checksum and the job's extras in one
  /// batch, and syncs. Runs on the committer (or inline for a synchronous commit).
  private func write(_ job: CommitJob) -> CommitOutcome {
    if job.kind == .log { return writeLog(job) }
    if job.kind == .snapshot { return writeSnapshot(job) }
    var sum = job.checksum
    var batch = commitBatch
    commitBatch = StoreBatch()  // the buffers move to `batch` (no copy) and come back below
    defer {
      batch.removeAll()
      commitBatch = batch
    }
    batch.append(contentsOf: job.batch)
    batch.reserveCapacity(puts: rowEntries.count + 4, bytes: rowBytes.count + rowEntries.count * 5 + 256)
    // Row hashes are updated in place (a copy of millions of them per commit cost more
    // than the commit); `undo` restores them if the write fails.
    undo.removeAll(keepingCapacity: true)
    undo.reserveCapacity(rowEntries.count)
    rowBytes.bytes.withUnsafeBytes { raw in
      for (table, id, range) in rowEntries {
        let value = UnsafeRawBufferPointer(rebasing: raw[range])
        let h = RowHash(table: table.rawValue, id: id, raw: value)
        let t = Int(table.rawValue)
        if Int(id) < rowHashes[t].count {
          let old = rowHashes[t][Int(id)]
          sum.replace(old, with: h)
          rowHashes[t][Int(id)] = h
          undo.append((t, Int(id), old))
        } else {
          precondition(Int(id) == rowHashes[t].count, "\(table.name) row \(id) skipped an id")
          rowHashes[t].append(h)
          sum.add(h)
          undo.append((t, Int(id), nil))
        }
        let u = UInt32(bitPattern: id)
        let key: (UInt8, UInt8, UInt8, UInt8, UInt8) = (
          table.rawValue, UInt8(u >> 24), UInt8(truncatingIfNeeded: u >> 16),
          UInt8(truncatingIfNeeded: u >> 8),
          UInt8(truncatingIfNeeded: u)
        )
        withUnsafeBytes(of: key) { batch.put(key: $0, value: value) }
      }
    }
    batch.put(StateKeys.checksum, sum.encoded)
    if let extraFromDigest = job.extraFromDigest {
      batch.append(contentsOf: extraFromDigest(StateDigest.of(sum)))
    }
    if let f = job.fingerprint { batch.put(StateKeys.stream, f.encoded) }
    do {
      try store.commit(batch, sync: sync)
    } catch {
      // Nothing of this commit counts: its rows stay taken and go with the next one.
      for u in undo.reversed() {
        if let old = u.old { rowHashes[u.table][u.id] = old } else { rowHashes[u.table].removeLast() }
      }
      return .failed(
        DurableError(
          "commit of seq \(job.seq) failed: \(error); the state folder still holds seq \(job.previousSeq), run again to resume"
        ))
    }
    rowBytes.reset()
    rowEntries.removeAll(keepingCapacity: true)
    return .committed(
      sum, seq: job.seq, fingerprint: job.fingerprint.map { ($0.count, $0.digest) },
      nanos: nanosSince(job.started), snapshot: false)
  }

  /// Input-log layout: hashes the taken rows, bulk-loads them packed under this
  /// snapshot's number (`StateStore.load(sorted:)`), then makes the snapshot count in
  /// one synced batch: the snapshot count, the checksum, the `logged` marker, and the
  /// deletion of the log entries it covers. Chunks loaded without that batch (a crash
  /// between the two) belong to no counted snapshot and are deleted at the next open.
  private func writeSnapshot(_ job: CommitJob) -> CommitOutcome {
    if let broken { return .failed(broken) }
    guard snapshotCount < InputLogLimits.snapshotsMax else {
      return breakOff(
        "snapshot", job,
        DurableError(
          "the folder holds \(snapshotCount) snapshots, its limit (InputLogLimits.snapshotsMax): use a larger --snapshot-events or a new --state folder"
        ))
    }
    let sum = job.checksum
    var batch = commitBatch
    commitBatch = StoreBatch()
    defer {
      batch.removeAll()
      commitBatch = batch
    }
    let number = snapshotCount
    do {
      // Segment-log layout: the lines since the last commit are logged before the
      // snapshot counts (a crash between applies them again over the snapshot before).
      try appendEntry(job)
      try store.load { put in
        var packer = SnapshotPacker(snapshot: number)
        try rowBytes.bytes.withUnsafeBytes { raw in
          for (table, id, range) in rowEntries {
            try packer.add(table: table, id: id, row: UnsafeRawBufferPointer(rebasing: raw[range]), put)
          }
        }
        try packer.flush(put)
      }
      batch.append(contentsOf: job.batch)
      var w = ByteWriter()
      w.i64(Int64(number + 1))
      batch.put(StateKeys.snapshots, w.bytes)
      w.reset()
      w.i64(job.seq)
      batch.put(StateKeys.logged, w.bytes)
      batch.put(StateKeys.checksum, sum.encoded)
      if let extraFromDigest = job.extraFromDigest {
        batch.append(contentsOf: extraFromDigest(StateDigest.of(sum)))
      }
      if let f = job.fingerprint { batch.put(StateKeys.stream, f.encoded) }
      for first in logKeys {
        batch.delete(StateKeys.logEntry(first))
        batch.delete(StateKeys.logDigest(first))
      }
      try store.commit(batch, sync: sync)
      // The segments this snapshot covers whole are no longer needed.
      try segmentLog?.dropSegments(endingBy: job.seq)
    } catch {
      // Chunks of this number may be stored and its lines are in no entry.
      return breakOff("snapshot", job, error)
    }
    rowBytes.reset()
    rowEntries.removeAll(keepingCapacity: true)
    logKeys.removeAll()
    if job.logFirst > 0 { spareLines = job.lines }  // its log buffer back to the apply thread
    snapshotCount += 1
    return .committed(
      sum, seq: job.seq, fingerprint: job.fingerprint.map { ($0.count, $0.digest) },
      nanos: nanosSince(job.started), snapshot: true)
  }

  /// Input-log layout: writes the lines applied since the last commit as one log entry,
  /// with the `logged` marker, and syncs. The state checksum stays the last snapshot's.
  private func writeLog(_ job: CommitJob) -> CommitOutcome {
    if let broken { return .failed(broken) }
    var batch = commitBatch
    commitBatch = StoreBatch()
    defer {
      batch.removeAll()
      commitBatch = batch
      spareLines = job.lines
    }
    batch.append(contentsOf: job.batch)
    // A log entry states no digest (the checksum is the last snapshot's).
    if let extraFromDigest = job.extraFromDigest { batch.append(contentsOf: extraFromDigest(nil)) }
    if segmentLog != nil {
      // The store first (markers, the stream's fingerprint: what the lines are checked
      // against at a resume), then the entry, synced; no `logged` marker (the log's
      // last entry is the position).
      if let f = job.fingerprint { batch.put(StateKeys.stream, f.encoded) }
      do {
        if !batch.isEmpty { try store.commit(batch, sync: sync) }
        try appendEntry(job)
      } catch {
        return breakOff("commit", job, error)
      }
      return .committed(
        job.checksum, seq: job.seq, fingerprint: job.fingerprint.map { ($0.count, $0.digest) },
        nanos: nanosSince(job.started), snapshot: false)
    }
    if job.logFirst > 0 {
      batch.put(StateKeys.logEntry(job.logFirst), job.lines)
      var sha = SHA256Stream()
      sha.update(job.lines)
      batch.put(StateKeys.logDigest(job.logFirst), sha.finalize())
    }
    if logsLines {
      var w = ByteWriter()
      w.i64(job.seq)
      batch.put(StateKeys.logged, w.bytes)
    }
    if let f = job.fingerprint { batch.put(StateKeys.stream, f.encoded) }
    do {
      try store.commit(batch, sync: sync)
    } catch {
      // Its lines are applied but in no entry.
      return breakOff("commit", job, error)
    }
    if job.logFirst > 0 { logKeys.append(job.logFirst) }
    return .committed(
      job.checksum, seq: job.seq, fingerprint: job.fingerprint.map { ($0.count, $0.digest) },
      nanos: nanosSince(job.started), snapshot: false)
  }

  /// Input-log layout: after a failed write this engine cannot commit again (lines
  /// applied but in no entry, or a snapshot's chunks stored but not counted); every later
  /// commit fails with the same error, and a restart resumes from what the folder counts.
  private func breakOff(_ what: String, _ job: CommitJob, _ error: any Error) -> CommitOutcome {
    let failure = DurableError(
      "\(what) of seq \(job.seq) failed: \(error); the state folder still holds seq \(job.previousSeq), run again to resume"
    )
    broken = failure
    return .failed(failure)
  }

  private func nanosSince(_ start: ContinuousClock.Instant) -> Int64 {
    let elapsed = ContinuousClock().now - start
    return elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
  }

  /// The digest of the committed state, from the incremental checksum.
  public var stateDigest: [UInt8] { StateDigest.of(checksum) }
}

/// What a commit carries besides the changed rows, fixed when it starts.
private struct CommitJob {
  var batch: StoreBatch
  var extraFromDigest: (([UInt8]?) -> StoreBatch)?
  var fingerprint: (count: Int64, digest: [UInt8], encoded: [UInt8])?
  var seq: Int64 = 0
  var previousSeq: Int64 = 0
  var checksum = StateChecksum()
  var started = ContinuousClock().now
  var kind = Kind.rows
  /// A log job's entry: the last seq (8 bytes) then the lines; `logFirst` 0 when none.
  var lines: [UInt8] = []
  var logFirst: Int64 = 0
  var logLast: Int64 = 0

  enum Kind { case rows, log, snapshot }

  init(batch: StoreBatch) { self.batch = batch }
}

private enum CommitOutcome {
  case committed(
    StateChecksum, seq: Int64, fingerprint: (count: Int64, digest: [UInt8])?, nanos: Int64, snapshot: Bool)
  case failed(DurableError)
}
