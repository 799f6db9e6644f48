// The sequencer: the one place where order is decided. It journals each client
// batch in RocksDB (durable, fsync) before acknowledging it, dedupes retries by
// (client, batch number), and serves journal batches to replicas on request.
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
  static let journalPrefix: UInt8 = 0x10
  static let dedupePrefix: UInt8 = 0x11
  static let lastSeqKey: [UInt8] = [0x00] + Array("last_seq".utf8)
  /// Client messages journaled in one fsync (group commit).
  public static let groupCommitMessagesMax = 256
  /// How long a parked fetch waits before an empty answer.
  public static let parkMs = 1_000

  let config: ClusterConfig
  let store: RocksDBStateStore
  let log: Logger
  public private(set) var lastSeq: Int64
  public private(set) var batchCount = 0
  var dedupe: [[UInt8]: (first: Int64, last: Int64)] = [:]
  /// Recent journal batches by first seq, so that live replicas are served from memory.
  var recent: [Int64: [UInt8]] = [:]
  var recentOrder: [Int64] = []
  static let recentBatchesMax = 256
  var parked: [(identity: [UInt8], from: Int64, since: ContinuousClock.Instant)] = []
  public private(set) var refused = 0
  /// Metrics hooks (TallyOps); no-ops by default.
  public var hooks = OpsHooks()

  public init(config: ClusterConfig, dataDir: String, log: Logger) throws {
    self.config = config
    self.log = log
    try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
    store = try RocksDBStateStore(path: dataDir + "/journal")
    lastSeq = (try store.value(for: Self.lastSeqKey)).flatMap { Int64(leBytes: $0) } ?? 0
    try store.scan(prefix: [Self.dedupePrefix]) { key, value in
      dedupe[Array(key.dropFirst())] = (
        Int64(leBytes: Array(value[0..<8]))!, Int64(leBytes: Array(value[8..<16]))!
      )
      return true
    }
    try store.scan(prefix: [Self.journalPrefix]) { _, _ in
      batchCount += 1
      return true
    }
    log.info(
      "sequencer: journal at seq \(lastSeq), \(batchCount) batches, \(dedupe.count) client batches known")
  }

  static func journalKey(_ first: Int64) -> [UInt8] {
    [journalPrefix] + (0..<8).map { UInt8(truncatingIfNeeded: UInt64(first) >> UInt64(56 - 8 * $0)) }
  }

  static func dedupeKey(_ client: [UInt8], _ number: Int64) -> [UInt8] {
    client + [0] + (0..<8).map { UInt8(truncatingIfNeeded: UInt64(number) >> UInt64(56 - 8 * $0)) }
  }

  /// Journals a group of validated client batches in one atomic, synced write and
  /// returns each one's seq range (a retry returns its original range).
  public func journal(_ batches: [IngestBatch]) throws -> [(first: Int64, last: Int64)] {
    var write = StoreBatch()
    var ranges: [(Int64, Int64)] = []
    var newBatches: [(Int64, [UInt8])] = []
    var next = lastSeq
    var fresh: [[UInt8]: (Int64, Int64)] = [:]
    for b in batches {
      let key = Self.dedupeKey(b.client, b.batchNumber)
      if let known = dedupe[key] ?? fresh[key] {
        ranges.append(known)
        continue
      }
      var range: (Int64, Int64) = (0, 0)
      if !b.eventLines.isEmpty {
        let first = next + 1
        next += Int64(b.eventLines.count)
        range = (first, next)
        let encoded = JournalBatch(first: first, last: next, lines: b.eventLines).encoded
        write.put(Self.journalKey(first), encoded)
        newBatches.append((first, encoded))
      }
      fresh[key] = range
      write.put([Self.dedupePrefix] + key, range.0.leBytes + range.1.leBytes)
      ranges.append(range)
    }
    if write.isEmpty { return ranges }
    write.put(Self.lastSeqKey, next.leBytes)
    let started = ContinuousClock.now
    try store.commit(write, sync: true)
    hooks.journalCommitted(newBatches.count, Int(next - lastSeq), .now - started)
    lastSeq = next
    for (k, v) in fresh { dedupe[k] = v }
    for (first, encoded) in newBatches {
      batchCount += 1
      recent[first] = encoded
      recentOrder.append(first)
      if recentOrder.count > Self.recentBatchesMax { recent[recentOrder.removeFirst()] = nil }
    }
    return ranges
  }

  /// Journal batches starting exactly at `from`, as many as fit in one reply.
  public func batches(from: Int64, max: Int) throws -> [[UInt8]]? {
    var out: [[UInt8]] = []
    var next = from
    var bytes = 0
    while next <= lastSeq && out.count < max && bytes < WireLimits.fetchReplyBytesMax {
      guard let encoded = try recent[next] ?? store.value(for: Self.journalKey(next)) else {
        if out.isEmpty { return nil }  // not a batch boundary
        break
      }
      var r = ByteReader(encoded)
      _ = try r.i64()
      let last = try r.i64()
      out.append(encoded)
      bytes += encoded.count
      next = last + 1
    }
    return out
  }

  public func statusJSON() -> String {
    JSON.render([
      ("role", .string("sequencer")), ("last_seq", .int(lastSeq)), ("batches", .int(Int64(batchCount))),
      ("client_batches", .int(Int64(dedupe.count))), ("refused", .int(Int64(refused))),
      ("ingest", .string(config.ingest)),
    ])
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
    let clock = ContinuousClock()
    while !stop() {
      let ready = try ZMQPoller.poll([ingest, fetch, control], timeoutMs: 100)
      if ready[0] { try serveIngest(ingest) }
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
      // Answer parked fetches: new data, or their time is up.
      if !parked.isEmpty {
        let now = clock.now
        var still: [(identity: [UInt8], from: Int64, since: ContinuousClock.Instant)] = []
        for p in parked {
          if p.from <= lastSeq {
            try answerFetch(fetch, identity: p.identity, from: p.from)
          } else if now - p.since > .milliseconds(Self.parkMs) {
            try fetch.send([p.identity, "NONE".bytes, lastSeq.leBytes])
          } else {
            still.append(p)
          }
        }
        parked = still
      }
    }
  }

  func serveIngest(_ ingest: ZMQSocket) throws {
    var accepted: [(identity: [UInt8], frames: [[UInt8]], batch: IngestBatch)] = []
    while accepted.count < Self.groupCommitMessagesMax, let msg = try ingest.receive(timeoutMs: 0) {
      guard msg.count >= 1 else { continue }
      let frames = Array(msg.dropFirst())
      switch Ingest.parse(frames) {
      case .success(let batch): accepted.append((msg[0], frames, batch))
      case .failure(let reason):
        refused += 1
        log.warn("sequencer: refused a client message: \(reason.rawValue) (\(frames.count) frames)")
        try ingest.send([msg[0]] + Ingest.refusal(frames, reason))
      }
    }
    guard !accepted.isEmpty else { return }
    let ranges = try journal(accepted.map(\.batch))
    for (i, a) in accepted.enumerated() {
      try ingest.send(
        [a.identity] + Ingest.ok(batch: a.frames[2], first: ranges[i].first, last: ranges[i].last))
    }
  }

  func serveFetch(_ fetch: ZMQSocket, _ msg: [[UInt8]]) throws {
    guard msg.count == 3, msg[1].text == "FETCH", let from = Int64(leBytes: msg[2]), from >= 1 else {
      log.warn("sequencer: refused a malformed fetch request (\(msg.count) frames)")
      if let id = msg.first { try fetch.send([id, "ERR".bytes, "malformed fetch".bytes]) }
      return
    }
    if from > lastSeq {
      parked.append((msg[0], from, ContinuousClock().now))
    } else {
      try answerFetch(fetch, identity: msg[0], from: from)
    }
  }

  func answerFetch(_ fetch: ZMQSocket, identity: [UInt8], from: Int64) throws {
    guard let batches = try batches(from: from, max: config.fetchBatchesMax) else {
      try fetch.send([identity, "ERR".bytes, "seq \(from) is not the start of a journal batch".bytes])
      return
    }
    try fetch.send([identity, "BATCHES".bytes] + batches)
  }
}
