// Properties that must hold for every market: checked over many generated seeds
// (varied sizes, dates across the fee-schedule changes, bad lines, cancels,
// defaults, corporate actions) and over mutated event streams (dropped,
// duplicated, swapped and random lines) that the generator would never write.
//
// Per seed: the self-check holds after every event; every event line has exactly
// one outcome and rejections.csv lists exactly the rejected seqs; the output files
// obey SPEC §5 and the accounting identities of §4 (parsed as integers in fen);
// kernels v1 and v2 agree; and a state serialised after any prefix of events and
// restored gives the same outputs and digest as a straight run.
import Foundation
import KernelAPI
import MarketGenerator
import TallyEngine
import TallyFormat
import XCTest

final class PropertyTests: XCTestCase {
  typealias H = PropHarness

  /// Weekdays across the fee-schedule changes of SPEC §2 (20220429, 20230828) and a year end.
  static let startDates: [Int32] = [
    1999_12_27, 2021_01_04, 2022_04_25, 2022_04_28, 2023_08_21, 2023_08_25, 2024_12_30, 2026_01_05,
  ]

  static func options(seed: UInt64) -> MarketOptions {
    var rng = H.SplitMix(seed &* 0x2545_F491_4F6C_DD1D &+ 17)
    var options = MarketOptions(
      seed: seed, days: Int.random(in: 2...4, using: &rng),
      tradesPerDay: Int.random(in: 200...800, using: &rng),
      accounts: [2, 5, 30, 120, 400][Int.random(in: 0..<5, using: &rng)],
      securities: [1, 2, 5, 12, 25][Int.random(in: 0..<5, using: &rng)],
      participants: [1, 2, 3, 5, 9][Int.random(in: 0..<5, using: &rng)],
      startDate: startDates[Int.random(in: 0..<startDates.count, using: &rng)])
    options.badLinesPerMillion = [0, 1_000, 30_000, 100_000][Int.random(in: 0..<4, using: &rng)]
    options.cancelsPerMillion = [0, 1_000, 30_000, 100_000][Int.random(in: 0..<4, using: &rng)]
    options.stageDefault = Bool.random(using: &rng) || seed % 3 == 0
    options.corporateActions = seed % 5 != 1
    options.settleLastDay = seed % 4 != 2
    return options
  }

  /// How many seeds to run: TALLY_PROPS_SEEDS / TALLY_PROPS_MUTATED scale the campaign
  /// (defaults 30 and 12 keep the suite at about half a minute in a debug build).
  static func count(_ variable: String, default value: Int) -> Int {
    ProcessInfo.processInfo.environment[variable].flatMap { Int($0) }.map { max(1, $0) } ?? value
  }

  static var seeds: [UInt64] { Array(1...UInt64(count("TALLY_PROPS_SEEDS", default: 30))) }

  // MARK: generated markets

  func testPropertiesHoldOverGeneratedSeeds() throws {
    let root = try H.temporaryDirectory("seeds")
    defer { H.remove(root) }
    var totalEvents = 0
    var defaults = 0
    for seed in Self.seeds {
      let options = Self.options(seed: seed)
      let market = try H.generate(options, into: root + "/\(seed)")
      let context =
        "seed \(seed) (\(options.days)d×\(options.tradesPerDay), \(options.accounts) accounts, "
        + "\(options.securities) securities, \(options.participants) participants, start \(options.startDate))"
      // Full self-check after every event for a third of the seeds, after every CLOSE/SETTLE
      // (and at the end) for the others.
      let result = try Self.checkMarket(
        reference: market.reference, lines: market.lines, seed: seed, checkEveryEvent: seed % 3 == 0,
        context: context)
      // The generator's deliberately bad lines are exactly the rejected ones.
      XCTAssertEqual(result.statistics.rejected, market.summary.badLines, "\(context): rejected vs bad lines")
      XCTAssertEqual(
        result.statistics.tradesApplied, market.summary.trades, "\(context): applied trades vs generated")
      let settlement = String(decoding: result.file("settlement.csv"), as: UTF8.self)
      let defaulted =
        settlement.components(separatedBy: ",DEFAULTED,").count - 1
        + settlement.components(separatedBy: ",CURED,").count - 1
      XCTAssertEqual(defaulted, market.summary.expectedDefaults, "\(context): defaults")
      defaults += defaulted
      totalEvents += market.lines.count
      H.remove(root + "/\(seed)")
    }
    XCTAssertGreaterThan(defaults, 0, "no seed exercised a settlement default")
    print("PropertyTests: \(Self.seeds.count) seeds, \(totalEvents) events, \(defaults) defaults")
  }

  // MARK: mutated streams

  func testPropertiesHoldOverMutatedStreams() throws {
    let root = try H.temporaryDirectory("mutated")
    defer { H.remove(root) }
    var rejectionReasons = Set<String>()
    for seed in UInt64(101)...UInt64(100 + Self.count("TALLY_PROPS_MUTATED", default: 12)) {
      var options = Self.options(seed: seed)
      options.days = 3
      options.tradesPerDay = 250
      options.accounts = max(options.accounts, 5)
      let market = try H.generate(options, into: root + "/\(seed)")
      let mutated = Mutator.mutate(market.lines, reference: market.reference, seed: seed)
      let lines = mutated.map { $0[...] }
      let result = try Self.checkMarket(
        reference: market.reference, lines: lines, seed: seed, checkEveryEvent: true,
        context: "mutated seed \(seed)")
      for case .rejected(let reason) in result.outcomes { rejectionReasons.insert(reason.code) }
      H.remove(root + "/\(seed)")
    }
    // The mutations reach most rejection paths.
    for code in [
      "MALFORMED", "BAD_DATE", "DAY_ALREADY_OPEN", "DAY_NOT_OPEN", "DUPLICATE_TRADE", "UNKNOWN_TRADE",
      "ALREADY_CANCELLED", "ALREADY_SETTLED", "INSUFFICIENT_HOLDINGS", "UNKNOWN_PARTICIPANT",
      "INVALID_AMOUNT",
    ] {
      XCTAssertTrue(rejectionReasons.contains(code), "no mutated stream produced \(code)")
    }
  }

  // MARK: SPEC §1 limits: every event still has exactly one outcome

  /// A tiny market whose one account holds 12 lots of 9,999,999,999 shares (each line within
  /// SPEC §1's quantity limit). Run through the real binary in a child process, so that a
  /// crash of the engine fails this test instead of the whole test run.
  func runAtLimits(_ label: String, events: [String]) throws -> (run: H.ChildRun, out: String) {
    let (run, out) = try runLimitsMarket(label, events: events)
    let crash = (run.stderr + "\n" + run.stdout).split(separator: "\n").filter {
      $0.contains("failure") || $0.contains("failed") || $0.contains("V1Kernel.")
    }.prefix(6)
    XCTAssertEqual(
      run.status, 0,
      "\(label): the engine must give every event an outcome, not stop; stderr:\n"
        + crash.joined(separator: "\n"))
    return (run, out)
  }

  /// Writes the limits market (A1 holds 12 lots of 9,999,999,999 shares of 600000) with
  /// `events`, runs the real binary on it and returns the run, whatever its end.
  func runLimitsMarket(_ label: String, events: [String]) throws -> (run: H.ChildRun, out: String) {
    let dir = try H.temporaryDirectory("limits-\(label)")
    addTeardownBlock { H.remove(dir) }
    let reference = dir + "/reference"
    try FileManager.default.createDirectory(atPath: reference, withIntermediateDirectories: true)
    let files: [String: [String]] = [
      "calendar.csv": ["date", "20260105", "20260106", "20260107"],
      "securities.csv": ["security,isin,name,kind", "600000,CNE000001F15,Big,STOCK"],
      "participants.csv": ["participant,name", "P1,One", "P2,Two"],
      "units.csv": ["unit,participant", "U1,P1", "U2,P2"],
      "accounts.csv": ["account,kind", "A1,INDIVIDUAL", "B1,INSTITUTION"],
      "holdings.csv": ["account,security,quantity,acquired_date"]
        + Array(repeating: "A1,600000,9999999999,20250101", count: 12),
    ]
    for (name, lines) in files {
      try Data((lines.joined(separator: "\n") + "\n").utf8).write(
        to: URL(fileURLWithPath: reference + "/" + name))
    }
    try Data((events.joined(separator: "\n") + "\n").utf8).write(
      to: URL(fileURLWithPath: dir + "/events.txt"))
    let run = try H.runBinary(reference: reference, events: [dir + "/events.txt"], outs: [dir + "/out"])[0]
    return (run, dir + "/out")
  }

  /// 12 sales of 9,999,999,999 shares at 999999.999: each amount is 9999999989000000.00 CNY,
  /// the clearing row's total 119999999868000000.00 CNY (above Int64.max in fen).
  func testLargestTradesClearExactly() throws {
    let trades = (1...12).map { "TRADE,\($0),20260105,093000,600000,999999.999,9999999999,B1,U1,A1,U2" }
    let (run, out) = try runAtLimits("trades", events: ["OPEN,20260105"] + trades + ["CLOSE,20260105"])
    guard run.status == 0 else { return }
    let clearing = String(decoding: try H.readBytes(out + "/clearing.csv"), as: UTF8.self)
    XCTAssertTrue(clearing.contains(",P1,600000,119999999988,0,119999999868000000.00,0.00,"), clearing)
    XCTAssertTrue(clearing.contains(",P2,600000,0,119999999988,0.00,119999999868000000.00,"), clearing)
  }

  /// 9,300 deposits of the largest amount: the balance is 92999999999999907.00 CNY.
  func testLargestDepositsAddUpExactly() throws {
    let deposits = Array(repeating: "DEPOSIT,P1,9999999999999.99", count: 9_300)
    let (run, out) = try runAtLimits("deposits", events: deposits)
    guard run.status == 0 else { return }
    let balances = String(decoding: try H.readBytes(out + "/balances.csv"), as: UTF8.self)
    XCTAssertEqual(balances, "participant,balance\nP1,92999999999999907.00\nP2,0.00\n")
  }

  /// The documented limit (docs/DECISIONS.md, "Number widths"): share quantities are Int64.
  /// A bonus of 9,999,999,999 shares per share on 119,999,999,988 shares would entitle the
  /// holder to 1199999999760000000012 shares (above 9.2e18): the engine must stop loudly (a
  /// trap, with the overflow named on standard error) and write no outputs, never a rounded
  /// or wrapped figure. The same holding with a bonus that fits is paid exactly, so the stop
  /// is the limit and nothing else.
  func testBonusBeyondTheShareLimitStopsTheEngineLoudly() throws {
    let (fits, fitsOut) = try runAtLimits(
      "bonus-fits",
      events: ["OPEN,20260105", "BONUS,600000,20260105,1,76", "CLOSE,20260105", "OPEN,20260106"])
    XCTAssertEqual(fits.status, 0, fits.stderr)
    // 119,999,999,988 x 76 = 9,119,999,999,088 shares: within Int64.
    let entitlements = String(decoding: try H.readBytes(fitsOut + "/entitlements.csv"), as: UTF8.self)
    XCTAssertTrue(entitlements.contains(",A1,SHARES,9119999999088\n"), entitlements)

    let (run, out) = try runLimitsMarket(
      "bonus",
      events: ["OPEN,20260105", "BONUS,600000,20260105,1,9999999999", "CLOSE,20260105", "OPEN,20260106"])
    XCTAssertTrue(
      run.uncaughtSignal && [SIGILL, SIGTRAP].contains(run.status),
      "the engine must stop with a trap; it ended with status \(run.status), signal \(run.uncaughtSignal)")
    // A debug build prints the precondition's message; a release build traps without one and
    // the Swift runtime prints the crash and a backtrace naming the overflow check.
    XCTAssertTrue(
      run.stderr.contains("bonus shares overflows Int64")
        || (run.stderr.contains("Program crashed") && run.stderr.contains("exactInt64")),
      "the stop must name the overflow on standard error:\n\(run.stderr.prefix(3000))")
    XCTAssertFalse(
      FileManager.default.fileExists(atPath: out + "/entitlements.csv"), "no outputs after the stop")
  }

  // MARK: the checks catch broken outputs

  /// Each tampering of a correct run's outputs must be reported: the checks are not vacuous.
  func testOutputChecksDetectTamperedFiles() throws {
    let root = try H.temporaryDirectory("tamper")
    defer { H.remove(root) }
    var options = MarketOptions(
      seed: 8, days: 3, tradesPerDay: 400, accounts: 60, securities: 5, participants: 3)
    options.badLinesPerMillion = 30_000
    options.cancelsPerMillion = 50_000
    let market = try H.generate(options, into: root)
    let good = try H.run(reference: market.reference, kernel: "v1", lines: market.lines)
    XCTAssertEqual(OutputChecks.check(result: good, lines: market.lines, reference: market.reference), [])

    func tampered(_ name: String, _ change: ([String]) -> [String]) -> [String] {
      var result = good
      let index = result.files.firstIndex { $0.name == name }!
      var lines = String(decoding: result.files[index].bytes, as: UTF8.self).split(separator: "\n").map(
        String.init)
      lines = change(lines)
      result.files[index].bytes = Array((lines.joined(separator: "\n") + "\n").utf8)
      return OutputChecks.check(result: result, lines: market.lines, reference: market.reference)
    }
    func editField(_ line: String, _ i: Int, _ f: (String) -> String) -> String {
      var fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
      fields[i] = f(fields[i])
      return fields.joined(separator: ",")
    }
    func plusOneFen(_ amount: String) -> String {
      let fen = H.outputFen(amount)! + 1
      let sign = fen < 0 ? "-" : ""
      let m = fen.magnitude
      return sign + String(m / 100) + "." + (m % 100 < 10 ? "0" : "") + String(m % 100)
    }
    var cases: [(String, [String])] = []
    cases.append(
      (
        "available above quantity",
        tampered("holdings.csv") { l in
          let quantity = Int(l[1].split(separator: ",")[2])!
          return [l[0], editField(l[1], 3) { _ in String(quantity + 1) }] + l.dropFirst(2)
        }
      ))
    cases.append(("a rejection row lost", tampered("rejections.csv") { Array($0.dropLast()) }))
    cases.append(
      (
        "rejection reason changed",
        tampered("rejections.csv") { l in
          [l[0], editField(l[1], 3) { $0 == "MALFORMED" ? "BAD_DATE" : "MALFORMED" }] + l.dropFirst(2)
        }
      ))
    cases.append(
      (
        "settlement rows out of order",
        tampered("settlement.csv") { l in
          [l[0], l[2], l[1]] + l.dropFirst(3)
        }
      ))
    cases.append(
      (
        "a fee one fen higher",
        tampered("clearing.csv") { l in
          [l[0], editField(l[1], 8, plusOneFen)] + l.dropFirst(2)
        }
      ))
    cases.append(
      (
        "a balance one fen higher",
        tampered("balances.csv") { l in
          [l[0], editField(l[1], 1, plusOneFen)] + l.dropFirst(2)
        }
      ))
    cases.append(
      (
        "a net amount one fen higher",
        tampered("settlement.csv") { l in
          [l[0], editField(l[1], 3, plusOneFen)] + l.dropFirst(2)
        }
      ))
    cases.append(
      (
        "an amount with a leading zero",
        tampered("balances.csv") { l in
          [l[0], editField(l[1], 1) { "0" + $0 }] + l.dropFirst(2)
        }
      ))
    cases.append(
      (
        "shares out of nowhere",
        tampered("holdings.csv") { l in
          [l[0], editField(editField(l[1], 2) { String(Int($0)! + 1) }, 3) { String(Int($0)! + 1) }]
            + l.dropFirst(2)
        }
      ))
    // A tax row for a cancelled trade.
    let cancels = market.lines.indices.filter {
      good.outcomes[$0] == .applied && String(decoding: market.lines[$0], as: UTF8.self).hasPrefix("CANCEL,")
    }
    XCTAssertFalse(cancels.isEmpty, "the market should cancel trades")
    if let c = cancels.first {
      let f = String(decoding: market.lines[c], as: UTF8.self).split(separator: ",").map(String.init)
      cases.append(
        (
          "tax on a cancelled trade",
          tampered("tax.csv") { l in
            [l[0], "\(f[1]),\(f[2]),A1,600000,100,1.00"] + l.dropFirst()
          }
        ))
    }
    for (label, problems) in cases { XCTAssertFalse(problems.isEmpty, "not detected: \(label)") }
  }

  // MARK: the checks

  /// Runs `lines` with kernel v1 (self-check after every event, or after every CLOSE/SETTLE
  /// and at the end), checks the outputs, compares with kernel v2, and resumes from a
  /// serialised state at a few random points. Returns the v1 run.
  @discardableResult
  static func checkMarket(
    reference: ReferenceData, lines: [ArraySlice<UInt8>], seed: UInt64, checkEveryEvent: Bool,
    context: String,
    file: StaticString = #filePath, line: UInt = #line
  ) throws -> H.RunResult {
    var firstViolation: String?
    let v1 = try H.run(reference: reference, kernel: "v1", lines: lines) { engine, i, outcome in
      guard firstViolation == nil else { return }
      let text = String(decoding: lines[i], as: UTF8.self)
      // SPEC §3 OPEN: every holding becomes available except what is withheld.
      if outcome == .applied && text.hasPrefix("OPEN,") {
        for p in engine.report().holdings where p.available != p.quantity - p.withheld {
          firstViolation =
            "after seq \(i + 1) (\(text)): a position has quantity \(p.quantity), "
            + "available \(p.available), withheld \(p.withheld)"
          return
        }
      }
      guard checkEveryEvent || i == lines.count - 1 || text.hasPrefix("CLOSE,") || text.hasPrefix("SETTLE,")
      else {
        return
      }
      let violations = engine.selfCheckViolations()
      if !violations.isEmpty {
        firstViolation = "after seq \(i + 1) (\(text)): " + violations.joined(separator: "; ")
      }
    }
    XCTAssertNil(firstViolation, "\(context): self-check", file: file, line: line)

    let problems = OutputChecks.check(result: v1, lines: lines, reference: reference)
    XCTAssertEqual(problems, [], "\(context): output properties", file: file, line: line)

    // Kernel v2 agrees on everything.
    let v2 = try H.run(reference: reference, kernel: "v2", lines: lines)
    XCTAssertEqual(
      H.differingFiles(v1.files, v2.files), [], "\(context): v1 vs v2 files", file: file, line: line)
    XCTAssertEqual(v1.digest, v2.digest, "\(context): v1 vs v2 digest", file: file, line: line)
    XCTAssertEqual(v1.statistics, v2.statistics, "\(context): v1 vs v2 statistics", file: file, line: line)

    // Replay/resume: serialise after k events, restore, apply the rest.
    var rng = H.SplitMix(seed ^ 0xA5A5_5A5A)
    var points = [
      Int.random(in: 1..<max(2, lines.count), using: &rng),
      Int.random(in: 1..<max(2, lines.count), using: &rng),
    ]
    // One point right after a CLOSE or SETTLE (a day boundary), when there is one.
    let boundaries = lines.indices.filter {
      let t = String(decoding: lines[$0], as: UTF8.self)
      return t.hasPrefix("CLOSE,") || t.hasPrefix("SETTLE,")
    }
    if !boundaries.isEmpty {
      points.append(boundaries[Int.random(in: 0..<boundaries.count, using: &rng)] + 1)
    }
    points.append(0)
    points.append(lines.count)
    for (n, k) in points.enumerated() {
      let resumeKernel = n % 2 == 0 ? "v1" : "v2"
      let resumed = try H.resumedRun(
        reference: reference, lines: lines, k: k, kernel: "v1", resumeKernel: resumeKernel, file: file,
        line: line)
      XCTAssertEqual(
        H.differingFiles(resumed.files, v1.files), [],
        "\(context): resumed at k=\(k) (\(resumeKernel)) files",
        file: file, line: line)
      XCTAssertEqual(
        resumed.digest, v1.digest, "\(context): resumed at k=\(k) digest", file: file, line: line)
    }
    return v1
  }
}

// MARK: - Output properties (SPEC §3-§5), from the rendered CSV files only

enum OutputChecks {
  typealias H = PropHarness

  static func check(result: H.RunResult, lines: [ArraySlice<UInt8>], reference: ReferenceData) -> [String] {
    var problems: [String] = []
    func fail(_ text: String) { if problems.count < 30 { problems.append(text) } }
    let events = lines.count
    let stats = result.statistics
    let calendar = Array(Set(reference.calendar)).sorted()
    func nextTradingDay(_ date: String) -> String? {
      guard let d = Int32(date), let i = calendar.firstIndex(where: { $0 > d }) else { return nil }
      return String(calendar[i])
    }
    // The last applied OPEN's date (0 before any).
    var lastOpened: Int32 = 0
    for (i, l) in lines.enumerated()
    where result.outcomes[i] == .applied && l.starts(with: Array("OPEN,".utf8)) {
      lastOpened = Int32(String(decoding: l.dropFirst(5).prefix(8), as: UTF8.self)) ?? 0
    }

    // Exactly one outcome per event line.
    if stats.events != events { fail("statistics.events \(stats.events) != \(events) event lines") }
    if stats.applied + stats.rejected != stats.events {
      fail("applied \(stats.applied) + rejected \(stats.rejected) != events \(stats.events)")
    }
    if result.outcomes.count != events { fail("\(result.outcomes.count) outcomes for \(events) events") }
    let appliedOutcomes = result.outcomes.filter { $0 == .applied }.count
    if appliedOutcomes != stats.applied {
      fail("applied outcomes \(appliedOutcomes) != statistics \(stats.applied)")
    }

    // The events as text: what was applied.
    var cancelled = Set<String>()  // "date,trade_id"
    var depositsFen: Int64 = 0
    // "date,id" -> the seller's side of the trade.
    var tradeInfo: [String: (account: String, security: String, quantity: String)] = [:]
    var addedAccounts: [String: String] = [:]
    var addedSecurities: [String: String] = [:]
    for (i, line) in lines.enumerated()
    where result.outcomes.indices.contains(i) && result.outcomes[i] == .applied {
      let f = String(decoding: line, as: UTF8.self).split(separator: ",", omittingEmptySubsequences: false)
        .map(String.init)
      switch f[0] {
      case "CANCEL": cancelled.insert(f[1] + "," + f[2])
      case "DEPOSIT":
        if let fen = H.inputFen(f[2]) {
          depositsFen += fen
        } else {
          fail("applied DEPOSIT with amount \(f[2])")
        }
      case "TRADE": tradeInfo[f[2] + "," + f[1]] = (f[9], f[4], f[6])
      case "ACCOUNT": addedAccounts[f[1]] = f[2]
      case "SECURITY": addedSecurities[f[1]] = f[4]
      default: break
      }
    }
    var accountKind: [String: String] = addedAccounts
    for a in reference.accounts { accountKind[a.id] = a.kind == .individual ? "INDIVIDUAL" : "INSTITUTION" }
    var securityKind: [String: String] = addedSecurities
    for s in reference.securities { securityKind[s.code] = "\(s.kind)".uppercased() }

    // rejections.csv: one row per rejected event, by seq, with the line's record and ref.
    let rejections = H.csvRows(
      result.file("rejections.csv"), header: "seq,record,ref,reason", problems: &problems,
      name: "rejections.csv")
    if rejections.count != stats.rejected {
      fail("rejections.csv has \(rejections.count) rows, \(stats.rejected) rejected")
    }
    var previousSeq: Int64 = 0
    var listed = Set<Int64>()
    for row in rejections {
      guard let seq = H.integer(row[0]) else {
        fail("rejections.csv: seq \(row[0])")
        continue
      }
      if seq <= previousSeq { fail("rejections.csv: seq \(seq) after \(previousSeq)") }
      previousSeq = seq
      guard (1...Int64(events)).contains(seq) else {
        fail("rejections.csv: seq \(seq) outside 1...\(events)")
        continue
      }
      listed.insert(seq)
      let outcome = result.outcomes[Int(seq - 1)]
      guard case .rejected(let reason) = outcome else {
        fail("rejections.csv: seq \(seq) was applied")
        continue
      }
      if row[3] != reason.code { fail("rejections.csv: seq \(seq) reason \(row[3]), outcome \(reason.code)") }
      let (record, ref) = expectedRecordAndRef(lines[Int(seq - 1)])
      if row[1] != record || row[2] != ref {
        fail("rejections.csv: seq \(seq) record/ref \(row[1])/\(row[2]), line says \(record)/\(ref)")
      }
    }
    for (i, outcome) in result.outcomes.enumerated()
    where outcome != .applied && !listed.contains(Int64(i + 1)) {
      fail("rejected seq \(i + 1) missing from rejections.csv")
    }

    // holdings.csv: quantity > 0, quantity ≥ available + withheld, none negative; sorted, unique.
    let holdings = H.csvRows(
      result.file("holdings.csv"), header: "account,security,quantity,available,withheld",
      problems: &problems,
      name: "holdings.csv")
    var heldBySecurity: [String: Int64] = [:]
    for (n, row) in holdings.enumerated() {
      guard let q = H.integer(row[2]), let a = H.integer(row[3]), let w = H.integer(row[4]) else {
        fail("holdings.csv: bad numbers \(row)")
        continue
      }
      if !(q > 0 && a >= 0 && w >= 0 && q >= a + w) { fail("holdings.csv: \(row.joined(separator: ","))") }
      if n > 0 && !H.bytesLess(Array(holdings[n - 1][0...1]), Array(row[0...1])) {
        fail("holdings.csv: \(row[0]),\(row[1]) not after \(holdings[n - 1][0]),\(holdings[n - 1][1])")
      }
      heldBySecurity[row[1], default: 0] += q
    }

    // entitlements.csv, and conservation of shares: opening holdings plus credited bonus shares.
    let entitlements = H.csvRows(
      result.file("entitlements.csv"), header: "security,record_date,pay_date,account,kind,value",
      problems: &problems, name: "entitlements.csv")
    var issued: [String: Int64] = [:]
    for h in reference.holdings {
      issued[reference.securities[Int(h.security)].code, default: 0] += h.quantity
    }
    for (n, row) in entitlements.enumerated() {
      if nextTradingDay(row[1]) != row[2] { fail("entitlements.csv: pay date \(row)") }
      switch row[4] {
      case "CASH":
        if (H.outputFen(row[5]) ?? 0) <= 0 { fail("entitlements.csv: value \(row)") }
      case "SHARES":
        guard let v = H.integer(row[5]), v > 0 else {
          fail("entitlements.csv: value \(row)")
          continue
        }
        if let pay = Int32(row[2]), pay <= lastOpened { issued[row[0], default: 0] += v }
      default: fail("entitlements.csv: kind \(row)")
      }
      if n > 0 {
        let p = entitlements[n - 1]
        if H.bytesLess([row[0], row[1], row[3], row[4]], [p[0], p[1], p[3], p[4]]) {
          fail("entitlements.csv: \(row) sorted before \(p)")
        }
      }
    }
    for security in Set(issued.keys).union(heldBySecurity.keys).sorted()
    where issued[security, default: 0] != heldBySecurity[security, default: 0] {
      fail(
        "security \(security): holdings.csv adds up to \(heldBySecurity[security, default: 0]), "
          + "opening + credited bonus is \(issued[security, default: 0])")
    }

    // clearing.csv
    let clearing = H.csvRows(
      result.file("clearing.csv"),
      header: "trade_date,settle_date,participant,security,buy_quantity,sell_quantity,buy_amount,sell_amount,"
        + "handling_fee,regulatory_fee,transfer_fee,stamp_duty", problems: &problems, name: "clearing.csv")
    var feesByDate: [String: Int64] = [:]
    var netFromClearing: [String: Int64] = [:]  // "date,participant"
    var sidesByDateSecurity: [String: (Int64, Int64, Int64, Int64)] = [:]
    for (n, row) in clearing.enumerated() {
      let q = row[4...5].map(H.integer)
      let m = row[6...11].map(H.outputFen)
      guard q.allSatisfy({ $0 != nil }), m.allSatisfy({ $0 != nil }) else {
        fail("clearing.csv: bad numbers \(row)")
        continue
      }
      let (bq, sq) = (q[0]!, q[1]!)
      let amounts = m.map { $0! }
      if bq < 0 || sq < 0 || (bq == 0 && sq == 0) || amounts.contains(where: { $0 < 0 }) {
        fail("clearing.csv: \(row.joined(separator: ","))")
      }
      if sq == 0 && amounts[5] != 0 { fail("clearing.csv: stamp duty without a sale \(row)") }
      if nextTradingDay(row[0]) != row[1] { fail("clearing.csv: settle date \(row)") }
      let previous = n > 0 ? clearing[n - 1] : []
      if n > 0 && !H.bytesLess([previous[0], previous[2], previous[3]], [row[0], row[2], row[3]]) {
        fail("clearing.csv: \(row) not after \(clearing[n - 1])")
      }
      let fees = amounts[2] + amounts[3] + amounts[4] + amounts[5]
      feesByDate[row[0], default: 0] += fees
      netFromClearing[row[0] + "," + row[2], default: 0] += amounts[1] - amounts[0] - fees
      var s = sidesByDateSecurity[row[0] + "," + row[3], default: (0, 0, 0, 0)]
      s.0 += bq
      s.1 += sq
      s.2 += amounts[0]
      s.3 += amounts[1]
      sidesByDateSecurity[row[0] + "," + row[3]] = s
    }
    for (key, s) in sidesByDateSecurity.sorted(by: { $0.key < $1.key }) where s.0 != s.1 || s.2 != s.3 {
      fail("clearing.csv \(key): bought \(s.0) for \(s.2), sold \(s.1) for \(s.3)")
    }

    // settlement.csv
    let settlement = H.csvRows(
      result.file("settlement.csv"),
      header: "trade_date,settle_date,participant,net_amount,status,settled_on",
      problems: &problems, name: "settlement.csv")
    var netByDate: [String: Int64] = [:]
    var settledCash: Int64 = 0
    var settlementKeys = Set<String>()
    for (n, row) in settlement.enumerated() {
      guard let net = H.outputFen(row[3]) else {
        fail("settlement.csv: amount \(row)")
        continue
      }
      let key = row[0] + "," + row[2]
      settlementKeys.insert(key)
      netByDate[row[0], default: 0] += net
      if netFromClearing[key, default: 0] != net {
        fail("settlement.csv \(key): net \(net), clearing rows say \(netFromClearing[key, default: 0])")
      }
      if nextTradingDay(row[0]) != row[1] { fail("settlement.csv: settle date \(row)") }
      if n > 0 && !H.bytesLess([settlement[n - 1][0], settlement[n - 1][2]], [row[0], row[2]]) {
        fail("settlement.csv: \(row) not after \(settlement[n - 1])")
      }
      switch row[4] {
      case "PENDING", "DEFAULTED":
        if !row[5].isEmpty { fail("settlement.csv: settled_on on \(row)") }
        if row[4] == "DEFAULTED" && net >= 0 { fail("settlement.csv: a receiver defaulted \(row)") }
      case "SETTLED":
        if row[5] != row[1] { fail("settlement.csv: settled on another day than the settle date \(row)") }
        settledCash += net
      case "CURED":
        if !(row[5] > row[1]) || net >= 0 { fail("settlement.csv: cure \(row)") }
        settledCash += net
      default: fail("settlement.csv: status \(row)")
      }
      if let settleDate = Int32(row[1]), settleDate > lastOpened, row[4] != "PENDING" {
        fail("settlement.csv: settle date not yet opened but \(row[4]) \(row)")
      }
    }
    for key in netFromClearing.keys.sorted() where !settlementKeys.contains(key) {
      fail("clearing.csv has rows for \(key) but settlement.csv has none")
    }
    for date in Set(netByDate.keys).union(feesByDate.keys).sorted()
    where netByDate[date, default: 0] != -feesByDate[date, default: 0] {
      fail(
        "trade date \(date): Σ net \(netByDate[date, default: 0]) != −Σ fees \(feesByDate[date, default: 0])")
    }

    // balances.csv: every participant, none negative; cash = deposits + settled nets.
    let balances = H.csvRows(
      result.file("balances.csv"), header: "participant,balance", problems: &problems, name: "balances.csv")
    var total: Int64 = 0
    for (n, row) in balances.enumerated() {
      guard let b = H.outputFen(row[1]), b >= 0 else {
        fail("balances.csv: \(row)")
        continue
      }
      total += b
      if n > 0 && !H.bytesLess(balances[n - 1][0], row[0]) {
        fail("balances.csv: \(row) not after \(balances[n - 1])")
      }
    }
    let listedParticipants = Set(balances.map { $0[0] })
    for p in reference.participants where !listedParticipants.contains(p.id) {
      fail("balances.csv: participant \(p.id) missing")
    }
    if total != depositsFen + settledCash {
      fail("Σ balances \(total) != deposits \(depositsFen) + settled/cured nets \(settledCash)")
    }

    // tax.csv: no cancelled trade, only INDIVIDUAL sellers of STOCK, the sale's quantity.
    let tax = H.csvRows(
      result.file("tax.csv"), header: "trade_date,trade_id,account,security,quantity,tax",
      problems: &problems,
      name: "tax.csv")
    for (n, row) in tax.enumerated() {
      let key = row[0] + "," + row[1]
      if cancelled.contains(key) { fail("tax.csv: cancelled trade \(key) has a tax row") }
      if (H.outputFen(row[5]) ?? 0) <= 0 { fail("tax.csv: tax \(row)") }
      if let t = tradeInfo[key] {
        if t.account != row[2] || t.security != row[3] || Int64(t.quantity) != H.integer(row[4]) {
          fail("tax.csv: \(row) does not match the sale \(t)")
        }
      } else {
        fail("tax.csv: \(key) is not an applied trade")
      }
      if accountKind[row[2]] != "INDIVIDUAL" || securityKind[row[3]] != "STOCK" {
        fail(
          "tax.csv: seller \(row[2]) (\(accountKind[row[2]] ?? "?")) / \(row[3]) (\(securityKind[row[3]] ?? "?"))"
        )
      }
      if n > 0 && !H.bytesLess([tax[n - 1][0], tax[n - 1][1]], [row[0], row[1]]) {
        fail("tax.csv: \(row) not after \(tax[n - 1])")
      }
    }
    return problems
  }

  /// SPEC §5: `record` is the first field as written, `ref` the second (the third for
  /// CANCEL); either is empty where missing or where the line is not valid UTF-8.
  static func expectedRecordAndRef(_ line: ArraySlice<UInt8>) -> (String, String) {
    guard let text = String(validating: Array(line), as: UTF8.self) else { return ("", "") }
    let f = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    let refIndex = f[0] == "CANCEL" ? 2 : 1
    return (f[0], refIndex < f.count ? f[refIndex] : "")
  }
}

// MARK: - Mutated event streams

/// Perturbs a generated stream: drops, duplicates and swaps lines, and inserts random
/// events (cancels of old and new trades, trades with random parties, deposits, actions,
/// out-of-order OPEN/CLOSE/SETTLE, reference events, malformed and non-UTF-8 lines).
enum Mutator {
  typealias H = PropHarness

  static func mutate(_ lines: [ArraySlice<UInt8>], reference: ReferenceData, seed: UInt64) -> [[UInt8]] {
    var rng = H.SplitMix(seed &* 0x9E37_79B9 &+ 3)
    // Per mille of lines dropped, duplicated, swapped, preceded by a random event.
    let intensity = [1, 2, 4][Int(seed % 3)]
    var out: [[UInt8]] = []
    var trades: [(date: String, id: String)] = []
    var openDate = String(reference.calendar.min()!)
    let calendar = Array(Set(reference.calendar)).sorted().map(String.init)
    let accounts = reference.accounts.map(\.id) + ["A000000000", "NEW1"]
    let units = reference.units.map(\.id) + ["99999", "U-NEW"]
    let securities = reference.securities.map(\.code) + ["999999", "S-NEW"]
    let participants = reference.participants.map(\.id) + ["PX", "P-NEW"]
    var fresh = 0
    func pick<T>(_ a: [T]) -> T { a[Int.random(in: 0..<a.count, using: &rng)] }
    func nearDate() -> String {
      let i = calendar.firstIndex(of: openDate) ?? 0
      return calendar[max(0, min(calendar.count - 1, i + Int.random(in: -2...2, using: &rng)))]
    }

    func randomEvent() -> [UInt8] {
      fresh += 1
      let text: String
      switch Int.random(in: 0..<20, using: &rng) {
      case 0, 1, 2:
        // Cancel a trade seen so far: today's, yesterday's (after CLOSE, before SETTLE) or older.
        if let t = trades.isEmpty
          ? nil : trades[trades.count - 1 - Int.random(in: 0..<min(trades.count, 400), using: &rng)]
        {
          text = "CANCEL,\(t.date),\(t.id)"
        } else {
          text = "CANCEL,\(openDate),none"
        }
      case 3, 4, 5:
        let quantity = pick(["100", "1000", "20", "1", "5000000", "0", "-100"])
        let price = pick(["10.00", "1.234", "0", "999999.999", "0.001", "-1"])
        let id = Bool.random(using: &rng) || trades.isEmpty ? "F\(fresh)" : trades.last!.id
        text =
          "TRADE,\(id),\(Bool.random(using: &rng) ? openDate : nearDate()),100000,\(pick(securities)),\(price),"
          + "\(quantity),\(pick(accounts)),\(pick(units)),\(pick(accounts)),\(pick(units))"
        trades.append((openDate, id))
      case 6:
        text =
          "DEPOSIT,\(pick(participants)),\(pick(["0", "-5", "0.01", "100000000.00", "12.5", "99999999.99"]))"
      case 7:
        text =
          "DIVIDEND,\(pick(securities)),\(nearDate()),\(pick(["0.1", "0.000001", "0", "-1", "9999.999999"]))"
      case 8:
        text =
          "BONUS,\(pick(securities)),\(nearDate()),\(pick(["10", "1", "0", "3"])),\(pick(["3", "1", "0", "7"]))"
      case 9: text = "OPEN,\(nearDate())"
      case 10: text = "CLOSE,\(nearDate())"
      case 11: text = "SETTLE,\(nearDate())"
      case 12: text = "PARTICIPANT,\(pick(participants)),Name \(fresh)"
      case 13: text = "UNIT,\(pick(units)),\(pick(participants))"
      case 14: text = "ACCOUNT,\(pick(accounts)),\(pick(["INDIVIDUAL", "INSTITUTION", "individual"]))"
      case 15:
        text = "SECURITY,\(pick(securities)),CNE\(fresh),Name,\(pick(["STOCK", "FUND", "BOND", "CASH"]))"
      case 16:
        text = pick([
          " ", "TRADE", "FOO,1", "OPEN,20260231", "CANCEL,20260105", "OPEN,\(openDate),", "open,\(openDate)",
          "DEPOSIT,P0001,1.234", "CLOSE,2026010", "TRADE,1,\(openDate),093000,600000,10.2300,100,A,U,B,U",
          "OPEN,\(openDate)\r",
        ])
      case 17: return [0xFF, UInt8(ascii: ","), UInt8(ascii: "1")]
      default:
        // A sale by a real holder of far more or exactly what it may hold.
        if let h = reference.holdings.isEmpty ? nil : pick(reference.holdings) {
          text =
            "TRADE,G\(fresh),\(openDate),100000,\(reference.securities[Int(h.security)].code),10.00,"
            + "\(h.quantity),\(pick(accounts)),\(pick(units)),\(reference.accounts[Int(h.account)].id),"
            + "\(pick(units))"
          trades.append((openDate, "G\(fresh)"))
        } else {
          text = "SETTLE,\(openDate)"
        }
      }
      return Array(text.utf8)
    }

    var i = 0
    while i < lines.count {
      let line = Array(lines[i])
      let text = String(decoding: line, as: UTF8.self)
      let fields = text.split(separator: ",", omittingEmptySubsequences: false)
      let structural = text.hasPrefix("OPEN,") || text.hasPrefix("CLOSE,") || text.hasPrefix("SETTLE,")
      if text.hasPrefix("OPEN,") { openDate = String(fields[1]) }
      if fields.first == "TRADE" && fields.count == 11 {
        trades.append((String(fields[2]), String(fields[1])))
      }
      let r = Int.random(in: 0..<1000, using: &rng)
      let k = intensity
      switch r {
      case 0..<(structural ? 2 * k : 6 * k):
        break  // dropped
      case (6 * k)..<(11 * k):
        out.append(line)
        out.append(line)  // duplicated
      case (11 * k)..<(15 * k) where i + 1 < lines.count:
        out.append(Array(lines[i + 1]))  // swapped with the next line
        out.append(line)
        i += 1
      case (15 * k)..<(40 * k):
        out.append(randomEvent())
        out.append(line)
      default:
        out.append(line)
      }
      i += 1
    }
    // A tail of random events after the last line.
    for _ in 0..<20 { out.append(randomEvent()) }
    return out
  }
}

// MARK: - Shared helpers (also used by DeterminismTests)
//
// Temporary folders, generated markets, in-process runs, runs of the real binary in
// child processes, and strict parsing of the SPEC §5 output files. Namespaced in
// `PropHarness` so that other test files of this target can define their own helpers.

enum PropHarness {
  /// The seven SPEC §5 files, in the order the engine renders them is not assumed.
  static let outputNames = [
    "clearing.csv", "settlement.csv", "balances.csv", "holdings.csv", "entitlements.csv", "tax.csv",
    "rejections.csv",
  ]

  // MARK: folders

  static func temporaryDirectory(_ label: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.path + "/tally-props-\(label)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
  }

  static func remove(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

  static func readBytes(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
  }

  // MARK: markets

  struct Market {
    var directory: String
    var summary: MarketSummary
    var reference: ReferenceData
    /// Event lines of events.txt (not blank, not comments); line i has seq i + 1.
    var lines: [ArraySlice<UInt8>]
    var referencePath: String { directory + "/reference" }
    var eventsPath: String { directory + "/events.txt" }
  }

  static func generate(_ options: MarketOptions, into directory: String) throws -> Market {
    let summary = try MarketGenerator.generate(options, into: directory)
    let reference = try FileIO.loadReference(directory + "/reference")
    let lines = try eventLines(directory + "/events.txt")
    return Market(directory: directory, summary: summary, reference: reference, lines: lines)
  }

  static func eventLines(_ path: String) throws -> [ArraySlice<UInt8>] {
    eventLines(bytes: try FileIO.read(path))
  }

  static func eventLines(bytes: [UInt8]) -> [ArraySlice<UInt8>] {
    var lines: [ArraySlice<UInt8>] = []
    for (_, line) in LineReader(bytes) where !EventParser.isSkipped(line) { lines.append(line) }
    return lines
  }

  // MARK: in-process runs

  struct RunResult {
    var files: [(name: String, bytes: [UInt8])]
    var digest: [UInt8]
    var statistics: RunStatistics
    /// The outcome of event i (seq i + 1).
    var outcomes: [Outcome]
    var engine: AnyEngine

    func file(_ name: String) -> [UInt8] { files.first { $0.name == name }?.bytes ?? [] }
  }

  /// Runs `lines` through a fresh engine; `afterEvent(engine, index)` is called after every event.
  static func run(
    reference: ReferenceData, kernel name: String, lines: [ArraySlice<UInt8>],
    afterEvent: ((AnyEngine, Int, Outcome) -> Void)? = nil
  ) throws -> RunResult {
    let engine = try AnyEngine(kernel: name, reference: reference)
    var outcomes: [Outcome] = []
    outcomes.reserveCapacity(lines.count)
    for (i, line) in lines.enumerated() {
      let outcome = engine.apply(line: line, seq: Int64(i + 1))
      outcomes.append(outcome)
      afterEvent?(engine, i, outcome)
    }
    return RunResult(
      files: engine.outputFiles(), digest: engine.stateDigest, statistics: engine.statistics,
      outcomes: outcomes,
      engine: engine)
  }

  /// Applies events 0..<k on `kernel`, hands every canonical row of that state to a fresh
  /// `resumeKernel` (the way a store would: rows written by one version, read by another),
  /// applies the rest there, and returns the final outputs and digest.
  static func resumedRun(
    reference: ReferenceData, lines: [ArraySlice<UInt8>], k: Int, kernel: String, resumeKernel: String,
    file: StaticString = #filePath, line: UInt = #line
  ) throws -> (files: [(name: String, bytes: [UInt8])], digest: [UInt8]) {
    let first = try AnyEngine(kernel: kernel, reference: reference)
    for i in 0..<k { first.apply(line: lines[i], seq: Int64(i + 1)) }
    let second = try AnyEngine(kernel: resumeKernel, reference: reference, restoringRows: first.encodedRows())
    XCTAssertEqual(second.appliedSeq, Int64(k), "restored appliedSeq", file: file, line: line)
    XCTAssertEqual(
      second.stateDigest, first.stateDigest, "digest right after restore at k=\(k)", file: file, line: line)
    XCTAssertTrue(
      second.outputFiles().elementsEqual(first.outputFiles()) { $0.name == $1.name && $0.bytes == $1.bytes },
      "outputs right after restore at k=\(k)", file: file, line: line)
    for i in k..<lines.count { second.apply(line: lines[i], seq: Int64(i + 1)) }
    return (second.outputFiles(), second.stateDigest)
  }

  /// Names the output files that differ (or are missing) between two runs; empty when all are equal.
  static func differingFiles(
    _ a: [(name: String, bytes: [UInt8])], _ b: [(name: String, bytes: [UInt8])]
  ) -> [String] {
    var names: [String] = []
    for name in outputNames {
      let x = a.first { $0.name == name }
      let y = b.first { $0.name == name }
      if x == nil || y == nil || x!.bytes != y!.bytes { names.append(name) }
    }
    if a.count != b.count { names.append("file count \(a.count) vs \(b.count)") }
    return names
  }

  // MARK: the real binary

  static var binaryPath: String {
    if let path = ProcessInfo.processInfo.environment["TALLY_BIN"], !path.isEmpty { return path }
    // <root>/Tests/TallyEngineTests/PropHarness.swift -> <root>/.build/debug/tally
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
    return root.path + "/.build/debug/tally"
  }

  struct ChildRun {
    var status: Int32
    var stdout: String
    var stderr: String
    var outDirectory: String
    /// True when the process ended by a signal; `status` is then the signal's number.
    var uncaughtSignal = false
    /// The digest line the binary printed (`--digest`), trimmed.
    var digest: String { stdout.trimmingCharacters(in: .whitespacesAndNewlines) }
  }

  /// The environment for a child: ours, without SWIFT_DETERMINISTIC_HASHING, so every child
  /// gets its own random hash seed and Dictionary/Set order differs between them.
  static var childEnvironment: [String: String] {
    var environment = ProcessInfo.processInfo.environment
    environment.removeValue(forKey: "SWIFT_DETERMINISTIC_HASHING")
    return environment
  }

  /// Starts `tally run --reference R --out O --digest EVENTS` once per output folder, all
  /// at the same time (separate processes), and waits for all of them.
  static func runBinary(reference: String, events: [String], outs: [String], extra: [String] = []) throws
    -> [ChildRun]
  {
    let binary = binaryPath
    guard FileManager.default.isExecutableFile(atPath: binary) else {
      throw HarnessError("tally binary not found at \(binary); build it (swift build) or set TALLY_BIN")
    }
    var running: [(Process, String, String, String)] = []
    for out in outs {
      let process = Process()
      process.executableURL = URL(fileURLWithPath: binary)
      process.arguments = ["run", "--reference", reference, "--out", out, "--digest"] + extra + events
      process.environment = childEnvironment
      let stdoutPath = out + ".stdout"
      let stderrPath = out + ".stderr"
      _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
      _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
      process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
      process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
      process.standardInput = FileHandle.nullDevice
      try process.run()
      running.append((process, out, stdoutPath, stderrPath))
    }
    var results: [ChildRun] = []
    for (process, out, stdoutPath, stderrPath) in running {
      process.waitUntilExit()
      results.append(
        ChildRun(
          status: process.terminationStatus,
          stdout: String(decoding: try readBytes(stdoutPath), as: UTF8.self),
          stderr: String(decoding: try readBytes(stderrPath), as: UTF8.self), outDirectory: out,
          uncaughtSignal: process.terminationReason == .uncaughtSignal))
    }
    return results
  }

  struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
  }

  // MARK: CSV and numbers

  /// Rows of a SPEC §5 file, split at commas; `problems` gets a note if the header is wrong,
  /// the file does not end with LF, or it contains CR.
  static func csvRows(_ bytes: [UInt8], header: String, problems: inout [String], name: String) -> [[String]]
  {
    let text = String(decoding: bytes, as: UTF8.self)
    if bytes.last != 10 { problems.append("\(name): does not end with LF") }
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    if lines.last == "" { lines.removeLast() }
    guard let first = lines.first else {
      problems.append("\(name): empty")
      return []
    }
    if first != header { problems.append("\(name): header \(first)") }
    let width = header.split(separator: ",").count
    var rows: [[String]] = []
    for line in lines.dropFirst() {
      let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
      if fields.count != width {
        problems.append("\(name): row with \(fields.count) fields: \(line)")
        continue
      }
      rows.append(fields)
    }
    return rows
  }

  /// An output money amount (SPEC §1: exactly 2 fraction digits, `-` when negative, no
  /// leading zeros, zero is `0.00`) in fen; nil when it breaks the format.
  static func outputFen(_ text: String) -> Int64? {
    var bytes = Array(text.utf8)
    var negative = false
    if bytes.first == UInt8(ascii: "-") {
      negative = true
      bytes.removeFirst()
    }
    guard bytes.count >= 4, bytes[bytes.count - 3] == UInt8(ascii: ".") else { return nil }
    let whole = bytes[..<(bytes.count - 3)]
    let fraction = bytes[(bytes.count - 2)...]
    guard whole.allSatisfy(isDigit), fraction.allSatisfy(isDigit) else { return nil }
    if whole.count > 1 && whole.first == UInt8(ascii: "0") { return nil }
    guard whole.count <= 16 else { return nil }
    var value: Int64 = 0
    for b in whole { value = value * 10 + Int64(b - 48) }
    for b in fraction { value = value * 10 + Int64(b - 48) }
    if negative && value == 0 { return nil }  // "-0.00" is not an output amount
    return negative ? -value : value
  }

  /// An input money amount (SPEC §1 `-?[0-9]{1,13}(\.[0-9]{1,2})?`) in fen.
  static func inputFen(_ text: String) -> Int64? {
    var bytes = Array(text.utf8)
    var negative = false
    if bytes.first == UInt8(ascii: "-") {
      negative = true
      bytes.removeFirst()
    }
    let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
    guard parts.count == 1 || parts.count == 2, let whole = parts.first, (1...13).contains(whole.count),
      whole.allSatisfy(isDigit)
    else { return nil }
    var value: Int64 = 0
    for b in whole { value = value * 10 + Int64(b - 48) }
    var fractionDigits = 0
    if parts.count == 2 {
      let fraction = parts[1]
      guard (1...2).contains(fraction.count), fraction.allSatisfy(isDigit) else { return nil }
      for b in fraction { value = value * 10 + Int64(b - 48) }
      fractionDigits = fraction.count
    }
    for _ in fractionDigits..<2 { value *= 10 }
    return negative ? -value : value
  }

  /// A plain output integer (quantities): `-?[0-9]+` without leading zeros.
  static func integer(_ text: String) -> Int64? {
    let bytes = Array(text.utf8)
    let digits = bytes.first == UInt8(ascii: "-") ? bytes.dropFirst() : bytes[...]
    guard !digits.isEmpty, digits.allSatisfy(isDigit), digits.count <= 18 else { return nil }
    if digits.count > 1 && digits.first == UInt8(ascii: "0") { return nil }
    return Int64(text)
  }

  static func isDigit(_ b: UInt8) -> Bool { b >= 48 && b <= 57 }

  /// Byte-wise order of identifiers (SPEC §1).
  static func bytesLess(_ a: String, _ b: String) -> Bool {
    Array(a.utf8).lexicographicallyPrecedes(Array(b.utf8))
  }

  static func bytesLess(_ a: [String], _ b: [String]) -> Bool {
    for (x, y) in zip(a, b) where x != y { return bytesLess(x, y) }
    return a.count < b.count
  }

  // MARK: deterministic randomness for the tests themselves

  struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
  }
}
