// `tally run --effects` and `tally replay-effects` as real processes: the worked
// example's effects replay to its expected files; text and binary say the same;
// bad arguments and damaged files are refused with their exit statuses.
import Foundation
import XCTest

final class EffectsCLITests: XCTestCase {
  static let basic = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/basic").path

  func testRunEffectsThenReplayGivesTheExpectedFiles() throws {
    let dir = try makeTemporaryDirectory("effects")
    defer { removeDirectory(dir) }
    let b = Self.basic
    let run = try runTally(
      [
        "run", "--reference", b + "/reference", "--out", dir + "/out", "--effects", dir + "/e.bin",
        "--effects-format", "binary", "--quiet", b + "/events.txt",
      ], scratch: dir)
    XCTAssertEqual(run.status, 0, run.stderr)
    let replay = try runTally(["replay-effects", dir + "/e.bin", "--out", dir + "/replayed"], scratch: dir)
    XCTAssertEqual(replay.status, 0, replay.stderr)
    XCTAssertTrue(replay.stderr.contains("as of seq 33"), replay.stderr)
    _ = try assertSameOutputs(dir + "/replayed", try readOutputs(b + "/expected"), "replayed effects")

    let text = try runTally(
      [
        "run", "--reference", b + "/reference", "--out", dir + "/out2", "--effects", dir + "/e.txt",
        "--quiet",
        b + "/events.txt",
      ], scratch: dir)
    XCTAssertEqual(text.status, 0, text.stderr)
    let rendered = try runTally(
      ["replay-effects", dir + "/e.bin", "--out", dir + "/unused", "--text"], scratch: dir)
    XCTAssertEqual(rendered.stdout, try String(contentsOfFile: dir + "/e.txt", encoding: .utf8))
    XCTAssertTrue(rendered.stdout.contains("event 9 REJECTED 1\nrejection 9,TRADE,4,INSUFFICIENT_HOLDINGS\n"))

    // A damaged file: exit 2, naming the file.
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/e.bin")))
    bytes.removeLast(3)
    try Data(bytes).write(to: URL(fileURLWithPath: dir + "/cut.bin"))
    let cut = try runTally(["replay-effects", dir + "/cut.bin", "--out", dir + "/cut"], scratch: dir)
    XCTAssertEqual(cut.status, 2, cut.stderr)
    XCTAssertTrue(cut.stderr.contains("cut.bin"), cut.stderr)
    let bad = try runTally(
      [
        "run", "--reference", b + "/reference", "--out", dir + "/o3", "--effects", dir + "/x",
        "--effects-format",
        "yaml", b + "/events.txt",
      ], scratch: dir)
    XCTAssertEqual(bad.status, 64, bad.stderr)
  }

  /// Effects never depend on Dictionary or Set order: two processes (each with its own
  /// hash seed) and both clearing kernels write identical effect bytes for a generated week.
  func testEffectsAreIdenticalAcrossProcessesAndKernels() throws {
    let dir = try makeTemporaryDirectory("effects-det")
    defer { removeDirectory(dir) }
    let g = try runTally(
      [
        "generate", "--out", dir + "/m", "--seed", "41", "--days", "4", "--trades-per-day", "1500",
        "--accounts",
        "300", "--quiet",
      ], scratch: dir)
    XCTAssertEqual(g.status, 0, g.stderr)
    var files: [Data] = []
    for (i, kernel) in ["v1", "v1", "v2"].enumerated() {
      let r = try runTally(
        [
          "run", "--kernel", kernel, "--reference", dir + "/m/reference", "--out", dir + "/o\(i)",
          "--effects",
          dir + "/e\(i).bin", "--effects-format", "binary", "--quiet", dir + "/m/events.txt",
        ], scratch: dir)
      XCTAssertEqual(r.status, 0, r.stderr)
      files.append(try Data(contentsOf: URL(fileURLWithPath: dir + "/e\(i).bin")))
    }
    XCTAssertGreaterThan(files[0].count, 100_000)
    XCTAssertEqual(files[0], files[1], "two processes wrote different effects")
    XCTAssertEqual(files[0], files[2], "kernels v1 and v2 wrote different effects")
  }
}
