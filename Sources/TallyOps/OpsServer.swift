// The node's HTTP endpoints (Hummingbird): `/metrics` (Prometheus text format),
// `/health` (200 while the node's loop turns) and `/ready` (200 once its sockets are
// bound, until it starts to stop). A bind failure is logged and the node goes on:
// clearing does not depend on being watched (Prometheus will show the target down).
import Hummingbird
import HummingbirdCore
import Logging
import ServiceLifecycle

struct OpsServer: Service {
  /// Concurrent HTTP connections accepted (scrapers and probes are few).
  static let connectionsMax = 32

  let probe: NodeProbe
  let host: String
  let port: Int
  let logger: Logger

  func run() async throws {
    let router = Router()
    let probe = self.probe
    router.get("metrics") { _, _ -> Response in
      let text = OpsMetrics.exposition(node: probe.node, role: probe.role, ready: probe.isReady)
      return Response(
        status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
        body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
    router.get("health") { _, _ -> Response in
      Self.plain(probe.isHealthy ? .ok : .serviceUnavailable, probe.isHealthy ? "ok\n" : "stalled\n")
    }
    router.get("ready") { _, _ -> Response in
      Self.plain(probe.isReady ? .ok : .serviceUnavailable, probe.isReady ? "ready\n" : "not ready\n")
    }
    var httpLogger = logger
    httpLogger.logLevel = .warning
    let app = Application(
      router: router,
      configuration: .init(
        address: .hostname(host, port: port), serverName: "tally-\(probe.node)",
        availableConnectionsDelegate: MaximumAvailableConnections(Self.connectionsMax)),
      onServerRunning: { [logger, host, port] _ in
        logger.info("serving /metrics, /health, /ready on http://\(host):\(port)")
      },
      logger: httpLogger)
    do {
      try await app.run()
    } catch {
      logger.error("HTTP endpoints on \(host):\(port) stopped: \(error)")
    }
  }

  static func plain(_ status: HTTPResponse.Status, _ text: String) -> Response {
    Response(
      status: status, headers: [.contentType: "text/plain; charset=utf-8"],
      body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
  }
}
