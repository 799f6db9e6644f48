// `tally dashboard` (docs/OPERATIONS.md, "Dashboard"): one self-contained HTML page
// served by Hummingbird, updated live by server-sent events. The hub holds the
// business view (BusinessView, fed by the voted stream), the nodes' status (as
// `cluster status --json` gathers it) and the latest voter alerts; the server sends
// each SSE client the hub's JSON when it changed, at most `eventIntervalMs` apart.
// The business metrics from voted data are served at /metrics.
import Foundation
import Hummingbird
import HummingbirdCore
import KernelAPI
import Logging
import Synchronization

public final class DashboardHub: Sendable {
  /// SSE clients served at once; more get 503.
  public static let clientsMax = 16
  /// At most one event per client this often (ms): the event rate is bounded by it.
  public static let eventIntervalMs = 500
  /// A comment line keeps an idle SSE connection open through proxies this often (ms).
  public static let keepaliveMs = 15_000
  /// Alert lines kept (the latest ones; the voter's alerts.jsonl holds them all).
  public static let alertsKeptMax = 20
  /// Participant rows sent to the page (the metrics have all).
  public static let participantsShownMax = 200

  struct State {
    var view = BusinessView()
    /// The row keys of the voted stream (docs/EFFECTS.md): seeded with the reference
    /// data's snapshot, then kept by every batch applied.
    var decoder = EffectDecoder()
    var status = "null"
    var alerts: [String] = []
    var alertsTotal = 0
    var streamError = ""
    var version = 0
    var cachedVersion = -1
    var cachedJSON = ""
  }

  let state = Mutex(State())
  let clients = Atomic<Int>(0)
  let started = ContinuousClock.now

  public init() {}

  var seconds: Double {
    let d = ContinuousClock.now - started
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
  }

  /// The first seq not yet applied.
  public var next: Int64 { state.withLock { $0.view.lastSeq + 1 } }

  /// Learns the row keys of the state the stream starts from (the seq-0 snapshot of the
  /// reference data), without showing its rows: the view counts from seq 1.
  public func seed(snapshot: [UInt8]) throws {
    try state.withLock { s throws(DecodeError) in try s.decoder.learnKeys(snapshot) }
  }

  /// Without the reference data: rows the stream did not name are shown by id
  /// (`participant#3`), from a lenient decoder.
  public func nameUnknownRowsById() {
    state.withLock { $0.decoder = EffectDecoder(lenient: true) }
  }

  /// Decodes and applies a batch of the voted stream, in order (events below `next`,
  /// already applied, are skipped: their key records are known).
  public func apply(records: [UInt8]) throws {
    try state.withLock { s throws(DecodeError) in
      let fresh = try EffectDecoder.records(of: records, seqs: (s.view.lastSeq + 1)...Int64.max)
      guard !fresh.isEmpty else { return }
      s.view.apply(try s.decoder.decode(fresh))
      s.version += 1
    }
  }

  /// Samples the rates (call about once a second).
  public func sample() {
    let now = seconds
    state.withLock { s in
      s.view.sample(at: now)
      s.version += 1
    }
  }

  /// The technical view: `status` is `cluster status --json`'s object; `alerts` the
  /// voter's latest alerts.jsonl lines (at most `alertsKeptMax` are kept).
  public func setStatus(_ status: String, alerts: [String], alertsTotal: Int) {
    state.withLock { s in
      s.status = status
      s.alerts = Array(alerts.suffix(Self.alertsKeptMax))
      s.alertsTotal = alertsTotal
      s.version += 1
    }
  }

  public func setStreamError(_ text: String) {
    state.withLock { s in
      guard s.streamError != text else { return }
      s.streamError = text
      s.version += 1
    }
  }

  /// The page's JSON and its version (recomputed only when something changed).
  public func snapshot() -> (version: Int, json: String) {
    state.withLock { s in
      if s.cachedVersion != s.version {
        let alerts = s.alerts.map { line in
          line.hasPrefix("{") && line.hasSuffix("}") ? line : BusinessView.quote(line)
        }
        s.cachedJSON =
          "{\"business\":\(s.view.json(participantsMax: Self.participantsShownMax)),\"status\":\(s.status)"
          + ",\"alerts\":[\(alerts.joined(separator: ","))],\"alerts_total\":\(s.alertsTotal)"
          + ",\"stream_error\":\(BusinessView.quote(s.streamError))}"
        s.cachedVersion = s.version
      }
      return (s.version, s.cachedJSON)
    }
  }

  public func metrics() -> String {
    var text = state.withLock { $0.view.prometheus() }
    text += "# HELP tally_dashboard_sse_clients Server-sent-event clients connected to the dashboard.\n"
    text += "# TYPE tally_dashboard_sse_clients gauge\n"
    text += "tally_dashboard_sse_clients \(clients.load(ordering: .relaxed))\n"
    return text
  }

  func admit() -> Bool {
    while true {
      let n = clients.load(ordering: .relaxed)
      if n >= Self.clientsMax { return false }
      if clients.compareExchange(expected: n, desired: n + 1, ordering: .relaxed).exchanged { return true }
    }
  }

  func release() { clients.subtract(1, ordering: .relaxed) }

  /// The last `max` lines of a JSON-lines file (from its last 256 KiB); none when it is missing.
  public static func tailLines(_ path: String, max: Int) -> [String] {
    guard let h = FileHandle(forReadingAtPath: path) else { return [] }
    defer { try? h.close() }
    let size = (try? h.seekToEnd()) ?? 0
    let from = size > 262_144 ? size - 262_144 : 0
    try? h.seek(toOffset: from)
    let data = (try? h.readToEnd()) ?? Data()
    var lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    if from > 0 && !lines.isEmpty { lines.removeFirst() }  // a partial line
    return Array(lines.suffix(max))
  }
}

public enum DashboardServer {
  /// Concurrent HTTP connections (SSE clients, page loads, scrapes).
  static let connectionsMax = 64

  public static func run(hub: DashboardHub, host: String, port: Int) async throws {
    let router = Router()
    router.get("/") { _, _ -> Response in
      Response(
        status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
        body: ResponseBody(byteBuffer: ByteBuffer(string: DashboardPage.html)))
    }
    router.get("state") { _, _ -> Response in
      Response(
        status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
        body: ResponseBody(byteBuffer: ByteBuffer(string: hub.snapshot().json)))
    }
    router.get("metrics") { _, _ -> Response in
      Response(
        status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
        body: ResponseBody(byteBuffer: ByteBuffer(string: hub.metrics())))
    }
    router.get("health") { _, _ -> Response in
      Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: "ok\n")))
    }
    router.get("events") { _, _ -> Response in
      guard hub.admit() else {
        return Response(
          status: .serviceUnavailable, headers: [.contentType: "text/plain; charset=utf-8"],
          body: ResponseBody(
            byteBuffer: ByteBuffer(string: "too many dashboard clients (\(DashboardHub.clientsMax))\n")))
      }
      return Response(
        status: .ok,
        headers: [.contentType: "text/event-stream", .cacheControl: "no-store"],
        body: ResponseBody { writer in
          defer { hub.release() }
          var sent = -1
          var quietMs = 0
          while !Task.isCancelled {
            let (version, json) = hub.snapshot()
            if version != sent {
              try await writer.write(ByteBuffer(string: "data: \(json)\n\n"))
              sent = version
              quietMs = 0
            } else if quietMs >= DashboardHub.keepaliveMs {
              try await writer.write(ByteBuffer(string: ": keepalive\n\n"))
              quietMs = 0
            }
            try await Task.sleep(for: .milliseconds(DashboardHub.eventIntervalMs))
            quietMs += DashboardHub.eventIntervalMs
          }
          try await writer.finish(nil)
        })
    }
    var httpLogger = Logger(label: "tally-dashboard")
    httpLogger.logLevel = .warning
    let app = Application(
      router: router,
      configuration: .init(
        address: .hostname(host, port: port), serverName: "tally-dashboard",
        availableConnectionsDelegate: MaximumAvailableConnections(connectionsMax)),
      logger: httpLogger)
    try await app.run()
  }
}
