// The opening state's two paths (holdings grouped by account in account order, or
// not) against a plain model of SPEC §2/§4.5, and holdings.csv's order whether or not
// the account rows are in identifier order.
import KernelAPI
import KernelV2
import TallyFormat
import XCTest

final class OpeningOrderTests: XCTestCase {
  struct ModelPosition: Equatable {
    var account: Int32
    var security: Int32
    var quantity: Int64
    var lots: [Lot]
  }

  /// SPEC's opening, plainly: positions in order of first appearance, lot creation
  /// numbers from 1 in file order, each position's lots by (acquired, creation).
  func model(_ holdings: [ReferenceData.HoldingRow]) -> [ModelPosition] {
    var out: [ModelPosition] = []
    for (n, h) in holdings.enumerated() {
      let lot = Lot(acquired: h.acquiredDate, creation: Int64(n + 1), accruedMicro: 0, quantity: h.quantity)
      if let i = out.firstIndex(where: { $0.account == h.account && $0.security == h.security }) {
        out[i].quantity += h.quantity
        out[i].lots.append(lot)
      } else {
        out.append(ModelPosition(account: h.account, security: h.security, quantity: h.quantity, lots: [lot]))
      }
    }
    for i in out.indices { out[i].lots.sort { $0.orderedBefore($1) } }
    return out
  }

  func market(
    accounts: [String], securities: [String], holdings: [ReferenceData.HoldingRow]
  ) -> V2Kernel {
    let ref = ReferenceData(
      calendar: [20260105, 20260106, 20260107, 20260108],
      securities: securities.map {
        ReferenceData.SecurityRow(code: $0, isin: "X" + $0, name: $0, kind: .stock)
      },
      participants: [("P1", "one"), ("P2", "two")], units: [("U1", "P1"), ("U2", "P2")],
      accounts: accounts.map { (id: $0, kind: AccountKind.individual) }, holdings: holdings,
      feeRows: ReferenceData.builtInFeeRows)
    return V2Kernel(reference: ref, plantedFault: nil)
  }

  /// The kernel's positions, issued quantities and next creation number, decoded from
  /// its canonical rows.
  func opening(_ k: V2Kernel) throws -> (positions: [ModelPosition], issued: [Int64], nextCreation: Int64) {
    var rows: [(StateTable, [UInt8])] = []
    k.forEachEncodedRow { table, _, bytes in rows.append((table, bytes)) }
    var positions: [ModelPosition] = []
    var issued: [Int64] = []
    var next: Int64 = 0
    for (table, bytes) in rows {
      var r = ByteReader(bytes)
      switch table {
      case .positions:
        let (p, lots) = try PositionRecord.decode(from: &r)
        XCTAssertEqual(p.available, p.quantity)
        XCTAssertEqual(p.withheld, 0)
        positions.append(
          ModelPosition(account: p.account, security: p.security, quantity: p.quantity, lots: lots))
      case .securities: issued.append(try SecurityRecord(from: &r).issuedQuantity)
      case .globals: next = try GlobalRecord(from: &r).nextLotCreation
      default: break
      }
    }
    return (positions, issued, next)
  }

  /// Deterministic pseudo-random holdings: few dates, so that equal dates are ordered
  /// by creation number and later lines often carry earlier dates.
  func holdings(count: Int, accounts: Int, securities: Int, seed: UInt64) -> [ReferenceData.HoldingRow] {
    var x = seed
    func next(_ n: Int) -> Int {
      x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return Int((x >> 33) % UInt64(n))
    }
    let dates: [Int32] = [20240102, 20240615, 20250101, 20251231]
    return (0..<count).map { _ in
      ReferenceData.HoldingRow(
        account: Int32(next(accounts)), security: Int32(next(securities)),
        quantity: Int64(100 * (1 + next(9))),
        acquiredDate: dates[next(dates.count)])
    }
  }

  func testOpeningEqualsModelWhateverTheHoldingsOrder() throws {
    let accounts = (1...8).map { "A\($0)" }
    let securities = ["S1", "S2", "S3", "S4"]
    let random = holdings(count: 160, accounts: accounts.count, securities: securities.count, seed: 7)
    var ascending = random
    ascending.sort { $0.account < $1.account }  // not stable: any order within an account
    var orders: [(String, [ReferenceData.HoldingRow])] = [
      ("grouped, accounts ascending", ascending),
      ("grouped, accounts descending", ascending.reversed()),
      ("random", random),
    ]
    // Grouped in order until an account comes back at the very end (the grouped path
    // gives up after making most positions).
    var comesBack = ascending
    let first = comesBack.removeFirst()
    comesBack.append(first)
    orders.append(("an account comes back at the end", comesBack))
    // Every account's lines together, positions of one account interleaved.
    orders.append(
      (
        "grouped, one account",
        random.map {
          var h = $0; h.account = 3; return h
        }
      ))
    for (name, rows) in orders {
      let k = market(accounts: accounts, securities: securities, holdings: rows)
      let got = try opening(k)
      let want = model(rows)
      XCTAssertEqual(got.positions, want, name)
      XCTAssertEqual(got.nextCreation, Int64(rows.count + 1), name)
      var issued = [Int64](repeating: 0, count: securities.count)
      for h in rows { issued[Int(h.security)] += h.quantity }
      XCTAssertEqual(got.issued, issued, name)
      XCTAssertTrue(k.selfCheckViolations(limit: 10).isEmpty, name)
    }
  }

  /// holdings.csv rows: by account bytes, then security bytes, each live position once.
  func checkHoldingsOrder(_ k: V2Kernel, _ name: String, file: StaticString = #filePath, line: UInt = #line) {
    var rows: [(String, String, Int64)] = []
    k.forEachHolding { a, s, q, _, _ in rows.append((a.text, s.text, q)) }
    for i in rows.indices.dropFirst() {
      let x = Array(rows[i - 1].0.utf8) + [0] + Array(rows[i - 1].1.utf8)
      let y = Array(rows[i].0.utf8) + [0] + Array(rows[i].1.utf8)
      XCTAssertTrue(
        x.lexicographicallyPrecedes(y), "\(name): \(rows[i - 1]) before \(rows[i])", file: file, line: line)
    }
    let report = k.report(holdings: true).holdings.map { ($0.account, $0.security, $0.quantity) }
    XCTAssertEqual(report.count, rows.count, name, file: file, line: line)
    for (a, b) in zip(report, rows) { XCTAssertTrue(a == b, name, file: file, line: line) }
  }

  func testHoldingsInIdentifierOrderWhateverTheRowOrder() throws {
    // Identifiers whose byte order is not their row order ("A10" < "A9", "S10" < "S2").
    let unordered = ["B7", "A10", "A9", "Z", "A1", "A"]
    let securities = ["S2", "S10", "S1"]
    let rows = holdings(count: 60, accounts: unordered.count, securities: securities.count, seed: 11)
    let k = market(accounts: unordered, securities: securities, holdings: rows)
    checkHoldingsOrder(k, "accounts out of order")
    let live = Set(
      model(rows).map { "\(unordered[Int($0.account)]),\(securities[Int($0.security)]),\($0.quantity)" })
    var seen = Set<String>()
    k.forEachHolding { a, s, q, _, _ in seen.insert("\(a.text),\(s.text),\(q)") }
    XCTAssertEqual(seen, live)

    // Accounts in order at first; an account added later sorts before them all, and a
    // trade gives it a position (a new position row at the end of the table).
    let ordered = ["A1", "A2", "A3", "B1"]
    let rows2 = holdings(count: 40, accounts: ordered.count, securities: securities.count, seed: 12)
    var k2 = market(accounts: ordered, securities: securities, holdings: rows2)
    checkHoldingsOrder(k2, "accounts in order")
    var seq: Int64 = 0
    func send(_ line: String) -> Outcome {
      seq += 1
      return k2.apply(EventParser.parse(ArraySlice(Array(line.utf8))), seq: seq)
    }
    XCTAssertEqual(send("ACCOUNT,A0,INDIVIDUAL"), .applied)
    XCTAssertEqual(send("ACCOUNT,B0,INDIVIDUAL"), .applied)
    XCTAssertEqual(send("OPEN,20260105"), .applied)
    let seller = model(rows2).first { $0.quantity >= 200 }!
    let code = securities[Int(seller.security)]
    let from = ordered[Int(seller.account)]
    XCTAssertEqual(send("TRADE,T1,20260105,093000,\(code),10.00,100,A0,U1,\(from),U2"), .applied)
    XCTAssertEqual(send("TRADE,T2,20260105,093000,\(code),10.00,100,B0,U1,\(from),U2"), .applied)
    checkHoldingsOrder(k2, "accounts added out of order")
    var accountsSeen: [String] = []
    k2.forEachHolding { a, _, _, _, _ in if accountsSeen.last != a.text { accountsSeen.append(a.text) } }
    XCTAssertEqual(accountsSeen.first, "A0")
    XCTAssertTrue(accountsSeen.contains("B0"))
  }
}
