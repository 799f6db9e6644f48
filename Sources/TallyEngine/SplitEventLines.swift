// Event lines split ahead of their apply, on the other core: the applying core only
// applies (LMAX's input side unmarshals on its own thread too). A resume's logged lines
// are split by the thread that reads them from the store; a run's event files are read
// and split a block at a time by a thread of their own (`forEachSplitBlock`).
import Foundation
import KernelAPI
import TallyFormat

/// Event lines split ahead of their apply (`Engine.apply(split:of:)`), possibly on
/// another thread: a resume's logged lines are split by the thread that reads them, so
/// the applying core only applies. Each TRADE line's fields (`EventParser.tradeLine`),
/// and where the other lines are (parsed when applied: they are rare).
public struct SplitLines: Sendable {
  /// The TRADE lines in order, each with its seq and its range in the byte buffer.
  public private(set) var trades: [TradeInput] = []
  /// The lines that are not TRADEs, ascending: their index among the lines split and
  /// their range in the byte buffer.
  public private(set) var others: [(index: Int, line: Range<Int>)] = []
  /// How many lines were split, and the first one's seq.
  public private(set) var count = 0
  public private(set) var firstSeq: Int64 = 0

  public init() {}

  public init(_ lines: ArraySlice<Range<Int>>, of bytes: [UInt8], firstSeq: Int64) {
    split(lines, of: bytes, firstSeq: firstSeq)
  }

  /// Splits `lines` (ranges in `bytes`) as seqs `firstSeq`, …, keeping the buffers' room;
  /// with a `resolver`, the TRADEs' hints are filled in too (on this thread).
  public mutating func split(
    _ lines: ArraySlice<Range<Int>>, of bytes: [UInt8], firstSeq: Int64, resolver: (any TradeResolver)? = nil
  ) {
    trades.removeAll(keepingCapacity: true)
    others.removeAll(keepingCapacity: true)
    trades.reserveCapacity(lines.count)
    count = lines.count
    self.firstSeq = firstSeq
    bytes.withUnsafeBytes { raw in
      for (i, range) in zip(0..., lines) {
        precondition(range.lowerBound >= 0 && range.upperBound <= raw.count, "a line lies in its block")
        if let trade = EventParser.tradeLine(bytes: UnsafeRawBufferPointer(rebasing: raw[range])) {
          trades.append(TradeInput(trade: trade, line: range, seq: firstSeq + Int64(i)))
        } else {
          others.append((i, range))
        }
      }
    }
    guard let resolver, !trades.isEmpty else { return }
    bytes.withUnsafeBytes { raw in
      trades.withUnsafeMutableBufferPointer { resolver.resolve($0, bytes: raw) }
    }
  }
}

extension EventLines {
  /// A block of event lines in a buffer of its own, split (`forEachSplitBlock`).
  public struct SplitBlock: Sendable {
    /// The block's bytes (its lines, and any comment lines between them).
    public private(set) var bytes: [UInt8] = []
    /// Each line's range in `bytes`.
    public private(set) var lines: [Range<Int>] = []
    /// The lines split, when `isSplit` (see `forEachSplitBlock`'s `splitAfter`).
    public private(set) var split = SplitLines()
    public private(set) var isSplit = false
    /// The first line's seq.
    public private(set) var firstSeq: Int64 = 0

    init() {}

    /// Copies `lines` of `source` (one piece of a file) in, as seqs `firstSeq`, …,
    /// keeping the buffers' room (blocks are recycled), and splits them unless
    /// `split` is false.
    mutating func fill(
      _ source: [UInt8], _ sourceLines: ArraySlice<Range<Int>>, firstSeq: Int64, split doSplit: Bool,
      resolver: (any TradeResolver)?
    ) {
      bytes.removeAll(keepingCapacity: true)
      lines.removeAll(keepingCapacity: true)
      self.firstSeq = firstSeq
      if let start = sourceLines.first?.lowerBound, let end = sourceLines.last?.upperBound {
        bytes.append(contentsOf: source[start..<end])
        lines.reserveCapacity(sourceLines.count)
        for r in sourceLines { lines.append((r.lowerBound - start)..<(r.upperBound - start)) }
      }
      isSplit = doSplit
      split.split(doSplit ? lines[...] : [], of: bytes, firstSeq: firstSeq, resolver: resolver)
    }
  }

  /// Blocks read and split ahead of the one `body` has (a limit: the reader waits).
  public static let splitBlocksAhead = 4

  /// The blocks of `forEachBlock` (the same lines, in the same blocks), each copied into
  /// a buffer of its own and split (`SplitLines`, seqs from `firstSeq`) by another thread
  /// while `body` has the blocks before: the calling thread only applies. A block whose
  /// lines are all at or before seq `splitAfter` is not split (`isSplit` false: a
  /// resumed run only counts the lines its state has applied). `willRead` is told each
  /// file's line count before its first block, on the calling thread. A file that
  /// cannot be read throws after the blocks before it; `body`'s error stops the reader
  /// and is rethrown.
  public static func forEachSplitBlock(
    files: [String], pieceBytes: Int = eventPieceBytes, firstSeq: Int64 = 1, splitAfter: Int64 = 0,
    resolver: (any TradeResolver)? = nil,
    willRead: (Int) -> Void = { _ in }, _ body: (SplitBlock) throws -> Void
  ) throws {
    try SplitBlockReader(
      files: files, pieceBytes: pieceBytes, firstSeq: firstSeq, splitAfter: splitAfter, resolver: resolver
    ).forEach(willRead: willRead, body)
  }

  /// `forEachSplitBlock` in two steps: made, it starts reading (the first file's line
  /// count, then up to `splitBlocksAhead` blocks split) on another thread at once;
  /// `forEach` then hands the blocks over. A run makes it as soon as its reference folder
  /// is read, so that the events file is counted and its first blocks split while the
  /// opening state is built (the second core is idle then): started only when the engine
  /// was ready, the count of a 1M-line file and the first block kept V1's thread waiting
  /// 77 ms (perf, sixteenth session). Dropped without `forEach`, it stops the reader.
  public final class SplitBlockReader {
    enum Item {
      case willRead(Int)
      case block(SplitBlock)
    }
    struct Stopped: Error {}
    private let pipe = HandoffPipe<Item>(depth: EventLines.splitBlocksAhead)
    // Blocks come back for their buffers to be refilled (fresh pages cost more than the
    // copy): at most splitBlocksAhead + 2 exist, so there is always room for one
    // returned (and one that finds none is dropped rather than waited for).
    private let spare = HandoffPipe<SplitBlock>(depth: EventLines.splitBlocksAhead + 2)
    private var reader: BackgroundWork<Void>? = nil
    /// The applying kernel's resolver, once it is known (`resolve(with:)`).
    private let resolver = ResolverSlot()

    /// The kernel's resolver, set once the kernel is built: the blocks split from then
    /// on have their TRADEs resolved on the reader's thread (issue 8); the blocks split
    /// before (while the opening state was built) are resolved by the kernel as it
    /// applies them, which gives the same outcomes.
    public func resolve(with resolver: (any TradeResolver)?) { self.resolver.set(resolver) }

    public init(
      files: [String], pieceBytes: Int = eventPieceBytes, firstSeq: Int64 = 1, splitAfter: Int64 = 0,
      resolver firstResolver: (any TradeResolver)? = nil
    ) {
      resolver.set(firstResolver)
      let (pipe, spare, resolver) = (self.pipe, self.spare, self.resolver)
      reader = BackgroundWork { () -> Void in
        do {
          var seq = firstSeq
          try EventLines.forEachBlock(
            files: files, pieceBytes: pieceBytes, willRead: { _ = pipe.put(.willRead($0)) }
          ) { bytes, lines in
            var block = spare.takeIfAny() ?? SplitBlock()
            block.fill(
              bytes, lines, firstSeq: seq, split: seq + Int64(lines.count) - 1 > splitAfter,
              resolver: resolver.get())
            seq += Int64(lines.count)
            guard pipe.put(.block(block)) else { throw Stopped() }
          }
          pipe.finish(nil)
        } catch is Stopped {
        } catch {
          pipe.finish(error)
        }
      }
    }

    /// Hands every block to `body` in order (see `forEachSplitBlock`); once only.
    public func forEach(willRead: (Int) -> Void = { _ in }, _ body: (SplitBlock) throws -> Void) throws {
      guard let reader else { preconditionFailure("a reader's blocks are taken once") }
      self.reader = nil
      do {
        while let item = try pipe.take() {
          switch item {
          case .willRead(let count): willRead(count)
          case .block(let block):
            try body(block)
            _ = spare.putIfRoom(block)
          }
        }
      } catch {
        pipe.cancel()
        reader.wait()
        throw error
      }
      reader.wait()
    }

    deinit {
      guard let reader else { return }
      pipe.cancel()
      reader.wait()
    }
  }
}

/// The resolver a `SplitBlockReader`'s thread uses, set from the applying thread.
final class ResolverSlot: @unchecked Sendable {
  private let lock = NSLock()
  private var resolver: (any TradeResolver)? = nil

  func set(_ resolver: (any TradeResolver)?) {
    lock.lock()
    defer { lock.unlock() }
    self.resolver = resolver
  }

  func get() -> (any TradeResolver)? {
    lock.lock()
    defer { lock.unlock() }
    return resolver
  }
}
