import CZeroMQ
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Restricts CURVE servers to known client public keys.
///
/// Runs a ZAP handler (RFC 27: a REP socket bound to `inproc://zeromq.zap.01`) on its own
/// thread in the given context. Every CURVE server socket of that context then asks it
/// about each connecting client; it allows only the listed client keys (and, when
/// `domain` is given, only that ZAP domain), refuses everything else (including the NULL
/// and PLAIN mechanisms) with status 400, and reports every refusal through `onRefusal`
/// so the caller can log it.
///
/// Important: libzmq admits every client with the right server key when no ZAP handler is
/// bound, unless the server socket sets ZMQ_ZAP_ENFORCE_DOMAIN and a ZAP domain, which
/// `ZMQSocket.asCurveServer(secretKey:)` does by default (then handshakes fail while no
/// authenticator runs). Start the authenticator before binding CURVE servers, and keep it
/// running as long as they accept connections. Only one authenticator can run per context (the
/// inproc endpoint is unique); a second `start()` in the same context throws EADDRINUSE.
///
/// Thread safety: all methods may be called from any thread (state is behind a mutex;
/// the handler's socket lives only on the handler thread). `onRefusal` and `onError` run
/// on the handler thread and should return quickly.
public final class ZAPAuthenticator: @unchecked Sendable {
  /// One refused connection attempt.
  public struct Refusal: Sendable, CustomStringConvertible {
    /// The ZAP domain of the server socket ("" when none was set).
    public var domain: String
    /// The client's IP address as libzmq reports it.
    public var address: String
    /// "CURVE", "NULL", "PLAIN", ...
    public var mechanism: String
    /// The client's CURVE public key (Z85), when the mechanism is CURVE.
    public var clientPublicKey: String?
    public var reason: String

    public var description: String {
      "ZAP refused \(mechanism) client \(clientPublicKey ?? "-") from \(address.isEmpty ? "?" : address)"
        + " (domain \"\(domain)\"): \(reason)"
    }
  }

  /// The endpoint libzmq sends ZAP requests to (fixed by RFC 27).
  public static let endpoint = "inproc://zeromq.zap.01"

  private let context: ZMQContext
  private let shared: Shared
  private let worker = Mutex<pthread_t?>(nil)

  /// - Parameters:
  ///   - allowedClientKeys: client CURVE public keys (Z85) to admit; more can be added.
  ///   - domain: when set, requests from server sockets with another ZAP domain are refused.
  ///   - onRefusal: called for every refused attempt, on the handler thread.
  ///   - onError: called if the handler thread stops on an unexpected libzmq error (after
  ///     which CURVE servers fail closed, or admit everyone if they opted out of
  ///     `requireAuthenticator`); not called for a normal stop/shutdown.
  /// - Throws: `ZMQError` (EINVAL) naming the first key that is not valid Z85.
  public init(
    context: ZMQContext,
    allowedClientKeys: some Sequence<String>,
    domain: String? = nil,
    onRefusal: @escaping @Sendable (Refusal) -> Void,
    onError: (@Sendable (ZMQError) -> Void)? = nil
  ) throws {
    var keys = Set<String>()
    for key in allowedClientKeys {
      guard ZMQCurve.isValidKey(key) else { throw Self.invalidKey(key) }
      keys.insert(key)
    }
    self.context = context
    self.shared = Shared(keys: keys, domain: domain, onRefusal: onRefusal, onError: onError)
  }

  deinit { stop() }

  /// Admits another client key from now on.
  public func allow(_ clientPublicKey: String) throws {
    guard ZMQCurve.isValidKey(clientPublicKey) else { throw Self.invalidKey(clientPublicKey) }
    _ = shared.keys.withLock { $0.insert(clientPublicKey) }
  }

  /// Stops admitting a client key (existing connections stay up).
  public func revoke(_ clientPublicKey: String) {
    _ = shared.keys.withLock { $0.remove(clientPublicKey) }
  }

  public var allowedClientKeys: Set<String> { shared.keys.withLock { $0 } }

  public var isRunning: Bool { worker.withLock { $0 != nil } }

  /// Binds the ZAP endpoint (synchronously: when this returns, CURVE handshakes in the
  /// context are checked) and starts the handler thread. Does nothing when already running.
  public func start() throws {
    try worker.withLock { worker in
      if worker != nil { return }
      let socket = try ZMQSocket(context: context, type: .rep)
      try socket.bind(Self.endpoint)
      shared.stopRequested.store(false, ordering: .releasing)
      let start = ThreadStart(handoff: ZMQSocketHandoff(socket), shared: shared)
      let unmanaged = Unmanaged.passRetained(start)
      var thread = pthread_t()
      let rc = pthread_create(&thread, nil, zapThreadMain, unmanaged.toOpaque())
      if rc != 0 {
        // The socket is still in the handoff; dropping it closes it.
        unmanaged.release()
        throw ZMQError(errno: rc, operation: "pthread_create (ZAP handler)")
      }
      worker = thread
    }
  }

  /// Stops the handler thread and unbinds the ZAP endpoint (waits at most one poll tick,
  /// about 50 ms). Idempotent; also done by deinit. After stop, CURVE servers made with
  /// `requireAuthenticator: true` refuse every client; those without admit every client.
  public func stop() {
    worker.withLock { worker in
      guard let thread = worker else { return }
      shared.stopRequested.store(true, ordering: .releasing)
      _ = pthread_join(thread, nil)
      worker = nil
    }
  }

  private static func invalidKey(_ key: String) -> ZMQError {
    ZMQError(
      errno: EINVAL, operation: "ZAPAuthenticator: client key \"\(key)\" is not a 40-character Z85 key")
  }

  // MARK: Handler

  /// What the handler thread shares with the authenticator (never the authenticator
  /// itself, so that deinit can run and stop the thread).
  final class Shared: Sendable {
    let keys: Mutex<Set<String>>
    let domain: String?
    let onRefusal: @Sendable (Refusal) -> Void
    let onError: (@Sendable (ZMQError) -> Void)?
    let stopRequested = Atomic<Bool>(false)

    init(
      keys: Set<String>, domain: String?, onRefusal: @escaping @Sendable (Refusal) -> Void,
      onError: (@Sendable (ZMQError) -> Void)?
    ) {
      self.keys = Mutex(keys)
      self.domain = domain
      self.onRefusal = onRefusal
      self.onError = onError
    }

    /// The handler loop; owns `socket`, closes it on exit.
    func run(_ socket: ZMQSocket) {
      defer { socket.close() }
      while !stopRequested.load(ordering: .acquiring) {
        do {
          guard let request = try socket.receive(timeoutMs: 50) else { continue }
          try socket.send(reply(to: request))
        } catch let error as ZMQError {
          if !error.isContextTerminated { onError?(error) }
          return
        } catch {
          return  // unreachable: the socket throws only ZMQError
        }
      }
    }

    /// ZAP request: version, request id, domain, address, identity, mechanism, credentials...
    /// ZAP reply: version, request id, status code, status text, user id, metadata.
    func reply(to request: [[UInt8]]) -> [[UInt8]] {
      func answer(_ code: String, _ text: String, user: String = "") -> [[UInt8]] {
        [
          Array("1.0".utf8), request.count > 1 ? request[1] : [], Array(code.utf8), Array(text.utf8),
          Array(user.utf8), [],
        ]
      }
      guard request.count >= 6, request[0] == Array("1.0".utf8) else {
        return answer("500", "malformed ZAP request")
      }
      let domain = String(decoding: request[2], as: UTF8.self)
      let address = String(decoding: request[3], as: UTF8.self)
      let mechanism = String(decoding: request[5], as: UTF8.self)
      var key: String? = nil
      if mechanism == "CURVE", request.count == 7 { key = ZMQCurve.encode(request[6]) }

      let reason: String
      if let expected = self.domain, expected != domain {
        reason = "ZAP domain not handled (expected \"\(expected)\")"
      } else if mechanism != "CURVE" {
        reason = "mechanism not allowed (CURVE only)"
      } else if let key {
        if keys.withLock({ $0.contains(key) }) { return answer("200", "OK", user: key) }
        reason = "client key not allowed"
      } else {
        reason = "malformed CURVE credentials"
      }
      onRefusal(
        Refusal(domain: domain, address: address, mechanism: mechanism, clientPublicKey: key, reason: reason))
      return answer("400", reason)
    }
  }

  final class ThreadStart {
    let handoff: ZMQSocketHandoff
    let shared: Shared
    init(handoff: ZMQSocketHandoff, shared: Shared) {
      self.handoff = handoff
      self.shared = shared
    }
  }
}

#if canImport(Darwin)
  private func zapThreadMain(_ raw: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
    let start = Unmanaged<ZAPAuthenticator.ThreadStart>.fromOpaque(raw).takeRetainedValue()
    start.shared.run(start.handoff.take())
    return nil
  }
#else
  private func zapThreadMain(_ raw: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let start = Unmanaged<ZAPAuthenticator.ThreadStart>.fromOpaque(raw!).takeRetainedValue()
    start.shared.run(start.handoff.take())
    return nil
  }
#endif
