import KernelAPI
import XCTest
import ZeroMQTransport

// Decoders of what crosses a process boundary refuse garbage with an error (never a
// crash), and config errors name the file.
@testable import TallyCluster

/// A small deterministic generator (no randomness in tests: failures must replay).
struct SplitMix {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
  mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: next()) }
  mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
  mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in byte() } }
}

final class WireDecodingTests: XCTestCase {
  func sampleVote() -> Vote {
    Vote(
      replica: "r2", kernel: "v2", first: 101, last: 105, outcomes: [0, 3, 0, 0, 9],
      effectsDigest: Array(repeating: 0x5C, count: 16), stateDigest: Array(repeating: 0xAB, count: 32))
  }

  func sampleHeartbeat() -> Heartbeat {
    Heartbeat(replica: "r1", kernel: "v1", appliedSeq: 4242, stateDigest: Array(repeating: 7, count: 32))
  }

  func sampleBatch() -> JournalBatch {
    JournalBatch(first: 11, last: 13, lines: [Array("OPEN,2026-01-05".utf8), [], [0xFF, 0x00, 0x0A]])
  }

  func decodeVote(_ b: [UInt8]) -> Vote? { try? Vote(decoding: b) }
  func decodeHeartbeat(_ b: [UInt8]) -> Heartbeat? { try? Heartbeat(decoding: b) }
  func decodeBatch(_ b: [UInt8]) -> JournalBatch? {
    var r = ByteReader(b)
    return try? JournalBatch(decoding: &r)
  }

  func testRoundTrips() throws {
    XCTAssertEqual(try Vote(decoding: sampleVote().encoded), sampleVote())
    XCTAssertEqual(try Heartbeat(decoding: sampleHeartbeat().encoded), sampleHeartbeat())
    var r = ByteReader(sampleBatch().encoded)
    XCTAssertEqual(try JournalBatch(decoding: &r), sampleBatch())
    XCTAssertTrue(r.isAtEnd)
    // A fetch reply's frame decodes in place: the lines are ranges of the frame itself.
    let frame = sampleBatch().encoded
    let inPlace = try JournalBatch(frame: frame)
    XCTAssertEqual(inPlace, sampleBatch())
    XCTAssertEqual(inPlace.storage, frame)
    XCTAssertEqual(inPlace.lines, [Array("OPEN,2026-01-05".utf8), [], [0xFF, 0x00, 0x0A]])
    XCTAssertEqual(Array(inPlace.line(2)), [0xFF, 0x00, 0x0A])
    XCTAssertThrowsError(try JournalBatch(frame: frame + [0]), "a byte after the last line")
    XCTAssertThrowsError(try JournalBatch(frame: Array(frame.dropLast())), "a line cut short")
  }

  func testEmptyAndTinyInputsThrow() {
    for n in 0..<40 {
      let zeros = [UInt8](repeating: 0, count: n)
      let ones = [UInt8](repeating: 0xFF, count: n)
      XCTAssertNil(decodeVote(zeros))
      XCTAssertNil(decodeVote(ones))
      XCTAssertNil(decodeHeartbeat(zeros))
      XCTAssertNil(decodeHeartbeat(ones))
      XCTAssertNil(decodeBatch(zeros))
      XCTAssertNil(decodeBatch(ones))
    }
  }

  func testEveryTruncationThrows() {
    let v = sampleVote().encoded
    for n in 0..<v.count { XCTAssertNil(decodeVote(Array(v.prefix(n))), "vote truncated to \(n) bytes") }
    XCTAssertNil(decodeVote(v + [0]), "trailing byte")
    let h = sampleHeartbeat().encoded
    for n in 0..<h.count {
      XCTAssertNil(decodeHeartbeat(Array(h.prefix(n))), "heartbeat truncated to \(n) bytes")
    }
    XCTAssertNil(decodeHeartbeat(h + [0]), "trailing byte")
    let b = sampleBatch().encoded
    for n in 0..<b.count { XCTAssertNil(decodeBatch(Array(b.prefix(n))), "batch truncated to \(n) bytes") }
  }

  func testHostileLengthsAndRangesThrow() {
    func vote(first: Int64, last: Int64, count: Int32, outcomes: Int = 0) -> [UInt8] {
      var w = ByteWriter()
      w.string("r1")
      w.string("v1")
      w.i64(first)
      w.i64(last)
      w.i32(count)
      w.raw([UInt8](repeating: 0, count: outcomes + 64))
      return w.bytes
    }
    XCTAssertNil(decodeVote(vote(first: 0, last: 0, count: 1, outcomes: 1)), "seq 0")
    XCTAssertNil(decodeVote(vote(first: 5, last: 4, count: 0)), "last before first")
    XCTAssertNil(decodeVote(vote(first: 1, last: 3, count: 2, outcomes: 2)), "count does not match the range")
    XCTAssertNil(decodeVote(vote(first: 1, last: 1, count: -1)), "negative count")
    XCTAssertNil(decodeVote(vote(first: 1, last: Int64.max, count: Int32.max)), "huge range")
    XCTAssertNil(decodeVote(vote(first: Int64.min, last: Int64.max, count: 0)), "overflowing range")
    XCTAssertNil(decodeVote(vote(first: -5, last: -5, count: 1, outcomes: 1)), "negative seq")
    // Well-formed up to the digests, then bytes left over: refused.
    XCTAssertNil(decodeVote(vote(first: 1, last: 2, count: 2, outcomes: 2)))
    // Negative / huge string lengths.
    var w = ByteWriter()
    w.i32(-7)
    w.raw([UInt8](repeating: 0x41, count: 100))
    XCTAssertNil(decodeVote(w.bytes))
    XCTAssertNil(decodeHeartbeat(w.bytes))
    w = ByteWriter()
    w.i32(Int32.max)
    XCTAssertNil(decodeVote(w.bytes))
    // A replica id that is not UTF-8.
    w = ByteWriter()
    w.i32(2)
    w.raw([0xC3, 0x28])
    w.raw([UInt8](repeating: 0, count: 120))
    XCTAssertNil(decodeVote(w.bytes))
    XCTAssertNil(decodeHeartbeat(w.bytes))

    func batch(first: Int64, last: Int64, lineLength: Int32) -> [UInt8] {
      var w = ByteWriter()
      w.i64(first)
      w.i64(last)
      w.i32(lineLength)
      w.raw([1, 2, 3])
      return w.bytes
    }
    XCTAssertNil(decodeBatch(batch(first: 0, last: 0, lineLength: 0)))
    XCTAssertNil(decodeBatch(batch(first: 3, last: 2, lineLength: 0)))
    XCTAssertNil(
      decodeBatch(batch(first: 1, last: 100_001, lineLength: 0)), "more lines than a batch may hold")
    XCTAssertNil(decodeBatch(batch(first: 1, last: Int64.max, lineLength: 0)))
    XCTAssertNil(decodeBatch(batch(first: Int64.min, last: Int64.max, lineLength: 0)))
    XCTAssertNil(decodeBatch(batch(first: 1, last: 1, lineLength: -1)))
    XCTAssertNil(decodeBatch(batch(first: 1, last: 1, lineLength: Int32.max)))
    XCTAssertNil(decodeBatch(batch(first: 1, last: 1, lineLength: 4)), "line longer than what is left")
    XCTAssertNotNil(decodeBatch(batch(first: 1, last: 1, lineLength: 3)))
  }

  func testRandomGarbageAndMutationsNeverCrash() {
    var g = SplitMix(state: 20_260_105)
    let samples = [sampleVote().encoded, sampleHeartbeat().encoded, sampleBatch().encoded]
    for i in 0..<20_000 {
      var input: [UInt8]
      if i % 2 == 0 {
        input = g.bytes(g.below(200))
      } else {
        // Flip, insert, delete or overwrite a few bytes of a valid encoding.
        input = samples[g.below(samples.count)]
        for _ in 0...g.below(4) {
          let at = input.isEmpty ? 0 : g.below(input.count)
          switch g.below(4) {
          case 0: if !input.isEmpty { input[at] ^= UInt8(1) << UInt8(g.below(8)) }
          case 1: input.insert(g.byte(), at: at)
          case 2: if !input.isEmpty { input.remove(at: at) }
          default: if !input.isEmpty { input[at] = [0x00, 0x7F, 0x80, 0xFF][g.below(4)] }
          }
        }
      }
      // Decoding may succeed (a mutation can leave a valid message) but must not crash,
      // and what decodes must encode back to the same bytes (one canonical form).
      if let v = decodeVote(input) { XCTAssertEqual(v.encoded, input) }
      if let h = decodeHeartbeat(input) { XCTAssertEqual(h.encoded, input) }
      var r = ByteReader(input)
      let read = try? JournalBatch(decoding: &r)
      if let b = read, r.isAtEnd { XCTAssertEqual(b.encoded, input) }
      // The in-place decoder takes exactly what the reader takes when it ends the input.
      let inPlace = try? JournalBatch(frame: input)
      XCTAssertEqual(inPlace, read != nil && r.isAtEnd ? read : nil)
      if let b = inPlace { XCTAssertEqual(b.encoded, input) }
      _ = try? FileBundle.decode(input)
    }
  }

  func testFileBundleRefusesPathsAndBadSizes() throws {
    let files: [(name: String, bytes: [UInt8])] = [("clearing.csv", Array("a,b\n".utf8)), ("tax.csv", [])]
    let back = try FileBundle.decode(FileBundle.encode(files))
    XCTAssertEqual(back.map(\.name), ["clearing.csv", "tax.csv"])
    XCTAssertEqual(back.map(\.bytes), files.map(\.bytes))
    XCTAssertThrowsError(try FileBundle.decode(FileBundle.encode([("../etc/passwd", [])])))
    XCTAssertThrowsError(try FileBundle.decode(FileBundle.encode([(".hidden", [])])))
    var w = ByteWriter()
    w.i32(1)
    w.string("x.csv")
    w.i32(-1)
    XCTAssertThrowsError(try FileBundle.decode(w.bytes))
    w = ByteWriter()
    w.i32(65)
    XCTAssertThrowsError(try FileBundle.decode(w.bytes))
  }
}

final class ClusterConfigTests: XCTestCase {
  let good = """
    # a comment
    [cluster]
    name = "t"          # trailing comment
    data = "/tmp/x"
    base_port = 17_000

    [limits]
    heartbeat_ms = 250

    [[replica]]
    id = "a"
    kernel = "v1"

    [[replica]]
    id = "b"
    kernel = "v2"

    [[replica]]
    id = "c"
    """

  func testParsesTheSubset() throws {
    let c = try ClusterConfig.parse(good, file: "good.toml")
    XCTAssertEqual(c.name, "t")
    XCTAssertEqual(c.basePort, 17_000)
    XCTAssertEqual(c.heartbeatMs, 250)
    XCTAssertEqual(c.replicas.map(\.id), ["a", "b", "c"])
    XCTAssertEqual(c.replicas.map(\.kernel), ["v1", "v2", "v1"])
    XCTAssertEqual(c.quorum, 2)
    XCTAssertEqual(c.ingest, "tcp://127.0.0.1:17000")
    XCTAssertEqual(c.replicaControl(2), "tcp://127.0.0.1:17012")
  }

  func testTheShippedConfigsLoad() throws {
    let root = Paths.packageRoot
    let local = try ClusterConfig.load(root + "/Config/local.toml")
    XCTAssertEqual(local.replicas.count, 3)
    XCTAssertEqual(local.quorum, 2)
    let five = try ClusterConfig.load(root + "/Config/local-5.toml")
    XCTAssertEqual(five.quorum, five.replicas.count / 2 + 1)
  }

  func assertError(_ text: String, mentions: [String], file: StaticString = #filePath, line: UInt = #line) {
    do {
      _ = try ClusterConfig.parse(text, file: "/etc/tally/broken.toml")
      XCTFail("parsed a broken config", file: file, line: line)
    } catch {
      XCTAssertTrue(
        error.description.hasPrefix("/etc/tally/broken.toml"), "names the file: \(error.description)",
        file: file,
        line: line)
      for m in mentions {
        XCTAssertTrue(
          error.description.contains(m), "mentions \(m): \(error.description)", file: file, line: line)
      }
    }
  }

  func testErrorsNameTheFile() {
    assertError("[cluster]\nname = \"x\"\n", mentions: ["replica"])  // no replicas
    assertError("[clusterr]\n", mentions: [":1:", "clusterr"])
    assertError("[cluster]\nname x\n", mentions: [":2:"])
    assertError("[cluster]\nname = x\n", mentions: [":2:8:"])
    assertError("name = \"x\"\n[[replica]]\nid = \"a\"\n", mentions: [":1:", "outside a table"])
    assertError(
      "[cluster]\nbase_port = \"7100\"\n[[replica]]\nid = \"a\"\n", mentions: ["base_port", "integer"])
    assertError("[cluster]\nname = 5\n[[replica]]\nid = \"a\"\n", mentions: ["name", "string"])
    assertError("[[replica]]\nid = \"a\"\n[[replica]]\nid = \"a\"\n", mentions: ["repeats"])
    assertError("[[replica]]\nkernel = \"v1\"\n", mentions: ["replica 1", "id"])
    assertError("[[replica]]\nid = \"a b\"\n", mentions: ["replica 1"])
    assertError("[cluster]\nbase_port = 65530\n[[replica]]\nid = \"a\"\n", mentions: ["base_port"])
    assertError("[cluster]\nbase_port = 0\n[[replica]]\nid = \"a\"\n", mentions: ["base_port"])
  }

  /// The examples: a typo in a key, an unknown kernel, a bad value, each refused
  /// with the file, the line, and what is allowed.
  func testUnknownKeysKernelsAndBadValuesAreRefusedWithLineAndAllowed() {
    assertError(
      "[cluster]\nname = \"x\"\nbase_prot = 7100\n[[replica]]\nid = \"a\"\n",
      mentions: [":3:", "base_prot", "allowed", "base_port"])
    assertError(
      "[limits]\ncheckpoint_event = 5\n[[replica]]\nid = \"a\"\n",
      mentions: [":2:", "checkpoint_event", "checkpoint_events"])
    assertError(
      "[[replica]]\nid = \"a\"\n[[replica]]\nid = \"b\"\nkernel = \"v9\"\n",
      mentions: [":5:", "v9", "v1, v2, v1-faulty"])
    assertError(
      "[[replica]]\nid = \"a\"\n[[replica]]\nid = \"b\"\nkernal = \"v2\"\n",
      mentions: [":5:", "kernal", "replica 2", "kernel"])
    assertError(
      "[limits]\ncheckpoint_events = 0\n[[replica]]\nid = \"a\"\n",
      mentions: [":2:", "checkpoint_events", "allowed: 1..."])
    assertError(
      "[limits]\nheartbeat_ms = true\n[[replica]]\nid = \"a\"\n",
      mentions: [":2:", "heartbeat_ms", "integer", "boolean"])
    assertError(
      "[logs]\ntarget = \"syslog\"\n[[replica]]\nid = \"a\"\n",
      mentions: [":2:", "syslog", "\"file\", \"stderr\""])
    assertError("[cluster]\nbase_port = \n", mentions: [":2:"])  // not TOML: the parser's position
  }

  /// `digest_events` defaults to `checkpoint_events` (a digest at every commit, as before
  /// it existed), is read when given, and is refused out of range with its line.
  func testDigestEventsDefaultsToCheckpointsAndIsChecked() throws {
    let plain = try ClusterConfig.parse(
      "[limits]\ncheckpoint_events = 700\n[[replica]]\nid = \"a\"\n", file: "p.toml")
    XCTAssertEqual(plain.digestEvents, 700)
    let set = try ClusterConfig.parse(
      "[limits]\ncheckpoint_events = 700\ndigest_events = 7000000\n[[replica]]\nid = \"a\"\n", file: "s.toml")
    XCTAssertEqual(set.checkpointEvents, 700)
    XCTAssertEqual(set.digestEvents, 7_000_000)
    assertError(
      "[limits]\ndigest_events = 0\n[[replica]]\nid = \"a\"\n",
      mentions: [":2:", "digest_events", "allowed: 1..."])
    let shipped = try ClusterConfig.load(Paths.packageRoot + "/Config/local.toml")
    XCTAssertEqual(shipped.digestEvents, 10_000_000)
  }

  /// `reserve_events` (room a replica reserves at start), `recent_effects_mib`
  /// (effect records a replica keeps in memory for the voter) and `heap_reserve_mib`
  /// (heap each node makes resident before its loop) have day-sized defaults,
  /// are read when given, and are refused out of range with their line.
  func testReplicaMemoryLimitsDefaultAndAreChecked() throws {
    let limits:
      [(key: String, path: KeyPath<ClusterConfig, Int>, default: Int, set: Int, bad: Int, allowed: String)] =
        [
          ("reserve_events", \.reserveEvents, 2_000_000, 0, -1, "allowed: 0...100000000"),
          ("recent_effects_mib", \.recentEffectsMiB, 1_024, 64, 0, "allowed: 1...1048576"),
          ("heap_reserve_mib", \.heapReserveMiB, 192, 0, -1, "allowed: 0...1048576"),
        ]
    let plain = try ClusterConfig.parse("[[replica]]\nid = \"a\"\n", file: "d.toml")
    for l in limits {
      XCTAssertEqual(plain[keyPath: l.path], l.default, l.key)
      let set = try ClusterConfig.parse(
        "[limits]\n\(l.key) = \(l.set)\n[[replica]]\nid = \"a\"\n", file: "z.toml")
      XCTAssertEqual(set[keyPath: l.path], l.set, l.key)
      assertError(
        "[limits]\n\(l.key) = \(l.bad)\n[[replica]]\nid = \"a\"\n", mentions: [":2:", l.key, l.allowed])
    }
  }

  /// `[sequencer] journal_flush_mib_per_s`: 64 by default, 0 for unpaced, refused out
  /// of range with its line; the journal's RocksDB gets a rate limiter exactly when it
  /// is not 0 (its LOG names it), and three memtables either way.
  func testJournalFlushPaceDefaultsReachesTheJournalAndIsChecked() throws {
    let plain = try ClusterConfig.parse("[[replica]]\nid = \"a\"\n", file: "d.toml")
    XCTAssertEqual(plain.journalFlushMiBPerSecond, 64)
    let off = try ClusterConfig.parse(
      "[sequencer]\njournal_flush_mib_per_s = 0\n[[replica]]\nid = \"a\"\n", file: "o.toml")
    XCTAssertEqual(off.journalFlushMiBPerSecond, 0)
    for bad in ["-1", "70000"] {
      assertError(
        "[sequencer]\njournal_flush_mib_per_s = \(bad)\n[[replica]]\nid = \"a\"\n",
        mentions: ["journal_flush_mib_per_s", bad, "allowed: 0...65536"])
    }
    assertError(
      "[sequencer]\njournal_flush_mib_per_s = \"fast\"\n[[replica]]\nid = \"a\"\n",
      mentions: [":2:", "journal_flush_mib_per_s"])
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID())").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for (config, paced) in [(plain, true), (off, false)] {
      let data = dir + "/" + (paced ? "paced" : "unpaced")
      _ = try Sequencer(config: config, dataDir: data, log: Logger(node: "test"))
      let log = try String(contentsOfFile: data + "/journal/LOG", encoding: .utf8)
      let line = try XCTUnwrap(log.split(separator: "\n").first { $0.contains("Options.rate_limiter:") })
      XCTAssertEqual(!line.contains("(nil)"), paced, String(line))
      // A third memtable, so that a burst above the pace fills memory instead of stopping writes.
      XCTAssertTrue(log.contains("Options.max_write_buffer_number: 3"), "the journal keeps three memtables")
    }
  }

  /// A sequencer whose journal's RocksDB part flushes at 1 MiB/s while a client journals
  /// faster: RocksDB stops the writes behind the paced flushes, and the sequencer's loop
  /// says so in its log (once a second at most) with the stall's milliseconds and the
  /// knob to turn; its status carries the total. Every batch is still journaled and
  /// acknowledged. (The batches' lines are in the journal's segment log; RocksDB holds a
  /// dedupe record per client batch, so the client sends many one-line batches, and the
  /// memtables are RocksDB's smallest.)
  func testASequencerHeldBackByItsPacedFlushesSaysSoInItsLog() throws {
    let config = try ClusterConfig.parse(
      "[cluster]\nbase_port = 19600\n[sequencer]\njournal_flush_mib_per_s = 1\n[[replica]]\nid = \"a\"\n",
      file: "held.toml")
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("held-\(UUID())").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let captured = CapturedLog()
    let log = Logger(label: "test") { _ in CapturingLogHandler(box: captured) }
    // 64 KiB memtables: 40,000 dedupe records of a 64-byte client id (~4 MiB in
    // RocksDB's memtables) fill sixty, each flushed in ~60 ms.
    let sequencer = try Sequencer(config: config, dataDir: dir, log: log, journalMemtableBytes: 64 << 10)
    let context = try ZMQContext()
    let client = try ZMQSocket(context: context, type: .dealer)
    try client.connect(config.ingest)
    let line = Array("TRADE,1,20260105,093000,600000,10.00,100,A1,U1,A2,U2\n".utf8)
    let frame = line
    let clientId = [UInt8](repeating: UInt8(ascii: "h"), count: WireLimits.clientIdBytesMax)
    let batches = 40_000
    var sent = 0
    var acked = 0
    let deadline = ContinuousClock.now + .seconds(60)
    try sequencer.run(context: context) {
      // Bursts of client batches, at most 2,048 unacknowledged: each group commit takes
      // up to 256 of them.
      while sent < batches && sent - acked < 2_048 {
        _ = try? client.send([Ingest.magic, clientId, String(sent + 1).bytes, frame])
        sent += 1
      }
      while (try? client.receive(timeoutMs: 0)) != nil { acked += 1 }
      let warned = captured.lines.contains { $0.contains("held back the journal's writes") }
      return (acked == batches && warned) || ContinuousClock.now > deadline
    }
    XCTAssertEqual(acked, batches, "every batch journaled and acknowledged")
    let warning = try XCTUnwrap(
      captured.lines.first { $0.contains("held back the journal's writes") },
      "no warning in \(captured.lines)")
    XCTAssertTrue(warning.hasPrefix("warning "), warning)
    XCTAssertTrue(warning.contains("journal_flush_mib_per_s (now 1, 0 unpaced)"), warning)
    XCTAssertGreaterThan(try XCTUnwrap(sequencer.status.journalWriteStallMs), 0)
    XCTAssertEqual(sequencer.lastSeq, Int64(batches * frame.count / line.count))
  }

  /// `[sequencer] journal_compression`: none by default, read when given and handed to
  /// the journal's RocksDB (its OPTIONS file says which codec it writes SSTs with), and
  /// refused with its line when it names no codec.
  func testJournalCompressionDefaultsToNoneReachesTheJournalAndIsChecked() throws {
    let plain = try ClusterConfig.parse("[[replica]]\nid = \"a\"\n", file: "d.toml")
    XCTAssertEqual(plain.journalCompression, .none)
    let set = try ClusterConfig.parse(
      "[sequencer]\njournal_compression = \"lz4\"\n[[replica]]\nid = \"a\"\n", file: "c.toml")
    XCTAssertEqual(set.journalCompression, .lz4)
    assertError(
      "[sequencer]\njournal_compression = \"gzip\"\n[[replica]]\nid = \"a\"\n",
      mentions: [":2:", "journal_compression", "gzip", "allowed: none, snappy, lz4, zstd"])
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID())").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for (config, codec) in [(plain, "kNoCompression"), (set, "kLZ4Compression")] {
      let data = dir + "/" + codec
      _ = try Sequencer(config: config, dataDir: data, log: Logger(node: "test"))
      let files = try FileManager.default.contentsOfDirectory(atPath: data + "/journal")
      let options = try XCTUnwrap(files.filter { $0.hasPrefix("OPTIONS-") }.sorted().last, "\(files)")
      let text = try String(contentsOfFile: data + "/journal/" + options, encoding: .utf8)
      XCTAssertTrue(text.contains("compression=\(codec)"), "\(codec) not in \(options)")
    }
  }

  func testMetricsAddressesDefaultFromBasePortAndCanBeSet() throws {
    var c = try ClusterConfig.parse(good, file: "good.toml")
    XCTAssertEqual(c.metricsURL(node: "sequencer"), "http://127.0.0.1:17050/metrics")
    XCTAssertEqual(c.metricsURL(node: "voter"), "http://127.0.0.1:17051/metrics")
    XCTAssertEqual(c.metricsURL(node: "c"), "http://127.0.0.1:17062/metrics")
    c.basePort = 18_000  // --base-port moves the defaults along
    XCTAssertEqual(c.metricsURL(node: "a"), "http://127.0.0.1:18060/metrics")
    let set = try ClusterConfig.parse(
      "[metrics]\nhost = \"0.0.0.0\"\nsequencer_port = 9100\n[logs]\ntarget = \"stderr\"\nfile_bytes_max = 8192\n"
        + "[[replica]]\nid = \"a\"\nmetrics_port = 9111\n", file: "m.toml")
    XCTAssertEqual(set.metricsURL(node: "sequencer"), "http://0.0.0.0:9100/metrics")
    XCTAssertEqual(set.metricsURL(node: "a"), "http://0.0.0.0:9111/metrics")
    XCTAssertEqual(set.ops.logTarget, "stderr")
    XCTAssertEqual(set.ops.logBytesMax, 8192)
  }

  func testLoadNamesAMissingFile() {
    XCTAssertThrowsError(try ClusterConfig.load("/nonexistent/tally.toml")) { error in
      XCTAssertTrue("\(error)".contains("/nonexistent/tally.toml"), "\(error)")
    }
  }
}

/// A log that tests read back: every line "<level> <message>", in order.
final class CapturedLog: @unchecked Sendable {  // guarded by `lock`
  private let lock = NSLock()
  private var stored: [String] = []
  func append(_ line: String) { lock.withLock { stored.append(line) } }
  var lines: [String] { lock.withLock { stored } }
}

struct CapturingLogHandler: LogHandler {
  let box: CapturedLog
  var metadata: Logger.Metadata = [:]
  var logLevel: Logger.Level = .info
  subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }
  func log(event: LogEvent) { box.append("\(event.level) \(event.message)") }
}
