// The differential check of kernel versions (N-version voting, issue 11): many small
// generated markets, each mutated into many event streams (lines dropped, repeated,
// swapped and corrupted, trading days reordered, cancels injected late, even after
// settlement, deposits removed so that payers default and later deposits cure them,
// bonus issues with ratios that make remainder ties, dividends), every stream run by
// two kernel versions. They must give the same outcome and the same effect records
// for every event, and the same state digest every `digestEvery` events and at the
// end. A failure names the seed and stream and the first differing effect rows.
//
// Deterministic: one seed decides every market and mutation (its own SplitMix64 here,
// never the system generator), so a failing stream replays exactly with its seed.
import Foundation
import KernelAPI
import MarketGenerator
import TallyEngine
import TallyFormat

public struct DifferentialOptions: Sendable {
  public var seed: UInt64
  /// Base markets generated from the seed.
  public var markets = 4
  /// Mutated streams per market (the first is the market unmutated).
  public var streamsPerMarket = 250
  public var kernelA = "v1"
  public var kernelB = "v2"
  /// State digests are compared after every this many events (and at the end).
  public var digestEvery = 40
  /// Stop at the first failing stream.
  public var stopAtFirst = true

  public init(seed: UInt64) { self.seed = seed }
}

public struct DifferentialFailure: Sendable, CustomStringConvertible {
  public var seed: UInt64
  public var market: Int
  public var stream: Int
  public var mutations: [String]
  public var seq: Int64
  public var lines: [String]

  public var description: String {
    "kernels differ: seed \(seed) market \(market) stream \(stream) (mutations: "
      + (mutations.isEmpty ? "none" : mutations.joined(separator: "; ")) + "), first at seq \(seq):\n  "
      + lines.joined(separator: "\n  ")
  }
}

public struct DifferentialResult: Sendable {
  public var streams = 0
  public var events = 0
  public var rejected = 0
  public var failures: [DifferentialFailure] = []
  /// How many streams carried each mutation kind (to show the mutations did happen).
  public var mutationCounts: [(kind: String, count: Int)] = []
}

public enum KernelDifferential {
  /// Runs the check; `progress` gets a line per market.
  public static func run(
    _ options: DifferentialOptions, workDirectory: String, progress: (String) -> Void = { _ in }
  ) throws -> DifferentialResult {
    try forEachStream(options, workDirectory: workDirectory, progress: progress) { reference, lines, _ in
      try compare(options, reference: reference, lines: lines.map { $0[...] })
    }
  }

  /// The same streams, each kernel against itself: event lines applied in blocks of
  /// random length (`Engine.apply(lines:of:firstSeq:)`: runs of TRADEs go to the kernel
  /// together, `BusinessKernel.applyTrades`) against one line at a time. Outcomes must be
  /// equal for every event, effects for every block, digests and outputs at the end.
  public static func runGrouped(
    _ options: DifferentialOptions, workDirectory: String, progress: (String) -> Void = { _ in }
  ) throws -> DifferentialResult {
    try forEachStream(options, workDirectory: workDirectory, progress: progress) { reference, lines, rng in
      var rejected = 0
      for kernel in [options.kernelA, options.kernelB] {
        let (events, r, failure) = try compareGrouped(kernel, reference: reference, lines: lines, rng: &rng)
        if failure != nil { return (events, r, failure) }
        rejected = r
      }
      return (lines.count, rejected, nil)
    }
  }

  /// Generates the markets and their mutated streams and runs `check` on each stream.
  static func forEachStream(
    _ options: DifferentialOptions, workDirectory: String, progress: (String) -> Void,
    _ check: (ReferenceData, [[UInt8]], inout DiffRandom) throws -> (
      events: Int, rejected: Int, failure: DifferentialFailure?
    )
  ) throws -> DifferentialResult {
    var result = DifferentialResult()
    var counts = [Int](repeating: 0, count: Mutation.allCases.count)
    var rng = DiffRandom(seed: options.seed)
    for m in 0..<options.markets {
      var o = MarketOptions(
        seed: rng.next(), days: 2 + Int(rng.below(3)), tradesPerDay: 15 + Int(rng.below(40)),
        accounts: 8 + Int(rng.below(20)), securities: 2 + Int(rng.below(4)),
        participants: 2 + Int(rng.below(3)))
      o.badLinesPerMillion = 20_000
      o.cancelsPerMillion = 40_000
      let dir = workDirectory + "/market-\(m)"
      _ = try MarketGenerator.generate(o, into: dir)
      let reference = try FileIO.loadReference(dir + "/reference")
      let base = EmbeddedRun.lines(of: [try FileIO.read(dir + "/events.txt")]).map { Array($0) }
      for s in 0..<options.streamsPerMarket {
        var applied: [String] = []
        var lines = base
        if s > 0 {
          let n = 1 + Int(rng.below(4))
          for _ in 0..<n {
            let kind = Mutation.allCases[Int(rng.below(UInt64(Mutation.allCases.count)))]
            if let note = kind.apply(to: &lines, reference: reference, rng: &rng) {
              applied.append(note)
              counts[Mutation.allCases.firstIndex(of: kind)!] += 1
            }
          }
        }
        let (events, rejected, failure) = try check(reference, lines, &rng)
        result.streams += 1
        result.events += events
        result.rejected += rejected
        if var failure {
          failure.seed = options.seed
          failure.market = m
          failure.stream = s
          failure.mutations = applied
          result.failures.append(failure)
          if options.stopAtFirst { return finish(result, counts) }
        }
      }
      progress(
        "differential: market \(m + 1)/\(options.markets): \(result.streams) streams, \(result.events) events, \(result.failures.count) failing"
      )
      try? FileManager.default.removeItem(atPath: dir)
    }
    return finish(result, counts)
  }

  /// One stream on one kernel, in blocks (random lengths, 1-48 lines) and line by line.
  static func compareGrouped(
    _ kernel: String, reference: ReferenceData, lines: [[UInt8]], rng: inout DiffRandom
  ) throws -> (events: Int, rejected: Int, failure: DifferentialFailure?) {
    let (type, fault) = try KernelCatalog.resolve(kernel)
    func go<K: BusinessKernel>(_: K.Type) -> (events: Int, rejected: Int, failure: DifferentialFailure?) {
      compareGrouped(K.self, fault: fault, name: kernel, reference: reference, lines: lines, rng: &rng)
    }
    return go(type)
  }

  /// `compareGrouped` for a kernel type (tests hand it a kernel that groups wrongly).
  static func compareGrouped<K: BusinessKernel>(
    _: K.Type, fault: PlantedFault?, name kernel: String, reference: ReferenceData, lines: [[UInt8]],
    rng: inout DiffRandom
  ) -> (events: Int, rejected: Int, failure: DifferentialFailure?) {
    func failure(_ seq: Int64, _ text: String) -> DifferentialFailure {
      DifferentialFailure(
        seed: 0, market: 0, stream: 0, mutations: [], seq: seq,
        lines: ["\(kernel), blocks against lines: " + text])
    }
    do {
      var single = Engine<K>(reference: reference, plantedFault: fault)
      var blocks = Engine<K>(reference: reference, plantedFault: fault)
      single.enableEffects()
      blocks.enableEffects()
      let (bytes, ranges) = EventLines.joined(lines)
      var rejected = 0
      var i = 0
      // Every other group is resolved first (`TradeResolver`, when the version has one),
      // by a resolver made anew every fifth group: resolvers of several ages, some
      // older than the ids the events before added.
      var groups = 0
      var resolver = blocks.state.tradeResolver()
      while i < lines.count {
        let n = min(1 + Int(rng.below(48)), lines.count - i)
        var grouped = [Outcome](repeating: .applied, count: n)
        if groups % 5 == 4 { resolver = blocks.state.tradeResolver() }
        blocks.apply(
          lines: ranges[i..<(i + n)], of: bytes, firstSeq: Int64(i + 1),
          resolver: groups % 2 == 0 ? resolver : nil
        ) { k, o in grouped[k] = o }
        groups += 1
        for k in 0..<n {
          let seq = Int64(i + k + 1)
          let o = single.apply(line: bytes[ranges[i + k]], seq: seq)
          if o != .applied { rejected += 1 }
          if o != grouped[k] {
            let line = String(decoding: bytes[ranges[i + k]], as: UTF8.self)
            return (
              i + k + 1, rejected, failure(seq, "outcome \(describe(grouped[k])) vs \(describe(o)): \(line)")
            )
          }
        }
        if blocks.takeEffects() != single.takeEffects() {
          return (i + n, rejected, failure(Int64(i + n), "effect records of seqs \(i + 1)...\(i + n) differ"))
        }
        i += n
      }
      if blocks.stateDigest != single.stateDigest {
        return (lines.count, rejected, failure(Int64(lines.count), "state digests differ at the end"))
      }
      if blocks.outputFiles().map(\.bytes) != single.outputFiles().map(\.bytes) {
        return (lines.count, rejected, failure(Int64(lines.count), "output files differ at the end"))
      }
      if blocks.statistics != single.statistics {
        return (lines.count, rejected, failure(Int64(lines.count), "run statistics differ at the end"))
      }
      return (lines.count, rejected, nil)
    }
  }

  static func finish(_ r: DifferentialResult, _ counts: [Int]) -> DifferentialResult {
    var r = r
    r.mutationCounts = zip(Mutation.allCases, counts).map { ($0.rawValue, $1) }
    return r
  }

  /// Runs one stream on both kernels, event by event.
  static func compare(_ options: DifferentialOptions, reference: ReferenceData, lines: [ArraySlice<UInt8>])
    throws -> (events: Int, rejected: Int, failure: DifferentialFailure?)
  {
    let a = try AnyEngine(kernel: options.kernelA, reference: reference)
    let b = try AnyEngine(kernel: options.kernelB, reference: reference)
    a.enableEffects()
    b.enableEffects()
    func failure(_ seq: Int64, _ lines: [String]) -> DifferentialFailure {
      DifferentialFailure(seed: 0, market: 0, stream: 0, mutations: [], seq: seq, lines: lines)
    }
    let snapA = a.snapshotEffects()
    let snapB = b.snapshotEffects()
    // The row keys each side's records have named so far (docs/EFFECTS.md), to show a
    // difference as rows; kept by key records only (a full decode per event costs more).
    var keysA = EffectDecoder()
    var keysB = EffectDecoder()
    if snapA != snapB {
      return (0, 0, failure(0, differences(snapA, snapB, options, keysA, keysB)))
    }
    try keysA.learnKeys(snapA)
    try keysB.learnKeys(snapB)
    var rejected = 0
    for (i, line) in lines.enumerated() {
      let seq = Int64(i + 1)
      let oa = a.apply(line: line, seq: seq)
      let ob = b.apply(line: line, seq: seq)
      if oa != .applied { rejected += 1 }
      let ea = a.takeEffects()
      let eb = b.takeEffects()
      if oa != ob || ea != eb {
        var text = ["line: " + String(decoding: line, as: UTF8.self)]
        if oa != ob {
          text.append("outcome \(describe(oa)) (\(options.kernelA)) vs \(describe(ob)) (\(options.kernelB))")
        }
        text += differences(ea, eb, options, keysA, keysB)
        return (i + 1, rejected, failure(seq, text))
      }
      try keysA.learnKeys(ea)
      try keysB.learnKeys(eb)
      if (i + 1) % options.digestEvery == 0 || i + 1 == lines.count, a.stateDigest != b.stateDigest {
        return (
          i + 1, rejected,
          failure(
            seq, ["state digests differ after this event (effects were equal): a row outside SPEC §5 differs"]
          )
        )
      }
    }
    if a.outputFiles().map(\.bytes) != b.outputFiles().map(\.bytes) {
      return (lines.count, rejected, failure(Int64(lines.count), ["output files differ at the end"]))
    }
    return (lines.count, rejected, nil)
  }

  static func describe(_ o: Outcome) -> String {
    switch o {
    case .applied: return "APPLIED"
    case .rejected(let r): return r.code
    }
  }

  /// The first differing rows of two event's effect records, as text (A vs B).
  static func differences(
    _ a: [UInt8], _ b: [UInt8], _ options: DifferentialOptions, _ keysA: EffectDecoder, _ keysB: EffectDecoder
  ) -> [String] {
    var (da, db) = (keysA, keysB)
    guard let ea = try? da.decode(a), let eb = try? db.decode(b) else {
      return ["effect records differ and one side does not decode"]
    }
    guard let d = EffectText.firstDifference(majority: ea, dissenter: eb) else {
      return ["effect bytes differ"]
    }
    return ["(\(options.kernelA) vs \(options.kernelB))"] + d.lines
  }
}

/// The mutations of a stream. Each returns a note of what it did, or nil when the
/// stream offered nothing to do it on.
enum Mutation: String, CaseIterable, Sendable {
  case dropLine = "drop"
  case repeatLine = "repeat"
  case swapLines = "swap"
  case corruptField = "corrupt"
  case reorderDays = "reorder-days"
  case lateCancel = "late-cancel"
  case dropDeposits = "drop-deposits"
  case cureDeposit = "cure-deposit"
  case bonusTie = "bonus-tie"
  case dividend = "dividend"
  case truncate = "truncate"

  func apply(to lines: inout [[UInt8]], reference: ReferenceData, rng: inout DiffRandom) -> String? {
    guard !lines.isEmpty else { return nil }
    func text(_ i: Int) -> String { String(decoding: lines[i], as: UTF8.self) }
    func indices(prefix: String) -> [Int] { lines.indices.filter { text($0).hasPrefix(prefix) } }
    func pick(_ xs: [Int]) -> Int? { xs.isEmpty ? nil : xs[Int(rng.below(UInt64(xs.count)))] }
    let n = lines.count
    switch self {
    case .dropLine:
      let i = Int(rng.below(UInt64(n)))
      let t = text(i)
      lines.remove(at: i)
      return "drop line \(i + 1) '\(t)'"
    case .repeatLine:
      let i = Int(rng.below(UInt64(n)))
      let j = i + Int(rng.below(UInt64(min(50, n - i)) + 1))
      lines.insert(lines[i], at: min(j, lines.count))
      return "repeat line \(i + 1) at \(j + 1)"
    case .swapLines:
      guard n > 2 else { return nil }
      let i = Int(rng.below(UInt64(n - 1)))
      lines.swapAt(i, i + 1)
      return "swap lines \(i + 1), \(i + 2)"
    case .corruptField:
      let i = Int(rng.below(UInt64(n)))
      var fields = text(i).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
      guard fields.count > 1 else { return nil }
      let f = 1 + Int(rng.below(UInt64(fields.count - 1)))
      let replacements = ["0", "-1", "", "x", "99999999999", "0.001", "20991231", "1.005", "A0"]
      fields[f] = replacements[Int(rng.below(UInt64(replacements.count)))]
      lines[i] = Array(fields.joined(separator: ",").utf8)
      return "corrupt line \(i + 1) field \(f + 1) -> '\(fields[f])'"
    case .reorderDays:
      // Move one whole OPEN..(next OPEN) block before the previous one.
      let opens = indices(prefix: "OPEN,")
      guard opens.count >= 3 else { return nil }
      let k = 1 + Int(rng.below(UInt64(opens.count - 2)))
      let a = opens[k - 1]
      let b = opens[k]
      let c = opens[k + 1]
      let moved = Array(lines[b..<c])
      lines.removeSubrange(b..<c)
      lines.insert(contentsOf: moved, at: a)
      return "day block at line \(b + 1) moved before line \(a + 1)"
    case .lateCancel:
      let trades = indices(prefix: "TRADE,")
      guard let t = pick(trades) else { return nil }
      let f = text(t).split(separator: ",", omittingEmptySubsequences: false)
      guard f.count > 3 else { return nil }
      let at = t + 1 + Int(rng.below(UInt64(lines.count - t)))
      lines.insert(Array("CANCEL,\(f[2]),\(f[1])".utf8), at: at)
      return "cancel of trade \(f[1]) inserted at line \(at + 1)"
    case .dropDeposits:
      let deposits = indices(prefix: "DEPOSIT,")
      guard !deposits.isEmpty else { return nil }
      for i in deposits.reversed() { lines.remove(at: i) }
      return "all \(deposits.count) deposits dropped"
    case .cureDeposit:
      guard let p = reference.participants.first, let s = pick(indices(prefix: "SETTLE,")) else { return nil }
      lines.insert(Array("DEPOSIT,\(p.id),100000000.00".utf8), at: s + 1)
      return "large deposit of \(p.id) after line \(s + 1)"
    case .bonusTie:
      // Before a CLOSE: BONUS with ratio 1 per 3 (remainders 1 and 2 tie often across
      // holders of equal quantities), record date that CLOSE's date.
      guard let c = pick(indices(prefix: "CLOSE,")), let sec = reference.securities.first else { return nil }
      let date = text(c).dropFirst(6)
      let ratios = [(3, 1), (7, 2), (10, 3), (4, 1)]
      let r = ratios[Int(rng.below(UInt64(ratios.count)))]
      lines.insert(Array("BONUS,\(sec.code),\(date),\(r.0),\(r.1)".utf8), at: c)
      return "bonus \(r.1) per \(r.0) of \(sec.code) recorded \(date)"
    case .dividend:
      guard let c = pick(indices(prefix: "CLOSE,")), !reference.securities.isEmpty else { return nil }
      let sec = reference.securities[Int(rng.below(UInt64(reference.securities.count)))]
      let date = text(c).dropFirst(6)
      lines.insert(Array("DIVIDEND,\(sec.code),\(date),0.\(100 + Int(rng.below(800)))".utf8), at: c)
      return "dividend of \(sec.code) recorded \(date)"
    case .truncate:
      let keep = 1 + Int(rng.below(UInt64(n)))
      lines.removeSubrange(keep...)
      return "truncated to \(keep) lines"
    }
  }
}

/// SplitMix64: the differential check's own deterministic generator.
struct DiffRandom {
  var state: UInt64
  init(seed: UInt64) { state = seed }

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Uniform enough in 0..<n for test streams (n > 0).
  mutating func below(_ n: UInt64) -> UInt64 { next() % n }
}
