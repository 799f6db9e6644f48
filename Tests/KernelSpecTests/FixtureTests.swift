import KernelAPI
import TallyEngine
import TallyFormat
import XCTest

final class FixtureTests: XCTestCase {
  func testEmptyRunHasSevenFilesWithHeadersOnly() throws {
    let r = try Fixture.standard.run("")
    XCTAssertEqual(r.clearing, csv(Header.clearing))
    XCTAssertEqual(r.settlement, csv(Header.settlement))
    XCTAssertEqual(r.balances, balances())
    // Opening holdings are available at once (SPEC §2); sorted by account, then security bytes.
    XCTAssertEqual(
      r.holdings,
      csv(
        Header.holdings, "A1,019547,1000,1000,0", "A1,510300,1000,1000,0", "A1,600000,1000,1000,0",
        "B1,600000,2000,2000,0"))
    XCTAssertEqual(r.entitlements, csv(Header.entitlements))
    XCTAssertEqual(r.tax, csv(Header.tax))
    XCTAssertEqual(r.rejections, csv(Header.rejections))
  }
}
