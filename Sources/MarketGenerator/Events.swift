// Writing the reference folder and the event stream.

extension Run {
  // MARK: reference folder

  mutating func writeReference(into dir: String) throws {
    do {
      let w = try ByteSink(path: dir + "/calendar.csv")
      w.text("date")
      try w.endLine()
      for d in ref.calendar {
        w.fixed(Int(d), width: 8)
        try w.endLine()
      }
      try w.close()
    }
    do {
      let w = try ByteSink(path: dir + "/securities.csv")
      w.text("security,isin,name,kind")
      try w.endLine()
      for s in ref.securities {
        w.fixed(s.code, width: 6)
        w.comma()
        w.text(s.isin)
        w.comma()
        w.text(s.name)
        w.comma()
        w.text(s.kind.word)
        try w.endLine()
      }
      try w.close()
    }
    do {
      let w = try ByteSink(path: dir + "/participants.csv")
      w.text("participant,name")
      try w.endLine()
      for (p, name) in ref.participantNames.enumerated() {
        writeParticipant(w, p)
        w.comma()
        w.text(name)
        try w.endLine()
      }
      try w.close()
    }
    do {
      let w = try ByteSink(path: dir + "/units.csv")
      w.text("unit,participant")
      try w.endLine()
      for (u, code) in ref.unitCodes.enumerated() {
        w.fixed(Int(code), width: 5)
        w.comma()
        writeParticipant(w, Int(ref.unitParticipant[u]))
        try w.endLine()
      }
      try w.close()
    }
    do {
      let w = try ByteSink(path: dir + "/accounts.csv")
      w.text("account,kind")
      try w.endLine()
      for a in 0..<ref.accountCount {
        writeAccount(w, a)
        w.text(a < ref.individuals ? ",INDIVIDUAL" : ",INSTITUTION")
        try w.endLine()
      }
      try w.close()
    }
    try writeHoldings(dir + "/holdings.csv")
  }

  /// Opening lots, in account order; also seeds the position book. The first few
  /// institutions are market makers holding every security, sized to the day's volume.
  private mutating func writeHoldings(_ path: String) throws {
    let w = try ByteSink(path: path)
    w.text("account,security,quantity,acquired_date")
    try w.endLine()
    let start = CivilDate.dayNumber(options.startDate)!
    let totalWeight = cumulativeWeight[cumulativeWeight.count - 1]
    let nSec = secCode.count
    var makerShares: [Int] = []
    for s in 0..<nSec {
      let weight = cumulativeWeight[s] - (s == 0 ? 0 : cumulativeWeight[s - 1])
      let dailyLots = options.tradesPerDay * weight * 15 / totalWeight
      let lots = min(max(200, 3 * dailyLots / marketMakers + 1), 900_000_000 / secLot[s])
      makerShares.append(lots * secLot[s])
    }
    marketMakerPositions = [Int32](repeating: -1, count: nSec * marketMakers)
    positions.reserveCapacity(ref.accountCount * 3 + options.tradesPerDay)

    func writeLot(_ account: Int, _ s: Int, _ quantity: Int, age: Int) throws {
      var day = start - age
      while CivilDate.isWeekend(day) { day -= 1 }
      writeAccount(w, account)
      w.comma()
      w.fixed(secCode[s], width: 6)
      w.comma()
      w.uint(quantity)
      w.comma()
      w.fixed(Int(CivilDate.yyyymmdd(day)), width: 8)
      try w.endLine()
      summary.holdingLots += 1
    }

    var chosen: [Int] = []
    var ages: [Int] = []
    for a in 0..<ref.accountCount {
      let maker = a - ref.individuals
      if maker >= 0 && maker < marketMakers {
        for s in 0..<nSec {
          let lot = secLot[s]
          let total = makerShares[s]
          let q1 = total * 4 / 10 / lot * lot
          let q2 = total * 3 / 10 / lot * lot
          let q3 = total - q1 - q2
          try writeLot(a, s, q1, age: 400 + rng.below(300))
          try writeLot(a, s, q2, age: 60 + rng.below(240))
          try writeLot(a, s, q3, age: 3 + rng.below(20))
          marketMakerPositions[s * marketMakers + maker] = Int32(createPosition(a, s, available: total))
        }
        continue
      }
      let institution = a >= ref.individuals
      let count: Int
      if institution {
        count = 2 + rng.below(5)
      } else {
        let r = rng.below(100)
        count = r < 15 ? 0 : r < 55 ? 1 : r < 80 ? 2 : r < 93 ? 3 : 4
      }
      chosen.removeAll(keepingCapacity: true)
      for _ in 0..<count {
        var s = pickSecurity()
        var tries = 0
        while chosen.contains(s) && tries < 4 {
          s = pickSecurity()
          tries += 1
        }
        if !chosen.contains(s) { chosen.append(s) }
      }
      for s in chosen {
        ages.removeAll(keepingCapacity: true)
        for _ in 0..<(1 + rng.below(3)) {
          let r = rng.below(100)
          // Within 30 days (20% tax tier), 31..365 days (10%), over a year (0%).
          ages.append(r < 25 ? 1 + rng.below(25) : r < 65 ? 40 + rng.below(320) : 370 + rng.below(360))
        }
        ages.sort(by: >)
        var total = 0
        for age in ages {
          let q = lotQuantity(s, institution: institution)
          try writeLot(a, s, q, age: age)
          total += q
        }
        _ = createPosition(a, s, available: total)
      }
    }
    try w.close()
  }

  private mutating func lotQuantity(_ s: Int, institution: Bool) -> Int {
    let scale = institution ? 5 + rng.below(16) : 1
    switch secKind[s] {
    case .stock:
      let r = rng.below(100)
      let lots = r < 60 ? 1 + rng.below(5) : r < 90 ? 5 + rng.below(16) : 20 + rng.below(81)
      // An odd lot now and then, left over from a bonus issue.
      let odd = rng.below(25) == 0 ? 10 * (1 + rng.below(9)) : 0
      return lots * 100 * scale + odd
    case .fund: return (1 + rng.below(50)) * 100 * scale
    case .bond: return (1 + rng.below(100)) * 10 * scale
    }
  }

  // MARK: event stream

  mutating func writeEvents(to path: String, progress: (@Sendable (String) -> Void)?) throws {
    let w = try ByteSink(path: path)
    let o = options
    try comment(w, "Tally synthetic market (MarketGenerator)")
    try comment(
      w,
      "seed=\(o.seed) days=\(o.days) trades_per_day=\(o.tradesPerDay) accounts=\(o.accounts) "
        + "securities=\(o.securities) participants=\(o.participants) start=\(o.startDate)")
    if o.badLinesPerMillion > 0 {
      try comment(
        w,
        "About \(o.badLinesPerMillion) lines per million trades are deliberately bad; a correct engine rejects each."
      )
    }
    try comment(w, "Opening cash in the participants' settlement reserves.")
    // Thin reserves (about a day's net, which grows like the square root of the
    // trades per participant); the end-of-day top-ups do the rest.
    var scale = 1
    while (scale + 1) * (scale + 1) <= max(1, o.tradesPerDay / o.participants / 100) { scale += 1 }
    for p in 0..<o.participants {
      try writeDeposit(w, participant: p, fen: (1 + rng.below(5)) * 10_000_000 * scale)
    }
    planCorporateActions()
    if !actions.isEmpty {
      try comment(w, "Corporate actions, paid on the trading day after the record date.")
      for a in actions {
        switch a.action {
        case .dividend(let perShare):
          w.text("DIVIDEND,")
          w.fixed(secCode[a.security], width: 6)
          w.comma()
          w.fixed(Int(ref.calendar[a.recordIndex]), width: 8)
          w.comma()
          w.decimal(perShare, decimals: 4)
          summary.dividends += 1
        case .bonus(let base, let bonus):
          w.text("BONUS,")
          w.fixed(secCode[a.security], width: 6)
          w.comma()
          w.fixed(Int(ref.calendar[a.recordIndex]), width: 8)
          w.comma()
          w.uint(base)
          w.comma()
          w.uint(bonus)
          summary.bonuses += 1
        }
        try w.endLine()
        summary.eventLines += 1
      }
    }
    for d in 0..<o.days {
      try tradingDay(d, w)
      progress?(
        "day \(d + 1)/\(o.days) \(ref.calendar[d]): \(summary.trades) trades, \(summary.cancels) cancels, "
          + "\(summary.badLines) bad lines, \(summary.deposits) deposits so far")
    }
    if o.settleLastDay {
      let date = ref.calendar[o.days]
      try comment(w, "Next trading day \(date): settle the last trade date.")
      try writeDayEvent(w, "OPEN", date)
      openDay(o.days)
      try writeDayEvent(w, "SETTLE", date)
      settlePrevious()
      summary.finalSettleDay = date
    }
    try w.close()
    summary.eventBytes = w.bytesWritten
  }

  /// A few dividends and bonus issues on the most traded stocks (and one fund
  /// distribution), with record dates on later days of the run.
  private mutating func planCorporateActions() {
    guard options.corporateActions else { return }
    let weights = (0..<secCode.count).map { cumulativeWeight[$0] - ($0 == 0 ? 0 : cumulativeWeight[$0 - 1]) }
    let byActivity = (0..<secCode.count).sorted {
      weights[$0] != weights[$1] ? weights[$0] > weights[$1] : $0 < $1
    }
    let stocks = byActivity.filter { secKind[$0] == .stock }
    let funds = byActivity.filter { secKind[$0] == .fund }
    func recordIndex() -> Int { options.days > 1 ? 1 + rng.below(options.days - 1) : 0 }
    for (i, s) in stocks.prefix(5).enumerated() {
      if i % 2 == 0 {
        actions.append(
          PlannedAction(
            security: s, recordIndex: recordIndex(), action: .dividend(perShare: 500 + rng.below(14_501))))
      } else {
        let bonus = [1, 2, 3, 4, 5, 10][rng.below(6)]
        actions.append(
          PlannedAction(security: s, recordIndex: recordIndex(), action: .bonus(base: 10, bonus: bonus)))
      }
    }
    if let f = funds.first {
      actions.append(
        PlannedAction(
          security: f, recordIndex: recordIndex(), action: .dividend(perShare: 100 + rng.below(400))))
    }
    actions.sort {
      $0.recordIndex != $1.recordIndex ? $0.recordIndex < $1.recordIndex : $0.security < $1.security
    }
  }

  private mutating func tradingDay(_ d: Int, _ w: ByteSink) throws {
    let date = ref.calendar[d]
    let n = options.tradesPerDay
    dateIndex = d
    try comment(w, "Trading day \(d + 1) of \(options.days): \(date)")
    try writeDayEvent(w, "OPEN", date)
    openDay(d)
    if d > 0 {
      try writeDayEvent(w, "SETTLE", date)
      settlePrevious()
    }
    trades.removeAll(keepingCapacity: true)
    trades.reserveCapacity(n)
    for p in net.indices { net[p] = 0 }
    nextTradeId = 1
    fees = FeeRates(date: date)
    startPriceDay()

    var badCount = (n * options.badLinesPerMillion + 500_000) / 1_000_000
    if d == 0 && options.badLinesPerMillion > 0 { badCount = max(badCount, 5) }
    let badSlots = (0..<badCount).map { _ in rng.below(n) }.sorted()
    var cancelCount = (n * options.cancelsPerMillion + 500_000) / 1_000_000
    if options.cancelsPerMillion > 0 && n >= 2 { cancelCount = max(cancelCount, 1) }
    let cancelSlots = n >= 2 ? (0..<cancelCount).map { _ in 1 + rng.below(n - 1) }.sorted() : []
    let depositSlots = (0..<2).map { _ in rng.below(n) }.sorted()

    var bi = 0
    var ci = 0
    var di = 0
    for slot in 0..<n {
      while bi < badSlots.count && badSlots[bi] == slot {
        try emitBad(w, date: date, slot: slot)
        bi += 1
      }
      while ci < cancelSlots.count && cancelSlots[ci] == slot {
        try emitCancel(w, date: date)
        ci += 1
      }
      while di < depositSlots.count && depositSlots[di] == slot {
        try writeDeposit(
          w, participant: rng.below(options.participants), fen: (1 + rng.below(500)) * 1_000_000)
        di += 1
      }
      try emitTrade(w, date: date, slot: slot)
    }
    try fundReserves(w, day: d)
    try writeDayEvent(w, "CLOSE", date)
    closeDay(d)
  }

  // MARK: trades

  @inline(__always)
  /// Books a trade in the model (the seller's shares out, the buyer's in: available at
  /// once for a bond, from the next day otherwise; the participants' cash) and returns
  /// its trade id. The caller writes its line.
  private mutating func book(
    seller: Int, buyer: Int, security s: Int, quantity: Int, price p: Int, buyUnit: Int, sellUnit: Int
  ) -> Int {
    positions[seller].available -= quantity
    var bp = find(buyer, s)
    if bp < 0 { bp = createPosition(buyer, s, available: 0) }
    if secKind[s] == .bond {
      positions[bp].available += quantity
    } else {
      if positions[bp].pending == 0 { pendingPositions.append(Int32(truncatingIfNeeded: bp)) }
      positions[bp].pending += quantity
    }
    let id = nextTradeId
    nextTradeId += 1
    let t = TradeRecord(
      id: Int32(truncatingIfNeeded: id), buyPosition: Int32(truncatingIfNeeded: bp),
      sellPosition: Int32(truncatingIfNeeded: seller), quantity: Int32(truncatingIfNeeded: quantity),
      price: Int32(truncatingIfNeeded: p), buyUnit: Int32(truncatingIfNeeded: buyUnit),
      sellUnit: Int32(truncatingIfNeeded: sellUnit), cancelled: false)
    applyCash(t, kind: secKind[s], sign: 1)
    trades.append(t)
    return id
  }

  private mutating func applyCash(_ t: TradeRecord, kind: SecKind, sign: Int) {
    let amount = (Int(t.price) * Int(t.quantity) + 5) / 10
    let bp = Int(ref.unitParticipant[Int(t.buyUnit)])
    let sp = Int(ref.unitParticipant[Int(t.sellUnit)])
    net[bp] -= sign * (amount + fees.fees(kind, amount: amount, sell: false))
    net[sp] += sign * (amount - fees.fees(kind, amount: amount, sell: true))
  }

  private mutating func emitTrade(_ w: ByteSink, date: Int32, slot: Int) throws {
    var s = pickSecurity()
    let buyer = pickBuyer()
    var seller = pickSeller(s, buyer: buyer)
    var tries = 0
    while seller < 0 && tries < 4 {
      s = pickSecurity()
      seller = pickSeller(s, buyer: buyer)
      tries += 1
    }
    if seller < 0 {
      summary.skippedTrades += 1
      return
    }
    let lot = secLot[s]
    let quantity = min(pickLots(), positions[seller].available / lot) * lot
    let p = stepPrice(s)
    let sellerAccount = Int(positions[seller].account)
    let buyUnit = pickUnit(for: buyer)
    let sellUnit = pickUnit(for: sellerAccount)
    let id = book(
      seller: seller, buyer: buyer, security: s, quantity: quantity, price: p, buyUnit: buyUnit,
      sellUnit: sellUnit)
    try writeTrade(
      w, id: id, date: date, slot: slot, security: s, price: p, quantity: quantity,
      buyer: buyer, buyUnit: buyUnit, seller: sellerAccount, sellUnit: sellUnit)
    summary.trades += 1
    summary.eventLines += 1
  }

  /// Reverses a random earlier trade of the day that the engine will accept to reverse.
  private mutating func emitCancel(_ w: ByteSink, date: Int32) throws {
    guard !trades.isEmpty else { return }
    for _ in 0..<6 {
      let j = rng.below(trades.count)
      let t = trades[j]
      if t.cancelled { continue }
      let bp = Int(t.buyPosition)
      let sp = Int(t.sellPosition)
      let q = Int(t.quantity)
      let kind = secKind[Int(positions[bp].security)]
      // A BOND buyer may already have sold what it bought: CANNOT_REVERSE.
      if kind == .bond && positions[bp].available < q { continue }
      positions[sp].available += q
      if kind == .bond {
        positions[bp].available -= q
      } else {
        positions[bp].pending -= q
      }
      applyCash(t, kind: kind, sign: -1)
      trades[j].cancelled = true
      w.text("CANCEL,")
      w.fixed(Int(date), width: 8)
      w.comma()
      w.uint(Int(t.id))
      try w.endLine()
      summary.cancels += 1
      summary.eventLines += 1
      return
    }
  }

  /// One deliberately bad line; the kinds take turns.
  private mutating func emitBad(_ w: ByteSink, date: Int32, slot: Int) throws {
    var kind = badCounter % 5
    badCounter += 1
    if kind == 2 && trades.isEmpty { kind = 0 }
    let s = pickSecurity()
    let lot = secLot[s]
    var buyer = pickBuyer()
    var seller = rng.below(ref.accountCount)
    if seller == buyer { seller = (seller + 1) % ref.accountCount }
    var quantity = lot * (1 + rng.below(5))
    let p = price[s]
    var id = 0
    var malformed = false
    var unknownBuyer = -1
    switch kind {
    case 0:
      malformed = true
      summary.badLineCounts.malformedPrice += 1
    case 1:
      unknownBuyer = rng.below(100_000_000)  // A0........ is never issued
      summary.badLineCounts.unknownAccount += 1
    case 2:
      id = Int(trades[rng.below(trades.count)].id)
      summary.badLineCounts.duplicateTradeId += 1
    case 3:
      var available = 0
      if !holders[s].isEmpty {
        let ps = Int(holders[s][rng.below(holders[s].count)])
        seller = Int(positions[ps].account)
        available = positions[ps].available
      } else {
        let ps = find(seller, s)
        available = ps >= 0 ? positions[ps].available : 0
      }
      if seller == buyer { buyer = (buyer + 1) % ref.accountCount }
      quantity = (available / lot + 1_000) * lot
      summary.badLineCounts.oversell += 1
    default:
      w.text("CANCEL,")
      w.fixed(Int(date), width: 8)
      w.comma()
      w.uint(2 * options.tradesPerDay + 1_000 + rng.below(1_000))
      try w.endLine()
      summary.badLineCounts.unknownCancel += 1
      summary.badLines += 1
      summary.eventLines += 1
      return
    }
    if id == 0 {
      id = nextTradeId
      nextTradeId += 1
    }
    try writeTrade(
      w, id: id, date: date, slot: slot, security: s, price: p, quantity: quantity,
      buyer: buyer, buyUnit: pickUnit(for: buyer), seller: seller, sellUnit: pickUnit(for: seller),
      malformedPrice: malformed, unknownBuyer: unknownBuyer)
    summary.badLines += 1
    summary.eventLines += 1
  }

  // MARK: day boundaries and cash

  /// OPEN: bought STOCK and FUND shares become available; bonus shares are credited.
  mutating func openDay(_ index: Int) {
    for p in pendingPositions {
      let i = Int(p)
      positions[i].available += positions[i].pending
      positions[i].pending = 0
    }
    pendingPositions.removeAll(keepingCapacity: true)
    if !bonusCredits.isEmpty {
      for c in bonusCredits where c.payIndex == index {
        positions[Int(c.position)].available += c.quantity
      }
      bonusCredits.removeAll { $0.payIndex == index }
    }
  }

  /// CLOSE: bonus entitlements from the holders' quantity (the floor part only:
  /// the leftover shares handed out by largest remainder are not tracked, which
  /// can only make the generator's view of `available` smaller than the engine's).
  mutating func closeDay(_ index: Int) {
    for a in actions where a.recordIndex == index {
      guard case .bonus(let base, let bonus) = a.action else { continue }
      for p in holders[a.security] {
        let q = positions[Int(p)].available + positions[Int(p)].pending
        let credit = q * bonus / base
        if credit > 0 { bonusCredits.append((index + 1, p, credit)) }
      }
    }
  }

  /// SETTLE of the previous trade date, in the order of SPEC §4.3.
  mutating func settlePrevious() {
    for p in net.indices where net[p] >= 0 { balance[p] += net[p] }
    for i in defaults.indices where !defaults[i].cured {
      let p = defaults[i].participant
      if balance[p] >= defaults[i].owed {
        balance[p] -= defaults[i].owed
        for (position, quantity) in defaults[i].withheld {
          positions[Int(position)].available += quantity
        }
        defaults[i].cured = true
        summary.expectedCures += 1
      }
    }
    for p in net.indices where net[p] < 0 {
      let owed = -net[p]
      if balance[p] >= owed {
        balance[p] -= owed
        continue
      }
      var withheld: [(position: Int32, quantity: Int)] = []
      for t in trades where !t.cancelled && Int(ref.unitParticipant[Int(t.buyUnit)]) == p {
        let bp = Int(t.buyPosition)
        let q = min(Int(t.quantity), positions[bp].available)
        if q > 0 {
          positions[bp].available -= q
          withheld.append((t.buyPosition, q))
        }
      }
      defaults.append(PredictedDefault(participant: p, owed: owed, withheld: withheld, cured: false))
      summary.expectedDefaults += 1
    }
    for p in net.indices { net[p] = 0 }
  }

  /// Before CLOSE, participants that would fall short at the next SETTLE deposit
  /// the difference and a cushion, except on one early day one of them does not,
  /// and defaults; it pays up (the cure) the day after.
  private mutating func fundReserves(_ w: ByteSink, day d: Int) throws {
    let firstDay = options.days >= 3 ? 1 : 0
    let lastDay = options.settleLastDay ? options.days - 2 : options.days - 3
    let staging = options.stageDefault && !defaultStaged && d >= firstDay && d <= lastDay
    var outstanding = [Int](repeating: 0, count: net.count)
    for x in defaults where !x.cured { outstanding[x.participant] += x.owed }
    var shortfall = [Int](repeating: 0, count: net.count)
    var candidate = -1
    func survey() {
      candidate = -1
      for p in net.indices {
        let need = outstanding[p] + max(0, -net[p])
        let have = balance[p] + max(0, net[p])
        shortfall[p] = need - have
        if staging && shortfall[p] > 0 && outstanding[p] == 0
          && (candidate < 0 || shortfall[p] > shortfall[candidate])
        {
          candidate = p
        }
      }
    }
    survey()
    if staging && candidate < 0 && options.participants >= 2 {
      // Nobody is short by chance today: a participant buys a block after the
      // close that its reserve cannot pay for.
      var slackest = -1
      for p in net.indices where outstanding[p] == 0 {
        if slackest < 0 || -shortfall[p] < -shortfall[slackest] { slackest = p }
      }
      if slackest >= 0 {
        try blockTrade(
          w, date: ref.calendar[d], buyParticipant: slackest, amount: -shortfall[slackest] + 1_000_000)
        survey()
      }
    }
    for p in net.indices where shortfall[p] > 0 {
      if p == candidate {
        defaultStaged = true
        try comment(
          w,
          "P\(p + 1 < 10 ? "000" : p + 1 < 100 ? "00" : p + 1 < 1000 ? "0" : "")\(p + 1) leaves its reserve short today: a default at the next SETTLE."
        )
        continue
      }
      let need = outstanding[p] + max(0, -net[p])
      let cushion = max(1_000_000, need / 10)
      let amount = (shortfall[p] + cushion + 999_999) / 1_000_000 * 1_000_000
      try writeDeposit(w, participant: p, fen: amount)
    }
  }

  /// A block purchase (大宗交易) at the close by `buyParticipant` worth more than
  /// `amount` fen, sold by a market maker through another participant's unit.
  private mutating func blockTrade(_ w: ByteSink, date: Int32, buyParticipant: Int, amount: Int) throws {
    guard let buyUnit = ref.unitParticipant.firstIndex(of: Int32(buyParticipant)),
      let sellUnit = ref.unitParticipant.firstIndex(where: { $0 != Int32(buyParticipant) })
    else { return }
    let byActivity = (0..<secCode.count).sorted {
      let a = cumulativeWeight[$0] - ($0 == 0 ? 0 : cumulativeWeight[$0 - 1])
      let b = cumulativeWeight[$1] - ($1 == 0 ? 0 : cumulativeWeight[$1 - 1])
      return a != b ? a > b : $0 < $1
    }
    for s in byActivity {
      let lot = secLot[s]
      let p = price[s]
      let quantity = (amount * 10 / p / lot + 2) * lot
      for m in 0..<marketMakers {
        let seller = Int(marketMakerPositions[s * marketMakers + m])
        guard positions[seller].available >= quantity else { continue }
        let sellerAccount = Int(positions[seller].account)
        var buyer = ref.individuals + rng.below(ref.institutions)
        if buyer == sellerAccount { buyer = ref.individuals > 0 ? rng.below(ref.individuals) : buyer }
        if buyer == sellerAccount { continue }
        let id = book(
          seller: seller, buyer: buyer, security: s, quantity: quantity, price: p, buyUnit: buyUnit,
          sellUnit: sellUnit)
        try comment(w, "A block purchase after the close.")
        summary.blockTrades += 1
        try writeTrade(
          w, id: id, date: date, slot: options.tradesPerDay - 1, security: s, price: p, quantity: quantity,
          buyer: buyer, buyUnit: buyUnit, seller: sellerAccount, sellUnit: sellUnit)
        summary.trades += 1
        summary.eventLines += 1
        return
      }
    }
  }
}
