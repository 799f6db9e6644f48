// V1's PageWarmer maps reserved memory on another thread and writes no byte of it.
import Foundation
import KernelV1
import XCTest

#if canImport(Glibc)
  import Glibc

  final class PageWarmerTests: XCTestCase {
    func testWarmingMapsEveryPageAndChangesNoByte() throws {
      try XCTSkipUnless(PageWarmer.enabled, "TALLY_PAGE_WARMER=0 in this environment")
      try check(yielding: false)
    }

    /// The day's room is warmed at the lowest priority (V1's `reserveCapacity`): on an
    /// idle machine it is mapped all the same.
    func testAYieldingWarmerMapsEveryPageToo() throws {
      try XCTSkipUnless(PageWarmer.enabled, "TALLY_PAGE_WARMER=0 in this environment")
      try check(yielding: true)
    }

    func check(yielding: Bool) throws {
      let bytes = 32 << 20
      let page = Int(sysconf(Int32(_SC_PAGESIZE)))
      guard let raw = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
        raw != MAP_FAILED
      else { return XCTFail("mmap failed") }
      defer { munmap(raw, bytes) }
      _ = madvise(raw, bytes, MADV_NOHUGEPAGE)  // count 4 KiB pages
      let base = raw.assumingMemoryBound(to: UInt8.self)
      // Two pages written by "the kernel" before the warmer runs.
      for k in 0..<page { base[k] = UInt8(truncatingIfNeeded: k &* 7 &+ 1) }
      for k in 0..<page { base[bytes - page + k] = UInt8(truncatingIfNeeded: k &* 13 &+ 5) }
      func resident() -> Int {
        var vec = [UInt8](repeating: 0, count: bytes / page)
        _ = mincore(raw, bytes, &vec)
        return vec.reduce(0) { $0 + Int($1 & 1) }
      }
      XCTAssertLessThan(resident(), bytes / page / 2, "untouched memory is not mapped yet")
      PageWarmer.warm([MemoryRegion(start: UInt(bitPattern: raw), bytes: bytes)], yielding: yielding)
      let deadline = Date().addingTimeInterval(20)
      while resident() < bytes / page && Date() < deadline { usleep(10_000) }
      XCTAssertEqual(resident(), bytes / page, "every page mapped by the warmer")
      for k in 0..<page { XCTAssertEqual(base[k], UInt8(truncatingIfNeeded: k &* 7 &+ 1)) }
      for k in 0..<page { XCTAssertEqual(base[bytes - page + k], UInt8(truncatingIfNeeded: k &* 13 &+ 5)) }
      var nonzero = 0
      for k in stride(from: page, to: bytes - page, by: 1) where base[k] != 0 { nonzero += 1 }
      XCTAssertEqual(nonzero, 0, "the warmer wrote no byte")
    }
  }
#endif
