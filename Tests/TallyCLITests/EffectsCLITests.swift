// `tally run --effects` and `tally replay-effects` as real processes: the worked
// example's effects replay to its expected files; text and binary say the same;
// bad arguments and damaged files are refused with their exit statuses.
import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

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

  /// `--effects` names a file the user chooses, which may be a pipe or a device: it is
  /// written in place, never replaced (Foundation's atomic `createFile` once turned
  /// `--effects /dev/null` into a regular file). A named pipe read by this test receives
  /// the same bytes a regular file does, and is still a pipe afterwards.
  func testEffectsIntoANamedPipeArriveWholeAndLeaveThePipeInPlace() throws {
    let dir = try makeTemporaryDirectory("effects-fifo")
    defer { removeDirectory(dir) }
    let b = Self.basic
    let fifo = dir + "/effects.pipe"
    XCTAssertEqual(mkfifo(fifo, 0o600), 0, String(cString: strerror(errno)))
    let received = LockedBytes()
    let reader = Thread {
      // Opening blocks until tally opens the pipe for writing; EOF when it closes it.
      if let handle = FileHandle(forReadingAtPath: fifo) { received.set(handle.readDataToEndOfFile()) }
    }
    reader.start()
    let run = try runTally(
      [
        "run", "--reference", b + "/reference", "--out", dir + "/out", "--effects", fifo,
        "--effects-format", "binary", "--quiet", b + "/events.txt",
      ], scratch: dir)
    XCTAssertEqual(run.status, 0, run.stderr)
    let ended = received.wait(seconds: 30)
    XCTAssertTrue(ended, "the pipe's reader got no end of file")
    if !ended {  // let the reader's open return, so that its thread ends
      let fd = open(fifo, O_WRONLY | O_NONBLOCK)
      if fd >= 0 { close(fd) }
    }
    let regular = try runTally(
      [
        "run", "--reference", b + "/reference", "--out", dir + "/out2", "--effects", dir + "/e.bin",
        "--effects-format", "binary", "--quiet", b + "/events.txt",
      ], scratch: dir)
    XCTAssertEqual(regular.status, 0, regular.stderr)
    XCTAssertEqual(received.value, try Data(contentsOf: URL(fileURLWithPath: dir + "/e.bin")))
    XCTAssertGreaterThan(received.value?.count ?? 0, 8, "no records came through the pipe")
    var info = stat()
    XCTAssertEqual(stat(fifo, &info), 0)
    XCTAssertEqual(info.st_mode & S_IFMT, S_IFIFO, "the named pipe was replaced by another kind of file")
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

/// Bytes handed from a reader thread to the test, with a wait for them.
final class LockedBytes: @unchecked Sendable {
  private let lock = NSLock()
  private let done = DispatchSemaphore(value: 0)
  private var bytes: Data?

  func set(_ data: Data) {
    lock.lock()
    bytes = data
    lock.unlock()
    done.signal()
  }

  var value: Data? {
    lock.lock()
    defer { lock.unlock() }
    return bytes
  }

  /// True when `set` was called within `seconds`.
  func wait(seconds: Double) -> Bool { done.wait(timeout: .now() + seconds) == .success }
}
