import ArgumentParser
import Foundation
import MarketGenerator

struct MarketArguments: ParsableArguments {
  @Option(name: .long, help: "Seed: the same arguments give identical bytes.")
  var seed: UInt64 = 20_260_105

  @Option(name: .long, help: "Trading days with events.")
  var days = 5

  @Option(name: .long, help: "Trades per day.")
  var tradesPerDay = 10_000

  @Option(name: .long, help: "Investor accounts.")
  var accounts = 1_000

  @Option(name: .long, help: "Securities.")
  var securities = 50

  @Option(name: .long, help: "Clearing participants.")
  var participants = 6

  var options: MarketOptions {
    MarketOptions(
      seed: seed, days: days, tradesPerDay: tradesPerDay, accounts: accounts, securities: securities,
      participants: participants)
  }
}

struct GenerateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "generate",
    abstract: "Write a realistic synthetic market: DIR/reference/ and DIR/events.txt.",
    discussion: helpText(
      """
      SSE-style codes and ISINs, Chinese names, board lots, a random-walk price per
      security, participants with trading units, individual and institutional accounts
      with opening lots of several ages, deposits, cancels, dividends, bonus issues and a
      sprinkling of bad lines. Deterministic: the same arguments give identical bytes. Then:

        tally run --reference DIR/reference --out OUT DIR/events.txt
      """))

  @Option(name: .long, help: "The folder to write into (created if missing).")
  var out: String

  @OptionGroup var market: MarketArguments

  @Flag(name: .long, help: "No progress lines.")
  var quiet = false

  func run() throws {
    let quiet = self.quiet
    do {
      let summary = try MarketGenerator.generate(market.options, into: out) { line in
        if !quiet { note("generate: " + line) }
      }
      note(
        "generate: wrote \(out)/reference and \(out)/events.txt: \(summary.eventLines) event lines, "
          + "\(summary.trades) trades, \(summary.cancels) cancels, \(summary.badLines) deliberately bad lines"
      )
    } catch {
      fail("\(error)")
    }
  }
}
