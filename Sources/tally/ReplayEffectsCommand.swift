import ArgumentParser
import Foundation
import KernelAPI
import TallyEngine
import TallyFormat

struct ReplayEffectsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "replay-effects",
    abstract: "Rebuild the seven SPEC §5 files from a binary effects file alone (docs/EFFECTS.md).",
    discussion: helpText(
      """
      The file is what `tally run --effects FILE --effects-format binary` wrote. The
      outputs equal that run's byte for byte. Exit status 2: the file is not a valid
      effects file (the message says where); 3: the output folder cannot be written.
      """))

  @Option(name: .long, help: "The output folder (created if missing).")
  var out: String

  @Flag(name: .long, help: "Print the effects as text on standard output instead of writing files.")
  var text = false

  @Argument(help: "A binary effects file.")
  var file: String

  func run() throws {
    let events: [EffectEvent]
    do { events = try EffectDecoder.decodeFile(try FileIO.read(file)) } catch {
      fail("\(file): \(error)", code: 2)
    }
    if text {
      FileHandle.standardOutput.write(Data(EffectText.render(events)))
      return
    }
    var replay = EffectReplay()
    do { try replay.apply(events) } catch { fail("\(file): \(error)", code: 2) }
    do { try FileIO.writeFolder(out, files: ReportWriter.render(replay.report())) } catch {
      fail("\(error)", code: 3)
    }
    note(
      "tally replay-effects: \(events.count) event records, as of seq \(replay.seq ?? 0); outputs in \(out)")
  }
}
