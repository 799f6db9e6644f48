// Kernel images through the real command (docs/STATE-LAYOUT.md, "Kernel images"): a
// completed `tally run --state` leaves its kernel's image in the folder; the next run
// opens the folder from it (no reference parse, no replay) and gives the same outputs
// and digest as an uninterrupted run, also when it goes on with new events and its
// snapshots are read later the long way. An image that is damaged, of other reference
// files, or turned off is not used, and the run goes the long way, still right.
import Foundation
import XCTest

final class KernelImageCLITests: XCTestCase {
  private var dir = ""
  private var base: [String] = []

  override func setUpWithError() throws {
    dir = try makeTemporaryDirectory("image-cli")
    let d = dir
    addTeardownBlock { removeDirectory(d) }
    let generated = try runTally(
      [
        "generate", "--out", dir + "/market", "--seed", "17", "--days", "3", "--trades-per-day", "700",
        "--accounts", "80", "--quiet",
      ], scratch: dir)
    XCTAssertEqual(generated.status, 0, generated.stderr)
    base = ["--reference", dir + "/market/reference"]
    // The day split in two files: a first run applies the first, a resume both.
    let lines = try String(contentsOfFile: dir + "/market/events.txt", encoding: .utf8).split(
      separator: "\n", omittingEmptySubsequences: false)
    let half = lines.count / 2
    try (lines[..<half].joined(separator: "\n") + "\n").write(
      toFile: dir + "/first.txt", atomically: true, encoding: .utf8)
    try lines[half...].joined(separator: "\n").write(
      toFile: dir + "/second.txt", atomically: true, encoding: .utf8)
  }

  /// An uninterrupted in-memory run of `files`: its outputs and digest.
  private func straight(_ files: [String], kernel: String) throws -> (outputs: [String: Data], digest: String)
  {
    let out = dir + "/straight-\(kernel)-\(files.count)"
    let run = try runTally(
      ["run", "--kernel", kernel] + base + ["--out", out, "--digest"] + files, scratch: dir)
    XCTAssertEqual(run.status, 0, run.stderr)
    return (try readOutputs(out), run.stdout)
  }

  private func run(_ state: String, _ files: [String], kernel: String, out: String, _ extra: [String] = [])
    throws -> ProcessResult
  {
    let r = try runTally(
      ["run", "--kernel", kernel, "--state", state, "--commit-events", "200", "--timings"] + extra + base + [
        "--out", dir + "/" + out, "--digest",
      ] + files, scratch: dir)
    XCTAssertEqual(r.status, 0, r.stderr)
    return r
  }

  private func checkResumes(kernel: String) throws {
    let (first, second) = (dir + "/first.txt", dir + "/second.txt")
    let expectedHalf = try straight([first], kernel: kernel)
    let expectedAll = try straight([first, second], kernel: kernel)
    let state = dir + "/state-\(kernel)"
    let image = state + "/kernel-image-" + kernel

    let a = try run(state, [first], kernel: kernel, out: "a-\(kernel)")
    XCTAssertTrue(a.stderr.contains("kernel image written ("), a.stderr)
    XCTAssertTrue(FileManager.default.fileExists(atPath: image), "the completed run left \(image)")
    XCTAssertFalse(FileManager.default.fileExists(atPath: image + ".tmp"))
    try assertSameOutputs(dir + "/a-\(kernel)", expectedHalf.outputs, "\(kernel) first run")

    // Nothing new: opened from the image, the same files and digest; the image is kept.
    let b = try run(state, [first], kernel: kernel, out: "b-\(kernel)")
    XCTAssertTrue(b.stderr.contains("state opened from its kernel image"), b.stderr)
    XCTAssertFalse(b.stderr.contains("reference folder read and checked"), "no parse:\n\(b.stderr)")
    XCTAssertEqual(b.stdout, expectedHalf.digest)
    try assertSameOutputs(dir + "/b-\(kernel)", expectedHalf.outputs, "\(kernel) resume from the image")

    // New events after the image, with snapshots every 150 events: the snapshots taken
    // after the load must hold every row changed since the folder's last one.
    let c = try run(
      state, [first, second], kernel: kernel, out: "c-\(kernel)", ["--snapshot-events", "150"])
    XCTAssertTrue(c.stderr.contains("state opened from its kernel image"), c.stderr)
    XCTAssertEqual(c.stdout, expectedAll.digest)
    try assertSameOutputs(
      dir + "/c-\(kernel)", expectedAll.outputs, "\(kernel) resume from the image, then more")

    // The long way over those snapshots (no image): the same state.
    let d = try run(state, [first, second], kernel: kernel, out: "d-\(kernel)", ["--no-kernel-image"])
    XCTAssertTrue(d.stderr.contains("tally run: state opened (opening state "), d.stderr)
    XCTAssertEqual(d.stdout, expectedAll.digest)
    try assertSameOutputs(dir + "/d-\(kernel)", expectedAll.outputs, "\(kernel) the long way after the image")

    // A damaged image (one byte in its middle): refused by its checksums, the long way.
    var bytes = try Data(contentsOf: URL(fileURLWithPath: image))
    bytes[bytes.count / 2] ^= 0x5A
    try bytes.write(to: URL(fileURLWithPath: image))
    let e = try run(state, [first, second], kernel: kernel, out: "e-\(kernel)")
    XCTAssertTrue(
      e.stderr.contains("kernel image not used: the image does not match its checksums"), e.stderr)
    XCTAssertTrue(e.stderr.contains("logged events applied again"), e.stderr)
    XCTAssertEqual(e.stdout, expectedAll.digest)
    try assertSameOutputs(dir + "/e-\(kernel)", expectedAll.outputs, "\(kernel) after a damaged image")
    // Cut short: refused before it is read.
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: image))
    try handle.truncate(atOffset: 1000)
    try handle.close()
    let f = try run(state, [first, second], kernel: kernel, out: "f-\(kernel)")
    XCTAssertTrue(f.stderr.contains("kernel image not used: kernel image"), f.stderr)
    XCTAssertEqual(f.stdout, expectedAll.digest)
  }

  func testV1ResumesFromItsImage() throws { try checkResumes(kernel: "v1") }

  func testV2ResumesFromItsImage() throws { try checkResumes(kernel: "v2") }

  /// Reference files that changed since the image: the image is not used, and the
  /// folder's own check of the reference then refuses the run.
  /// V1's image is a function of its state: two processes that ran the same events
  /// leave byte-identical image files (the trailer names the same build, seq, reference
  /// and checksums). Records copied whole once carried their padding's stray bytes.
  func testV1WritesTheSameImageForTheSameState() throws {
    let files = [dir + "/first.txt", dir + "/second.txt"]
    for k in 1...2 { _ = try run(dir + "/same-\(k)", files, kernel: "v1", out: "same-out-\(k)") }
    let a = try Data(contentsOf: URL(fileURLWithPath: dir + "/same-1/kernel-image-v1"))
    let b = try Data(contentsOf: URL(fileURLWithPath: dir + "/same-2/kernel-image-v1"))
    XCTAssertGreaterThan(a.count, 1_000)
    XCTAssertTrue(a == b, "\(a.count) and \(b.count) bytes differ")
  }

  func testChangedReferenceFilesAreNotTakenFromTheImage() throws {
    let state = dir + "/state"
    _ = try run(state, [dir + "/first.txt"], kernel: "v1", out: "a")
    let accounts = dir + "/market/reference/accounts.csv"
    let text = try String(contentsOfFile: accounts, encoding: .utf8)
    try (text + "A999999999,INDIVIDUAL\n").write(toFile: accounts, atomically: true, encoding: .utf8)
    let r = try runTally(
      ["run", "--state", state, "--timings"] + base + ["--out", dir + "/b", dir + "/first.txt"], scratch: dir)
    XCTAssertEqual(r.status, 2, r.stderr)
    XCTAssertTrue(
      r.stderr.contains("kernel image not used: the reference files differ from those it was made with"),
      r.stderr)
    XCTAssertTrue(r.stderr.contains("state folder was made with other reference data"), r.stderr)
  }

  /// An image older than the folder (a later run applied more events and stopped before
  /// it wrote its own, here: the older image put back) is not used: the folder's log
  /// goes further than the image's seq. The run goes the long way to the right state.
  func testAnImageOlderThanTheFolderIsNotUsed() throws {
    let (first, second) = (dir + "/first.txt", dir + "/second.txt")
    let expectedAll = try straight([first, second], kernel: "v1")
    let state = dir + "/state"
    let image = state + "/kernel-image-v1"
    _ = try run(state, [first], kernel: "v1", out: "a")
    let older = try Data(contentsOf: URL(fileURLWithPath: image))
    _ = try run(state, [first, second], kernel: "v1", out: "b")
    try older.write(to: URL(fileURLWithPath: image))
    let c = try run(state, [first, second], kernel: "v1", out: "c")
    XCTAssertTrue(c.stderr.contains("kernel image not used: the folder holds events through seq "), c.stderr)
    XCTAssertTrue(c.stderr.contains("logged events applied again"), c.stderr)
    XCTAssertEqual(c.stdout, expectedAll.digest)
    try assertSameOutputs(dir + "/c", expectedAll.outputs, "after an older image")
  }

  /// `--no-kernel-image` writes none.
  func testNoKernelImageWritesNone() throws {
    let state = dir + "/state"
    let r = try run(state, [dir + "/first.txt"], kernel: "v1", out: "a", ["--no-kernel-image"])
    XCTAssertFalse(r.stderr.contains("kernel image written"), r.stderr)
    XCTAssertFalse(FileManager.default.fileExists(atPath: state + "/kernel-image-v1"))
  }
}
