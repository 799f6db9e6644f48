import ArgumentParser

struct GenerateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "generate", abstract: "Generate a market.")
}
struct DemoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "demo", abstract: "Demo.")
}
struct BenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "bench", abstract: "Benchmark.")
}
