import Foundation
import Logging
import XCTest

@testable import TallyOps

final class LogTests: XCTestCase {
  var dir = ""

  override func setUpWithError() throws {
    dir = NSTemporaryDirectory() + "tally-ops-log-tests-\(getpid())-\(name.filter { $0.isLetter })"
    try? FileManager.default.removeItem(atPath: dir)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
  }

  override func tearDown() {
    try? FileManager.default.removeItem(atPath: dir)
  }

  func testLogfmtLineHasTimeLevelNodeMessageAndSortedMetadata() {
    var ts = timespec()
    ts.tv_sec = 1_796_191_654  // 2026-12-02T06:07:34Z
    ts.tv_nsec = 55_000_000
    let line = LogfmtLogHandler.format(
      level: .warning, message: "replica r1: gap \"x\"\nnext",
      metadata: ["node": "r1", "seq": "42", "kernel": "v1", "detail": "two words"], now: ts)
    XCTAssertEqual(
      line,
      "time=2026-12-02T06:07:34.055Z level=warning node=r1 msg=\"replica r1: gap \\\"x\\\"\\nnext\" detail=\"two words\" kernel=v1 seq=42\n"
    )
  }

  /// Writing past `bytesMax` rotates: `.1`, `.2` ... up to `filesKept`, the oldest dropped;
  /// no file grows past the bound.
  func testRotationBoundsEveryFileAndTheirNumber() throws {
    let path = dir + "/r1.log"
    let sink = try LogSink(.file(path: path, bytesMax: 1_000, filesKept: 2))
    let line = Array(String(repeating: "x", count: 99).utf8) + [10]
    for _ in 0..<55 { sink.write(line) }  // 5,500 bytes: 5 rotations
    let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
    XCTAssertEqual(names, ["r1.log", "r1.log.1", "r1.log.2"])
    for name in names {
      let size = (try FileManager.default.attributesOfItem(atPath: dir + "/" + name)[.size] as? Int) ?? -1
      XCTAssertLessThanOrEqual(size, 1_000, name)
      XCTAssertGreaterThan(size, 0, name)
    }
    // The newest lines are in r1.log: 55 lines, 10 per file, 5 in the current one.
    let current = try String(contentsOfFile: path, encoding: .utf8)
    XCTAssertEqual(current.split(separator: "\n").count, 5)
  }

  func testHandlerWritesThroughSwiftLog() throws {
    let path = dir + "/voter.log"
    let sink = try LogSink(.file(path: path, bytesMax: 1 << 20, filesKept: 1))
    var logger = Logger(label: "t") { LogfmtLogHandler(label: $0, sink: sink) }
    logger[metadataKey: "node"] = "voter"
    logger.info("decided", metadata: ["seq": "7"])
    logger.debug("not at info level")
    let text = try String(contentsOfFile: path, encoding: .utf8)
    XCTAssertTrue(text.hasPrefix("time=20"), text)
    XCTAssertTrue(text.hasSuffix(" level=info node=voter msg=\"decided\" seq=7\n"), text)
    XCTAssertEqual(text.split(separator: "\n").count, 1)
  }
}
