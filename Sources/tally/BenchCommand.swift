import ArgumentParser
import ClearingKernelV2
import Foundation
import MarketGenerator
import RocksDBStore
import TallyCore
import TallyEngine
import TallyFormat

struct BenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench",
    abstract: "Benchmark the engine on a generated market and print trades/s, latency and memory.",
    discussion: """
      Phases: parse (event lines → events), engine-only (apply pre-parsed events), whole run
      (read, parse, apply, write the outputs: what `tally run` does), and with --state the
      durable run (RocksDB commits), commit latency, restart time and state size.
      Build with `swift build -c release` first; debug builds are 10-50x slower.
      """)

  @Option(name: .long, help: "Use (or create) the generated market in this folder.")
  var market = ".build/bench-market"

  @OptionGroup var marketArguments: MarketArguments

  @Flag(name: .long, help: "Also run with durable state (RocksDB) and measure commits and restart.")
  var state = false

  @Option(name: .long, help: "With --state: commit after this many events.")
  var commitEvents = 10_000

  func run() throws {
    let clock = ContinuousClock()
    var options = marketArguments.options
    if marketArguments.days == 5 && marketArguments.tradesPerDay == 10_000 {
      // The default benchmark: one day of one million trades, one million accounts.
      options.days = 1
      options.tradesPerDay = 1_000_000
      options.accounts = 1_000_000
      options.securities = 1_000
      options.participants = 20
    }
    let stamp =
      "\(options.seed)-\(options.days)x\(options.tradesPerDay)-\(options.accounts)-\(options.securities)"
    let dir = market + "/" + stamp
    if !FileManager.default.fileExists(atPath: dir + "/events.txt") {
      note(
        "bench: generating \(options.days) day(s) x \(options.tradesPerDay) trades, \(options.accounts) accounts"
      )
      do { _ = try MarketGenerator.generate(options, into: dir) { note("bench: " + $0) } } catch {
        fail("\(error)")
      }
    }
    let reference: ReferenceData
    do { reference = try FileIO.loadReference(dir + "/reference") } catch { fail("\(error)", code: 2) }
    let bytes: [UInt8]
    do { bytes = try FileIO.read(dir + "/events.txt") } catch { fail("\(error)", code: 2) }
    print("tally bench: \(dir) (\(bytes.count / 1_048_576) MiB of events)")

    // Parse.
    var t = clock.now
    var events: [Event] = []
    for (_, line) in LineReader(bytes) where !EventParser.isSkipped(line) {
      events.append(EventParser.parse(line))
    }
    let parseSeconds = (clock.now - t).seconds
    let tradeCount = events.reduce(0) { if case .trade = $1 { return $0 + 1 } else { return $0 } }
    print(row("parse", events.count, tradeCount, parseSeconds))

    // Engine only.
    var engine = Engine(reference: reference, kernel: ClearingKernelV1(feeRows: reference.feeRows))
    t = clock.now
    for (i, e) in events.enumerated() { engine.apply(e, seq: Int64(i + 1)) }
    let engineSeconds = (clock.now - t).seconds
    print(row("engine only (v1)", events.count, tradeCount, engineSeconds))
    let digest = engine.stateDigest.hexString
    engine = Engine(reference: reference, kernel: ClearingKernelV1(feeRows: reference.feeRows))
    var engine2 = Engine(reference: reference, kernel: ClearingKernelV2(feeRows: reference.feeRows))
    t = clock.now
    for (i, e) in events.enumerated() { engine2.apply(e, seq: Int64(i + 1)) }
    print(row("engine only (v2)", events.count, tradeCount, (clock.now - t).seconds))
    precondition(engine2.stateDigest.hexString == digest, "kernel v1 and v2 disagree on this market")
    engine2 = Engine(reference: reference, kernel: ClearingKernelV1(feeRows: reference.feeRows))
    events = []

    // Whole run: read, parse, apply, write.
    let outDir = dir + "/out"
    t = clock.now
    do {
      let fileBytes = try FileIO.read(dir + "/events.txt")
      var seq: Int64 = 0
      for (_, line) in LineReader(fileBytes) where !EventParser.isSkipped(line) {
        seq += 1
        engine.apply(line: line, seq: seq)
      }
      try FileIO.writeFolder(outDir, files: engine.outputFiles())
    } catch { fail("\(error)") }
    let wholeSeconds = (clock.now - t).seconds
    print(row("whole run (read+parse+apply+write)", engine.statistics.events, tradeCount, wholeSeconds))
    print("  state digest \(engine.stateDigest.hexString)")

    if state {
      let stateDir = dir + "/state"
      try? FileManager.default.removeItem(atPath: stateDir)
      t = clock.now
      var commits: [Int64] = []
      do {
        var storeOptions = RocksDBOptions()
        storeOptions.vectorMemtable = true
        let store = try RocksDBStateStore(path: stateDir, options: storeOptions)
        let durable = try DurableEngine(
          store: store, reference: reference, kernel: ClearingKernelV1(feeRows: reference.feeRows))
        let fileBytes = try FileIO.read(dir + "/events.txt")
        var seq: Int64 = 0
        var since = 0
        for (_, line) in LineReader(fileBytes) where !EventParser.isSkipped(line) {
          seq += 1
          try durable.offer(line: line, seq: seq)
          since += 1
          if since == commitEvents {
            try durable.commitInBackground()  // as tally run --state: written while events apply
            since = 0
          }
        }
        try durable.commit()
        try FileIO.writeFolder(outDir + "-durable", files: durable.engine.outputFiles())
        commits = durable.commitNanos
        store.close()
      } catch { fail("\(error)") }
      let durableSeconds = (clock.now - t).seconds
      print(
        row("durable run (RocksDB, fsync per commit)", engine.statistics.events, tradeCount, durableSeconds))
      print(
        "  ratio to whole run in memory: \(String(format: "%.2f", wholeSeconds / durableSeconds)); "
          + "\(commits.count) commits of \(commitEvents) events: p50 \(ms(percentile(commits, 50))) ms, "
          + "p99 \(ms(percentile(commits, 99))) ms, max \(ms(commits.max() ?? 0)) ms")
      t = clock.now
      do {
        let store = try RocksDBStateStore(path: stateDir)
        let durable = try DurableEngine(
          store: store, reference: reference, kernel: ClearingKernelV1(feeRows: reference.feeRows))
        print(
          "  restart (open, rebuild the opening state, lay the stored rows over it, verify checksum): \(String(format: "%.2f", (clock.now - t).seconds)) s, "
            + "seq \(durable.committedSeq), digest \(durable.stateDigest.hexString)")
      } catch { fail("\(error)") }
      print("  state size on disk: \(directorySize(stateDir) / 1_048_576) MiB")
    }
    print("memory: peak RSS \(peakRSSMiB()) MiB (whole process, all phases)")
  }

  func row(_ name: String, _ events: Int, _ trades: Int, _ seconds: Double) -> String {
    "\(DemoSummary.pad(name, 42)) \(String(format: "%8.3f", seconds)) s  "
      + "\(DemoSummary.padLeft(String(Int(Double(events) / seconds)), 10)) events/s  "
      + "\(DemoSummary.padLeft(String(Int(Double(trades) / seconds)), 10)) trades/s"
  }

  func percentile(_ values: [Int64], _ p: Int) -> Int64 {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, (sorted.count * p) / 100)]
  }

  func ms(_ nanos: Int64) -> String { String(format: "%.2f", Double(nanos) / 1e6) }
}

/// Peak resident set size of this process (VmHWM), in MiB.
func peakRSSMiB() -> Int {
  guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return -1 }
  for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
    let digits = line.filter(\.isNumber)
    return (Int(digits) ?? 0) / 1024
  }
  return -1
}

func directorySize(_ path: String) -> Int {
  guard let names = try? FileManager.default.subpathsOfDirectory(atPath: path) else { return 0 }
  return names.reduce(0) { total, name in
    let attributes = try? FileManager.default.attributesOfItem(atPath: path + "/" + name)
    return total + ((attributes?[.size] as? Int) ?? 0)
  }
}
