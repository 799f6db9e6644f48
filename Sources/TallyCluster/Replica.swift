// A replica: the durable engine fed from the sequencer's journal. For each journal
// batch it applies the events, commits state + position + its vote in one atomic
// write, and pushes the vote (outcomes, output digest, state digest) to the voter.
// It never skips a gap: it only ever asks for the batch after its applied seq.
import Foundation
import KernelAPI
import RocksDBStore
import TallyEngine
import TallyFormat
import ZeroMQTransport

/// Faults a replica can be told to inject (tests and chaos scenarios only).
public struct ReplicaFaults: Sendable {
  /// Flip one bit of the state digest in every vote it sends (a byzantine replica).
  public var flipDigestBit = false
  public init(flipDigestBit: Bool = false) { self.flipDigestBit = flipDigestBit }
}

public final class Replica {
  static let votePrefix: UInt8 = 0x20
  /// Effect records of each journal batch (by first seq), logged with the votes.
  static let effectsPrefix: UInt8 = 0x21
  /// Seconds before an unanswered fetch is sent again (the sequencer may have restarted).
  static let fetchRetryMs = 3_000

  let config: ClusterConfig
  let index: Int
  let id: String
  let kernelName: String
  let dataDir: String
  let reference: ReferenceData
  let faults: ReplicaFaults
  let log: Logger
  var durable: any ReplicaEngine
  var store: RocksDBStateStore
  public private(set) var repairs = 0
  /// Metrics hooks (TallyOps); no-ops by default.
  public var hooks = OpsHooks()

  public init(
    config: ClusterConfig, index: Int, dataDir: String, reference: ReferenceData,
    faults: ReplicaFaults = .init(),
    log: Logger
  ) throws {
    self.config = config
    self.index = index
    id = config.replicas[index].id
    kernelName = config.replicas[index].kernel
    self.dataDir = dataDir
    self.reference = reference
    self.faults = faults
    self.log = log
    (store, durable) = try Self.open(dataDir: dataDir, reference: reference, kernel: kernelName)
    log.info(
      "replica \(id): kernel \(kernelName), state at seq \(durable.committedSeq), checkpoint every \(config.checkpointEvents) seqs"
    )
  }

  static func open(dataDir: String, reference: ReferenceData, kernel: String) throws -> (
    RocksDBStateStore, any ReplicaEngine
  ) {
    try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
    var options = RocksDBOptions()
    options.vectorMemtable = true  // state is written in batches and read back only on restart
    let store = try RocksDBStateStore(path: dataDir + "/state", options: options)
    let engine = try KernelCatalog.openDurable(kernel, store: store, reference: reference)
    engine.enableEffects()
    return (store, engine)
  }

  static func voteKey(_ first: Int64) -> [UInt8] {
    [votePrefix] + (0..<8).map { UInt8(truncatingIfNeeded: UInt64(first) >> UInt64(56 - 8 * $0)) }
  }

  public var appliedSeq: Int64 { durable.appliedSeq }

  /// Votes sent since the last commit: logged (for resends) with the next commit.
  var uncommittedVotes: [Vote] = []
  /// Effect records of the batches since the last commit (first seq, bytes): logged
  /// with the next commit, served to the voter on request (ReplicaEffects.swift).
  var uncommittedEffects: [(first: Int64, last: Int64, bytes: [UInt8])] = []

  /// True when a batch ends on a checkpoint: it crosses a multiple of
  /// `checkpointEvents` seqs. Every replica places checkpoints at the same batches.
  func isCheckpoint(_ batch: JournalBatch) -> Bool {
    let c = Int64(config.checkpointEvents)
    return batch.last / c > (batch.first - 1) / c
  }

  /// Applies one journal batch and returns its vote. At a checkpoint the state is
  /// committed (with the votes since the last commit) and the vote carries the state
  /// digest; between checkpoints the vote carries the outputs only. A crash between
  /// checkpoints loses nothing: the batches are applied again from the journal and
  /// give the same votes.
  public func apply(_ batch: JournalBatch) throws -> Vote {
    precondition(batch.first == appliedSeq + 1, "replica \(id) would skip a gap")
    let outcomes = durable.applyBatch(batch.lines, first: batch.first)
    let effects = durable.takeEffects()
    let effectsDigest = EffectDigest.of(effects)
    uncommittedEffects.append((batch.first, batch.last, effects))
    guard isCheckpoint(batch) else {
      let vote = Vote(
        replica: id, kernel: kernelName, first: batch.first, last: batch.last, outcomes: outcomes,
        effectsDigest: effectsDigest, stateDigest: [])
      uncommittedVotes.append(vote)
      return vote
    }
    let box = VoteBox()
    let (id, kernelName, flip) = (self.id, self.kernelName, faults.flipDigestBit)
    let earlier = uncommittedVotes
    let earlierEffects = uncommittedEffects
    try durable.commit(extraFromDigest: { digest in
      var d = digest
      if flip { d[0] ^= 1 }
      let v = Vote(
        replica: id, kernel: kernelName, first: batch.first, last: batch.last, outcomes: outcomes,
        effectsDigest: effectsDigest, stateDigest: d)
      box.vote = v
      var extra = StoreBatch()
      for e in earlier { extra.put(Self.voteKey(e.first), e.encoded) }
      for e in earlierEffects { extra.put(Self.effectsKey(e.first), Self.encodeEffects(e)) }
      extra.put(Self.voteKey(batch.first), v.encoded)
      return extra
    })
    uncommittedVotes = []
    uncommittedEffects = []
    guard let vote = box.vote else { preconditionFailure("commit did not build the vote") }
    return vote
  }

  /// Commits what was applied since the last checkpoint (before a report).
  func commitNow() throws {
    var extra = StoreBatch()
    for e in uncommittedVotes { extra.put(Self.voteKey(e.first), e.encoded) }
    for e in uncommittedEffects { extra.put(Self.effectsKey(e.first), Self.encodeEffects(e)) }
    try durable.commit(extra: extra)
    uncommittedVotes = []
    uncommittedEffects = []
  }

  /// Deletes the state and starts again from seq 1 (repair by replay).
  public func rebuild() throws {
    store.close()
    try? FileManager.default.removeItem(atPath: dataDir + "/state")
    (store, durable) = try Self.open(dataDir: dataDir, reference: reference, kernel: kernelName)
    uncommittedVotes = []
    uncommittedEffects = []
    repairs += 1
    log.warn(
      "replica \(id): state deleted on repair request; replaying the journal from seq 1 (repair \(repairs))")
  }

  public func statusJSON() -> String {
    JSON.render([
      ("role", .string("replica")), ("id", .string(id)), ("kernel", .string(kernelName)),
      ("applied_seq", .int(appliedSeq)), ("committed_seq", .int(durable.committedSeq)),
      // The digest of the committed state (its last checkpoint), at committed_seq.
      ("committed_state_digest", .string(durable.stateDigest.hexString)),
      ("repairs", .int(Int64(repairs))),
    ])
  }

  public func run(context: ZMQContext, stop: () -> Bool = { false }) throws {
    let auth = try Secure.authenticator(context: context, keys: config.curve, log: log)
    defer { auth?.stop() }
    let fetch = try ZMQSocket(context: context, type: .dealer)
    try Secure.node(fetch, config.curve)
    try fetch.setMaxMessageBytes(Int64(WireLimits.fetchReplyBytesMax + (1 << 20)))
    try fetch.connect(config.replicaFetchEndpoint)
    let votes = try ZMQSocket(context: context, type: .push)
    try Secure.node(votes, config.curve)
    try votes.setSendHighWaterMark(10_000)
    try votes.connect(config.replicaVotesEndpoint)
    let control = try ZMQSocket(context: context, type: .router)
    try Secure.server(control, config.curve)
    try control.bind(config.replicaControlBind(index))
    log.info(
      "replica \(id): fetching from \(config.replicaFetchEndpoint), voting to \(config.replicaVotesEndpoint)")
    let clock = ContinuousClock()
    var fetchSentAt: ContinuousClock.Instant? = nil
    var lastHeartbeat = clock.now - .seconds(10)
    while !stop() {
      let now = clock.now
      if fetchSentAt.map({ now - $0 > .milliseconds(Self.fetchRetryMs) }) ?? true {
        try fetch.send(["FETCH".bytes, (appliedSeq + 1).leBytes])
        fetchSentAt = now
      }
      if now - lastHeartbeat > .milliseconds(config.heartbeatMs) {
        let hb = Heartbeat(
          replica: id, kernel: kernelName, appliedSeq: appliedSeq, stateDigest: durable.stateDigest)
        _ = try votes.send(["HB".bytes, hb.encoded], dontWait: true)
        lastHeartbeat = now
      }
      let ready = try ZMQPoller.poll([fetch, control], timeoutMs: 50)
      if ready[0] {
        while let msg = try fetch.receive(timeoutMs: 0) {
          fetchSentAt = nil
          guard let verb = msg.first?.text else { continue }
          switch verb {
          case "BATCHES":
            for encoded in msg.dropFirst() {
              var r = ByteReader(encoded)
              let batch: JournalBatch
              do { batch = try JournalBatch(decoding: &r) } catch {
                log.error("replica \(id): refused a malformed journal batch: \(error)")
                break
              }
              if batch.last <= appliedSeq { continue }  // already applied (a duplicate reply)
              guard batch.first == appliedSeq + 1 else {
                log.warn(
                  "replica \(id): gap: have \(appliedSeq), got \(batch.first); asking again",
                  metadata: ["seq": "\(appliedSeq)", "got_seq": "\(batch.first)"])
                break
              }
              let started = ContinuousClock.now
              let vote = try apply(batch)
              hooks.batchApplied(batch.lines.count, .now - started)
              if try !votes.send(["VOTE".bytes, vote.encoded], dontWait: true) {
                log.warn(
                  "replica \(id): voter not keeping up; vote \(vote.first) kept for a resend",
                  metadata: ["seq": "\(vote.first)"])
              }
            }
          case "NONE": break
          default: log.warn("replica \(id): sequencer said \(verb)")
          }
        }
      }
      if ready[1] {
        while let msg = try control.receive(timeoutMs: 0) {
          guard msg.count >= 2 else { continue }
          let who = msg[0]
          switch msg[1].text {
          case "PING": try control.send([who, "PONG".bytes])
          case "STATUS": try control.send([who, statusJSON().bytes])
          case "RESEND":
            guard msg.count == 3, let from = Int64(leBytes: msg[2]) else { continue }
            var sent = 0
            try store.scan(from: Self.voteKey(from), to: Self.voteKey(Int64.max)) { _, value in
              guard let vote = try? Vote(decoding: value) else { return true }
              sent += 1
              return try votes.send(["VOTE".bytes, vote.encoded], dontWait: true) && sent < 4_096
            }
            for vote in uncommittedVotes where vote.first >= from && sent < 4_096 {
              sent += 1
              _ = try votes.send(["VOTE".bytes, vote.encoded], dontWait: true)
            }
            log.info("replica \(id): resent \(sent) votes from seq \(from)", metadata: ["seq": "\(from)"])
          case "EFFECTS":
            // The effect records of one journal batch: [EFFECTS, first, last, bytes] or [NOEFFECTS].
            guard msg.count == 4, let first = Int64(leBytes: msg[2]), let last = Int64(leBytes: msg[3]) else {
              continue
            }
            if let bytes = try effects(first: first, last: last) {
              try control.send([who, "EFFECTS".bytes, first.leBytes, last.leBytes, bytes])
            } else {
              try control.send([who, "NOEFFECTS".bytes, first.leBytes, appliedSeq.leBytes])
            }
          case "REPAIR":
            try rebuild()
            fetchSentAt = nil
            try control.send([who, "REPAIRING".bytes])
          case "REPORT":
            guard msg.count == 3, let seq = Int64(leBytes: msg[2]) else { continue }
            if seq == appliedSeq {
              if durable.committedSeq < appliedSeq { try commitNow() }
              let bundle = FileBundle.encode(durable.outputFiles())
              try control.send([who, "REPORT".bytes, seq.leBytes, durable.stateDigest, bundle])
            } else {
              try control.send([who, "NOTAT".bytes, appliedSeq.leBytes])
            }
          default: try control.send([who, "ERR".bytes, "unknown verb".bytes])
          }
        }
      }
    }
  }
}

/// Carries the vote out of the commit closure (same thread, synchronous call).
final class VoteBox {
  var vote: Vote?
}
