// Lost, duplicated, delayed and reordered messages on the cluster's real links.
//
// The harness writes `[links] replica_fetch_via` and `replica_votes_via` into the
// generated cluster.toml, so replicas connect to this proxy instead of the sequencer's
// fetch ROUTER and the voter's collect PULL. The proxy runs on its own thread in the
// `tally chaos` process (it survives every kill and restart of the cluster's nodes):
//
//   votes:  replica PUSH → [PULL proxy PUSH] → voter PULL        (VOTE and HB messages)
//   fetch:  replica DEALER → [ROUTER proxy DEALER-per-replica] → sequencer ROUTER
//
// The fetch side keeps one DEALER per replica connection (by the identity the front
// ROUTER gives it): the sequencer's ROUTER expects exactly [identity, FETCH, from], so a
// single back DEALER with the replica's identity as an extra envelope frame (what
// zmq_proxy does) would not be understood.
//
// Each stream (votes, fetch replies, fetch requests) has its own `LinkDecider`: a
// SplitMix64 forked from the scenario's seed, with a fixed number of draws per message,
// so the k-th message of a stream always gets the same decision for a given seed. Which
// message is the k-th, and the delays themselves, are wall-clock facts of a real run.
import Foundation
import ZeroMQTransport

/// Fault rates for one direction of one link (fractions of messages, 0 ≤ rate < 1).
public struct LinkFaults: Sendable, Equatable {
  /// A message is lost.
  public var drop: Double
  /// A message is delivered twice (the copy has its own delay, so it may come much later).
  public var dup: Double
  /// A copy is held back for 1...`delayMsMax` ms (later messages overtake it).
  public var delay: Double
  public var delayMsMax: Int

  public init(drop: Double = 0, dup: Double = 0, delay: Double = 0, delayMsMax: Int = 0) {
    self.drop = drop
    self.dup = dup
    self.delay = delay
    self.delayMsMax = delayMsMax
  }

  public var isActive: Bool { drop > 0 || dup > 0 || (delay > 0 && delayMsMax > 0) }
}

/// What happens to one message.
public enum LinkDecision: Sendable, Equatable {
  case drop
  /// Deliver one copy per element, each after that many milliseconds (0: at once).
  case deliver(delaysMs: [Int])
}

/// The seeded decision stream of one direction of one link.
public struct LinkDecider: Sendable {
  public let faults: LinkFaults
  private var rng: SplitMix64

  public init(faults: LinkFaults, seed: UInt64) {
    self.faults = faults
    rng = SplitMix64(seed: seed)
  }

  /// The next message's fate. Always six draws, whatever the outcome, so that decision k
  /// depends on the seed and k only.
  public mutating func next() -> LinkDecision {
    let drop = rng.next()
    let dup = rng.next()
    let delay1 = rng.next()
    let ms1 = rng.next()
    let delay2 = rng.next()
    let ms2 = rng.next()
    if Self.hit(drop, faults.drop) { return .drop }
    var delays = [delayMs(delay1, ms1)]
    if Self.hit(dup, faults.dup) { delays.append(delayMs(delay2, ms2)) }
    return .deliver(delaysMs: delays)
  }

  private func delayMs(_ draw: UInt64, _ msDraw: UInt64) -> Int {
    guard faults.delayMsMax > 0, Self.hit(draw, faults.delay) else { return 0 }
    return 1 + Int(msDraw % UInt64(faults.delayMsMax))
  }

  /// True with probability `p` (53 bits of the draw as a fraction).
  static func hit(_ draw: UInt64, _ p: Double) -> Bool {
    p > 0 && Double(draw >> 11) / 9_007_199_254_740_992.0 < p
  }
}

/// The proxy's streams, in the order their deciders are forked from the seed.
public enum LinkStream: Int, Sendable, CaseIterable {
  case votes = 0
  case fetchReplies = 1
  case fetchRequests = 2

  /// The prefix of this stream's fault kinds in the verdict.
  public var name: String {
    switch self {
    case .votes: "votes"
    case .fetchReplies: "fetch"
    case .fetchRequests: "fetch-request"
    }
  }
}

public final class LinkProxy: @unchecked Sendable {
  public struct Endpoints: Sendable {
    /// Bound by the proxy: where replicas push votes and heartbeats (`replica_votes_via`).
    public var votesVia: String
    /// The voter's collect PULL.
    public var voterCollect: String
    /// Bound by the proxy: where replicas fetch (`replica_fetch_via`).
    public var fetchVia: String
    /// The sequencer's fetch ROUTER.
    public var sequencerFetch: String

    public init(votesVia: String, voterCollect: String, fetchVia: String, sequencerFetch: String) {
      self.votesVia = votesVia
      self.voterCollect = voterCollect
      self.fetchVia = fetchVia
      self.sequencerFetch = sequencerFetch
    }
  }

  public struct Rates: Sendable, Equatable {
    public var votes = LinkFaults()
    /// Sequencer → replica (BATCHES, NONE, ERR).
    public var fetchReplies = LinkFaults()
    /// Replica → sequencer (FETCH).
    public var fetchRequests = LinkFaults()

    public init(
      votes: LinkFaults = LinkFaults(), fetchReplies: LinkFaults = LinkFaults(),
      fetchRequests: LinkFaults = LinkFaults()
    ) {
      self.votes = votes
      self.fetchReplies = fetchReplies
      self.fetchRequests = fetchRequests
    }

    public var isActive: Bool { votes.isActive || fetchReplies.isActive || fetchRequests.isActive }

    public func faults(_ s: LinkStream) -> LinkFaults {
      switch s {
      case .votes: votes
      case .fetchReplies: fetchReplies
      case .fetchRequests: fetchRequests
      }
    }
  }

  public struct StreamCounts: Sendable, Equatable {
    /// Messages received from the sender side.
    public var messages = 0
    public var dropped = 0
    /// Extra copies sent.
    public var duplicated = 0
    /// Copies held back.
    public var delayed = 0
    /// Copies the proxy could not pass on (the next hop's queue full): lost too, but
    /// not by decision.
    public var overflowed = 0
  }

  /// One decider per stream, forked from `seed` in `LinkStream` order.
  public static func deciders(seed: UInt64, rates: Rates) -> [LinkDecider] {
    var root = SplitMix64(seed: seed)
    return LinkStream.allCases.map { LinkDecider(faults: rates.faults($0), seed: root.fork().state) }
  }

  public let endpoints: Endpoints
  public let rates: Rates
  public let seed: UInt64
  private let context: ZMQContext
  private let lock = NSLock()
  private var _stop = false
  private var _healed = false
  private var _counts = [StreamCounts](repeating: StreamCounts(), count: LinkStream.allCases.count)
  private var _error: String? = nil
  private var _dealersOpened = 0
  private let started = DispatchSemaphore(value: 0)
  private let finished = DispatchSemaphore(value: 0)
  private var running = false

  public init(context: ZMQContext, endpoints: Endpoints, rates: Rates, seed: UInt64) {
    self.context = context
    self.endpoints = endpoints
    self.rates = rates
    self.seed = seed
  }

  private func with<T>(_ body: (LinkProxy) -> T) -> T {
    lock.lock()
    defer { lock.unlock() }
    return body(self)
  }

  /// Binds both front endpoints on the proxy thread; returns once they are bound.
  public func start() throws {
    precondition(!running, "LinkProxy.start() called twice")
    running = true
    let thread = Thread { [self] in
      self.loop()
      self.finished.signal()
    }
    thread.name = "link-proxy"
    thread.start()
    started.wait()
    if let e = error {
      finished.wait()
      running = false
      throw ScenarioError("link proxy: \(e)")
    }
  }

  /// From now on every message passes untouched (held ones are still released on time).
  public func heal() { with { $0._healed = true } }

  public var isHealed: Bool { with { $0._healed } }

  /// Stops the thread and closes its sockets (held messages are lost). Idempotent.
  public func stop() {
    guard running else { return }
    with { $0._stop = true }
    finished.wait()
    running = false
  }

  public var counts: [StreamCounts] { with { $0._counts } }
  public var error: String? { with { $0._error } }
  public var dealersOpened: Int { with { $0._dealersOpened } }

  /// Injected faults per kind ("votes-drop", "fetch-dup", "fetch-request-delay", ...),
  /// non-zero ones only, in a fixed order.
  public var faultCounts: [(kind: String, count: Int)] {
    let c = counts
    var out: [(kind: String, count: Int)] = []
    for s in LinkStream.allCases {
      let k = c[s.rawValue]
      for (what, n) in [("drop", k.dropped), ("dup", k.duplicated), ("delay", k.delayed)] where n > 0 {
        out.append(("\(s.name)-\(what)", n))
      }
    }
    return out
  }

  /// One line for the verdict's notes.
  public var summary: String {
    let c = counts
    var parts = LinkStream.allCases.map { s in
      let k = c[s.rawValue]
      let overflowed = k.overflowed > 0 ? ", overflowed \(k.overflowed)" : ""
      return "\(s.name) \(k.messages) messages (dropped \(k.dropped), duplicated \(k.duplicated), "
        + "delayed \(k.delayed)\(overflowed))"
    }
    parts.append("\(dealersOpened) back DEALERs")
    return "link proxy: " + parts.joined(separator: "; ")
  }

  // MARK: The proxy thread

  private enum Target {
    case voter
    case sequencer(identity: [UInt8])
    case replica(identity: [UInt8])
  }

  private struct Held {
    var at: ContinuousClock.Instant
    var order: UInt64
    var target: Target
    var frames: [[UInt8]]
  }

  private final class Dealer {
    let identity: [UInt8]
    let socket: ZMQSocket
    var lastUsed: ContinuousClock.Instant
    init(identity: [UInt8], socket: ZMQSocket, lastUsed: ContinuousClock.Instant) {
      self.identity = identity
      self.socket = socket
      self.lastUsed = lastUsed
    }
  }

  /// A back DEALER unused this long is closed (replica restarts leave old identities).
  static let dealerIdleSeconds = 30

  private func loop() {
    let clock = ContinuousClock()
    var deciders = Self.deciders(seed: seed, rates: rates)
    let votesIn: ZMQSocket
    let votesOut: ZMQSocket
    let front: ZMQSocket
    do {
      votesIn = try ZMQSocket(context: context, type: .pull)
      try votesIn.setReceiveHighWaterMark(0)
      try votesIn.bind(endpoints.votesVia)
      votesOut = try ZMQSocket(context: context, type: .push)
      try votesOut.setSendHighWaterMark(100_000)
      try votesOut.connect(endpoints.voterCollect)
      front = try ZMQSocket(context: context, type: .router)
      try front.bind(endpoints.fetchVia)
    } catch {
      with { $0._error = "\(error)" }
      started.signal()
      return
    }
    started.signal()
    var dealers: [Dealer] = []
    var held: [Held] = []  // ordered by (at, order)
    var order: UInt64 = 0
    var lastPrune = clock.now

    func dealer(_ identity: [UInt8]) throws -> Dealer {
      if let d = dealers.first(where: { $0.identity == identity }) { return d }
      let s = try ZMQSocket(context: context, type: .dealer)
      try s.setSendHighWaterMark(10_000)
      try s.connect(endpoints.sequencerFetch)
      let d = Dealer(identity: identity, socket: s, lastUsed: clock.now)
      dealers.append(d)
      with { $0._dealersOpened += 1 }
      return d
    }

    func deliver(_ target: Target, _ frames: [[UInt8]], _ stream: LinkStream) throws {
      let ok: Bool
      switch target {
      case .voter: ok = try votesOut.send(frames, dontWait: true)
      case .sequencer(let identity):
        let d = try dealer(identity)
        d.lastUsed = clock.now
        ok = try d.socket.send(frames, dontWait: true)
      case .replica(let identity):
        ok = try front.send([identity] + frames, dontWait: true)  // an unknown identity is dropped silently
      }
      if !ok { with { $0._counts[stream.rawValue].overflowed += 1 } }
    }

    func route(_ stream: LinkStream, _ target: Target, _ frames: [[UInt8]]) throws {
      let healed = with { $0._healed }
      let decision: LinkDecision = healed ? .deliver(delaysMs: [0]) : deciders[stream.rawValue].next()
      with {
        $0._counts[stream.rawValue].messages += 1
        switch decision {
        case .drop: $0._counts[stream.rawValue].dropped += 1
        case .deliver(let delays):
          $0._counts[stream.rawValue].duplicated += delays.count - 1
          $0._counts[stream.rawValue].delayed += delays.filter { $0 > 0 }.count
        }
      }
      guard case .deliver(let delays) = decision else { return }
      for ms in delays {
        if ms == 0 {
          try deliver(target, frames, stream)
        } else {
          let h = Held(at: clock.now + .milliseconds(ms), order: order, target: target, frames: frames)
          order += 1
          let k = held.firstIndex { ($0.at, $0.order) > (h.at, h.order) } ?? held.count
          held.insert(h, at: k)
        }
      }
    }

    func stream(of target: Target) -> LinkStream {
      switch target {
      case .voter: .votes
      case .sequencer: .fetchRequests
      case .replica: .fetchReplies
      }
    }

    do {
      while !with({ $0._stop }) {
        let now = clock.now
        while let h = held.first, h.at <= now {
          held.removeFirst()
          try deliver(h.target, h.frames, stream(of: h.target))
        }
        var wait: Int32 = 50
        if let h = held.first {
          let (s, a) = (h.at - now).components
          wait = Int32(max(0, min(50, s * 1000 + a / 1_000_000_000_000_000)))
        }
        let sockets = [votesIn, front] + dealers.map(\.socket)
        let ready = try ZMQPoller.poll(sockets, timeoutMs: wait)
        if ready[0] {
          var n = 0
          while n < 1_000, let msg = try votesIn.receive(timeoutMs: 0) {
            n += 1
            try route(.votes, .voter, msg)
          }
        }
        if ready[1] {
          var n = 0
          while n < 1_000, let msg = try front.receive(timeoutMs: 0) {
            n += 1
            guard msg.count >= 2 else { continue }
            try route(.fetchRequests, .sequencer(identity: msg[0]), Array(msg.dropFirst()))
          }
        }
        // Dealers opened above come after these indexes; they are polled next time.
        for i in 0..<(ready.count - 2) where ready[2 + i] {
          let d = dealers[i]
          var n = 0
          while n < 1_000, let msg = try d.socket.receive(timeoutMs: 0) {
            n += 1
            d.lastUsed = clock.now
            try route(.fetchReplies, .replica(identity: d.identity), msg)
          }
        }
        if clock.now - lastPrune > .seconds(5) {
          lastPrune = clock.now
          dealers.removeAll { d in
            let idle = clock.now - d.lastUsed > .seconds(Self.dealerIdleSeconds)
            let pending = held.contains {
              if case .sequencer(let id) = $0.target { return id == d.identity }
              return false
            }
            if idle && !pending { d.socket.close() }
            return idle && !pending
          }
        }
      }
    } catch {
      with { $0._error = "\(error)" }
    }
    for d in dealers { d.socket.close() }
    votesIn.close()
    votesOut.close()
    front.close()
  }
}
