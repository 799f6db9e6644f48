// The engine with its state in a StateStore (RocksDB for real runs). State lives
// in memory; every commit writes the rows that changed since the last commit,
// the state checksum and the applied sequence number in ONE atomic batch, so
// state and position never disagree. The opening state is not stored: it is a
// pure function of the reference folder (whose fingerprint the store keeps), so a
// restart rebuilds it, lays the stored rows (every row changed since the opening)
// over it, recomputes the checksum and refuses to run if it differs from the
// stored one. Key layout: docs/STATE-LAYOUT.md.
import Dispatch
import KernelAPI
import KernelV1
import KernelV2
import TallyFormat

public struct DurableError: Error, CustomStringConvertible, Sendable {
  public var description: String
  public init(_ description: String) { self.description = description }
}

public enum StateKeys {
  /// Bumped when the stored layout or the business rules change incompatibly.
  /// 3: only rows changed since the opening state are stored (2 stored every row).
  public static let formatVersion = "tally-state/3 spec/2026-11"
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

/// SHA-256 of the canonical encoding of a reference folder: a state folder is only
/// ever resumed with the reference data it was made with.
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
  w.i32(Int32(r.accounts.count))
  for a in r.accounts {
    w.string(a.id)
    w.u8(a.kind.rawValue)
    drain(&w, &sha)
  }
  w.i32(Int32(r.holdings.count))
  for h in r.holdings {
    w.string(r.accounts[Int(h.account)].id)
    w.string(r.securities[Int(h.security)].code)
    w.i64(h.quantity)
    w.i32(h.acquiredDate)
    drain(&w, &sha)
  }
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

  private var settledSeq: Int64
  private var settledChecksum: StateChecksum
  private var settledNanos: [Int64] = []

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
  /// format, or when its checksum does not verify.
  public init(
    store: any StateStore, reference: ReferenceData, plantedFault: PlantedFault? = nil, sync: Bool = true
  )
    throws
  {
    self.store = store
    self.sync = sync
    let referencePrint = referenceFingerprint(reference)
    let existing: [UInt8]?
    do { existing = try store.value(for: StateKeys.format) } catch { throw DurableError("\(error)") }
    if let existing {
      guard existing == Array(StateKeys.formatVersion.utf8) else {
        throw DurableError(
          "state folder was written by '\(String(decoding: existing, as: UTF8.self))', this is '\(StateKeys.formatVersion)'; use a new --state folder"
        )
      }
      guard try store.value(for: StateKeys.reference) == referencePrint else {
        throw DurableError(
          "state folder was made with other reference data; use the same --reference or a new --state folder")
      }
    }
    // The opening state and the hash of each of its rows: the stored rows are changes to it.
    var opening = K(reference: reference, plantedFault: plantedFault)
    var (hashes, sum) = TallyEngine.rowHashes(of: opening)
    guard existing != nil else {
      // A fresh state: the first commit writes the markers and the opening checksum only.
      // Tracking on explicitly: a kernel's initial setting is its own (V2 starts off,
      // V1 on; the cluster test of v1/v2/v1 found the difference).
      opening.setChangeTracking(true)
      opening.forgetChanges()
      engine = Engine(state: opening)
      settledSeq = 0
      settledChecksum = sum
      rowHashes = hashes
      var batch = StoreBatch()
      batch.put(StateKeys.format, Array(StateKeys.formatVersion.utf8))
      batch.put(StateKeys.reference, referencePrint)
      try commit(extra: batch)
      return
    }
    let restored: K
    do {
      restored = try K.restore(opening: consume opening) { overlay in
        try overlayStoredRows(store, hashes: &hashes, checksum: &sum, overlay)
      }
    } catch {
      throw DurableError("state folder cannot be read: \(error)")
    }
    guard let storedChecksumBytes = try store.value(for: StateKeys.checksum),
      let storedChecksum = try? StateChecksum(decoding: storedChecksumBytes)
    else { throw DurableError("state folder has no checksum: it is incomplete or damaged") }
    guard storedChecksum == sum else {
      throw DurableError(
        "state folder is damaged: stored checksum \(StateDigest.of(storedChecksum).hexString) differs from the loaded rows' \(StateDigest.of(sum).hexString); refusing to run"
      )
    }
    if let f = try store.value(for: StateKeys.stream) {
      var r = ByteReader(f)
      let count = try r.i64()
      storedFingerprint = (count, Array(f.dropFirst(8)))
    }
    rowHashes = hashes
    settledChecksum = sum
    var tracked = restored
    tracked.setChangeTracking(true)
    tracked.forgetChanges()
    engine = Engine(state: tracked)
    settledSeq = engine.appliedSeq
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
    return engine.apply(line: line, seq: seq)
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
  public func apply(line: ArraySlice<UInt8>, seq: Int64) -> Outcome {
    engine.apply(line: line, seq: seq)
  }

  /// Applies journaled lines (slices of `bytes`) as seqs `firstSeq`, …: see
  /// `Engine.apply(lines:of:firstSeq:)` (TRADE runs go to the kernel together).
  @_specialize(exported:true,where K == V1Kernel)
  public func apply(
    lines: ArraySlice<Range<Int>>, of bytes: [UInt8], firstSeq: Int64, outcome: (Int, Outcome) -> Void
  ) {
    engine.apply(lines: lines, of: bytes, firstSeq: firstSeq, outcome: outcome)
  }

  /// Offers consecutive event lines (slices of `bytes`) as seqs `firstSeq`, …, as
  /// `offer(line:seq:)` does one by one: lines already applied are only checked against
  /// the stream fingerprint, the rest applied together. Returns how many were applied.
  @discardableResult
  @_specialize(exported:true,where K == V1Kernel)
  public func offer(lines: ArraySlice<Range<Int>>, of bytes: [UInt8], firstSeq: Int64) throws -> Int {
    var next = lines.startIndex
    var seq = firstSeq
    var applied = 0
    // Line by line while the fingerprint is being taken or the lines were applied before.
    while next < lines.endIndex && (!fingerprint.isComplete || seq <= engine.appliedSeq) {
      if try offer(line: bytes[lines[next]], seq: seq) != nil { applied += 1 }
      next += 1
      seq += 1
    }
    let rest = lines.endIndex - next
    if rest > 0 {
      offeredLines += Int64(rest)
      engine.apply(lines: lines[next...], of: bytes, firstSeq: seq)
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
    engine.apply(event, seq: seq)
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
  /// (a replica's vote carries the digest of exactly the state it commits).
  public func commit(extraFromDigest: @escaping ([UInt8]) -> StoreBatch) throws {
    var job = CommitJob(batch: StoreBatch())
    job.extraFromDigest = extraFromDigest
    try start(job)
    outcome = write(self.job!)
    try finishCommit()
  }

  /// Takes what changed since the last commit and writes it in the background while the
  /// caller applies the next events. Waits for the previous commit first; a failure of
  /// a background commit is thrown by the next call (this one, `commit` or
  /// `finishCommit`). `committedSeq` and `checksum` tell what is durable.
  public func commitInBackground() throws {
    try start(CommitJob(batch: StoreBatch()))
    let box = Unchecked(engine: self)
    inFlight.enter()
    isInFlight = true
    committer.async {
      let d = box.engine
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
    case .committed(let sum, let seq, let written, let nanos):
      if let written {
        storedFingerprint = written
        if fingerprint.lineCount == written.count { fingerprintDirty = false }
      }
      settledChecksum = sum
      settledSeq = seq
      settledNanos.append(nanos)
    }
  }

  /// Starts a commit on the apply thread: waits for the previous one, takes the changed
  /// rows into `rowBytes` (after a failed commit's rows, which are written again) and
  /// what the commit must carry. Without a background commit, writes it right away.
  private func start(_ new: CommitJob) throws {
    try finishCommit()
    var job = new
    job.started = ContinuousClock().now
    job.seq = engine.appliedSeq
    job.previousSeq = settledSeq
    job.checksum = settledChecksum
    if fingerprintDirty { job.fingerprint = (fingerprint.lineCount, fingerprint.digest, fingerprint.encoded) }
    engine.takeChangedRows(into: &rowBytes) { table, id, range in rowEntries.append((table, id, range)) }
    self.job = job
  }

  /// Hashes the taken rows, writes them with the checksum and the job's extras in one
  /// batch, and syncs. Runs on the committer (or inline for a synchronous commit).
  private func write(_ job: CommitJob) -> CommitOutcome {
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
    let elapsed = ContinuousClock().now - job.started
    return .committed(
      sum, seq: job.seq, fingerprint: job.fingerprint.map { ($0.count, $0.digest) },
      nanos: elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
  }

  /// The digest of the committed state, from the incremental checksum.
  public var stateDigest: [UInt8] { StateDigest.of(checksum) }
}

/// What a commit carries besides the changed rows, fixed when it starts.
private struct CommitJob {
  var batch: StoreBatch
  var extraFromDigest: (([UInt8]) -> StoreBatch)?
  var fingerprint: (count: Int64, digest: [UInt8], encoded: [UInt8])?
  var seq: Int64 = 0
  var previousSeq: Int64 = 0
  var checksum = StateChecksum()
  var started = ContinuousClock().now

  init(batch: StoreBatch) { self.batch = batch }
}

private enum CommitOutcome {
  case committed(StateChecksum, seq: Int64, fingerprint: (count: Int64, digest: [UInt8])?, nanos: Int64)
  case failed(DurableError)
}

/// The engine handed to its committer thread. Safe because, while a commit is in
/// flight, the two threads touch disjoint fields (see DurableEngine's pipeline notes)
/// and the DispatchGroup's enter/leave/wait order their memory.
private struct Unchecked<K: BusinessKernel>: @unchecked Sendable {
  let engine: DurableEngine<K>
}
