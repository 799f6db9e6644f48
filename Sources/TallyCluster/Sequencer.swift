// The sequencer: the one place where order is decided. It journals each client
// batch (JournalStore.swift: durable, fdatasync) before acknowledging it, dedupes
// retries by (client, batch number), and serves journal batches to replicas on request.
//
// Distribution is pull, not PUB: a replica asks for "the batches from seq S" and
// the sequencer answers from the journal, parking the request until new events
// arrive (a long poll). A replica therefore never misses a batch, never skips a
// gap, and catches up after a restart through the same path (the ZeroMQ guide's
// credit-based flow control; PUB/SUB drops silently at its high-water mark).
import Foundation
import KernelAPI
import RocksDBStore
import TallyEngine
import ZeroMQTransport

public final class Sequencer {
  /// Client messages journaled in one fsync (group commit).
  public static let groupCommitMessagesMax = SequencerCore.groupCommitMessagesMax
  /// How long a parked fetch waits before an empty answer.
  public static let parkMs = Int(SequencerCore.parkMs)
  /// The journal's RocksDB memtables in memory at once (64 MiB each): the one written and
  /// two full ones waiting for their paced flush. (Since the batches moved to the
  /// journal's segment log, RocksDB holds only the dedupe records: a memtable holds
  /// several hundred thousand client batches' records.)
  public static let journalMemtablesMax = 3

  let config: ClusterConfig
  let store: JournalStore
  let log: Logger
  /// The decisions (SequencerCore.swift); this class only does sockets, the clock and the writes.
  public private(set) var core: SequencerCore
  public var lastSeq: Int64 { core.lastSeq }
  public var batchCount: Int { core.batchCount }
  public private(set) var refused = 0
  /// Metrics hooks (TallyOps); no-ops by default.
  public var hooks = OpsHooks()
  /// The journal's group commits so far (`SequencerStatus.journalCommitTime`).
  var journalCommitTime = StageTime()
  let started = ContinuousClock.now

  public convenience init(config: ClusterConfig, dataDir: String, log: Logger) throws {
    try self.init(
      config: config, dataDir: dataDir, log: log, journalMemtableBytes: RocksDBOptions().writeBufferBytes)
  }

  /// `journalMemtableBytes`: each memtable's size of the journal's RocksDB part (RocksDB's
  /// 64 MiB default for every real journal; a test makes it small to see the flushes fall
  /// behind quickly; the store refuses 0).
  init(config: ClusterConfig, dataDir: String, log: Logger, journalMemtableBytes: Int) throws {
    self.config = config
    self.log = log
    try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
    var options = RocksDBOptions()
    options.writeBufferBytes = journalMemtableBytes
    options.compression = config.journalCompression
    options.backgroundWriteBytesPerSecond = config.journalFlushMiBPerSecond << 20
    // A third memtable: a burst of writes above the flushes' pace fills memory for a
    // while instead of stopping the acks.
    options.memtablesMax = Self.journalMemtablesMax
    store = try JournalStore(folder: dataDir, options: options)
    if let cut = store.cutTail {
      log.warn("sequencer: the journal's torn tail (never acknowledged) was cut: \(cut)")
    }
    core = try SequencerCore(store: store, fetchBatchesMax: config.fetchBatchesMax)
    log.info(
      "sequencer: journal at seq \(core.lastSeq), \(core.batchCount) batches, \(core.clientBatchCount) client batches known; its flushes \(config.journalFlushMiBPerSecond == 0 ? "unpaced" : "paced at \(config.journalFlushMiBPerSecond) MiB/s")"
    )
  }

  /// Milliseconds since this process started: the core's clock (monotonic).
  var nowMs: Int64 {
    let (s, atto) = (ContinuousClock.now - started).components
    return s * 1_000 + atto / 1_000_000_000_000_000
  }

  /// Journal batches starting exactly at `from`, as many as fit in one reply.
  public func batches(from: Int64, max: Int) throws -> [[UInt8]]? {
    try core.batches(from: from, max: max)
  }

  /// Whether RocksDB holds back the journal's writes: its flushes or compactions fall
  /// behind what is journaled (a `journal_flush_mib_per_s` below the sustained write
  /// rate, or a disk that cannot keep up), so acks wait on RocksDB, not on the fsync.
  public struct JournalPressure: Equatable, Sendable {
    /// Milliseconds RocksDB has slowed or stopped the journal's writes since it opened
    /// (a counter: a write stopped blocks this thread, so only the total can be seen).
    public var stallMilliseconds: Int64
    /// Memtables written full and waiting for (or in) their flush.
    public var memtablesAwaitingFlush: Int
  }

  public var journalPressure: JournalPressure {
    JournalPressure(
      stallMilliseconds: store.cumulativeWriteStallMilliseconds ?? 0,
      memtablesAwaitingFlush: store.property("rocksdb.num-immutable-mem-table").flatMap { Int($0) } ?? 0)
  }

  /// The stall total at the last check: an increase is logged once per check.
  var checkedStallMilliseconds: Int64 = 0
  var lastPressureCheck = ContinuousClock.now
  static let pressureCheckEvery = Duration.seconds(1)

  /// Logs, at most once a second, when RocksDB held back the journal's writes since the
  /// last check (property reads, no I/O).
  func checkJournalPressure() {
    guard ContinuousClock.now - lastPressureCheck >= Self.pressureCheckEvery else { return }
    lastPressureCheck = .now
    let p = journalPressure
    guard p.stallMilliseconds > checkedStallMilliseconds else { return }
    let held = p.stallMilliseconds - checkedStallMilliseconds
    checkedStallMilliseconds = p.stallMilliseconds
    log.warn(
      "sequencer: RocksDB held back the journal's writes for \(held) ms since the last check (\(p.stallMilliseconds) ms in all, \(p.memtablesAwaitingFlush) memtables awaiting their flush): its flushes fall behind; raise [sequencer] journal_flush_mib_per_s (now \(config.journalFlushMiBPerSecond), 0 unpaced) or check the disk"
    )
  }

  public var status: SequencerStatus {
    SequencerStatus(
      lastSeq: core.lastSeq, batches: Int64(core.batchCount), clientBatches: Int64(core.clientBatchCount),
      refused: Int64(refused), ingest: config.ingest, parkedFetches: Int64(core.parkedCount),
      parkedFetchesDropped: Int64(core.parkedDropped),
      journalWriteStallMs: journalPressure.stallMilliseconds, journalCommitTime: journalCommitTime,
      journalLogBytes: Int64(store.logBytes))
  }

  public func statusJSON() -> String { status.json }

  /// Performs the core's actions in order: the journal write (then tells the core),
  /// acks, fetch answers.
  func perform(_ actions: [SequencerCore.Action], fetch: ZMQSocket, ingest: ZMQSocket?) throws {
    var todo = actions
    var i = 0
    while i < todo.count {
      let action = todo[i]
      i += 1
      switch action {
      case .writeJournal(let write, let batches, let events):
        let started = ContinuousClock.now
        try store.commit(write, sync: true)
        let took = ContinuousClock.now - started
        journalCommitTime.add(took)
        hooks.journalCommitted(batches, events, took)
        todo += try core.journalWritten(nowMs: nowMs)
      case .ack(let peer, let number, let first, let last):
        try ingest?.send([peer] + Ingest.ok(batch: number, first: first, last: last))
      case .batches(let peer, let batches):
        try fetch.send([peer, "BATCHES".bytes] + batches)
      case .none(let peer, let lastSeq):
        try fetch.send([peer, "NONE".bytes, lastSeq.leBytes])
      case .notABoundary(let peer, let from):
        try fetch.send([peer, "ERR".bytes, "seq \(from) is not the start of a journal batch".bytes])
      }
    }
  }

  /// Runs until the process is killed or `stop` returns true.
  public func run(context: ZMQContext, stop: () -> Bool = { false }) throws {
    let auth = try Secure.authenticator(context: context, keys: config.curve, log: log)
    defer { auth?.stop() }
    let ingest = try ZMQSocket(context: context, type: .router)
    try Secure.server(ingest, config.curve)
    try ingest.setMaxMessageBytes(Int64(WireLimits.ingestMessageBytesMax))
    try ingest.bind(config.ingestBind)
    let fetch = try ZMQSocket(context: context, type: .router)
    try Secure.server(fetch, config.curve)
    try fetch.bind(config.sequencerFetchBind)
    let control = try ZMQSocket(context: context, type: .router)
    try Secure.server(control, config.curve)
    try control.bind(config.sequencerControlBind)
    log.info(
      "sequencer: ingest \(config.ingestBind), fetch \(config.sequencerFetchBind), control \(config.sequencerControlBind)"
    )
    while !stop() {
      let ready = try ZMQPoller.poll([ingest, fetch, control], timeoutMs: 100)
      if ready[0] { try serveIngest(ingest, fetch: fetch) }
      if ready[1] {
        while let msg = try fetch.receive(timeoutMs: 0) { try serveFetch(fetch, msg) }
      }
      if ready[2] {
        while let msg = try control.receive(timeoutMs: 0) {
          guard msg.count >= 2 else { continue }
          switch msg[1].text {
          case "PING": try control.send([msg[0], "PONG".bytes])
          case "STATUS": try control.send([msg[0], statusJSON().bytes])
          default: try control.send([msg[0], "ERR".bytes, "unknown verb".bytes])
          }
        }
      }
      // Parked fetches: new data, or their time is up.
      try perform(core.tick(nowMs: nowMs), fetch: fetch, ingest: ingest)
      checkJournalPressure()
    }
  }

  func serveIngest(_ ingest: ZMQSocket, fetch: ZMQSocket) throws {
    var accepted: [SequencerCore.ClientBatch] = []
    while accepted.count < SequencerCore.groupCommitMessagesMax, let msg = try ingest.receive(timeoutMs: 0) {
      guard msg.count >= 1 else { continue }
      let frames = Array(msg.dropFirst())
      switch Ingest.parse(frames) {
      case .success(let batch): accepted.append(.init(peer: msg[0], batch: batch, numberFrame: frames[2]))
      case .failure(let reason):
        refused += 1
        log.warn("sequencer: refused a client message: \(reason.rawValue) (\(frames.count) frames)")
        try ingest.send([msg[0]] + Ingest.refusal(frames, reason))
      }
    }
    guard !accepted.isEmpty else { return }
    try perform(core.ingest(accepted), fetch: fetch, ingest: ingest)
  }

  func serveFetch(_ fetch: ZMQSocket, _ msg: [[UInt8]]) throws {
    guard msg.count == 3, msg[1].text == "FETCH", let from = Int64(leBytes: msg[2]), from >= 1 else {
      log.warn("sequencer: refused a malformed fetch request (\(msg.count) frames)")
      if let id = msg.first { try fetch.send([id, "ERR".bytes, "malformed fetch".bytes]) }
      return
    }
    try perform(core.fetch(peer: msg[0], from: from, nowMs: nowMs), fetch: fetch, ingest: nil)
  }
}
