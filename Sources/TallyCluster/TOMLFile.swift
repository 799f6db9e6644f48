// TOML files decoded into typed structs (TOMLKit), for cluster configs and chaos
// scenarios alike. Before decoding, every table and key is checked against a schema,
// so that a typo (`base_prot = 7100`) or a wrong type is refused with the file, the
// line, and what is allowed, instead of being ignored or silently defaulted.
// Never on a hot path: files are read once at start.
import TOMLKit

/// The value kinds a schema names. `number` accepts an integer or a decimal.
public enum TOMLKind: Sendable {
  case string, integer, bool, number

  var words: String {
    switch self {
    case .string: return "a \"string\""
    case .integer: return "an integer"
    case .bool: return "true or false"
    case .number: return "a number"
    }
  }
}

/// The tables and keys a file may hold. The root table may hold only tables.
public struct TOMLSchema: Sendable {
  public struct Table: Sendable {
    public var name: String
    /// `[[name]]` (an array of tables) rather than `[name]`.
    public var isArray: Bool
    public var keys: [(name: String, kind: TOMLKind)]

    public init(_ name: String, array: Bool = false, keys: [(String, TOMLKind)]) {
      self.name = name
      self.isArray = array
      self.keys = keys.map { (name: $0.0, kind: $0.1) }
    }
  }
  public var tables: [Table]
  public init(_ tables: [Table]) { self.tables = tables }

  var tableList: String {
    tables.map { $0.isArray ? "[[\($0.name)]]" : "[\($0.name)]" }.joined(separator: ", ")
  }
}

/// One parsed TOML file: its text (for line numbers in messages) and its root table.
public struct TOMLFile {
  public let file: String
  let lines: [Substring]
  let root: TOMLTable

  public init(text: String, file: String) throws(ConfigError) {
    self.file = file
    lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    do {
      root = try TOMLTable(string: text)
    } catch let error as TOMLParseError {
      throw ConfigError(
        "\(file):\(error.source.begin.line):\(error.source.begin.column): \(error.description)")
    } catch {
      throw ConfigError("\(file): not TOML: \(error)")
    }
  }

  /// `file:line:` when the line is known, `file:` otherwise.
  public func place(_ line: Int?) -> String { line.map { "\(file):\($0):" } ?? "\(file):" }

  /// The 1-based line of a table header, or of `key` inside it (`element` counts
  /// `[[name]]` headers from 0). A lookup for messages only: TOMLKit has parsed the file.
  public func line(table: String?, element: Int? = nil, key: String? = nil) -> Int? {
    var inside = table == nil  // root keys come before the first header
    var seen = -1
    for (n, raw) in lines.enumerated() {
      let line = raw.drop { $0 == " " || $0 == "\t" }
      if line.hasPrefix("[") {
        let isArray = line.hasPrefix("[[")
        let name = line.drop { $0 == "[" }.prefix { $0 != "]" }.trimmingSpaces
        if name == table && isArray { seen += 1 }
        inside = name == table && (element == nil || (isArray && seen == element))
        if inside && key == nil { return n + 1 }
        continue
      }
      guard inside, let key else { continue }
      let lhs = line.prefix { $0 != "=" }.trimmingSpaces
      if lhs == key || lhs == "\"\(key)\"" { return n + 1 }
    }
    return nil
  }

  /// Refuses unknown tables, unknown keys and values of the wrong kind.
  public func check(_ schema: TOMLSchema) throws(ConfigError) {
    for key in root.keys.sorted() {
      guard let table = schema.tables.first(where: { $0.name == key }) else {
        let value = root[key]
        let isTable = value?.type == .table || value?.type == .array
        let line = isTable ? line(table: key) : line(table: nil, key: key)
        throw ConfigError(
          isTable
            ? "\(place(line)) unknown table [\(key)] (allowed: \(schema.tableList))"
            : "\(place(line)) '\(key)' outside a table (allowed tables: \(schema.tableList))")
      }
      if table.isArray {
        guard let array = root[key]?.array else {
          throw ConfigError("\(place(line(table: key))) \(key) must be written [[\(key)]]")
        }
        for (i, element) in array.enumerated() {
          guard let t = element.table else {
            throw ConfigError("\(place(line(table: key))) every \(key) must be a table [[\(key)]]")
          }
          try check(t, against: table, element: i)
        }
      } else {
        guard let t = root[key]?.table else {
          throw ConfigError("\(place(line(table: nil, key: key))) '\(key)' must be a table [\(key)]")
        }
        try check(t, against: table, element: nil)
      }
    }
  }

  func check(_ t: TOMLTable, against table: TOMLSchema.Table, element: Int?) throws(ConfigError) {
    let label = element.map { "\(table.name) \($0 + 1)" } ?? "[\(table.name)]"
    for key in t.keys.sorted() {
      let at = place(line(table: table.name, element: element, key: key))
      guard let spec = table.keys.first(where: { $0.name == key }) else {
        throw ConfigError(
          "\(at) \(label) has an unknown key '\(key)' (allowed: \(table.keys.map(\.name).joined(separator: ", ")))"
        )
      }
      guard let type = t[key]?.type else { continue }
      let fits: Bool
      switch spec.kind {
      case .string: fits = type == .string
      case .integer: fits = type == .int
      case .bool: fits = type == .bool
      case .number: fits = type == .int || type == .double
      }
      guard fits else {
        throw ConfigError("\(at) \(label) \(key) must be \(spec.kind.words), not a \(type.words)")
      }
    }
  }

  /// Decodes the checked file into `T` (call `check` first: the schema's messages are
  /// the helpful ones; a decoding error here means the schema and `T` disagree).
  public func decode<T: Decodable>(_ type: T.Type) throws(ConfigError) -> T {
    do {
      return try TOMLDecoder().decode(type, from: root)
    } catch {
      throw ConfigError("\(file): \(error)")
    }
  }
}

/// A decimal number that may be written as an integer (`votes_drop = 0`).
public struct TOMLNumber: Decodable, Sendable {
  public var value: Double
  public init(from decoder: any Decoder) throws {
    let c = try decoder.singleValueContainer()
    if let d = try? c.decode(Double.self) {
      value = d
    } else {
      value = Double(try c.decode(Int.self))
    }
  }
}

extension TOMLType {
  var words: String {
    switch self {
    case .table: return "table"
    case .array: return "array"
    case .string: return "string"
    case .int: return "integer"
    case .double: return "decimal number"
    case .bool: return "boolean"
    case .date, .time, .dateTime: return "date or time"
    }
  }
}

extension Substring {
  var trimmingSpaces: String {
    String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
  }
}
