// BackgroundWork (TallyFormat): a yielding work runs on a thread of the lowest
// scheduling priority, and only that thread: the caller's and a normal work's stay.
import Foundation
import TallyFormat
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

final class BackgroundWorkTests: XCTestCase {
  /// The calling thread's nice value (Linux: a thread's own).
  private static func niceOfThisThread() -> Int32 {
    #if os(Linux)
      errno = 0
      return getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
    #else
      return 0
    #endif
  }

  func testYieldingWorkRunsAtTheLowestPriorityAndOnlyIt() throws {
    #if !os(Linux)
      throw XCTSkip("thread nice values are Linux's")
    #else
      let caller = Self.niceOfThisThread()
      let yielding = BackgroundWork(yielding: true) { Self.niceOfThisThread() }.wait()
      let normal = BackgroundWork { Self.niceOfThisThread() }.wait()
      XCTAssertEqual(yielding, BackgroundWork<Int32>.yieldingNice, "the yielding work's thread is niced")
      XCTAssertEqual(normal, caller, "a normal work runs at its caller's priority")
      XCTAssertEqual(Self.niceOfThisThread(), caller, "the caller's priority is unchanged")
      // And its result is the work's, as any BackgroundWork's.
      XCTAssertEqual(BackgroundWork(yielding: true) { (1...100).reduce(0, +) }.wait(), 5050)
    #endif
  }
}
