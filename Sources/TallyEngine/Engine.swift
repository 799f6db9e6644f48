// The engine drives the business core with numbered event lines: it assigns
// sequence numbers (SPEC §3: they run on across all files of a run), parses,
// applies, counts, and computes digests. The embedded mode, a replica and a
// replay all go through this type, so they compute the same bytes.
import Foundation
import KernelAPI
import TallyFormat

public struct RunStatistics: Sendable, Equatable {
  public var events = 0
  public var applied = 0
  public var tradesApplied = 0
  public var rejectedByReason = [Int](repeating: 0, count: RejectReason.allCases.count)

  public var rejected: Int { rejectedByReason.reduce(0, +) }
}

/// Generic over the kernel version (KernelAPI's `BusinessKernel`): the per-event path
/// calls the kernel directly, with no existential in between. The per-event methods are
/// `@inlinable` so that a caller that names the kernel type gets them specialised for it
/// (unspecialised generic code through witness tables ran the 1M-trade day at 2.7x the
/// CPU time); callers pick the type with a `switch` over concrete types, never by
/// opening an existential in the loop's function (KernelDispatch in the tally command).
public struct Engine<K: BusinessKernel> {
  /// Public (settable) only so that the inlinable methods can reach it: treat as read-only.
  public var state: K
  public var statistics = RunStatistics()
  /// The scratch buffers of `apply(lines:of:firstSeq:)`, kept between blocks (public only
  /// for the inlinable code: not part of the API).
  public var pendingSplit = SplitLines()
  /// The size of the last batch `takeEffects()` handed over.
  var lastEffectsBatchBytes = 0

  public init(reference: ReferenceData, plantedFault: PlantedFault? = nil) {
    state = K(reference: reference, plantedFault: plantedFault)
  }

  public init(state: K) { self.state = state }

  /// Room for about `events` more events (a hint to the kernel).
  public mutating func reserveCapacity(events: Int) { state.reserveCapacity(events: events) }

  /// A run that never commits (`tally run` without `--state`) turns this off: rows
  /// are then not tracked for `takeChangedRows`.
  public mutating func setChangeTracking(_ on: Bool) { state.setChangeTracking(on) }

  /// The last sequence number applied (0 before the first event).
  public var appliedSeq: Int64 { state.appliedSeq }

  /// Applies one event line (not blank, not a comment) as event `seq`.
  @inlinable @discardableResult
  public mutating func apply(line: ArraySlice<UInt8>, seq: Int64) -> Outcome {
    // Nearly every line is a TRADE: applied straight from its bytes.
    guard let trade = EventParser.tradeLine(line) else { return apply(EventParser.parse(line), seq: seq) }
    return apply(trade: trade, line: line, seq: seq)
  }

  /// A TRADE line already split by `EventParser.tradeLine(line)`.
  @inlinable @discardableResult
  public mutating func apply(trade: TradeLine, line: ArraySlice<UInt8>, seq: Int64) -> Outcome {
    let outcome = line.withUnsafeBytes { state.applyTrade(trade, line: $0, seq: seq) }
    count(outcome, isTrade: true)
    return outcome
  }

  /// Applies consecutive event lines, all of them slices of `bytes` (`lines` are their
  /// index ranges; no blank or comment lines), as events `firstSeq`, `firstSeq + 1`, ….
  /// Runs of TRADE lines go to the kernel in one call (`BusinessKernel.applyTrades`: a
  /// kernel may overlap their memory loads); outcomes, state and effects are those of
  /// `apply(line:seq:)` line after line. `outcome(i, o)` is told line i's outcome, in
  /// order, once the whole block is applied.
  /// With a `resolver` (the kernel's `tradeResolver()`, made now or earlier), the
  /// TRADEs are resolved first, on this thread (tests compare the two ways).
  @inlinable
  public mutating func apply(
    lines: ArraySlice<Range<Int>>, of bytes: [UInt8], firstSeq: Int64, resolver: (any TradeResolver)? = nil,
    outcome: (Int, Outcome) -> Void = { _, _ in }
  ) {
    var split = pendingSplit
    pendingSplit = SplitLines()  // the only reference: filled in place, not copied
    split.split(lines, of: bytes, firstSeq: firstSeq, resolver: resolver)
    apply(split: split, of: bytes, outcome: outcome)
    pendingSplit = split
  }

  /// Applies lines split before (`SplitLines`, maybe on another thread), all of them
  /// slices of `bytes`: the same outcomes, state and effects as `apply(lines:of:firstSeq:)`.
  /// `range` picks consecutive lines of the split (by index; all of them when nil);
  /// `outcome(i, o)` numbers them from 0.
  @inlinable
  public mutating func apply(
    split: SplitLines, of bytes: [UInt8], range: Range<Int>? = nil,
    outcome: (Int, Outcome) -> Void = { _, _ in }
  ) {
    let range = range ?? 0..<split.count
    precondition(range.lowerBound >= 0 && range.upperBound <= split.count, "lines of the split")
    // Line i's trade is trades[i - (lines before i that are not TRADEs)].
    var firstOther = 0
    while firstOther < split.others.count && split.others[firstOther].index < range.lowerBound {
      firstOther += 1
    }
    var outcomes = [Outcome](repeating: .applied, count: range.count)
    bytes.withUnsafeBytes { raw in
      split.trades.withUnsafeBufferPointer { t in
        outcomes.withUnsafeMutableBufferPointer { o in
          var i = range.lowerBound
          var nextTrade = i - firstOther
          var k = firstOther
          // A run of TRADEs up to each line that is not one, then that line.
          while i < range.upperBound {
            let stop =
              k < split.others.count ? min(split.others[k].index, range.upperBound) : range.upperBound
            if stop > i {
              let n = stop - i
              apply(
                trades: UnsafeBufferPointer(rebasing: t[nextTrade..<(nextTrade + n)]), bytes: raw,
                outcomes: UnsafeMutableBufferPointer(
                  rebasing: o[(i - range.lowerBound)..<(stop - range.lowerBound)]))
              nextTrade += n
              i = stop
            }
            if i < range.upperBound {
              let other = split.others[k]
              o[i - range.lowerBound] = apply(
                EventParser.parse(bytes[other.line]), seq: split.firstSeq + Int64(other.index))
              i += 1
              k += 1
            }
          }
        }
      }
    }
    for (i, o) in outcomes.enumerated() { outcome(i, o) }
  }

  /// TRADE lines in a row, already split (`EventParser.tradeLine`), their lines in
  /// `bytes`: one `BusinessKernel.applyTrades` call, then counted.
  @inlinable
  public mutating func apply(
    trades: UnsafeBufferPointer<TradeInput>, bytes: UnsafeRawBufferPointer,
    outcomes: UnsafeMutableBufferPointer<Outcome>
  ) {
    state.applyTrades(trades, bytes: bytes, outcomes: outcomes)
    for o in outcomes { count(o, isTrade: true) }
  }

  @inlinable @discardableResult
  public mutating func apply(_ event: Event, seq: Int64) -> Outcome {
    let outcome = state.apply(event, seq: seq)
    if case .trade = event { count(outcome, isTrade: true) } else { count(outcome, isTrade: false) }
    return outcome
  }

  @inlinable mutating func count(_ outcome: Outcome, isTrade: Bool) {
    statistics.events += 1
    switch outcome {
    case .applied:
      statistics.applied += 1
      if isTrade { statistics.tradesApplied += 1 }
    case .rejected(let reason):
      statistics.rejectedByReason[Int(reason.rawValue)] += 1
    }
  }

  /// Turns on business effects (docs/EFFECTS.md); off, they cost one branch per hook.
  public mutating func enableEffects() { state.enableEffects() }

  /// The effect records of the events applied since the last call (one batch). The
  /// kernel keeps writing into a new buffer reserved at the size of the last batch (up
  /// to `effectsReservedBytesMax`): no copy of the batch, no regrowth by doubling, and a
  /// caller that frees its batches has them recycled by the allocator. (Copying each
  /// batch out, to keep the kernel's buffer in cache, cost 0.09 s a run of the 1M-trade
  /// day and saved nothing: the kernel's record stores cost the same either way.)
  public mutating func takeEffects() -> [UInt8] {
    var bytes: [UInt8] = []
    // A quarter more than the last batch: batches of the same lines differ in their new
    // rows and taxes, and one byte more than reserved grew the buffer by doubling, a copy
    // of the batch's records so far (perf of a V1 replica: a `memmove` under the records'
    // `append` about every other batch).
    let last = lastEffectsBatchBytes
    bytes.reserveCapacity(min(last + last / Self.effectsHeadroomDivisor, Self.effectsReservedBytesMax))
    state.takeEffects(into: &bytes)
    lastEffectsBatchBytes = bytes.count
    return bytes
  }

  /// The most a new effects buffer is reserved at (an OPEN's 53 MB batch is not
  /// reserved again for every batch after it).
  public static var effectsReservedBytesMax: Int { 8 << 20 }
  /// The headroom of a new effects buffer over the last batch's size: 1/4.
  static var effectsHeadroomDivisor: Int { 4 }

  /// The same, into `out` (its buffer is kept for the next batch: no allocation per batch).
  public mutating func takeEffects(into out: inout [UInt8]) { state.takeEffects(into: &out) }

  /// Hands over the rows changed since the last call (for a durable commit).
  public mutating func takeChangedRows(_ body: (StateTable, Int32, [UInt8]) -> Void) {
    var w = ByteWriter(capacity: 4096)
    var rows: [(StateTable, Int32, Range<Int>)] = []
    state.takeChangedRows(into: &w) { rows.append(($0, $1, $2)) }
    for (table, id, range) in rows { body(table, id, Array(w.bytes[range])) }
  }

  /// Hands over the rows changed since the last call, encoded one after another into `w`.
  public mutating func takeChangedRows(
    into w: inout ByteWriter, _ body: (StateTable, Int32, Range<Int>) -> Void
  ) {
    state.takeChangedRows(into: &w, body)
  }

  /// The same, and the checksum of the whole state (`BusinessKernel.takeChangedRowsAndChecksum`).
  public mutating func takeChangedRowsAndChecksum(
    into w: inout ByteWriter, _ body: (StateTable, Int32, Range<Int>) -> Void
  ) -> StateChecksum {
    state.takeChangedRowsAndChecksum(into: &w, body)
  }

  /// SHA-256 of the canonical encoding of the whole business state (32 bytes).
  public var stateDigest: [UInt8] { StateDigest.of(state) }

  /// The seven SPEC §5 files.
  public func outputFiles() -> [(name: String, bytes: [UInt8])] { ReportWriter.render(kernel: state) }

  /// Writes the seven SPEC §5 files into `folder` (created if needed), each atomically:
  /// the same bytes as `outputFiles()`, but holdings.csv (millions of rows) goes out a
  /// piece at a time through one reused buffer instead of being rendered whole first.
  /// `pieceBytes`: how much of holdings.csv is rendered before it is written.
  /// `holdingsParts`: threads holdings.csv is rendered on (the bytes are the same for
  /// any count).
  public func writeOutputs(
    to folder: String, pieceBytes: Int = outputPieceBytes, holdingsParts: Int = holdingsRenderParts
  ) throws(OutputError) {
    precondition(pieceBytes > 0, "pieces of holdings.csv hold at least one byte")
    try FileIO.createFolder(folder)
    // holdings.csv first: its writes and its rename (ext4 writes the file out when it
    // replaces one) run on the other core while this one renders it and then the six
    // small files. Its rows are rendered on every core (each part of the walk on its
    // own thread): an in-memory run or a resume has nothing else to do by then, and the
    // 1M-account day's 80 MB took one core ~0.45 s. The six small files are rendered and
    // written once this thread's part is handed over, while the later parts finish.
    var failure: OutputError? = nil
    let holdings = try FileIO.writeAtomicallyInBackground(folder + "/holdings.csv") { write in
      ReportWriter.renderHoldings(
        kernel: state, chunkBytes: pieceBytes, parts: holdingsParts,
        afterFirstPart: {
          do throws(OutputError) {
            for file in ReportWriter.render(state.report(holdings: false)) where file.name != "holdings.csv" {
              try FileIO.writeAtomically(folder + "/" + file.name, file.bytes)
            }
          } catch {
            failure = error
          }
        }, write)
    }
    if let error = holdings.wait() ?? failure { throw error }
  }
}

/// Bytes of an event file read at a time (`EventLines.forEachBlock`).
public let eventPieceBytes = 4 << 20

/// Bytes of holdings.csv rendered before they are written (`Engine.writeOutputs`).
public let outputPieceBytes = 1 << 20

/// Threads `Engine.writeOutputs` renders holdings.csv on: one a core, at most
/// `ReportWriter.holdingsPartsMax`.
public let holdingsRenderParts = min(
  max(1, ProcessInfo.processInfo.activeProcessorCount), ReportWriter.holdingsPartsMax)

public enum StateDigest {
  static let domain = Array("tally-state-v1".utf8)

  /// SHA-256 over the state checksum: 32 bytes that any process computes alike
  /// for the same state, whether from scratch or kept up to date commit by commit.
  public static func of(_ checksum: StateChecksum) -> [UInt8] {
    Digests.sha256(domain + checksum.encoded)
  }

  public static func of<K: BusinessKernel>(_ state: K) -> [UInt8] { of(state.computeChecksum()) }
}

/// Event lines of a sequence of files, numbered per SPEC §3.
public struct EventLines {
  public struct Line {
    public var file: String
    public var lineNumber: Int
    public var bytes: ArraySlice<UInt8>
  }

  /// Lines held one array each (a journal batch, a test's stream) joined into one byte
  /// buffer, with each line's range in it: the form `Engine.apply(lines:of:firstSeq:)`
  /// takes.
  public static func joined<Line: Collection<UInt8>>(_ lines: [Line]) -> (
    bytes: [UInt8], ranges: [Range<Int>]
  ) {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(lines.reduce(0) { $0 + $1.count })
    var ranges: [Range<Int>] = []
    ranges.reserveCapacity(lines.count)
    for line in lines {
      ranges.append(bytes.count..<(bytes.count + line.count))
      bytes.append(contentsOf: line)
    }
    return (bytes, ranges)
  }

  /// Event lines given a block at a time (`Engine.apply(lines:of:firstSeq:)`).
  public static let blockLinesMax = 4_096

  /// Calls `body` with blocks of at most `blockLinesMax` consecutive event lines of one
  /// file, in order: a buffer holding a piece of the file (reused once `body` returns)
  /// and the lines' index ranges in it. `willRead` is told each file's line count first
  /// (a capacity hint; not for a pipe).
  public static func forEachBlock(
    files: [String], pieceBytes: Int = eventPieceBytes, willRead: (Int) -> Void = { _ in },
    _ body: (_ bytes: [UInt8], _ lines: ArraySlice<Range<Int>>) throws -> Void
  ) throws {
    var lines: [Range<Int>] = []
    lines.reserveCapacity(blockLinesMax)
    for file in files {
      // Read a piece at a time through one reused buffer (not whole: fresh pages cost
      // more than the second read of a file the page cache holds).
      if let count = try FileIO.lineFeedCount(file, pieceBytes: pieceBytes) { willRead(count) }
      var first = true
      try FileIO.forEachPieceOfLines(file, pieceBytes: pieceBytes) { bytes, piece in
        // A byte order mark is skipped at the start of a file only (as LineReader does).
        let start =
          first && bytes[piece].starts(with: [0xEF, 0xBB, 0xBF]) ? piece.lowerBound + 3 : piece.lowerBound
        first = false
        for (_, line) in LineReader(bytes, from: start, to: piece.upperBound, firstNumber: 1)
        where !EventParser.isSkipped(line) {
          lines.append(line.startIndex..<line.endIndex)
          if lines.count == blockLinesMax {
            try body(bytes, lines[...])
            lines.removeAll(keepingCapacity: true)
          }
        }
        // A block ends with its piece: the buffer is reused for the next one.
        if !lines.isEmpty {
          try body(bytes, lines[...])
          lines.removeAll(keepingCapacity: true)
        }
      }
    }
  }

  /// Calls `body` for every event line of every file, in order. `willRead` is told
  /// each file's line count first (a capacity hint).
  public static func forEach(
    files: [String], willRead: (Int) -> Void = { _ in }, _ body: (Line) throws -> Void
  ) throws {
    for file in files {
      let bytes = try FileIO.read(file)
      willRead(Fields.lineCount(bytes))
      for (number, line) in LineReader(bytes) where !EventParser.isSkipped(line) {
        try body(Line(file: file, lineNumber: number, bytes: line))
      }
    }
  }
}
