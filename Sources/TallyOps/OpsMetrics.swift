// The Prometheus backend for the nodes' swift-metrics (NodeMetrics in TallyCluster),
// and the text served at /metrics: the registry's families with their HELP lines,
// plus the process metrics computed at scrape time (memory, start time, build).
import Foundation
import Metrics
import Prometheus
import TallyCluster
import TallyEngine

public enum OpsMetrics {
  /// The registry every node metric lands in (one per process).
  public static let registry = PrometheusCollectorRegistry()
  /// Latency buckets from 0.1 ms to 10 s: batches and fsyncs are usually milliseconds.
  static let durationBuckets: [Duration] = [
    .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2_500),
    .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
    .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2_500), .seconds(5), .seconds(10),
  ]
  static let startSeconds = Date().timeIntervalSince1970

  /// Points swift-metrics at the registry (once per process, before metrics are made).
  public static func bootstrap() {
    var factory = PrometheusMetricsFactory(registry: registry)
    factory.defaultDurationHistogramBuckets = durationBuckets
    MetricsSystem.bootstrap(factory)
    _ = startSeconds
  }

  /// The Prometheus text exposition (format 0.0.4) for `node` of `role`.
  public static func exposition(node: String, role: String, ready: Bool) -> String {
    var text = withHelp(registry.emitToString())
    let labels = "{node=\"\(node)\",role=\"\(role)\",version=\"\(TallyVersion.string)\"}"
    text += "# HELP tally_build_info Tally version of this node (always 1).\n# TYPE tally_build_info gauge\n"
    text += "tally_build_info\(labels) 1\n"
    text += "# HELP tally_node_ready 1 when the node's loop runs and it is not stopping.\n"
    text += "# TYPE tally_node_ready gauge\ntally_node_ready \(ready ? 1 : 0)\n"
    text += "# HELP tally_process_resident_memory_bytes Resident memory of the node process.\n"
    text += "# TYPE tally_process_resident_memory_bytes gauge\n"
    text += "tally_process_resident_memory_bytes \(residentBytes())\n"
    text += "# HELP tally_process_start_time_seconds Start of the node process, seconds since the epoch.\n"
    text += "# TYPE tally_process_start_time_seconds gauge\n"
    text += "tally_process_start_time_seconds \(String(format: "%.3f", startSeconds))\n"
    return text
  }

  /// Adds a `# HELP` line before each family's `# TYPE` line (swift-metrics has no help text).
  static func withHelp(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count + 4096)
    for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
      if line.hasPrefix("# TYPE ") {
        let name = line.dropFirst(7).prefix { $0 != " " }
        if let help = MetricHelp.all.first(where: { $0.name == name })?.help {
          out += "# HELP \(name) \(help)\n"
        }
      }
      out += line + "\n"
    }
    return out
  }

  /// Resident set size from /proc/self/statm (pages × page size); 0 where it is absent.
  static func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
  }
}
