// The voted results stream (docs/STREAM.md) from a pyzmq client written from the
// docs alone: it joins late, drops live messages on purpose, replays the gaps, checks
// every digest, and rebuilds exactly the effect records of the embedded run.
import Foundation
import KernelAPI
import XCTest

final class StreamTests: ClusterTestCase {
  /// The embedded run's effect records of seq 1...: its effects file without the magic
  /// and without the snapshot record of seq 0.
  func embeddedRecords(_ m: Market) throws -> [UInt8] {
    let file = work + "/embedded.fx"
    let r = try runCommand(
      Paths.tally,
      [
        "run", "--reference", m.reference, "--out", work + "/embedded", "--effects", file, "--effects-format",
        "binary", "--quiet", m.events,
      ], workDir: work)
    guard r.status == 0 else { throw TestFailure("tally run failed: \(r.output)") }
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
    _ = try EffectDecoder.decodeFile(bytes)  // a whole, valid file
    // The records after the snapshot, as written (the stream starts at seq 1).
    let records = Array(bytes[EffectFormat.fileMagic.count...])
    let events = try EffectDecoder.events(records)
    return events.count > 1 ? Array(records[events[1].range.lowerBound...]) : []
  }

  func testLateSubscriberThatDropsMessagesReplaysAndRebuildsTheEmbeddedEffects() throws {
    try requirePyZMQ()
    let m = try Market.generate(in: work, days: 3, tradesPerDay: 1_000)
    let expected = try embeddedRecords(m)
    let total = try m.eventCount()
    let parts = try m.split(2, into: work)
    let c = try cluster(basePort: 17_860, reference: m.reference)
    try c.up()
    try c.submit([parts[0]], batchLines: 150)
    // The endpoints are listed by `cluster status --json`.
    let status = try c.tally(["cluster", "status"], ["--json"], timeout: 30)
    let stream = "tcp://127.0.0.1:\(17_860 + 8)"
    let replay = "tcp://127.0.0.1:\(17_860 + 9)"
    XCTAssertTrue(status.stdout.contains("\"stream\":\"\(stream)\""), status.stdout)
    XCTAssertTrue(status.stdout.contains("\"stream_replay\":\"\(replay)\""), status.stdout)
    // Joins late: half the events were voted (and published) before it connected.
    let out = work + "/subscribed.fx"
    let sub = try Child(
      "/usr/bin/env",
      [
        "python3", Paths.interop + "/subscribe.py", "--stream", stream, "--replay", replay, "--until",
        String(total), "--drop-every", "3", "--out", out, "--timeout", "150",
      ], workDir: work, name: "subscriber")
    children.append(sub)
    Thread.sleep(forTimeInterval: 1)
    try c.submit([parts[1]], client: "second", batchLines: 150)
    let r = sub.wait(timeout: 180)
    XCTAssertEqual(r.status, 0, r.output)
    let got = [UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))
    XCTAssertEqual(got.count, expected.count, r.output)
    XCTAssertTrue(got == expected, "the subscriber's effect records differ from the embedded run's")
    // It did join late, drop, and replay.
    let line = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
    func stat(_ name: String) -> Int {
      let f = line.split(separator: " ")
      guard let i = f.firstIndex(of: Substring(name)), i + 1 < f.count else { return -1 }
      return Int(f[i + 1]) ?? -1
    }
    XCTAssertGreaterThan(stat("replayed"), 0, line)
    XCTAssertGreaterThan(stat("dropped"), 0, line)
    XCTAssertGreaterThan(stat("gaps"), 0, line)
    XCTAssertEqual(try c.statusInt("voter", "streamed_through"), total)
  }
}
