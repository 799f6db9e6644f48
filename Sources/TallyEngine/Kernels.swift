// The kernel versions a node can run, by the name used in configs and flags
// (KernelAPI's KernelName: `v1`, `v2`, and `-faulty…` variants with a planted fault,
// for N-version tests and chaos scenarios only).
import KernelAPI
import KernelV1
import KernelV2

public enum KernelCatalog {
  /// Version name → kernel type.
  public static let versions: [(name: String, type: any BusinessKernel.Type)] = [
    ("v1", V1Kernel.self),
    ("v2", V2Kernel.self),
  ]

  /// Every accepted name: each version, then each version with each planted fault.
  public static let names: [String] =
    versions.map(\.name)
    + versions.flatMap { v in PlantedFault.allCases.map { KernelName.name(version: v.name, fault: $0) } }

  /// The kernel type and planted fault a name stands for.
  public static func resolve(_ name: String) throws(UsageError) -> (
    type: any BusinessKernel.Type, fault: PlantedFault?
  ) {
    guard let (version, fault) = KernelName.parse(name),
      let entry = versions.first(where: { $0.name == version })
    else { throw UsageError("unknown kernel '\(name)'; known: \(names.joined(separator: ", "))") }
    return (entry.type, fault)
  }
}

/// A mistake in how a command was called (a flag, a name), reported as is.
public struct UsageError: Error, CustomStringConvertible, Sendable {
  public var description: String
  public init(_ description: String) { self.description = description }
}

/// A durable engine of whichever kernel a node's config names, as a replica holds it.
/// Every call is per journal batch or rarer, never per event: the per-event loop runs
/// inside `applyBatch`, specialised for the kernel.
public protocol ReplicaEngine: AnyObject {
  var kernelName: String { get }
  var committedSeq: Int64 { get }
  var appliedSeq: Int64 { get }
  var stateDigest: [UInt8] { get }
  /// The seq `stateDigest` was taken at (`DurableEngine.digestSeq`).
  var digestSeq: Int64 { get }
  /// How the folder keeps the state (`StateLayout`'s name).
  var layoutName: String { get }
  /// True when commits log no lines (a cluster replica's input-log folder): a restart
  /// resumes from the last snapshot, and what was applied after it comes again from
  /// the sequencer's journal.
  var restartsFromSnapshot: Bool { get }
  var commitNanos: [Int64] { get }
  /// Snapshot latencies (`DurableEngine.snapshotNanos`).
  var snapshotNanos: [Int64] { get }
  /// Applies the lines `bytes[ranges[i]]` as seqs `first`, `first + 1`, ...; one outcome
  /// byte each (`Vote.outcomeByte`: 0 applied, 1 + reason code rejected).
  func applyBatch(_ bytes: [UInt8], ranges: [Range<Int>], first: Int64) -> [UInt8]
  /// The same, its lines split before (`split`: all of `ranges`, from `splitAhead`).
  func applyBatch(_ bytes: [UInt8], ranges: [Range<Int>], first: Int64, split: SplitLines) -> [UInt8]
  /// Starts splitting `batches` (those after the one about to be applied) on a thread
  /// of their own, their TRADEs resolved by the kernel's resolver as of now.
  func splitAhead(_ batches: [BatchToSplit]) -> BatchesSplitAhead
  func enableEffects()
  func takeEffects() -> [UInt8]
  func commit(extra: StoreBatch) throws
  func commit(withDigest: Bool, extraFromDigest: @escaping ([UInt8]?) -> StoreBatch) throws
  /// Starts a commit (no digest) with `extra` and returns: the write and the fsync go on
  /// while the next batches apply (`DurableEngine.commitInBackground`).
  func commitInBackground(extra: StoreBatch) throws
  /// Commits everything as a snapshot with `extra`, returning when it is durable
  /// (`DurableEngine.snapshot(extra:)`): a replica's graceful stop.
  func snapshot(extra: StoreBatch) throws
  /// Waits for a commit in flight; throws its failure.
  func finishCommit() throws
  func outputFiles() -> [(name: String, bytes: [UInt8])]
  func snapshotEffects() -> [UInt8]
  /// Room for about `events` events past the stored position (`DurableEngine.reserveCapacity`).
  func reserveCapacity(events: Int)
}

extension DurableEngine: ReplicaEngine {
  public var kernelName: String { engine.state.kernelName }
  public var appliedSeq: Int64 { engine.appliedSeq }
  public var layoutName: String { layout.rawValue }
  public var restartsFromSnapshot: Bool { layout == .inputLog && !logsLines }

  public func applyBatch(_ bytes: [UInt8], ranges: [Range<Int>], first: Int64) -> [UInt8] {
    // The witness of a generic class runs unspecialised code: hand the batch to the
    // code specialised for the concrete kernel (one cast per batch).
    if let v1 = self as? DurableEngine<V1Kernel> {
      return v1.applyBatchSpecialised(bytes, ranges: ranges, first: first)
    }
    if let v2 = self as? DurableEngine<V2Kernel> {
      return v2.applyBatchSpecialised(bytes, ranges: ranges, first: first)
    }
    return applyBatchSpecialised(bytes, ranges: ranges, first: first)
  }

  public func applyBatch(_ bytes: [UInt8], ranges: [Range<Int>], first: Int64, split: SplitLines) -> [UInt8] {
    if let v1 = self as? DurableEngine<V1Kernel> {
      return v1.applyBatchSpecialised(bytes, ranges: ranges, first: first, split: split)
    }
    if let v2 = self as? DurableEngine<V2Kernel> {
      return v2.applyBatchSpecialised(bytes, ranges: ranges, first: first, split: split)
    }
    return applyBatchSpecialised(bytes, ranges: ranges, first: first, split: split)
  }

  public func splitAhead(_ batches: [BatchToSplit]) -> BatchesSplitAhead {
    BatchesSplitAhead(batches, resolver: engine.state.tradeResolver())
  }

  @_specialize(where K == V1Kernel)
  @_specialize(where K == V2Kernel)
  func applyBatchSpecialised(_ bytes: [UInt8], ranges: [Range<Int>], first: Int64, split: SplitLines)
    -> [UInt8]
  {
    precondition(split.firstSeq == first && split.count == ranges.count, "the split is the batch's")
    var outcomes = [UInt8](repeating: 0, count: ranges.count)
    apply(split: split, lines: ranges[...], of: bytes) { i, outcome in outcomes[i] = OutcomeByte.of(outcome) }
    return outcomes
  }

  @_specialize(where K == V1Kernel)
  @_specialize(where K == V2Kernel)
  func applyBatchSpecialised(_ bytes: [UInt8], ranges: [Range<Int>], first: Int64) -> [UInt8] {
    // The lines where they lie: the engine hands runs of TRADEs to the kernel together
    // (`Engine.apply(lines:of:firstSeq:)`).
    var outcomes = [UInt8](repeating: 0, count: ranges.count)
    apply(lines: ranges[...], of: bytes, firstSeq: first) { i, outcome in
      outcomes[i] = OutcomeByte.of(outcome)
    }
    return outcomes
  }

  public func outputFiles() -> [(name: String, bytes: [UInt8])] { engine.outputFiles() }
  public func snapshotEffects() -> [UInt8] { engine.state.snapshotEffects() }
}

/// One byte per event outcome, as votes carry them: 0 applied, 1 + the reason's raw
/// value rejected.
public enum OutcomeByte {
  public static func of(_ o: Outcome) -> UInt8 {
    switch o {
    case .applied: return 0
    case .rejected(let r): return 1 + r.rawValue
    }
  }
}

extension KernelCatalog {
  /// Opens (or creates) the durable state in `store` for the kernel `name` names. A new
  /// folder gets `layout` (an existing one keeps its own). In the input-log layout a
  /// replica takes snapshots only when it commits `withDigest` (its digest
  /// checkpoints), never on an event count: every replica then snapshots at the same seqs.
  /// With `stopBeforeLastLogEntry` the folder opens at the seq before its last log entry
  /// (`DurableEngine.init`): the replica applies that entry's batches again from the
  /// journal, with their effects. With `logLines` false (a cluster replica) commits
  /// log no lines: a restart resumes from the last snapshot (`restartsFromSnapshot`).
  public static func openDurable(
    _ name: String, store: any StateStore, reference: ReferenceData, sync: Bool = true,
    layout: StateLayout = .inputLog, stopBeforeLastLogEntry: Bool = false, logLines: Bool = true
  ) throws -> any ReplicaEngine {
    let (type, fault) = try resolve(name)
    func open<K: BusinessKernel>(_: K.Type) throws -> any ReplicaEngine {
      try DurableEngine<K>(
        store: store, reference: reference, plantedFault: fault, sync: sync, layout: layout,
        snapshotEvents: Int64.max, stopBeforeLastLogEntry: stopBeforeLastLogEntry, logLines: logLines)
    }
    return try open(type)
  }
}
