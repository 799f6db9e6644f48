// The replica's decisions, as a state machine without I/O (like VoterCore and
// SequencerCore): journal batches, voter requests and the current time in, actions
// out. It checks gaps, places checkpoints (the same batches on every replica),
// builds votes, logs votes and effect records with the state at checkpoints, answers
// resends, decides repairs and heartbeat and fetch timing. The business apply is
// behind `BatchApplier` (the one adapter over `DurableEngine` is
// DurableBatchApplier.swift); the vote and effect logs are read through the
// `StateStore` port. Sockets, the clock and deleting a state folder are the shell's
// (Replica.swift), and the simulator drives this same core.
import KernelAPI
import TallyEngine

/// The business state machine as the replica core sees it: apply a journal batch,
/// commit atomically with extra writes, tell what is applied and committed.
public protocol BatchApplier {
  /// The last seq applied (in memory).
  var appliedSeq: Int64 { get }
  /// The last seq durably committed.
  var committedSeq: Int64 { get }
  /// The digest of the state at `digestSeq` (32 bytes).
  var committedStateDigest: [UInt8] { get }
  /// The seq of the last commit that stated a digest (0: none yet).
  var digestSeq: Int64 { get }
  /// Applies the events of `batch` at their seqs: one outcome byte per event
  /// (`OutcomeByte.of`) and the batch's effect records (docs/EFFECTS.md).
  mutating func apply(_ batch: JournalBatch) -> (outcomes: [UInt8], effects: [UInt8])
  /// Commits everything applied, with the writes `extra` makes, in one atomic write.
  /// With `withDigest` the commit states the digest of the committed state and `extra`
  /// gets it (the input-log layout takes a snapshot for it); without, `extra` gets nil.
  mutating func commit(withDigest: Bool, extraFromDigest: @escaping ([UInt8]?) -> StoreBatch) throws
  /// Starts a commit without a digest, with `extra`, and returns while it is written; a
  /// failure is thrown by the next commit or `finishCommit`. The store is the committer's
  /// until `finishCommit` returns.
  mutating func commitInBackground(extra: StoreBatch) throws
  /// Waits for the commit in flight, if any; throws its failure.
  func finishCommit() throws
  /// The seven output files of the applied state (reports).
  func outputFiles() -> [(name: String, bytes: [UInt8])]
  /// True when a restart resumes from the last snapshot (a digest commit, or a stop's)
  /// and applies the journal after it again (commits log no lines): effect records of
  /// batches after it are made again, so they need logging only when they leave memory
  /// unstreamed.
  var restartsFromSnapshot: Bool { get }
  /// Commits everything as a snapshot with `extra` (no digest in any vote), returning
  /// when it is durable: a graceful stop of an applier that `restartsFromSnapshot`.
  mutating func snapshot(extra: StoreBatch) throws
  /// The batches that will be applied after the next one (in order), to be made ready
  /// meanwhile (`DurableBatchApplier`: split on another thread); empty: none are
  /// coming, drop what was made ready and not applied. What an applier does with them
  /// changes no outcome and no effect.
  mutating func prepare(_ batches: ArraySlice<JournalBatch>)
}

extension BatchApplier {
  public mutating func prepare(_ batches: ArraySlice<JournalBatch>) {}
  public var restartsFromSnapshot: Bool { false }
  public mutating func snapshot(extra: StoreBatch) throws {
    try commit(withDigest: false) { _ in extra }
  }
}

public struct ReplicaCore<Applier: BatchApplier> {
  static var votePrefix: UInt8 { 0x20 }
  /// Effect records of each journal batch (by first seq), logged with the votes.
  static var effectsPrefix: UInt8 { 0x21 }
  /// Milliseconds before an unanswered fetch is sent again (the sequencer may have restarted).
  public static var fetchRetryMs: Int64 { 3_000 }
  /// Votes sent for one RESEND, at most (the voter asks again from where they end).
  public static var resendVotesMax: Int { 4_096 }
  /// Batches applied since the last commit, at most: with a `checkpoint_events`
  /// much larger than the journal batches, the replica commits (without a state
  /// digest in the vote, as for a report) rather than hold more in memory.
  public static var uncommittedBatchesMax: Int { 4_096 }
  /// Bytes of committed effect records kept in memory for the voter's fetches. A replica
  /// that logs no lines logs a record only when it leaves this window unstreamed, so the
  /// window is sized for a voter seconds behind at full rate (~250-290 bytes an event:
  /// 1 GiB is about 4M events); with 64 MiB the replicas of a cluster at full rate
  /// logged records and voted 107-151k events/s, with 256 MiB 156-189k on the 1M-event
  /// day, and on a 4M-event day 256 MiB made each replica log ~300 MB (197-254k voted
  /// events/s against 325-347k with 1 GiB; docs/PERFORMANCE.md). `[limits]
  /// recent_effects_mib` sets it per cluster.
  public static var recentEffectsBytesMaxDefault: Int { 1 << 30 }
  /// Seqs of vote and effect log kept behind what the voter has judged and streamed
  /// (`prune(through:)`): older entries are deleted with the next commit. The vote
  /// of every batch since the voter's judged prefix is kept, so a RESEND finds them.
  public static var logRetainedSeqsDefault: Int64 { 100_000 }

  public struct Settings: Sendable {
    public var id: String
    public var kernel: String
    public var checkpointEvents: Int64
    /// A checkpoint batch that crosses a multiple of this also states the state digest
    /// in its vote (a snapshot in the input-log layout); `checkpointEvents` by default.
    public var digestEvents: Int64
    public var heartbeatMs: Int64
    /// Flip one bit of the state digest in every vote (a byzantine replica; tests only).
    public var flipDigestBit = false
    /// Seqs of log kept behind the voter's PRUNE position (`logRetainedSeqsDefault`).
    public var logRetainedSeqs = ReplicaCore.logRetainedSeqsDefault
    /// Bytes of committed effect records served from memory (`recentEffectsBytesMaxDefault`).
    public var recentEffectsBytesMax = ReplicaCore.recentEffectsBytesMaxDefault
    /// Commits without a digest are written while the next batches apply (the service);
    /// the simulator commits in line, so that its simulated disk changes only at the
    /// moments it decides.
    public var backgroundCommits = true
    public init(
      id: String, kernel: String, checkpointEvents: Int64, heartbeatMs: Int64, flipDigestBit: Bool = false
    ) {
      precondition(checkpointEvents >= 1 && heartbeatMs >= 1)
      self.id = id
      self.kernel = kernel
      self.checkpointEvents = checkpointEvents
      self.digestEvents = checkpointEvents
      self.heartbeatMs = heartbeatMs
      self.flipDigestBit = flipDigestBit
    }
  }

  public enum Action: Equatable {
    /// Ask the sequencer for the journal batches from this seq.
    case fetch(from: Int64)
    case heartbeat(Heartbeat)
    /// Send this vote to the voter (a new one or a resend).
    case vote(Vote)
    /// A batch did not follow the applied seq: nothing applied, the next fetch asks again.
    case gap(have: Int64, got: Int64)
    /// Delete the state and start again from seq 1; then call `rebuilt`.
    case rebuild
  }

  struct Logged {
    var first: Int64
    var last: Int64
  }

  public let settings: Settings
  public private(set) var applier: Applier
  var store: any StateStore
  /// Votes and effect records since the last commit: logged with the next commit,
  /// served to the voter meanwhile.
  var uncommittedVotes: [Vote] = []
  var uncommittedEffects: [(first: Int64, last: Int64, bytes: [UInt8])] = []
  /// Effect records of the latest committed batches, oldest first, at most
  /// `settings.recentEffectsBytesMax` bytes: the voter fetches a decided batch's records within
  /// milliseconds, and served from here they are never read back from the store (whose
  /// memtable can then be a vector, sorted once at flush, not a skip list sorted on
  /// every insert).
  var recentEffects: [(first: Int64, last: Int64, bytes: [UInt8])] = []
  var recentEffectsBytes = 0
  /// Effect records of the last background commit's batches, not logged by it: the next
  /// commit logs those the voter has not streamed by then. A replica ahead of the
  /// voter's decisions (the fastest one waits for no other) had logged nearly all its
  /// records, because at its commit the voter had decided none of them yet; one commit
  /// later the voter has streamed them. While records are owed, `owedEffectsKey` is
  /// stored with the commit, and a replica that crashed before paying them opens before
  /// that commit's log entry (DurableBatchApplier.open) and applies its batches again
  /// from the journal, which makes the records again (OwedEffectsRestartTests).
  var owedEffects: [(first: Int64, last: Int64, bytes: [UInt8])] = []
  /// Committed vote and effect log entries, in seq order (for pruning).
  var logged: [Logged] = []
  /// Log entries to delete with the next commit.
  var pruneKeys: [[UInt8]] = []
  /// The voter's last `PRUNE` position: it has judged this replica's votes and stored and
  /// published the effect records through here, so a commit logs no records of batches
  /// ending at or before it (they are the voter's to keep; a replica writing hundreds of
  /// bytes an event twice, write-ahead log and flush, spent a third of its CPU copying
  /// them, docs/PERFORMANCE.md). Records after it are logged: a voter that is behind or
  /// restarting fetches them, from the log after this replica restarted.
  public private(set) var streamedThrough: Int64 = 0
  var fetchSentAtMs: Int64? = nil
  /// The seq a fetch sent ahead asks from (`fetchAhead`), while it is unanswered.
  var aheadFrom: Int64? = nil
  var lastHeartbeatMs: Int64? = nil
  public private(set) var repairs = 0
  /// Commits forced by `uncommittedBatchesMax`.
  public private(set) var forcedCommits = 0

  public var appliedSeq: Int64 { applier.appliedSeq }
  public var uncommittedCount: Int { uncommittedVotes.count }
  public var loggedCount: Int { logged.count }

  /// `store` is the one the applier commits to (the log lives beside the state).
  public init(settings: Settings, applier: Applier, store: any StateStore) throws {
    self.settings = settings
    self.applier = applier
    self.store = store
    try loadLog()
  }

  mutating func loadLog() throws {
    var logged: [Logged] = []
    let applied = applier.appliedSeq
    try store.scan(prefix: [Self.votePrefix]) { _, value in
      // Votes past the applied seq (a replica opened before its last log entry) are
      // logged again when their batches are applied again.
      if let v = try? Vote(decoding: value), v.last <= applied {
        logged.append(Logged(first: v.first, last: v.last))
      }
      return true
    }
    self.logged = logged
  }

  /// Present while the last commit owes its batches' effect records to the next
  /// (`owedEffects`): the replica then opens before that commit's log entry.
  public static var owedEffectsKey: [UInt8] { [0x22] }

  static func voteKey(_ first: Int64) -> [UInt8] { [votePrefix] + first.beBytes }
  static func effectsKey(_ first: Int64) -> [UInt8] { [effectsPrefix] + first.beBytes }

  /// `last:i64 bytes` (the first seq is in the key).
  static func encodeEffects(_ e: (first: Int64, last: Int64, bytes: [UInt8])) -> [UInt8] {
    var w = ByteWriter(capacity: 8 + e.bytes.count)
    w.i64(e.last)
    w.raw(e.bytes)
    return w.bytes
  }

  /// True when a batch ends on a checkpoint: it crosses a multiple of
  /// `checkpointEvents` seqs. Every replica places checkpoints at the same batches.
  public func isCheckpoint(first: Int64, last: Int64) -> Bool {
    let c = settings.checkpointEvents
    return last / c > (first - 1) / c
  }

  /// Time passes: fetch when nothing is outstanding (or the last fetch is unanswered
  /// for `fetchRetryMs`), heartbeat every `heartbeatMs`.
  public mutating func tick(nowMs: Int64) -> [Action] {
    var actions: [Action] = []
    if fetchSentAtMs.map({ nowMs - $0 > Self.fetchRetryMs }) ?? true {
      actions.append(.fetch(from: appliedSeq + 1))
      fetchSentAtMs = nowMs
    }
    if lastHeartbeatMs.map({ nowMs - $0 > settings.heartbeatMs }) ?? true {
      actions.append(
        .heartbeat(
          Heartbeat(
            replica: settings.id, kernel: settings.kernel, appliedSeq: appliedSeq,
            stateDigest: applier.committedStateDigest)))
      lastHeartbeatMs = nowMs
    }
    return actions
  }

  /// The sequencer answered NONE: nothing new, ask again at the next tick.
  public mutating func nothingNew() {
    fetchSentAtMs = nil
    aheadFrom = nil
  }

  /// A reply of journal batches `first...last` arrived and is about to be applied: the
  /// next fetch goes now, from `last + 1`, so that the sequencer reads and sends the
  /// next batches while these apply (two fetches of credit: the one answered and the
  /// one ahead; ZeroMQ guide, credit-based flow control). A replica waiting for each
  /// answer before asking again was idle ~23% of a catch-up (perf of a replica catching
  /// up the 1M-event day alone). Nil when the reply brings nothing new (the tick asks).
  public mutating func fetchAhead(first: Int64, last: Int64, nowMs: Int64) -> Action? {
    fetchSentAtMs = nil
    aheadFrom = nil
    guard last > appliedSeq, first <= appliedSeq + 1 else { return nil }
    aheadFrom = last + 1
    fetchSentAtMs = nowMs
    return .fetch(from: last + 1)
  }

  /// Journal batches from the sequencer: duplicates are skipped, a gap stops the
  /// answer, every other batch is applied and voted on (committed at checkpoints).
  public mutating func receive(_ batches: [JournalBatch]) throws -> [Action] {
    // A fetch sent ahead is still outstanding: the tick must not ask again meanwhile.
    if aheadFrom == nil { fetchSentAtMs = nil }
    var actions: [Action] = []
    // Several batches at once: those after the first are made ready while it applies,
    // and what a gap leaves unapplied is dropped.
    let several = batches.count > 1
    if several { prepare(batches.dropFirst()) }
    defer { if several { prepare([]) } }
    for batch in batches {
      if batch.last <= appliedSeq { continue }  // already applied (a duplicate reply)
      guard batch.first == appliedSeq + 1 else {
        actions.append(.gap(have: appliedSeq, got: batch.first))
        // Ask again from here at the next tick (a reply to a fetch ahead that arrives
        // later is a duplicate or another gap, and is dropped the same way).
        fetchSentAtMs = nil
        aheadFrom = nil
        break
      }
      actions.append(.vote(try apply(batch)))
    }
    return actions
  }

  /// The batches of a reply that come after the one about to be received: when they are
  /// a backlog (a catch-up, a burst: at least `BatchesSplitAhead.batchesMin` not yet
  /// applied), the applier makes them ready while the one before applies (split on
  /// another thread, `DurableBatchApplier.prepare`). The shell hands a reply's batches
  /// to `receive` one at a time, answering requests between them, and calls this with
  /// the rest first, and with none after the last (what was not applied is dropped).
  /// Changes no outcome, vote or effect.
  public mutating func prepare(_ batches: ArraySlice<JournalBatch>) {
    let fresh = batches.filter { $0.last > appliedSeq }
    applier.prepare(fresh.count >= BatchesSplitAhead.batchesMin ? fresh[...] : [])
  }

  /// True when a checkpoint batch also states the state digest: it crosses a multiple
  /// of `digestEvents` seqs (the same batches on every replica, whatever its layout).
  public func isDigestCheckpoint(first: Int64, last: Int64) -> Bool {
    let d = settings.digestEvents
    return last / d > (first - 1) / d
  }

  /// Applies one journal batch and returns its vote. At a checkpoint the state is
  /// committed (with the votes and effect records since the last commit); at a digest
  /// checkpoint the vote also carries the state digest; other votes carry the outputs
  /// and effects only. A crash between checkpoints loses nothing: the batches are
  /// applied again from the journal and give the same votes.
  mutating func apply(_ batch: JournalBatch) throws -> Vote {
    precondition(batch.first == appliedSeq + 1, "replica \(settings.id) would skip a gap")
    let (outcomes, effects) = applier.apply(batch)
    precondition(outcomes.count == batch.lineCount, "one outcome per event")
    let effectsDigest = EffectDigest.of(effects)
    uncommittedEffects.append((batch.first, batch.last, effects))
    let withDigest = isDigestCheckpoint(first: batch.first, last: batch.last)
    guard withDigest else {
      let vote = Vote(
        replica: settings.id, kernel: settings.kernel, first: batch.first, last: batch.last,
        outcomes: outcomes,
        effectsDigest: effectsDigest, stateDigest: [])
      uncommittedVotes.append(vote)
      if isCheckpoint(first: batch.first, last: batch.last) {
        // The vote states no digest, so it need not wait for the commit: like every vote
        // between checkpoints, a crash before the commit is durable gives the same vote
        // again from the journal.
        try commitLog()
      } else if uncommittedVotes.count >= Self.uncommittedBatchesMax {
        forcedCommits += 1
        try commitLog()
      }
      return vote
    }
    let box = VoteBox()
    let (id, kernel, flip) = (settings.id, settings.kernel, settings.flipDigestBit)
    var extra = logWrites(all: true)
    try applier.commit(withDigest: withDigest) { digest in
      var d = digest ?? []
      precondition(d.isEmpty != withDigest, "a digest checkpoint's commit states the digest, no other")
      if flip && !d.isEmpty { d[0] ^= 1 }
      let v = Vote(
        replica: id, kernel: kernel, first: batch.first, last: batch.last, outcomes: outcomes,
        effectsDigest: effectsDigest, stateDigest: d)
      box.vote = v
      extra.put(Self.voteKey(batch.first), v.encoded)
      return extra
    }
    guard let vote = box.vote else { preconditionFailure("commit did not build the vote") }
    logCommitted(all: true, also: Logged(first: batch.first, last: batch.last))
    return vote
  }

  /// The log writes of the uncommitted batches and the pending prunes (the vote of a
  /// checkpoint batch is added by the caller, with the digest): the votes, the owed
  /// effect records the voter has not streamed, and with `all` the uncommitted batches'
  /// records it has not streamed too (a synchronous commit: a stop, a report, a digest).
  func logWrites(all: Bool) -> StoreBatch {
    var extra = StoreBatch()
    for key in pruneKeys { extra.delete(key) }
    for e in uncommittedVotes { extra.put(Self.voteKey(e.first), e.encoded) }
    if applier.restartsFromSnapshot {
      // A restart applies everything after the last snapshot again, effects included: a
      // commit without a digest logs only the unstreamed records that leave memory with
      // it (the oldest of `recentEffects` then `uncommittedEffects`: the voter is far
      // behind or away). A digest commit, stop or report logs every unstreamed record
      // this replica holds (the first two move the restart point).
      let leaving =
        all ? recentEffects.count + uncommittedEffects.count : evictions(adding: uncommittedEffects)
      let fromRecent = min(leaving, recentEffects.count)
      for e in recentEffects[..<fromRecent] + uncommittedEffects[..<(leaving - fromRecent)]
      where e.last > streamedThrough {
        extra.put(Self.effectsKey(e.first), Self.encodeEffects(e))
      }
      if all { extra.delete(Self.owedEffectsKey) }  // a folder's marker from before
      return extra
    }
    for e in owedEffects where e.last > streamedThrough {
      extra.put(Self.effectsKey(e.first), Self.encodeEffects(e))
    }
    if all {
      for e in uncommittedEffects where e.last > streamedThrough {
        extra.put(Self.effectsKey(e.first), Self.encodeEffects(e))
      }
      extra.delete(Self.owedEffectsKey)
    } else if !uncommittedEffects.isEmpty {
      extra.put(Self.owedEffectsKey, [1])
    } else {
      extra.delete(Self.owedEffectsKey)
    }
    return extra
  }

  /// After a commit of `logWrites(all:)`: what it logged is committed; without `all`
  /// the uncommitted batches' records are owed to the next commit.
  mutating func logCommitted(all: Bool, also checkpoint: Logged? = nil) {
    owedEffects = all || applier.restartsFromSnapshot ? [] : uncommittedEffects
    for v in uncommittedVotes { logged.append(Logged(first: v.first, last: v.last)) }
    if let checkpoint { logged.append(checkpoint) }
    let drop = evictions(adding: uncommittedEffects)
    for e in uncommittedEffects {
      recentEffects.append(e)
      recentEffectsBytes += e.bytes.count
    }
    for e in recentEffects[..<drop] { recentEffectsBytes -= e.bytes.count }
    recentEffects.removeFirst(drop)
    uncommittedVotes = []
    uncommittedEffects = []
    pruneKeys = []
  }

  /// How many of `recentEffects` followed by `added` leave memory when `added` joins it:
  /// the oldest, while the bytes held exceed `recentEffectsBytesMax`.
  func evictions(adding added: [(first: Int64, last: Int64, bytes: [UInt8])]) -> Int {
    var bytes = recentEffectsBytes + added.reduce(0) { $0 + $1.bytes.count }
    let count = recentEffects.count + added.count
    var drop = 0
    while drop < count && bytes > settings.recentEffectsBytesMax {
      bytes -=
        drop < recentEffects.count
        ? recentEffects[drop].bytes.count : added[drop - recentEffects.count].bytes.count
      drop += 1
    }
    return drop
  }

  /// Commits the log of the batches since the last commit, without a digest: in the
  /// background when the settings say so.
  mutating func commitLog() throws {
    if settings.backgroundCommits {
      try applier.commitInBackground(extra: logWrites(all: false))
      logCommitted(all: false)
    } else {
      try commitNow()
    }
  }

  /// Commits what was applied since the last checkpoint (a graceful stop, a report
  /// `withDigest`).
  public mutating func commitNow(withDigest: Bool = false) throws {
    let extra = logWrites(all: true)
    try applier.commit(withDigest: withDigest) { _ in extra }
    logCommitted(all: true)
  }

  /// Events since the last snapshot up to which a graceful stop of a replica that logs no
  /// lines takes a snapshot: at 2-5 µs an event (docs/PERFORMANCE.md) it stays well within
  /// the default `shutdown_grace_ms` (5 s). Past it the stop commits the votes only, and
  /// the restart applies the journal after the last snapshot again.
  public static var stopSnapshotEventsMax: Int64 { 500_000 }

  /// A graceful stop: commits what was applied since the last commit so that a planned
  /// restart applies nothing again. A replica that logs no lines takes a snapshot for it
  /// when at most `stopSnapshotEventsMax` events were applied since the last one; a kill
  /// meanwhile leaves the previous snapshot, and the restart fetches the journal after
  /// it, as after any crash.
  public mutating func commitForStop() throws {
    let sinceSnapshot = appliedSeq - applier.digestSeq
    guard applier.restartsFromSnapshot, sinceSnapshot <= Self.stopSnapshotEventsMax else {
      if applier.committedSeq < appliedSeq { try commitNow() }
      return
    }
    guard sinceSnapshot > 0 else { return }
    let extra = logWrites(all: true)
    try applier.snapshot(extra: extra)
    logCommitted(all: true)
  }

  /// The voter has judged this replica's votes and streamed the records through
  /// `seq`: log entries more than `logRetainedSeqs` behind it go with the next commit.
  public mutating func prune(through seq: Int64) {
    streamedThrough = max(streamedThrough, seq)
    let horizon = seq - settings.logRetainedSeqs
    var n = 0
    while n < logged.count && logged[n].last <= horizon { n += 1 }
    guard n > 0 else { return }
    for l in logged[0..<n] {
      pruneKeys.append(Self.voteKey(l.first))
      pruneKeys.append(Self.effectsKey(l.first))
    }
    logged.removeFirst(n)
    var drop = 0
    while drop < recentEffects.count && recentEffects[drop].last <= horizon {
      recentEffectsBytes -= recentEffects[drop].bytes.count
      drop += 1
    }
    recentEffects.removeFirst(drop)
  }

  /// The voter asks for this replica's votes from `from` (logged, then uncommitted),
  /// at most `resendVotesMax`.
  public func resend(from: Int64) throws -> [Action] {
    try applier.finishCommit()  // the logged votes are read from the store
    var out: [Action] = []
    // The log index is in seq order: start at the first batch from `from`, read by key.
    var lo = 0
    var hi = logged.count
    while lo < hi {
      let mid = (lo + hi) / 2
      if logged[mid].first < from { lo = mid + 1 } else { hi = mid }
    }
    for l in logged[lo...] where out.count < Self.resendVotesMax {
      if let value = try store.value(for: Self.voteKey(l.first)), let vote = try? Vote(decoding: value) {
        out.append(.vote(vote))
      }
    }
    for vote in uncommittedVotes where vote.first >= from && out.count < Self.resendVotesMax {
      out.append(.vote(vote))
    }
    return out
  }

  /// The effect records of the batch starting at `first` that ends at `last`; nil
  /// when this replica has not applied it (or applied a different range, or pruned it).
  public func effects(first: Int64, last: Int64) throws -> [UInt8]? {
    // Not applied yet (the voter asks every replica; a slower one is behind): no read of
    // the store, whose vector memtable would sort itself for it.
    guard first <= appliedSeq else { return nil }
    if let e = uncommittedEffects.first(where: { $0.first == first }) {
      return e.last == last ? e.bytes : nil
    }
    // Newest first: the voter asks for batches it has just decided.
    if let e = recentEffects.last(where: { $0.first == first }) {
      return e.last == last ? e.bytes : nil
    }
    // The recent records are consecutive batches: one not among them but after their
    // start was a different batch range.
    if let oldest = recentEffects.first, first >= oldest.first { return nil }
    try applier.finishCommit()
    guard let stored = try store.value(for: Self.effectsKey(first)), stored.count >= 8 else { return nil }
    var r = ByteReader(Array(stored.prefix(8)))
    guard try r.i64() == last else { return nil }
    return Array(stored.dropFirst(8))
  }

  /// The voter told this replica to repair: it deletes its state and replays.
  public mutating func repair() -> [Action] { [.rebuild] }

  /// The shell deleted the state and opened a fresh one: start again from seq 1.
  public mutating func rebuilt(applier: Applier, store: any StateStore) throws {
    self.applier = applier
    self.store = store
    uncommittedVotes = []
    uncommittedEffects = []
    owedEffects = []
    recentEffects = []
    recentEffectsBytes = 0
    pruneKeys = []
    fetchSentAtMs = nil
    aheadFrom = nil
    repairs += 1
    try loadLog()
  }

  /// A report at `seq`: the committed state's digest and the files, when this
  /// replica is at exactly `seq` (it commits first); nil otherwise.
  public mutating func report(at seq: Int64) throws -> (
    stateDigest: [UInt8], files: [(name: String, bytes: [UInt8])]
  )? {
    guard seq == appliedSeq else { return nil }
    if applier.digestSeq < appliedSeq { try commitNow(withDigest: true) }
    return (applier.committedStateDigest, applier.outputFiles())
  }
}

/// Carries the vote out of the commit closure (same thread, synchronous call).
final class VoteBox {
  var vote: Vote?
}
