// The one place the cluster depends on `DurableEngine`'s API (the engine is being
// made generic over the business kernel): `BatchApplier` for the replica core, and
// how a replica's state is opened. The replica service and the simulator use only this.
import TallyCore
import TallyEngine

public struct DurableBatchApplier: BatchApplier {
  public let durable: DurableEngine

  public init(_ durable: DurableEngine) { self.durable = durable }

  /// A replica's engine over `store`: the verified restore of what the store holds
  /// (fresh when empty), with effect records on.
  public static func open(store: any StateStore, reference: ReferenceData, kernel: String) throws
    -> DurableBatchApplier
  {
    let engine = try DurableEngine(
      store: store, reference: reference, kernel: try KernelCatalog.make(kernel, feeRows: reference.feeRows))
    engine.enableEffects()
    return DurableBatchApplier(engine)
  }

  public var appliedSeq: Int64 { durable.engine.appliedSeq }
  public var committedSeq: Int64 { durable.committedSeq }
  public var committedStateDigest: [UInt8] { durable.stateDigest }
  /// Commit latencies (metrics).
  public var commitNanos: [Int64] { durable.commitNanos }

  public mutating func apply(_ batch: JournalBatch) -> (outcomes: [UInt8], effects: [UInt8]) {
    var outcomes: [UInt8] = []
    outcomes.reserveCapacity(batch.lines.count)
    for (i, line) in batch.lines.enumerated() {
      outcomes.append(Vote.outcomeByte(durable.apply(line: line[...], seq: batch.first + Int64(i))))
    }
    return (outcomes, durable.takeEffects())
  }

  public mutating func commit(extraFromDigest: @escaping ([UInt8]) -> StoreBatch) throws {
    try durable.commit(extraFromDigest: extraFromDigest)
  }

  public func outputFiles() -> [(name: String, bytes: [UInt8])] { durable.engine.outputFiles() }
}
