// The nodes' logger (swift-log; the structured logfmt handler with rotation is in
// TallyOps) and a minimal JSON writer for status output (no Codable on any hot path).
import Foundation
@_exported import Logging

extension Logger {
  /// A node's logger: every line carries `node=<name>`. Wall-clock time appears only
  /// in logs, never in state.
  public init(node: String) {
    self.init(label: "tally." + node)
    self[metadataKey: "node"] = .string(node)
  }

  /// `warning`, under the name the nodes have always used.
  public func warn(
    _ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata? = nil,
    file: String = #fileID, function: String = #function, line: UInt = #line
  ) {
    warning(message(), metadata: metadata(), file: file, function: function, line: line)
  }
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
