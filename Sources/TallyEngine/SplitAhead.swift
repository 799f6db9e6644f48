// Journal batches split ahead of their apply, on another thread. A replica that is
// behind (a catch-up after a restart, a burst) gets up to `fetch_batches_max` batches in
// one fetch reply and applies them one after another on one core, while a catch-up
// leaves the cluster's other core partly idle: the catching-up replica was on the CPU
// 84-89% of the time at 1.9-2.2 CPU-µs an event (docs/PERFORMANCE.md, thirty-first
// session). Here the batches after the one being applied are split (`SplitLines`) and
// their TRADEs' identifiers resolved by the kernel's resolver on a thread of their own,
// as `tally run`'s reader thread does for its blocks, so the applying thread only
// applies. Nothing it finds changes an outcome: `Engine.apply(split:of:)` applies what
// `apply(lines:of:firstSeq:)` does, and a resolver's hints are rows that stay right
// (accounts, securities and units are only added) or -1 (looked up when applied).
import KernelAPI
import TallyFormat

/// One journal batch to split: its bytes, its lines' ranges in them, its first seq.
public struct BatchToSplit: Sendable {
  public var bytes: [UInt8]
  public var ranges: [Range<Int>]
  public var first: Int64

  public init(bytes: [UInt8], ranges: [Range<Int>], first: Int64) {
    self.bytes = bytes
    self.ranges = ranges
    self.first = first
  }
}

/// Batches being split on a thread of their own, taken in order by the applying thread.
public final class BatchesSplitAhead: @unchecked Sendable {
  /// Batches split and waiting at most: the splitter stays this far ahead of the apply
  /// (a 10,000-line batch's split is ~2 MB of `TradeInput`s).
  public static let depth = 2
  /// Batches a reply must hold after the one it applies first for a split ahead to be
  /// worth a thread (a thread a reply; a live replica's replies hold one or two).
  public static let batchesMin = 2

  private let pipe: HandoffPipe<SplitLines>
  /// The first seqs of the batches, in order; `next` is the next one to take. Read and
  /// written by the applying thread only.
  private let firsts: [Int64]
  private var next = 0

  /// Starts splitting `batches` in order; `resolver` (made by the applying thread from
  /// the kernel as it is now, or nil) resolves their TRADEs.
  public init(_ batches: [BatchToSplit], resolver: (any TradeResolver)?) {
    let pipe = HandoffPipe<SplitLines>(depth: Self.depth)
    self.pipe = pipe
    firsts = batches.map(\.first)
    _ = BackgroundWork { () -> Void in
      for batch in batches {
        var split = SplitLines()
        split.split(batch.ranges[...], of: batch.bytes, firstSeq: batch.first, resolver: resolver)
        guard pipe.put(split) else { return }  // cancelled: nobody will take the rest
      }
      pipe.finish(nil)
    }
  }

  /// The split of the batch that starts at `first` when it is the next one split here
  /// (waiting for it if it is not ready); nil when it is not (nothing is taken).
  public func take(first: Int64) -> SplitLines? {
    guard next < firsts.count, firsts[next] == first else { return nil }
    next += 1
    // The splitter ends only by `finish` after the last batch, or by `cancel` (then
    // nothing is taken any more): an item is there for every batch of `firsts`.
    guard let split = try? pipe.take() else {
      preconditionFailure("the splitter hands over every batch it was given")
    }
    precondition(split.firstSeq == first, "splits come in the batches' order")
    return split
  }

  /// Every batch taken.
  public var isDone: Bool { next == firsts.count }

  /// Stops the splitter (the batches left are not wanted: a gap, a duplicate reply).
  public func cancel() { pipe.cancel() }

  deinit { pipe.cancel() }
}
