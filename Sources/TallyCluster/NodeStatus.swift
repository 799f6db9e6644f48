// What each node answers to STATUS: typed, Codable, one JSON object with sorted keys.
// `cluster status`, reports, the chaos harness and the dashboard decode these types;
// nobody scrapes the text. The field names are the ones `cluster status --json`
// has always printed (docs/OPERATIONS.md); new fields are added, none renamed.
import Foundation

public enum NodeStatus {
  /// The JSON of a status value: keys sorted, no whitespace, slashes unescaped.
  public static func encode<S: Encodable>(_ status: S) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    guard let data = try? encoder.encode(status) else {
      preconditionFailure("a node status always encodes")
    }
    return String(decoding: data, as: UTF8.self)
  }

  /// A status decoded from a node's answer; nil when it is not one of `S`.
  public static func decode<S: Decodable>(_ type: S.Type, from text: String) -> S? {
    try? JSONDecoder().decode(type, from: Data(text.utf8))
  }
}

/// How long one recurring step of a node took, summed since the node started: the
/// parts of a batch's way from ingest to decision, for `cluster status --json` and
/// `cluster bench`'s latency parts (a mean over a run is the difference of two
/// readings, or one reading of a node started for the run). Wall-clock time of the
/// node's own loop; it never reaches state, outputs or digests.
public struct StageTime: Codable, Sendable, Equatable {
  public var count: Int64 = 0
  public var totalMicroseconds: Int64 = 0

  enum CodingKeys: String, CodingKey {
    case count
    case totalMicroseconds = "total_us"
  }

  public init(count: Int64 = 0, totalMicroseconds: Int64 = 0) {
    self.count = count
    self.totalMicroseconds = totalMicroseconds
  }

  public mutating func add(_ d: Duration) {
    let (seconds, attoseconds) = d.components
    count += 1
    totalMicroseconds += seconds * 1_000_000 + attoseconds / 1_000_000_000_000
  }

  /// The mean in milliseconds; nil before the first step.
  public var meanMilliseconds: Double? {
    count == 0 ? nil : Double(totalMicroseconds) / Double(count) / 1_000
  }
}

public struct SequencerStatus: Codable, Sendable, Equatable {
  public var role = "sequencer"
  public var lastSeq: Int64
  public var batches: Int64
  public var clientBatches: Int64
  public var refused: Int64
  public var ingest: String
  /// Fetches parked now, and answered early at `SequencerCore.parkedFetchesMax`.
  public var parkedFetches: Int64?
  public var parkedFetchesDropped: Int64?
  /// Milliseconds RocksDB has stopped or slowed the journal's writes since the sequencer
  /// started (its paced flushes fell behind); older statuses lack it.
  public var journalWriteStallMs: Int64?
  /// The journal's group commits (write and fsync, before the acks and the replicas'
  /// fetch answers); older statuses lack it.
  public var journalCommitTime: StageTime?
  /// Bytes of the journal's segment files (its batches; they are never deleted: the
  /// disk an operator plans for); older statuses lack it.
  public var journalLogBytes: Int64?

  enum CodingKeys: String, CodingKey {
    case role, batches, refused, ingest
    case lastSeq = "last_seq"
    case journalLogBytes = "journal_log_bytes"
    case clientBatches = "client_batches"
    case parkedFetches = "parked_fetches"
    case parkedFetchesDropped = "parked_fetches_dropped"
    case journalWriteStallMs = "journal_write_stall_ms"
    case journalCommitTime = "journal_commit_time"
  }

  public init(
    lastSeq: Int64, batches: Int64, clientBatches: Int64, refused: Int64, ingest: String,
    parkedFetches: Int64? = nil, parkedFetchesDropped: Int64? = nil, journalWriteStallMs: Int64? = nil,
    journalCommitTime: StageTime? = nil, journalLogBytes: Int64? = nil
  ) {
    self.journalCommitTime = journalCommitTime
    self.journalLogBytes = journalLogBytes
    self.lastSeq = lastSeq
    self.batches = batches
    self.clientBatches = clientBatches
    self.refused = refused
    self.ingest = ingest
    self.parkedFetches = parkedFetches
    self.parkedFetchesDropped = parkedFetchesDropped
    self.journalWriteStallMs = journalWriteStallMs
  }

  public var json: String { NodeStatus.encode(self) }
}

public struct ReplicaStatus: Codable, Sendable, Equatable {
  public var role = "replica"
  public var id: String
  public var kernel: String
  public var appliedSeq: Int64
  public var committedSeq: Int64
  /// The digest of the state at `digestSeq` (its last digest checkpoint or report), hex.
  public var committedStateDigest: String
  /// The seq of `committedStateDigest` (0: none stated yet); older statuses lack it.
  public var digestSeq: Int64?
  public var repairs: Int64
  /// Batches applied since the last checkpoint (their votes and effect records wait
  /// in memory for the next commit; at most `ReplicaCore.uncommittedBatchesMax`).
  public var uncommittedBatches: Int64?
  /// Batches in the effect and vote log (pruned behind the voter's position).
  public var loggedBatches: Int64?
  /// The journal batches applied (apply, effects and vote, the commit at a checkpoint);
  /// older statuses lack it.
  public var applyTime: StageTime?
  /// Journal batches applied from a split made ahead on another thread (a backlog's
  /// replies, `ReplicaCore.prepare`); older statuses lack it.
  public var batchesSplitAhead: Int64?

  enum CodingKeys: String, CodingKey {
    case role, id, kernel, repairs
    case batchesSplitAhead = "batches_split_ahead"
    case appliedSeq = "applied_seq"
    case committedSeq = "committed_seq"
    case committedStateDigest = "committed_state_digest"
    case digestSeq = "digest_seq"
    case uncommittedBatches = "uncommitted_batches"
    case loggedBatches = "logged_batches"
    case applyTime = "apply_time"
  }

  public init(
    id: String, kernel: String, appliedSeq: Int64, committedSeq: Int64, committedStateDigest: String,
    digestSeq: Int64? = nil, repairs: Int64, uncommittedBatches: Int64? = nil, loggedBatches: Int64? = nil,
    applyTime: StageTime? = nil, batchesSplitAhead: Int64? = nil
  ) {
    self.applyTime = applyTime
    self.batchesSplitAhead = batchesSplitAhead
    self.id = id
    self.kernel = kernel
    self.appliedSeq = appliedSeq
    self.committedSeq = committedSeq
    self.committedStateDigest = committedStateDigest
    self.digestSeq = digestSeq
    self.repairs = repairs
    self.uncommittedBatches = uncommittedBatches
    self.loggedBatches = loggedBatches
  }

  public var json: String { NodeStatus.encode(self) }
}

public struct VoterStatus: Codable, Sendable, Equatable {
  /// The voter's view of one replica.
  public struct Replica: Codable, Sendable, Equatable {
    public var id: String
    public var kernel: String
    public var appliedSeq: Int64
    public var agreed: Int64
    public var dissents: Int64
    public var quarantined: Bool
    public var repairs: Int64

    enum CodingKeys: String, CodingKey {
      case id, kernel, agreed, dissents, quarantined, repairs
      case appliedSeq = "applied_seq"
    }

    public init(
      id: String, kernel: String, appliedSeq: Int64, agreed: Int64, dissents: Int64, quarantined: Bool,
      repairs: Int64
    ) {
      self.id = id
      self.kernel = kernel
      self.appliedSeq = appliedSeq
      self.agreed = agreed
      self.dissents = dissents
      self.quarantined = quarantined
      self.repairs = repairs
    }
  }

  public var role = "voter"
  public var watermark: Int64
  public var decidedThrough: Int64
  public var quorum: Int64
  public var alerts: Int64
  /// The NO_MAJORITY detail when emission stopped; null otherwise.
  public var halted: String?
  public var lastStateDigest: String
  public var stream: String
  public var streamReplay: String
  public var streamedThrough: Int64
  public var replicas: [Replica]
  /// Batches with votes waiting for a decision (at most `VoterCore.pendingBatchesMax`).
  public var pendingBatches: Int64?
  /// The commits that store decisions (fsync, before DECIDED is published); older
  /// statuses lack it.
  public var decisionCommitTime: StageTime?

  enum CodingKeys: String, CodingKey {
    case role, watermark, quorum, alerts, halted, stream, replicas
    case decidedThrough = "decided_through"
    case lastStateDigest = "last_state_digest"
    case streamReplay = "stream_replay"
    case streamedThrough = "streamed_through"
    case pendingBatches = "pending_batches"
    case decisionCommitTime = "decision_commit_time"
  }

  public init(
    watermark: Int64, quorum: Int64, alerts: Int64, halted: String?, lastStateDigest: String, stream: String,
    streamReplay: String, streamedThrough: Int64, replicas: [Replica], pendingBatches: Int64? = nil,
    decisionCommitTime: StageTime? = nil
  ) {
    self.decisionCommitTime = decisionCommitTime
    self.watermark = watermark
    decidedThrough = watermark - 1
    self.quorum = quorum
    self.alerts = alerts
    self.halted = halted
    self.lastStateDigest = lastStateDigest
    self.stream = stream
    self.streamReplay = streamReplay
    self.streamedThrough = streamedThrough
    self.replicas = replicas
    self.pendingBatches = pendingBatches
  }

  /// `halted` is written as null when the voter is not halted (the field is always there).
  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(role, forKey: .role)
    try c.encode(watermark, forKey: .watermark)
    try c.encode(decidedThrough, forKey: .decidedThrough)
    try c.encode(quorum, forKey: .quorum)
    try c.encode(alerts, forKey: .alerts)
    try c.encode(halted, forKey: .halted)
    try c.encode(lastStateDigest, forKey: .lastStateDigest)
    try c.encode(stream, forKey: .stream)
    try c.encode(streamReplay, forKey: .streamReplay)
    try c.encode(streamedThrough, forKey: .streamedThrough)
    try c.encode(replicas, forKey: .replicas)
    try c.encodeIfPresent(pendingBatches, forKey: .pendingBatches)
    try c.encodeIfPresent(decisionCommitTime, forKey: .decisionCommitTime)
  }

  public var json: String { NodeStatus.encode(self) }
}
