// Issue 11: the kernel versions' independence is checked by the compiler, through the
// package's target graph: KernelV1 and KernelV2 depend on KernelAPI and on nothing
// else, and KernelAPI on nothing. Read from `swift package dump-package` (the
// manifest as SwiftPM itself resolves it), not from the manifest's text.
import Foundation
import XCTest

final class KernelIndependenceTests: XCTestCase {
  func testKernelVersionsDependOnKernelAPIAlone() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["swift", "package", "dump-package"]
    p.currentDirectoryURL = root
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    XCTAssertEqual(p.terminationStatus, 0)
    let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    let targets = try XCTUnwrap(json["targets"] as? [[String: Any]])
    func dependencies(_ name: String) throws -> [String] {
      let t = try XCTUnwrap(targets.first { $0["name"] as? String == name }, name)
      let deps = t["dependencies"] as? [[String: Any]] ?? []
      // Each dependency is {"byName": ["KernelAPI", null]} or {"target": [...]} or {"product": [...]}.
      return deps.compactMap { d in d.values.compactMap { ($0 as? [Any])?.first as? String }.first }
    }
    XCTAssertEqual(try dependencies("KernelAPI"), [])
    XCTAssertEqual(try dependencies("KernelV1"), ["KernelAPI"])
    XCTAssertEqual(try dependencies("KernelV2"), ["KernelAPI"])
  }
}
