import ArgumentParser
import Foundation
import TallyCore
import TallyEngine
import TallyFormat

struct RunCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "run",
    abstract: "Apply event files to a reference folder and write the seven output files (SPEC §5).",
    discussion: """
      Files are applied in the order given, as one sequence. Rejected events are normal
      outcomes (rejections.csv), not errors: the exit status is 0 when the run completed.
      Exit status 2: unusable reference folder or unreadable event file; 3: output folder
      cannot be written; 64: bad arguments.
      """)

  @Option(name: .long, help: "The reference folder (calendar.csv, securities.csv, ...).")
  var reference: String

  @Option(name: .long, help: "The output folder (created if missing).")
  var out: String

  @Option(name: .long, help: "Clearing kernel version: v1, v2 (v1-faulty injects a fee fault).")
  var kernel = "v1"

  @Flag(name: .long, help: "Print the state digest (SHA-256 of the canonical state) after the run.")
  var digest = false

  @Flag(name: .long, help: "Print no summary on standard error.")
  var quiet = false

  @Argument(help: "Event files (SPEC §3).")
  var events: [String]

  func run() throws {
    guard !events.isEmpty else { throw ValidationError("give at least one event file") }
    let reference: ReferenceData
    do { reference = try FileIO.loadReference(self.reference) } catch { fail("\(error)", code: 2) }
    let kernel: any ClearingKernel
    do { kernel = try KernelCatalog.make(self.kernel, feeRows: reference.feeRows) } catch {
      throw ValidationError(error.description)
    }
    var engine = Engine(reference: reference, kernel: kernel)
    let clock = ContinuousClock()
    let started = clock.now
    var seq: Int64 = 0
    do {
      try EventLines.forEach(files: events) { line in
        seq += 1
        engine.apply(line: line.bytes, seq: seq)
      }
    } catch {
      fail("\(error)", code: 2)
    }
    let elapsed = clock.now - started
    do { try FileIO.writeFolder(out, files: engine.outputFiles()) } catch { fail("\(error)", code: 3) }
    if digest { print(engine.stateDigest.hexString) }
    if !quiet {
      let s = engine.statistics
      let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
      note(
        "tally run: \(s.events) events, \(s.applied) applied (\(s.tradesApplied) trades), \(s.rejected) rejected; "
          + "outputs in \(out) (\(String(format: "%.3f", seconds)) s)")
    }
  }
}
