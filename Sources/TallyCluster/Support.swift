// Logging and a minimal JSON writer for status output (no Codable on any hot path).
import Foundation

/// Log lines with a timestamp and level on standard error (nodes redirect it to
/// `<data>/<node>.log`). Wall-clock time appears only in logs, never in state.
public struct Logger: Sendable {
  public var node: String
  public init(node: String) { self.node = node }

  func line(_ level: String, _ text: String) {
    let stamp = ISO8601DateFormatter().string(from: Date())
    FileHandle.standardError.write(Data("\(stamp) \(level) [\(node)] \(text)\n".utf8))
  }
  public func info(_ text: String) { line("INFO", text) }
  public func warn(_ text: String) { line("WARN", text) }
  public func error(_ text: String) { line("ERROR", text) }
}

public indirect enum JSON {
  case string(String)
  case int(Int64)
  case bool(Bool)
  case null
  case array([JSON])
  case object([(String, JSON)])

  public var text: String {
    switch self {
    case .string(let s): return JSON.quote(s)
    case .int(let i): return String(i)
    case .bool(let b): return b ? "true" : "false"
    case .null: return "null"
    case .array(let a): return "[" + a.map(\.text).joined(separator: ",") + "]"
    case .object(let o):
      return "{" + o.map { JSON.quote($0.0) + ":" + $0.1.text }.joined(separator: ",") + "}"
    }
  }

  public static func render(_ fields: [(String, JSON)]) -> String { JSON.object(fields).text }

  static func quote(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
      switch u {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      default:
        if u.value < 0x20 {
          out += String(format: "\\u%04x", u.value)
        } else {
          out.unicodeScalars.append(u)
        }
      }
    }
    return out + "\""
  }
}
