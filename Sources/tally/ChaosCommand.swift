import ArgumentParser

struct ChaosCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "chaos", abstract: "Fault-injection harness (under construction).")
}
