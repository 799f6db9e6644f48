import KernelAPI
// The checker: judges a run from what a client and an outside observer saw, never
// from the cluster's own claims. Its truth is (1) the sequencer's acks (which
// events got which seqs), (2) an embedded `Engine` run of those events in seq
// order, computed here. Against that it judges the voted stream (as observed on
// the voter's PUB feed, or every emit in the simulator), the final report, the
// replicas' digests and the alerts.
import TallyCluster
import TallyEngine

public struct Anomaly: Sendable, Equatable, CustomStringConvertible {
  public var kind: String
  public var seq: Int64?
  public var detail: String

  public init(_ kind: String, seq: Int64? = nil, _ detail: String) {
    self.kind = kind
    self.seq = seq
    self.detail = detail
  }

  public var description: String { kind + (seq.map { " at seq \($0)" } ?? "") + ": " + detail }

  var json: JSON {
    .object([("kind", .string(kind)), ("seq", seq.map { .int($0) } ?? .null), ("detail", .string(detail))])
  }
}

/// One decided batch as an observer saw it.
public struct ObservedBatch: Sendable, Equatable {
  public var first: Int64
  public var last: Int64
  public var outcomes: [UInt8]
  public var stateDigest: [UInt8]

  public init(first: Int64, last: Int64, outcomes: [UInt8], stateDigest: [UInt8]) {
    self.first = first
    self.last = last
    self.outcomes = outcomes
    self.stateDigest = stateDigest
  }
}

public struct ObservedAlert: Sendable, Equatable {
  public var kind: String
  public var replica: String?
  public var firstSeq: Int64?

  public init(kind: String, replica: String?, firstSeq: Int64?) {
    self.kind = kind
    self.replica = replica
    self.firstSeq = firstSeq
  }

  /// One line of alerts.jsonl (our own writer's flat output).
  public init?(jsonLine: String) {
    func str(_ name: String) -> String? {
      guard let r = jsonLine.range(of: "\"\(name)\":\"") else { return nil }
      return String(jsonLine[r.upperBound...].prefix { $0 != "\"" })
    }
    guard let kind = str("kind") else { return nil }
    self.init(kind: kind, replica: str("replica"), firstSeq: ControlClient.field(jsonLine, "first_seq"))
  }
}

public struct ReplicaFinal: Sendable, Equatable {
  public var id: String
  public var appliedSeq: Int64?
  public var stateDigest: [UInt8]?
  /// A replica with a wrong kernel may end in another state; it is not held to convergence.
  public var honestState: Bool

  public init(id: String, appliedSeq: Int64?, stateDigest: [UInt8]?, honestState: Bool) {
    self.id = id
    self.appliedSeq = appliedSeq
    self.stateDigest = stateDigest
    self.honestState = honestState
  }
}

public struct CheckInput {
  /// Event lines of every client batch, in the order the client numbered them.
  public var batches: [[[UInt8]]]
  /// The sequencer's answer to each batch (nil: never acked).
  public var acks: [(first: Int64, last: Int64)?]
  /// Decided batches in arrival order.
  public var observed: [ObservedBatch]
  /// True when `observed` must be complete (the simulator); false for a PUB feed,
  /// where a gap only means "not observed" and the report and status decide.
  public var observedIsComplete: Bool
  public var reference: ReferenceData
  /// The report's seven files, when one was made.
  public var report: [(name: String, bytes: [UInt8])]?
  public var replicas: [ReplicaFinal]
  /// The voter's and the sequencer's own figures (cross-checked, not trusted).
  public var decidedThrough: Int64?
  public var journalLastSeq: Int64?
  public var alerts: [ObservedAlert]
  /// Replicas given a fault that must be caught, with the kernel they really run.
  public var byzantine: [(id: String, kernel: String, flipsDigest: Bool)]

  public init(
    batches: [[[UInt8]]], acks: [(first: Int64, last: Int64)?], observed: [ObservedBatch],
    observedIsComplete: Bool,
    reference: ReferenceData, report: [(name: String, bytes: [UInt8])]?, replicas: [ReplicaFinal],
    decidedThrough: Int64?, journalLastSeq: Int64?, alerts: [ObservedAlert],
    byzantine: [(id: String, kernel: String, flipsDigest: Bool)]
  ) {
    self.batches = batches
    self.acks = acks
    self.observed = observed
    self.observedIsComplete = observedIsComplete
    self.reference = reference
    self.report = report
    self.replicas = replicas
    self.decidedThrough = decidedThrough
    self.journalLastSeq = journalLastSeq
    self.alerts = alerts
    self.byzantine = byzantine
  }
}

public struct CheckResult: Sendable {
  public var anomalies: [Anomaly] = []
  public var events: Int64 = 0
  /// Seqs seen decided on the observed stream, and gaps in it (not anomalies on a PUB feed).
  public var observedEvents: Int64 = 0
  public var observedGaps = 0
  /// The journal order differs from the order the client numbered its batches.
  public var reorderedBatches = 0
  public var expectedDigest: [UInt8] = []
  public var notes: [String] = []
}

public enum Checker {
  /// How many anomalies of one kind are listed before they are only counted.
  static let perKindMax = 20

  /// The embedded run of `lines` as seqs 1...n: outcome bytes, files and digest.
  public static func embeddedRun(reference: ReferenceData, kernel: String, lines: [[UInt8]]) -> (
    outcomes: [UInt8], files: [(name: String, bytes: [UInt8])], digest: [UInt8]
  ) {
    let (type, fault) = try! KernelCatalog.resolve(kernel)
    func run<K: BusinessKernel>(_: K.Type) -> ([UInt8], [(name: String, bytes: [UInt8])], [UInt8]) {
      var engine = Engine<K>(reference: reference, plantedFault: fault)
      var outcomes: [UInt8] = []
      outcomes.reserveCapacity(lines.count)
      for (i, line) in lines.enumerated() {
        outcomes.append(OutcomeByte.of(engine.apply(line: line[...], seq: Int64(i + 1))))
      }
      return (outcomes, engine.outputFiles(), engine.stateDigest)
    }
    return run(type)
  }

  public static func check(_ input: CheckInput) -> CheckResult {
    var result = CheckResult()
    var counts: [String: Int] = [:]
    func flag(_ a: Anomaly) {
      counts[a.kind, default: 0] += 1
      if counts[a.kind]! <= perKindMax { result.anomalies.append(a) }
    }

    // 1. The acks: every batch acked, with as many seqs as it has events, ranges
    //    disjoint and together exactly 1...n.
    var ranges: [(first: Int64, last: Int64, batch: Int)] = []
    for (i, lines) in input.batches.enumerated() {
      guard let ack = input.acks[i] else {
        flag(Anomaly("UNACKED", "client batch \(i + 1) (\(lines.count) events) was never acknowledged"))
        continue
      }
      if lines.isEmpty {
        if ack.first != 0 || ack.last != 0 {
          flag(Anomaly("ACK_RANGE", "empty batch \(i + 1) got \(ack.first)...\(ack.last)"))
        }
        continue
      }
      guard ack.first >= 1, ack.last - ack.first + 1 == Int64(lines.count) else {
        flag(
          Anomaly(
            "ACK_RANGE", seq: ack.first,
            "batch \(i + 1) of \(lines.count) events got \(ack.first)...\(ack.last)"))
        continue
      }
      ranges.append((ack.first, ack.last, i))
    }
    ranges.sort { $0.first < $1.first }
    var journal: [[UInt8]] = []
    var next: Int64 = 1
    for r in ranges {
      if r.first < next {
        flag(Anomaly("DUPLICATE_SEQ", seq: r.first, "batch \(r.batch + 1) shares seqs with an earlier batch"))
        continue
      }
      if r.first > next {
        flag(Anomaly("SEQ_GAP", seq: next, "seqs \(next)...\(r.first - 1) were given to no acked batch"))
      }
      journal += input.batches[r.batch]
      next = r.last + 1
    }
    let n = next - 1
    result.events = n
    for (k, r) in ranges.enumerated() where k > 0 && r.batch < ranges[k - 1].batch {
      result.reorderedBatches += 1
    }
    if result.reorderedBatches > 0 {
      result.notes.append(
        "\(result.reorderedBatches) client batches were journaled before a batch the client numbered earlier (allowed by SPEC §7; the reference run follows seq order)"
      )
    }
    if let j = input.journalLastSeq, j != n {
      flag(Anomaly("JOURNAL_LENGTH", seq: j, "the sequencer reports last seq \(j), the acks cover 1...\(n)"))
    }
    let seqToBatch = ranges  // sorted by first, for boundary checks

    // 2. The truth: an embedded run of the journal order.
    let expected = embeddedRun(reference: input.reference, kernel: "v1", lines: journal)
    result.expectedDigest = expected.digest

    // 3. The voted stream: each seq decided at most once, every batch a journal
    //    batch, every outcome the embedded one.
    var seen = [UInt8](repeating: 0, count: Int(n) + 1)
    var lastObserved: Int64 = 0
    var lastDigest: [UInt8]? = nil
    for b in input.observed {
      guard b.first >= 1, b.last >= b.first, Int64(b.outcomes.count) == b.last - b.first + 1 else {
        flag(
          Anomaly(
            "MALFORMED_DECISION", seq: b.first,
            "decided \(b.first)...\(b.last) with \(b.outcomes.count) outcomes"))
        continue
      }
      if b.first <= lastObserved {
        flag(
          Anomaly(
            "DUPLICATE_DECISION", seq: b.first,
            "decided \(b.first)...\(b.last) after \(lastObserved) was already decided"))
      } else if b.first > lastObserved + 1 {
        result.observedGaps += 1
        if input.observedIsComplete {
          flag(
            Anomaly(
              "DECISION_GAP", seq: lastObserved + 1,
              "the voted stream skipped \(lastObserved + 1)...\(b.first - 1)"))
        }
      }
      lastObserved = max(lastObserved, b.last)
      if b.last > n {
        flag(
          Anomaly(
            "UNACKED_DECIDED", seq: max(b.first, n + 1), "decided \(b.first)...\(b.last) but acks end at \(n)"
          ))
      }
      let boundary = seqToBatch.first { $0.first == b.first }
      if boundary == nil || boundary!.last != b.last {
        flag(
          Anomaly("BATCH_BOUNDARY", seq: b.first, "decided \(b.first)...\(b.last) is not one journal batch"))
      }
      for (k, o) in b.outcomes.enumerated() {
        let seq = b.first + Int64(k)
        guard seq <= n else { break }
        seen[Int(seq)] &+= 1
        if seen[Int(seq)] == 1 { result.observedEvents += 1 }
        if seen[Int(seq)] > 1 {
          flag(Anomaly("DUPLICATE_OUTCOME", seq: seq, "seq \(seq) decided \(seen[Int(seq)]) times"))
        }
        if Int(seq) <= expected.outcomes.count && o != expected.outcomes[Int(seq - 1)] {
          flag(
            Anomaly(
              "OUTCOME_MISMATCH", seq: seq,
              "voted \(describe(o)), the embedded run gives \(describe(expected.outcomes[Int(seq - 1)]))"))
        }
      }
      // State digests are voted at checkpoints only; a batch between them has none.
      if b.last == n && !b.stateDigest.isEmpty { lastDigest = b.stateDigest }
    }
    if input.observedIsComplete {
      if let missing = (1...max(1, n)).first(where: { n > 0 && seen[Int($0)] == 0 }) {
        flag(Anomaly("NOT_DECIDED", seq: missing, "an acked event has no outcome in the voted stream"))
      }
    }
    if let d = lastDigest, d != expected.digest {
      flag(
        Anomaly(
          "VOTED_DIGEST", seq: n,
          "voted state digest \(d.hexString.prefix(16)) ≠ embedded \(expected.digest.hexString.prefix(16))"))
    }
    if let t = input.decidedThrough, t != n {
      flag(Anomaly("DECIDED_THROUGH", seq: t, "the voter says decided through \(t); acks end at \(n)"))
    }

    // 4. The report: byte-identical to the embedded run, and its rejections agree
    //    with the voted outcomes we saw.
    if let report = input.report {
      for file in expected.files {
        guard let got = report.first(where: { $0.name == file.name }) else {
          flag(Anomaly("REPORT_MISSING", "\(file.name) is not in the report"))
          continue
        }
        if got.bytes != file.bytes {
          let line = firstDifferingLine(got.bytes, file.bytes)
          flag(Anomaly("REPORT_MISMATCH", "\(file.name) differs from the embedded run from line \(line)"))
        }
      }
      if let rej = report.first(where: { $0.name == "rejections.csv" }) {
        let rejected = rejectedSeqs(rej.bytes)
        var k = 0
        for seq in stride(from: Int64(1), through: Int64(expected.outcomes.count), by: 1)
        where seen[Int(seq)] > 0 {
          while k < rejected.count && rejected[k].seq < seq { k += 1 }
          let listed = k < rejected.count && rejected[k].seq == seq ? rejected[k].reason : nil
          let voted = expected.outcomes[Int(seq - 1)]
          let votedCode = voted == 0 ? nil : RejectReason(rawValue: voted - 1)?.code
          if listed != votedCode {
            flag(
              Anomaly(
                "REPORT_VS_STREAM", seq: seq,
                "report says \(listed ?? "applied"), voted stream \(votedCode ?? "applied")"))
          }
        }
      }
    } else {
      flag(Anomaly("NO_REPORT", "no report could be made"))
    }

    // 5. Convergence: every replica with an honest state is at n with the embedded digest.
    for r in input.replicas where r.honestState {
      guard let applied = r.appliedSeq, let digest = r.stateDigest else {
        flag(Anomaly("REPLICA_SILENT", "replica \(r.id) did not answer STATUS at the end"))
        continue
      }
      if applied != n {
        flag(
          Anomaly(
            "REPLICA_BEHIND", seq: applied, "replica \(r.id) applied through \(applied), acks end at \(n)"))
      } else if digest != expected.digest {
        flag(
          Anomaly(
            "REPLICA_DIVERGED", seq: n,
            "replica \(r.id) digest \(digest.hexString.prefix(16)) ≠ embedded \(expected.digest.hexString.prefix(16))"
          ))
      }
    }

    // 6. Alerts: each byzantine replica whose fault is visible was caught; no honest
    //    replica was accused; no halt.
    let byzantineIds = input.byzantine.map(\.id)
    for b in input.byzantine {
      let visible: Bool
      if b.flipsDigest || n == 0 {
        visible = n > 0
      } else {
        let faulty = embeddedRun(reference: input.reference, kernel: b.kernel, lines: journal)
        visible = faulty.digest != expected.digest || faulty.outcomes != expected.outcomes
        if !visible {
          result.notes.append(
            "kernel \(b.kernel) of \(b.id) computes the same state on these events: nothing to catch")
        }
      }
      if visible && !input.alerts.contains(where: { $0.kind == "DISSENT" && $0.replica == b.id }) {
        flag(
          Anomaly(
            "BYZANTINE_UNDETECTED",
            "replica \(b.id) (\(b.flipsDigest ? "flips its digest" : b.kernel)) raised no DISSENT alert"))
      }
    }
    for a in input.alerts {
      if a.kind == "DISSENT", let r = a.replica, !byzantineIds.contains(r) {
        flag(Anomaly("FALSE_DISSENT", seq: a.firstSeq, "honest replica \(r) was alerted as dissenting"))
      }
      if a.kind == "NO_MAJORITY" {
        flag(Anomaly("NO_MAJORITY", seq: a.firstSeq, "the voter halted: no majority"))
      }
    }
    for (kind, c) in counts.sorted(by: { $0.key < $1.key }) where c > perKindMax {
      result.notes.append("\(c - perKindMax) more \(kind) anomalies not listed")
    }
    return result
  }

  static func describe(_ outcome: UInt8) -> String {
    outcome == 0 ? "applied" : (RejectReason(rawValue: outcome - 1)?.code ?? "reason \(outcome - 1)")
  }

  static func firstDifferingLine(_ a: [UInt8], _ b: [UInt8]) -> Int {
    var line = 1
    for i in 0..<min(a.count, b.count) {
      if a[i] != b[i] { return line }
      if a[i] == 10 { line += 1 }
    }
    return line
  }

  /// `seq,record,ref,reason` rows of rejections.csv, in file order (which is seq order).
  static func rejectedSeqs(_ csv: [UInt8]) -> [(seq: Int64, reason: String)] {
    var out: [(Int64, String)] = []
    for line in csv.split(separator: 10).dropFirst() {
      guard let comma = line.firstIndex(of: 44),
        let seq = Int64(String(decoding: line[..<comma], as: UTF8.self)),
        let lastComma = line.lastIndex(of: 44)
      else { continue }
      var reason = Array(line[(lastComma + 1)...])
      if reason.last == 13 { reason.removeLast() }
      out.append((seq, String(decoding: reason, as: UTF8.self)))
    }
    return out
  }
}
