import XCTest

final class ClearingKernelV2TestsPlaceholder: XCTestCase {
  func testBuilds() { XCTAssertTrue(true) }
}
