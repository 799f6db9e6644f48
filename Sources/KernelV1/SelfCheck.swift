// 自检测: invariants checked inside the engine at every CLOSE and SETTLE. A
// violation stops the engine loudly (before any output is written) rather than
// letting it write wrong figures. CLOSE checks everything; SETTLE everything but the
// lots: it changes no lot (it moves holdings between available and withheld, and
// cash), and the day's lot changes (OPEN's bonus shares, the trades) are checked at
// the CLOSE that ends the day. The lot walk is the random-access half of a check: at
// SETTLE it cost 32 of its 44 ms on the 1M-account day (sixteenth session).

import KernelAPI

extension V1Kernel {
  /// Every invariant that does not hold, in a deterministic order; empty when all hold.
  public func selfCheckViolations(limit: Int = 10) -> [String] {
    selfCheckViolations(limit: limit, lots: true)
  }

  /// The same; `lots` false leaves out the lots of each position (see the file's header).
  public func selfCheckViolations(limit: Int, lots: Bool) -> [String] {
    var problems: [String] = []
    func report(_ text: @autoclosure () -> String) {
      if problems.count < limit { problems.append(text()) }
    }
    // Holdings per security are conserved: opening holdings plus bonus shares issued.
    // The positions in two halves, the second on the other core (`ForkJoin`): the lot
    // walk is one miss after another, and at CLOSE the other core is idle. The halves'
    // problems are joined in position order: the same report as one walk.
    let kernel = self
    let split = positions.count / 2
    let firstHalf = { kernel.checkPositions(0..<split, limit: limit, lots: lots) }
    let secondHalf = { @Sendable in
      kernel.checkPositions(split..<kernel.positions.count, limit: limit, lots: lots)
    }
    let (first, second) =
      positions.count >= ForkJoin.minimumItems
      ? ForkJoin.both(firstHalf, secondHalf) : (firstHalf(), secondHalf())
    var held = first.held
    for s in held.indices { held[s] += second.held[s] }
    for text in first.problems + second.problems { report(text) }
    if lots && first.lotsSeen + second.lotsSeen != lotPool.liveCount {
      report("lot pool holds \(lotPool.liveCount) lots, positions link \(first.lotsSeen + second.lotsSeen)")
    }
    for s in securities.indices where held[s] != securities.rows[s].issuedQuantity {
      let row = securities.rows[s]
      report("security \(row.code): holdings add up to \(held[s]), issued \(row.issuedQuantity)")
    }
    // Net cash per (trade date, participant) equals what its clearing rows say, and
    // the participants' net cash of a trade date adds up to minus the fees of that date.
    var netFromRows: [Int64: Int128] = [:]
    var feesByDate: [Int32: Int128] = [:]
    for r in clearingRows.rows {
      let net = r.sellAmount - r.buyAmount - Int128(r.fees.total)
      netFromRows[Self.settlementKey(r.tradeDate, r.participant), default: 0] += net
      feesByDate[r.tradeDate, default: 0] += Int128(r.fees.total)
    }
    var netByDate: [Int32: Int128] = [:]
    for s in settlementRows.rows {
      let expected = netFromRows[Self.settlementKey(s.tradeDate, s.participant)] ?? 0
      if expected != s.netFen {
        report(
          "settlement \(s.tradeDate)/\(participants.rows[Int(s.participant)].id): net \(s.netFen), clearing rows say \(expected)"
        )
      }
      netByDate[s.tradeDate, default: 0] += s.netFen
    }
    for d in days.rows {
      let net = netByDate[d.date] ?? 0
      let fees = feesByDate[d.date] ?? 0
      if net != -fees { report("trade date \(d.date): net cash adds up to \(net), fees are \(fees)") }
    }
    for p in participants.rows where p.balance < 0 { report("participant \(p.id): balance \(p.balance) < 0") }
    return problems
  }

  /// What a walk of some positions found: holdings per security, lots linked, and the
  /// first `limit` problems in position order.
  struct PositionCheck: Sendable {
    var held: [Int64]
    var lotsSeen = 0
    var problems: [String] = []
  }

  /// The position half of the self-check over `range` (`lots`: each position's lots too).
  func checkPositions(_ range: Range<Int>, limit: Int, lots: Bool) -> PositionCheck {
    var check = PositionCheck(held: [Int64](repeating: 0, count: securities.count))
    func report(_ text: @autoclosure () -> String) {
      if check.problems.count < limit { check.problems.append(text()) }
    }
    for i in range {
      // The first lots of the positions a few rows ahead are loaded while this one is
      // walked (the day's lots lie anywhere in the pool: a miss each, one after another).
      if lots && i + Self.selfCheckLotDistance < range.upperBound {
        lotPool.prefetch(positions.rows[i + Self.selfCheckLotDistance].firstLot)
      }
      let p = positions.rows[i]
      check.held[Int(p.security)] += p.quantity
      func name() -> String { "\(accounts.rows[Int(p.account)].id)/\(securities.rows[Int(p.security)].code)" }
      if p.available < 0 || p.withheld < 0 || p.quantity < p.available + p.withheld {
        report(
          "position \(name()): quantity \(p.quantity) < available \(p.available) + withheld \(p.withheld), or negative"
        )
      }
      guard lots else { continue }
      var lotTotal: Int64 = 0
      var nonPositive = false
      var slot = p.firstLot
      while slot != LotPool.none {
        let quantity = lotPool[slot].quantity
        lotTotal += quantity
        nonPositive = nonPositive || quantity <= 0
        check.lotsSeen += 1
        slot = lotPool.next(after: slot)
      }
      if lotTotal != p.quantity || nonPositive {
        report("position \(name()): lots add up to \(lotTotal), quantity is \(p.quantity)")
      }
    }
    return check
  }

  /// Positions ahead of the one checked whose first lot is prefetched.
  static let selfCheckLotDistance = 16

  func enforceSelfCheck(seq: Int64, event: String, lots: Bool = true) {
    let problems = selfCheckViolations(limit: 10, lots: lots)
    if !problems.isEmpty {
      preconditionFailure(
        "self-check failed at seq \(seq) (\(event)); the engine stops without writing outputs:\n"
          + problems.joined(separator: "\n"))
    }
  }
}
