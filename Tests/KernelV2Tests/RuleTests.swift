// Hand-computed checks of key SPEC rules on tiny markets built in code.
import KernelAPI
import KernelV2
import TallyFormat
import XCTest

final class RuleTests: XCTestCase {
  /// Two participants (P1 unit U1, P2 unit U2), accounts A/B/C (C an institution),
  /// securities S (STOCK), F (FUND), D (BOND).
  func market(holdings: [(String, String, Int64, Int32)], fault: PlantedFault? = nil) -> V2Kernel {
    let accounts: [(id: String, kind: AccountKind)] = [
      ("A", .individual), ("B", .individual), ("C", .institution),
    ]
    let securities = [
      ReferenceData.SecurityRow(code: "S", isin: "X1", name: "s", kind: .stock),
      ReferenceData.SecurityRow(code: "F", isin: "X2", name: "f", kind: .fund),
      ReferenceData.SecurityRow(code: "D", isin: "X3", name: "d", kind: .bond),
    ]
    let accountIndex = ["A": Int32(0), "B": 1, "C": 2]
    let securityIndex = ["S": Int32(0), "F": 1, "D": 2]
    let rows = holdings.map {
      ReferenceData.HoldingRow(
        account: accountIndex[$0.0]!, security: securityIndex[$0.1]!, quantity: $0.2, acquiredDate: $0.3)
    }
    let ref = ReferenceData(
      calendar: [20260105, 20260106, 20260107, 20260108], securities: securities,
      participants: [("P1", "one"), ("P2", "two")], units: [("U1", "P1"), ("U2", "P2")], accounts: accounts,
      holdings: rows, feeRows: ReferenceData.builtInFeeRows)
    return V2Kernel(reference: ref, plantedFault: fault)
  }

  var seq: Int64 = 0

  @discardableResult
  func send(_ k: inout V2Kernel, _ line: String) -> Outcome {
    seq += 1
    return k.apply(EventParser.parse(ArraySlice(Array(line.utf8))), seq: seq)
  }

  func holding(_ k: V2Kernel, _ account: String, _ security: String) -> [Int64] {
    var out: [Int64] = []
    k.forEachHolding { a, s, q, av, w in
      if a.text == account && s.text == security { out = [q, av, w] }
    }
    return out
  }

  func testStockFeesAndHalfUpBondFee() {
    var k = market(holdings: [("A", "S", 1000, 20250101), ("A", "D", 10000, 20250101)])
    send(&k, "OPEN,20260105")
    XCTAssertEqual(send(&k, "TRADE,1,20260105,093000,S,10.00,300,B,U2,A,U1"), .applied)
    // amount 3000.00: handling 0.1023 → 0.10, regulatory 0.06, transfer 0.03, stamp (sell) 1.50.
    let c = k.report(holdings: false).clearing
    XCTAssertEqual(c.count, 2)
    XCTAssertEqual(c[0].participant, "P1")
    XCTAssertEqual(c[0].fees, SideFees(handling: 10, regulatory: 6, transfer: 3, stamp: 150))
    XCTAssertEqual(c[1].fees, SideFees(handling: 10, regulatory: 6, transfer: 3, stamp: 0))
    // BOND 5000.00 × 0.000001 = 0.005 CNY exactly: half-up to 0.01; the planted fault truncates to 0.
    XCTAssertEqual(send(&k, "TRADE,2,20260105,093000,D,100.00,50,B,U2,A,U1"), .applied)
    let d = k.report(holdings: false).clearing.first { $0.security == "D" && $0.participant == "P2" }
    XCTAssertEqual(d?.fees.handling, 1)
    var f = market(holdings: [("A", "D", 10000, 20250101)], fault: .feeRounding)
    seq = 0
    send(&f, "OPEN,20260105")
    send(&f, "TRADE,2,20260105,093000,D,100.00,50,B,U2,A,U1")
    XCTAssertEqual(f.report(holdings: false).clearing.first { $0.participant == "P2" }?.fees.handling, 0)
  }

  func testAvailabilityTPlusOneForStockTPlusZeroForBond() {
    var k = market(holdings: [("A", "S", 1000, 20250101), ("A", "D", 100, 20250101)])
    send(&k, "OPEN,20260105")
    send(&k, "TRADE,1,20260105,093000,S,10.00,300,B,U2,A,U1")
    send(&k, "TRADE,2,20260105,093000,D,100.00,40,B,U2,A,U1")
    XCTAssertEqual(holding(k, "B", "S"), [300, 0, 0])
    XCTAssertEqual(holding(k, "B", "D"), [40, 40, 0])
    XCTAssertEqual(send(&k, "TRADE,3,20260105,093000,S,10.00,1,A,U1,B,U2"), .rejected(.insufficientHoldings))
    send(&k, "CLOSE,20260105")
    send(&k, "OPEN,20260106")
    XCTAssertEqual(holding(k, "B", "S"), [300, 300, 0])
  }

  func testDividendTaxByHoldingPeriod() {
    // A's lot was bought 20251210; a 0.50 dividend accrues at CLOSE 20260105; a sale of
    // 400 on 20260106 holds 27 days: 20% × 400 × 0.50 = 40.00. B (same lot age, 10% band
    // would need > 30 days) is an institution-free check: C is an institution, untaxed.
    var k = market(holdings: [("A", "S", 1000, 20251210), ("C", "S", 1000, 20251210)])
    send(&k, "DIVIDEND,S,20260105,0.50")
    send(&k, "OPEN,20260105")
    send(&k, "CLOSE,20260105")
    send(&k, "OPEN,20260106")
    send(&k, "TRADE,1,20260106,093000,S,10.00,400,B,U2,A,U1")
    send(&k, "TRADE,2,20260106,093000,S,10.00,400,B,U2,C,U1")
    let r = k.report(holdings: false)
    XCTAssertEqual(r.entitlements.map(\.value), [50000, 50000])
    XCTAssertEqual(r.tax.count, 1)
    XCTAssertEqual(r.tax.first?.taxFen, 4000)
    XCTAssertEqual(r.tax.first?.quantity, 400)
  }

  func testBonusLargestRemainderTiesToSmallerAccount() {
    for (fault, winner) in [(nil, "A"), (PlantedFault.corporateAction, "C")] as [(PlantedFault?, String)] {
      var k = market(
        holdings: [("A", "S", 1, 20250101), ("B", "S", 1, 20250101), ("C", "S", 1, 20250101)], fault: fault)
      seq = 0
      send(&k, "BONUS,S,20260105,3,1")
      send(&k, "OPEN,20260105")
      send(&k, "CLOSE,20260105")
      let e = k.report(holdings: false).entitlements
      XCTAssertEqual(e.map(\.account), [winner])
      send(&k, "OPEN,20260106")
      XCTAssertEqual(holding(k, winner, "S"), [2, 2, 0])
    }
  }

  func testDefaultWithholdsAndCureReleases() {
    var k = market(holdings: [("A", "S", 1000, 20250101)])
    send(&k, "OPEN,20260105")
    send(&k, "TRADE,1,20260105,093000,S,10.00,300,B,U2,A,U1")
    send(&k, "CLOSE,20260105")
    send(&k, "OPEN,20260106")
    send(&k, "SETTLE,20260106")
    let s = k.report(holdings: false).settlement
    XCTAssertEqual(s.map(\.status), [.settled, .defaulted])
    XCTAssertEqual(holding(k, "B", "S"), [300, 0, 300])
    send(&k, "DEPOSIT,P2,5000")
    send(&k, "CLOSE,20260106")
    send(&k, "OPEN,20260107")
    send(&k, "SETTLE,20260107")
    XCTAssertEqual(k.report(holdings: false).settlement.map(\.status), [.settled, .cured])
    XCTAssertEqual(holding(k, "B", "S"), [300, 300, 0])
    // 5000.00 − (3000.00 + 0.10 + 0.06 + 0.03) = 1999.81
    XCTAssertEqual(k.report(holdings: false).balances.map(\.balanceFen), [299831, 199981])
    XCTAssertEqual(k.selfCheckViolations(limit: 5), [])
  }
}
