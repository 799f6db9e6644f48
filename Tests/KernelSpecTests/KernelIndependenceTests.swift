// Issue 11: the kernel versions' independence is checked by the compiler, through the
// package's target graph: KernelV1 and KernelV2 depend on KernelAPI and on nothing
// else, and KernelAPI on nothing. This test reads the declarations in Package.swift
// (running `swift package dump-package` from a test would wait for the lock that the
// running `swift test` holds on the build folder).
import Foundation
import XCTest

final class KernelIndependenceTests: XCTestCase {
  /// The `dependencies: [...]` of `.target(name: "<name>", ...)`, as names; [] without any.
  func dependencies(of name: String, in manifest: String) throws -> [String] {
    let start = try XCTUnwrap(manifest.range(of: ".target(name: \"\(name)\""), "no target \(name)")
    let rest = manifest[start.upperBound...]
    let end = try XCTUnwrap(rest.range(of: "swiftSettings"), "target \(name) has no swiftSettings")
    let declaration = rest[..<end.lowerBound]
    guard let deps = declaration.range(of: "dependencies: [") else { return [] }
    let list = declaration[deps.upperBound...].prefix { $0 != "]" }
    return list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
      .filter { !$0.isEmpty }.map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
  }

  func testKernelVersionsDependOnKernelAPIAlone() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
    let manifest = try String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8)
    XCTAssertEqual(try dependencies(of: "KernelAPI", in: manifest), [])
    XCTAssertEqual(try dependencies(of: "KernelV1", in: manifest), ["KernelAPI"])
    XCTAssertEqual(try dependencies(of: "KernelV2", in: manifest), ["KernelAPI"])
    // And the check itself reads a declaration that is there: TallyFormat's is known.
    XCTAssertEqual(try dependencies(of: "TallyFormat", in: manifest), ["KernelAPI"])
  }
}
