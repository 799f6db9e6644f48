// Structured logs: one logfmt line per event (`time=… level=… node=… msg="…" key=value`),
// written to `<data>/<node>.log` with size-bounded rotation, or to standard error for
// journald. Wall-clock time appears only here, never in state or outputs.
import Foundation
import Logging
import Synchronization
import TallyCluster
import TallyEngine

#if canImport(Glibc)
  import Glibc
#endif

/// Where log lines go. `file` rotates: when the current file would pass `bytesMax`,
/// `<path>` becomes `<path>.1` (older ones shift up to `<path>.<filesKept>`, the oldest
/// is deleted) and a new `<path>` is opened. Standard output and error are pointed at
/// the current file too, so that a crash message of the runtime lands beside the lines.
public final class LogSink: Sendable {
  public enum Target: Sendable, Equatable {
    case stderr
    case file(path: String, bytesMax: Int, filesKept: Int)
  }

  struct State {
    var fd: Int32
    var bytes: Int
  }

  public let target: Target
  /// Point standard output and error at the current file (a node process; not tests).
  let capturesStandardStreams: Bool
  private let state: Mutex<State>

  public init(_ target: Target, capturesStandardStreams: Bool = false) throws {
    self.target = target
    self.capturesStandardStreams = capturesStandardStreams
    switch target {
    case .stderr:
      state = Mutex(State(fd: 2, bytes: 0))
    case .file(let path, _, _):
      let fd = try Self.open(path, capture: capturesStandardStreams)
      state = Mutex(State(fd: fd, bytes: Self.size(fd)))
    }
  }

  static func open(_ path: String, capture: Bool) throws -> Int32 {
    let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw LogSinkError("cannot open \(path): errno \(errno)") }
    // Runtime crash messages (precondition failures) go to standard error: keep them here.
    if capture {
      dup2(fd, 1)
      dup2(fd, 2)
    }
    return fd
  }

  static func size(_ fd: Int32) -> Int {
    var st = stat()
    return fstat(fd, &st) == 0 ? Int(st.st_size) : 0
  }

  public func write(_ line: [UInt8]) {
    state.withLock { s in
      if case .file(let path, let bytesMax, let filesKept) = target, s.bytes > 0,
        s.bytes + line.count > bytesMax
      {
        rotate(path: path, filesKept: filesKept, state: &s)
      }
      // A log line that cannot be written is dropped: logging never stops the node.
      _ = FileIO.writeAll(s.fd, line)
      s.bytes += line.count
    }
  }

  private func rotate(path: String, filesKept: Int, state s: inout State) {
    let fm = FileManager.default
    try? fm.removeItem(atPath: "\(path).\(filesKept)")
    if filesKept > 1 {
      for i in stride(from: filesKept - 1, through: 1, by: -1) where fm.fileExists(atPath: "\(path).\(i)") {
        try? fm.moveItem(atPath: "\(path).\(i)", toPath: "\(path).\(i + 1)")
      }
    }
    try? fm.moveItem(atPath: path, toPath: "\(path).1")
    // When a new file cannot be opened, lines go on to the renamed one.
    guard let fd = try? Self.open(path, capture: capturesStandardStreams) else { return }
    close(s.fd)
    s.fd = fd
    s.bytes = 0
  }
}

public struct LogSinkError: Error, CustomStringConvertible {
  public var description: String
  init(_ description: String) { self.description = description }
}

/// A swift-log handler that writes one logfmt line per event to a `LogSink`.
public struct LogfmtLogHandler: LogHandler {
  public var metadata: Logger.Metadata = [:]
  public var metadataProvider: Logger.MetadataProvider? = nil
  public var logLevel: Logger.Level = .info
  let label: String
  let sink: LogSink

  public init(label: String, sink: LogSink) {
    self.label = label
    self.sink = sink
  }

  public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  public func log(event: LogEvent) {
    var merged = metadata
    if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
    if let extra = event.metadata { merged.merge(extra) { $1 } }
    sink.write(Array(Self.format(level: event.level, message: "\(event.message)", metadata: merged).utf8))
  }

  /// `time=… level=… node=… msg="…"` then the other metadata keys in sorted order
  /// (a Dictionary's order would differ between runs).
  public static func format(
    level: Logger.Level, message: String, metadata: Logger.Metadata, now: timespec = Self.now()
  ) -> String {
    var line = "time=" + timestamp(now) + " level=" + level.rawValue
    if let node = metadata["node"] { line += " node=" + value("\(node)") }
    line += " msg=" + quoted(message)
    for key in metadata.keys.sorted() where key != "node" {
      line += " " + key + "=" + value("\(metadata[key]!)")
    }
    return line + "\n"
  }

  public static func now() -> timespec {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return ts
  }

  /// RFC 3339 in UTC with milliseconds, without a formatter object per line.
  static func timestamp(_ ts: timespec) -> String {
    var seconds = ts.tv_sec
    var t = tm()
    gmtime_r(&seconds, &t)
    func pad(_ v: Int32, _ width: Int) -> String {
      let s = String(v)
      return String(repeating: "0", count: max(0, width - s.count)) + s
    }
    return pad(t.tm_year + 1900, 4) + "-" + pad(t.tm_mon + 1, 2) + "-" + pad(t.tm_mday, 2) + "T"
      + pad(t.tm_hour, 2) + ":" + pad(t.tm_min, 2) + ":" + pad(t.tm_sec, 2) + "."
      + pad(Int32(ts.tv_nsec / 1_000_000), 3) + "Z"
  }

  /// A bare value when it is safe in logfmt, else quoted.
  static func value(_ s: String) -> String {
    let bare =
      !s.isEmpty
      && s.unicodeScalars.allSatisfy { $0.value > 0x20 && $0 != "\"" && $0 != "=" && $0.value < 0x7F }
    return bare ? s : quoted(s)
  }

  /// Quoted and escaped as a JSON string (one escaping rule for logs and status JSON).
  static func quoted(_ s: String) -> String { JSON.quote(s) }
}

extension NodeLogging {
  /// Points swift-log at `sink` for the whole process (once, before any node logger is made).
  public static func bootstrap(sink: LogSink) {
    LoggingSystem.bootstrap { label in LogfmtLogHandler(label: label, sink: sink) }
  }
}

/// What a node's logging needs from its config: where and how much.
public enum NodeLogging {
  /// The sink for `node` under `data` as the config's `[logs]` says.
  public static func sink(node: String, data: String, target: String, bytesMax: Int, filesKept: Int) throws
    -> LogSink
  {
    if target == "stderr" { return try LogSink(.stderr) }
    try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
    return try LogSink(
      .file(path: data + "/" + node + ".log", bytesMax: bytesMax, filesKept: filesKept),
      capturesStandardStreams: true)
  }
}
