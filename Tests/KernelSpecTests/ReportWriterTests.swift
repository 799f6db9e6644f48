import TallyFormat
import XCTest

// The output formats of SPEC §5 for values beyond 64 bits: sums of money are Int128
// (10^4 deposits of 10^13 CNY exceed Int64 fen), and the writer prints them in
// 19-digit groups.
@testable import KernelAPI

final class ReportWriterTests: XCTestCase {
  func balancesFile(_ fen: Int128) -> String {
    var r = Report()
    r.balances = [Report.Balance(participant: "P1", balanceFen: fen)]
    let files = ReportWriter.render(r)
    return String(decoding: files.first { $0.name == "balances.csv" }!.bytes, as: UTF8.self)
  }

  func testMoneyBeyond64BitsIsPrintedDigitForDigit() {
    let cases: [(Int128, String)] = [
      (0, "0.00"), (7, "0.07"), (-123_450, "-1234.50"),
      (Int128(UInt64.max), "184467440737095516.15"),
      (Int128(UInt64.max) + 1, "184467440737095516.16"),
      // 10^4 deposits of 10^13 CNY: 10^19 CNY = 10^21 fen.
      (1_000_000_000_000_000_000_000, "10000000000000000000.00"),
      (-1_234_567_890_123_456_789_012_345, "-12345678901234567890123.45"),
      (100_000_000_000_000_000_005, "1000000000000000000.05"),
    ]
    for (fen, text) in cases {
      XCTAssertEqual(balancesFile(fen), "participant,balance\nP1,\(text)\n", "\(fen)")
      XCTAssertEqual(ReportWriter.money(fen), text, "the String path agrees for \(fen)")
    }
  }
}
