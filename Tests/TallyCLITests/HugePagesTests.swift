// Every `tally` process backs its heap with transparent huge pages by setting glibc's
// tunable and executing itself again (Sources/tally/HugePages.swift). Checked on a real,
// long-lived process (`tally follow`, which waits for a voter that is not there): its
// environment as the kernel shows it, its PID and arguments unchanged by the
// re-execution, and `TALLY_HUGE_PAGES=0` turning it off.
import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

final class HugePagesTests: XCTestCase {
  var dir = ""

  override func setUpWithError() throws { dir = try makeTemporaryDirectory("huge-pages") }
  override func tearDown() { removeDirectory(dir) }

  /// A `tally follow` that stays up: nothing listens on its voter's ports.
  func startFollower(_ name: String, environment: [String: String] = [:]) throws -> TallyProcess {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().path
    return try TallyProcess(
      [
        "follow", "--config", root + "/Config/local.toml", "--reference",
        root + "/Tests/Fixtures/basic/reference",
        "--data", dir + "/data-" + name, "--base-port", "19400", "--out", dir + "/out-" + name,
      ], scratch: dir, environment: environment)
  }

  /// The NUL-separated `KEY=value` entries of /proc/PID/<file>.
  func procEntries(_ pid: Int32, _ file: String) -> [String] {
    guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/\(file)") else { return [] }
    return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
  }

  func testATallyProcessExecutesItselfOnceWithTheHugePageTunable() throws {
    let follower = try startFollower("on")
    defer {
      follower.kill()
      _ = follower.wait()
    }
    let pid = follower.pid
    var environment: [String] = []
    let deadline = Date().addingTimeInterval(20)
    while Date() < deadline {
      environment = procEntries(pid, "environ")
      if environment.contains("TALLY_HUGE_PAGES_STARTED=1") { break }
      Thread.sleep(forTimeInterval: 0.05)
    }
    XCTAssertTrue(
      environment.contains("TALLY_HUGE_PAGES_STARTED=1"), "process \(pid) never executed itself again")
    // Added to whatever tunables the test's own environment has (usually none).
    let tunables = environment.first { $0.hasPrefix("GLIBC_TUNABLES=") } ?? ""
    XCTAssertTrue(
      tunables == "GLIBC_TUNABLES=glibc.malloc.hugetlb=1" || tunables.hasSuffix(":glibc.malloc.hugetlb=1"),
      tunables)
    XCTAssertTrue(follower.process.isRunning, "the re-executed process is the one that was started")
    let arguments = procEntries(pid, "cmdline")
    XCTAssertEqual(Array(arguments.dropFirst()), follower.process.arguments ?? [], "arguments changed")
  }

  /// A cluster node started with the tunable (as `cluster up`, itself re-executed with
  /// it, passes it on) executes itself again without it, once.
  func testAClusterNodeDropsTheInheritedTunable() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().path
    let voter = try TallyProcess(
      ["voter", "--config", root + "/Config/local.toml", "--data", dir + "/voter", "--base-port", "19460"],
      scratch: dir,
      environment: [
        "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1", "TALLY_HUGE_PAGES_STARTED": "1",
      ])
    defer {
      voter.kill()
      _ = voter.wait()
    }
    var environment: [String] = []
    let deadline = Date().addingTimeInterval(20)
    while Date() < deadline {
      environment = procEntries(voter.pid, "environ")
      if environment.contains("TALLY_HUGE_PAGES_DROPPED=1") { break }
      Thread.sleep(forTimeInterval: 0.05)
    }
    XCTAssertTrue(environment.contains("TALLY_HUGE_PAGES_DROPPED=1"), "the voter kept the tunable")
    XCTAssertFalse(environment.contains { $0.hasPrefix("GLIBC_TUNABLES=") }, "\(environment)")
    XCTAssertTrue(voter.process.isRunning, "the re-executed process is the one that was started")
  }

  func testTallyHugePagesZeroTurnsItOff() throws {
    let follower = try startFollower("off", environment: ["TALLY_HUGE_PAGES": "0"])
    defer {
      follower.kill()
      _ = follower.wait()
    }
    // The follower creates its folder once it runs: by then a re-execution would be done.
    let out = dir + "/out-off"
    let deadline = Date().addingTimeInterval(20)
    while Date() < deadline && !FileManager.default.fileExists(atPath: out) {
      Thread.sleep(forTimeInterval: 0.05)
    }
    XCTAssertTrue(FileManager.default.fileExists(atPath: out), "the follower did not start")
    let environment = procEntries(follower.pid, "environ")
    XCTAssertTrue(environment.contains("TALLY_HUGE_PAGES=0"), "not the process started: \(environment.count)")
    XCTAssertFalse(
      environment.contains { $0.hasPrefix("GLIBC_TUNABLES=") }, "tunable set although turned off")
    XCTAssertFalse(
      environment.contains("TALLY_HUGE_PAGES_STARTED=1"), "executed itself again although turned off")
  }
}
