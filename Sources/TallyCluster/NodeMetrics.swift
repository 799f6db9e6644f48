// The nodes' technical metrics, through the swift-metrics API (the Prometheus backend
// and the HTTP endpoint are TallyOps's). Nothing here runs per event: gauges are
// sampled from the node's own thread between loop iterations (`sample`), and the
// hooks the nodes call fire once per journal commit, per applied batch or per vote.
// Metrics never feed back into state, outputs or digests.
import CoreMetrics
import Metrics

/// Calls a node makes at the end of a batch (all no-ops until a metrics object is attached).
public struct OpsHooks {
  /// Sequencer: one group commit of `events` events in `batches` journal batches, fsync included.
  public var journalCommitted: (_ batches: Int, _ events: Int, _ duration: Duration) -> Void = { _, _, _ in }
  /// Replica: one journal batch of `events` events applied (commit included at a checkpoint).
  public var batchApplied: (_ events: Int, _ duration: Duration) -> Void = { _, _ in }
  /// Voter: one vote received; the actions of one round performed, with the time of its fsync.
  public var voteReceived: () -> Void = {}
  public var actionsPerformed: (_ actions: [VoterAction], _ commit: Duration?) -> Void = { _, _ in }
  public init() {}
}

/// HELP text per metric family, for the Prometheus exposition (TallyOps adds the lines).
public enum MetricHelp {
  public static let all: [(name: String, help: String)] = [
    ("tally_journal_seq", "Last seq journaled by the sequencer."),
    ("tally_journal_batches", "Journal batches stored."),
    ("tally_sequencer_journal_commits_total", "Group commits of the journal (one fsync each)."),
    ("tally_sequencer_events_journaled_total", "Events journaled since the process started."),
    ("tally_sequencer_fsync_seconds", "Time of one journal group commit, fsync included."),
    ("tally_sequencer_refused_total", "Client messages refused since the process started."),
    ("tally_sequencer_parked_fetches", "Replica fetches waiting for new events (queue depth)."),
    ("tally_sequencer_recent_batches", "Journal batches cached in memory for live replicas."),
    ("tally_sequencer_client_batches", "Client batches known for deduplication."),
    (
      "tally_sequencer_journal_write_stall_seconds",
      "Seconds RocksDB has slowed or stopped the journal's writes since the sequencer started (its flushes fell behind)."
    ),
    (
      "tally_sequencer_journal_memtables_awaiting_flush",
      "Journal memtables written full, waiting for their flush."
    ),
    (
      "tally_sequencer_journal_log_bytes",
      "Bytes of the journal's segment files (its batches, kept for good)."
    ),
    ("tally_replica_applied_seq", "Last seq applied by the replica (in memory)."),
    ("tally_replica_committed_seq", "Last seq committed by the replica (its last checkpoint)."),
    ("tally_replica_apply_seconds", "Time to apply one journal batch, checkpoint commit included."),
    ("tally_replica_commit_seconds", "Time of one state commit (RocksDB WriteBatch)."),
    ("tally_replica_events_applied_total", "Events applied since the process started."),
    ("tally_replica_batches_applied_total", "Journal batches applied since the process started."),
    ("tally_replica_repairs_total", "Rebuilds by replay since the process started."),
    ("tally_replica_uncommitted_votes", "Votes sent since the last checkpoint (queue depth)."),
    ("tally_voter_decided_seq", "Last seq decided by the voter."),
    (
      "tally_voter_streamed_seq",
      "Last seq whose effect records the voter stored and published on its stream."
    ),
    ("tally_voter_votes_total", "Votes received since the process started."),
    ("tally_voter_dissents_total", "Votes that differed from the decided batch, per replica."),
    ("tally_voter_quarantines_total", "Replicas quarantined since the process started."),
    ("tally_voter_repairs_total", "Repair requests sent since the process started."),
    ("tally_voter_no_majority_total", "Times the voter found no quorum and stopped emitting."),
    ("tally_voter_alerts_total", "Alerts raised, per kind."),
    ("tally_voter_halted", "1 while the voter has stopped emitting for want of a majority."),
    ("tally_voter_quarantined_replicas", "Replicas whose votes do not count."),
    ("tally_voter_replica_quarantined", "1 when this replica is quarantined."),
    ("tally_voter_replica_applied_seq", "Applied seq of each replica, from its heartbeats."),
    ("tally_voter_replica_lag_events", "Seqs this replica is behind the most advanced replica."),
    ("tally_voter_commit_seconds", "Time of one voter commit of decided batches, fsync included."),
    ("tally_voter_pending_batches", "Journal batches with votes waiting for a decision (queue depth)."),
  ]
}

/// Counts that a process only learns as totals (from its node's state): turns each new
/// total into an increment, taking the first one seen as the baseline, so that a restart
/// does not count history again.
struct TotalTracker {
  var last: Int64? = nil
  mutating func advance(to total: Int64, _ counter: Counter) {
    if let last, total > last { counter.increment(by: Int64(total - last)) }
    last = total
  }
}

extension Metrics.Timer {
  func record(_ d: Duration) {
    let (s, atto) = d.components
    recordNanoseconds(s * 1_000_000_000 + atto / 1_000_000_000)
  }
}

public final class SequencerMetrics {
  let journalSeq = Gauge(label: "tally_journal_seq")
  let journalBatches = Gauge(label: "tally_journal_batches")
  let commits = Counter(label: "tally_sequencer_journal_commits_total")
  let events = Counter(label: "tally_sequencer_events_journaled_total")
  let fsync = Metrics.Timer(label: "tally_sequencer_fsync_seconds")
  let refused = Counter(label: "tally_sequencer_refused_total")
  var refusedTotal = TotalTracker()
  let parked = Gauge(label: "tally_sequencer_parked_fetches")
  let recent = Gauge(label: "tally_sequencer_recent_batches")
  let clientBatches = Gauge(label: "tally_sequencer_client_batches")
  let writeStall = Gauge(label: "tally_sequencer_journal_write_stall_seconds")
  let awaitingFlush = Gauge(label: "tally_sequencer_journal_memtables_awaiting_flush")
  let logBytes = Gauge(label: "tally_sequencer_journal_log_bytes")

  public init() {}

  public func attach(to s: Sequencer) {
    s.hooks.journalCommitted = { [unowned self] _, n, d in
      commits.increment()
      events.increment(by: Int64(n))
      fsync.record(d)
    }
  }

  public func sample(_ s: Sequencer) {
    journalSeq.record(s.lastSeq)
    journalBatches.record(s.batchCount)
    refusedTotal.advance(to: Int64(s.refused), refused)
    parked.record(s.core.parkedCount)
    recent.record(s.core.recentCount)
    clientBatches.record(s.core.clientBatchCount)
    let pressure = s.journalPressure
    // Prometheus counts time in seconds: the one conversion, at the exposition.
    writeStall.record(Double(pressure.stallMilliseconds) / 1_000)
    awaitingFlush.record(pressure.memtablesAwaitingFlush)
    logBytes.record(s.store.logBytes)
  }
}

public final class ReplicaMetrics {
  let applied = Gauge(label: "tally_replica_applied_seq")
  let committed = Gauge(label: "tally_replica_committed_seq")
  let apply = Metrics.Timer(label: "tally_replica_apply_seconds")
  let commit = Metrics.Timer(label: "tally_replica_commit_seconds")
  var commitsSeen = 0
  let events = Counter(label: "tally_replica_events_applied_total")
  let batches = Counter(label: "tally_replica_batches_applied_total")
  let repairs = Counter(label: "tally_replica_repairs_total")
  var repairsTotal = TotalTracker()
  let uncommitted = Gauge(label: "tally_replica_uncommitted_votes")

  public init() {}

  public func attach(to r: Replica) {
    r.hooks.batchApplied = { [unowned self] n, d in
      batches.increment()
      events.increment(by: Int64(n))
      apply.record(d)
    }
  }

  public func sample(_ r: Replica) {
    applied.record(r.appliedSeq)
    committed.record(r.committedSeq)
    repairsTotal.advance(to: Int64(r.repairs), repairs)
    uncommitted.record(r.core.uncommittedCount)
    // The durable engine keeps each commit's time; take the ones not seen yet (a
    // rebuild starts a new engine, and its list, again).
    let nanos = r.core.applier.commitNanos
    if nanos.count < commitsSeen { commitsSeen = 0 }
    for n in nanos[commitsSeen...] { commit.recordNanoseconds(n) }
    commitsSeen = nanos.count
  }
}

public final class VoterMetrics {
  let decided = Gauge(label: "tally_voter_decided_seq")
  let streamed = Gauge(label: "tally_voter_streamed_seq")
  let votes = Counter(label: "tally_voter_votes_total")
  let quarantines = Counter(label: "tally_voter_quarantines_total")
  let repairs = Counter(label: "tally_voter_repairs_total")
  let noMajority = Counter(label: "tally_voter_no_majority_total")
  let halted = Gauge(label: "tally_voter_halted")
  let quarantined = Gauge(label: "tally_voter_quarantined_replicas")
  let commit = Metrics.Timer(label: "tally_voter_commit_seconds")
  let pending = Gauge(label: "tally_voter_pending_batches")
  let replicaIds: [String]
  let dissents: [Counter]
  var dissentTotals: [TotalTracker]
  let replicaQuarantined: [Gauge]
  let replicaApplied: [Gauge]
  let replicaLag: [Gauge]
  let alerts: [String: Counter]

  public init(replicaIds: [String]) {
    self.replicaIds = replicaIds
    dissents = replicaIds.map { Counter(label: "tally_voter_dissents_total", dimensions: [("replica", $0)]) }
    dissentTotals = replicaIds.map { _ in TotalTracker() }
    replicaQuarantined = replicaIds.map {
      Gauge(label: "tally_voter_replica_quarantined", dimensions: [("replica", $0)])
    }
    replicaApplied = replicaIds.map {
      Gauge(label: "tally_voter_replica_applied_seq", dimensions: [("replica", $0)])
    }
    replicaLag = replicaIds.map {
      Gauge(label: "tally_voter_replica_lag_events", dimensions: [("replica", $0)])
    }
    var a: [String: Counter] = [:]
    for kind in ["DISSENT", "NO_MAJORITY", "REJOINED"] {
      a[kind] = Counter(label: "tally_voter_alerts_total", dimensions: [("kind", kind)])
    }
    alerts = a
  }

  public func attach(to v: Voter) {
    v.hooks.voteReceived = { [unowned self] in votes.increment() }
    v.hooks.actionsPerformed = { [unowned self] actions, d in
      if let d { commit.record(d) }
      for a in actions {
        switch a {
        case .emit: break
        case .quarantine: quarantines.increment()
        case .repair: repairs.increment()
        case .alert(let alert):
          alerts[alert.kind.rawValue]?.increment()
          if alert.kind == .noMajority { noMajority.increment() }
        }
      }
    }
  }

  public func sample(_ v: Voter) {
    let core = v.core
    decided.record(core.watermark - 1)
    streamed.record(v.stream.next - 1)
    halted.record(core.halted == nil ? 0 : 1)
    quarantined.record(core.replicas.filter(\.quarantined).count)
    pending.record(core.pending.count)
    let lead = core.replicas.map(\.appliedSeq).max() ?? 0
    for (i, view) in core.replicas.enumerated() where i < replicaIds.count {
      dissentTotals[i].advance(to: view.dissents, dissents[i])
      replicaQuarantined[i].record(view.quarantined ? 1 : 0)
      replicaApplied[i].record(view.appliedSeq)
      replicaLag[i].record(max(0, lead - view.appliedSeq))
    }
  }
}

extension Replica {
  /// A graceful stop commits what was applied since the last checkpoint (a replica that
  /// logs no lines: a snapshot, within `ReplicaCore.stopSnapshotEventsMax`), so that a
  /// planned restart replays nothing. A kill skips this and is safe all the same: the
  /// journal gives the same batches again.
  public func commitOnShutdown() throws {
    try commitForStop()
  }
}
