// Helpers for tests that start `tally` as a real process: where the binary is, running
// it (optionally killing it), temporary folders, comparing output folders.
import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// The `tally` binary: $TALLY_BIN (scripts/test.sh sets it), else the debug build of
/// the package this file belongs to.
func tallyBinary() -> String {
  if let path = ProcessInfo.processInfo.environment["TALLY_BIN"], !path.isEmpty { return path }
  let root = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()  // TallyCLITests
    .deletingLastPathComponent()  // Tests
    .deletingLastPathComponent()  // package root
  return root.appendingPathComponent(".build/debug/tally").path
}

func makeTemporaryDirectory(_ label: String) throws -> String {
  let path = FileManager.default.temporaryDirectory.path + "/tally-cli-\(label)-\(UUID().uuidString)"
  try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}

func removeDirectory(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

struct ProcessResult {
  var status: Int32
  /// True when the process ended by a signal (SIGKILL from the test).
  var killed: Bool
  var stdout: String
  var stderr: String
}

/// A started `tally` process whose standard output and error go to files (no pipe can
/// fill up and block it).
final class TallyProcess {
  let process = Process()
  private let stdoutPath: String
  private let stderrPath: String

  /// `environment`: variables added to (or replacing) the test process's own.
  init(_ arguments: [String], scratch: String, environment: [String: String] = [:]) throws {
    let id = UUID().uuidString
    stdoutPath = scratch + "/stdout-\(id)"
    stderrPath = scratch + "/stderr-\(id)"
    _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
    _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
    process.executableURL = URL(fileURLWithPath: tallyBinary())
    process.arguments = arguments
    if !environment.isEmpty {
      process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
    process.standardError = FileHandle(forWritingAtPath: stderrPath)
    try process.run()
  }

  var pid: Int32 { process.processIdentifier }

  func kill() { _ = Glibc.kill(process.processIdentifier, SIGKILL) }

  func wait() -> ProcessResult {
    process.waitUntilExit()
    let out = (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? ""
    let err = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
    try? FileManager.default.removeItem(atPath: stdoutPath)
    try? FileManager.default.removeItem(atPath: stderrPath)
    return ProcessResult(
      status: process.terminationStatus, killed: process.terminationReason == .uncaughtSignal, stdout: out,
      stderr: err)
  }
}

/// Runs `tally` to its end.
func runTally(_ arguments: [String], scratch: String) throws -> ProcessResult {
  try TallyProcess(arguments, scratch: scratch).wait()
}

/// The seven output files of a folder, by name.
func readOutputs(_ folder: String) throws -> [String: Data] {
  var result: [String: Data] = [:]
  for name in try FileManager.default.contentsOfDirectory(atPath: folder) where name.hasSuffix(".csv") {
    result[name] = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + name))
  }
  return result
}

let outputNames = [
  "balances.csv", "clearing.csv", "entitlements.csv", "holdings.csv", "rejections.csv", "settlement.csv",
  "tax.csv",
]

/// Fails unless `folder` holds the seven files of `expected`, byte for byte. Returns the differing names.
@discardableResult
func assertSameOutputs(
  _ folder: String, _ expected: [String: Data], _ context: String, file: StaticString = #filePath,
  line: UInt = #line
) throws -> [String] {
  let actual = try readOutputs(folder)
  XCTAssertEqual(actual.keys.sorted(), outputNames, context, file: file, line: line)
  let differing = outputNames.filter { actual[$0] != expected[$0] }
  XCTAssertEqual(
    differing, [], "\(context): output files differ from the uninterrupted run", file: file, line: line)
  return differing
}

/// SplitMix64: a small seeded generator, so a failing crash schedule can be replayed.
struct SplitMix64: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
