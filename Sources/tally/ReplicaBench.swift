import ArgumentParser
import Foundation
import KernelAPI
import TallyCluster
import TallyEngine

/// One replica's work without the network: what bounds a cluster on a machine where
/// every replica applies every event. The real `ReplicaCore` over the real durable
/// engine and RocksDB folder a replica opens, fed journal batches from a file, with the
/// voter's PRUNE after every batch (a voter keeping up).
struct ClusterBenchReplica: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench-replica",
    abstract: "One replica's apply, vote and commit work on an event file, without the network.",
    discussion: helpText(
      """
      Opens a fresh replica state folder (RocksDB, fsync per commit, room for
      --reserve-events events, as `tally replica` does), cuts the events into journal
      batches of --batch-lines, and hands them to the replica core --batches-per-reply
      at a time, as the sequencer's fetch replies would (a live replica's replies hold
      one; a catching-up one's up to fetch_batches_max, the batches after the first
      split ahead on another thread); after each reply the voter's PRUNE position is
      set to its last seq. Prints events per second, the
      CPU time, the commits' and the digest snapshots' latencies. A cluster of N
      replicas on C cores cannot vote faster than about C / N times this rate.
      """))
  @Option(name: .long, help: "Reference folder.")
  var reference: String
  @Option(name: .long, help: "Event file (e.g. from tally generate).")
  var events: String
  @Option(name: .long, help: "Kernel version (v1, v2).")
  var kernel = "v1"
  @Option(name: .long, help: "Lines per journal batch.")
  var batchLines = 1_000
  @Option(name: .long, help: "Replica commits when a batch crosses a multiple of this (checkpoint_events).")
  var checkpointEvents = 10_000
  @Option(name: .long, help: "Replica snapshots and states its digest at multiples of this (digest_events).")
  var digestEvents = 1_000_000
  @Option(
    name: .long,
    help:
      "Events the replica reserves room for when it opens its state ([limits] reserve_events; the default is a cluster's)."
  )
  var reserveEvents = ClusterConfig.reserveEventsDefault
  @Option(name: .long, help: "State folder (a fresh temporary one by default; deleted after).")
  var data: String?
  @Option(
    name: .long,
    help:
      "Also print the N slowest batches (seqs, time, effect record bytes, their other events by type): where a day's boundary goes."
  )
  var slowest = 0
  @Option(
    name: .long,
    help:
      "Journal batches in each reply handed to the replica core (1: live; up to [limits] fetch_batches_max: a catch-up)."
  )
  var batchesPerReply = 1
  @Option(
    name: .customLong("heap-reserve-mib"),
    help:
      "Heap made resident and freed before the batches, as a node does at start ([limits] heap_reserve_mib; 0: none)."
  )
  var heapReserveMiB = ClusterConfig.heapReserveMiBDefault

  func run() throws {
    guard batchLines >= 1, checkpointEvents >= 1, digestEvents >= 1, slowest >= 0, reserveEvents >= 0,
      (1...1_024).contains(batchesPerReply), ClusterConfig.heapReserveMiBRange.contains(heapReserveMiB)
    else {
      fail(
        "--batch-lines, --checkpoint-events and --digest-events must be at least 1, --slowest and --reserve-events at least 0, --batches-per-reply 1...1024, --heap-reserve-mib 0...1048576 (as [limits] heap_reserve_mib)",
        code: 64)
    }
    let reference: ReferenceData
    do { reference = try FileIO.loadReference(self.reference) } catch { fail("\(error)", code: 2) }
    let file: [UInt8]
    do { file = try FileIO.read(events) } catch { fail("\(error)", code: 2) }
    // The event lines the sequencer would journal (comments and blank lines skipped).
    let lines = EmbeddedRun.lines(of: [file])
    let batches = stride(from: 0, to: lines.count, by: batchLines).map { start in
      let end = min(start + batchLines, lines.count)
      return JournalBatch(
        first: Int64(start + 1), last: Int64(end), lines: lines[start..<end].map { Array($0) })
    }
    let folder = data ?? NSTemporaryDirectory() + "tally-bench-replica-\(getpid())"
    defer { if data == nil { try? FileManager.default.removeItem(atPath: folder) } }
    let cpu0 = processCPUSeconds()
    let clock = ContinuousClock()
    let t0 = clock.now
    // Opened as `tally replica` opens its folder, room reserved included.
    let (store, applier) = try Replica.openState(
      dataDir: folder, reference: reference, kernel: kernel, reserveEvents: reserveEvents)
    defer { store.close() }
    var settings = ReplicaCore<DurableBatchApplier>.Settings(
      id: "bench", kernel: kernel, checkpointEvents: Int64(checkpointEvents), heartbeatMs: 500)
    settings.digestEvents = Int64(digestEvents)
    var core = try ReplicaCore(settings: settings, applier: applier, store: store)
    // As `tally replica` does once its state is open: without it, the batches' buffers
    // grew the heap while V1's page warmer held the address space's lock, and the
    // batches of those ~0.1 s each stalled 5-16 ms (a node's batches, after its reserve,
    // do not: this bench stands for one).
    let heap = NodeHeap.reserve(bytes: heapReserveMiB << 20)
    let opened = clock.now
    var digests = 0
    var batchTimes: [(seconds: Double, index: Int, effectBytes: Int)] = []
    batchTimes.reserveCapacity(slowest > 0 ? batches.count : 0)
    for start in stride(from: 0, to: batches.count, by: batchesPerReply) {
      let reply = batches[start..<min(start + batchesPerReply, batches.count)]
      let started = clock.now
      for case .vote(let v) in try core.receive(Array(reply)) where !v.stateDigest.isEmpty { digests += 1 }
      core.prune(through: reply.last!.last)
      if slowest > 0 {
        // A reply's time shared evenly by its batches (one a reply by default).
        let seconds = (clock.now - started).seconds / Double(reply.count)
        for (index, batch) in zip(reply.indices, reply) {
          batchTimes.append(
            (seconds, index, try core.effects(first: batch.first, last: batch.last)?.count ?? 0))
        }
      }
    }
    try core.commitNow()
    let done = clock.now
    let cpu = processCPUSeconds() - cpu0
    let n = Double(lines.count)
    let applySeconds = (done - opened).seconds
    let commits = applier.durable.commitNanos.sorted()
    func ms(_ sorted: [Int64], _ p: Double) -> String {
      sorted.isEmpty
        ? "n/a"
        : String(format: "%.1f", Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1e6)
    }
    let snapshots = applier.durable.snapshotNanos
    print(
      "replica \(kernel): \(Int(n)) events in \(batches.count) batches of \(batchLines)"
        + (batchesPerReply > 1
          ? ", \(batchesPerReply) a reply (\(core.applier.batchesSplitAhead) split ahead)" : "")
        + ": open \(String(format: "%.2f", (opened - t0).seconds)) s "
        + "(room for \(reserveEvents) events; \(heap.text)), "
        + "apply+vote+commit \(String(format: "%.2f", applySeconds)) s = \(Int(n / applySeconds)) events/s "
        + "(\(String(format: "%.2f", applySeconds / n * 1e6)) µs an event)")
    print(
      "  \(commits.count) commits (every \(checkpointEvents) seqs): p50 \(ms(commits, 0.5)) ms, p99 \(ms(commits, 0.99)) ms; "
        + "\(digests) digest votes, snapshots \(snapshots.map { String(format: "%.2f s", Double($0) / 1e9) }.joined(separator: ", ")); "
        + "process CPU \(String(format: "%.2f", cpu)) s (user + system, open included)")
    // The slowest batches, slowest first (ties by position), with what they held besides TRADEs.
    for (seconds, index, effectBytes) in batchTimes.sorted(by: {
      ($0.seconds, $1.index) > ($1.seconds, $0.index)
    })
    .prefix(slowest) {
      let batch = batches[index]
      // The other events by record type, in the order they first come, counted.
      var kinds: [(kind: String, count: Int)] = []
      for i in 0..<batch.lineCount where !batch.line(i).starts(with: "TRADE,".utf8) {
        let kind = String(
          decoding: batch.line(i).prefix { $0 != UInt8(ascii: ",") }.prefix(16), as: UTF8.self)
        if let k = kinds.firstIndex(where: { $0.kind == kind }) {
          kinds[k].count += 1
        } else {
          kinds.append((kind, 1))
        }
      }
      let shown = kinds.map { $0.count == 1 ? $0.kind : "\($0.kind) x\($0.count)" }.joined(separator: ", ")
      print(
        "  batch \(batch.first)...\(batch.last): \(String(format: "%.1f", seconds * 1e3)) ms, \(effectBytes) bytes of effect records"
          + (kinds.isEmpty ? "" : "; besides TRADEs: \(shown)"))
    }
  }
}

/// This process's CPU time, user and system, in seconds.
func processCPUSeconds() -> Double {
  var usage = rusage()
  getrusage(RUSAGE_SELF.rawValue, &usage)
  return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
    + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}
