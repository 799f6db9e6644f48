// A node's lifecycle: its blocking loop runs on a thread of its own as a
// swift-service-lifecycle `Service`, beside the HTTP endpoints (OpsServer), in one
// `ServiceGroup` that maps SIGTERM and SIGINT to a graceful shutdown. The loop sees
// the request at its next iteration (every ≤100 ms, between batches), so the batch in
// hand is finished; the node's body then commits and returns, which closes its
// sockets. A watchdog bounds the whole stop (`[limits] shutdown_grace_ms`): past it the
// process exits 1. SIGKILL stays safe as before: nothing depends on a clean stop.
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TallyCluster
import TallyEngine

#if canImport(Glibc)
  import Glibc
#endif

/// What a node's loop shares with the HTTP endpoints and the signal handling.
public final class NodeProbe: Sendable {
  public let node: String
  public let role: String
  let stopRequested = Atomic<Bool>(false)
  let running = Atomic<Bool>(false)
  let lastTickNanos = Atomic<Int64>(0)
  let lastSampleNanos = Atomic<Int64>(0)
  /// A loop iteration older than this makes `/health` answer 503.
  public static let stallNanosMax: Int64 = 10_000_000_000
  /// Gauges are sampled from the node at most this often.
  public static let sampleNanosMin: Int64 = 250_000_000

  public init(node: String, role: String) {
    self.node = node
    self.role = role
  }

  static func monotonicNanos() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
  }

  /// The node loop's `stop` callback: records that the loop is alive, samples the
  /// node's gauges now and then (on the node's own thread), and says whether to stop.
  public func tick(sample: () -> Void) -> Bool {
    let now = Self.monotonicNanos()
    lastTickNanos.store(now, ordering: .relaxed)
    running.store(true, ordering: .relaxed)
    if now - lastSampleNanos.load(ordering: .relaxed) >= Self.sampleNanosMin {
      lastSampleNanos.store(now, ordering: .relaxed)
      sample()
    }
    return stopRequested.load(ordering: .relaxed)
  }

  public func requestStop() { stopRequested.store(true, ordering: .relaxed) }
  public var isStopping: Bool { stopRequested.load(ordering: .relaxed) }

  /// The loop has started (its sockets are bound) and is not stopping.
  public var isReady: Bool { running.load(ordering: .relaxed) && !isStopping }

  /// Still starting (opening state, loading reference data), or the loop ran an
  /// iteration recently. A loop stuck for `stallNanosMax` is unhealthy.
  public var isHealthy: Bool {
    !running.load(ordering: .relaxed)
      || Self.monotonicNanos() - lastTickNanos.load(ordering: .relaxed) < Self.stallNanosMax
  }
}

/// The node's blocking loop as a `Service`. `body` builds the node and runs it on a
/// dedicated thread (never on the cooperative pool, which the HTTP server shares);
/// the node's objects are made and used on that one thread only.
struct NodeLoopService: Service {
  let probe: NodeProbe
  let logger: Logger
  let graceMs: Int
  let body: @Sendable (NodeProbe) throws -> Void

  func run() async throws {
    let probe = self.probe
    let body = self.body
    let logger = self.logger
    let graceMs = self.graceMs
    try await withGracefulShutdownHandler {
      try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
          let thread = Thread {
            do {
              try body(probe)
              c.resume()
            } catch {
              c.resume(throwing: error)
            }
          }
          thread.name = "tally-\(probe.node)"
          thread.stackSize = 8 << 20
          thread.start()
        }
      } onCancel: {
        probe.requestStop()
      }
    } onGracefulShutdown: {
      logger.info("stopping: finishing the current batch, committing, closing sockets")
      probe.requestStop()
      Watchdog.start(graceMs: graceMs, logger: logger)
    }
  }
}

/// Ends the process with status 1 when a graceful stop takes longer than its bound.
enum Watchdog {
  static func start(graceMs: Int, logger: Logger) {
    let thread = Thread {
      Thread.sleep(forTimeInterval: Double(graceMs) / 1000)
      logger.error("did not stop within \(graceMs) ms; exiting")
      exit(1)
    }
    thread.start()
  }
}

/// Runs one node: logging to its sink, Prometheus metrics, the HTTP endpoints, and
/// the loop, until SIGTERM/SIGINT (exit 0 once committed) or an error (thrown).
public enum NodeRunner {
  public struct Options: Sendable {
    public var node: String
    public var role: String
    public var config: ClusterConfig
    public var data: String
    public init(node: String, role: String, config: ClusterConfig, data: String) {
      self.node = node
      self.role = role
      self.config = config
      self.data = data
    }
  }

  /// Sets up logging and metrics for the process; returns the node's logger. Call
  /// before the node and its metrics objects are made.
  public static func bootstrap(_ o: Options) throws -> Logger {
    let c = o.config
    let sink = try NodeLogging.sink(
      node: o.node, data: o.data, target: c.ops.logTarget, bytesMax: c.ops.logBytesMax,
      filesKept: c.ops.logFilesKept)
    NodeLogging.bootstrap(sink: sink)
    OpsMetrics.bootstrap()
    var log = Logger(node: o.node)
    if let i = c.replicaIndex(o.node), o.role == "replica" {
      log[metadataKey: "kernel"] = .string(c.replicas[i].kernel)
    }
    return log
  }

  /// Runs the loop and the endpoints until a signal stops them.
  public static func run(
    _ o: Options, logger: Logger, body: @escaping @Sendable (NodeProbe) throws -> Void
  ) async throws {
    let probe = NodeProbe(node: o.node, role: o.role)
    let loop = NodeLoopService(
      probe: probe, logger: logger, graceMs: o.config.ops.shutdownGraceMs, body: body)
    var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
      .init(
        service: loop, successTerminationBehavior: .gracefullyShutdownGroup,
        failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: "node")
    ]
    if o.config.ops.metricsEnabled {
      let address = o.config.metricsAddress(node: o.node)
      services.append(
        .init(
          service: OpsServer(probe: probe, host: address.host, port: address.port, logger: logger),
          successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore, serviceName: "http"))
    }
    var configuration = ServiceGroupConfiguration(
      services: services, gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [],
      logger: logger)
    configuration.maximumGracefulShutdownDuration = .milliseconds(o.config.ops.shutdownGraceMs)
    let group = ServiceGroup(configuration: configuration)
    logger.info("tally \(TallyVersion.string) \(o.role) \(o.node) starting")
    try await group.run()
    logger.info("stopped cleanly")
  }
}
