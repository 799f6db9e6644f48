import KernelAPI
// The replica's decisions, driven directly over a fake business applier: journal
// batches, voter requests and time in, actions out.
import TallyCluster
import TallyEngine
import XCTest

/// A business state machine in a few lines: the state is the running sum of line
/// lengths; committing writes it with the extra writes into the store.
struct FakeApplier: BatchApplier {
  let store: InMemoryStateStore
  var appliedSeq: Int64 = 0
  var committedSeq: Int64 = 0
  var sum: Int64 = 0
  var committedSum: Int64 = 0
  var commits = 0

  init(store: InMemoryStateStore) {
    self.store = store
    if let v = try? store.value(for: [0x01]), v.count == 16 {
      var r = ByteReader(v)
      committedSeq = (try? r.i64()) ?? 0
      committedSum = (try? r.i64()) ?? 0
      appliedSeq = committedSeq
      sum = committedSum
      (digestSeq, digestSum) = (committedSeq, committedSum)
    }
  }

  static func digest(_ sum: Int64) -> [UInt8] { Array(repeating: UInt8(truncatingIfNeeded: sum), count: 32) }
  /// As the input-log layout: the digest is the last commit's that stated one.
  var digestSeq: Int64 = 0
  var digestSum: Int64 = 0
  var committedStateDigest: [UInt8] { Self.digest(digestSum) }

  mutating func apply(_ batch: JournalBatch) -> (outcomes: [UInt8], effects: [UInt8]) {
    for line in batch.lines { sum += Int64(line.count) }
    appliedSeq = batch.last
    return (batch.lines.map { $0.first == 0x78 ? 1 : 0 }, batch.lines.flatMap { $0 })
  }

  mutating func commit(withDigest: Bool, extraFromDigest: @escaping ([UInt8]?) -> StoreBatch) throws {
    var w = ByteWriter()
    w.i64(appliedSeq)
    w.i64(sum)
    var batch = extraFromDigest(withDigest ? Self.digest(sum) : nil)
    batch.put([0x01], w.bytes)
    try store.commit(batch, sync: true)
    committedSeq = appliedSeq
    committedSum = sum
    if withDigest { (digestSeq, digestSum) = (appliedSeq, sum) }
    commits += 1
  }

  /// In line: the fake has no committer thread.
  mutating func commitInBackground(extra: StoreBatch) throws {
    try commit(withDigest: false) { _ in extra }
  }

  func finishCommit() throws {}

  func outputFiles() -> [(name: String, bytes: [UInt8])] { [("sum.txt", Array(String(sum).utf8))] }
}

final class ReplicaCoreTests: XCTestCase {
  typealias Core = ReplicaCore<FakeApplier>

  func make(_ store: InMemoryStateStore, checkpoint: Int64 = 10, flip: Bool = false) throws -> Core {
    try Core(
      settings: .init(
        id: "r1", kernel: "v1", checkpointEvents: checkpoint, heartbeatMs: 500, flipDigestBit: flip),
      applier: FakeApplier(store: store), store: store)
  }

  func batch(_ first: Int64, _ last: Int64) -> JournalBatch {
    JournalBatch(first: first, last: last, lines: (first...last).map { Array("e\($0)".utf8) })
  }

  func votes(_ actions: [Core.Action]) -> [Vote] {
    actions.compactMap { if case .vote(let v) = $0 { return v } else { return nil } }
  }

  func testVotesCommitAtCheckpointsOnly() throws {
    let store = InMemoryStateStore()
    var core = try make(store)
    let v = votes(try core.receive([batch(1, 4), batch(5, 9), batch(10, 12), batch(13, 15)]))
    XCTAssertEqual(v.map(\.first), [1, 5, 10, 13])
    XCTAssertEqual(
      v.map(\.stateDigest.count), [0, 0, 32, 0], "only the batch crossing seq 10 carries the state")
    XCTAssertEqual(core.applier.committedSeq, 12)
    XCTAssertEqual(core.applier.commits, 1)
    XCTAssertEqual(core.uncommittedCount, 1)
    // The checkpoint's vote carries the digest of exactly the committed state.
    XCTAssertEqual(v[2].stateDigest, core.applier.committedStateDigest)
    // The log: the votes and effect records through the checkpoint are in the store.
    XCTAssertEqual(try core.effects(first: 5, last: 9), Array("e5e6e7e8e9".utf8))
    XCTAssertEqual(try core.effects(first: 13, last: 15), Array("e13e14e15".utf8), "uncommitted: from memory")
    XCTAssertNil(try core.effects(first: 5, last: 8), "another range")
    XCTAssertEqual(core.loggedCount, 3)
  }

  /// With `digestEvents` a multiple of the checkpoints, only the checkpoint batches that
  /// cross a multiple of it state the digest (the input-log layout snapshots there); the
  /// others commit without one, and a report always states one.
  func testDigestCheckpointsAreASubsetOfTheCheckpoints() throws {
    let store = InMemoryStateStore()
    var settings = Core.Settings(
      id: "r1", kernel: "v1", checkpointEvents: 5, heartbeatMs: 500, flipDigestBit: true)
    settings.digestEvents = 15
    var core = try Core(settings: settings, applier: FakeApplier(store: store), store: store)
    let v = votes(try core.receive([batch(1, 5), batch(6, 9), batch(10, 14), batch(15, 16), batch(17, 21)]))
    XCTAssertEqual(
      v.map(\.stateDigest.count), [0, 0, 0, 32, 0], "seq 15 only; seqs 5, 10 and 20 commit bare")
    XCTAssertEqual(core.applier.commits, 4)
    XCTAssertEqual(core.applier.committedSeq, 21)
    XCTAssertTrue(core.isDigestCheckpoint(first: 15, last: 16))
    XCTAssertFalse(core.isDigestCheckpoint(first: 10, last: 14))
    // The byzantine flip lands on the digest vote: e1…e9 are 2 bytes, e10…e16 3, a sum of 39.
    var unflipped = v[3].stateDigest
    unflipped[0] ^= 1
    XCTAssertEqual(unflipped, FakeApplier.digest(39))
    // A report at the applied seq commits with a digest even off a digest checkpoint.
    let report = try XCTUnwrap(try core.report(at: 21))
    XCTAssertEqual(report.stateDigest, core.applier.committedStateDigest)
    XCTAssertEqual(core.applier.commits, 5, "the report's commit")
  }

  /// A background commit owes its batches' effect records to the next commit, which
  /// logs those the voter has not streamed by then (its PRUNE position); a synchronous
  /// commit (a stop) logs every record not streamed. Streamed ones are the voter's.
  func testEffectsAreLoggedOneCommitLateUnlessStreamed() throws {
    let store = InMemoryStateStore()
    var settings = Core.Settings(id: "r1", kernel: "v1", checkpointEvents: 10, heartbeatMs: 500)
    settings.digestEvents = 1_000  // checkpoints without a digest: background commits
    var core = try Core(settings: settings, applier: FakeApplier(store: store), store: store)
    func stored(_ first: Int64) throws -> Bool {
      var key: [UInt8] = [0x21]
      for k in (0..<8).reversed() { key.append(UInt8(truncatingIfNeeded: first >> (8 * k))) }
      return try store.value(for: key) != nil
    }
    _ = try core.receive([batch(1, 4), batch(5, 9), batch(10, 12)])
    XCTAssertEqual(core.applier.commits, 1)
    XCTAssertFalse(try stored(1) || stored(5) || stored(10), "the first commit owes its records")
    core.prune(through: 9)
    XCTAssertEqual(core.streamedThrough, 9)
    _ = try core.receive([batch(13, 16), batch(17, 21)])
    XCTAssertEqual(core.applier.commits, 2)
    XCTAssertFalse(try stored(1) || stored(5), "streamed by the next commit: not logged")
    XCTAssertTrue(try stored(10), "owed and not streamed: logged")
    XCTAssertFalse(try stored(13) || stored(17), "owed to the third commit")
    // Still served from memory.
    XCTAssertEqual(try core.effects(first: 1, last: 4), Array("e1e2e3e4".utf8))
    _ = try core.receive([batch(22, 23)])
    try core.commitNow()
    XCTAssertTrue(try stored(13) && stored(17) && stored(22), "a stop logs every record not streamed")
    // A restarted replica has lost its memory: the streamed batch is not there; the others are.
    let restarted = try Core(settings: settings, applier: FakeApplier(store: store), store: store)
    XCTAssertNil(try restarted.effects(first: 1, last: 4))
    XCTAssertEqual(try restarted.effects(first: 10, last: 12), Array("e10e11e12".utf8))
  }

  func testGapsAndDuplicates() throws {
    var core = try make(InMemoryStateStore())
    _ = try core.receive([batch(1, 3)])
    let dup = try core.receive([batch(1, 3)])
    XCTAssertTrue(dup.isEmpty, "a duplicate is skipped")
    let gap = try core.receive([batch(6, 7), batch(4, 5)])
    XCTAssertEqual(gap, [.gap(have: 3, got: 6)], "a gap stops the answer; nothing after it is applied")
    XCTAssertEqual(core.appliedSeq, 3)
  }

  func testCrashReplaysFromTheCheckpointWithTheSameVotes() throws {
    let store = InMemoryStateStore()
    var core = try make(store)
    let journal = [batch(1, 4), batch(5, 11), batch(12, 14), batch(15, 16)]
    let before = votes(try core.receive(journal))
    // Crash: the core and the applier are gone, the store stays; the restart is at the checkpoint.
    var restarted = try make(store)
    XCTAssertEqual(restarted.appliedSeq, 11)
    XCTAssertEqual(restarted.tick(nowMs: 0).first, .fetch(from: 12))
    let replayed = votes(try restarted.receive(Array(journal[2...])))
    XCTAssertEqual(replayed, Array(before[2...]), "the replay gives the same votes")
    // RESEND from 1: logged votes, then the uncommitted ones.
    XCTAssertEqual(votes(try restarted.resend(from: 5)).map(\.first), [5, 12, 15])
  }

  func testTimersFetchRetryAndHeartbeat() throws {
    var core = try make(InMemoryStateStore())
    XCTAssertEqual(core.tick(nowMs: 0).count, 2, "a fetch and a heartbeat at once")
    XCTAssertEqual(core.tick(nowMs: 400), [])
    guard case .heartbeat(let hb)? = core.tick(nowMs: 501).first else {
      return XCTFail("heartbeat every 500 ms")
    }
    XCTAssertEqual(hb.appliedSeq, 0)
    XCTAssertEqual(
      core.tick(nowMs: Core.fetchRetryMs + 1).first, .fetch(from: 1), "an unanswered fetch is retried")
    core.nothingNew()
    XCTAssertEqual(core.tick(nowMs: Core.fetchRetryMs + 2), [.fetch(from: 1)], "NONE: ask again at once")
  }

  /// The next fetch goes when a reply arrives, before it is applied; the tick asks for
  /// nothing more while that fetch is out; a gap or NONE makes the tick ask again.
  func testFetchAheadKeepsOneFetchOutAndRecovers() throws {
    var core = try make(InMemoryStateStore(), checkpoint: 1_000)
    XCTAssertEqual(core.tick(nowMs: 0).first, .fetch(from: 1))
    XCTAssertEqual(core.fetchAhead(first: 1, last: 8, nowMs: 5), .fetch(from: 9))
    XCTAssertEqual(votes(try core.receive([batch(1, 4), batch(5, 8)])).count, 2)
    XCTAssertEqual(core.tick(nowMs: 10).filter { if case .fetch = $0 { true } else { false } }, [])
    // The answer to the fetch ahead: the next one goes from its end.
    XCTAssertEqual(core.fetchAhead(first: 9, last: 9, nowMs: 20), .fetch(from: 10))
    _ = try core.receive([batch(9, 9)])
    // Duplicates only (nothing new): no fetch ahead; the tick asks.
    XCTAssertNil(core.fetchAhead(first: 1, last: 9, nowMs: 30))
    XCTAssertEqual(core.tick(nowMs: 31).first, .fetch(from: 10))
    // A reply that would leave a gap: no fetch ahead; the gap makes the tick ask again.
    XCTAssertNil(core.fetchAhead(first: 12, last: 13, nowMs: 40))
    XCTAssertEqual(try core.receive([batch(12, 13)]), [.gap(have: 9, got: 12)])
    XCTAssertEqual(core.tick(nowMs: 41).first, .fetch(from: 10))
    // A fetch ahead answered NONE (the journal had nothing new for a while): ask again.
    XCTAssertEqual(core.fetchAhead(first: 10, last: 11, nowMs: 50), .fetch(from: 12))
    _ = try core.receive([batch(10, 11)])
    core.nothingNew()
    XCTAssertEqual(core.tick(nowMs: 51).first, .fetch(from: 12))
    XCTAssertEqual(core.appliedSeq, 11)
  }

  func testRepairRebuildsFromSeqOne() throws {
    var core = try make(InMemoryStateStore())
    _ = try core.receive([batch(1, 12)])
    XCTAssertEqual(core.repair(), [.rebuild])
    let fresh = InMemoryStateStore()
    try core.rebuilt(applier: FakeApplier(store: fresh), store: fresh)
    XCTAssertEqual(core.repairs, 1)
    XCTAssertEqual(core.appliedSeq, 0)
    XCTAssertEqual(core.loggedCount, 0)
    XCTAssertEqual(core.tick(nowMs: 0).first, .fetch(from: 1))
  }

  func testByzantineFlipAndReport() throws {
    var core = try make(InMemoryStateStore(), flip: true)
    let v = votes(try core.receive([batch(1, 10), batch(11, 13)]))
    XCTAssertNotEqual(v[0].stateDigest, core.applier.committedStateDigest, "a flipped bit")
    XCTAssertNil(try core.report(at: 12))
    let report = try XCTUnwrap(try core.report(at: 13))
    XCTAssertEqual(core.applier.committedSeq, 13, "a report commits first")
    XCTAssertEqual(report.stateDigest, core.applier.committedStateDigest)
  }

  func testLogIsPrunedBehindTheVoterWithTheRetention() throws {
    let store = InMemoryStateStore()
    var settings = Core.Settings(id: "r1", kernel: "v1", checkpointEvents: 5, heartbeatMs: 500)
    settings.logRetainedSeqs = 10
    var core = try Core(settings: settings, applier: FakeApplier(store: store), store: store)
    for first in stride(from: Int64(1), through: 36, by: 5) {
      _ = try core.receive([batch(first, first + 4)])
    }
    XCTAssertEqual(core.loggedCount, 8)
    core.prune(through: 30)  // keeps what ends after seq 20
    XCTAssertEqual(core.loggedCount, 4)
    _ = try core.receive([batch(41, 45)])  // the next commit deletes
    XCTAssertNil(try core.effects(first: 16, last: 20))
    XCTAssertNotNil(try core.effects(first: 21, last: 25))
    XCTAssertEqual(votes(try core.resend(from: 1)).map(\.first), [21, 26, 31, 36, 41])
  }

  /// The replica's store keeps a vector memtable, which sorts itself on every read: the
  /// voter's fetches are answered from memory, and the store is read only for batches
  /// older than the records kept (a restart, a late fetch), with the same answers.
  func testCommittedEffectsAreServedFromMemory() throws {
    let inner = InMemoryStateStore()
    let reads = ReadCountingStore(inner)
    var settings = Core.Settings(id: "r1", kernel: "v1", checkpointEvents: 5, heartbeatMs: 500)
    settings.recentEffectsBytesMax = 40  // a few batches' records ("e1e2..." bytes)
    var core = try Core(settings: settings, applier: FakeApplier(store: inner), store: reads)
    for first in stride(from: Int64(1), through: 36, by: 5) {
      _ = try core.receive([batch(first, first + 4)])  // every batch ends on a checkpoint
    }
    func records(_ first: Int64, _ last: Int64) -> [UInt8] { (first...last).flatMap { Array("e\($0)".utf8) } }
    XCTAssertEqual(try core.effects(first: 36, last: 40), records(36, 40))
    XCTAssertEqual(try core.effects(first: 31, last: 35), records(31, 35))
    XCTAssertNil(try core.effects(first: 41, last: 45), "not applied yet")
    XCTAssertNil(try core.effects(first: 31, last: 34), "another range")
    XCTAssertEqual(reads.count, 0, "recent batches and batches not applied never read the store")
    XCTAssertEqual(
      try core.effects(first: 1, last: 5), records(1, 5), "older than the memory bound: the store")
    XCTAssertEqual(reads.count, 1)
    // A restarted replica has nothing in memory: the same answers from the store.
    let restarted = try Core(settings: settings, applier: FakeApplier(store: inner), store: inner)
    for first in stride(from: Int64(1), through: 36, by: 5) {
      XCTAssertEqual(try restarted.effects(first: first, last: first + 4), records(first, first + 4))
    }
  }

  func testUncommittedBatchesAreBounded() throws {
    var core = try make(InMemoryStateStore(), checkpoint: 1_000_000_000)
    for s in 1...Int64(Core.uncommittedBatchesMax) { _ = try core.receive([batch(s, s)]) }
    XCTAssertEqual(core.uncommittedCount, 0, "a commit without a state digest in the vote")
    XCTAssertEqual(core.forcedCommits, 1)
    XCTAssertEqual(core.applier.committedSeq, Int64(Core.uncommittedBatchesMax))
  }
}

/// A store that counts point reads (the replica's fetch answers must not read it).
final class ReadCountingStore: StateStore {
  let inner: InMemoryStateStore
  private(set) var count = 0
  init(_ inner: InMemoryStateStore) { self.inner = inner }
  func value(for key: [UInt8]) throws -> [UInt8]? {
    count += 1
    return try inner.value(for: key)
  }
  func commit(_ batch: StoreBatch, sync: Bool) throws { try inner.commit(batch, sync: sync) }
  func scan(prefix: [UInt8], _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
    try inner.scan(prefix: prefix, body)
  }
}
