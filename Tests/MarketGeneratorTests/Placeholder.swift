import XCTest

final class MarketGeneratorTestsPlaceholder: XCTestCase {
  func testBuilds() { XCTAssertTrue(true) }
}
