// The voter's decisions, as a state machine without I/O (the SwiftNIO pattern):
// votes in, actions out. The service around it does sockets, storage and alerts,
// and a simulator can drive it directly.
import KernelAPI

public struct DecidedBatch: Sendable, Equatable {
  public var first: Int64
  public var last: Int64
  public var outcomes: [UInt8]
  public var outputDigest: [UInt8]
  public var stateDigest: [UInt8]

  public init(first: Int64, last: Int64, outcomes: [UInt8], outputDigest: [UInt8], stateDigest: [UInt8]) {
    self.first = first
    self.last = last
    self.outcomes = outcomes
    self.outputDigest = outputDigest
    self.stateDigest = stateDigest
  }
}

public struct VoterAlert: Sendable, Equatable {
  public enum Kind: String, Sendable {
    case dissent = "DISSENT", noMajority = "NO_MAJORITY", rejoined = "REJOINED"
  }
  public var kind: Kind
  public var replica: String?
  public var kernel: String?
  public var first: Int64
  public var last: Int64
  public var detail: String
  /// DISSENT: the first seq of the batch the dissent was found in (`first` becomes
  /// the first seq whose effects differ, once explained) and the differing effect
  /// rows, majority vs dissenter (VoterExplain.swift).
  public var batchFirst: Int64? = nil
  public var rows: [String] = []
  /// DISSENT: the event line at `first` as journaled (what the differing rows came from).
  public var event: String? = nil
}

public enum VoterAction: Sendable, Equatable {
  /// Emit this batch's outputs, exactly once, in seq order.
  case emit(DecidedBatch)
  case alert(VoterAlert)
  case quarantine(replica: Int)
  case repair(replica: Int)
}

public struct VoterCore: Sendable {
  /// Batches at or past the watermark with votes waiting for a decision, at most. A
  /// replica far ahead of the others fills this; a vote for a new batch beyond it is
  /// dropped and counted (`votesDropped`): the replica is asked to resend once the
  /// watermark gets there. A vote at the watermark always finds room (the farthest
  /// batch is dropped instead).
  public static let pendingBatchesMax = 4_096
  /// Decided batches whose vote keys are kept to judge late votes. Older ones are
  /// forgotten: a replica whose votes for them were never judged counts as judged
  /// through them (its state digest is still compared at the next checkpoint kept).
  public static let decidedRetainedBatchesMax = 100_000
  /// Judged batches kept per replica beyond its contiguous judged prefix; past it the
  /// farthest is forgotten (and asked for again by a resend).
  public static let judgedAheadMax = 4_096

  public struct ReplicaView: Sendable, Equatable {
    public var id: String
    public var kernel: String = ""
    public var agreed: Int64 = 0
    public var dissents: Int64 = 0
    public var quarantined = false
    public var repairs = 0
    public var appliedSeq: Int64 = 0
    /// Every decided batch through this seq has been compared with this replica's vote.
    public var judgedThrough: Int64 = 0
    /// A repair was requested: its dissents are expected until it replays from seq 1.
    public var awaitingRebuild = false
    /// Out of repairs and alerted so: stays quarantined for an operator, silently.
    public var gaveUp = false
  }

  public let quorum: Int
  public let repairsMax: Int
  /// The next seq to decide; everything below it was emitted.
  public private(set) var watermark: Int64
  public private(set) var replicas: [ReplicaView]
  /// Votes for batches not decided yet, by first seq, then replica index.
  public private(set) var pending: [Int64: [Int: Vote]] = [:]
  /// Vote keys (output + state digest) of decided batches, to judge late votes.
  public private(set) var decidedKeys: [Int64: (last: Int64, key: [UInt8])] = [:]
  /// First seq of the decided batch ending at each seq (reports ask by last seq).
  public private(set) var decidedFirstByLast: [Int64: Int64] = [:]
  /// First seqs of the decided batches in `decidedKeys`, in order (for the retention).
  var decidedOrder = RetentionQueue<Int64>(limit: VoterCore.decidedRetainedBatchesMax)
  /// First seqs of decided batches forgotten since the shell last took them: it deletes
  /// their stored records, so the voter's store keeps at most `decidedRetainedBatchesMax`.
  var forgottenDecided: [Int64] = []
  public private(set) var halted: VoterAlert? = nil
  /// Votes dropped at `pendingBatchesMax`.
  public private(set) var votesDropped: Int64 = 0
  /// Judged batches beyond each replica's contiguous judged prefix (first → last).
  var judgedAhead: [[Int64: Int64]] = []

  public init(replicaIds: [String], quorum: Int, repairsMax: Int, watermark: Int64, decided: [DecidedBatch]) {
    precondition(quorum > replicaIds.count / 2 && quorum <= replicaIds.count, "quorum must be a majority")
    self.quorum = quorum
    self.repairsMax = repairsMax
    self.watermark = watermark
    replicas = replicaIds.map { ReplicaView(id: $0) }
    judgedAhead = [[Int64: Int64]](repeating: [:], count: replicaIds.count)
    for d in decided.dropLast(Self.decidedRetainedBatchesMax) { forgottenDecided.append(d.first) }
    for d in decided.suffix(Self.decidedRetainedBatchesMax) {
      remember(first: d.first, last: d.last, key: d.outputDigest + d.stateDigest)
    }
  }

  /// The first seqs of the decided batches forgotten since the last call (their stored
  /// records are to be deleted in the shell's next write).
  public mutating func takeForgottenDecided() -> [Int64] {
    defer { forgottenDecided.removeAll(keepingCapacity: true) }
    return forgottenDecided
  }

  /// Keeps a decided batch's key, forgetting the oldest beyond `decidedRetainedBatchesMax`.
  mutating func remember(first: Int64, last: Int64, key: [UInt8]) {
    decidedKeys[first] = (last, key)
    decidedFirstByLast[last] = first
    guard let oldest = decidedOrder.append(first) else { return }
    forgottenDecided.append(oldest)
    guard let gone = decidedKeys.removeValue(forKey: oldest) else { return }
    decidedFirstByLast[gone.last] = nil
    for r in replicas.indices where replicas[r].judgedThrough < gone.last {
      replicas[r].judgedThrough = gone.last
      judgedAhead[r] = judgedAhead[r].filter { $0.key > gone.last }
    }
  }

  /// What the voter has judged of replica `r` and streamed: its vote and effect log
  /// through there is no longer needed (PRUNE, ReplicaCore.prune).
  public func prunableThrough(replica r: Int, streamedThrough: Int64) -> Int64 {
    min(streamedThrough, replicas[r].judgedThrough, watermark - 1)
  }

  /// Restores what the voter knew about each replica before a restart.
  public mutating func restore(views: [ReplicaView]) {
    for v in views {
      if let i = replicas.firstIndex(where: { $0.id == v.id }) { replicas[i] = v }
    }
  }

  public mutating func heartbeat(replica: Int, appliedSeq: Int64, kernel: String) {
    replicas[replica].appliedSeq = appliedSeq
    replicas[replica].kernel = kernel
  }

  /// A vote arrives from replica `r` (already authenticated to be that replica).
  /// Records that replica r's vote on batch first...last was compared with the decision.
  mutating func judged(_ r: Int, first: Int64, last: Int64) {
    if first <= replicas[r].judgedThrough + 1 {
      replicas[r].judgedThrough = max(replicas[r].judgedThrough, last)
      while let next = judgedAhead[r].removeValue(forKey: replicas[r].judgedThrough + 1) {
        replicas[r].judgedThrough = next
      }
    } else {
      judgedAhead[r][first] = last
      if judgedAhead[r].count > Self.judgedAheadMax, let farthest = judgedAhead[r].keys.max() {
        judgedAhead[r][farthest] = nil
      }
    }
  }

  public mutating func receive(_ vote: Vote, from r: Int) -> [VoterAction] {
    var actions: [VoterAction] = []
    replicas[r].kernel = vote.kernel
    replicas[r].appliedSeq = max(replicas[r].appliedSeq, vote.last)
    if vote.first == 1 && replicas[r].awaitingRebuild {
      // The repaired replica replays from the start: judge it afresh.
      replicas[r].awaitingRebuild = false
      replicas[r].judgedThrough = 0
      judgedAhead[r] = [:]
    }
    if vote.first < watermark {
      // Already decided: judge the late vote against the decision.
      guard let decided = decidedKeys[vote.first], decided.last == vote.last else { return actions }
      // A restarted replica votes again on the batches it applied since its last
      // commit: each batch counts once in its agreed votes (a dissent always counts).
      let judgedBefore = vote.last <= replicas[r].judgedThrough || judgedAhead[r][vote.first] != nil
      judged(r, first: vote.first, last: vote.last)
      if decided.key == vote.key {
        // A quarantined replica rejoins once it has caught up and its state digest
        // agrees at a checkpoint (outputs alone do not show a wrong state).
        if replicas[r].quarantined && vote.last + 1 >= watermark
          && decided.key.count == EffectDigest.byteCount + 32
        {
          replicas[r].quarantined = false
          actions.append(
            .alert(
              VoterAlert(
                kind: .rejoined, replica: replicas[r].id, kernel: vote.kernel, first: vote.first,
                last: vote.last,
                detail: "replica caught up and agrees again")))
        }
        if !replicas[r].quarantined && !judgedBefore { replicas[r].agreed += 1 }
      } else {
        actions += dissent(r, vote: vote, expected: decided.key)
      }
      return actions
    }
    if pending[vote.first] == nil && pending.count >= Self.pendingBatchesMax {
      guard vote.first == watermark, let farthest = pending.keys.max() else {
        votesDropped += 1
        return actions
      }
      votesDropped += Int64(pending[farthest]?.count ?? 0)
      pending[farthest] = nil
    }
    pending[vote.first, default: [:]][r] = vote
    actions += decideReady()
    return actions
  }

  mutating func dissent(_ r: Int, vote: Vote, expected: [UInt8]) -> [VoterAction] {
    replicas[r].dissents += 1
    // Quarantined and already told to rebuild: counted, not re-alerted.
    if replicas[r].quarantined && replicas[r].awaitingRebuild { return [] }
    if replicas[r].quarantined && replicas[r].repairs >= repairsMax {
      if replicas[r].gaveUp { return [] }
      replicas[r].gaveUp = true
      return [
        .alert(
          VoterAlert(
            kind: .dissent, replica: replicas[r].id, kernel: vote.kernel, first: vote.first, last: vote.last,
            detail: (vote.outputDigest != Array(expected.prefix(EffectDigest.byteCount))
              ? "outputs differ from the majority's" : "state digest differs from the majority's")
              + "; still after \(repairsMax) repairs, stays quarantined for an operator"))
      ]
    }
    // A repaired replica that dissents again (it replayed from seq 1 into a difference
    // again) is the same incident: repaired again without a new alert. The alert comes
    // once at the first dissent and once more when the repairs run out (above).
    let repeated = replicas[r].quarantined && replicas[r].repairs > 0
    var actions: [VoterAction] = []
    if !repeated {
      actions.append(
        .alert(
          VoterAlert(
            kind: .dissent, replica: replicas[r].id, kernel: vote.kernel, first: vote.first, last: vote.last,
            detail: vote.outputDigest != Array(expected.prefix(EffectDigest.byteCount))
              ? "outputs differ from the majority's" : "state digest differs from the majority's")))
    }
    if !replicas[r].quarantined {
      replicas[r].quarantined = true
      actions.append(.quarantine(replica: r))
    }
    if replicas[r].repairs < repairsMax {
      replicas[r].repairs += 1
      replicas[r].awaitingRebuild = true
      actions.append(.repair(replica: r))
    }
    return actions
  }

  /// Decides batches at the watermark while a quorum agrees.
  mutating func decideReady() -> [VoterAction] {
    var actions: [VoterAction] = []
    while halted == nil, let votes = pending[watermark] {
      var counts: [(key: [UInt8], replicas: [Int])] = []
      for r in votes.keys.sorted() where !replicas[r].quarantined {
        let k = votes[r]!.key
        if let i = counts.firstIndex(where: { $0.key == k }) {
          counts[i].replicas.append(r)
        } else {
          counts.append((k, [r]))
        }
      }
      guard let winner = counts.first(where: { $0.replicas.count >= quorum }) else {
        let eligible = replicas.indices.filter { !replicas[$0].quarantined }.count
        let voted = counts.reduce(0) { $0 + $1.replicas.count }
        if voted == eligible || eligible < quorum {
          // Everyone who can vote has voted and no quorum agrees: stop, never guess.
          let alert = VoterAlert(
            kind: .noMajority, replica: nil, kernel: nil, first: watermark, last: votes.values.first!.last,
            detail: "\(voted) votes in \(counts.count) groups; quorum is \(quorum); emission stopped")
          halted = alert
          actions.append(.alert(alert))
        }
        break
      }
      let v = votes[winner.replicas[0]]!
      let decided = DecidedBatch(
        first: v.first, last: v.last, outcomes: v.outcomes, outputDigest: v.outputDigest,
        stateDigest: v.stateDigest)
      actions.append(.emit(decided))
      remember(first: v.first, last: v.last, key: winner.key)
      pending[watermark] = nil
      watermark = v.last + 1
      for r in votes.keys.sorted() {
        judged(r, first: v.first, last: v.last)
        if votes[r]!.key == winner.key {
          if !replicas[r].quarantined { replicas[r].agreed += 1 }
        } else {
          actions += dissent(r, vote: votes[r]!, expected: winner.key)
        }
      }
    }
    return actions
  }

  /// Replicas that should resend votes, and from which seq: those that applied past
  /// what was compared of theirs, so that no replica's vote on a decided batch goes
  /// unjudged (a wrong replica whose votes were lost is still caught), and those that
  /// applied past the watermark without voting on it.
  public func replicasToAskForResend() -> [(replica: Int, from: Int64)] {
    let voted = pending[watermark] ?? [:]
    var asks: [(Int, Int64)] = []
    for r in replicas.indices where !replicas[r].awaitingRebuild {
      let judged = replicas[r].judgedThrough
      if judged + 1 < watermark && replicas[r].appliedSeq > judged {
        asks.append((r, judged + 1))
      } else if voted[r] == nil && replicas[r].appliedSeq >= watermark {
        asks.append((r, watermark))
      }
    }
    return asks
  }
}
