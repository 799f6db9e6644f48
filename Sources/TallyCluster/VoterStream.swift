// The voted results stream (docs/STREAM.md): the voter publishes every decided
// journal batch with its effect records, in seq order and without gaps, on a PUB
// socket, and serves replays from any seq in its window on a ROUTER socket (the
// ZeroMQ guide's Clone pattern: sequence numbers, gap detection, a replay path).
// The records come from a replica of the majority and are published only when their
// digest equals the voted one; they are stored before they are published, so a
// restarted voter neither repeats nor skips.
import Foundation
import KernelAPI
import RocksDBStore
import SegmentLog
import TallyEngine
import ZeroMQTransport

/// The stream protocol's names and limits (docs/STREAM.md).
public enum StreamProtocol {
  /// Frame 1 of every message: the protocol and the effects encoding version.
  public static let tag = Array("TALLYFX2".utf8)
  /// Batches kept for replay; older ones are dropped (a replay from before answers GONE).
  public static let replayWindowBatchesMax = 100_000
  /// Bytes of effect records kept for replay.
  public static let replayWindowBytesMax = 1 << 30
  /// Batches sent for one REPLAY request (the client asks again from where it ends).
  public static let replayBatchesPerRequestMax = 256
  /// Distinct replay clients served within `replayClientIdleMs`; more are answered ERR BUSY.
  public static let replayClientsMax = 64
  public static let replayClientIdleMs = 60_000
  /// Messages queued per PUB subscriber before ZeroMQ drops for it (it then replays).
  public static let publishHighWaterMark = 10_000
  /// Decided batches whose records are being fetched at once.
  public static let fetchWindowBatches = 32
  /// A fetch not answered in this time is asked of the next replica.
  public static let fetchTimeoutMs = 2_000
  /// A HUGZ (the next seq to be published) is sent this often when idle.
  public static let heartbeatMs = 1_000

  /// Which replica to ask for the records of a decided batch ending at `last`, and the
  /// rotation after it: in rotation from `rotation`, not quarantined, not `previous`
  /// (the one that did not answer) when another can be asked, and one whose votes show
  /// it applied `last` when there is one. A replica behind the decision answers
  /// NOEFFECTS, and the stream, published in order, then waited `fetchTimeoutMs` to ask
  /// again: asked in plain rotation, the slowest of three replicas got a third of the
  /// requests, and the stream trailed the decisions by 0.7-0.9M events in a saturating
  /// run (50-80k with this choice, docs/PERFORMANCE.md). Nil when every replica is
  /// quarantined.
  public static func source(
    replicas: [VoterCore.ReplicaView], rotation: Int, previous: Int?, through last: Int64
  )
    -> (replica: Int, rotation: Int)?
  {
    let n = replicas.count
    for wantApplied in [true, false] {
      for k in 0..<n {
        let r = (rotation + k) % n
        let view = replicas[r]
        if view.quarantined || (r == previous && n > 1) || (wantApplied && view.appliedSeq < last) {
          continue
        }
        return (r, r + 1)
      }
    }
    guard let r = replicas.indices.first(where: { !replicas[$0].quarantined }) else { return nil }
    return (r, rotation)
  }
}

/// The voter's stream: fetching, storing, publishing and replaying.
final class VotedStream {
  /// Before the eighth session the records were RocksDB values under this prefix, with
  /// the next seq under `legacyNextKey`; an old voter folder is moved into the segment
  /// log when it is opened.
  static let legacyPrefix: UInt8 = 0x31
  static let legacyNextKey: [UInt8] = [0x00] + Array("streamed".utf8)

  struct Fetch {
    var first: Int64
    var last: Int64
    var replica: Int
    var askedAt: ContinuousClock.Instant
    var bytes: [UInt8]?
  }

  /// The replay window: each entry is one batch, its payload the voted digest
  /// (`EffectDigest.byteCount` bytes) followed by the records. Written once with direct
  /// I/O (SegmentLog.swift), trimmed by whole segments.
  let log: SegmentLog
  /// The next seq to publish: everything before it is stored and was published.
  var next: Int64
  /// Records being fetched, by first seq: only the `fetchWindowBatches` decided
  /// batches from `next` are asked for, and each leaves when it is published.
  var fetches: [Int64: Fetch] = [:]
  var askRotation = 0
  var publish: ZMQSocket? = nil
  var replay: ZMQSocket? = nil
  /// The voter's context, for short-lived sockets (VoterExplain.swift).
  var context: ZMQContext? = nil
  var lastHeartbeat = ContinuousClock.now
  /// Replay clients seen recently (identity → last request), at most `replayClientsMax`
  /// (idle ones leave after `replayClientIdleMs`; a new one beyond is answered BUSY).
  var clients: [[UInt8]: ContinuousClock.Instant] = [:]
  var published: Int64 = 0

  init(store: RocksDBStateStore, directory: String) throws {
    log = try SegmentLog(directory: directory)
    try Self.moveLegacyRecords(from: store, to: log)
    next = log.entries.last.map { $0.last + 1 } ?? 1
  }

  /// Moves the records an older voter kept in RocksDB into the segment log (once).
  static func moveLegacyRecords(from store: RocksDBStateStore, to log: SegmentLog) throws {
    var keys: [[UInt8]] = []
    try store.scan(prefix: [legacyPrefix]) { key, value in
      var r = ByteReader(value)
      let first = try r.i64()
      let last = try r.i64()
      // A restart after a move that crashed before its delete finds them in the log.
      if log.entries.last.map({ first > $0.last }) ?? true {
        try log.append(first: first, last: last, parts: [Array(value[16...])])
      }
      keys.append(key)
      return true
    }
    let legacyNext = try store.value(for: legacyNextKey)
    guard !keys.isEmpty || legacyNext != nil else { return }
    try log.sync()
    var write = StoreBatch()
    for key in keys { write.delete(key) }
    write.delete(legacyNextKey)
    try store.commit(write, sync: true)
  }

  /// A stream message for a batch: `BATCH first last digest records`.
  static func message(first: Int64, last: Int64, digest: [UInt8], records: [UInt8]) -> [[UInt8]] {
    [
      StreamProtocol.tag, Array("BATCH".utf8), Array(String(first).utf8), Array(String(last).utf8), digest,
      records,
    ]
  }
}

extension Voter {
  /// Binds the stream's sockets (once) and does one round of its work: fetch the
  /// records of decided batches, store and publish them in order, answer replays.
  func streamTick(context: ZMQContext, commands: [ZMQSocket]) throws {
    let s = stream
    if s.context == nil { s.context = context }
    if s.publish == nil {
      let pub = try ZMQSocket(context: context, type: .pub)
      try Secure.server(pub, config.curve)
      try pub.setSendHighWaterMark(Int32(StreamProtocol.publishHighWaterMark))
      try pub.bind(config.voterStreamBind)
      let router = try ZMQSocket(context: context, type: .router)
      try Secure.server(router, config.curve)
      try router.setMaxMessageBytes(4_096)
      try router.bind(config.voterStreamReplayBind)
      s.publish = pub
      s.replay = router
      log.info("voter: voted stream at \(config.voterStream), replays at \(config.voterStreamReplay)")
    }
    let now = ContinuousClock.now
    // Ask for the records of decided batches not yet stored.
    var seq = s.next
    var asked = 0
    while seq < core.watermark && asked < StreamProtocol.fetchWindowBatches {
      guard let d = core.decidedKeys[seq] else { break }
      var f = s.fetches[seq]
      if f == nil || (f!.bytes == nil && now - f!.askedAt > .milliseconds(StreamProtocol.fetchTimeoutMs)) {
        if let r = pickReplica(after: f?.replica, through: d.last) {
          _ = try commands[r].send(["EFFECTS".bytes, seq.leBytes, d.last.leBytes], dontWait: true)
          f = VotedStream.Fetch(first: seq, last: d.last, replica: r, askedAt: now, bytes: f?.bytes)
          s.fetches[seq] = f
        }
      }
      seq = d.last + 1
      asked += 1
    }
    precondition(
      s.fetches.count <= StreamProtocol.fetchWindowBatches, "voter: stream fetches beyond the window")
    try publishReady()
    try serveReplays(now: now)
    if now - s.lastHeartbeat > .milliseconds(StreamProtocol.heartbeatMs) {
      s.lastHeartbeat = now
      _ = try s.publish?.send(
        [StreamProtocol.tag, Array("HUGZ".utf8), Array(String(s.next).utf8)], dontWait: true)
    }
  }

  /// The next replica to ask for the records of a batch ending at `last`
  /// (`StreamProtocol.source`).
  func pickReplica(after previous: Int?, through last: Int64) -> Int? {
    guard
      let pick = StreamProtocol.source(
        replicas: core.replicas, rotation: stream.askRotation, previous: previous, through: last)
    else { return nil }
    stream.askRotation = pick.rotation
    return pick.replica
  }

  /// A reply on a replica command socket: effect records for the stream.
  func streamReply(_ msg: [[UInt8]], from r: Int) {
    guard msg.count == 4, msg[0].text == "EFFECTS", let first = Int64(leBytes: msg[1]),
      let last = Int64(leBytes: msg[2]), var f = stream.fetches[first], f.last == last,
      let decided = core.decidedKeys[first], decided.last == last
    else { return }
    guard EffectDigest.of(msg[3]) == Array(decided.key.prefix(EffectDigest.byteCount)) else {
      log.warn(
        "voter: replica \(config.replicas[r].id) sent effect records of \(first)...\(last) that do not match the voted digest"
      )
      return
    }
    f.bytes = msg[3]
    stream.fetches[first] = f
  }

  /// Stores and publishes fetched batches at `next`, in order, and trims the window.
  func publishReady() throws {
    let s = stream
    var ready: [[[UInt8]]] = []
    var n = s.next
    while let f = s.fetches[n], let bytes = f.bytes {
      let digest = Array(core.decidedKeys[n]!.key.prefix(EffectDigest.byteCount))
      try s.log.append(first: f.first, last: f.last, parts: [digest, bytes])
      ready.append(VotedStream.message(first: f.first, last: f.last, digest: digest, records: bytes))
      s.fetches[n] = nil
      n = f.last + 1
    }
    guard !ready.isEmpty else { return }
    // Stored (synced) before published: a restarted voter neither repeats nor skips.
    try s.log.sync()
    s.next = n
    while s.log.entries.count > StreamProtocol.replayWindowBatchesMax
      || s.log.totalBytes > StreamProtocol.replayWindowBytesMax, s.log.segmentCount > 1
    {
      try s.log.dropOldestSegment()
    }
    for m in ready {
      _ = try s.publish?.send(m, dontWait: true)
      s.published += 1
    }
  }

  /// Answers REPLAY requests: [TALLYFX2, REPLAY, from] → BATCH messages, then END.
  func serveReplays(now: ContinuousClock.Instant) throws {
    let s = stream
    guard let router = s.replay else { return }
    var handled = 0
    while handled < 16, let msg = try router.receive(timeoutMs: 0) {
      handled += 1
      guard msg.count >= 1 else { continue }
      let who = msg[0]
      func answer(_ frames: [[UInt8]]) throws { _ = try router.send([who] + frames, dontWait: true) }
      guard msg.count == 4, msg[1] == StreamProtocol.tag else {
        try answer([StreamProtocol.tag, Array("ERR".bytes), Array("BAD_FRAMES".utf8)])
        continue
      }
      guard msg[2].text == "REPLAY", let from = StreamProtocol.decimal(msg[3]) else {
        try answer([StreamProtocol.tag, Array("ERR".bytes), Array("BAD_REQUEST".utf8)])
        continue
      }
      s.clients = s.clients.filter { now - $0.value < .milliseconds(StreamProtocol.replayClientIdleMs) }
      if s.clients[who] == nil && s.clients.count >= StreamProtocol.replayClientsMax {
        try answer([StreamProtocol.tag, Array("ERR".bytes), Array("BUSY".utf8)])
        continue
      }
      s.clients[who] = now
      let window = s.log.entries
      if let oldest = window.first, from < oldest.first {
        try answer([StreamProtocol.tag, Array("GONE".utf8), Array(String(oldest.first).utf8)])
        continue
      }
      // The batch that holds `from`, then on.
      var lo = 0
      var hi = window.count
      while lo < hi {
        let mid = (lo + hi) / 2
        if window[mid].last < from { lo = mid + 1 } else { hi = mid }
      }
      var sent = 0
      var i = lo
      var upTo = from
      while i < window.count && sent < StreamProtocol.replayBatchesPerRequestMax {
        let payload = try s.log.read(i)
        guard payload.count >= EffectDigest.byteCount else { break }
        try answer(
          VotedStream.message(
            first: window[i].first, last: window[i].last, digest: Array(payload[..<EffectDigest.byteCount]),
            records: Array(payload[EffectDigest.byteCount...])))
        upTo = window[i].last + 1
        sent += 1
        i += 1
      }
      try answer([
        StreamProtocol.tag, Array("END".utf8), Array(String(max(upTo, from)).utf8),
        Array(String(s.next).utf8),
      ])
    }
  }
}

extension StreamProtocol {
  /// A seq in decimal: no sign, no leading zero, 1...Int64.max (or 0).
  static func decimal(_ bytes: [UInt8]) -> Int64? {
    guard !bytes.isEmpty, bytes.count <= 19, bytes.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
    if bytes.count > 1 && bytes[0] == 48 { return nil }
    return Int64(String(decoding: bytes, as: UTF8.self))
  }
}
