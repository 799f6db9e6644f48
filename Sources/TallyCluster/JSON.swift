// A minimal JSON writer for status output and alerts (no Codable on any hot path).
import Foundation

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

  /// `s` as a JSON string literal: quotes, backslashes and control characters escaped.
  public static func quote(_ s: String) -> String {
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
