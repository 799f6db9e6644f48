// The engine drives the business core with numbered event lines: it assigns
// sequence numbers (SPEC §3: they run on across all files of a run), parses,
// applies, counts, and computes digests. The embedded mode, a replica and a
// replay all go through this type, so they compute the same bytes.
import TallyCore
import TallyFormat

public struct RunStatistics: Sendable, Equatable {
  public var events = 0
  public var applied = 0
  public var tradesApplied = 0
  public var rejectedByReason = [Int](repeating: 0, count: RejectReason.allCases.count)

  public var rejected: Int { rejectedByReason.reduce(0, +) }
}

public struct Engine {
  public private(set) var state: TallyState
  public private(set) var statistics = RunStatistics()

  public init(reference: ReferenceData, kernel: any ClearingKernel) {
    state = TallyState(reference: reference, kernel: kernel)
  }

  public init(state: TallyState) { self.state = state }

  /// The last sequence number applied (0 before the first event).
  public var appliedSeq: Int64 { state.globals.appliedSeq }

  /// Applies one event line (not blank, not a comment) as event `seq`.
  @discardableResult
  public mutating func apply(line: ArraySlice<UInt8>, seq: Int64) -> Outcome {
    apply(EventParser.parse(line), seq: seq)
  }

  @discardableResult
  public mutating func apply(_ event: Event, seq: Int64) -> Outcome {
    let outcome = state.apply(event, seq: seq)
    statistics.events += 1
    switch outcome {
    case .applied:
      statistics.applied += 1
      if case .trade = event { statistics.tradesApplied += 1 }
    case .rejected(let reason):
      statistics.rejectedByReason[Int(reason.rawValue)] += 1
    }
    return outcome
  }

  /// Turns on business effects (docs/EFFECTS.md); off, they cost one branch per hook.
  public mutating func enableEffects() { state.enableEffects() }

  /// The effect records of the events applied since the last call (one batch).
  public mutating func takeEffects() -> [UInt8] { state.takeEffects() }

  /// Hands over the rows changed since the last call (for a durable commit).
  public mutating func takeChangedRows(_ body: (StateTable, Int32, [UInt8]) -> Void) {
    state.takeChangedRows(body)
  }

  /// SHA-256 of the canonical encoding of the whole business state (32 bytes).
  public var stateDigest: [UInt8] { StateDigest.of(state) }

  /// The seven SPEC §5 files.
  public func outputFiles() -> [(name: String, bytes: [UInt8])] { ReportWriter.render(state.report()) }
}

public enum StateDigest {
  static let domain = Array("tally-state-v1".utf8)

  /// SHA-256 over the state checksum: 32 bytes that any process computes alike
  /// for the same state, whether from scratch or kept up to date commit by commit.
  public static func of(_ checksum: StateChecksum) -> [UInt8] {
    SHA256.hash(domain + checksum.encoded)
  }

  public static func of(_ state: TallyState) -> [UInt8] { of(state.computeChecksum()) }
}

/// Event lines of a sequence of files, numbered per SPEC §3.
public struct EventLines {
  public struct Line {
    public var file: String
    public var lineNumber: Int
    public var bytes: ArraySlice<UInt8>
  }

  /// Calls `body` for every event line of every file, in order.
  public static func forEach(
    files: [String], _ body: (Line) throws -> Void
  ) throws {
    for file in files {
      let bytes = try FileIO.read(file)
      for (number, line) in LineReader(bytes) where !EventParser.isSkipped(line) {
        try body(Line(file: file, lineNumber: number, bytes: line))
      }
    }
  }
}
