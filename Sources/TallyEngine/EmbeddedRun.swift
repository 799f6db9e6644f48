// A whole embedded run by kernel name, for tests, the differential check and tools
// that compare kernel versions: the kernel type is opened once, then the run is the
// generic `Engine<K>` loop (no existential per event).
import KernelAPI
import TallyFormat

/// What one run produced.
public struct EmbeddedRunResult: Sendable {
  public var kernel: String
  public var outcomes: [Outcome]
  public var statistics: RunStatistics
  public var files: [(name: String, bytes: [UInt8])]
  public var stateDigest: [UInt8]
  /// Effect records of each event (the snapshot first when `effects`), empty otherwise.
  public var effectsPerEvent: [[UInt8]]
  public var snapshot: [UInt8]
  public var selfCheck: [String]
}

public enum EmbeddedRun {
  /// Runs event `lines` (already split, comments and blanks left out) as seqs 1, 2, ...
  /// on the kernel `name` names. With `effects`, keeps every event's effect records.
  /// `grouped` (not with `effects`): the lines are applied in blocks as `tally run` does
  /// (`Engine.apply(lines:of:firstSeq:)`: runs of TRADEs go to the kernel together).
  public static func run(
    kernel name: String, reference: ReferenceData, lines: [ArraySlice<UInt8>], effects: Bool = false,
    grouped: Bool = false
  ) throws(UsageError) -> EmbeddedRunResult {
    precondition(!(effects && grouped), "per-event effects need one event at a time")
    let (type, fault) = try KernelCatalog.resolve(name)
    func go<K: BusinessKernel>(_: K.Type) -> EmbeddedRunResult {
      var engine = Engine<K>(reference: reference, plantedFault: fault)
      engine.setChangeTracking(false)
      var snapshot: [UInt8] = []
      if effects {
        engine.enableEffects()
        snapshot = engine.state.snapshotEffects()
      }
      var outcomes: [Outcome] = []
      var perEvent: [[UInt8]] = []
      outcomes.reserveCapacity(lines.count)
      if grouped {
        let (bytes, ranges) = EventLines.joined(lines)
        var start = 0
        while start < ranges.count {
          let end = min(start + EventLines.blockLinesMax, ranges.count)
          engine.apply(lines: ranges[start..<end], of: bytes, firstSeq: Int64(start + 1)) { _, o in
            outcomes.append(o)
          }
          start = end
        }
      } else {
        for (i, line) in lines.enumerated() {
          outcomes.append(engine.apply(line: line, seq: Int64(i + 1)))
          if effects { perEvent.append(engine.takeEffects()) }
        }
      }
      return EmbeddedRunResult(
        kernel: name, outcomes: outcomes, statistics: engine.statistics, files: engine.outputFiles(),
        stateDigest: engine.stateDigest, effectsPerEvent: perEvent, snapshot: snapshot,
        selfCheck: engine.state.selfCheckViolations(limit: 10))
    }
    return go(type)
  }

  /// The event lines of files' bytes, numbered across files as SPEC §3 says.
  public static func lines(of files: [[UInt8]]) -> [ArraySlice<UInt8>] {
    var result: [ArraySlice<UInt8>] = []
    for bytes in files {
      for (_, line) in LineReader(bytes) where !EventParser.isSkipped(line) { result.append(line) }
    }
    return result
  }
}
