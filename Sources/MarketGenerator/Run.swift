// One generation run: the position book that keeps sells valid, the cash model that
// predicts settlement, and the event stream.

/// One account's position in one security, as the engine will see it (SPEC §4.2),
/// except that shares withheld from a defaulter are simply not `available` here.
struct Position {
  var account: Int32
  var security: Int32
  /// Next position of the same account (a singly linked list from `head`), or -1.
  var next: Int32
  /// What the account may sell now.
  var available: Int
  /// STOCK and FUND bought today: available from the next OPEN.
  var pending: Int
}

/// A valid trade of the current (or, until SETTLE, the previous) trade date.
struct TradeRecord {
  var id: Int32
  var buyPosition: Int32
  var sellPosition: Int32
  var quantity: Int32
  var price: Int32  // 0.001 CNY
  var buyUnit: Int32
  var sellUnit: Int32
  var cancelled: Bool
}

/// A settlement default the generator predicts (SPEC §4.3 step 3).
struct PredictedDefault {
  var participant: Int
  var owed: Int  // fen
  var withheld: [(position: Int32, quantity: Int)]
  var cured: Bool
}

enum CorporateAction {
  case dividend(perShare: Int)  // 0.0001 CNY
  case bonus(base: Int, bonus: Int)
}

struct PlannedAction {
  var security: Int
  var recordIndex: Int  // index into the calendar
  var action: CorporateAction
}

/// Built-in fee rates (SPEC §2) in force on a date, in units of 10^-7.
struct FeeRates {
  var stockHandling = 0
  var regulatory = 0
  var transfer = 0
  var stamp = 0
  var fundHandling = 40
  var bondHandling = 1

  init(date: Int32) {
    stockHandling = date >= 2023_08_28 ? 341 : 487
    regulatory = 200
    transfer = date >= 2022_04_29 ? 100 : 200
    stamp = date >= 2023_08_28 ? 5_000 : 10_000
    fundHandling = 400
    bondHandling = 10
  }

  @inline(__always)
  static func fee(_ amount: Int, _ rate: Int) -> Int { (amount * rate + 5_000_000) / 10_000_000 }

  /// The fees of one side of a trade, each rounded half-up to the fen as SPEC §2 says.
  @inline(__always)
  func fees(_ kind: SecKind, amount: Int, sell: Bool) -> Int {
    switch kind {
    case .stock:
      var f =
        FeeRates.fee(amount, stockHandling) + FeeRates.fee(amount, regulatory)
        + FeeRates.fee(amount, transfer)
      if sell { f += FeeRates.fee(amount, stamp) }
      return f
    case .fund: return FeeRates.fee(amount, fundHandling)
    case .bond: return FeeRates.fee(amount, bondHandling)
    }
  }
}

struct Run {
  let options: MarketOptions
  var rng: Xoshiro256
  let ref: Reference
  var summary = MarketSummary()

  // Securities, struct-of-arrays for the hot loop.
  let secKind: [SecKind]
  let secCode: [Int]
  let secLot: [Int]
  let secTick: [Int]
  var price: [Int]  // last price, 0.001 CNY
  var priceLow: [Int]  // today's limit-down
  var priceHigh: [Int]  // today's limit-up
  var drift: [Int]  // today's bias: -1, 0, 1
  let cumulativeWeight: [Int]

  // The position book.
  var positions: [Position] = []
  var head: [Int32]
  var holders: [[Int32]]
  var pendingPositions: [Int32] = []
  let marketMakers: Int
  var marketMakerPositions: [Int32] = []  // [security * marketMakers + m]

  // Cash model (fen).
  var balance: [Int]
  var net: [Int]  // of the trade date being generated, then awaiting SETTLE
  var defaults: [PredictedDefault] = []
  var defaultStaged = false

  // Today.
  var trades: [TradeRecord] = []
  var nextTradeId = 1
  var badCounter = 0
  var fees = FeeRates(date: 0)
  var dateIndex = 0

  // Corporate actions and bonus shares waiting for their pay date.
  var actions: [PlannedAction] = []
  var bonusCredits: [(payIndex: Int, position: Int32, quantity: Int)] = []

  init(options: MarketOptions) {
    self.options = options
    var rng = Xoshiro256(seed: options.seed)
    let ref = Reference(options: options, rng: &rng)
    self.ref = ref
    self.rng = rng
    secKind = ref.securities.map(\.kind)
    secCode = ref.securities.map(\.code)
    secLot = ref.securities.map(\.lot)
    secTick = ref.securities.map(\.tick)
    price = ref.securities.map(\.openPrice)
    priceLow = price
    priceHigh = price
    drift = [Int](repeating: 0, count: ref.securities.count)
    var cum: [Int] = []
    var total = 0
    for s in ref.securities {
      total += s.weight
      cum.append(total)
    }
    cumulativeWeight = cum
    head = [Int32](repeating: -1, count: ref.accountCount)
    holders = [[Int32]](repeating: [], count: ref.securities.count)
    marketMakers = min(5, ref.institutions)
    balance = [Int](repeating: 0, count: options.participants)
    net = [Int](repeating: 0, count: options.participants)
    summary.calendar = ref.calendar
    summary.tradingDays = Array(ref.calendar[0..<options.days])
    summary.securities = ref.securities.count
    summary.participants = options.participants
    summary.units = ref.unitCodes.count
    summary.individualAccounts = ref.individuals
    summary.institutionAccounts = ref.institutions
  }

  // MARK: picking

  @inline(__always)
  mutating func pickSecurity() -> Int {
    let r = rng.below(cumulativeWeight[cumulativeWeight.count - 1])
    var lo = 0
    var hi = cumulativeWeight.count - 1
    while lo < hi {
      let mid = (lo + hi) >> 1
      if cumulativeWeight[mid] > r { hi = mid } else { lo = mid + 1 }
    }
    return lo
  }

  /// Institutions trade often, one individual in twenty is an active trader, the rest are occasional.
  @inline(__always)
  mutating func pickBuyer() -> Int {
    let r = rng.below(100)
    if r < 15 { return ref.individuals + rng.below(ref.institutions) }
    if r < 55 && ref.individuals > 0 {
      let active = (ref.individuals + 19) / 20
      return min(ref.individuals - 1, rng.below(active) * 20)
    }
    return ref.individuals > 0 ? rng.below(ref.individuals) : ref.individuals + rng.below(ref.institutions)
  }

  @inline(__always)
  mutating func pickUnit(for account: Int) -> Int {
    rng.below(10) == 0 ? rng.below(ref.unitCodes.count) : ref.homeUnit(account)
  }

  /// A position of `security` with at least one board lot available, not of `buyer`; -1 if none.
  @inline(__always)
  mutating func pickSeller(_ security: Int, buyer: Int) -> Int {
    let lot = secLot[security]
    let count = holders[security].count
    if count > 0 {
      for _ in 0..<8 {
        let p = Int(holders[security][rng.below(count)])
        if positions[p].available >= lot && Int(positions[p].account) != buyer { return p }
      }
    }
    let first = rng.below(marketMakers)
    for k in 0..<marketMakers {
      let p = Int(marketMakerPositions[security * marketMakers + (first + k) % marketMakers])
      if positions[p].available >= lot && Int(positions[p].account) != buyer { return p }
    }
    return -1
  }

  /// Lots per trade: mostly small, a long tail of blocks (mean about 14 lots).
  @inline(__always)
  mutating func pickLots() -> Int {
    let r = rng.below(100)
    if r < 60 { return 1 + rng.below(5) }
    if r < 90 { return 6 + rng.below(15) }
    if r < 99 { return 21 + rng.below(80) }
    return 101 + rng.below(400)
  }

  @inline(__always)
  func find(_ account: Int, _ security: Int) -> Int {
    var p = Int(head[account])
    let s = Int32(truncatingIfNeeded: security)
    while p >= 0 {
      if positions[p].security == s { return p }
      p = Int(positions[p].next)
    }
    return -1
  }

  @inline(__always)
  mutating func createPosition(_ account: Int, _ security: Int, available: Int) -> Int {
    let p = positions.count
    positions.append(
      Position(
        account: Int32(truncatingIfNeeded: account), security: Int32(truncatingIfNeeded: security),
        next: head[account], available: available, pending: 0))
    head[account] = Int32(truncatingIfNeeded: p)
    holders[security].append(Int32(truncatingIfNeeded: p))
    return p
  }

  // MARK: prices

  /// Limits for the day: ±10% of the previous close, rounded to the tick.
  mutating func startPriceDay() {
    for s in price.indices {
      let tick = secTick[s]
      let close = price[s]
      priceHigh[s] = (close * 11 + 5 * tick) / (10 * tick) * tick
      priceLow[s] = max(tick, (close * 9 + 5 * tick) / (10 * tick) * tick)
      drift[s] = rng.below(3) - 1
    }
  }

  /// One step of the random walk, within the day's limits.
  @inline(__always)
  mutating func stepPrice(_ s: Int) -> Int {
    let tick = secTick[s]
    var p = price[s]
    let r = rng.below(1000)
    if r < 320 - drift[s] * 20 {
      p -= tick
    } else if r < 640 {
      p += tick
    } else if r >= 990 {
      p += (rng.below(11) - 5) * tick
    }
    if p > priceHigh[s] { p = priceHigh[s] }
    if p < priceLow[s] { p = priceLow[s] }
    price[s] = p
    return p
  }

  // MARK: writing fields

  @inline(__always)
  func writeAccount(_ w: ByteSink, _ account: Int) {
    let (prefix, number) = ref.accountNumber(account)
    w.byte(prefix)
    w.fixed(number, width: 9)
  }

  @inline(__always)
  func writePrice(_ w: ByteSink, _ s: Int, _ p: Int, malformed: Bool) {
    if secKind[s] == .stock {
      w.decimal(p / 10, decimals: 2)
      if malformed {
        w.byte(UInt8(ascii: "0"))
        w.byte(UInt8(ascii: "1"))
      }
    } else {
      w.decimal(p, decimals: 3)
      if malformed { w.byte(UInt8(ascii: "1")) }
    }
  }

  @inline(__always)
  func writeTime(_ w: ByteSink, slot: Int) {
    let n = options.tradesPerDay
    let secs = n <= 1 ? 0 : slot * 14_400 / (n - 1)
    let t = secs < 7_200 ? 34_200 + secs : 46_800 + secs - 7_200
    w.fixed(t / 3600, width: 2)
    w.fixed(t / 60 % 60, width: 2)
    w.fixed(t % 60, width: 2)
  }

  static let tradeTag: [UInt8] = Array("TRADE,".utf8)

  /// `TRADE,id,date,time,security,price,quantity,buy_account,buy_unit,sell_account,sell_unit`
  @inline(__always)
  func writeTrade(
    _ w: ByteSink, id: Int, date: Int32, slot: Int, security s: Int, price p: Int, quantity: Int,
    buyer: Int, buyUnit: Int, seller: Int, sellUnit: Int, malformedPrice: Bool = false, unknownBuyer: Int = -1
  ) throws {
    w.bytes(Run.tradeTag)
    w.uint(id)
    w.comma()
    w.fixed(Int(date), width: 8)
    w.comma()
    writeTime(w, slot: slot)
    w.comma()
    w.fixed(secCode[s], width: 6)
    w.comma()
    writePrice(w, s, p, malformed: malformedPrice)
    w.comma()
    w.uint(quantity)
    w.comma()
    if unknownBuyer >= 0 {
      w.byte(UInt8(ascii: "A"))
      w.fixed(unknownBuyer, width: 9)
    } else {
      writeAccount(w, buyer)
    }
    w.comma()
    w.fixed(Int(ref.unitCodes[buyUnit]), width: 5)
    w.comma()
    writeAccount(w, seller)
    w.comma()
    w.fixed(Int(ref.unitCodes[sellUnit]), width: 5)
    try w.endLine()
  }

  func writeParticipant(_ w: ByteSink, _ p: Int) {
    w.byte(UInt8(ascii: "P"))
    w.fixed(p + 1, width: 4)
  }

  mutating func writeDeposit(_ w: ByteSink, participant p: Int, fen: Int) throws {
    w.text("DEPOSIT,")
    writeParticipant(w, p)
    w.comma()
    w.decimal(fen, decimals: 2)
    try w.endLine()
    balance[p] += fen
    summary.deposits += 1
    summary.eventLines += 1
  }

  mutating func writeDayEvent(_ w: ByteSink, _ tag: String, _ date: Int32) throws {
    w.text(tag)
    w.comma()
    w.fixed(Int(date), width: 8)
    try w.endLine()
    summary.eventLines += 1
  }

  mutating func comment(_ w: ByteSink, _ text: String) throws {
    w.text("# ")
    w.text(text)
    try w.endLine()
    summary.commentLines += 1
  }
}
