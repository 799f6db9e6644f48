// The client side of the voted results stream (docs/STREAM.md) for any consumer:
// SUB to the live batches, DEALER to the replay socket, the join-late sequence and the
// gap rule. It hands each digest-checked batch to `apply`; the consumer keeps `next`.
// Used by `tally follow` (Follower) and `tally dashboard`.
import KernelAPI
import ZeroMQTransport

public struct StreamTap {
  /// How long a REPLAY may go unanswered before it is asked again.
  public static let replayTimeoutMs = 5_000

  let config: ClusterConfig
  let log: (String) -> Void

  public init(config: ClusterConfig, log: @escaping (String) -> Void) {
    self.config = config
    self.log = log
  }

  /// Follows the stream until `finished()`. `next()` is the first seq the consumer has
  /// not applied; `apply(first, last, records)` gets batches with `first <= next()` (it
  /// drops what is below `next()`); `idle(caughtUp)` runs after every poll (200 ms at
  /// most), `caughtUp` false while a replay is under way.
  public func run(
    context: ZMQContext, next: () -> Int64, apply: (Int64, Int64, [UInt8]) throws -> Void,
    finished: () -> Bool = { false }, idle: (Bool) throws -> Void = { _ in }
  ) throws {
    let sub = try ZMQSocket(context: context, type: .sub)
    try Secure.client(sub, config.curve)
    try sub.subscribe(StreamProtocol.tag)
    try sub.connect(config.voterStream)
    let dealer = try ZMQSocket(context: context, type: .dealer)
    try Secure.client(dealer, config.curve)
    try dealer.connect(config.voterStreamReplay)
    let clock = ContinuousClock()
    var replaying = false
    var replayAskedAt = clock.now
    func askReplay() throws {
      _ = try dealer.send(
        [StreamProtocol.tag, Array("REPLAY".utf8), Array(String(next()).utf8)], dontWait: true)
      replaying = true
      replayAskedAt = clock.now
    }
    try askReplay()
    log("subscribed to \(config.voterStream), replaying from seq \(next())")
    while true {
      if finished() { return }
      try idle(!replaying)
      let ready = try ZMQPoller.poll([sub, dealer], timeoutMs: 200)
      if ready[1] {
        while let msg = try dealer.receive(timeoutMs: 0) {
          guard msg.count >= 3, msg[0] == StreamProtocol.tag else { continue }
          switch msg[1].text {
          case "BATCH":
            guard msg.count == 6, let first = StreamProtocol.decimal(msg[2]),
              let last = StreamProtocol.decimal(msg[3]),
              EffectDigest.of(msg[5]) == msg[4]
            else { continue }
            if first <= next() { try apply(first, last, msg[5]) }
          case "END":
            guard msg.count == 4, let sentTo = StreamProtocol.decimal(msg[2]),
              let voterNext = StreamProtocol.decimal(msg[3])
            else { continue }
            if sentTo < voterNext && !finished() { try askReplay() } else { replaying = false }
          case "GONE":
            throw FollowError("the stream no longer holds seq \(next()) (window starts at \(msg[2].text))")
          default:
            log("replay answered \(msg[1].text) \(msg.count > 2 ? msg[2].text : "")")
            replaying = false
          }
        }
      }
      if ready[0] {
        while let msg = try sub.receive(timeoutMs: 0) {
          guard msg.count >= 3, msg[0] == StreamProtocol.tag else { continue }
          if msg[1].text == "HUGZ" {
            if let voterNext = StreamProtocol.decimal(msg[2]), voterNext > next(), !replaying {
              try askReplay()
            }
            continue
          }
          guard msg[1].text == "BATCH", msg.count == 6, let first = StreamProtocol.decimal(msg[2]),
            let last = StreamProtocol.decimal(msg[3]), EffectDigest.of(msg[5]) == msg[4]
          else { continue }
          if first <= next() {
            try apply(first, last, msg[5])
          } else if !replaying {
            try askReplay()  // a gap: replay what was missed
          }
        }
      }
      if replaying && clock.now - replayAskedAt > .milliseconds(Self.replayTimeoutMs) { try askReplay() }
    }
  }
}
