// ZeroMQTransport: the one adapter that owns libzmq's C handles and unsafe pointers.
// Everything public here speaks Swift types only; no public signature mentions a pointer.
import CZeroMQ

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

// libzmq's own error numbers are `(ZMQ_HAUSNUMERO + n)` macros, which the Clang importer
// does not reliably bring into Swift; they are spelled out here (zmq.h, 4.3.4).
let zmqHausnumero: Int32 = 156_384_712
/// The context was terminated or shut down (ETERM).
let zmqETERM: Int32 = zmqHausnumero + 53
/// The operation cannot be performed in the socket's current state (EFSM).
let zmqEFSM: Int32 = zmqHausnumero + 51

/// A failed libzmq call. The description names the operation, the endpoint (when one is
/// involved) and libzmq's `zmq_strerror` text.
public struct ZMQError: Error, CustomStringConvertible, Sendable {
  /// The errno libzmq reported (POSIX errno or one of libzmq's own, such as ETERM).
  public var errno: Int32
  /// The libzmq call or adapter operation that failed, e.g. `zmq_bind`.
  public var operation: String
  /// The endpoint involved, e.g. `tcp://127.0.0.1:5555`, or for send/receive the
  /// socket's type and the endpoints it is bound or connected to.
  public var endpoint: String?
  public var description: String

  public init(errno: Int32, operation: String, endpoint: String? = nil) {
    self.errno = errno
    self.operation = operation
    self.endpoint = endpoint
    let text = String(cString: zmq_strerror(errno))
    if let endpoint {
      self.description = "\(operation) \(endpoint): \(text) (errno \(errno))"
    } else {
      self.description = "\(operation): \(text) (errno \(errno))"
    }
  }

  /// True when the context was shut down or terminated (ETERM): the socket is dead and
  /// should be closed; this is the normal way a blocked thread learns it must stop.
  public var isContextTerminated: Bool { errno == zmqETERM }
  /// True for EAGAIN (would block / timed out). The adapter turns EAGAIN into `nil` or
  /// `false` where the API allows, so callers rarely see it.
  public var isWouldBlock: Bool { errno == EAGAIN }
  /// True for EHOSTUNREACH: a ROUTER with `routerMandatory` was asked to send to an
  /// unknown routing id.
  public var isHostUnreachable: Bool { errno == EHOSTUNREACH }

  /// The error for the calling thread's current `zmq_errno()`.
  static func last(_ operation: String, _ endpoint: String? = nil) -> ZMQError {
    ZMQError(errno: zmq_errno(), operation: operation, endpoint: endpoint)
  }
}
