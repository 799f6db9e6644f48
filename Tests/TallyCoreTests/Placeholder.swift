import XCTest

final class TallyCoreTestsPlaceholder: XCTestCase {
  func testBuilds() { XCTAssertTrue(true) }
}
