import ArgumentParser
import Foundation
import KernelAPI
import KernelV1
import KernelV2
import MarketGenerator
import TallyEngine
import TallyFormat

#if canImport(Glibc)
  import Glibc
#endif

/// `tally bench`: every figure of issue 8's table on one generated day, for each kernel.
/// Whole-process figures come from `tally run` started as a child process (this very
/// binary), timed from spawn to exit, its peak RSS from `wait4`'s rusage; only the
/// "engine only" figure is measured in this process (events already parsed).
struct BenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench",
    abstract:
      "Measure issue 8's figures on a generated day: whole-process `tally run`, engine only, durable.",
    discussion: helpText(
      """
      The day (defaults: seed 20260105, 1 day, 1,000,000 trades, 1,000,000 accounts,
      1,000 securities, 20 participants) is generated once into --market/<stamp>/; a
      --market folder that holds a market (reference/ and events.txt) is measured as it is.
      For each kernel, each phase is run --runs times and the median printed beside
      the issue's goal (must / aim); a missed "must" is marked MISS.

      Whole process: `tally run` as a child process; wall clock from spawn to exit, peak
      RSS (ru_maxrss from wait4), user and system CPU. Every child runs before this
      process reads the day or probes the host: a child is charged its parent's peak
      memory up to its exec.

      Engine only: in this process; events parsed once, then the room for the day (`reserveCapacity`) and the apply loop alone, timed (one untimed warm-up pair; then per run an engine without effects and one with, advanced side by side 250,000 events at a time, so that both see the same minutes of the machine).

      Durable: `tally run --state` as a child (fresh state folder, fsync per commit, a
      commit every --commit-events events), its ratio to the in-memory child run, and
      the commit latency p50/p99 it reports (--commit-stats).

      Resume: the same `tally run --state` command again on the completed state folder
      (open, verify, ready, rewrite the outputs).

      --vs-postgres: also runs scripts/bench-vs-postgres.sh on the same day (installs and
      starts a throwaway PostgreSQL) and prints the ratio.

      Build with `swift build -c release` first; debug builds are 10-50x slower.
      Progress goes to standard error, the table (or --json) to standard output.
      """))

  @Option(
    name: .long,
    help: """
      A market folder (reference/ and events.txt, e.g. from tally generate), used as it is; \
      or a cache folder: the generated day goes to <market>/<stamp>/ and is reused.
      """)
  var market = ".build/bench-market"

  @Option(name: .long, help: "Generator seed.")
  var seed: UInt64 = 20_260_105

  @Option(name: .long, help: "Trading days with events.")
  var days = 1

  @Option(name: .long, help: "Trades per day.")
  var tradesPerDay = 1_000_000

  @Option(name: .long, help: "Investor accounts.")
  var accounts = 1_000_000

  @Option(name: .long, help: "Securities.")
  var securities = 1_000

  @Option(name: .long, help: "Clearing participants.")
  var participants = 20

  @Option(name: .long, help: "Runs of each phase; medians are printed.")
  var runs = 3

  @Option(
    name: .customLong("kernel"), parsing: .singleValue,
    help: "Kernel to measure (repeat for several; default: v1 and v2).")
  var kernels: [String] = []

  @Option(name: .long, help: "Durable runs: commit after this many events.")
  var commitEvents = 10_000

  @Option(
    name: .long,
    help:
      "Engine only: events each engine of a pair (without and with effects) applies before the other's turn.")
  var sliceEvents = 250_000

  @Flag(name: .long, help: "Skip the durable phases (`--state`, resume, commit latency).")
  var noState = false

  @Flag(name: .long, help: "Skip the in-process engine-only phase.")
  var noEngineOnly = false

  @Flag(
    name: .long,
    help:
      "Engine only: leave the TRADEs' identifiers unresolved (by default the kernel's resolver interns them when the day is parsed, as `tally run`'s reader thread does)."
  )
  var noResolver = false

  @Flag(
    name: .long,
    help:
      "Skip the whole-process `tally run` children (with --no-state: the engine-only phase alone, e.g. for the effects cost)."
  )
  var noWholeProcess = false

  @Flag(name: .long, help: "Also run scripts/bench-vs-postgres.sh on the same day and print the ratio.")
  var vsPostgres = false

  @Option(name: .long, help: "The PostgreSQL comparison script (default: scripts/ beside the package).")
  var postgresScript: String?

  @Flag(name: .long, help: "Print one JSON object instead of the table.")
  var json = false

  var kernelNames: [String] { kernels.isEmpty ? ["v1", "v2"] : kernels }

  func validate() throws {
    guard runs >= 1 else { throw ValidationError("--runs must be >= 1") }
    guard days >= 1, tradesPerDay >= 1, accounts >= 1, securities >= 1, participants >= 1 else {
      throw ValidationError("--days, --trades-per-day, --accounts, --securities, --participants must be >= 1")
    }
    guard commitEvents > 0 else { throw ValidationError("--commit-events must be > 0") }
    guard sliceEvents > 0 else { throw ValidationError("--slice-events must be > 0") }
    for k in kernelNames where !KernelCatalog.names.contains(k) {
      throw ValidationError("unknown kernel '\(k)'; known: \(KernelCatalog.names.joined(separator: ", "))")
    }
  }

  var marketOptions: MarketOptions {
    MarketOptions(
      seed: seed, days: days, tradesPerDay: tradesPerDay, accounts: accounts, securities: securities,
      participants: participants)
  }

  /// The generated day's folder name: every generator argument is in it.
  var marketStamp: String { "\(seed)-\(days)x\(tradesPerDay)-a\(accounts)-s\(securities)-p\(participants)" }

  /// The issue's day as the generator's stamp (the goals are for that day).
  static let issueDayStamp = "20260105-1x1000000-a1000000-s1000-p20"

  /// True when `--market` is itself a market folder (its reference folder and events
  /// file), not a cache of generated days: pointing the bench at a market made by
  /// `tally generate` (or at a generated day's own folder) measures that market,
  /// instead of generating another one inside it.
  var marketIsGiven: Bool {
    var isFolder: ObjCBool = false
    return FileManager.default.fileExists(atPath: market + "/reference", isDirectory: &isFolder)
      && isFolder.boolValue && FileManager.default.fileExists(atPath: market + "/events.txt")
  }

  func run() throws {
    // The folder of the market measured: `--market` when it is a market folder, else
    // the generated day's folder in it (checked once: the folder is then written to).
    let given = marketIsGiven
    let dir = given ? market : market + "/" + marketStamp
    let binary = BenchChild.ownExecutable()
    let loadAtStart = BenchReport.Machine.loadAverage()
    let options = marketOptions
    if given {
      note("bench: the market in \(dir) as it is (the generator's options --seed, --days, ... do not apply)")
    } else if !FileManager.default.fileExists(atPath: dir + "/events.txt") {
      note(
        "bench: generating \(days) day(s) x \(tradesPerDay) trades, \(accounts) accounts, "
          + "\(securities) securities, \(participants) participants into \(dir)")
      let partial = dir + ".partial"
      try? FileManager.default.removeItem(atPath: partial)
      try? FileManager.default.createDirectory(atPath: market, withIntermediateDirectories: true)
      // A child process (`tally generate`), as every large piece of work before the
      // children are measured (`measureChildren`).
      let generated = BenchChild.run(
        binary,
        [
          "generate", "--out", partial, "--seed", String(options.seed), "--days", String(options.days),
          "--trades-per-day", String(options.tradesPerDay), "--accounts", String(options.accounts),
          "--securities", String(options.securities), "--participants", String(options.participants),
        ], log: partial + "-generate", passStderr: true)
      try? FileManager.default.removeItem(atPath: partial + "-generate.out")
      guard generated.exitStatus == 0 else { fail("bench: tally generate exited \(generated.exitStatus)") }
      do {
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.moveItem(atPath: partial, toPath: dir)
      } catch { fail("\(error)") }
    }
    let work = dir + "/bench"
    try? FileManager.default.removeItem(atPath: work)
    do { try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true) } catch {
      fail("cannot create \(work): \(error)", code: 3)
    }
    let reference = dir + "/reference"
    let events = dir + "/events.txt"

    let measured = measureChildren(binary: binary, work: work, reference: reference, events: events)

    // Then the day, parsed in this process: the trades counted once (the rates'
    // denominator) and the parsed events kept for the engine-only phase.
    note("bench: reading and parsing \(events)")
    let loaded: ReferenceData
    do { loaded = try FileIO.loadReference(reference) } catch { fail("\(error)", code: 2) }
    var parsed = ParsedDay()
    let clock = ContinuousClock()
    var t = clock.now
    do {
      // Parsed as the engine parses: a TRADE line to its fields (identifiers stay bytes
      // of the line), any other line to an Event.
      parsed.bytes = try FileIO.read(events)
      for (_, line) in LineReader(parsed.bytes) where !EventParser.isSkipped(line) {
        let seq = Int64(parsed.lines.count + 1)
        if let trade = EventParser.tradeLine(line) {
          parsed.lines.append(
            .trade(TradeInput(trade: trade, line: line.startIndex..<line.endIndex, seq: seq)))
        } else {
          parsed.lines.append(.other(EventParser.parse(line)))
        }
      }
    } catch { fail("\(error)", code: 2) }
    let parseSeconds = (clock.now - t).seconds
    let tradeLines = parsed.lines.reduce(0) {
      switch $1 {
      case .trade: return $0 + 1
      case .other(let e): if case .trade = e { return $0 + 1 } else { return $0 }
      }
    }
    var report = BenchReport(
      market: dir, binary: binary, runs: runs, events: parsed.count, trades: tradeLines,
      parseEventsPerSecond: Double(parsed.count) / parseSeconds, commitEvents: commitEvents,
      machine: BenchReport.Machine.current(syncDirectory: dir))
    // A market folder given as it is counts as the issue's day when it is a generated
    // day's own folder of that stamp.
    report.isIssueDay =
      (given ? URL(fileURLWithPath: dir).lastPathComponent : marketStamp) == Self.issueDayStamp
    report.machine.loadAverage = loadAtStart  // the probe runs after the children
    report.kernels = measured.map { measuredKernel in
      var k = measuredKernel
      if let wall = k.runWallSeconds { k.runTradesPerSecond = Double(tradeLines) / wall }
      return k
    }

    for (i, kernel) in kernelNames.enumerated() {
      var k = report.kernels[i]
      // Engine only, in this process. After every child: a child started while this
      // process holds a parsed day and an engine would report this process's memory as
      // its own peak (posix_spawn shares the address space until exec, and ru_maxrss
      // keeps that high-water mark).
      if !noEngineOnly {
        var rates: [Double] = []
        var cpuRates: [Double] = []
        var effectCPURates: [Double] = []
        // Per pair: CPU with effects / CPU without - 1. The median of the pairs' costs
        // moves less with the machine's drift than a ratio of two medians.
        var pairCosts: [Double] = []
        // One untimed pair first: the first engines of the process pay the kernel's
        // first touch of every page, later ones reuse freed memory. Then each run is a
        // pair of engines, one without effects and one with, advanced side by side a
        // slice of events at a time: both see the same minutes of this noisy machine
        // (back to back, the same binary's pairs measured from -4% to +55%).
        note("bench: [\(kernel)] engine only (in process): warm-up pair")
        _ = Self.engineOnlyPair(
          parsed, reference: loaded, kernel: kernel, withEffectsFirst: false, sliceEvents: sliceEvents,
          resolve: !noResolver)
        for r in 1...runs {
          note(
            "bench: [\(kernel)] engine only, without and with effects side by side (in process) \(r)/\(runs)")
          let pair = Self.engineOnlyPair(
            parsed, reference: loaded, kernel: kernel, withEffectsFirst: r % 2 == 0, sliceEvents: sliceEvents,
            resolve: !noResolver)
          for (effects, timing) in [(false, pair.without), (true, pair.with)] {
            let (seconds, cpuSeconds) = (timing.wall, timing.cpu)
            note(
              "bench:   \(effects ? "with effects:   " : "without effects:") \(fmt(seconds, 3)) s wall, "
                + "\(fmt(cpuSeconds, 3)) s CPU: \(Int(Double(tradeLines) / seconds)) trades/s"
                + " (events other than TRADE \(fmt(timing.otherEvents, 3)) s: \(timing.costliest)"
                + (effects
                  ? "; digest \(fmt(timing.digest, 3)) s; \(timing.effectBytes) effect bytes, "
                    + "\(fmt(Double(timing.effectBytes) / Double(parsed.count), 1)) an event)" : ")"))
            if effects {
              effectCPURates.append(Double(tradeLines) / cpuSeconds)
            } else {
              rates.append(Double(tradeLines) / seconds)
              cpuRates.append(Double(tradeLines) / cpuSeconds)
            }
          }
          pairCosts.append(pair.with.cpu / pair.without.cpu - 1)
          note("bench:   effects cost of this pair: \(fmt(pairCosts.last! * 100, 1))%")
        }
        k.effectsCostFraction = median(pairCosts)
        k.engineOnlyTradesPerSecond = median(rates)
        k.engineOnlyCPUTradesPerSecond = median(cpuRates)
        k.engineWithEffectsCPUTradesPerSecond = median(effectCPURates)
      }

      report.kernels[i] = k
    }
    parsed = ParsedDay()

    if vsPostgres {
      t = clock.now
      note("bench: PostgreSQL comparison (scripts/bench-vs-postgres.sh)")
      report.postgres = runPostgresComparison(dir: dir, binary: binary)
      note("bench:   done in \(String(format: "%.0f", (clock.now - t).seconds)) s")
    }
    try? FileManager.default.removeItem(atPath: work)
    if json {
      print(report.json())
    } else {
      print(report.table())
    }
  }

  /// The children of every kernel (whole process, durable, resume), measured first,
  /// while this process holds nothing large. posix_spawn starts a child in this
  /// process's address space until its exec, and Linux then counts this process's peak
  /// resident set as the child's (ru_maxrss): after the day was parsed here and the host
  /// probed (256 MiB), every child "peaked" at this process's ~823 MiB, whatever its own
  /// peak (V2's is ~620 MiB; thirty-sixth session, docs/PERFORMANCE.md). The outputs
  /// are compared by their SHA-256, read in pieces, for the same reason. The rates
  /// (`runTradesPerSecond`) are left to the caller, which counts the trades afterwards.
  func measureChildren(
    binary: String, work: String, reference: String, events: String
  ) -> [BenchReport.Kernel] {
    var firstOutputs: [String: [UInt8]]? = nil
    var measured: [BenchReport.Kernel] = []
    for kernel in kernelNames {
      var k = BenchReport.Kernel(name: kernel)

      // Whole process, in memory.
      var walls: [Double] = []
      var rss: [Double] = []
      var cpu: [Double] = []
      for r in 1...runs where !noWholeProcess {
        let out = work + "/out-\(kernel)"
        try? FileManager.default.removeItem(atPath: out)
        note("bench: [\(kernel)] tally run (child) \(r)/\(runs)")
        let m = BenchChild.run(
          binary, ["run", "--quiet", "--kernel", kernel, "--reference", reference, "--out", out, events],
          log: work + "/run-\(kernel)")
        walls.append(m.wallSeconds)
        rss.append(m.peakRSSMiB)
        cpu.append(m.userSeconds + m.systemSeconds)
        note("bench:   \(m.summary)")
        if r == 1 { checkOutputs(out, against: &firstOutputs, what: "tally run --kernel \(kernel)") }
      }
      if !walls.isEmpty {
        k.runWallSeconds = median(walls)
        k.runPeakRSSMiB = median(rss)
        k.runCPUSeconds = median(cpu)
      }

      // Durable run and resume, both children.
      if !noState {
        var stateWalls: [Double] = []
        var resumeWalls: [Double] = []
        var p50s: [Double] = []
        var p99s: [Double] = []
        var maxes: [Double] = []
        var stateRSS: [Double] = []
        var stateCPU: [Double] = []
        var resumeCPU: [Double] = []
        for r in 1...runs {
          let state = work + "/state-\(kernel)"
          let out = work + "/out-state-\(kernel)"
          try? FileManager.default.removeItem(atPath: state)
          try? FileManager.default.removeItem(atPath: out)
          let arguments = [
            "run", "--kernel", kernel, "--reference", reference, "--out", out, "--state", state,
            "--commit-events", String(commitEvents), "--commit-ms", "86400000", "--commit-stats", events,
          ]
          note("bench: [\(kernel)] tally run --state (child) \(r)/\(runs)")
          let m = BenchChild.run(binary, arguments, log: work + "/state-\(kernel)")
          note("bench:   \(m.summary)")
          stateWalls.append(m.wallSeconds)
          stateRSS.append(m.peakRSSMiB)
          stateCPU.append(m.userSeconds + m.systemSeconds)
          if let stats = CommitStats(stderr: m.stderr) {
            p50s.append(stats.p50Milliseconds)
            p99s.append(stats.p99Milliseconds)
            maxes.append(stats.maxMilliseconds)
            note(
              "bench:   \(stats.commits) commits: p50 \(fmt(stats.p50Milliseconds)) ms, p99 \(fmt(stats.p99Milliseconds)) ms"
            )
          } else {
            note("bench:   (no commit statistics in the child's standard error)")
          }
          if r == 1 {
            checkOutputs(out, against: &firstOutputs, what: "tally run --state --kernel \(kernel)")
          }
          try? FileManager.default.removeItem(atPath: out)
          note("bench: [\(kernel)] resume of the completed state (child) \(r)/\(runs)")
          let resumed = BenchChild.run(binary, arguments, log: work + "/resume-\(kernel)")
          note("bench:   \(resumed.summary)")
          resumeWalls.append(resumed.wallSeconds)
          resumeCPU.append(resumed.userSeconds + resumed.systemSeconds)
          if r == 1 {
            checkOutputs(out, against: &firstOutputs, what: "resumed tally run --state --kernel \(kernel)")
          }
        }
        k.stateWallSeconds = median(stateWalls)
        k.statePeakRSSMiB = median(stateRSS)
        k.stateRatio = median(walls) / median(stateWalls)
        k.resumeWallSeconds = median(resumeWalls)
        k.stateCPUSeconds = median(stateCPU)
        k.resumeCPUSeconds = median(resumeCPU)
        if !p50s.isEmpty {
          k.commitP50Milliseconds = median(p50s)
          k.commitP99Milliseconds = median(p99s)
          k.commitMaxMilliseconds = median(maxes)
        }
      }
      measured.append(k)
    }
    return measured
  }

  /// The apply loop alone over already-parsed events; the engine is built outside the timer.
  /// (The only in-process engine use in the benchmark: keep it small for merges.)
  /// Returns the wall clock and this thread's CPU time of the loop.
  /// An event line as the engine parses it.
  enum ParsedLine {
    /// A TRADE line split by the parser (its seq is its place in the day, from 1).
    case trade(TradeInput)
    case other(Event)
  }

  /// A day's event lines, parsed, and the file bytes the TRADE lines point into.
  struct ParsedDay {
    var bytes: [UInt8] = []
    var lines: [ParsedLine] = []
    var count: Int { lines.count }
  }

  /// With `effects`, every event's effect records are produced, taken every
  /// `effectsBatch` events and digested: what a replica does for its vote (issue 9).
  /// One engine-only run. `digest` and `otherEvents` are parts of `wall`: the
  /// digesting of the batches, and the events other than TRADE lines (OPEN, CLOSE,
  /// corporate actions: few, but an OPEN touches ~1M holdings). Timed per call, which
  /// costs far less than the calls themselves (~2,000 of them, and one per batch).
  struct EngineOnlyTiming {
    var wall = 0.0
    var cpu = 0.0
    var digest = 0.0
    /// Effect bytes produced (the records a replica digests and keeps for the stream).
    var effectBytes = 0
    var otherEvents = 0.0
    /// `otherEvents` by record word (OPEN, CLOSE, CANCEL, ...), for the progress line.
    var byRecord: [String: Double] = [:]

    /// The three costliest record words, e.g. "OPEN 0.210 s, CANCEL 0.020 s, ...".
    var costliest: String {
      byRecord.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(3)
        .map { "\($0.key) \(fmt($0.value, 3)) s" }.joined(separator: ", ")
    }
  }

  /// One engine-only pair: an engine without effects and one with, each slice of
  /// `sliceEvents` events applied by one and then the other (the order swapped every
  /// slice, and the engines built in the order `withEffectsFirst` says). The default
  /// slice (`--slice-events`, 250,000) is about 1 s an engine: the machine's drift over a
  /// few seconds is shared, and the two engines, which evict each other's data from the
  /// shared cache at every turn, pay for it 4 times a run (at 50,000 the pairs agreed
  /// more closely, but both engines ran up to 1.4x slower: a base inflated that way
  /// makes the effects' share look smaller).
  static func engineOnlyPair(
    _ events: ParsedDay, reference: ReferenceData, kernel: String, withEffectsFirst: Bool, sliceEvents: Int,
    resolve: Bool
  ) -> (without: EngineOnlyTiming, with: EngineOnlyTiming) {
    // The kernel type opened once, outside the loop: the loop is specialised for it.
    guard let (version, fault) = try? KernelDispatch.resolve(kernel) else {
      fail("unknown kernel '\(kernel)'", code: 64)
    }
    switch version {
    case .v1:
      return engineOnlyPair(
        events, reference, V1Kernel.self, fault: fault, withEffectsFirst: withEffectsFirst,
        sliceEvents: sliceEvents, resolve: resolve)
    case .v2:
      return engineOnlyPair(
        events, reference, V2Kernel.self, fault: fault, withEffectsFirst: withEffectsFirst,
        sliceEvents: sliceEvents, resolve: resolve)
    }
  }

  /// Fills the hints of every TRADE of `day` with `resolver`, runs of consecutive TRADEs
  /// at a time (as a reader thread resolves a block's); the number of TRADEs.
  static func resolveTrades(_ day: inout ParsedDay, with resolver: any TradeResolver) -> Int {
    var run: [TradeInput] = []
    var places: [Int] = []
    var resolved = 0
    func flush(_ raw: UnsafeRawBufferPointer) {
      guard !run.isEmpty else { return }
      run.withUnsafeMutableBufferPointer { resolver.resolve($0, bytes: raw) }
      for (place, trade) in zip(places, run) { day.lines[place] = .trade(trade) }
      resolved += run.count
      run.removeAll(keepingCapacity: true)
      places.removeAll(keepingCapacity: true)
    }
    let bytes = day.bytes
    bytes.withUnsafeBytes { raw in
      for i in day.lines.indices {
        if case .trade(let trade) = day.lines[i] {
          run.append(trade)
          places.append(i)
          if run.count == effectsBatch { flush(raw) }
        } else {
          flush(raw)
        }
      }
      flush(raw)
    }
    return resolved
  }

  /// Events per batch in the effects phase (a replica votes per journal batch).
  static let effectsBatch = 1_000
  static func engineOnlyPair<K: BusinessKernel>(
    _ events: ParsedDay, _ reference: ReferenceData, _: K.Type, fault: PlantedFault?,
    withEffectsFirst: Bool,
    sliceEvents: Int, resolve: Bool
  ) -> (without: EngineOnlyTiming, with: EngineOnlyTiming) {
    var runs: [EngineOnlyRun<K>] = []
    for effects in withEffectsFirst ? [true, false] : [false, true] {
      runs.append(EngineOnlyRun(reference: reference, fault: fault, effects: effects, events: events.count))
    }
    // Parsed as `tally run`'s reader thread parses: the TRADEs' identifiers resolved by
    // the kernel's resolver (the two engines are built alike: one's resolver is the
    // other's), outside the timed loop as the parsing is.
    var events = events
    if resolve, let resolver = runs[0].engine.state.tradeResolver() {
      let clock = ContinuousClock()
      let started = clock.now
      let trades = resolveTrades(&events, with: resolver)
      note(
        "bench:   trades resolved at the parser's edge (off the timed loop; the reader thread's work in `tally run`): "
          + "\(Int(Double(trades) / (clock.now - started).seconds)) trades/s")
    }
    var start = 0
    var slice = 0
    while start < events.count {
      let end = min(start + sliceEvents, events.count)
      for j in slice % 2 == 0 ? [0, 1] : [1, 0] { runs[j].advance(events, start..<end) }
      start = end
      slice += 1
    }
    for j in runs.indices { runs[j].finish(events.count) }
    let (a, b) = (runs[0].timing, runs[1].timing)
    return withEffectsFirst ? (b, a) : (a, b)
  }

  /// One engine of an engine-only pair: the apply loop over parsed events, timed per
  /// slice (wall clock and this thread's CPU time), the engine built outside the timer
  /// but its room for the day's events (`reserveCapacity`) inside it: a kernel that
  /// touches the pages it reserves (V2 does, so that its loop meets no page zeroing)
  /// would otherwise have that work left out of the figure.
  /// With `effects`, every event's effect records are produced, taken every
  /// `effectsBatch` events and digested: what a replica does for its vote (issue 9).
  struct EngineOnlyRun<K: BusinessKernel> {
    var engine: Engine<K>
    let effects: Bool
    var digested = 0
    var timing = EngineOnlyTiming()

    init(reference: ReferenceData, fault: PlantedFault?, effects: Bool, events: Int) {
      engine = Engine<K>(reference: reference, plantedFault: fault)
      engine.setChangeTracking(false)  // as `tally run` without --state
      let clock = ContinuousClock()
      let cpu = BenchCommand.threadCPUSeconds()
      let t = clock.now
      engine.reserveCapacity(events: events)
      timing.wall += (clock.now - t).seconds
      timing.cpu += BenchCommand.threadCPUSeconds() - cpu
      if effects { engine.enableEffects() }
      self.effects = effects
    }

    mutating func advance(_ events: ParsedDay, _ range: Range<Int>) {
      let clock = ContinuousClock()
      let cpu = BenchCommand.threadCPUSeconds()
      let t = clock.now
      var trades: [TradeInput] = []
      var outcomes: [Outcome] = []
      trades.reserveCapacity(BenchCommand.effectsBatch)
      outcomes.reserveCapacity(BenchCommand.effectsBatch)
      // TRADEs in a row go to the kernel together (as `tally run` gives them: its blocks
      // of event lines), at most up to the next effects batch.
      func flush(_ raw: UnsafeRawBufferPointer) {
        guard !trades.isEmpty else { return }
        outcomes.removeAll(keepingCapacity: true)
        outcomes.append(contentsOf: repeatElement(.applied, count: trades.count))
        trades.withUnsafeBufferPointer { t in
          outcomes.withUnsafeMutableBufferPointer { o in engine.apply(trades: t, bytes: raw, outcomes: o) }
        }
        trades.removeAll(keepingCapacity: true)
      }
      events.bytes.withUnsafeBytes { raw in
        for i in range {
          switch events.lines[i] {
          case .trade(let trade): trades.append(trade)
          case .other(let event):
            flush(raw)
            let started = clock.now
            engine.apply(event, seq: Int64(i + 1))
            let spent = (clock.now - started).seconds
            timing.otherEvents += spent
            timing.byRecord[event.recordWord, default: 0] += spent
          }
          let batchEnds = (i + 1) % BenchCommand.effectsBatch == 0 || i + 1 == events.count
          if batchEnds || i + 1 == range.upperBound { flush(raw) }
          if effects && batchEnds {
            // As a replica does per journal batch: the records copied out (it keeps them
            // for the voted stream), then digested.
            let batch = engine.takeEffects()
            timing.effectBytes += batch.count
            let started = clock.now
            digested += EffectDigest.of(batch).count
            timing.digest += (clock.now - started).seconds
          }
        }
      }
      timing.wall += (clock.now - t).seconds
      timing.cpu += BenchCommand.threadCPUSeconds() - cpu
    }

    func finish(_ events: Int) {
      precondition(!effects || digested > 0, "effects phase digested nothing")
      precondition(engine.statistics.events == events, "engine-only run applied a different count")
    }
  }

  static func threadCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
  }

  /// The first output folder's digests are kept; every other checked folder must be
  /// identical.
  func checkOutputs(_ folder: String, against first: inout [String: [UInt8]]?, what: String) {
    var files: [String: [UInt8]] = [:]
    let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
    for name in names where name.hasSuffix(".csv") {
      guard let digest = Self.fileDigest(folder + "/" + name) else {
        fail("bench: \(what) wrote \(folder)/\(name), which cannot be read")
      }
      files[name] = digest
    }
    guard files.count == 7 else {
      fail("bench: \(what) wrote \(files.count) output files in \(folder), not 7")
    }
    guard let reference = first else {
      first = files
      return
    }
    let differing = reference.keys.sorted().filter { reference[$0] != files[$0] }
    if !differing.isEmpty {
      fail(
        "bench: \(what) wrote outputs that differ from the first run: \(differing.joined(separator: ", "))")
    }
  }

  /// The SHA-256 of a file read a MiB at a time (never mapped, never held whole: this
  /// process's peak resident set is its children's too, see `run`), or nil when it
  /// cannot be read.
  static func fileDigest(_ path: String) -> [UInt8]? {
    guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
    defer { try? handle.close() }
    var sha = SHA256Stream()
    do {
      // nil or empty: the end of the file.
      while let piece = try handle.read(upToCount: 1 << 20), !piece.isEmpty {
        piece.withUnsafeBytes { sha.update($0) }
      }
    } catch { return nil }
    return sha.finalize()
  }

  func runPostgresComparison(dir: String, binary: String) -> BenchReport.Postgres? {
    let script = postgresScript ?? BenchChild.packageFile("scripts/bench-vs-postgres.sh", binary: binary)
    guard FileManager.default.fileExists(atPath: script) else {
      note("bench: \(script) not found; give --postgres-script")
      return nil
    }
    let m = BenchChild.run(
      "/bin/bash", [script, "--market", dir, "--tally", binary, "--runs", String(runs)],
      log: dir + "/bench-postgres", passStderr: true)
    guard m.exitStatus == 0 else {
      note("bench: the PostgreSQL comparison failed (exit \(m.exitStatus)); its output:\n\(m.stdout)")
      return nil
    }
    // The script's last line: RESULT pg_trades_per_s=... tally_trades_per_s=... ratio=...
    guard let line = m.stdout.split(separator: "\n").last(where: { $0.hasPrefix("RESULT ") }) else {
      note("bench: no RESULT line from \(script)")
      return nil
    }
    var values: [String: Double] = [:]
    for field in line.split(separator: " ").dropFirst() {
      let kv = field.split(separator: "=", maxSplits: 1)
      if kv.count == 2, let v = Double(kv[1]) { values[String(kv[0])] = v }
    }
    guard let pg = values["pg_trades_per_s"], let tally = values["tally_trades_per_s"] else { return nil }
    return BenchReport.Postgres(
      postgresTradesPerSecond: pg, scriptTallyTradesPerSecond: tally,
      postgresTrades: Int(values["trades"] ?? 0), postgresQuerySeconds: values["pg_query_s"] ?? 0)
  }
}

func median(_ values: [Double]) -> Double {
  guard !values.isEmpty else { return .nan }
  let s = values.sorted()
  return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func fmt(_ v: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", v) }

/// The commit-latency line `tally run --commit-stats` writes to standard error.
struct CommitStats {
  var commits: Int
  var p50Milliseconds: Double
  var p99Milliseconds: Double
  var maxMilliseconds: Double

  init?(stderr: String) {
    guard let line = stderr.split(separator: "\n").last(where: { $0.hasPrefix("tally run: commit stats") })
    else {
      return nil
    }
    var values: [String: Double] = [:]
    for field in line.split(separator: " ") {
      let kv = field.split(separator: "=", maxSplits: 1)
      if kv.count == 2, let v = Double(kv[1]) { values[String(kv[0])] = v }
    }
    guard let n = values["commits"], let p50 = values["p50_ms"], let p99 = values["p99_ms"],
      let max = values["max_ms"]
    else { return nil }
    commits = Int(n)
    p50Milliseconds = p50
    p99Milliseconds = p99
    maxMilliseconds = max
  }
}

/// Percentile by the nearest-rank rule: the smallest value with at least p% of the values at or below it.
func nearestRankPercentile(_ values: [Double], _ p: Double) -> Double {
  guard !values.isEmpty else { return 0 }
  let s = values.sorted()
  let rank = Int((p / 100 * Double(s.count)).rounded(.up))
  return s[min(s.count - 1, max(0, rank - 1))]
}

/// One measured child process.
struct ChildMeasurement {
  var wallSeconds: Double
  var userSeconds: Double
  var systemSeconds: Double
  /// ru_maxrss of the child (KiB on Linux), in MiB.
  var peakRSSMiB: Double
  var exitStatus: Int32
  var signal: Int32
  var stdout: String
  var stderr: String

  var summary: String {
    "wall \(fmt(wallSeconds, 3)) s, user \(fmt(userSeconds, 2)) s, sys \(fmt(systemSeconds, 2)) s, "
      + "peak RSS \(fmt(peakRSSMiB, 0)) MiB"
  }
}

enum BenchChild {
  /// This process's own executable (the `tally` being benchmarked).
  static func ownExecutable() -> String {
    if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
    return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
  }

  /// A file of the package that built `binary` (`.build/<config>/tally`), else relative to the
  /// current directory.
  static func packageFile(_ relative: String, binary: String) -> String {
    var url = URL(fileURLWithPath: binary).resolvingSymlinksInPath()
    for _ in 0..<5 {
      url = url.deletingLastPathComponent()
      let candidate = url.appendingPathComponent(relative).path
      if FileManager.default.fileExists(atPath: candidate) { return candidate }
    }
    return FileManager.default.currentDirectoryPath + "/" + relative
  }

  /// Starts `executable arguments` with posix_spawn (stdin /dev/null, stdout and stderr to
  /// `log`.out / `log`.err), waits with wait4 and returns its wall clock and rusage. Exits
  /// the benchmark when the child fails, unless it is the PostgreSQL script (`passStderr`).
  static func run(_ executable: String, _ arguments: [String], log: String, passStderr: Bool = false)
    -> ChildMeasurement
  {
    let outPath = log + ".out"
    let errPath = log + ".err"
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    if !passStderr {
      posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    }
    let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
    let envp: [UnsafeMutablePointer<CChar>?] =
      ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
      for p in argv { free(p) }
      for p in envp { free(p) }
    }
    var pid: pid_t = 0
    let clock = ContinuousClock()
    let started = clock.now
    let rc = posix_spawn(&pid, executable, &actions, nil, argv, envp)
    guard rc == 0 else { fail("bench: cannot start \(executable): \(String(cString: strerror(rc)))") }
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) < 0 {
      guard errno == EINTR else { fail("bench: wait4 failed: \(String(cString: strerror(errno)))") }
    }
    let wall = (clock.now - started).seconds
    let signal = status & 0x7f
    let exitStatus = signal == 0 ? (status >> 8) & 0xff : 128 + signal
    let m = ChildMeasurement(
      wallSeconds: wall,
      userSeconds: Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6,
      systemSeconds: Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6,
      peakRSSMiB: Double(usage.ru_maxrss) / 1024, exitStatus: exitStatus, signal: signal,
      stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
      stderr: passStderr ? "" : (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    if m.exitStatus != 0 && !passStderr {
      fail(
        "bench: \(executable) \(arguments.joined(separator: " ")) exited \(m.exitStatus); "
          + "standard error:\n\(m.stderr.suffix(2000))")
    }
    return m
  }
}

/// Everything `tally bench` measured, printable as the issue's table or as JSON.
struct BenchReport: Encodable {
  struct Machine: Encodable {
    var cores: Int
    var cpu: String
    var memoryGiB: Double
    /// /proc/loadavg's 1-minute figure when the benchmark started: above the core count, other
    /// processes compete for the CPU and wall clocks are inflated (compare the CPU times).
    var loadAverage: Double
    /// Whether this process's heap asks for transparent huge pages (HugePages.swift), and
    /// the kernel's THP mode: figures with and without differ by 10-25%.
    var hugePages: String
    /// The host's speed at memory-bound work when the benchmark started (HostProbe.swift).
    var probe: HostProbe.Result

    /// `syncDirectory`: where the probe times its fsyncs (the market folder: the durable
    /// runs' state folders are beside it).
    static func current(syncDirectory: String) -> Machine {
      var cpu = "unknown"
      if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
        let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
        let colon = line.firstIndex(of: ":")
      {
        cpu = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
      }
      return Machine(
        cores: ProcessInfo.processInfo.activeProcessorCount, cpu: cpu,
        memoryGiB: (Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824 * 10).rounded() / 10,
        loadAverage: loadAverage(), hugePages: HugePages.state(),
        probe: HostProbe.measure(syncDirectory: syncDirectory))
    }

    static func loadAverage() -> Double {
      let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
      return Double(text.split(separator: " ").first ?? "") ?? -1
    }
  }

  struct Kernel: Encodable {
    var name: String
    var runWallSeconds: Double?
    var runTradesPerSecond: Double?
    var runPeakRSSMiB: Double?
    var runCPUSeconds: Double?
    var engineOnlyTradesPerSecond: Double?
    /// Trades per second of the loop's own CPU time (this thread): what a busy machine does not inflate.
    var engineOnlyCPUTradesPerSecond: Double?
    /// The same, producing effects and digesting them per 1,000-event batch.
    var engineWithEffectsCPUTradesPerSecond: Double?
    /// Median over the run pairs of (CPU with effects / CPU without) - 1 (issue 9: < 15%).
    var effectsCostFraction: Double?
    var stateWallSeconds: Double?
    var statePeakRSSMiB: Double?
    var stateCPUSeconds: Double?
    var resumeCPUSeconds: Double?
    var stateRatio: Double?
    var resumeWallSeconds: Double?
    var commitP50Milliseconds: Double?
    var commitP99Milliseconds: Double?
    var commitMaxMilliseconds: Double?
  }

  struct Postgres: Encodable {
    var postgresTradesPerSecond: Double
    /// `tally run` as timed by the script itself (hyperfine, kernel v1).
    var scriptTallyTradesPerSecond: Double
    var postgresTrades: Int
    var postgresQuerySeconds: Double
  }

  /// One line of the issue's table for one kernel.
  struct Figure: Encodable {
    var figure: String
    var kernel: String
    var value: Double
    var unit: String
    var must: String
    var aim: String
    var meetsMust: Bool?
    var meetsAim: Bool?
  }

  var market: String
  var binary: String
  var runs: Int
  var events: Int
  var trades: Int
  var parseEventsPerSecond: Double
  var commitEvents: Int
  var machine: Machine
  var kernels: [Kernel] = []
  var postgres: Postgres? = nil
  /// True when the market is the issue's day (the goals are for that day).
  var isIssueDay = false

  var figures: [Figure] {
    var result: [Figure] = []
    func add(
      _ name: String, _ kernel: String, _ value: Double?, _ unit: String, _ must: Double?, _ aim: Double?,
      lowerIsBetter: Bool, _ mustText: String, _ aimText: String
    ) {
      guard let value, !value.isNaN else { return }
      func meets(_ goal: Double?) -> Bool? {
        guard let goal else { return nil }
        return lowerIsBetter ? value <= goal : value >= goal
      }
      result.append(
        Figure(
          figure: name, kernel: kernel, value: value, unit: unit, must: mustText, aim: aimText,
          meetsMust: meets(must), meetsAim: meets(aim)))
    }
    for k in kernels {
      add(
        "tally run wall clock (child, whole process)", k.name, k.runWallSeconds, "s", 2.0, 1.0,
        lowerIsBetter: true, "<= 2.0 s", "<= 1.0 s")
      add(
        "tally run rate (trades / wall clock)", k.name, k.runTradesPerSecond, "trades/s", 500_000, 1_000_000,
        lowerIsBetter: false, ">= 500k", ">= 1M")
      add(
        "tally run peak RSS (child, ru_maxrss)", k.name, k.runPeakRSSMiB, "MiB", 1024, 512,
        lowerIsBetter: true,
        "<= 1024 MiB", "<= 512 MiB")
      add(
        "engine only (parsed events, apply loop)", k.name, k.engineOnlyTradesPerSecond, "trades/s", 2_000_000,
        5_000_000, lowerIsBetter: false, ">= 2M", ">= 5M")
      if let pg = postgres, let rate = k.runTradesPerSecond {
        add(
          "ratio to PostgreSQL clearing-only SQL", k.name, rate / pg.postgresTradesPerSecond, "x", 20, 50,
          lowerIsBetter: false, ">= 20x", ">= 50x")
      }
      add(
        "tally run --state wall clock (child)", k.name, k.stateWallSeconds, "s", nil, nil,
        lowerIsBetter: true,
        "", "")
      add(
        "tally run --state vs in-memory run", k.name, k.stateRatio, "x", 0.8, 0.95, lowerIsBetter: false,
        ">= 0.8x", ">= 0.95x")
      add(
        "resume of a completed state (child)", k.name, k.resumeWallSeconds, "s", 2.0, 0.5,
        lowerIsBetter: true,
        "<= 2.0 s", "<= 0.5 s")
      add(
        "durable commit p50 (\(commitEvents) events)", k.name, k.commitP50Milliseconds, "ms", nil, nil,
        lowerIsBetter: true, "", "")
      add(
        "durable commit p99 (\(commitEvents) events)", k.name, k.commitP99Milliseconds, "ms", 50, 10,
        lowerIsBetter: true, "<= 50 ms", "<= 10 ms")
    }
    return result
  }

  func table() -> String {
    var lines: [String] = []
    lines.append("tally bench: \(market)")
    lines.append(
      "  \(events) events, \(trades) TRADE lines; medians of \(runs) run(s); \(machine.cores) cores, "
        + "\(machine.cpu), \(fmt(machine.memoryGiB)) GiB; load average \(fmt(machine.loadAverage, 2)) at start, "
        + "\(fmt(Machine.loadAverage(), 2)) at end; huge pages \(machine.hugePages)")
    lines.append("  host probe (HostProbe.swift): \(machine.probe.text)")
    lines.append("  parse (in process): \(Int(parseEventsPerSecond)) events/s")
    lines.append("")
    lines.append(
      DemoSummary.pad("figure", 44) + DemoSummary.pad("kernel", 8) + DemoSummary.padLeft("median", 14) + "  "
        + DemoSummary.pad("must", 13) + DemoSummary.pad("aim", 13) + "")
    for f in figures {
      let value: String
      switch f.unit {
      case "trades/s": value = String(Int(f.value.rounded())) + " /s"
      case "x": value = fmt(f.value, f.value < 10 ? 2 : 1) + " x"
      case "MiB": value = fmt(f.value, 0) + " MiB"
      case "ms": value = fmt(f.value, 1) + " ms"
      default: value = fmt(f.value, 3) + " " + f.unit
      }
      var mark = ""
      if let must = f.meetsMust {
        mark = must ? ((f.meetsAim ?? false) ? "aim met" : "must met") : "MISS"
      }
      lines.append(
        DemoSummary.pad(f.figure, 44) + DemoSummary.pad(f.kernel, 8) + DemoSummary.padLeft(value, 14) + "  "
          + DemoSummary.pad(f.must, 13) + DemoSummary.pad(f.aim, 13) + mark)
    }
    lines.append("")
    for k in kernels {
      var extra = "  \(k.name): tally run CPU (user+sys) \(fmt(k.runCPUSeconds ?? .nan, 2)) s"
      if let cpuRate = k.engineOnlyCPUTradesPerSecond {
        extra += "; engine only per CPU second \(Int(cpuRate)) trades/s"
        if let withEffects = k.engineWithEffectsCPUTradesPerSecond, let cost = k.effectsCostFraction {
          extra +=
            ", with effects \(Int(withEffects)) trades/s (effects cost \(fmt(cost * 100, 1))% of apply, median of the run pairs; goal < 15%)"
        }
      }
      if let rss = k.statePeakRSSMiB { extra += "; --state peak RSS \(fmt(rss, 0)) MiB" }
      if let c = k.stateCPUSeconds, let r = k.resumeCPUSeconds {
        extra += "; CPU --state \(fmt(c, 2)) s, resume \(fmt(r, 2)) s"
      }
      if let maxMs = k.commitMaxMilliseconds { extra += "; commit max \(fmt(maxMs)) ms" }
      lines.append(extra)
    }
    if let pg = postgres {
      lines.append(
        "  PostgreSQL clearing-only SQL: \(Int(pg.postgresTradesPerSecond)) trades/s (\(pg.postgresTrades) trades, "
          + "query \(fmt(pg.postgresQuerySeconds, 3)) s); tally run timed by the script (hyperfine, v1): "
          + "\(Int(pg.scriptTallyTradesPerSecond)) trades/s, ratio \(fmt(pg.scriptTallyTradesPerSecond / pg.postgresTradesPerSecond, 2)) x"
      )
    }
    if !isIssueDay {
      lines.append(
        "  note: the goals are the issue's for its day (1 day x 1M trades, 1M accounts); this is another day."
      )
    }
    let misses = figures.filter { $0.meetsMust == false }.count
    lines.append("  \(misses) figure(s) miss their \"must\" goal (issue 8).")
    return lines.joined(separator: "\n")
  }

  private enum CodingKeys: String, CodingKey {
    case market, binary, runs, events, trades, parseEventsPerSecond, commitEvents, machine, kernels, postgres,
      figures, isIssueDay
  }

  func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(market, forKey: .market)
    try c.encode(binary, forKey: .binary)
    try c.encode(runs, forKey: .runs)
    try c.encode(events, forKey: .events)
    try c.encode(trades, forKey: .trades)
    try c.encode(parseEventsPerSecond, forKey: .parseEventsPerSecond)
    try c.encode(commitEvents, forKey: .commitEvents)
    try c.encode(machine, forKey: .machine)
    try c.encode(kernels, forKey: .kernels)
    try c.encodeIfPresent(postgres, forKey: .postgres)
    try c.encode(figures, forKey: .figures)
    try c.encode(isIssueDay, forKey: .isIssueDay)
  }

  func json() -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    guard let data = try? encoder.encode(self) else { return "{}" }
    return String(decoding: data, as: UTF8.self)
  }
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
