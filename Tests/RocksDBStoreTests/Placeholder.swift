import XCTest

final class RocksDBStoreTestsPlaceholder: XCTestCase {
  func testBuilds() { XCTAssertTrue(true) }
}
