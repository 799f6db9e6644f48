import XCTest

final class TallyClusterTestsPlaceholder: XCTestCase {
  func testBuilds() { XCTAssertTrue(true) }
}
