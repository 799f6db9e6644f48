// The replica core's `BatchApplier` over a durable engine of whichever kernel the
// replica's config names (`KernelCatalog.openDurable`: every call is per batch; the
// per-event loop runs inside `applyBatch`, specialised for the kernel). The replica
// service and the simulator use only this.
import KernelAPI
import TallyEngine

public struct DurableBatchApplier: BatchApplier {
  public let durable: any ReplicaEngine

  /// The batches of a fetch reply being split ahead of their apply (`prepare`).
  private var ahead: BatchesSplitAhead? = nil
  /// Batches applied from a split made ahead (tests, and what a catch-up did).
  public private(set) var batchesSplitAhead = 0

  public init(_ durable: any ReplicaEngine) { self.durable = durable }

  /// A replica's engine over `store`: the verified restore of what the store holds
  /// (fresh when empty), with effect records on. A new folder keeps the input-log
  /// layout (docs/STATE-LAYOUT.md) without its lines: a commit writes the votes, a
  /// digest checkpoint a snapshot, and a restart resumes from the last snapshot and
  /// fetches the rest of the journal again (`logLines` true logs the lines too, as
  /// replicas did before: a restart then applies them from the folder). A folder made
  /// in the rows layout keeps it.
  public static func open(
    store: any StateStore, reference: ReferenceData, kernel: String, logLines: Bool = false
  ) throws -> DurableBatchApplier {
    // A last commit that owed its batches' effect records (ReplicaCore's `owedEffects`)
    // is applied again from the journal, so that they exist again.
    let owes = try store.value(for: ReplicaCore<DurableBatchApplier>.owedEffectsKey) != nil
    let engine = try KernelCatalog.openDurable(
      kernel, store: store, reference: reference, stopBeforeLastLogEntry: owes, logLines: logLines)
    engine.enableEffects()
    return DurableBatchApplier(engine)
  }

  public var appliedSeq: Int64 { durable.appliedSeq }
  public var committedSeq: Int64 { durable.committedSeq }
  public var committedStateDigest: [UInt8] { durable.stateDigest }
  public var digestSeq: Int64 { durable.digestSeq }
  public var restartsFromSnapshot: Bool { durable.restartsFromSnapshot }
  /// Commit latencies (metrics).
  public var commitNanos: [Int64] { durable.commitNanos }

  public mutating func apply(_ batch: JournalBatch) -> (outcomes: [UInt8], effects: [UInt8]) {
    let outcomes: [UInt8]
    if let split = ahead?.take(first: batch.first) {
      outcomes = durable.applyBatch(batch.storage, ranges: batch.ranges, first: batch.first, split: split)
      batchesSplitAhead += 1
    } else {
      outcomes = durable.applyBatch(batch.storage, ranges: batch.ranges, first: batch.first)
    }
    if ahead?.isDone == true { ahead = nil }
    return (outcomes, durable.takeEffects())
  }

  /// Splits `batches` on another thread while the one before them applies
  /// (TallyEngine SplitAhead.swift); empty: stops and drops what is not applied.
  public mutating func prepare(_ batches: ArraySlice<JournalBatch>) {
    ahead?.cancel()
    ahead =
      batches.isEmpty
      ? nil
      : durable.splitAhead(
        batches.map { BatchToSplit(bytes: $0.storage, ranges: $0.ranges, first: $0.first) })
  }

  public mutating func commit(withDigest: Bool, extraFromDigest: @escaping ([UInt8]?) -> StoreBatch) throws {
    try durable.commit(withDigest: withDigest, extraFromDigest: extraFromDigest)
  }

  public mutating func commitInBackground(extra: StoreBatch) throws {
    try durable.commitInBackground(extra: extra)
  }

  public func finishCommit() throws { try durable.finishCommit() }

  public mutating func snapshot(extra: StoreBatch) throws { try durable.snapshot(extra: extra) }

  public func outputFiles() -> [(name: String, bytes: [UInt8])] { durable.outputFiles() }
}
