import ArgumentParser
import Foundation
import KernelAPI
import KernelV1
import MarketGenerator
import TallyEngine
import TallyFormat

struct DemoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "demo",
    abstract: "Generate a trading week, run it through the embedded engine, and summarise it.",
    discussion: helpText(
      """
      Writes the market to DIR/market and the SPEC §5 outputs to DIR/out (default
      ./demo-out), then prints what happened: trades cleared, rejections by reason, net
      cash per participant, settlement status, entitlements, tax and throughput.
      """))

  @Option(name: .long, help: "Working folder for the generated market and the outputs.")
  var dir = "demo-out"

  @Option(name: .long, help: "Seed for the generated market.")
  var seed: UInt64 = 20_260_105

  @Option(name: .long, help: "Trades per day.")
  var tradesPerDay = 200_000

  @Option(name: .long, help: "Investor accounts.")
  var accounts = 100_000

  func run() throws {
    let clock = ContinuousClock()
    let marketDir = dir + "/market"
    let outDir = dir + "/out"
    let options = MarketOptions(
      seed: seed, days: 5, tradesPerDay: tradesPerDay, accounts: accounts, securities: 200, participants: 8)
    note(
      "demo: generating a 5-day market (\(tradesPerDay) trades a day, \(accounts) accounts) into \(marketDir)"
    )
    let generated = clock.now
    do {
      _ = try MarketGenerator.generate(options, into: marketDir) { note("demo: " + $0) }
    } catch {
      fail("\(error)")
    }
    note(
      "demo: generated in \(String(format: "%.2f", (clock.now - generated).seconds)) s; running the engine")
    let reference: ReferenceData
    do { reference = try FileIO.loadReference(marketDir + "/reference") } catch { fail("\(error)", code: 2) }
    var engine = Engine<V1Kernel>(reference: reference)
    let bytes: [UInt8]
    do { bytes = try FileIO.read(marketDir + "/events.txt") } catch { fail("\(error)", code: 2) }
    let started = clock.now
    var seq: Int64 = 0
    for (_, line) in LineReader(bytes) where !EventParser.isSkipped(line) {
      seq += 1
      engine.apply(line: line, seq: seq)
    }
    let elapsed = clock.now - started
    do { try engine.writeOutputs(to: outDir) } catch { fail("\(error)", code: 3) }
    print(DemoSummary.render(engine: engine, seconds: elapsed.seconds, outDir: outDir))
  }
}

enum DemoSummary {
  static func render<K: BusinessKernel>(engine: Engine<K>, seconds: Double, outDir: String) -> String {
    let s = engine.statistics
    let report = engine.state.report(holdings: true)
    var lines: [String] = []
    lines.append("Tally demo: one trading week through the embedded engine")
    lines.append("")
    lines.append(
      "Events: \(s.events) (\(s.applied) applied, \(s.rejected) rejected); trades cleared: \(s.tradesApplied); "
        + "throughput \(Int(Double(s.events) / max(seconds, 1e-9))) events/s, "
        + "\(Int(Double(s.tradesApplied) / max(seconds, 1e-9))) trades/s (parse + apply, one core)")
    lines.append("")
    lines.append("Rejections by reason:")
    for reason in RejectReason.allCases where s.rejectedByReason[Int(reason.rawValue)] > 0 {
      lines.append("  " + pad(reason.code, 24) + String(s.rejectedByReason[Int(reason.rawValue)]))
    }
    lines.append("")
    lines.append("Net cash per participant and trade date (CNY; + receives), with settlement status:")
    for row in report.settlement {
      lines.append(
        "  \(dateText(row.tradeDate))  \(pad(row.participant, 8)) \(padLeft(ReportWriter.money(row.netFen), 18))  "
          + row.status.word + (row.settledOn != 0 ? " on \(dateText(row.settledOn))" : ""))
    }
    lines.append("")
    lines.append("Settlement reserve balances:")
    for b in report.balances {
      lines.append("  \(pad(b.participant, 8)) \(padLeft(ReportWriter.money(b.balanceFen), 18))")
    }
    let cash = report.entitlements.filter { $0.kind == .cash }
    let shares = report.entitlements.filter { $0.kind == .shares }
    lines.append("")
    lines.append(
      "Entitlements: \(cash.count) cash rows, \(ReportWriter.money(cash.reduce(0) { $0 + $1.value })) CNY; "
        + "\(shares.count) bonus rows, \(shares.reduce(0) { $0 + $1.value }) shares")
    lines.append(
      "Dividend tax withheld: \(report.tax.count) sales, \(ReportWriter.money(report.tax.reduce(0) { $0 + $1.taxFen })) CNY"
    )
    lines.append("Holdings rows: \(report.holdings.count); clearing rows: \(report.clearing.count)")
    lines.append("State digest: \(engine.stateDigest.hexString)")
    lines.append("Outputs (SPEC §5): \(outDir)/")
    return lines.joined(separator: "\n")
  }

  static func pad(_ s: String, _ n: Int) -> String {
    s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count)
  }
  static func padLeft(_ s: String, _ n: Int) -> String {
    s.count >= n ? s : String(repeating: " ", count: n - s.count) + s
  }
}
