import CZeroMQ
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The libzmq socket types (the non-draft ones).
public enum ZMQSocketType: Sendable, CustomStringConvertible {
  case pair, pub, sub, req, rep, dealer, router, pull, push, xpub, xsub

  /// The ZMQ_* constant; these simple `#define`s import from zmq.h as Int32.
  var rawValue: Int32 {
    switch self {
    case .pair: ZMQ_PAIR
    case .pub: ZMQ_PUB
    case .sub: ZMQ_SUB
    case .req: ZMQ_REQ
    case .rep: ZMQ_REP
    case .dealer: ZMQ_DEALER
    case .router: ZMQ_ROUTER
    case .pull: ZMQ_PULL
    case .push: ZMQ_PUSH
    case .xpub: ZMQ_XPUB
    case .xsub: ZMQ_XSUB
    }
  }

  public var description: String {
    switch self {
    case .pair: "PAIR"
    case .pub: "PUB"
    case .sub: "SUB"
    case .req: "REQ"
    case .rep: "REP"
    case .dealer: "DEALER"
    case .router: "ROUTER"
    case .pull: "PULL"
    case .push: "PUSH"
    case .xpub: "XPUB"
    case .xsub: "XSUB"
    }
  }
}

/// A libzmq socket.
///
/// Threading: a libzmq socket is NOT thread-safe. A `ZMQSocket` is owned by one thread at
/// a time and is deliberately not `Sendable`. To move one to another thread (for example,
/// create and bind it on the main thread, then run its loop on a worker), wrap it in a
/// `ZMQSocketHandoff`, which the compiler checks is not used by the sender afterwards.
///
/// Linger: every socket starts with linger 0 (`ZMQSocket.defaultLingerMs`), so `close()`
/// and the context's termination never hang the process; messages still queued on close
/// are dropped. Protocols in Tally acknowledge what matters, so that is the right default;
/// call `setLingerMs(_:)` for a socket that must flush on close.
///
/// Use after `close()` is a programming error and stops the process (`precondition`).
public final class ZMQSocket {
  /// The linger every new socket gets: 0 ms (drop unsent messages on close).
  public static let defaultLingerMs: Int32 = 0

  public let type: ZMQSocketType
  /// Keeps the context alive while this socket exists (zmq_ctx_term would block otherwise).
  public let context: ZMQContext
  private var handle: UnsafeMutableRawPointer?
  /// Endpoints bound or connected, for error messages.
  private var endpoints: [String] = []

  public init(context: ZMQContext, type: ZMQSocketType) throws {
    guard let handle = zmq_socket(context.handle, type.rawValue) else {
      throw ZMQError.last("zmq_socket(\(type))")
    }
    self.context = context
    self.type = type
    self.handle = handle
    do {
      try setInt32(ZMQ_LINGER, ZMQSocket.defaultLingerMs, "ZMQ_LINGER")
    } catch {
      close()
      throw error
    }
  }

  deinit { close() }

  /// Closes the socket (zmq_close). Idempotent; also done by deinit.
  public func close() {
    guard let handle else { return }
    self.handle = nil
    _ = zmq_close(handle)
  }

  public var isClosed: Bool { handle == nil }

  /// The live handle; using a closed socket is a programming error.
  var rawHandle: UnsafeMutableRawPointer {
    guard let handle else { preconditionFailure("ZMQSocket(\(type)) used after close()") }
    return handle
  }

  /// "DEALER socket [tcp://127.0.0.1:5555]": names the socket in send/receive errors.
  var label: String {
    endpoints.isEmpty ? "\(type) socket" : "\(type) socket [\(endpoints.joined(separator: ", "))]"
  }

  // MARK: Endpoints

  /// Binds to an endpoint such as `tcp://127.0.0.1:*` (ephemeral port; read it back from
  /// `lastEndpoint`) or `inproc://name`.
  public func bind(_ endpoint: String) throws {
    let handle = rawHandle
    if zmq_bind(handle, endpoint) != 0 { throw ZMQError.last("zmq_bind", endpoint) }
    endpoints.append(lastEndpoint ?? endpoint)
  }

  /// Connects to an endpoint. For tcp this returns at once; libzmq connects (and
  /// reconnects) in the background.
  public func connect(_ endpoint: String) throws {
    let handle = rawHandle
    if zmq_connect(handle, endpoint) != 0 { throw ZMQError.last("zmq_connect", endpoint) }
    endpoints.append(endpoint)
  }

  /// Undoes a bind. For a wildcard bind, pass the resolved `lastEndpoint`.
  public func unbind(_ endpoint: String) throws {
    let handle = rawHandle
    if zmq_unbind(handle, endpoint) != 0 { throw ZMQError.last("zmq_unbind", endpoint) }
    endpoints.removeAll { $0 == endpoint }
  }

  public func disconnect(_ endpoint: String) throws {
    let handle = rawHandle
    if zmq_disconnect(handle, endpoint) != 0 { throw ZMQError.last("zmq_disconnect", endpoint) }
    endpoints.removeAll { $0 == endpoint }
  }

  /// The endpoint of the last bind or connect (ZMQ_LAST_ENDPOINT), with a wildcard port
  /// resolved, e.g. `tcp://127.0.0.1:41237`; nil before any bind/connect.
  public var lastEndpoint: String? {
    var buffer = [UInt8](repeating: 0, count: 1024)
    var size = buffer.count
    let rc = buffer.withUnsafeMutableBytes {
      zmq_getsockopt(rawHandle, ZMQ_LAST_ENDPOINT, $0.baseAddress, &size)
    }
    guard rc == 0 else { return nil }
    let text = buffer.prefix { $0 != 0 }
    return text.isEmpty ? nil : String(decoding: text, as: UTF8.self)
  }

  // MARK: Sending and receiving

  /// Sends one multipart message (one frame per element; at least one frame). libzmq
  /// delivers multipart messages atomically: all frames or none.
  ///
  /// - Parameter dontWait: do not block when the message cannot be queued (high-water mark
  ///   reached, or no peer for DEALER/PUSH/REQ).
  /// - Returns: true when queued; false on EAGAIN, i.e. with `dontWait` when it would block,
  ///   or when the socket's send timeout expired. Nothing was queued then.
  /// - Throws: `ZMQError` for anything else (e.g. EHOSTUNREACH from a ROUTER with
  ///   `routerMandatory` and an unknown routing id, ETERM after context shutdown).
  @discardableResult
  public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws -> Bool {
    precondition(!frames.isEmpty, "ZMQSocket.send: a message has at least one frame")
    let handle = rawHandle
    let last = frames.count - 1
    for index in frames.indices {
      var flags: Int32 = index < last ? ZMQ_SNDMORE : 0
      // Only the first frame can meet the high-water mark: once it is accepted, libzmq
      // accepts the rest of the message, so later frames are sent without DONTWAIT.
      if dontWait && index == 0 { flags |= ZMQ_DONTWAIT }
      while true {
        // zmq_send copies the bytes into a libzmq message.
        let rc = frames[index].withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
        if rc >= 0 { break }
        let code = zmq_errno()
        if code == EINTR { continue }
        if code == EAGAIN && index == 0 { return false }
        throw ZMQError(errno: code, operation: "zmq_send", endpoint: label)
      }
    }
    return true
  }

  /// Sends a single-frame message. See `send(_:dontWait:)`.
  @discardableResult
  public func send(frame: [UInt8], dontWait: Bool = false) throws -> Bool {
    try send([frame], dontWait: dontWait)
  }

  /// Receives one whole multipart message.
  ///
  /// - Parameter timeoutMs: -1 blocks (bounded only by `setReceiveTimeoutMs`, if set);
  ///   0 returns at once; a positive value waits at most that long for the first frame.
  /// - Returns: the frames, or nil when nothing arrived in time (EAGAIN).
  /// - Throws: `ZMQError` for anything else, e.g. ETERM after `ZMQContext.shutdown()`.
  ///
  /// Each frame is received into a `zmq_msg_t` and copied once into its `[UInt8]`.
  public func receive(timeoutMs: Int32 = -1) throws -> [[UInt8]]? {
    let handle = rawHandle
    let deadline: ContinuousClock.Instant? =
      timeoutMs > 0 ? .now + .milliseconds(Int64(timeoutMs)) : nil
    var frames: [[UInt8]] = []
    // First frame: wait as asked.
    while true {
      switch receiveFrame(handle, flags: timeoutMs >= 0 ? ZMQ_DONTWAIT : 0) {
      case .frame(let bytes, let more):
        frames.append(bytes)
        if !more { return frames }
      case .failed(let code) where code == EINTR:
        continue
      case .failed(let code) where code == EAGAIN:
        // Blocking mode: the socket's receive timeout expired. Zero timeout: nothing there.
        guard let deadline else { return nil }
        let remaining = milliseconds(until: deadline)
        if remaining <= 0 { return nil }
        _ = try waitReadable(handle, timeoutMs: remaining)
        continue
      case .failed(let code):
        throw ZMQError(errno: code, operation: "zmq_msg_recv", endpoint: label)
      }
      break
    }
    // Remaining frames of a multipart message are already here (atomic delivery).
    while true {
      switch receiveFrame(handle, flags: 0) {
      case .frame(let bytes, let more):
        frames.append(bytes)
        if !more { return frames }
      case .failed(let code) where code == EINTR:
        continue
      case .failed(let code):
        throw ZMQError(errno: code, operation: "zmq_msg_recv (continuation frame)", endpoint: label)
      }
    }
  }

  private enum FrameResult {
    case frame([UInt8], more: Bool)
    case failed(Int32)
  }

  private func receiveFrame(_ handle: UnsafeMutableRawPointer, flags: Int32) -> FrameResult {
    // A stable address for the zmq_msg_t from init to close.
    withUnsafeTemporaryAllocation(of: zmq_msg_t.self, capacity: 1) { buffer in
      let message = buffer.baseAddress!
      _ = zmq_msg_init(message)  // cannot fail
      defer { _ = zmq_msg_close(message) }
      if zmq_msg_recv(message, handle, flags) < 0 { return .failed(zmq_errno()) }
      let size = zmq_msg_size(message)
      let bytes = [UInt8](unsafeUninitializedCapacity: size) { destination, count in
        if size > 0, let source = zmq_msg_data(message) {
          destination.baseAddress!.initialize(
            from: source.assumingMemoryBound(to: UInt8.self), count: size)
        }
        count = size
      }
      return .frame(bytes, more: zmq_msg_more(message) != 0)
    }
  }

  /// Waits until the socket is readable or the timeout passes; retries on EINTR.
  private func waitReadable(_ handle: UnsafeMutableRawPointer, timeoutMs: Int32) throws -> Bool {
    try ZMQPoller.pollHandles([handle], timeoutMs: timeoutMs, label: label)[0]
  }

  // MARK: Options (setters throw; libzmq validates values)

  /// ZMQ_SNDHWM: messages queued per peer before send blocks or drops (0 = unlimited;
  /// libzmq default 1000). Set before bind/connect.
  public func setSendHighWaterMark(_ messages: Int32) throws {
    try setInt32(ZMQ_SNDHWM, messages, "ZMQ_SNDHWM")
  }

  /// ZMQ_RCVHWM: messages queued per peer on the receiving side (0 = unlimited).
  public func setReceiveHighWaterMark(_ messages: Int32) throws {
    try setInt32(ZMQ_RCVHWM, messages, "ZMQ_RCVHWM")
  }

  /// ZMQ_LINGER: how long unsent messages are kept after close (-1 = forever, which can
  /// hang context termination; the default here is 0).
  public func setLingerMs(_ ms: Int32) throws {
    try setInt32(ZMQ_LINGER, ms, "ZMQ_LINGER")
  }

  /// ZMQ_RCVTIMEO: bound for `receive()` with the default `timeoutMs: -1` (-1 = forever).
  public func setReceiveTimeoutMs(_ ms: Int32) throws {
    try setInt32(ZMQ_RCVTIMEO, ms, "ZMQ_RCVTIMEO")
  }

  /// ZMQ_SNDTIMEO: bound for a blocking `send` (-1 = forever); on expiry `send` returns false.
  public func setSendTimeoutMs(_ ms: Int32) throws {
    try setInt32(ZMQ_SNDTIMEO, ms, "ZMQ_SNDTIMEO")
  }

  /// ZMQ_ROUTING_ID: the identity a ROUTER peer sees for this socket (1...255 bytes).
  /// Set before connect.
  public func setRoutingId(_ id: [UInt8]) throws {
    precondition((1...255).contains(id.count), "ZMQSocket: routing id must be 1...255 bytes")
    try setBytes(ZMQ_ROUTING_ID, id, "ZMQ_ROUTING_ID")
  }

  /// ZMQ_ROUTER_MANDATORY: a ROUTER throws EHOSTUNREACH for unknown routing ids instead of
  /// silently dropping the message (and send blocks/returns false at the high-water mark).
  public func setRouterMandatory(_ on: Bool) throws {
    try setInt32(ZMQ_ROUTER_MANDATORY, on ? 1 : 0, "ZMQ_ROUTER_MANDATORY")
  }

  /// ZMQ_IMMEDIATE: queue messages only to completed connections (no queuing while a
  /// connect is still pending or broken).
  public func setImmediate(_ on: Bool) throws {
    try setInt32(ZMQ_IMMEDIATE, on ? 1 : 0, "ZMQ_IMMEDIATE")
  }

  /// ZMQ_MAXMSGSIZE: a peer that sends a larger frame is disconnected (the frame never
  /// arrives); -1 = no limit. Set before bind/connect.
  public func setMaxMessageBytes(_ bytes: Int64) throws {
    try setInt64(ZMQ_MAXMSGSIZE, bytes, "ZMQ_MAXMSGSIZE")
  }

  /// ZMQ_SUBSCRIBE (SUB/XSUB): receive messages whose first frame starts with `prefix`
  /// (an empty prefix subscribes to everything).
  public func subscribe(_ prefix: [UInt8]) throws {
    try setBytes(ZMQ_SUBSCRIBE, prefix, "ZMQ_SUBSCRIBE")
  }

  /// ZMQ_UNSUBSCRIBE: removes one earlier `subscribe` of the same prefix.
  public func unsubscribe(_ prefix: [UInt8]) throws {
    try setBytes(ZMQ_UNSUBSCRIBE, prefix, "ZMQ_UNSUBSCRIBE")
  }

  /// ZMQ_TCP_KEEPALIVE (+ _IDLE, _INTVL, _CNT when given): OS-level TCP keepalive.
  public func setTcpKeepalive(
    _ on: Bool, idleSeconds: Int32? = nil, intervalSeconds: Int32? = nil, probes: Int32? = nil
  ) throws {
    try setInt32(ZMQ_TCP_KEEPALIVE, on ? 1 : 0, "ZMQ_TCP_KEEPALIVE")
    if let idleSeconds { try setInt32(ZMQ_TCP_KEEPALIVE_IDLE, idleSeconds, "ZMQ_TCP_KEEPALIVE_IDLE") }
    if let intervalSeconds {
      try setInt32(ZMQ_TCP_KEEPALIVE_INTVL, intervalSeconds, "ZMQ_TCP_KEEPALIVE_INTVL")
    }
    if let probes { try setInt32(ZMQ_TCP_KEEPALIVE_CNT, probes, "ZMQ_TCP_KEEPALIVE_CNT") }
  }

  /// ZMTP heartbeats (ZMQ_HEARTBEAT_IVL, _TIMEOUT, _TTL): ping every `intervalMs`; drop the
  /// connection when no traffic arrives for `timeoutMs` (libzmq default: the interval);
  /// `ttlMs` asks the peer to drop us after that long without traffic (100 ms resolution).
  public func setHeartbeat(intervalMs: Int32, timeoutMs: Int32? = nil, ttlMs: Int32? = nil) throws {
    try setInt32(ZMQ_HEARTBEAT_IVL, intervalMs, "ZMQ_HEARTBEAT_IVL")
    if let timeoutMs { try setInt32(ZMQ_HEARTBEAT_TIMEOUT, timeoutMs, "ZMQ_HEARTBEAT_TIMEOUT") }
    if let ttlMs { try setInt32(ZMQ_HEARTBEAT_TTL, ttlMs, "ZMQ_HEARTBEAT_TTL") }
  }

  /// ZMQ_RECONNECT_IVL / ZMQ_RECONNECT_IVL_MAX: reconnect pacing for connecting sockets
  /// (libzmq default 100 ms, no backoff).
  public func setReconnectInterval(ms: Int32, maxMs: Int32? = nil) throws {
    try setInt32(ZMQ_RECONNECT_IVL, ms, "ZMQ_RECONNECT_IVL")
    if let maxMs { try setInt32(ZMQ_RECONNECT_IVL_MAX, maxMs, "ZMQ_RECONNECT_IVL_MAX") }
  }

  /// The ZAP domain CURVE servers use unless told otherwise (czmq's convention).
  public static let defaultZapDomain = "global"

  /// Makes this socket a CURVE server (ZMQ_CURVE_SERVER + ZMQ_CURVE_SECRETKEY + ZMQ_ZAP_DOMAIN).
  /// Call before bind. Clients are authenticated by a running `ZAPAuthenticator` in the
  /// same context.
  ///
  /// - Parameters:
  ///   - requireAuthenticator: fail closed. By default libzmq admits any client that knows
  ///     the server's public key whenever no ZAP handler is bound (the "Stonehouse"
  ///     pattern); with true (the default here) the socket also sets
  ///     ZMQ_ZAP_ENFORCE_DOMAIN, so handshakes fail while no authenticator runs. Pass false
  ///     for encryption without mandatory client authentication.
  ///   - zapDomain: passed to the authenticator with each request. With
  ///     `requireAuthenticator` it must not be empty: libzmq skips ZAP entirely for an
  ///     enforcing socket with an empty domain.
  public func asCurveServer(
    secretKey: String, requireAuthenticator: Bool = true,
    zapDomain: String = ZMQSocket.defaultZapDomain
  ) throws {
    precondition(
      !requireAuthenticator || !zapDomain.isEmpty,
      "asCurveServer: requireAuthenticator needs a non-empty ZAP domain")
    try requireCurve()
    try requireKey(secretKey, "CURVE secret key")
    try setInt32(ZMQ_CURVE_SERVER, 1, "ZMQ_CURVE_SERVER")
    try setKey(ZMQ_CURVE_SECRETKEY, secretKey, "ZMQ_CURVE_SECRETKEY")
    if !zapDomain.isEmpty { try setZapDomain(zapDomain) }
    if requireAuthenticator { try setZapEnforceDomain(true) }
  }

  /// ZMQ_ZAP_ENFORCE_DOMAIN (a draft option in zmq.h, accepted by Debian's libzmq 4.3.4):
  /// with true and a non-empty ZAP domain, a missing ZAP handler makes security handshakes
  /// fail instead of pass; with true and an empty domain, ZAP is skipped altogether.
  public func setZapEnforceDomain(_ on: Bool) throws {
    try setInt32(zmqZapEnforceDomain, on ? 1 : 0, "ZMQ_ZAP_ENFORCE_DOMAIN")
  }

  /// Makes this socket a CURVE client of the server with `serverPublicKey`, using its own
  /// long-term keypair. Call before connect. Keys are 40-character Z85 text.
  public func asCurveClient(serverPublicKey: String, publicKey: String, secretKey: String) throws {
    try requireCurve()
    try requireKey(serverPublicKey, "CURVE server public key")
    try requireKey(publicKey, "CURVE public key")
    try requireKey(secretKey, "CURVE secret key")
    try setKey(ZMQ_CURVE_SERVERKEY, serverPublicKey, "ZMQ_CURVE_SERVERKEY")
    try setKey(ZMQ_CURVE_PUBLICKEY, publicKey, "ZMQ_CURVE_PUBLICKEY")
    try setKey(ZMQ_CURVE_SECRETKEY, secretKey, "ZMQ_CURVE_SECRETKEY")
  }

  /// ZMQ_ZAP_DOMAIN: the domain a server socket passes to the ZAP handler (and, for the
  /// NULL mechanism, what turns ZAP on at all).
  public func setZapDomain(_ domain: String) throws {
    try setBytes(ZMQ_ZAP_DOMAIN, Array(domain.utf8), "ZMQ_ZAP_DOMAIN")
  }

  // MARK: Option plumbing

  private func setInt32(_ option: Int32, _ value: Int32, _ name: String) throws {
    var value = value
    if zmq_setsockopt(rawHandle, option, &value, MemoryLayout<Int32>.size) != 0 {
      throw ZMQError.last("zmq_setsockopt(\(name) = \(value))", label)
    }
  }

  private func setInt64(_ option: Int32, _ value: Int64, _ name: String) throws {
    var value = value
    if zmq_setsockopt(rawHandle, option, &value, MemoryLayout<Int64>.size) != 0 {
      throw ZMQError.last("zmq_setsockopt(\(name) = \(value))", label)
    }
  }

  private func setBytes(_ option: Int32, _ bytes: [UInt8], _ name: String) throws {
    let handle = rawHandle
    let rc = bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
    if rc != 0 { throw ZMQError.last("zmq_setsockopt(\(name))", label) }
  }

  /// Keys go in as their 32 binary bytes, so no key text is kept in a C string.
  private func setKey(_ option: Int32, _ z85: String, _ name: String) throws {
    guard var key = ZMQCurve.decode(z85) else {
      throw ZMQError(errno: EINVAL, operation: "zmq_setsockopt(\(name)): not a Z85 key", endpoint: label)
    }
    defer { key.withUnsafeMutableBytes { _ = memset($0.baseAddress!, 0, $0.count) } }
    try setBytes(option, key, name)
  }

  private func requireKey(_ z85: String, _ what: String) throws {
    if !ZMQCurve.isValidKey(z85) {
      throw ZMQError(errno: EINVAL, operation: "\(what) is not a 40-character Z85 key", endpoint: label)
    }
  }

  private func requireCurve() throws {
    if zmq_has("curve") == 0 {
      throw ZMQError(errno: ENOTSUP, operation: "CURVE (libzmq built without it)", endpoint: label)
    }
  }
}

/// Not Sendable: a socket belongs to one thread. See `ZMQSocketHandoff`.
@available(*, unavailable)
extension ZMQSocket: Sendable {}

/// Moves a `ZMQSocket` to another thread, once.
///
/// libzmq allows a socket to migrate between threads when there is a full memory barrier
/// in between; the atomic exchange in `take()` (plus whatever starts the other thread)
/// provides it. The `sending` parameter makes the compiler reject any later use of the
/// socket by the thread that boxed it, and `take()` may be called only once.
///
///     let handoff = ZMQSocketHandoff(socket)
///     Thread { let socket = handoff.take(); ... }.start()
public final class ZMQSocketHandoff: @unchecked Sendable {
  private let socket: ZMQSocket
  private let taken = Atomic<Bool>(false)

  public init(_ socket: sending ZMQSocket) {
    self.socket = socket
  }

  /// The socket, for the thread that now owns it. A second call stops the process.
  public func take() -> ZMQSocket {
    let (exchanged, _) = taken.compareExchange(
      expected: false, desired: true, ordering: .acquiringAndReleasing)
    precondition(exchanged, "ZMQSocketHandoff.take() called twice")
    return socket
  }
}

/// ZMQ_ZAP_ENFORCE_DOMAIN is declared only under ZMQ_BUILD_DRAFT_API in zmq.h, so it does
/// not import into Swift; the value is from zmq.h 4.3.4.
let zmqZapEnforceDomain: Int32 = 93

/// Milliseconds from now until `deadline`, clamped to Int32; <= 0 when past.
func milliseconds(until deadline: ContinuousClock.Instant) -> Int32 {
  let (seconds, attoseconds) = (deadline - .now).components
  let ms = seconds * 1000 + attoseconds / 1_000_000_000_000_000
  return Int32(clamping: ms)
}
