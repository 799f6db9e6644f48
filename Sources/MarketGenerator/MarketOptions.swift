// The public face of the generator: options, the summary of what was written, errors.

/// What market to generate. The same options give byte-identical files in any process.
public struct MarketOptions: Sendable, Equatable {
  /// Seeds every random choice (xoshiro256** expanded by SplitMix64).
  public var seed: UInt64
  /// Trading days with events (1...1000).
  public var days: Int
  /// TRADE lines per day, not counting the deliberately bad ones (1...10,000,000).
  public var tradesPerDay: Int
  /// Investor accounts, about 85% INDIVIDUAL and 15% INSTITUTION (2...10,000,000).
  public var accounts: Int
  /// Securities: mostly STOCK, some FUND and BOND (1...2000).
  public var securities: Int
  /// Clearing participants P0001... with 2 to 4 trading units each (1...1000).
  public var participants: Int
  /// YYYYMMDD of the first trading day: a real weekday between 1991 and 2099.
  public var startDate: Int32
  /// Deliberately bad event lines per million trades (0...100,000; default 1,000 = 0.1%).
  /// Whenever this is above 0, the first day carries at least one line of each kind.
  public var badLinesPerMillion: Int
  /// Valid CANCEL lines per million trades (0...100,000; default 1,000).
  public var cancelsPerMillion: Int
  /// Let one participant default on an early trade date and cure it by a later
  /// deposit (needs enough days: a default on trade date T is cured at SETTLE T+2).
  public var stageDefault: Bool
  /// Write a few DIVIDEND and BONUS events with record dates inside the run.
  public var corporateActions: Bool
  /// After the last day, write OPEN and SETTLE of the next trading day so the
  /// last trade date settles too.
  public var settleLastDay: Bool

  public init(
    seed: UInt64, days: Int = 5, tradesPerDay: Int = 10_000, accounts: Int = 1_000,
    securities: Int = 50, participants: Int = 6, startDate: Int32 = 20_260_105
  ) {
    self.seed = seed
    self.days = days
    self.tradesPerDay = tradesPerDay
    self.accounts = accounts
    self.securities = securities
    self.participants = participants
    self.startDate = startDate
    self.badLinesPerMillion = 1_000
    self.cancelsPerMillion = 1_000
    self.stageDefault = true
    self.corporateActions = true
    self.settleLastDay = true
  }

  /// Throws `MarketGeneratorError.invalidOption` naming the first bad option.
  public func validate() throws {
    func check(_ ok: Bool, _ message: @autoclosure () -> String) throws {
      if !ok { throw MarketGeneratorError.invalidOption(message()) }
    }
    try check((1...1000).contains(days), "days must be 1...1000, got \(days)")
    try check(
      (1...10_000_000).contains(tradesPerDay), "tradesPerDay must be 1...10000000, got \(tradesPerDay)")
    try check((2...10_000_000).contains(accounts), "accounts must be 2...10000000, got \(accounts)")
    try check((1...2000).contains(securities), "securities must be 1...2000, got \(securities)")
    try check((1...1000).contains(participants), "participants must be 1...1000, got \(participants)")
    try check(
      (0...100_000).contains(badLinesPerMillion),
      "badLinesPerMillion must be 0...100000, got \(badLinesPerMillion)")
    try check(
      (0...100_000).contains(cancelsPerMillion),
      "cancelsPerMillion must be 0...100000, got \(cancelsPerMillion)")
    guard let day = CivilDate.dayNumber(startDate) else {
      throw MarketGeneratorError.invalidOption("startDate \(startDate) is not a real YYYYMMDD date")
    }
    try check(
      (1991_01_01...2099_12_31).contains(startDate),
      "startDate must be between 19910101 and 20991231, got \(startDate)")
    try check(!CivilDate.isWeekend(day), "startDate \(startDate) is a weekend day, not a trading day")
  }
}

/// Counts of the deliberately bad lines, by kind. Each is rejected by a correct engine.
public struct BadLineCounts: Sendable, Equatable {
  /// TRADE with a price of 4 fraction digits (`10.2001`): `MALFORMED`.
  public var malformedPrice = 0
  /// TRADE whose buy account does not exist (`A0...`): `UNKNOWN_ACCOUNT`.
  public var unknownAccount = 0
  /// TRADE reusing the trade_id of an earlier applied trade of the day: `DUPLICATE_TRADE`.
  public var duplicateTradeId = 0
  /// TRADE selling far more than the seller has available: `INSUFFICIENT_HOLDINGS`.
  public var oversell = 0
  /// CANCEL of a trade_id that no trade of the day has: `UNKNOWN_TRADE`.
  public var unknownCancel = 0

  public init() {}

  public var total: Int { malformedPrice + unknownAccount + duplicateTradeId + oversell + unknownCancel }
}

/// What `MarketGenerator.generate` wrote.
public struct MarketSummary: Sendable, Equatable {
  /// Event lines of events.txt (every line that is not blank and not a `#` comment).
  public var eventLines = 0
  /// `#` comment lines of events.txt.
  public var commentLines = 0
  /// Valid TRADE lines (cancelled ones included, bad ones not).
  public var trades = 0
  /// Valid CANCEL lines (same-day reversals of earlier trades).
  public var cancels = 0
  /// Deliberately bad lines (TRADE or CANCEL), all of which the engine must reject.
  public var badLines = 0
  public var badLineCounts = BadLineCounts()
  public var deposits = 0
  public var dividends = 0
  public var bonuses = 0
  /// The trading days with TRADE events, in order.
  public var tradingDays: [Int32] = []
  /// The day opened and settled after the run (`settleLastDay`), if any.
  public var finalSettleDay: Int32?
  /// Every date of calendar.csv, in order.
  public var calendar: [Int32] = []
  public var securities = 0
  public var participants = 0
  public var units = 0
  public var individualAccounts = 0
  public var institutionAccounts = 0
  /// Lines of holdings.csv (opening lots).
  public var holdingLots = 0
  /// Settlement defaults the generator expects the engine to record (SPEC §4.3)
  /// and how many of them it expects to be cured by a later deposit.
  public var expectedDefaults = 0
  public var expectedCures = 0
  /// Block purchases added to stage a default (counted in `trades` too).
  public var blockTrades = 0
  /// Trade slots given up because no account had shares to sell (normally 0).
  public var skippedTrades = 0
  /// Size of events.txt in bytes.
  public var eventBytes = 0

  public init() {}
}

public enum MarketGeneratorError: Error, Equatable, CustomStringConvertible {
  /// An option is out of range; the message names it and its value.
  case invalidOption(String)
  /// A file or directory could not be created or written.
  case io(path: String, reason: String)

  public var description: String {
    switch self {
    case .invalidOption(let message): return "invalid market option: \(message)"
    case .io(let path, let reason): return "cannot write \(path): \(reason)"
    }
  }
}
