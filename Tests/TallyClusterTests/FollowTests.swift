// `tally follow` (issue 9): a sink of the voted stream that keeps the seven SPEC §5
// files current; SIGKILLed again and again while events are submitted and a replica
// is killed, it ends byte-identical to `tally run`.
import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

final class FollowTests: ClusterTestCase {
  func testFollowerKilledRepeatedlyEndsEqualToTheEmbeddedRun() throws {
    let m = try Market.generate(in: work, days: 3, tradesPerDay: 1_500)
    let total = try m.eventCount()
    let parts = try m.split(4, into: work)
    let c = try cluster(basePort: 17_880, reference: m.reference)
    try c.up()
    let out = work + "/followed"
    let follow =
      ["follow"] + c.common + ["--reference", m.reference, "--out", out, "--exit-at-seq", String(total)]
    var kills = 0
    for (i, part) in parts.enumerated() {
      let f = try Child(Paths.tally, follow, workDir: work, name: "follow-\(i)")
      children.append(f)
      let s = try c.startSubmit([part], client: "part\(i)", batchLines: 200, name: "submit-\(i)")
      children.append(s)
      if i == 1 { try c.kill9("r2") }  // a replica dies meanwhile: the stream takes another's records
      if i == 2 { try c.kill9("voter") }  // and the voter: it publishes on from its stored position
      Thread.sleep(forTimeInterval: 0.4 + 0.3 * Double(i))
      kill(f.process.processIdentifier, SIGKILL)
      _ = f.wait(timeout: 10)
      kills += 1
      XCTAssertEqual(s.wait(timeout: 120).status, 0, "submit of part \(i)")
    }
    try c.up()  // r2 and the voter come back and catch up
    // Killed in the middle of work: resumes and finishes.
    for k in 0..<3 {
      let f = try Child(Paths.tally, follow, workDir: work, name: "follow-again-\(k)")
      children.append(f)
      Thread.sleep(forTimeInterval: 0.3)
      kill(f.process.processIdentifier, SIGKILL)
      _ = f.wait(timeout: 10)
      kills += 1
    }
    let last = try Child(Paths.tally, follow, workDir: work, name: "follow-last")
    children.append(last)
    let r = last.wait(timeout: 180)
    XCTAssertEqual(r.status, 0, r.output)
    XCTAssertTrue(r.stderr.contains("as of seq \(total)"), r.stderr)
    XCTAssertTrue(
      r.stderr.contains("follow: resumed at seq "), "the last follower started afresh: \(r.stderr)")
    XCTAssertEqual(
      try String(contentsOfFile: out + "/as_of_seq", encoding: .utf8), "\(total)\n")
    try FileManager.default.removeItem(atPath: out + "/as_of_seq")
    try FileManager.default.removeItem(atPath: out + "/.follow")
    assertSameFolders(out, m.expected, "tally follow after \(kills) SIGKILLs")

    // `tally report --from-stream`: the same files from the voted stream, saying as of which seq.
    let report = try c.tally(
      ["report"], ["--reference", m.reference, "--out", work + "/streamed", "--from-stream"])
    XCTAssertEqual(report.status, 0, report.output)
    XCTAssertTrue(report.stderr.contains("as of seq \(total)"), report.stderr)
    try FileManager.default.removeItem(atPath: work + "/streamed/as_of_seq")
    assertSameFolders(work + "/streamed", m.expected, "report --from-stream")
  }
}
