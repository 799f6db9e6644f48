// The static part of the market: calendar, securities, participants, units, accounts.
// Holdings are written by `Run` because they also seed its position book.

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

enum SecKind: UInt8 {
  case stock = 0
  case fund = 1
  case bond = 2

  var word: String {
    switch self {
    case .stock: return "STOCK"
    case .fund: return "FUND"
    case .bond: return "BOND"
    }
  }
}

struct SecurityInfo {
  var code: Int  // six digits, written zero-padded (019xxx)
  var kind: SecKind
  var star: Bool
  var isin: String
  var name: String
  var weight: Int  // relative trading activity
  var lot: Int  // board lot: 100 shares, 10 bonds
  var tick: Int  // price step in 0.001 CNY: 10 for STOCK, 1 for FUND and BOND
  var openPrice: Int  // first reference price, 0.001 CNY
}

struct Reference {
  var calendar: [Int32] = []
  var securities: [SecurityInfo] = []
  var participantNames: [String] = []
  var unitCodes: [Int32] = []
  var unitParticipant: [Int32] = []
  var individuals = 0
  var institutions = 0
  var accountSalt: UInt64 = 0
  var unitSalt: UInt64 = 0

  /// Days after the run that calendar.csv also lists, so every day has a next trading day.
  static let extraDays = 6

  init(options o: MarketOptions, rng: inout Xoshiro256) {
    accountSalt = rng.next()
    unitSalt = rng.next()
    calendar = Reference.makeCalendar(o)
    makeSecurities(o, &rng)
    makeParticipants(o, &rng)
    institutions = max(1, o.accounts * 15 / 100)
    individuals = o.accounts - institutions
  }

  // MARK: calendar

  /// Weekdays from the start date, skipping fixed-date exchange holidays; when none
  /// of those falls inside the span, one weekday early in the run is closed instead
  /// (an unscheduled one-day closure), so that a settle date that is not the next
  /// calendar weekday is always exercised.
  static func makeCalendar(_ o: MarketOptions) -> [Int32] {
    let start = CivilDate.dayNumber(o.startDate)!
    let need = o.days + extraDays
    func build(skipCandidate: Int?) -> (days: [Int32], skippedFixed: Bool) {
      var out: [Int32] = []
      var day = start
      var candidate = 0
      var skippedFixed = false
      while out.count < need {
        if !CivilDate.isWeekend(day) {
          if day != start && CivilDate.isFixedHoliday(day) {
            skippedFixed = true
          } else {
            if candidate != skipCandidate { out.append(CivilDate.yyyymmdd(day)) }
            candidate += 1
          }
        }
        day += 1
      }
      return (out, skippedFixed)
    }
    let plain = build(skipCandidate: nil)
    if plain.skippedFixed { return plain.days }
    return build(skipCandidate: min(2, o.days)).days
  }

  // MARK: securities

  private mutating func makeSecurities(_ o: MarketOptions, _ rng: inout Xoshiro256) {
    let n = o.securities
    let nFund = n >= 3 ? max(1, n * 8 / 100) : 0
    let nBond = n >= 3 ? max(1, n * 6 / 100) : 0
    let nStock = n - nFund - nBond
    let nStar = nStock >= 4 ? max(1, nStock * 15 / 100) : 0
    let nMain = nStock - nStar
    let n600 = (nMain + 1) / 2
    let n601 = (nMain - n600 + 1) / 2
    let n603 = nMain - n600 - n601

    func codes(_ base: Int, _ count: Int) -> [Int] {
      var pool = Array(0..<1000)
      for i in 0..<count {
        let j = i + rng.below(1000 - i)
        pool.swapAt(i, j)
      }
      return pool[0..<count].sorted().map { base + $0 }
    }

    let stockNames = Reference.distinctPairs(
      count: nStock, Words.prefixes.count, Words.industries.count, &rng)
    let fundNames = Reference.distinctPairs(count: nFund, Words.prefixes.count, Words.fundThemes.count, &rng)
    var list: [SecurityInfo] = []
    var stockIndex = 0
    let yy = Int(o.startDate) / 10_000 % 100
    func addStocks(_ base: Int, _ count: Int, star: Bool) {
      for code in codes(base, count) {
        let (a, b) = stockNames[stockIndex]
        stockIndex += 1
        let fen =
          star
          ? 1_000 + rng.below(10_000) : 250 + rng.below(3_000) + (rng.below(10) == 0 ? rng.below(20_000) : 0)
        list.append(
          SecurityInfo(
            code: code, kind: .stock, star: star, isin: "", name: Words.prefixes[a] + Words.industries[b],
            weight: 0, lot: 100, tick: 10, openPrice: fen * 10))
      }
    }
    addStocks(600_000, n600, star: false)
    addStocks(601_000, n601, star: false)
    addStocks(603_000, n603, star: false)
    addStocks(688_000, nStar, star: true)
    for (i, code) in codes(510_000, nFund).enumerated() {
      let (a, b) = fundNames[i]
      list.append(
        SecurityInfo(
          code: code, kind: .fund, star: false, isin: "",
          name: Words.prefixes[a] + Words.fundThemes[b] + "ETF",
          weight: 0, lot: 100, tick: 1, openPrice: 600 + rng.below(4_400)))
    }
    for (i, code) in codes(19_000, nBond).enumerated() {
      let name =
        Words.bondKinds[i % Words.bondKinds.count] + twoDigits(yy) + twoDigits(i / Words.bondKinds.count + 1)
      list.append(
        SecurityInfo(
          code: code, kind: .bond, star: false, isin: "", name: name,
          weight: 0, lot: 10, tick: 1, openPrice: 95_000 + rng.below(10_000)))
    }
    list.sort { $0.code < $1.code }
    for i in list.indices {
      let r = rng.below(100)
      list[i].weight = (10 + r * r) / (list[i].kind == .bond ? 4 : 1) + 1
      list[i].isin = ISIN.make(number: 50_000 + i * 4_099 + rng.below(4_099))
    }
    securities = list
  }

  private func twoDigits(_ v: Int) -> String {
    let w = v % 100
    return w < 10 ? "0\(w)" : "\(w)"
  }

  /// `count` distinct (a, b) pairs with a < na, b < nb, in random order.
  static func distinctPairs(count: Int, _ na: Int, _ nb: Int, _ rng: inout Xoshiro256) -> [(Int, Int)] {
    var pool = Array(0..<(na * nb))
    var out: [(Int, Int)] = []
    out.reserveCapacity(count)
    for i in 0..<count {
      if i < pool.count {
        let j = i + rng.below(pool.count - i)
        pool.swapAt(i, j)
        out.append((pool[i] / nb, pool[i] % nb))
      } else {
        out.append((rng.below(na), rng.below(nb)))
      }
    }
    return out
  }

  // MARK: participants and units

  private mutating func makeParticipants(_ o: MarketOptions, _ rng: inout Xoshiro256) {
    let names = Reference.distinctPairs(
      count: o.participants, Words.prefixes.count, Words.brokerMiddles.count, &rng)
    participantNames = names.map { Words.prefixes[$0.0] + Words.brokerMiddles[$0.1] + "证券" }
    var owners: [Int32] = []
    for p in 0..<o.participants {
      for _ in 0..<(2 + rng.below(3)) { owners.append(Int32(p)) }
    }
    for i in owners.indices.dropLast() {
      owners.swapAt(i, i + rng.below(owners.count - i))
    }
    var code = 10_000
    for owner in owners {
      code += 1 + rng.below(20)
      unitCodes.append(Int32(code))
      unitParticipant.append(owner)
    }
  }

  // MARK: accounts

  var accountCount: Int { individuals + institutions }

  /// `A` + 9 digits for an individual (index < individuals), `B` + 9 digits for an
  /// institution; numbers ascend with the index so file order is byte order.
  @inline(__always)
  func accountNumber(_ index: Int) -> (prefix: UInt8, number: Int) {
    if index < individuals {
      let j = index
      return (UInt8(ascii: "A"), 100_000_000 + j * 37 + Int(mix64(accountSalt, UInt64(j)) % 37))
    }
    let j = index - individuals
    return (UInt8(ascii: "B"), 100_000_000 + j * 37 + Int(mix64(accountSalt ^ 0x5A5A, UInt64(j)) % 37))
  }

  /// The trading unit through which an account usually trades (its broker's seat).
  @inline(__always)
  func homeUnit(_ account: Int) -> Int {
    Int(mix64(unitSalt, UInt64(account)) % UInt64(unitCodes.count))
  }
}

/// Creates a directory and its parents (like `mkdir -p`).
func makeDirectories(_ path: String) throws {
  var prefix = path.hasPrefix("/") ? "/" : ""
  for part in path.split(separator: "/", omittingEmptySubsequences: true) {
    prefix += part
    if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
      throw MarketGeneratorError.io(path: prefix, reason: ByteSink.errnoText())
    }
    prefix += "/"
  }
  var st = stat()
  if stat(path, &st) != 0 || (st.st_mode & S_IFMT) != S_IFDIR {
    throw MarketGeneratorError.io(path: path, reason: "not a directory")
  }
}
