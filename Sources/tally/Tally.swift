// The `tally` command line: parses arguments and composes the modules.
import ArgumentParser
import Foundation
import TallyEngine

@main
struct Tally: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "tally",
    abstract:
      "Tally: a deterministic post-trade engine (clearing, transfer, DVP settlement, corporate actions).",
    discussion: helpText(
      """
      Start with `tally demo`. `tally run` is the embedded engine over files; see README.md
      and docs/ for the cluster, durability and the formats (SPEC.md).
      """),
    version: TallyVersion.string,
    subcommands: [
      RunCommand.self, GenerateCommand.self, DemoCommand.self, BenchCommand.self, InspectCommand.self,
      ClusterCommand.self, SubmitCommand.self, ReportCommand.self, SequencerCommand.self, ReplicaCommand.self,
      VoterCommand.self, ChaosCommand.self, KeygenCommand.self, ReplayEffectsCommand.self, FollowCommand.self,
      DashboardCommand.self, DifferentialCommand.self,
    ])

  /// Huge pages first (HugePages.swift: this may execute the program again; cluster
  /// nodes run without), then the command.
  static func main() async {
    HugePages.configure(arguments: CommandLine.arguments)
    await main(nil)
  }
}

/// Prints to standard error (progress and diagnostics never mix with output data).
func note(_ text: String) {
  FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Ends the process with a clear message and a non-zero status.
func fail(_ text: String, code: Int32 = 1) -> Never {
  note("tally: error: " + text)
  exit(code)
}
