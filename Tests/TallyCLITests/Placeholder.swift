import XCTest

final class TallyCLITestsPlaceholder: XCTestCase {
  func testBuilds() { XCTAssertTrue(true) }
}
