import CZeroMQ

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// A libzmq context: the I/O threads and the inproc namespace that its sockets share.
///
/// Thread safety: libzmq contexts are thread-safe (zmq_ctx_new, zmq_socket, zmq_ctx_set,
/// zmq_ctx_shutdown and zmq_ctx_term may be called from any thread), and the handle
/// never changes after init, hence `@unchecked Sendable`. Sockets are not thread-safe;
/// see `ZMQSocket`.
///
/// Lifetime: every `ZMQSocket` keeps its context alive, so the context is terminated
/// (`zmq_ctx_term`) only once the last socket made from it is gone. Because sockets
/// default to linger 0, that termination never waits for unsent messages.
public final class ZMQContext: @unchecked Sendable {
  /// The `void *` returned by zmq_ctx_new; immutable, never nil.
  let handle: UnsafeMutableRawPointer

  /// - Parameter ioThreads: libzmq background I/O threads (1 is plenty for loopback
  ///   and for well under a gigabyte per second).
  public init(ioThreads: Int = 1) throws {
    precondition(ioThreads >= 0 && ioThreads <= 64, "ZMQContext: ioThreads out of range: \(ioThreads)")
    guard let handle = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new") }
    if zmq_ctx_set(handle, ZMQ_IO_THREADS, Int32(ioThreads)) != 0 {
      let error = ZMQError.last("zmq_ctx_set(ZMQ_IO_THREADS)")
      _ = zmq_ctx_term(handle)
      throw error
    }
    self.handle = handle
  }

  /// Shuts the context down (zmq_ctx_shutdown): every blocking call on its sockets, in any
  /// thread, returns at once with a `ZMQError` whose `isContextTerminated` is true, and no
  /// new socket can be made. Sockets must still be closed (closing is automatic on deinit).
  /// Safe to call from any thread, more than once.
  public func shutdown() {
    _ = zmq_ctx_shutdown(handle)
  }

  deinit {
    // zmq_ctx_term blocks until every socket is closed; all ZMQSocket objects hold a
    // strong reference to this context, so by now they are all gone.
    while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
  }
}
