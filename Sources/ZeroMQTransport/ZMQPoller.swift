import CZeroMQ

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Waits on several sockets at once (zmq_poll). All sockets must be owned by the calling
/// thread.
public enum ZMQPoller {
  /// Waits until at least one socket has a message to receive, or the timeout passes
  /// (-1 = forever, 0 = just check). Retries on EINTR with the remaining time.
  /// - Returns: one flag per socket, in order: true when `receive` will find a message.
  public static func poll(_ sockets: [ZMQSocket], timeoutMs: Int32) throws -> [Bool] {
    let label = sockets.map(\.label).joined(separator: "; ")
    return try pollHandles(sockets.map(\.rawHandle), timeoutMs: timeoutMs, label: label)
  }

  static func pollHandles(
    _ handles: [UnsafeMutableRawPointer], timeoutMs: Int32, label: String
  ) throws -> [Bool] {
    var items = handles.map {
      zmq_pollitem_t(socket: $0, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
    }
    let deadline: ContinuousClock.Instant? =
      timeoutMs > 0 ? .now + .milliseconds(Int64(timeoutMs)) : nil
    var wait = timeoutMs
    while true {
      let rc = items.withUnsafeMutableBufferPointer {
        zmq_poll($0.baseAddress, Int32($0.count), Int(wait))
      }
      if rc >= 0 { break }
      let code = zmq_errno()
      guard code == EINTR else { throw ZMQError(errno: code, operation: "zmq_poll", endpoint: label) }
      if let deadline {
        wait = max(0, milliseconds(until: deadline))
      }
    }
    return items.map { ($0.revents & Int16(ZMQ_POLLIN)) != 0 }
  }
}
