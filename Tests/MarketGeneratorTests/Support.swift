// Test helpers: temporary folders, file reading, and small independent checks.
import Foundation
import XCTest

@testable import MarketGenerator

func makeTemporaryDirectory(_ label: String) throws -> String {
  let base = FileManager.default.temporaryDirectory.path
  let path = base + "/tally-gen-\(label)-\(UUID().uuidString)"
  try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}

func removeDirectory(_ path: String) {
  try? FileManager.default.removeItem(atPath: path)
}

func readBytes(_ path: String) throws -> [UInt8] {
  [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// The lines of a file; fails when it does not end with exactly one `\n`.
func readLines(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
  let bytes = try readBytes(path)
  XCTAssertEqual(bytes.last, 10, "\(path) must end with a newline", file: file, line: line)
  XCTAssertFalse(bytes.contains(13), "\(path) must not contain CR", file: file, line: line)
  let text = String(decoding: bytes, as: UTF8.self)
  var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
  if lines.last == "" { lines.removeLast() }
  return lines
}

func fields(_ line: String) -> [String] {
  line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
}

func isDigits(_ s: String, count: Int? = nil) -> Bool {
  !s.isEmpty && s.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } && (count == nil || s.utf8.count == count!)
}

/// A real YYYYMMDD date (checked with Foundation's Gregorian calendar, independently of the generator).
func isRealDate(_ s: String) -> Bool {
  guard isDigits(s, count: 8), let v = Int(s) else { return false }
  var c = DateComponents()
  c.year = v / 10_000
  c.month = v / 100 % 100
  c.day = v % 100
  var cal = Calendar(identifier: .gregorian)
  cal.timeZone = TimeZone(identifier: "UTC")!
  guard let date = cal.date(from: c) else { return false }
  let back = cal.dateComponents([.year, .month, .day], from: date)
  return back.year == c.year && back.month == c.month && back.day == c.day
}

/// Calendar days between two real YYYYMMDD dates (b - a).
func daysBetween(_ a: String, _ b: String) -> Int {
  var cal = Calendar(identifier: .gregorian)
  cal.timeZone = TimeZone(identifier: "UTC")!
  func date(_ s: String) -> Date {
    let v = Int(s)!
    return cal.date(from: DateComponents(year: v / 10_000, month: v / 100 % 100, day: v % 100))!
  }
  return cal.dateComponents([.day], from: date(a), to: date(b)).day!
}

/// ISIN validity by the textbook Luhn rule over the letter-expanded digits.
func isValidISIN(_ s: String) -> Bool {
  let chars = Array(s)
  guard chars.count == 12, s.hasPrefix("CNE") else { return false }
  var digits = ""
  for ch in chars {
    if ch.isASCII && ch.isNumber {
      digits.append(ch)
    } else if ch.isASCII && ch.isUppercase {
      digits += String(Int(ch.asciiValue!) - 55)
    } else {
      return false
    }
  }
  var sum = 0
  for (i, ch) in digits.reversed().enumerated() {
    var d = Int(String(ch))!
    if i % 2 == 1 {
      d *= 2
      if d > 9 { d -= 9 }
    }
    sum += d
  }
  return sum % 10 == 0
}

/// SPEC §1 price pattern `-?[0-9]{1,6}(\.[0-9]{1,3})?`, returned in 0.001 units.
func parsePrice(_ s: String) -> Int? {
  var body = Substring(s)
  var negative = false
  if body.hasPrefix("-") {
    negative = true
    body = body.dropFirst()
  }
  let parts = body.split(separator: ".", omittingEmptySubsequences: false)
  guard parts.count <= 2, isDigits(String(parts[0])), parts[0].count <= 6 else { return nil }
  var value = Int(parts[0])! * 1000
  if parts.count == 2 {
    guard isDigits(String(parts[1])), parts[1].count <= 3 else { return nil }
    var frac = Int(parts[1])!
    for _ in parts[1].count..<3 { frac *= 10 }
    value += frac
  }
  return negative ? -value : value
}

/// SPEC §1 money amount `-?[0-9]{1,13}(\.[0-9]{1,2})?`, in fen.
func parseAmount(_ s: String) -> Int? {
  let parts = s.split(separator: ".", omittingEmptySubsequences: false)
  guard parts.count <= 2, isDigits(String(parts[0])), parts[0].count <= 13 else { return nil }
  var value = Int(parts[0])! * 100
  if parts.count == 2 {
    guard isDigits(String(parts[1])), parts[1].count <= 2 else { return nil }
    value += Int(parts[1])! * (parts[1].count == 1 ? 10 : 1)
  }
  return value
}

/// SPEC §1 per-share amount `-?[0-9]{1,4}(\.[0-9]{1,6})?`.
func isPerShareAmount(_ s: String) -> Bool {
  let parts = s.split(separator: ".", omittingEmptySubsequences: false)
  guard parts.count <= 2, isDigits(String(parts[0])), parts[0].count <= 4 else { return false }
  return parts.count == 1 || (isDigits(String(parts[1])) && parts[1].count <= 6)
}

func isQuantity(_ s: String) -> Bool { isDigits(s) && s.utf8.count <= 10 }

func smallOptions(seed: UInt64) -> MarketOptions {
  MarketOptions(seed: seed, days: 4, tradesPerDay: 1_500, accounts: 300, securities: 25, participants: 5)
}
