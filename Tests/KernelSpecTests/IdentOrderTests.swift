// SPEC §1: identifiers compare and sort by their UTF-8 bytes (`10` < `100` < `9`),
// never by Swift's Unicode-aware String order. Ident's `<` (a byte loop over contiguous
// storage) agrees with a plain byte-array comparison on every pair of a mixed set.
import KernelAPI
import XCTest

final class IdentOrderTests: XCTestCase {
  func testOrderIsByteOrder() {
    let texts = [
      "", "1", "10", "100", "9", "A", "A1", "A10", "A2", "a", "Z", "é", "e\u{301}", "\u{E9}x", "账户", "账",
      "账户1",
      "A000000001", "A000000010", "A00000001", "600000", "688001", "~", "\u{7F}", "\u{80}", "ﬀ", "ff",
    ]
    for x in texts {
      for y in texts {
        let bytes = Array(x.utf8).lexicographicallyPrecedes(Array(y.utf8))
        XCTAssertEqual(Ident(x) < Ident(y), bytes, "'\(x)' < '\(y)'")
        XCTAssertEqual(Ident(x) == Ident(y), Array(x.utf8) == Array(y.utf8), "'\(x)' == '\(y)'")
      }
    }
    XCTAssertEqual(["9", "100", "10"].map(Ident.init).sorted().map(\.text), ["10", "100", "9"])
  }
}
