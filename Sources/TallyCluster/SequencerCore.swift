// The sequencer's decisions, as a state machine without I/O (the SwiftNIO pattern,
// like VoterCore): inputs and the current time in, actions out. It decides seq
// ranges, dedupes client retries by (client, batch number), groups client batches
// into one journal write, serves journal batches to replicas and parks fetches that
// ask beyond the journal. It reads its journal through the `StateStore` port, never
// writes it: writing is an action the shell performs (RocksDB and fsync in
// `Sequencer`, an in-memory store in the simulator), and nothing is acked or served
// before the shell reports the write done (`journalWritten`).
//
// Key layout (docs/STATE-LAYOUT.md): `0x10` + first seq BE → the batch;
// `0x11` + client + `0x00` + batch number BE → seq range; `0x00last_seq`. On disk the
// batches are entries of a segment log and the rest is in RocksDB (JournalStore.swift).
import KernelAPI
import TallyEngine

public struct SequencerCore {
  static let journalPrefix: UInt8 = 0x10
  static let dedupePrefix: UInt8 = 0x11
  static let lastSeqKey: [UInt8] = [0x00] + Array("last_seq".utf8)
  /// Client messages journaled in one fsync (group commit).
  public static let groupCommitMessagesMax = 256
  /// How long a parked fetch waits before an empty answer (NONE).
  public static let parkMs: Int64 = 1_000
  /// Recent journal batches kept in memory, so that live replicas are served without a read.
  public static let recentBatchesMax = 256
  /// Fetches parked at once. A replica has one fetch outstanding (a duplicated or
  /// retried one at most a few), so more means a misbehaving peer: the oldest is
  /// answered NONE at once (it asks again), and counted.
  public static let parkedFetchesMax = 1_024
  /// Client batches whose seq ranges are kept in memory (the most recent ones: a
  /// client retries its latest batches). Every range is also in the journal store,
  /// which answers a retry of an older batch: exactly once needs all of them, memory
  /// needs only the recent ones.
  public static let dedupeCachedMax = 65_536

  /// A client batch that passed `Ingest.parse`, with who sent it.
  public struct ClientBatch: Sendable, Equatable {
    public var peer: [UInt8]
    public var batch: IngestBatch
    /// The batch number as the client wrote it (echoed in the ack).
    public var numberFrame: [UInt8]
    public init(peer: [UInt8], batch: IngestBatch, numberFrame: [UInt8]) {
      self.peer = peer
      self.batch = batch
      self.numberFrame = numberFrame
    }
  }

  public enum Action {
    /// Write this batch atomically and durably, then call `journalWritten`.
    case writeJournal(StoreBatch, batches: Int, events: Int)
    /// Acknowledge a client batch with its seq range (0...0 for a batch of no events).
    case ack(peer: [UInt8], numberFrame: [UInt8], first: Int64, last: Int64)
    /// Journal batches (encoded `JournalBatch`es) starting at the seq asked for.
    case batches(peer: [UInt8], [[UInt8]])
    /// Nothing new before the park time ran out: ask again.
    case none(peer: [UInt8], lastSeq: Int64)
    /// The seq asked for is not where a journal batch starts.
    case notABoundary(peer: [UInt8], from: Int64)
  }

  struct Parked {
    var peer: [UInt8]
    var from: Int64
    var sinceMs: Int64
  }

  struct PendingWrite {
    var accepted: [ClientBatch]
    var ranges: [(first: Int64, last: Int64)]
    var fresh: [(key: [UInt8], range: (first: Int64, last: Int64))]
    var newBatches: [(first: Int64, encoded: [UInt8])]
    var lastSeq: Int64
  }

  let store: any StateStore
  /// Journal batches in one fetch answer, at most (`fetch_batches_max`).
  public let fetchBatchesMax: Int
  public private(set) var lastSeq: Int64
  public private(set) var batchCount = 0
  /// (client, batch number) → seq range of the most recent client batches (at most
  /// `dedupeCachedMax`); older ones are read back from the store.
  var dedupe: [[UInt8]: (first: Int64, last: Int64)] = [:]
  /// `dedupe`'s keys in insertion order (the oldest is forgotten first).
  var dedupeOrder: RetentionQueue<[UInt8]>
  public var dedupeCachedLimit: Int { dedupeOrder.limit }
  /// Retries answered from the store (their batch had left the memory cache).
  public private(set) var dedupeStoreHits = 0
  var recent: [Int64: [UInt8]] = [:]
  var recentOrder = RetentionQueue<Int64>(limit: SequencerCore.recentBatchesMax)
  var parked: [Parked] = []
  var pending: PendingWrite? = nil
  /// Parked fetches answered early because `parkedFetchesMax` was reached.
  public private(set) var parkedDropped = 0

  /// Client batches in the dedupe cache (at most `dedupeCachedLimit`).
  public var clientBatchCount: Int { dedupe.count }
  public var parkedCount: Int { parked.count }
  public var recentCount: Int { recentOrder.count }
  public var isWriting: Bool { pending != nil }

  /// Opens the journal in `store` (empty: a new journal).
  /// Opens the journal in `store` (empty: a new journal). The dedupe cache starts
  /// empty: retries after a restart are answered from the store.
  public init(store: any StateStore, fetchBatchesMax: Int, dedupeCachedMax: Int = Self.dedupeCachedMax) throws
  {
    precondition(fetchBatchesMax >= 1 && dedupeCachedMax >= 1)
    self.store = store
    self.fetchBatchesMax = fetchBatchesMax
    dedupeOrder = RetentionQueue(limit: dedupeCachedMax)
    lastSeq = (try store.value(for: Self.lastSeqKey)).flatMap { Int64(leBytes: $0) } ?? 0
    if let counting = store as? JournalBatchCounting {
      // The journal store knows its entries: no read of every batch at the open.
      batchCount = counting.journalBatchCount
    } else {
      var count = 0
      try store.scan(prefix: [Self.journalPrefix]) { _, _ in
        count += 1
        return true
      }
      batchCount = count
    }
  }

  static func journalKey(_ first: Int64) -> [UInt8] { [journalPrefix] + first.beBytes }

  static func dedupeKey(_ client: [UInt8], _ number: Int64) -> [UInt8] { client + [0] + number.beBytes }

  /// The seq range of a journaled client batch: from memory, else from the store.
  mutating func journaledRange(_ key: [UInt8]) throws -> (first: Int64, last: Int64)? {
    if let known = dedupe[key] { return known }
    guard let value = try store.value(for: [Self.dedupePrefix] + key) else { return nil }
    guard value.count == 16, let f = Int64(leBytes: Array(value[0..<8])),
      let l = Int64(leBytes: Array(value[8..<16]))
    else { throw StoreError("sequencer journal: bad dedupe entry") }
    dedupeStoreHits += 1
    return (f, l)
  }

  /// Remembers a journaled client batch, forgetting the oldest beyond the limit.
  mutating func cache(_ key: [UInt8], _ range: (first: Int64, last: Int64)) {
    if dedupe.updateValue(range, forKey: key) != nil { return }
    if let oldest = dedupeOrder.append(key) { dedupe[oldest] = nil }
    precondition(dedupe.count <= dedupeCachedLimit, "sequencer: dedupe cache over its limit")
  }

  /// Client batches that arrived together (at most `groupCommitMessagesMax`): one
  /// journal write for all new ones. Retries of journaled batches are acked with
  /// their original range. Call `journalWritten` after performing `.writeJournal`.
  public mutating func ingest(_ batches: [ClientBatch]) throws -> [Action] {
    precondition(pending == nil, "sequencer: ingest while a journal write is in flight")
    precondition(batches.count <= Self.groupCommitMessagesMax, "sequencer: group larger than the limit")
    var write = StoreBatch()
    var ranges: [(first: Int64, last: Int64)] = []
    var fresh: [(key: [UInt8], range: (first: Int64, last: Int64))] = []
    var newBatches: [(first: Int64, encoded: [UInt8])] = []
    var next = lastSeq
    for b in batches {
      let key = Self.dedupeKey(b.batch.client, b.batch.batchNumber)
      if let known = try fresh.first(where: { $0.key == key })?.range ?? journaledRange(key) {
        ranges.append(known)
        continue
      }
      var range: (first: Int64, last: Int64) = (0, 0)
      if b.batch.lineCount > 0 {
        let first = next + 1
        next += Int64(b.batch.lineCount)
        range = (first, next)
        let encoded = JournalBatch.encoded(first: first, last: next, encodedLines: b.batch.encodedLines)
        write.put(Self.journalKey(first), encoded)
        newBatches.append((first, encoded))
      }
      fresh.append((key, range))
      write.put([Self.dedupePrefix] + key, range.first.leBytes + range.last.leBytes)
      ranges.append(range)
    }
    let p = PendingWrite(
      accepted: batches, ranges: ranges, fresh: fresh, newBatches: newBatches, lastSeq: next)
    if write.isEmpty {
      // Only retries: nothing to write, ack at once.
      return acks(p)
    }
    write.put(Self.lastSeqKey, next.leBytes)
    pending = p
    return [.writeJournal(write, batches: newBatches.count, events: Int(next - lastSeq))]
  }

  func acks(_ p: PendingWrite) -> [Action] {
    p.accepted.indices.map {
      .ack(
        peer: p.accepted[$0].peer, numberFrame: p.accepted[$0].numberFrame, first: p.ranges[$0].first,
        last: p.ranges[$0].last)
    }
  }

  /// The shell performed the last `.writeJournal` (it is durable): ack the clients
  /// and answer the parked fetches that can now be served.
  public mutating func journalWritten(nowMs: Int64) throws -> [Action] {
    guard let p = pending else { preconditionFailure("sequencer: journal written without a write") }
    pending = nil
    lastSeq = p.lastSeq
    for f in p.fresh { cache(f.key, f.range) }
    for (first, encoded) in p.newBatches {
      batchCount += 1
      recent[first] = encoded
      if let oldest = recentOrder.append(first) { recent[oldest] = nil }
    }
    return acks(p) + (try tick(nowMs: nowMs))
  }

  /// A replica asks for the journal batches from `from`: answered now, or parked
  /// until the journal reaches `from` or `parkMs` passes.
  public mutating func fetch(peer: [UInt8], from: Int64, nowMs: Int64) throws -> [Action] {
    precondition(from >= 1, "the shell refuses fetches from seq < 1")
    if from <= lastSeq { return [try answer(peer: peer, from: from)] }
    var actions: [Action] = []
    if parked.count >= Self.parkedFetchesMax {
      let oldest = parked.removeFirst()
      parkedDropped += 1
      actions.append(.none(peer: oldest.peer, lastSeq: lastSeq))
    }
    parked.append(Parked(peer: peer, from: from, sinceMs: nowMs))
    return actions
  }

  /// Time passes: parked fetches that can be served or whose time is up are answered.
  public mutating func tick(nowMs: Int64) throws -> [Action] {
    guard !parked.isEmpty else { return [] }
    var actions: [Action] = []
    var still: [Parked] = []
    for p in parked {
      if p.from <= lastSeq {
        actions.append(try answer(peer: p.peer, from: p.from))
      } else if nowMs - p.sinceMs > Self.parkMs {
        actions.append(.none(peer: p.peer, lastSeq: lastSeq))
      } else {
        still.append(p)
      }
    }
    parked = still
    return actions
  }

  func answer(peer: [UInt8], from: Int64) throws -> Action {
    guard let batches = try batches(from: from, max: fetchBatchesMax) else {
      return .notABoundary(peer: peer, from: from)
    }
    return .batches(peer: peer, batches)
  }

  /// Journal batches starting exactly at `from`, as many as fit in one reply; nil
  /// when no journal batch starts at `from`.
  public func batches(from: Int64, max: Int) throws -> [[UInt8]]? {
    var out: [[UInt8]] = []
    var next = from
    var bytes = 0
    while next <= lastSeq && out.count < max && bytes < WireLimits.fetchReplyBytesMax {
      guard let encoded = try recent[next] ?? store.value(for: Self.journalKey(next)) else {
        if out.isEmpty { return nil }  // not a batch boundary
        break
      }
      guard let last = encoded.withUnsafeBytes({ JournalBatch.lastSeq(ofEncoded: $0) }) else {
        throw StoreError("sequencer journal: the batch at seq \(next) is shorter than its header")
      }
      out.append(encoded)
      bytes += encoded.count
      next = last + 1
    }
    return out
  }
}

extension Int64 {
  /// Big-endian bytes: keys sort by number.
  var beBytes: [UInt8] {
    (0..<8).map { UInt8(truncatingIfNeeded: UInt64(bitPattern: self) >> UInt64(56 - 8 * $0)) }
  }
}
