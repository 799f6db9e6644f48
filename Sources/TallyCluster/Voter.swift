// The voter service: collects votes and heartbeats (PULL), runs VoterCore, stores
// every decided batch with the new watermark in one atomic write before it counts
// as emitted (so a restarted voter neither repeats nor skips), writes alerts to
// <data>/alerts.jsonl, and tells dissenting replicas to repair themselves.
import Foundation
import KernelAPI
import RocksDBStore
import TallyEngine
import ZeroMQTransport

public final class Voter {
  static let decidedPrefix: UInt8 = 0x30
  static let watermarkKey: [UInt8] = [0x00] + Array("watermark".utf8)
  /// What the voter knows of each replica (quarantine, dissents, repairs), kept
  /// across restarts so that a faulty replica stays quarantined.
  static let replicasKey: [UInt8] = [0x00] + Array("replicas".utf8)
  static let resendEveryMs = 1_000
  /// How often replicas are told how far the voter has judged and streamed (`PRUNE`).
  static let pruneEveryMs = 20

  let config: ClusterConfig
  let store: RocksDBStateStore
  let alertsPath: String
  let log: Logger
  public private(set) var core: VoterCore
  public private(set) var alertsRaised = 0
  var lastDecidedStateDigest: [UInt8] = []
  /// Decided batches are published here after they are stored (a live feed for
  /// sinks and dashboards; the durable record is the voter's store).
  var publish: ZMQSocket? = nil
  /// Metrics hooks (TallyOps); no-ops by default.
  public var hooks = OpsHooks()
  /// The commits of decisions so far (`VoterStatus.decisionCommitTime`).
  var decisionCommitTime = StageTime()
  /// The voted results stream with effect records (VoterStream.swift, docs/STREAM.md).
  let stream: VotedStream
  /// The reference folder whose rows' keys name rows in the explanation of a dissent
  /// (records name rows by id). Read at the first dissent, not at start: 1.5 s and a
  /// 330 MB peak for a 1M-account reference (95 MB kept), which a voter that never sees
  /// a dissent need not pay.
  public var explainReference: String?
  var explainKeysLoaded: EffectDictionary?

  public init(config: ClusterConfig, dataDir: String, alertsPath: String, log: Logger) throws {
    self.config = config
    self.alertsPath = alertsPath
    self.log = log
    try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
    // No compression: the stream's effect records (hundreds of bytes an event) are
    // written once and read back only for replays; LZ4 and its checksums on them were a
    // third of the voter's CPU (perf, docs/PERFORMANCE.md).
    var options = RocksDBOptions()
    options.compression = .none
    store = try RocksDBStateStore(path: dataDir + "/voted", options: options)
    stream = try VotedStream(store: store, directory: dataDir + "/voted-stream")
    let watermark = (try store.value(for: Self.watermarkKey)).flatMap { Int64(leBytes: $0) } ?? 1
    var decided: [DecidedBatch] = []
    try store.scan(prefix: [Self.decidedPrefix]) { _, value in
      // The core keeps only each batch's vote key: the outcome bytes (one per event)
      // are not held for the whole retained window.
      var d = try Self.decode(value)
      d.outcomes = []
      decided.append(d)
      return true
    }
    lastDecidedStateDigest = decided.last(where: { !$0.stateDigest.isEmpty })?.stateDigest ?? []
    core = VoterCore(
      replicaIds: config.replicas.map(\.id), quorum: config.quorum, repairsMax: config.repairsMax,
      watermark: watermark, decided: decided)
    if let stored = try store.value(for: Self.replicasKey) {
      core.restore(views: try Self.decodeViews(stored))
    }
    log.info(
      "voter: watermark \(watermark) (\(decided.count) batches decided), quorum \(config.quorum) of \(config.replicas.count)"
    )
    log.info(
      "voter: stream records from \(stream.log.entries.first?.first ?? stream.next) to \(stream.next - 1) in \(stream.log.segmentCount) segment files at \(stream.log.directory) (\(stream.log.direct ? "direct I/O where the file system allows it" : "buffered: no direct I/O here"))"
    )
  }

  static func key(_ first: Int64) -> [UInt8] {
    [decidedPrefix] + (0..<8).map { UInt8(truncatingIfNeeded: UInt64(first) >> UInt64(56 - 8 * $0)) }
  }

  static func encode(_ d: DecidedBatch) -> [UInt8] {
    var w = ByteWriter(capacity: 96 + d.outcomes.count)
    w.i64(d.first)
    w.i64(d.last)
    w.i32(Int32(d.outcomes.count))
    w.raw(d.outcomes)
    w.raw(d.outputDigest)
    w.i32(Int32(d.stateDigest.count))
    w.raw(d.stateDigest)
    return w.bytes
  }

  static func decode(_ bytes: [UInt8]) throws -> DecidedBatch {
    var r = ByteReader(bytes)
    let first = try r.i64()
    let last = try r.i64()
    let n = Int(try r.i32())
    return DecidedBatch(
      first: first, last: last, outcomes: try r.bytes(n), outputDigest: try r.bytes(EffectDigest.byteCount),
      stateDigest: try r.bytes(Int(try r.i32())))
  }

  static func encodeViews(_ views: [VoterCore.ReplicaView]) -> [UInt8] {
    var w = ByteWriter()
    w.i32(Int32(views.count))
    for v in views {
      w.string(v.id)
      w.string(v.kernel)
      w.i64(v.agreed)
      w.i64(v.dissents)
      w.bool(v.quarantined)
      w.i32(Int32(v.repairs))
      w.i64(v.appliedSeq)
      w.i64(v.judgedThrough)
      w.bool(v.awaitingRebuild)
      w.bool(v.gaveUp)
    }
    return w.bytes
  }

  static func decodeViews(_ bytes: [UInt8]) throws -> [VoterCore.ReplicaView] {
    var r = ByteReader(bytes)
    let n = Int(try r.i32())
    var views: [VoterCore.ReplicaView] = []
    for _ in 0..<n {
      var v = VoterCore.ReplicaView(id: try r.string())
      v.kernel = try r.string()
      v.agreed = try r.i64()
      v.dissents = try r.i64()
      v.quarantined = try r.bool()
      v.repairs = Int(try r.i32())
      v.appliedSeq = try r.i64()
      v.judgedThrough = try r.i64()
      v.awaitingRebuild = try r.bool()
      v.gaveUp = try r.bool()
      views.append(v)
    }
    return views
  }

  public var status: VoterStatus {
    VoterStatus(
      watermark: core.watermark, quorum: Int64(core.quorum), alerts: Int64(alertsRaised),
      halted: core.halted?.detail, lastStateDigest: lastDecidedStateDigest.hexString,
      stream: config.voterStream,
      streamReplay: config.voterStreamReplay, streamedThrough: stream.next - 1,
      replicas: core.replicas.map {
        VoterStatus.Replica(
          id: $0.id, kernel: $0.kernel, appliedSeq: $0.appliedSeq, agreed: $0.agreed, dissents: $0.dissents,
          quarantined: $0.quarantined, repairs: Int64($0.repairs))
      }, pendingBatches: Int64(core.pending.count), decisionCommitTime: decisionCommitTime)
  }

  public func statusJSON() -> String { status.json }

  func record(_ alert: VoterAlert) {
    alertsRaised += 1
    let line = JSON.render([
      ("time", .string(ISO8601DateFormatter().string(from: Date()))), ("kind", .string(alert.kind.rawValue)),
      ("replica", alert.replica.map { .string($0) } ?? .null),
      ("kernel", alert.kernel.map { .string($0) } ?? .null),
      ("first_seq", .int(alert.first)), ("last_seq", .int(alert.last)), ("detail", .string(alert.detail)),
      ("batch_first_seq", alert.batchFirst.map { .int($0) } ?? .null),
      ("rows", .array(alert.rows.map { .string($0) })), ("event", alert.event.map { .string($0) } ?? .null),
    ])
    log.warn(
      "voter: ALERT \(line)",
      metadata: [
        "alert": "\(alert.kind.rawValue)", "replica": "\(alert.replica ?? "-")", "seq": "\(alert.first)",
        "last_seq": "\(alert.last)",
      ])
    if let handle = FileHandle(forWritingAtPath: alertsPath)
      ?? {
        _ = FileManager.default.createFile(atPath: alertsPath, contents: nil)
        return FileHandle(forWritingAtPath: alertsPath)
      }()
    {
      handle.seekToEndOfFile()
      handle.write(Data((line + "\n").utf8))
      handle.closeFile()
    }
  }

  public func run(context: ZMQContext, stop: () -> Bool = { false }) throws {
    let auth = try Secure.authenticator(context: context, keys: config.curve, log: log)
    defer { auth?.stop() }
    let collect = try ZMQSocket(context: context, type: .pull)
    try Secure.server(collect, config.curve)
    try collect.setMaxMessageBytes(Int64(WireLimits.batchLinesMax * 2 + 4096))
    try collect.bind(config.voterCollectBind)
    let control = try ZMQSocket(context: context, type: .router)
    try Secure.server(control, config.curve)
    try control.bind(config.voterControlBind)
    publish = try ZMQSocket(context: context, type: .pub)
    if let publish { try Secure.server(publish, config.curve) }
    try publish?.bind(config.voterPublishBind)
    var commands: [ZMQSocket] = []
    for i in config.replicas.indices {
      let s = try ZMQSocket(context: context, type: .dealer)
      try Secure.node(s, config.curve)
      try s.setSendHighWaterMark(100)
      try s.connect(config.replicaControl(i))
      commands.append(s)
    }
    log.info("voter: collecting at \(config.voterCollectBind), control \(config.voterControlBind)")
    for s in commands { _ = try s.send(["RESEND".bytes, core.watermark.leBytes], dontWait: true) }
    let clock = ContinuousClock()
    var lastResend = clock.now
    var lastPrune = clock.now
    var prunedSent = [Int64](repeating: 0, count: commands.count)
    while !stop() {
      let ready = try ZMQPoller.poll([collect, control] + commands, timeoutMs: 100)
      if ready[0] {
        var actions: [VoterAction] = []
        var n = 0
        while n < 1_000, let msg = try collect.receive(timeoutMs: 0) {
          n += 1
          actions += handle(msg)
        }
        try perform(actions, commands: commands)
      }
      if ready[1] {
        while let msg = try control.receive(timeoutMs: 0) {
          guard msg.count >= 2 else { continue }
          switch msg[1].text {
          case "PING": try control.send([msg[0], "PONG".bytes])
          case "STATUS": try control.send([msg[0], statusJSON().bytes])
          case "DECIDED":
            // The voted state digest at a seq, for reports: [seq] → [found, stateDigest].
            guard msg.count == 3, let seq = Int64(leBytes: msg[2]) else { continue }
            let digest = decidedStateDigest(endingAt: seq)
            try control.send([msg[0], digest == nil ? "NO".bytes : "YES".bytes, digest ?? []])
          default: try control.send([msg[0], "ERR".bytes, "unknown verb".bytes])
          }
        }
      }
      for (i, s) in commands.enumerated() where ready[2 + i] {
        while let msg = try s.receive(timeoutMs: 0) { streamReply(msg, from: i) }  // effects; REPAIRING acks
      }
      try streamTick(context: context, commands: commands)
      if clock.now - lastResend > .milliseconds(Self.resendEveryMs) {
        lastResend = clock.now
        for ask in core.replicasToAskForResend() {
          _ = try commands[ask.replica].send(["RESEND".bytes, ask.from.leBytes], dontWait: true)
        }
      }
      if clock.now - lastPrune > .milliseconds(Self.pruneEveryMs) {
        lastPrune = clock.now
        // Replicas may drop their vote and effect logs behind what was judged and
        // streamed, and need not log the records of streamed batches: told often, so
        // that a replica's commit finds most of its batches streamed already.
        for r in commands.indices {
          let through = core.prunableThrough(replica: r, streamedThrough: stream.next - 1)
          if through > prunedSent[r] {
            _ = try commands[r].send(["PRUNE".bytes, through.leBytes], dontWait: true)
            prunedSent[r] = through
          }
        }
      }
    }
  }

  func decidedStateDigest(endingAt seq: Int64) -> [UInt8]? {
    guard seq < core.watermark, let first = core.decidedFirstByLast[seq], let d = core.decidedKeys[first]
    else {
      return nil
    }
    // The key is the output digest, followed by the state digest at checkpoints.
    return d.key.count == EffectDigest.byteCount + 32 ? Array(d.key.suffix(32)) : []
  }

  /// One message from a replica: a vote or a heartbeat. Anything malformed, or from
  /// a replica id not in the config, is refused with a log line.
  func handle(_ msg: [[UInt8]]) -> [VoterAction] {
    guard msg.count == 2 else {
      log.warn("voter: refused a message of \(msg.count) frames")
      return []
    }
    switch msg[0].text {
    case "VOTE":
      guard let vote = try? Vote(decoding: msg[1]) else {
        log.warn("voter: refused a malformed vote (\(msg[1].count) bytes)")
        return []
      }
      guard let r = config.replicaIndex(vote.replica) else {
        log.warn("voter: refused a vote from unknown replica '\(vote.replica)'")
        return []
      }
      hooks.voteReceived()
      return core.receive(vote, from: r)
    case "HB":
      guard let hb = try? Heartbeat(decoding: msg[1]), let r = config.replicaIndex(hb.replica) else {
        log.warn("voter: refused a malformed heartbeat")
        return []
      }
      core.heartbeat(replica: r, appliedSeq: hb.appliedSeq, kernel: hb.kernel)
      return []
    default:
      log.warn("voter: refused unknown message type '\(msg[0].text)'")
      return []
    }
  }

  func perform(_ actions: [VoterAction], commands: [ZMQSocket]) throws {
    var write = StoreBatch()
    var last: DecidedBatch? = nil
    for a in actions {
      if case .emit(let d) = a {
        write.put(Self.key(d.first), Self.encode(d))
        last = d
      }
    }
    let viewsChanged = actions.contains {
      switch $0 {
      case .emit: return false
      default: return true
      }
    }
    if viewsChanged || last != nil { write.put(Self.replicasKey, Self.encodeViews(core.replicas)) }
    // Decided batches beyond the retention leave the store with this write (bounded store).
    for first in core.takeForgottenDecided() { write.delete(Self.key(first)) }
    let started = ContinuousClock.now
    var committed: Duration? = nil
    if last == nil && (viewsChanged || !write.isEmpty) {
      try store.commit(write, sync: true)
      committed = .now - started
    }
    if let last {
      write.put(Self.watermarkKey, (last.last + 1).leBytes)
      try store.commit(write, sync: true)
      let took = ContinuousClock.now - started
      committed = took
      decisionCommitTime.add(took)
      if !last.stateDigest.isEmpty { lastDecidedStateDigest = last.stateDigest }
      for a in actions {
        if case .emit(let d) = a {
          _ = try publish?.send(
            ["DECIDED".bytes, d.first.leBytes, d.last.leBytes, d.outcomes, d.stateDigest], dontWait: true)
        }
      }
    }
    if !actions.isEmpty { hooks.actionsPerformed(actions, committed) }
    for a in actions {
      switch a {
      case .emit: break
      case .alert(let alert): record(alert.kind == .dissent ? explain(alert, commands: commands) : alert)
      case .quarantine(let r):
        log.warn(
          "voter: replica \(config.replicas[r].id) quarantined",
          metadata: ["replica": "\(config.replicas[r].id)"])
      case .repair(let r):
        log.warn(
          "voter: asking replica \(config.replicas[r].id) to repair (rebuild by replay)",
          metadata: ["replica": "\(config.replicas[r].id)"])
        _ = try commands[r].send(["REPAIR".bytes], dontWait: true)
      }
    }
  }
}
