// A small, independent reading of SPEC §3-§4 (availability, clearing cash, settlement,
// defaults, bonus shares), written for these tests only. It replays a generated
// market and records every rejection, so the tests can check that exactly the
// deliberately bad lines are rejected, and that the generator's default and cure
// predictions hold. Lots, dividend tax and output files are out of its scope.

struct SpecModel {
  struct Holding {
    var quantity = 0
    var available = 0
    var withheld = 0
  }
  struct Trade {
    var security: String
    var kind: String
    var price: Int  // 0.001 CNY
    var quantity: Int
    var buyer: String
    var seller: String
    var buyParticipant: String
    var sellParticipant: String
    var cancelled = false
  }
  struct Default {
    var date: String
    var participant: String
    var owed: Int
    var withheld: [(key: String, quantity: Int)]
    var cured = false
  }

  var calendar: [String] = []
  var securityKind: [String: String] = [:]
  var unitParticipant: [String: String] = [:]
  var participants: [String] = []
  var accounts: Set<String> = []
  var holdings: [String: Holding] = [:]
  var balance: [String: Int] = [:]

  var openDay: String?
  var lastOpened: String?
  var lastClosed = false
  var settled: Set<String> = []
  var trades: [String: Trade] = [:]  // "date|id"
  var tradeOrder: [String: [String]] = [:]  // date -> keys in order
  var net: [String: [String: Int]] = [:]  // date -> participant -> fen
  var defaults: [Default] = []
  var bonusActions: [(security: String, recordDate: String, base: Int, bonus: Int)] = []
  var bonusCredits: [(payDate: String, key: String, quantity: Int)] = []

  var rejections: [String: Int] = [:]
  var rejectedLines: [String] = []
  var defaultCount = 0
  var cureCount = 0

  init(referenceDirectory dir: String) throws {
    calendar = try readLines(dir + "/calendar.csv").dropFirst().sorted()
    for line in try readLines(dir + "/securities.csv").dropFirst() {
      let f = fields(line)
      securityKind[f[0]] = f[3]
    }
    for line in try readLines(dir + "/participants.csv").dropFirst() {
      participants.append(fields(line)[0])
    }
    participants.sort()
    for p in participants { balance[p] = 0 }
    for line in try readLines(dir + "/units.csv").dropFirst() {
      let f = fields(line)
      unitParticipant[f[0]] = f[1]
    }
    for line in try readLines(dir + "/accounts.csv").dropFirst() {
      accounts.insert(fields(line)[0])
    }
    for line in try readLines(dir + "/holdings.csv").dropFirst() {
      let f = fields(line)
      let q = Int(f[2])!
      holdings[f[0] + "|" + f[1], default: Holding()].quantity += q
      holdings[f[0] + "|" + f[1], default: Holding()].available += q
    }
  }

  func next(after date: String) -> String? { calendar.first { $0 > date } }
  func previous(before date: String) -> String? { calendar.last { $0 < date } }

  mutating func reject(_ reason: String, _ line: String) {
    rejections[reason, default: 0] += 1
    rejectedLines.append(reason + " " + line)
  }

  // Built-in fee table for dates after 2023-08-28, in units of 10^-7 (SPEC §2).
  static func fees(kind: String, amount: Int, sell: Bool) -> Int {
    func fee(_ rate: Int) -> Int { (amount * rate + 5_000_000) / 10_000_000 }
    switch kind {
    case "STOCK": return fee(341) + fee(200) + fee(100) + (sell ? fee(5_000) : 0)
    case "FUND": return fee(400)
    default: return fee(10)
    }
  }

  mutating func addCash(_ t: Trade, date: String, sign: Int) {
    let amount = (t.price * t.quantity + 5) / 10
    net[date, default: [:]][t.buyParticipant, default: 0] -=
      sign * (amount + SpecModel.fees(kind: t.kind, amount: amount, sell: false))
    net[date, default: [:]][t.sellParticipant, default: 0] +=
      sign * (amount - SpecModel.fees(kind: t.kind, amount: amount, sell: true))
  }

  mutating func apply(_ line: String) {
    if line.isEmpty || line.hasPrefix("#") { return }
    let f = fields(line)
    let n = f.count - 1
    let expected = [
      "OPEN": 1, "TRADE": 10, "CANCEL": 2, "CLOSE": 1, "SETTLE": 1, "DEPOSIT": 2, "DIVIDEND": 3, "BONUS": 4,
    ]
    guard let count = expected[f[0]], count == n, !f.contains("") else { return reject("MALFORMED", line) }
    switch f[0] {
    case "OPEN": open(f[1], line)
    case "TRADE": trade(f, line)
    case "CANCEL": cancel(f[1], f[2], line)
    case "CLOSE": close(f[1], line)
    case "SETTLE": settle(f[1], line)
    case "DEPOSIT":
      guard let amount = parseAmount(f[2]) else { return reject("MALFORMED", line) }
      guard balance[f[1]] != nil else { return reject("UNKNOWN_PARTICIPANT", line) }
      guard amount > 0 else { return reject("INVALID_AMOUNT", line) }
      balance[f[1]]! += amount
    case "DIVIDEND":
      guard isRealDate(f[2]), isPerShareAmount(f[3]) else { return reject("MALFORMED", line) }
      guard securityKind[f[1]] != nil else { return reject("UNKNOWN_SECURITY", line) }
      guard calendar.contains(f[2]), next(after: f[2]) != nil else { return reject("BAD_DATE", line) }
      if let last = lastOpened, f[2] < last || (f[2] == last && openDay == nil) {
        return reject("RECORD_DATE_PASSED", line)
      }
    case "BONUS":
      guard isRealDate(f[2]), isQuantity(f[3]), isQuantity(f[4]) else { return reject("MALFORMED", line) }
      guard securityKind[f[1]] != nil else { return reject("UNKNOWN_SECURITY", line) }
      guard Int(f[3])! > 0, Int(f[4])! > 0 else { return reject("INVALID_RATIO", line) }
      guard calendar.contains(f[2]), next(after: f[2]) != nil else { return reject("BAD_DATE", line) }
      if let last = lastOpened, f[2] < last || (f[2] == last && openDay == nil) {
        return reject("RECORD_DATE_PASSED", line)
      }
      bonusActions.append((f[1], f[2], Int(f[3])!, Int(f[4])!))
    default: break
    }
  }

  mutating func open(_ date: String, _ line: String) {
    guard isRealDate(date) else { return reject("MALFORMED", line) }
    guard openDay == nil else { return reject("DAY_ALREADY_OPEN", line) }
    guard calendar.contains(date), next(after: date) != nil else { return reject("BAD_DATE", line) }
    if let last = lastOpened, next(after: last) != date { return reject("BAD_DATE", line) }
    openDay = date
    lastOpened = date
    for key in holdings.keys {
      holdings[key]!.available = holdings[key]!.quantity - holdings[key]!.withheld
    }
    for c in bonusCredits where c.payDate == date {
      holdings[c.key, default: Holding()].quantity += c.quantity
      holdings[c.key, default: Holding()].available += c.quantity
    }
    bonusCredits.removeAll { $0.payDate == date }
  }

  mutating func trade(_ f: [String], _ line: String) {
    let (id, date, time, security, priceText, qtyText) = (f[1], f[2], f[3], f[4], f[5], f[6])
    let (buyer, buyUnit, seller, sellUnit) = (f[7], f[8], f[9], f[10])
    guard isRealDate(date), isDigits(time, count: 6), let price = parsePrice(priceText), isQuantity(qtyText)
    else { return reject("MALFORMED", line) }
    let quantity = Int(qtyText)!
    guard let day = openDay else { return reject("DAY_NOT_OPEN", line) }
    guard date == day else { return reject("WRONG_DATE", line) }
    guard trades[date + "|" + id] == nil else { return reject("DUPLICATE_TRADE", line) }
    guard let kind = securityKind[security] else { return reject("UNKNOWN_SECURITY", line) }
    guard price > 0 else { return reject("INVALID_PRICE", line) }
    guard quantity > 0 else { return reject("INVALID_QUANTITY", line) }
    guard accounts.contains(buyer), accounts.contains(seller) else { return reject("UNKNOWN_ACCOUNT", line) }
    guard let bp = unitParticipant[buyUnit], let sp = unitParticipant[sellUnit] else {
      return reject("UNKNOWN_UNIT", line)
    }
    let sellKey = seller + "|" + security
    let buyKey = buyer + "|" + security
    guard (holdings[sellKey]?.available ?? 0) >= quantity else {
      return reject("INSUFFICIENT_HOLDINGS", line)
    }
    holdings[sellKey]!.quantity -= quantity
    holdings[sellKey]!.available -= quantity
    holdings[buyKey, default: Holding()].quantity += quantity
    if kind == "BOND" { holdings[buyKey]!.available += quantity }
    let t = Trade(
      security: security, kind: kind, price: price, quantity: quantity, buyer: buyer, seller: seller,
      buyParticipant: bp, sellParticipant: sp)
    trades[date + "|" + id] = t
    tradeOrder[date, default: []].append(date + "|" + id)
    addCash(t, date: date, sign: 1)
  }

  mutating func cancel(_ date: String, _ id: String, _ line: String) {
    guard isRealDate(date) else { return reject("MALFORMED", line) }
    let key = date + "|" + id
    guard let t = trades[key] else { return reject("UNKNOWN_TRADE", line) }
    guard !t.cancelled else { return reject("ALREADY_CANCELLED", line) }
    if let settleDate = next(after: date), settled.contains(settleDate) {
      return reject("ALREADY_SETTLED", line)
    }
    let buyKey = t.buyer + "|" + t.security
    let sellKey = t.seller + "|" + t.security
    let b = holdings[buyKey]!
    guard b.quantity - b.withheld >= t.quantity else { return reject("CANNOT_REVERSE", line) }
    trades[key]!.cancelled = true
    addCash(t, date: date, sign: -1)
    holdings[sellKey]!.quantity += t.quantity
    holdings[sellKey]!.available += t.quantity
    let notYet = b.quantity - b.available - b.withheld
    let fromNotYet = min(t.quantity, notYet)
    holdings[buyKey]!.quantity -= t.quantity
    holdings[buyKey]!.available -= t.quantity - fromNotYet
  }

  mutating func close(_ date: String, _ line: String) {
    guard isRealDate(date) else { return reject("MALFORMED", line) }
    guard openDay == date else { return reject("BAD_DATE", line) }
    openDay = nil
    for a in bonusActions where a.recordDate == date {
      let holders = holdings.filter { $0.key.hasSuffix("|" + a.security) && $0.value.quantity > 0 }
        .map { (account: String($0.key.split(separator: "|")[0]), quantity: $0.value.quantity) }
        .sorted { $0.account < $1.account }
      let total = holders.reduce(0) { $0 + $1.quantity } * a.bonus / a.base
      var credits = holders.map { $0.quantity * a.bonus / a.base }
      var left = total - credits.reduce(0, +)
      let byRemainder = holders.indices.sorted {
        let r0 = holders[$0].quantity * a.bonus % a.base
        let r1 = holders[$1].quantity * a.bonus % a.base
        return r0 != r1 ? r0 > r1 : holders[$0].account < holders[$1].account
      }
      for i in byRemainder where left > 0 {
        credits[i] += 1
        left -= 1
      }
      let pay = next(after: date)!
      for (i, h) in holders.enumerated() where credits[i] > 0 {
        bonusCredits.append((pay, h.account + "|" + a.security, credits[i]))
      }
    }
  }

  mutating func settle(_ date: String, _ line: String) {
    guard isRealDate(date) else { return reject("MALFORMED", line) }
    guard date == lastOpened, !settled.contains(date) else { return reject("BAD_DATE", line) }
    settled.insert(date)
    guard let t = previous(before: date) else { return }
    let nets = net[t] ?? [:]
    for p in participants where (nets[p] ?? -1) >= 0 { balance[p]! += nets[p]! }
    for i in defaults.indices where !defaults[i].cured {
      let d = defaults[i]
      if balance[d.participant]! >= d.owed {
        balance[d.participant]! -= d.owed
        for w in d.withheld {
          holdings[w.key]!.available += w.quantity
          holdings[w.key]!.withheld -= w.quantity
        }
        defaults[i].cured = true
        cureCount += 1
      }
    }
    for p in participants {
      guard let n = nets[p], n < 0 else { continue }
      if balance[p]! >= -n {
        balance[p]! += n
        continue
      }
      var withheld: [(key: String, quantity: Int)] = []
      for key in tradeOrder[t] ?? [] {
        let tr = trades[key]!
        guard !tr.cancelled, tr.buyParticipant == p else { continue }
        let hk = tr.buyer + "|" + tr.security
        let w = min(tr.quantity, holdings[hk]!.available)
        holdings[hk]!.available -= w
        holdings[hk]!.withheld += w
        withheld.append((hk, w))
      }
      defaults.append(Default(date: t, participant: p, owed: -n, withheld: withheld))
      defaultCount += 1
    }
  }

  /// SPEC §4.2: quantity ≥ available + withheld, nothing negative.
  var holdingsConsistent: Bool {
    holdings.values.allSatisfy {
      $0.available >= 0 && $0.withheld >= 0 && $0.quantity >= $0.available + $0.withheld
    }
  }
}
