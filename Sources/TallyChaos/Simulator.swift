// A deterministic simulator (the TigerBeetle VOPR idea): the whole cluster in one
// process, one thread, on a simulated clock and a simulated network that loses,
// delays, reorders and duplicates messages, with crashes, restarts and wiped disks,
// all drawn from one seed. The parts that decide are the real ones: the sequencer is
// the real `SequencerCore`, each replica the real `ReplicaCore` over the real
// `DurableEngine` (through `DurableBatchApplier`), the voter the real `VoterCore`.
// Each plays its disk with an in-memory `StateStore`: a crash drops the core and
// keeps the store, so a replica loses what it applied since its last checkpoint,
// replays it from the journal on restart (the real verified restore), and is judged
// again by its state digest only at checkpoints, as a real one. This file is only
// the network, the clock, the faults, the client (a model of Submitter) and what
// the services' loops do with the cores' actions.
//
// Nothing that decides behaviour iterates a Dictionary or a Set; the event queue
// orders by (time, insertion number); a failing seed replays exactly.
import Foundation
import KernelAPI
import MarketGenerator
import TallyCluster
import TallyEngine
import TallyFormat

public struct SimOptions: Sendable {
  public var seed: UInt64
  /// Simulated milliseconds during which faults are injected; then the network heals.
  public var faultWindowMs: Int64 = 20_000
  /// After the fault window, how long the cluster gets to finish before it counts as stuck.
  public var settleMs: Int64 = 120_000
  public var replicaCount = 3
  /// Keep the trace (one line per step) in memory, for printing a failing seed.
  public var keepTrace = false

  public init(seed: UInt64) { self.seed = seed }
}

public struct SimResult: Sendable {
  public var seed: UInt64
  public var anomalies: [Anomaly]
  /// Findings about known gaps of the cluster (reported, failing only with --strict).
  public var knownIssues: [Anomaly]
  public var notes: [String]
  public var traceDigest: String
  public var trace: [String]
  public var events: Int64
  public var steps: Int
  public var simulatedMs: Int64
  public var faults: [(kind: String, count: Int)]
  public var parameters: String
}

/// Where a message goes or comes from.
enum SimNode: Equatable {
  case client, sequencer, voter
  case replica(Int)

  var name: String {
    switch self {
    case .client: "client"
    case .sequencer: "sequencer"
    case .voter: "voter"
    case .replica(let i): "r\(i + 1)"
    }
  }
}

enum SimMessage {
  case ingest(batch: Int, lines: [[UInt8]])
  case ack(batch: Int, first: Int64, last: Int64)
  case fetch(replica: Int, from: Int64)
  case prune(through: Int64)
  case batches([JournalBatch])
  case none
  case vote(Vote)
  case heartbeat(replica: Int, applied: Int64)
  case resend(from: Int64)
  case repair

  var name: String {
    switch self {
    case .ingest(let b, let l): "INGEST b\(b) n\(l.count)"
    case .ack(let b, let f, let l): "ACK b\(b) \(f)-\(l)"
    case .fetch(let r, let f): "FETCH r\(r + 1) \(f)"
    case .prune(let t): "PRUNE \(t)"
    case .batches(let bs): "BATCHES \(bs.first?.first ?? 0)-\(bs.last?.last ?? 0)"
    case .none: "NONE"
    case .vote(let v): "VOTE \(v.replica) \(v.first)-\(v.last) \(Array(v.stateDigest.prefix(4)).hexString)"
    case .heartbeat(let r, let a): "HB r\(r + 1) \(a)"
    case .resend(let f): "RESEND \(f)"
    case .repair: "REPAIR"
    }
  }
}

enum SimEvent {
  case deliver(to: SimNode, incarnation: Int, message: SimMessage)
  case tick(SimNode, incarnation: Int)
  case restart(SimNode)
  case fault
}

/// A binary min-heap on (time, order): the same order in every process.
struct EventQueue {
  var heap: [(time: Int64, order: Int64, event: SimEvent)] = []
  var counter: Int64 = 0

  var isEmpty: Bool { heap.isEmpty }

  mutating func push(_ time: Int64, _ event: SimEvent) {
    counter += 1
    heap.append((time, counter, event))
    var i = heap.count - 1
    while i > 0 {
      let p = (i - 1) / 2
      if less(i, p) {
        heap.swapAt(i, p)
        i = p
      } else {
        break
      }
    }
  }

  func less(_ a: Int, _ b: Int) -> Bool {
    heap[a].time < heap[b].time || (heap[a].time == heap[b].time && heap[a].order < heap[b].order)
  }

  mutating func pop() -> (time: Int64, order: Int64, event: SimEvent)? {
    guard !heap.isEmpty else { return nil }
    heap.swapAt(0, heap.count - 1)
    let top = heap.removeLast()
    var i = 0
    while true {
      let l = 2 * i + 1
      let r = l + 1
      var m = i
      if l < heap.count && less(l, m) { m = l }
      if r < heap.count && less(r, m) { m = r }
      if m == i { break }
      heap.swapAt(i, m)
      i = m
    }
    return top
  }
}

/// A market small enough to replay many times, generated from the seed.
struct SimMarket {
  var reference: ReferenceData
  var lines: [[UInt8]]

  static func make(seed: UInt64, rng: inout SplitMix64) throws -> SimMarket {
    var options = MarketOptions(
      seed: seed, days: rng.int(2...3), tradesPerDay: rng.int(30...120), accounts: rng.int(12...40),
      securities: rng.int(2...6), participants: rng.int(2...4))
    options.badLinesPerMillion = 20_000
    options.cancelsPerMillion = 20_000
    let dir = NSTemporaryDirectory() + "tally-sim-\(ProcessInfo.processInfo.processIdentifier)-\(seed)"
    defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = try MarketGenerator.generate(options, into: dir)
    let reference = try FileIO.loadReference(dir + "/reference")
    let bytes = try FileIO.read(dir + "/events.txt")
    var lines: [[UInt8]] = []
    for (_, line) in LineReader(bytes) where !EventParser.isSkipped(line) { lines.append(Array(line)) }
    return SimMarket(reference: reference, lines: lines)
  }
}

public final class Simulation {
  // Timings of the real services (Replica.fetchRetryMs, Sequencer.parkMs, ...).
  static let tickMs: Int64 = 50
  static let fetchRetryMs: Int64 = 3_000
  static let parkMs: Int64 = 1_000
  static let heartbeatMs: Int64 = 500
  static let voterResendMs: Int64 = 1_000
  static let ackTimeoutMs: Int64 = 2_000
  static let fetchBatchesMax = 4
  static let repairsMax = 3
  /// Small, so that the simulation prunes replicas' logs (the real one is 100,000).
  static let logRetainedSeqs: Int64 = 30
  static let clientId = Array("sim".utf8)

  let options: SimOptions
  var rng: SplitMix64
  var net: SplitMix64
  var queue = EventQueue()
  var now: Int64 = 0
  var steps = 0
  var trace = SHA256Stream()
  var traceLines: [String] = []
  var faultCounts: [(kind: String, count: Int)] = []

  // Network and fault parameters, drawn from the seed.
  var lossPerMillion = 0
  var duplicatePerMillion = 0
  var delayMaxMs: Int64 = 5
  var longDelayPerMillion = 0
  var faultEveryMs: ClosedRange<Int64> = 200...2_000
  var crashMidBatchPerMillion = 0
  var voterCrashBeforeStorePerMillion = 0
  var sequencerCrashBeforeAckPerMillion = 0
  var checkpointEvents: Int64 = 1
  var healed = false

  // Nodes.
  var alive: [Bool]  // index: 0 client, 1 sequencer, 2 voter, 3+ replicas
  var incarnation: [Int]

  // The market and the client.
  let market: SimMarket
  var clientBatches: [[[UInt8]]] = []
  var acks: [(first: Int64, last: Int64)?] = []
  var sentAt: [Int64?] = []
  /// Acked in this client incarnation (a restarted client sends every batch again).
  var acked: [Bool] = []
  var windowBatches = 1
  var ackAnomalies: [Anomaly] = []

  // The sequencer: the real core; its store is its disk.
  var sequencerStore = SimDisk()
  var sequencer: SequencerCore?
  /// The journal's last seq as of the last write (what the checker compares with).
  var lastSeq: Int64 = 0

  // The replicas: the real core over the real engine; the store is the disk.
  struct SimReplica {
    var id: String
    var kernel: String
    var flip: Bool
    var store: SimDisk
    var core: ReplicaCore<DurableBatchApplier>?
  }
  var replicas: [SimReplica] = []

  // The voter (decided batches + watermark are its disk).
  var core: VoterCore?
  var voterDecided: [DecidedBatch] = []
  var voterWatermark: Int64 = 1
  var lastResend: Int64 = 0
  /// PRUNE positions sent, per replica, this voter incarnation.
  var prunedSent: [Int64] = []
  var emitted: [ObservedBatch] = []
  var alerts: [ObservedAlert] = []
  var byzantine: [(id: String, kernel: String, flipsDigest: Bool)] = []
  /// Byzantine votes the voter held when it decided their batch, this voter incarnation.
  var byzantinePending: [Int64: Vote] = [:]
  /// Byzantine replicas the voter actually compared with a decision and found different
  /// (the network is ours: this is what was delivered, not what the voter claims).
  var byzantineCompared: [String] = []

  public init(_ options: SimOptions) throws {
    self.options = options
    var root = SplitMix64(seed: options.seed)
    var marketRng = root.fork()
    rng = root.fork()
    net = root.fork()
    market = try SimMarket.make(seed: options.seed, rng: &marketRng)
    alive = [Bool](repeating: true, count: 3 + options.replicaCount)
    incarnation = [Int](repeating: 0, count: 3 + options.replicaCount)

    lossPerMillion = rng.pick([0, 0, 10_000, 50_000, 150_000])
    duplicatePerMillion = rng.pick([0, 10_000, 50_000])
    delayMaxMs = Int64(rng.pick([1, 5, 20, 100]))
    longDelayPerMillion = rng.pick([0, 5_000, 30_000])
    faultEveryMs = rng.pick([150...800, 300...2_000, 1_000...5_000])
    crashMidBatchPerMillion = rng.pick([0, 2_000, 20_000])
    voterCrashBeforeStorePerMillion = rng.pick([0, 5_000, 30_000])
    windowBatches = rng.int(1...4)
    sequencerCrashBeforeAckPerMillion = rng.pick([0, 5_000, 30_000])
    checkpointEvents = Int64(rng.pick([1, 5, 12, 25]))

    // Client batches of random sizes (the journal batches follow them).
    var i = 0
    while i < market.lines.count {
      let size = min(market.lines.count - i, rng.pick([1, 3, 10, 25, 60]))
      clientBatches.append(Array(market.lines[i..<(i + size)]))
      i += size
    }
    acks = [(first: Int64, last: Int64)?](repeating: nil, count: clientBatches.count)
    sentAt = [Int64?](repeating: nil, count: clientBatches.count)
    acked = [Bool](repeating: false, count: clientBatches.count)

    // Replicas: kernels v1, v2, v1, ...; maybe one byzantine.
    let byzantineIndex = rng.chance(perMillion: 500_000) ? rng.int(0...(options.replicaCount - 1)) : -1
    let byzantineFlips = rng.chance(perMillion: 500_000)
    for r in 0..<options.replicaCount {
      var kernel = r % 2 == 0 ? "v1" : "v2"
      var flip = false
      if r == byzantineIndex {
        if byzantineFlips { flip = true } else { kernel = "v1-faulty" }
        byzantine.append(("r\(r + 1)", kernel, flip))
      }
      let store = SimDisk()
      replicas.append(SimReplica(id: "r\(r + 1)", kernel: kernel, flip: flip, store: store, core: nil))
      try openReplica(r)
    }
    sequencer = try SequencerCore(store: sequencerStore, fetchBatchesMax: Self.fetchBatchesMax)
    core = makeVoterCore()
    for n in 0..<(3 + options.replicaCount) { queue.push(Int64(n), .tick(node(n), incarnation: 0)) }
    queue.push(rng.int64(faultEveryMs), .fault)
    log("start seed \(options.seed): \(parameters)")
    voterStarted()
  }

  var parameters: String {
    "events \(market.lines.count) in \(clientBatches.count) batches, window \(windowBatches), loss \(lossPerMillion / 10_000)%, dup \(duplicatePerMillion / 10_000)%, delay ≤\(delayMaxMs) ms, long delays \(longDelayPerMillion / 10_000)%, faults every \(faultEveryMs) ms, mid-batch crash \(crashMidBatchPerMillion / 10_000)%, voter crash before store \(voterCrashBeforeStorePerMillion / 10_000)%, sequencer crash before ack \(sequencerCrashBeforeAckPerMillion / 10_000)%, checkpoint every \(checkpointEvents), byzantine \(byzantine.map { "\($0.id) \($0.flipsDigest ? "flip" : $0.kernel)" }.joined(separator: ","))"
  }

  func index(_ n: SimNode) -> Int {
    switch n {
    case .client: 0
    case .sequencer: 1
    case .voter: 2
    case .replica(let r): 3 + r
    }
  }

  func node(_ i: Int) -> SimNode {
    switch i {
    case 0: .client
    case 1: .sequencer
    case 2: .voter
    default: .replica(i - 3)
    }
  }

  func log(_ text: @autoclosure () -> String) {
    let line = "\(now) " + text()
    trace.update(Array(line.utf8))
    trace.update([10])
    if options.keepTrace { traceLines.append(line) }
  }

  func countFault(_ kind: String) {
    if let i = faultCounts.firstIndex(where: { $0.kind == kind }) {
      faultCounts[i].count += 1
    } else {
      faultCounts.append((kind, 1))
    }
  }

  // MARK: the network

  func send(_ from: SimNode, _ to: SimNode, _ message: SimMessage) {
    guard alive[index(from)] else { return }
    let copies = !healed && net.chance(perMillion: duplicatePerMillion) ? 2 : 1
    for _ in 0..<copies {
      if !healed && net.chance(perMillion: lossPerMillion) {
        log("lose \(from.name)→\(to.name) \(message.name)")
        continue
      }
      var delay = net.int64(1...delayMaxMs)
      if !healed && net.chance(perMillion: longDelayPerMillion) { delay += net.int64(100...1_500) }
      queue.push(now + delay, .deliver(to: to, incarnation: incarnation[index(to)], message: message))
    }
  }

  // MARK: running

  public func run() -> SimResult {
    let end = options.faultWindowMs + options.settleMs
    var stuck = false
    while let (time, _, event) = queue.pop() {
      now = time
      steps += 1
      if now > options.faultWindowMs && !healed { heal() }
      if healed && isDone() { break }
      if now > end {
        stuck = true
        break
      }
      switch event {
      case .deliver(let to, let inc, let message):
        let i = index(to)
        // A message to a node that died (or died and came back) since it was sent is lost.
        guard alive[i] && incarnation[i] == inc else {
          log("drop →\(to.name) \(message.name)")
          continue
        }
        log("recv \(to.name) \(message.name)")
        receive(to, message)
      case .tick(let n, let inc):
        let i = index(n)
        guard alive[i] && incarnation[i] == inc else { continue }
        tick(n)
        queue.push(now + Self.tickMs, .tick(n, incarnation: inc))
      case .restart(let n):
        restart(n)
      case .fault:
        if !healed {
          injectFault()
          queue.push(now + rng.int64(faultEveryMs), .fault)
        }
      }
    }
    return finish(stuck: stuck)
  }

  func heal() {
    healed = true
    log("heal: no more faults, no loss")
    for i in alive.indices where !alive[i] { queue.push(now + 1, .restart(node(i))) }
  }

  func isDone() -> Bool {
    guard acked.allSatisfy({ $0 }), voterWatermark > lastSeq, alive.allSatisfy({ $0 }) else { return false }
    return replicas.allSatisfy { $0.core?.appliedSeq == lastSeq }
  }

  func finish(stuck: Bool) -> SimResult {
    var anomalies = ackAnomalies
    var notes: [String] = []
    if stuck {
      let behind = replicas.map { "\($0.id)@\($0.core?.appliedSeq ?? -1)" }.joined(separator: " ")
      anomalies.append(
        Anomaly(
          "STUCK", seq: voterWatermark,
          "not finished \(options.settleMs) ms after the faults stopped: acked \(acks.filter { $0 != nil }.count)/\(acks.count) batches, journal \(lastSeq), voter watermark \(voterWatermark)\(core?.halted != nil ? " (halted)" : ""), replicas \(behind)"
        ))
    }
    // What `tally report` and the harness do: REPORT at the journal's last seq (the
    // replica commits what it applied since its checkpoint and answers with the
    // digest of that state and its files). The report is a replica's whose state is
    // the voted one when the last decided batch ended on a checkpoint, else a quorum
    // of replicas with identical digest and files (Reporter.report).
    var finals: [ReplicaFinal] = []
    var answers: [(digest: [UInt8], files: [(name: String, bytes: [UInt8])])] = []
    for r in replicas.indices {
      var answer: (stateDigest: [UInt8], files: [(name: String, bytes: [UInt8])])? = nil
      if replicas[r].core != nil {
        do { answer = try replicas[r].core!.report(at: lastSeq) } catch {
          preconditionFailure("in-memory commit failed: \(error)")
        }
      }
      if let answer { answers.append((answer.stateDigest, answer.files)) }
      finals.append(
        ReplicaFinal(
          id: replicas[r].id, appliedSeq: replicas[r].core?.appliedSeq, stateDigest: answer?.stateDigest,
          honestState: replicas[r].kernel != "v1-faulty"))
    }
    var report: [(name: String, bytes: [UInt8])]? = nil
    if let voted = voterDecided.last, voted.last == lastSeq, !voted.stateDigest.isEmpty {
      report = answers.first { $0.digest == voted.stateDigest }?.files
    } else {
      let quorum = options.replicaCount / 2 + 1
      report =
        answers.first { a in
          answers.filter { $0.digest == a.digest && $0.files.elementsEqual(a.files, by: { $0 == $1 }) }.count
            >= quorum
        }?.files
    }
    let input = CheckInput(
      batches: clientBatches, acks: acks, observed: emitted, observedIsComplete: true,
      reference: market.reference, report: report, replicas: finals, decidedThrough: voterWatermark - 1,
      journalLastSeq: lastSeq, alerts: alerts, byzantine: byzantine)
    let check = Checker.check(input)
    var knownIssues: [Anomaly] = []
    for a in check.anomalies {
      // A byzantine replica whose divergent votes never reached a live voter when it
      // could compare them is a known gap of the voter (docs/CHAOS.md), not a miss.
      if a.kind == "BYZANTINE_UNDETECTED",
        let b = byzantine.first(where: { a.detail.contains("replica \($0.id) ") }),
        !byzantineCompared.contains(b.id)
      {
        knownIssues.append(
          Anomaly(
            "BYZANTINE_NEVER_COMPARED", seq: nil,
            "replica \(b.id): none of its divergent votes reached the voter while it could judge them; the voter never asks for them again"
          ))
      } else {
        anomalies.append(a)
      }
    }
    notes += check.notes
    let digest = trace
    return SimResult(
      seed: options.seed, anomalies: anomalies, knownIssues: knownIssues, notes: notes,
      traceDigest: digest.finalize().hexString,
      trace: traceLines, events: check.events, steps: steps, simulatedMs: now, faults: faultCounts,
      parameters: parameters)
  }

  // MARK: faults

  func injectFault() {
    let r = rng.int(0...(options.replicaCount - 1))
    let downMs = rng.int64(rng.pick([1...50, 50...800, 800...4_000]))
    switch rng.int(0...9) {
    case 0...3:
      countFault("crash-replica")
      crash(.replica(r), downMs: downMs)
    case 4:
      countFault("crash-sequencer")
      crash(.sequencer, downMs: downMs)
    case 5:
      countFault("crash-voter")
      crash(.voter, downMs: downMs)
    case 6:
      countFault("wipe-replica")
      crash(.replica(r), downMs: downMs)
      replicas[r].store = SimDisk()
      log("wipe r\(r + 1)")
    case 7:
      countFault("crash-client")
      crash(.client, downMs: downMs)
    case 8:
      // A pause (SIGSTOP): the node is up but answers nothing for a while; messages
      // to it wait in the (simulated) socket buffers rather than being lost.
      countFault("pause-replica")
      pause(.replica(r), ms: downMs)
    default:
      countFault("crash-all")
      for i in alive.indices where alive[i] { crash(node(i), downMs: downMs + rng.int64(0...200)) }
    }
  }

  func crash(_ n: SimNode, downMs: Int64) {
    let i = index(n)
    guard alive[i] else { return }
    alive[i] = false
    incarnation[i] += 1
    log("crash \(n.name) for \(downMs) ms")
    switch n {
    case .sequencer: sequencer = nil
    case .voter:
      core = nil
      byzantinePending = [:]
    case .replica(let r): replicas[r].core = nil
    case .client:
      acked = [Bool](repeating: false, count: clientBatches.count)
      sentAt = [Int64?](repeating: nil, count: clientBatches.count)
    }
    queue.push(now + downMs, .restart(n))
  }

  /// A paused node keeps its sockets: pending deliveries are postponed, not lost.
  func pause(_ n: SimNode, ms: Int64) {
    let i = index(n)
    guard alive[i] else { return }
    log("pause \(n.name) for \(ms) ms")
    var moved: [(time: Int64, order: Int64, event: SimEvent)] = []
    for e in queue.heap {
      switch e.event {
      case .deliver(let to, _, _) where to == n: moved.append((max(e.time, now + ms), e.order, e.event))
      case .tick(let to, _) where to == n: moved.append((max(e.time, now + ms), e.order, e.event))
      default: moved.append(e)
      }
    }
    queue.heap = []
    for e in moved.sorted(by: { $0.order < $1.order }) {
      queue.heap.append(e)
      var k = queue.heap.count - 1
      while k > 0 {
        let p = (k - 1) / 2
        if queue.less(k, p) {
          queue.heap.swapAt(k, p)
          k = p
        } else {
          break
        }
      }
    }
  }

  func restart(_ n: SimNode) {
    let i = index(n)
    guard !alive[i] else { return }
    alive[i] = true
    log("restart \(n.name)")
    switch n {
    case .replica(let r):
      do { try openReplica(r) } catch {
        ackAnomalies.append(
          Anomaly("RESTART_FAILED", "replica r\(r + 1) could not reopen its state: \(error)"))
        replicas[r].store = SimDisk()
        try? openReplica(r)
      }
    case .voter:
      core = makeVoterCore()
      voterStarted()
    case .sequencer:
      do { sequencer = try SequencerCore(store: sequencerStore, fetchBatchesMax: Self.fetchBatchesMax) } catch
      {
        preconditionFailure("the sequencer's in-memory journal does not open: \(error)")
      }
      lastSeq = sequencer!.lastSeq  // a write whose acks were lost in the crash counts
    case .client: break
    }
    queue.push(now + 1, .tick(n, incarnation: incarnation[i]))
  }

  // MARK: nodes

  func receive(_ n: SimNode, _ m: SimMessage) {
    switch (n, m) {
    case (.sequencer, .ingest(let batch, let lines)): sequencerIngest(batch: batch, lines: lines)
    case (.sequencer, .fetch(let r, let from)): sequencerFetch(replica: r, from: from)
    case (.client, .ack(let batch, let first, let last)): clientAck(batch: batch, first: first, last: last)
    case (.replica(let r), .batches(let bs)): replicaBatches(r, bs)
    case (.replica(let r), .none): replicas[r].core?.nothingNew()
    case (.replica(let r), .resend(let from)): replicaResend(r, from: from)
    case (.replica(let r), .repair):
      if let actions = replicas[r].core?.repair() { performReplica(r, actions) }
    case (.replica(let r), .prune(let through)): replicas[r].core?.prune(through: through)
    case (.voter, .vote(let v)): voterReceive(v)
    case (.voter, .heartbeat(let r, let applied)):
      core?.heartbeat(replica: r, appliedSeq: applied, kernel: replicas[r].kernel)
    default: preconditionFailure("simulator: \(n.name) cannot receive \(m.name)")
    }
  }

  func tick(_ n: SimNode) {
    switch n {
    case .client: clientTick()
    case .sequencer: sequencerTick()
    case .voter: voterTick()
    case .replica(let r): replicaTick(r)
    }
  }

  // The client (Submitter): a window of batches, retried until acked.
  func clientTick() {
    var inFlight = 0
    for i in acked.indices where !acked[i] && sentAt[i] != nil { inFlight += 1 }
    for i in acked.indices where !acked[i] {
      if let s = sentAt[i] {
        if now - s > Self.ackTimeoutMs {
          sentAt[i] = now
          send(.client, .sequencer, .ingest(batch: i + 1, lines: clientBatches[i]))
        }
      } else if inFlight < windowBatches {
        inFlight += 1
        sentAt[i] = now
        send(.client, .sequencer, .ingest(batch: i + 1, lines: clientBatches[i]))
      }
    }
  }

  func clientAck(batch: Int, first: Int64, last: Int64) {
    let i = batch - 1
    acked[i] = true
    if let known = acks[i] {
      if known != (first, last) {
        ackAnomalies.append(
          Anomaly(
            "ACK_CHANGED", seq: first,
            "batch \(batch) acked \(known.first)...\(known.last), then \(first)...\(last)"))
      }
      return
    }
    acks[i] = (first, last)
  }

  // The sequencer: what Sequencer.run does with the real core's actions.
  static let clientPeer: [UInt8] = [0]
  static func replicaPeer(_ r: Int) -> [UInt8] { [1, UInt8(r)] }

  func sequencerIngest(batch: Int, lines: [[UInt8]]) {
    guard var c = sequencer else { return }
    let b = SequencerCore.ClientBatch(
      peer: Self.clientPeer,
      batch: IngestBatch(client: Self.clientId, batchNumber: Int64(batch), eventLines: lines),
      numberFrame: Array(String(batch).utf8))
    let actions: [SequencerCore.Action]
    do { actions = try c.ingest([b]) } catch {
      preconditionFailure("in-memory journal read failed: \(error)")
    }
    sequencer = c
    performSequencer(actions)
  }

  func sequencerFetch(replica r: Int, from: Int64) {
    guard var c = sequencer else { return }
    let actions: [SequencerCore.Action]
    do { actions = try c.fetch(peer: Self.replicaPeer(r), from: from, nowMs: now) } catch {
      preconditionFailure("in-memory journal read failed: \(error)")
    }
    sequencer = c
    performSequencer(actions)
  }

  func sequencerTick() {
    guard var c = sequencer else { return }
    let actions: [SequencerCore.Action]
    do { actions = try c.tick(nowMs: now) } catch {
      preconditionFailure("in-memory journal read failed: \(error)")
    }
    sequencer = c
    performSequencer(actions)
  }

  func performSequencer(_ actions: [SequencerCore.Action]) {
    var todo = actions
    var i = 0
    while i < todo.count {
      let action = todo[i]
      i += 1
      switch action {
      case .writeJournal(let write, let batches, let events):
        do { try sequencerStore.commit(write, sync: true) } catch {
          preconditionFailure("in-memory journal write failed: \(error)")
        }
        log("journal \(batches) batches, \(events) events")
        if rng.chance(perMillion: healed ? 0 : sequencerCrashBeforeAckPerMillion) {
          // Journaled, crashed before the acks: the client's retry is acked from the dedupe keys.
          countFault("crash-sequencer-before-ack")
          crash(.sequencer, downMs: rng.int64(1...300))
          return
        }
        guard var c = sequencer else { return }
        do { todo += try c.journalWritten(nowMs: now) } catch {
          preconditionFailure("in-memory journal read failed: \(error)")
        }
        sequencer = c
        lastSeq = c.lastSeq
      case .ack(_, let number, let first, let last):
        guard let batch = Int(String(decoding: number, as: UTF8.self)) else { preconditionFailure("bad ack") }
        send(.sequencer, .client, .ack(batch: batch, first: first, last: last))
      case .batches(let peer, let encoded):
        var batches: [JournalBatch] = []
        for e in encoded {
          guard let b = try? JournalBatch(frame: e) else {
            preconditionFailure("journal batch does not decode")
          }
          batches.append(b)
        }
        send(.sequencer, .replica(Int(peer[1])), .batches(batches))
      case .none(let peer, _):
        send(.sequencer, .replica(Int(peer[1])), .none)
      case .notABoundary(let peer, let from):
        // ERR to the replica: it asks again after its fetch retry.
        log("sequencer: \(from) is not a batch boundary for r\(Int(peer[1]) + 1)")
      }
    }
  }

  // The replicas: what Replica.run does with the real core's actions.
  func openReplica(_ r: Int) throws {
    let applier = try DurableBatchApplier.open(
      store: replicas[r].store, reference: market.reference, kernel: replicas[r].kernel)
    replicas[r].core = try ReplicaCore(
      settings: replicaSettings(r), applier: applier, store: replicas[r].store)
    log("open r\(r + 1) at seq \(applier.committedSeq)")
  }

  func replicaSettings(_ r: Int) -> ReplicaCore<DurableBatchApplier>.Settings {
    var s = ReplicaCore<DurableBatchApplier>.Settings(
      id: replicas[r].id, kernel: replicas[r].kernel, checkpointEvents: checkpointEvents,
      heartbeatMs: Self.heartbeatMs, flipDigestBit: replicas[r].flip)
    // Digests at every third checkpoint's multiple: commits with and without a snapshot
    // both happen (drawn from nothing random, so every seed replays as before).
    s.digestEvents = checkpointEvents * 3
    s.backgroundCommits = false
    s.logRetainedSeqs = Self.logRetainedSeqs
    return s
  }

  func performReplica(_ r: Int, _ actions: [ReplicaCore<DurableBatchApplier>.Action]) {
    for a in actions {
      switch a {
      case .fetch(let from): send(.replica(r), .sequencer, .fetch(replica: r, from: from))
      case .heartbeat(let hb): send(.replica(r), .voter, .heartbeat(replica: r, applied: hb.appliedSeq))
      case .vote(let v): send(.replica(r), .voter, .vote(v))
      case .gap(let have, let got): log("r\(r + 1) gap: have \(have), got \(got)")
      case .rebuild: replicaRepair(r)
      }
    }
  }

  func replicaTick(_ r: Int) {
    guard replicas[r].core != nil else { return }
    performReplica(r, replicas[r].core!.tick(nowMs: now))
  }

  func replicaBatches(_ r: Int, _ batches: [JournalBatch]) {
    guard replicas[r].core != nil else { return }
    let actions: [ReplicaCore<DurableBatchApplier>.Action]
    do { actions = try replicas[r].core!.receive(batches) } catch {
      preconditionFailure("in-memory commit failed: \(error)")
    }
    if actions.contains(where: { if case .vote = $0 { true } else { false } })
      && rng.chance(perMillion: healed ? 0 : crashMidBatchPerMillion)
    {
      // Applied (and maybe committed at a checkpoint), crashed before the votes went out.
      countFault("crash-replica-mid-batch")
      crash(.replica(r), downMs: rng.int64(1...500))
      return
    }
    performReplica(r, actions)
  }

  func replicaResend(_ r: Int, from: Int64) {
    guard let c = replicas[r].core else { return }
    do { performReplica(r, try c.resend(from: from)) } catch {
      preconditionFailure("in-memory log read failed: \(error)")
    }
  }

  /// REPAIR: the core says rebuild; the shell wipes the disk and opens a fresh state.
  func replicaRepair(_ r: Int) {
    guard replicas[r].core != nil else { return }
    log("repair r\(r + 1): wipe and replay")
    replicas[r].store = SimDisk()
    do {
      let applier = try DurableBatchApplier.open(
        store: replicas[r].store, reference: market.reference, kernel: replicas[r].kernel)
      try replicas[r].core!.rebuilt(applier: applier, store: replicas[r].store)
    } catch {
      preconditionFailure("a fresh in-memory state does not open: \(error)")
    }
  }

  // The voter (Voter.swift around the real VoterCore).
  func makeVoterCore() -> VoterCore {
    VoterCore(
      replicaIds: replicas.map(\.id), quorum: options.replicaCount / 2 + 1, repairsMax: Self.repairsMax,
      watermark: voterWatermark, decided: voterDecided)
  }

  func voterStarted() {
    prunedSent = [Int64](repeating: 0, count: replicas.count)
    for r in replicas.indices { send(.voter, .replica(r), .resend(from: voterWatermark)) }
    lastResend = now
  }

  func voterReceive(_ vote: Vote) {
    guard var c = core, let r = replicas.firstIndex(where: { $0.id == vote.replica }) else { return }
    let isByzantine = byzantine.contains { $0.id == vote.replica }
    if isByzantine {
      if vote.first < c.watermark {
        if let d = voterDecided.last(where: { $0.first == vote.first }), d.last == vote.last,
          d.outputDigest + d.stateDigest != vote.key
        {
          byzantineCompared.append(vote.replica)
        }
      } else {
        byzantinePending[vote.first] = vote
      }
    }
    let actions = c.receive(vote, from: r)
    let emits = actions.compactMap { a -> DecidedBatch? in
      if case .emit(let d) = a { return d }
      return nil
    }
    if !emits.isEmpty && rng.chance(perMillion: healed ? 0 : voterCrashBeforeStorePerMillion) {
      // Decided in memory, crashed before the store write: nothing of it happened.
      countFault("crash-voter-before-store")
      crash(.voter, downMs: rng.int64(1...300))
      return
    }
    // As the voter's shell does: batches beyond the retention leave its store.
    let forgotten = c.takeForgottenDecided()
    core = c
    if let newest = forgotten.last { voterDecided.removeAll { $0.first <= newest } }
    for d in emits {
      voterDecided.append(d)
      voterWatermark = d.last + 1
      emitted.append(
        ObservedBatch(first: d.first, last: d.last, outcomes: d.outcomes, stateDigest: d.stateDigest))
      if let v = byzantinePending.removeValue(forKey: d.first), v.last == d.last,
        v.key != d.outputDigest + d.stateDigest
      {
        byzantineCompared.append(v.replica)
      }
      log("decide \(d.first)-\(d.last)")
    }
    for a in actions {
      switch a {
      case .emit: break
      case .alert(let alert):
        log("alert \(alert.kind.rawValue) \(alert.replica ?? "-") \(alert.first)")
        alerts.append(ObservedAlert(kind: alert.kind.rawValue, replica: alert.replica, firstSeq: alert.first))
      case .quarantine(let q): log("quarantine r\(q + 1)")
      case .repair(let q): send(.voter, .replica(q), .repair)
      }
    }
  }

  func voterTick() {
    guard let c = core, now - lastResend > Self.voterResendMs else { return }
    lastResend = now
    for ask in c.replicasToAskForResend() { send(.voter, .replica(ask.replica), .resend(from: ask.from)) }
    // As Voter.run: replicas may prune their logs behind what was judged and streamed
    // (the simulated voter streams what it decides).
    for r in replicas.indices {
      let through = c.prunableThrough(replica: r, streamedThrough: voterWatermark - 1)
      if through > prunedSent[r] {
        send(.voter, .replica(r), .prune(through: through))
        prunedSent[r] = through
      }
    }
  }
}

public enum Simulator {
  /// Runs one seed; errors (a market that cannot be generated) become an anomaly.
  public static func run(_ options: SimOptions) -> SimResult {
    do {
      return try Simulation(options).run()
    } catch {
      return SimResult(
        seed: options.seed, anomalies: [Anomaly("SETUP", "\(error)")], knownIssues: [], notes: [],
        traceDigest: "", trace: [],
        events: 0, steps: 0, simulatedMs: 0, faults: [], parameters: "")
    }
  }
}
