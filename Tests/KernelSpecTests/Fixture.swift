// A small fixture for the SPEC tests: a default reference folder held in memory,
// parsed by the real ReferenceParser, and a runner that feeds event text through
// the real LineReader / EventParser / Engine and returns the seven SPEC §5 files.
//
// Every expected number in these tests is worked out by hand from SPEC.md, in a
// comment beside it; none is copied from the program's output.
//
// Default reference (short identifiers on purpose: SPEC §1 says nothing checks
// their shape, and they keep the hand computations readable):
//   calendar     20260105..20260109, 20260112..20260116 (two weeks of weekdays)
//   securities   600000 STOCK, 510300 FUND, 019547 BOND
//   participants P1, P2, P3; units U1->P1, U1B->P1, U2->P2, U3->P3
//   accounts     A1..A4 INDIVIDUAL, B1, B2 INSTITUTION
//   holdings     see `defaultHoldings` (most tests give their own)
//
// STOCK fees in force in 2026 (SPEC §2): handling 0.0000341 both, regulatory
// 0.00002 both, transfer 0.00001 both, stamp 0.0005 sell. For a 10.00 x 1000
// trade (amount 10000.00): handling 0.341 -> 0.34, regulatory 0.20, transfer
// 0.10, stamp 5.00 (sell side only).
import KernelAPI
import TallyEngine
import TallyFormat
import XCTest

enum Header {
  static let clearing =
    "trade_date,settle_date,participant,security,buy_quantity,sell_quantity,buy_amount,sell_amount,handling_fee,regulatory_fee,transfer_fee,stamp_duty"
  static let settlement = "trade_date,settle_date,participant,net_amount,status,settled_on"
  static let balances = "participant,balance"
  static let holdings = "account,security,quantity,available,withheld"
  static let entitlements = "security,record_date,pay_date,account,kind,value"
  static let tax = "trade_date,trade_id,account,security,quantity,tax"
  static let rejections = "seq,record,ref,reason"
}

/// A CSV file as the engine must write it: header, rows, LF after every line.
func csv(_ header: String, _ rows: String...) -> String { csv(header, rows) }
func csv(_ header: String, _ rows: [String]) -> String {
  ([header] + rows).map { $0 + "\n" }.joined()
}

/// balances.csv with P1, P2, P3 (every participant, by participant).
func balances(_ p1: String = "0.00", _ p2: String = "0.00", _ p3: String = "0.00") -> String {
  csv(Header.balances, "P1,\(p1)", "P2,\(p2)", "P3,\(p3)")
}

struct Fixture {
  static let defaultCalendar = [
    "20260105", "20260106", "20260107", "20260108", "20260109",
    "20260112", "20260113", "20260114", "20260115", "20260116",
  ]
  static let defaultHoldings = [
    "A1,600000,1000,20250101",
    "A1,510300,1000,20250101",
    "A1,019547,1000,20250101",
    "B1,600000,2000,20250101",
  ]

  var files: [String: String] = [
    "calendar.csv": "date\n" + Fixture.defaultCalendar.map { $0 + "\n" }.joined(),
    "securities.csv": """
    security,isin,name,kind
    600000,CNE0000001D4,浦发银行,STOCK
    510300,CNE100000RF2,沪深300ETF,FUND
    019547,CNE1000052B8,国债2407,BOND

    """,
    "participants.csv": "participant,name\nP1,Member One\nP2,Member Two\nP3,Member Three\n",
    "units.csv": "unit,participant\nU1,P1\nU1B,P1\nU2,P2\nU3,P3\n",
    "accounts.csv": """
    account,kind
    A1,INDIVIDUAL
    A2,INDIVIDUAL
    A3,INDIVIDUAL
    A4,INDIVIDUAL
    B1,INSTITUTION
    B2,INSTITUTION

    """,
    "holdings.csv": "account,security,quantity,acquired_date\n"
      + Fixture.defaultHoldings.map { $0 + "\n" }.joined(),
  ]

  static var standard: Fixture { Fixture() }

  func with(_ name: String, _ text: String?) -> Fixture {
    var copy = self
    copy.files[name] = text
    return copy
  }
  func with(holdings rows: [String]) -> Fixture {
    with("holdings.csv", "account,security,quantity,acquired_date\n" + rows.map { $0 + "\n" }.joined())
  }
  func with(calendar dates: [String]) -> Fixture {
    with("calendar.csv", "date\n" + dates.map { $0 + "\n" }.joined())
  }
  func with(fees rows: [String]) -> Fixture {
    with("fees.csv", "kind,fee,side,rate,effective_date\n" + rows.map { $0 + "\n" }.joined())
  }

  func reference() throws(InputError) -> ReferenceData {
    try ReferenceParser.parse(prefix: "ref") { name in files[name].map { Array($0.utf8) } }
  }

  /// The same, holdings.csv handed over as memory the parser reads through a pointer (as
  /// a mapped file is; `FileIO.loadReference` maps it).
  func referenceThroughAPointer() throws(InputError) -> ReferenceData {
    let holdings = Array((files["holdings.csv"] ?? "").utf8)
    let result: Result<ReferenceData, InputError> = holdings.withUnsafeBytes { raw in
      Result { () throws(InputError) in
        try ReferenceParser.parse(
          prefix: "ref", contents: { name in files[name].map { Array($0.utf8) } },
          mappedHoldings: files["holdings.csv"] == nil ? nil : raw)
      }
    }
    return try result.get()
  }

  /// Runs one event file given as text.
  func run(_ events: String, file: StaticString = #filePath, line: UInt = #line) throws -> Run {
    try run(files: [Array(events.utf8)], file: file, line: line)
  }

  /// Runs several event files given as bytes; seq runs on across them (SPEC §3).
  /// Every kernel version runs them (N-version: each hand-computed test checks them
  /// all); they must agree on every outcome, every event's effects, the seven files and
  /// the state digest. The run returned is the first version's.
  func run(files eventFiles: [[UInt8]], file: StaticString = #filePath, line: UInt = #line) throws -> Run {
    let ref = try reference()
    let lines = EmbeddedRun.lines(of: eventFiles)
    var first: EmbeddedRunResult?
    for version in KernelCatalog.versions {
      let r = try EmbeddedRun.run(kernel: version.name, reference: ref, lines: lines, effects: true)
      XCTAssertEqual(r.selfCheck, [], "self-check of \(version.name)", file: file, line: line)
      XCTAssertEqual(r.files.count, 7, file: file, line: line)
      // The same lines in blocks, as `tally run` applies them (TRADEs grouped).
      let g = try EmbeddedRun.run(kernel: version.name, reference: ref, lines: lines, grouped: true)
      XCTAssertEqual(g.outcomes, r.outcomes, "\(version.name) in blocks: outcomes", file: file, line: line)
      XCTAssertEqual(
        g.files.map(\.bytes), r.files.map(\.bytes), "\(version.name) in blocks: outputs", file: file,
        line: line)
      XCTAssertEqual(
        g.stateDigest, r.stateDigest, "\(version.name) in blocks: digest", file: file, line: line)
      guard let f = first else {
        first = r
        continue
      }
      XCTAssertEqual(
        r.outcomes, f.outcomes, "\(version.name) vs \(f.kernel): outcomes", file: file, line: line)
      for (a, b) in zip(r.files, f.files) {
        XCTAssertEqual(
          String(decoding: a.bytes, as: UTF8.self), String(decoding: b.bytes, as: UTF8.self),
          "\(version.name) vs \(f.kernel): \(a.name)", file: file, line: line)
      }
      XCTAssertEqual(
        r.snapshot, f.snapshot, "\(version.name) vs \(f.kernel): snapshot", file: file, line: line)
      if let i = zip(r.effectsPerEvent, f.effectsPerEvent).enumerated().first(where: {
        $0.element.0 != $0.element.1
      })?.offset {
        XCTFail("\(version.name) vs \(f.kernel): effects of seq \(i + 1) differ", file: file, line: line)
      }
      XCTAssertEqual(
        r.stateDigest, f.stateDigest, "\(version.name) vs \(f.kernel): state digest", file: file, line: line)
    }
    guard let f = first else { preconditionFailure("no kernel versions") }
    let out = Dictionary(
      uniqueKeysWithValues: f.files.map { ($0.name, String(decoding: $0.bytes, as: UTF8.self)) })
    return Run(statistics: f.statistics, outcomes: f.outcomes, files: out)
  }
}

struct Run {
  var statistics: RunStatistics
  var outcomes: [Outcome]
  var files: [String: String]

  var clearing: String { files["clearing.csv"] ?? "<missing>" }
  var settlement: String { files["settlement.csv"] ?? "<missing>" }
  var balances: String { files["balances.csv"] ?? "<missing>" }
  var holdings: String { files["holdings.csv"] ?? "<missing>" }
  var entitlements: String { files["entitlements.csv"] ?? "<missing>" }
  var tax: String { files["tax.csv"] ?? "<missing>" }
  var rejections: String { files["rejections.csv"] ?? "<missing>" }

  /// One word per event in seq order: "OK" when applied, else the reason code.
  var codes: [String] {
    outcomes.map {
      switch $0 {
      case .applied: return "OK"
      case .rejected(let r): return r.code
      }
    }
  }
}
