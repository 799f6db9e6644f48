// A replica: the durable engine fed from the sequencer's journal. The decisions (gap
// checks, checkpoints, votes, resends, repairs, timing) are `ReplicaCore`'s; this
// class is the loop around it: sockets, the clock, opening and deleting the state
// folder, and performing the core's actions.
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
  /// Milliseconds before an unanswered fetch is sent again (the sequencer may have restarted).
  static let fetchRetryMs = Int(ReplicaCore<DurableBatchApplier>.fetchRetryMs)

  let config: ClusterConfig
  let index: Int
  let id: String
  let kernelName: String
  let dataDir: String
  let reference: ReferenceData
  let faults: ReplicaFaults
  let log: Logger
  var store: RocksDBStateStore
  /// The decisions (ReplicaCore.swift) over the durable engine (DurableBatchApplier.swift).
  public private(set) var core: ReplicaCore<DurableBatchApplier>
  /// Metrics hooks (TallyOps); no-ops by default.
  public var hooks = OpsHooks()
  /// The batches applied so far (`ReplicaStatus.applyTime`).
  var applyTime = StageTime()
  let started = ContinuousClock.now

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
    let (store, applier) = try Self.open(
      dataDir: dataDir, reference: reference, kernel: kernelName, reserveEvents: config.reserveEvents)
    self.store = store
    var settings = ReplicaCore<DurableBatchApplier>.Settings(
      id: id, kernel: kernelName, checkpointEvents: Int64(config.checkpointEvents),
      heartbeatMs: Int64(config.heartbeatMs), flipDigestBit: faults.flipDigestBit)
    settings.digestEvents = Int64(config.digestEvents)
    settings.recentEffectsBytesMax = config.recentEffectsMiB << 20
    core = try ReplicaCore(settings: settings, applier: applier, store: store)
    log.info(
      "replica \(id): kernel \(kernelName), state at seq \(applier.committedSeq) (\(applier.durable.layoutName) layout), checkpoint every \(config.checkpointEvents) seqs, state digest every \(config.digestEvents), recent effects up to \(config.recentEffectsMiB) MiB"
    )
  }

  /// Opens (or creates) a replica's state folder under `dataDir` as the service does
  /// (also `tally cluster bench-replica`).
  public static func openState(
    dataDir: String, reference: ReferenceData, kernel: String, reserveEvents: Int = 0
  ) throws -> (
    RocksDBStateStore, DurableBatchApplier
  ) { try open(dataDir: dataDir, reference: reference, kernel: kernel, reserveEvents: reserveEvents) }

  /// `reserveEvents`: room for that many events past the stored position (`reserve_events`).
  static func open(dataDir: String, reference: ReferenceData, kernel: String, reserveEvents: Int) throws -> (
    RocksDBStateStore, DurableBatchApplier
  ) {
    try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
    // A vector memtable: commits append, and the memtable is sorted once at flush. The
    // voter's fetches of effect records are served from memory (ReplicaCore's recent
    // effects), so the store is read back only on a restart or a late fetch; before
    // that, every decided batch was read back and a vector memtable sorted itself on
    // each read (60% of a replica's CPU), so a skip list was used, whose inserts cost
    // ~20% of the cluster's CPU (docs/PERFORMANCE.md).
    var options = RocksDBOptions()
    options.vectorMemtable = true
    // No compression: a replica writes its input log and effect records (hundreds of
    // bytes an event) once and reads them back only on a restart or a late fetch; LZ4 on
    // the flush of them was a third of a replica's CPU (perf, docs/PERFORMANCE.md).
    options.compression = .none
    let store = try RocksDBStateStore(path: dataDir + "/state", options: options)
    let applier = try DurableBatchApplier.open(store: store, reference: reference, kernel: kernel)
    // `DurableEngine.reserveCapacity` counts from seq 1: room for the events applied and `reserveEvents` more.
    if reserveEvents > 0 { applier.durable.reserveCapacity(events: Int(applier.appliedSeq) + reserveEvents) }
    return (store, applier)
  }

  public var appliedSeq: Int64 { core.appliedSeq }
  public var repairs: Int { core.repairs }
  var committedSeq: Int64 { core.applier.committedSeq }

  /// Milliseconds since this process started: the core's clock (monotonic).
  var nowMs: Int64 {
    let (s, atto) = (ContinuousClock.now - started).components
    return s * 1_000 + atto / 1_000_000_000_000_000
  }

  /// Commits what was applied since the last checkpoint (before a report, on a stop).
  func commitNow() throws { try core.commitNow() }

  /// A graceful stop's commit (`ReplicaCore.commitForStop`).
  func commitForStop() throws { try core.commitForStop() }

  /// Deletes the state and starts again from seq 1 (repair by replay).
  public func rebuild() throws {
    try? core.applier.finishCommit()  // the committer may be writing to the store
    store.close()
    try? FileManager.default.removeItem(atPath: dataDir + "/state")
    let (store, applier) = try Self.open(
      dataDir: dataDir, reference: reference, kernel: kernelName, reserveEvents: config.reserveEvents)
    self.store = store
    try core.rebuilt(applier: applier, store: store)
    log.warn(
      "replica \(id): state deleted on repair request; replaying the journal from seq 1 (repair \(core.repairs))"
    )
  }

  public var status: ReplicaStatus {
    ReplicaStatus(
      id: id, kernel: kernelName, appliedSeq: appliedSeq, committedSeq: committedSeq,
      committedStateDigest: core.applier.committedStateDigest.hexString, digestSeq: core.applier.digestSeq,
      repairs: Int64(core.repairs),
      uncommittedBatches: Int64(core.uncommittedCount), loggedBatches: Int64(core.loggedCount),
      applyTime: applyTime, batchesSplitAhead: Int64(core.applier.batchesSplitAhead))
  }

  public func statusJSON() -> String { status.json }

  /// Performs the core's actions (sends are non-blocking: a vote the voter cannot
  /// take now is resent on its request).
  func perform(_ actions: [ReplicaCore<DurableBatchApplier>.Action], fetch: ZMQSocket, votes: ZMQSocket)
    throws
  {
    for a in actions {
      switch a {
      case .fetch(let from): try fetch.send(["FETCH".bytes, from.leBytes])
      case .heartbeat(let hb): _ = try votes.send(["HB".bytes, hb.encoded], dontWait: true)
      case .vote(let vote):
        if try !votes.send(["VOTE".bytes, vote.encoded], dontWait: true) {
          log.warn(
            "replica \(id): voter not keeping up; vote \(vote.first) kept for a resend",
            metadata: ["seq": "\(vote.first)"])
        }
      case .gap(let have, let got):
        log.warn(
          "replica \(id): gap: have \(have), got \(got); asking again",
          metadata: ["seq": "\(have)", "got_seq": "\(got)"])
      case .rebuild: try rebuild()
      }
    }
  }

  /// Answers every request waiting on the control socket (the voter's EFFECTS and PRUNE,
  /// status, repair). True when a REPAIR rebuilt the state: the caller then stops applying
  /// the fetch reply it holds.
  func serveControl(_ control: ZMQSocket, fetch: ZMQSocket, votes: ZMQSocket) throws -> Bool {
    var repaired = false
    while let msg = try control.receive(timeoutMs: 0) {
      guard msg.count >= 2 else { continue }
      let who = msg[0]
      switch msg[1].text {
      case "PING": try control.send([who, "PONG".bytes])
      case "STATUS": try control.send([who, statusJSON().bytes])
      case "RESEND":
        guard msg.count == 3, let from = Int64(leBytes: msg[2]) else { continue }
        // Sent until the voter's queue is full: it asks again from where it got to.
        var sent = 0
        for case .vote(let vote) in try core.resend(from: from) {
          guard try votes.send(["VOTE".bytes, vote.encoded], dontWait: true) else { break }
          sent += 1
        }
        log.info("replica \(id): resent \(sent) votes from seq \(from)", metadata: ["seq": "\(from)"])
      case "PRUNE":
        // The voter judged and streamed this replica's batches through seq: the log
        // behind it (less the retention) goes with the next commit.
        guard msg.count == 3, let through = Int64(leBytes: msg[2]) else { continue }
        core.prune(through: through)
      case "EFFECTS":
        // The effect records of one journal batch: [EFFECTS, first, last, bytes] or [NOEFFECTS].
        guard msg.count == 4, let first = Int64(leBytes: msg[2]), let last = Int64(leBytes: msg[3]) else {
          continue
        }
        if let bytes = try core.effects(first: first, last: last) {
          try control.send([who, "EFFECTS".bytes, first.leBytes, last.leBytes, bytes])
        } else {
          try control.send([who, "NOEFFECTS".bytes, first.leBytes, appliedSeq.leBytes])
        }
      case "REPAIR":
        try perform(core.repair(), fetch: fetch, votes: votes)
        try control.send([who, "REPAIRING".bytes])
        repaired = true
      case "REPORT":
        guard msg.count == 3, let seq = Int64(leBytes: msg[2]) else { continue }
        if let report = try core.report(at: seq) {
          try control.send(
            [who, "REPORT".bytes, seq.leBytes, report.stateDigest, FileBundle.encode(report.files)])
        } else {
          try control.send([who, "NOTAT".bytes, appliedSeq.leBytes])
        }
      default: try control.send([who, "ERR".bytes, "unknown verb".bytes])
      }
    }
    return repaired
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
    while !stop() {
      try perform(core.tick(nowMs: nowMs), fetch: fetch, votes: votes)
      let ready = try ZMQPoller.poll([fetch, control], timeoutMs: 50)
      if ready[0] {
        // One reply a turn: with a fetch sent ahead the next reply is usually waiting, and
        // draining them all would starve the control socket (the voter's EFFECTS and
        // PRUNE, status) until the replica caught up.
        if let msg = try fetch.receive(timeoutMs: 0), let verb = msg.first?.text {
          switch verb {
          case "BATCHES":
            var batches: [JournalBatch] = []
            var malformed = false
            for encoded in msg.dropFirst() {
              do { batches.append(try JournalBatch(frame: encoded)) } catch {
                log.error("replica \(id): refused a malformed journal batch: \(error)")
                malformed = true
                break
              }
            }
            // The next fetch goes before these apply (`ReplicaCore.fetchAhead`).
            if !malformed, let first = batches.first, let last = batches.last,
              let ahead = core.fetchAhead(first: first.first, last: last.last, nowMs: nowMs)
            {
              try perform([ahead], fetch: fetch, votes: votes)
            }
            // A backlog's batches after the first are split on another thread while the
            // ones before them apply (`ReplicaCore.prepare`; a catch-up had applied on one
            // core while the other idled).
            if !malformed { core.prepare(batches.dropFirst()) }
            for batch in batches {
              let started = ContinuousClock.now
              let before = appliedSeq
              let actions = try core.receive([batch])
              if appliedSeq > before {
                let took = ContinuousClock.now - started
                applyTime.add(took)
                hooks.batchApplied(batch.lineCount, took)
              }
              try perform(actions, fetch: fetch, votes: votes)
              if actions.contains(where: { if case .gap = $0 { true } else { false } }) { break }
              // Requests are answered between the batches of a reply, not only after all
              // of them: a reply of up to 16 batches is 0.25-0.5 s of apply on a loaded
              // host, which a status probe, the voter's PRUNE or its request for a
              // batch's records would otherwise wait. (The voted stream's lag behind the
              // decisions came from which replica the voter asked: StreamProtocol.source.)
              if try serveControl(control, fetch: fetch, votes: votes) { break }
            }
            core.prepare([])  // what a gap or a request left unapplied is dropped
            if malformed { core.nothingNew() }  // ask again from the first unapplied seq
          case "NONE": core.nothingNew()
          default:
            core.nothingNew()
            log.warn("replica \(id): sequencer said \(verb)")
          }
        }
      }
      if ready[1] { _ = try serveControl(control, fetch: fetch, votes: votes) }
    }
  }
}
