// holdings.csv walked in parts (`forEachHolding(part:of:)`): the parts, one after
// another, give exactly the whole walk's rows in its order, whatever the number of
// parts, whether or not the account and security rows are in identifier order, with
// accounts holding many positions, none, or only positions sold out, and positions
// made during the day at the end of the table. The whole walk itself is checked
// against the positions' canonical rows sorted plainly (SPEC §5).
import Foundation
import KernelAPI
import TallyFormat
import XCTest

@testable import KernelV2

final class HoldingsPartsTests: XCTestCase {
  struct Row: Equatable, CustomStringConvertible {
    var account: String
    var security: String
    var quantity: Int64
    var available: Int64
    var withheld: Int64
    var description: String { "\(account),\(security),\(quantity),\(available),\(withheld)" }
  }

  /// Deterministic pseudo-random numbers (an LCG: the same state on every run).
  struct Draw {
    var x: UInt64
    mutating func next(_ n: Int) -> Int {
      x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return Int((x >> 33) % UInt64(n))
    }
    mutating func shuffled<T>(_ a: [T]) -> [T] {
      var a = a
      for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, next(i + 1)) }
      return a
    }
  }

  /// A state after a day of trades: `heavy` accounts hold every security, the others
  /// about `perAccount` opening lines each (some none); then trades sell some positions
  /// out (quantity 0: no row) and give buyers new positions (rows at the table's end,
  /// not in account order).
  func market(
    accounts: [String], securities: [String], perAccount: Int, heavy: Int, trades: Int, seed: UInt64
  ) -> V2Kernel {
    var draw = Draw(x: seed)
    let dates: [Int32] = [20240102, 20250101, 20251231]
    var holdings: [ReferenceData.HoldingRow] = []
    for a in 0..<heavy {
      for s in securities.indices {
        holdings.append(
          ReferenceData.HoldingRow(
            account: Int32(a), security: Int32(s), quantity: Int64(100 * (1 + draw.next(5))),
            acquiredDate: dates[draw.next(dates.count)]))
      }
    }
    for _ in 0..<(accounts.count * perAccount) {
      holdings.append(
        ReferenceData.HoldingRow(
          account: Int32(draw.next(accounts.count)), security: Int32(draw.next(securities.count)),
          quantity: Int64(100 * (1 + draw.next(9))), acquiredDate: dates[draw.next(dates.count)]))
    }
    let ref = ReferenceData(
      calendar: [20260105, 20260106, 20260107],
      securities: securities.map {
        ReferenceData.SecurityRow(code: $0, isin: "X" + $0, name: $0, kind: .stock)
      },
      participants: [("P1", "one"), ("P2", "two")], units: [("U1", "P1"), ("U2", "P2")],
      accounts: accounts.map { (id: $0, kind: AccountKind.individual) }, holdings: draw.shuffled(holdings),
      feeRows: ReferenceData.builtInFeeRows)
    var k = V2Kernel(reference: ref, plantedFault: nil)
    var seq: Int64 = 0
    func send(_ line: String) {
      seq += 1
      XCTAssertEqual(k.apply(EventParser.parse(ArraySlice(Array(line.utf8))), seq: seq), .applied, line)
    }
    send("OPEN,20260105")
    var live: [Row] = []
    k.forEachHolding { a, s, q, av, w in
      live.append(Row(account: a.text, security: s.text, quantity: q, available: av, withheld: w))
    }
    for t in 0..<min(trades, live.count) {
      let sold = live[draw.next(live.count)]
      guard sold.available > 0 else { continue }
      var buyer = accounts[draw.next(accounts.count)]
      if buyer == sold.account { buyer = accounts[(accounts.firstIndex(of: buyer)! + 1) % accounts.count] }
      // Every third trade sells the whole position.
      let quantity = t % 3 == 0 ? sold.available : min(100, sold.available)
      send("TRADE,T\(t),20260105,093000,\(sold.security),10.00,\(quantity),\(buyer),U1,\(sold.account),U2")
      if let i = live.firstIndex(where: { $0.account == sold.account && $0.security == sold.security }) {
        live[i].available -= quantity
      }
    }
    return k
  }

  /// holdings.csv's rows from the canonical rows, sorted plainly: by account bytes,
  /// then security bytes, positions of quantity and withheld 0 left out.
  func expectedRows(_ k: V2Kernel) throws -> [Row] {
    var accounts: [String] = []
    var securities: [String] = []
    var positions: [PositionRecord] = []
    var failure: Error?
    k.forEachEncodedRow { table, _, bytes in
      var r = ByteReader(bytes)
      do {
        switch table {
        case .accounts: accounts.append(try AccountRecord(from: &r).id.text)
        case .securities: securities.append(try SecurityRecord(from: &r).code.text)
        case .positions: positions.append(try PositionRecord.decode(from: &r).0)
        default: break
        }
      } catch {
        failure = error
      }
    }
    if let failure { throw failure }
    var rows = positions.filter { $0.quantity > 0 || $0.withheld > 0 }.map {
      Row(
        account: accounts[Int($0.account)], security: securities[Int($0.security)], quantity: $0.quantity,
        available: $0.available, withheld: $0.withheld)
    }
    rows.sort { x, y in
      x.account != y.account
        ? Array(x.account.utf8).lexicographicallyPrecedes(Array(y.account.utf8))
        : Array(x.security.utf8).lexicographicallyPrecedes(Array(y.security.utf8))
    }
    return rows
  }

  func whole(_ k: V2Kernel) -> [Row] {
    var rows: [Row] = []
    k.forEachHolding { a, s, q, av, w in
      rows.append(Row(account: a.text, security: s.text, quantity: q, available: av, withheld: w))
    }
    return rows
  }

  func part(_ k: V2Kernel, _ part: Int, of parts: Int) -> [Row] {
    var rows: [Row] = []
    k.forEachHolding(part: part, of: parts) { a, s, q, av, w in
      rows.append(Row(account: a.text, security: s.text, quantity: q, available: av, withheld: w))
    }
    return rows
  }

  /// The parts against the whole walk, and the whole walk against the plain sort.
  /// `balanced`: no part holds more than twice its share of the rows (the point of
  /// cutting the walk), checked for states large enough to have shares.
  func check(
    _ k: V2Kernel, _ name: String, parts counts: [Int], balanced: Bool,
    file: StaticString = #filePath, line: UInt = #line
  ) throws {
    let all = whole(k)
    XCTAssertEqual(all, try expectedRows(k), "\(name): the whole walk", file: file, line: line)
    for parts in counts {
      var joined: [Row] = []
      for p in 0..<parts {
        let rows = part(k, p, of: parts)
        if balanced {
          XCTAssertLessThanOrEqual(
            rows.count, 2 * all.count / parts, "\(name): part \(p) of \(parts)", file: file, line: line)
        }
        joined += rows
      }
      XCTAssertEqual(joined.count, all.count, "\(name): \(parts) parts", file: file, line: line)
      XCTAssertTrue(joined == all, "\(name): \(parts) parts", file: file, line: line)
    }
  }

  let partCounts = [1, 2, 3, 4, 7, 8]

  func testPartsOfAccountsOutOfOrder() throws {
    var draw = Draw(x: 5)
    // Unpadded numbers: byte order is not numeric order ("A10" < "A9"), and the rows
    // are shuffled besides; some ids are prefixes of others, some longer than 16 bytes
    // share their first 16 (keys compare those as text), some are not ASCII.
    let long = ["ACCOUNT-LONG-PRE", "ACCOUNT-LONG-PREFIX", "ACCOUNT-LONG-PREFIX-1", "ACCOUNT-LONG-PREFIX-12"]
    let accounts = draw.shuffled(
      (1...3000).map { "A\($0)" } + ["A", "B", "A0", "Ä1", "日本", "z"] + long + long.map { $0 + "0" })
    let securities = draw.shuffled((1...40).map { "S\($0)" })
    let k = market(accounts: accounts, securities: securities, perAccount: 3, heavy: 6, trades: 600, seed: 1)
    XCTAssertGreaterThan(whole(k).count, 8000)
    try check(k, "accounts and securities out of order", parts: partCounts, balanced: true)
  }

  func testPartsOfAccountsInOrder() throws {
    let accounts = (0..<3000).map { "A" + String(String(100_000 + $0).dropFirst()) }
    let securities = (0..<40).map { "S" + String(String(100 + $0).dropFirst()) }
    let k = market(accounts: accounts, securities: securities, perAccount: 3, heavy: 6, trades: 600, seed: 2)
    try check(k, "accounts and securities in order", parts: partCounts, balanced: true)
    // Securities out of order, accounts in order.
    let k2 = market(
      accounts: accounts, securities: securities.reversed(), perAccount: 3, heavy: 6, trades: 600, seed: 3)
    try check(k2, "securities out of order", parts: partCounts, balanced: true)
  }

  func testAnAccountAddedOutOfOrderDuringTheDay() throws {
    let accounts = (0..<500).map { "B" + String(String(10_000 + $0).dropFirst()) }
    var k = market(
      accounts: accounts, securities: ["S1", "S2", "S3"], perAccount: 2, heavy: 2, trades: 100, seed: 4)
    var live: [Row] = []
    k.forEachHolding { a, s, q, av, w in
      live.append(Row(account: a.text, security: s.text, quantity: q, available: av, withheld: w))
    }
    let seller = live.first { $0.available >= 200 }!
    var seq: Int64 = 10_000
    for line in [
      "ACCOUNT,A0,INDIVIDUAL", "ACCOUNT,C0,INDIVIDUAL",
      "TRADE,X1,20260105,100000,\(seller.security),10.00,100,A0,U1,\(seller.account),U2",
      "TRADE,X2,20260105,100000,\(seller.security),10.00,100,C0,U1,\(seller.account),U2",
    ] {
      seq += 1
      XCTAssertEqual(k.apply(EventParser.parse(ArraySlice(Array(line.utf8))), seq: seq), .applied, line)
    }
    XCTAssertEqual(whole(k).first?.account, "A0")
    XCTAssertEqual(whole(k).last?.account, "C0")
    try check(k, "an account added before the others", parts: partCounts, balanced: true)
  }

  func testMorePartsThanAccounts() throws {
    var draw = Draw(x: 9)
    let unordered = draw.shuffled(["B7", "A10", "A9", "Z", "A1", "A", "C", "A100", "B70", "Q"])
    let ordered = unordered.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    let securities = ["S2", "S10", "S1", "S3"]
    for (name, accounts) in [("out of order", unordered), ("in order", ordered)] {
      let k = market(accounts: accounts, securities: securities, perAccount: 3, heavy: 1, trades: 8, seed: 6)
      try check(
        k, "\(name), more parts than accounts", parts: partCounts + [11, 16, 40], balanced: false)
    }
    // No account at all: every part is empty.
    let empty = market(accounts: [], securities: securities, perAccount: 0, heavy: 0, trades: 0, seed: 7)
    try check(empty, "no accounts", parts: [1, 2, 5], balanced: false)
  }

  /// Identifier ranks (V2IdentKey's words, then lengths, then text) are the byte order
  /// of KernelAPI's `Ident <`: prefixes, zero bytes, bytes above 0x7F, lengths around 16.
  func testIdentifierRanksAreByteOrder() {
    var draw = Draw(x: 3)
    var texts = [
      "A", "A\u{0}", "A\u{0}\u{0}", "A0", "B", "Ä", "Z", "z", "日本", "日本語", "0123456789abcde",
      "0123456789abcdef", "0123456789abcdeg", "0123456789abcdef\u{0}", "0123456789abcdef\u{0}1",
      "0123456789abcdef0", "0123456789abcdef1", "0123456789abcdef10", "0123456789abcdef\u{7f}",
      "0123456789abcdef\u{80}",
    ]
    let letters = ["0", "1", "\u{0}", "ÿ", "a"]
    for _ in 0..<600 {
      texts.append(
        String((0..<(1 + draw.next(24))).map { _ in Character(letters[draw.next(letters.count)]) }))
    }
    var seen = Set<String>()
    let ids = texts.filter { seen.insert($0).inserted }.map(Ident.init)
    let rank = V2Kernel.ranks(ids) { $0 }
    var byRank = ids
    for (i, r) in rank.enumerated() { byRank[Int(r)] = ids[i] }
    for i in byRank.indices.dropFirst() {
      XCTAssertTrue(byRank[i - 1] < byRank[i], "\(byRank[i - 1]) before \(byRank[i])")
    }
  }

  /// The parts of one kernel value walked on several threads at once (as ReportWriter
  /// does) give the same rows as one after another.
  func testPartsWalkedAtOnce() throws {
    var draw = Draw(x: 8)
    let accounts = draw.shuffled((1...2000).map { "A\($0)" })
    let k = market(
      accounts: accounts, securities: (1...30).map { "S\($0)" }, perAccount: 3, heavy: 4, trades: 300, seed: 8
    )
    let all = whole(k)
    for parts in [2, 4, 8] {
      let results = PartResults<Row>(parts)
      DispatchQueue.concurrentPerform(iterations: parts) { p in
        var rows: [Row] = []
        k.forEachHolding(part: p, of: parts) { a, s, q, av, w in
          rows.append(Row(account: a.text, security: s.text, quantity: q, available: av, withheld: w))
        }
        results.lock.withLock { results.rows[p] = rows }
      }
      XCTAssertTrue(Array(results.rows.joined()) == all, "\(parts) parts at once")
    }
  }
}

/// What the parts walked on threads found, by part (each thread writes its own slot,
/// under the lock).
private final class PartResults<Row>: @unchecked Sendable {
  let lock = NSLock()
  var rows: [[Row]]
  init(_ n: Int) { rows = Array(repeating: [], count: n) }
}
