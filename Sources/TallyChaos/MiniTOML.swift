// The scenario files' TOML subset (the one ClusterConfig reads too): [table],
// [[array of tables]], key = "string" | integer | true/false, # comments. Scenarios
// also accept decimal numbers (`votes_drop = 0.05`), which cluster configs do not.
import Foundation

public enum TOMLScalar: Sendable, Equatable {
  case string(String)
  case integer(Int)
  case bool(Bool)
  case number(Double)

  init?(_ text: String) {
    if text.count >= 2 && text.hasPrefix("\"") && text.hasSuffix("\"") {
      self = .string(String(text.dropFirst().dropLast()))
    } else if text == "true" || text == "false" {
      self = .bool(text == "true")
    } else if let i = Int(text.replacingOccurrences(of: "_", with: "")) {
      self = .integer(i)
    } else if text.first.map({ $0.isNumber || $0 == "." || $0 == "-" }) == true, let d = Double(text),
      d.isFinite
    {
      self = .number(d)
    } else {
      return nil
    }
  }
}

public struct ScenarioError: Error, CustomStringConvertible, Sendable {
  public var description: String
  public init(_ description: String) { self.description = description }
}

/// A parsed document: tables by name (entries in file order), arrays of tables by name.
public struct MiniTOML: Sendable {
  public typealias Entries = [(key: String, value: TOMLScalar)]
  public var tables: [String: Entries] = [:]
  public var arrays: [String: [Entries]] = [:]

  public static func parse(_ text: String, file: String) throws(ScenarioError) -> MiniTOML {
    var doc = MiniTOML()
    var current: (name: String, isArray: Bool)? = nil
    for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      let line = stripComment(String(raw)).trimmingCharacters(in: .whitespaces)
      if line.isEmpty { continue }
      if line.hasPrefix("[[") && line.hasSuffix("]]") {
        let name = String(line.dropFirst(2).dropLast(2)).trimmingCharacters(in: .whitespaces)
        doc.arrays[name, default: []].append([])
        current = (name, true)
        continue
      }
      if line.hasPrefix("[") && line.hasSuffix("]") {
        let name = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
        if doc.tables[name] == nil { doc.tables[name] = [] }
        current = (name, false)
        continue
      }
      guard let eq = line.firstIndex(of: "=") else {
        throw ScenarioError("\(file):\(n + 1): expected key = value")
      }
      let key = line[..<eq].trimmingCharacters(in: .whitespaces)
      let valueText = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
      guard let value = TOMLScalar(valueText) else {
        throw ScenarioError(
          "\(file):\(n + 1): value of '\(key)' must be a \"string\", a number or true/false")
      }
      guard let current else { throw ScenarioError("\(file):\(n + 1): '\(key)' outside a table") }
      if current.isArray {
        let i = doc.arrays[current.name]!.count - 1
        doc.arrays[current.name]![i].append((key, value))
      } else {
        doc.tables[current.name]!.append((key, value))
      }
    }
    return doc
  }

  static func stripComment(_ line: String) -> String {
    var inString = false
    for (i, c) in line.enumerated() {
      if c == "\"" { inString.toggle() }
      if c == "#" && !inString { return String(line.prefix(i)) }
    }
    return line
  }
}

/// Typed reads from one table; keys never read are refused (a typo is not a default).
struct TableReader {
  let file: String
  let name: String
  let entries: MiniTOML.Entries
  var used: [String] = []

  init(file: String, name: String, entries: MiniTOML.Entries?) {
    self.file = file
    self.name = name
    self.entries = entries ?? []
  }

  func value(_ key: String) -> TOMLScalar? { entries.last { $0.key == key }?.value }

  mutating func int(_ key: String, _ d: Int) throws(ScenarioError) -> Int {
    used.append(key)
    guard let v = value(key) else { return d }
    guard case .integer(let i) = v else {
      throw ScenarioError("\(file): [\(name)] \(key) must be an integer")
    }
    return i
  }

  /// A decimal number (an integer is accepted too).
  mutating func number(_ key: String, _ d: Double) throws(ScenarioError) -> Double {
    used.append(key)
    guard let v = value(key) else { return d }
    switch v {
    case .number(let x): return x
    case .integer(let i): return Double(i)
    default: throw ScenarioError("\(file): [\(name)] \(key) must be a number")
    }
  }

  mutating func bool(_ key: String, _ d: Bool) throws(ScenarioError) -> Bool {
    used.append(key)
    guard let v = value(key) else { return d }
    guard case .bool(let b) = v else {
      throw ScenarioError("\(file): [\(name)] \(key) must be true or false")
    }
    return b
  }

  mutating func string(_ key: String, _ d: String) throws(ScenarioError) -> String {
    used.append(key)
    guard let v = value(key) else { return d }
    guard case .string(let s) = v else {
      throw ScenarioError("\(file): [\(name)] \(key) must be a \"string\"")
    }
    return s
  }

  func finish() throws(ScenarioError) {
    for e in entries where !used.contains(e.key) {
      throw ScenarioError(
        "\(file): [\(name)] has an unknown key '\(e.key)' (known: \(used.joined(separator: ", ")))")
    }
  }
}
