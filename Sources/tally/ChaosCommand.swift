// tally chaos: fault injection against a real local cluster (a scenario), or many
// seeds of the deterministic simulator.
import ArgumentParser
import Foundation
import TallyChaos

struct ChaosCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "chaos",
    abstract: "Fault injection: a scenario against a real local cluster, or the deterministic simulator.",
    discussion: helpText(
      """
        tally chaos --scenario FILE [--seed N] [--out report.json]

      Starts a real cluster (processes) in a temporary folder, submits a generated market
      while it kills, freezes, wipes and restarts nodes as the scenario file says
      (Chaos/scenarios/*.toml, e.g. kill-any.toml), then checks: every acked event
      decided exactly once, the report byte-identical to an embedded run, replicas
      converged, every byzantine replica alerted. Exit 0 only with zero anomalies.

        tally chaos --simulate --seeds 1000 [--from-seed S] [--trace]

      Runs the whole cluster in one process on a simulated network and clock; a failing
      seed replays exactly. See docs/CHAOS.md.
      """))

  @Option(name: .long, help: "Scenario file (Chaos/scenarios/*.toml).")
  var scenario: String?

  @Option(name: .long, help: "Seed (overrides the scenario's).")
  var seed: UInt64?

  @Option(name: .long, help: "Write the verdict as JSON to this file.")
  var out: String?

  @Flag(name: .long, help: "Run the deterministic simulator instead of a real cluster.")
  var simulate = false

  @Option(name: .long, help: "Simulator: how many seeds.")
  var seeds = 100

  @Option(name: .long, help: "Simulator: the first seed.")
  var fromSeed: UInt64 = 1

  @Flag(name: .long, help: "Simulator: print every step of each seed (use with --seeds 1).")
  var trace = false

  @Flag(name: .long, help: "Simulator: known cluster issues (docs/CHAOS.md) fail the run too.")
  var strict = false

  @Option(name: .long, help: "Real cluster: keep the data folder here instead of a temporary one.")
  var data: String?

  @Flag(name: .long, help: "Real cluster: keep the data folder after the run.")
  var keep = false

  func validate() throws {
    if simulate == (scenario != nil) { throw ValidationError("give either --scenario FILE or --simulate") }
    if simulate && seeds < 1 { throw ValidationError("--seeds must be at least 1") }
  }

  func run() throws {
    if simulate { try runSimulator() } else { try runScenario() }
  }

  func runSimulator() throws {
    let clock = ContinuousClock()
    let started = clock.now
    let trace = self.trace
    let summary = SimulatorRun.run(
      from: fromSeed, count: seeds, configure: { $0.keepTrace = trace },
      progress: { r in
        if trace { for line in r.trace { print(line) } }
        if !r.anomalies.isEmpty || (self.strict && !r.knownIssues.isEmpty) || trace || self.seeds <= 5 {
          print(SimulatorRun.describe(r))
        }
        if (r.seed &- self.fromSeed + 1) % 100 == 0 {
          note("chaos simulate: \(r.seed &- self.fromSeed + 1)/\(self.seeds) seeds")
        }
      })
    let seconds = (clock.now - started).seconds
    if let out { try? Data((summary.json + "\n").utf8).write(to: URL(fileURLWithPath: out)) }
    print(
      "chaos simulate: \(summary.seeds) seeds from \(fromSeed), \(summary.failed.count) failed; \(summary.events) events, "
        + "\(summary.steps) steps, \(summary.simulatedMs / 1000) simulated s in \(String(format: "%.1f", seconds)) s"
    )
    print("  faults: \(summary.faultText)")
    if !summary.withKnownIssues.isEmpty {
      let kinds = Set(summary.withKnownIssues.flatMap { $0.knownIssues.map(\.kind) }).sorted()
      print(
        "  known issues (\(kinds.joined(separator: ", "))) in \(summary.withKnownIssues.count) seeds: "
          + summary.withKnownIssues.prefix(20).map { String($0.seed) }.joined(separator: " "))
      if strict { throw ExitCode(1) }
    }
    if !summary.failed.isEmpty {
      print("  failing seeds: \(summary.failed.map { String($0.seed) }.joined(separator: " "))")
      throw ExitCode(1)
    }
  }

  func runScenario() throws {
    guard let scenario else { return }
    var s: Scenario
    do { s = try Scenario.load(scenario) } catch { fail("\(error)", code: 2) }
    if let seed { s.seed = seed }
    let harness = ChaosHarness(
      scenario: s, executable: selfExecutable(), dataDir: data, keepData: keep || data != nil,
      log: { note("chaos: " + $0) })
    let verdict: Verdict
    do { verdict = try harness.run() } catch { fail("\(error)") }
    print(verdict.summary)
    if let out {
      do { try Data((verdict.json + "\n").utf8).write(to: URL(fileURLWithPath: out)) } catch {
        fail("cannot write \(out): \(error)", code: 3)
      }
    }
    if !verdict.anomalies.isEmpty { throw ExitCode(1) }
  }
}
