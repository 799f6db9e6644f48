import XCTest

final class TallyChaosTestsPlaceholder: XCTestCase {
  func testBuilds() { XCTAssertTrue(true) }
}
