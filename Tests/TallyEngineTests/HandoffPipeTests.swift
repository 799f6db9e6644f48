// The hand-over between threads (`HandoffPipe`: a resume's read-ahead of log entries,
// event lines split on the other core): items arrive in order, at most `depth` wait, a
// producer's failure reaches the taker after the items before it, and a cancelled pipe
// lets a blocked producer go.
import Foundation
import TallyFormat
import XCTest

@testable import TallyEngine

final class HandoffPipeTests: XCTestCase {
  func entry(_ first: Int64) -> Int64 { first }

  func testEntriesArriveInOrderAndAtMostDepthWait() throws {
    let pipe = HandoffPipe<Int64>(depth: 4)
    let queued = Counter()
    let reader = BackgroundWork { () -> Bool in
      for k in 1...50 {
        guard pipe.put(self.entry(Int64(k))) else { return false }
        queued.add()
      }
      pipe.finish(nil)
      return true
    }
    Thread.sleep(forTimeInterval: 0.2)
    XCTAssertEqual(queued.value, pipe.depth, "the reader waits with depth entries queued")
    var got: [Int64] = []
    while let e = try pipe.take() { got.append(e) }
    XCTAssertEqual(got, Array(1...50))
    XCTAssertTrue(reader.wait())
  }

  func testAFailureComesAfterTheEntriesBeforeIt() throws {
    let pipe = HandoffPipe<Int64>(depth: 4)
    let reader = BackgroundWork { () -> Bool in
      _ = pipe.put(self.entry(1))
      _ = pipe.put(self.entry(2))
      pipe.finish(DurableError("state folder is damaged: test"))
      return true
    }
    XCTAssertEqual(try pipe.take(), 1)
    XCTAssertEqual(try pipe.take(), 2)
    XCTAssertThrowsError(try pipe.take()) { XCTAssertTrue("\($0)".contains("damaged: test")) }
    XCTAssertTrue(reader.wait())
  }

  func testPutIfRoomNeverWaits() throws {
    let pipe = HandoffPipe<Int64>(depth: 2)
    XCTAssertTrue(pipe.putIfRoom(1))
    XCTAssertTrue(pipe.putIfRoom(2))
    XCTAssertFalse(pipe.putIfRoom(3), "full: not taken, and no wait")
    XCTAssertEqual(pipe.takeIfAny(), 1)
    XCTAssertTrue(pipe.putIfRoom(4))
    XCTAssertEqual(pipe.takeIfAny(), 2)
    XCTAssertEqual(pipe.takeIfAny(), 4)
    XCTAssertNil(pipe.takeIfAny())
  }

  func testCancelReleasesABlockedReader() {
    let pipe = HandoffPipe<Int64>(depth: 4)
    let reader = BackgroundWork { () -> Bool in
      for k in 1...100 where !pipe.put(self.entry(Int64(k))) { return false }
      return true
    }
    Thread.sleep(forTimeInterval: 0.1)
    pipe.cancel()
    XCTAssertFalse(reader.wait(), "the reader saw the cancel instead of blocking for ever")
  }
}

/// A counter two threads share (the test's own, behind a lock).
final class Counter: @unchecked Sendable {
  private let lock = NSLock()
  private var n = 0
  func add() { lock.withLock { n += 1 } }
  var value: Int { lock.withLock { n } }
}
