// Many seeds of the simulator, with a summary a person can read and a failing seed
// that replays exactly.
import TallyCluster

public struct SimulatorSummary: Sendable {
  public var seeds = 0
  public var failed: [SimResult] = []
  public var withKnownIssues: [SimResult] = []
  public var events: Int64 = 0
  public var steps = 0
  public var simulatedMs: Int64 = 0
  public var faults: [(kind: String, count: Int)] = []

  mutating func add(_ r: SimResult) {
    seeds += 1
    events += r.events
    steps += r.steps
    simulatedMs += r.simulatedMs
    for f in r.faults {
      if let i = faults.firstIndex(where: { $0.kind == f.kind }) {
        faults[i].count += f.count
      } else {
        faults.append(f)
      }
    }
    if !r.anomalies.isEmpty { failed.append(r) }
    if !r.knownIssues.isEmpty { withKnownIssues.append(r) }
  }

  public var faultText: String {
    faults.sorted { $0.kind < $1.kind }.map { "\($0.kind) \($0.count)" }.joined(separator: ", ")
  }

  public var json: String {
    JSON.render([
      ("mode", .string("simulate")), ("seeds", .int(Int64(seeds))),
      ("failed_seeds", .array(failed.map { .int(Int64(bitPattern: $0.seed)) })),
      ("known_issue_seeds", .array(withKnownIssues.map { .int(Int64(bitPattern: $0.seed)) })),
      ("events", .int(events)), ("steps", .int(Int64(steps))), ("simulated_ms", .int(simulatedMs)),
      ("faults", .object(faults.sorted { $0.kind < $1.kind }.map { ($0.kind, .int(Int64($0.count))) })),
      (
        "anomalies",
        .array(
          failed.flatMap { r in
            r.anomalies.map { a in
              .object([
                ("seed", .int(Int64(bitPattern: r.seed))), ("kind", .string(a.kind)),
                ("seq", a.seq.map { .int($0) } ?? .null), ("detail", .string(a.detail)),
              ])
            }
          })
      ),
    ])
  }
}

public enum SimulatorRun {
  public static func run(
    from: UInt64, count: Int, configure: (inout SimOptions) -> Void = { _ in },
    progress: (SimResult) -> Void = { _ in }
  ) -> SimulatorSummary {
    var summary = SimulatorSummary()
    for k in 0..<count {
      var o = SimOptions(seed: from &+ UInt64(k))
      configure(&o)
      let r = Simulator.run(o)
      summary.add(r)
      progress(r)
    }
    return summary
  }

  public static func describe(_ r: SimResult) -> String {
    var lines = [
      "seed \(r.seed): \(r.anomalies.isEmpty ? "ok" : "FAILED with \(r.anomalies.count) anomalies")"
    ]
    lines.append("  \(r.parameters)")
    lines.append(
      "  \(r.events) events, \(r.steps) steps, \(r.simulatedMs) simulated ms, trace \(r.traceDigest.prefix(16))"
    )
    for a in r.anomalies { lines.append("  ANOMALY \(a)") }
    for a in r.knownIssues { lines.append("  KNOWN ISSUE \(a)") }
    for n in r.notes { lines.append("  note: \(n)") }
    if !r.anomalies.isEmpty {
      lines.append("  replay: tally chaos --simulate --from-seed \(r.seed) --seeds 1 --trace")
    }
    return lines.joined(separator: "\n")
  }
}
