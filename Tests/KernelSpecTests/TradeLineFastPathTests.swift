// The TRADE fast path (`EventParser.tradeLine`, no Strings) must accept exactly the
// all-ASCII lines the general parser reads as trades, with the same fields: checked over
// valid lines and thousands of mutations of them (commas added and removed, empty fields,
// bytes at and around the limits, non-ASCII bytes, fields cut short), at every length.
import Foundation
import KernelAPI
import TallyFormat
import XCTest

final class TradeLineFastPathTests: XCTestCase {
  func fields(of t: TradeLine, in line: [UInt8]) -> [String] {
    [t.tradeId, t.security, t.buyAccount, t.buyUnit, t.sellAccount, t.sellUnit].map {
      String(decoding: line[$0], as: UTF8.self)
    }
  }

  func testFastPathAgreesWithTheParserOnMutatedLines() {
    let seeds = [
      "TRADE,T000001,20260105,093000123,600000,10.50,100,A00000001,U01,A00000002,U02",
      "TRADE,a-very-long-trade-identifier-1234567890,20261231,145959999,SEC,0.001,1,ACCT,UNIT,ACCT2,UNIT2",
      "TRADE,X,20260105,093000,S,123456.789,999999999,B,U,C,V",
    ].map { Array($0.utf8) }
    // Bytes that break a line (commas, controls, non-ASCII, LF's neighbours) and bytes
    // that keep most fields valid (digits, letters).
    let pool: [UInt8] =
      [44, 44, 10, 13, 0, 0x7F, 0x80, 0xC3, 0xA9, 0xFF, 46, 45, 32, 0x2C ^ 0x80, 0x2B]
      + Array("0123456789ABCXYZ0123456789".utf8)
    var state: UInt64 = 20_261_204
    func random(_ n: Int) -> Int {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return Int((state >> 33) % UInt64(n))
    }
    var accepted = 0
    var checked = 0
    for seed in seeds {
      for round in 0..<4_000 {
        var line = seed
        // Zero to two edits: replace, insert or delete a byte, or (rarely) cut the line.
        for _ in 0..<(round == 0 ? 0 : 1 + random(2)) {
          let edit = random(7)
          if line.isEmpty || edit == 1 {
            line.insert(pool[random(pool.count)], at: random(line.count + 1))
          } else if edit == 0 {
            line[random(line.count)] = pool[random(pool.count)]
          } else if edit == 2 {
            line.remove(at: random(line.count))
          } else if edit == 3 {
            line = Array(line.prefix(random(line.count + 1)))
          } else {
            line[random(line.count)] = UInt8(ascii: "0") + UInt8(random(10))
          }
        }
        checked += 1
        let slice = line[...]
        let fast = EventParser.tradeLine(slice)
        let general = EventParser.parse(slice)
        let ascii = line.allSatisfy { $0 < 0x80 }
        if let fast {
          accepted += 1
          guard case .trade(let t) = general else {
            XCTFail("fast path accepted a line the parser does not read as a trade: \(line)")
            continue
          }
          XCTAssertEqual(
            fields(of: fast, in: line),
            [t.tradeId, t.security, t.buyAccount, t.buyUnit, t.sellAccount, t.sellUnit], "\(line)")
          XCTAssertEqual(
            [Int64(fast.date), Int64(fast.time), fast.priceMilli, fast.quantity],
            [Int64(t.date), Int64(t.time), t.priceMilli, t.quantity], "\(line)")
        } else if ascii, case .trade = general {
          XCTFail("fast path refused an ASCII trade line the parser accepts: \(line)")
        }
      }
    }
    // The mutations hit both sides: many lines stay trades, many do not.
    XCTAssertGreaterThan(accepted, checked / 20, "\(accepted) of \(checked)")
    XCTAssertLessThan(accepted, checked * 9 / 10, "\(accepted) of \(checked)")
  }

  /// The word-at-a-time date of a line's bytes (`Fields.date(_: UnsafeRawBufferPointer)`)
  /// against the byte loop every other caller uses, over every day of four years (leap
  /// days and month ends on both sides of the line) and each of them with one byte
  /// changed to a digit's neighbours, other digits and non-digits.
  func testWordAtATimeDateAgreesWithTheByteLoop() {
    let bytes: [UInt8] = [0, 0x2F, 0x30, 0x31, 0x35, 0x39, 0x3A, 0x40, 0x20, 0x2D, 0xB0, 0xB9, 0x3F, 0x06]
    var checked = 0
    var valid = 0
    for year in [1, 1900, 2000, 2024, 2026, 9999] {
      for month in 0...13 {
        for day in 0...32 {
          let text = Array(String(format: "%04d%02d%02d", year, month, day).utf8)
          var variants = [text, Array(text.prefix(7)), text + [0x30]]
          for i in text.indices {
            for b in bytes {
              var v = text
              v[i] = b
              variants.append(v)
            }
          }
          for v in variants {
            let word = v.withUnsafeBytes { Fields.date($0) }
            XCTAssertEqual(word, Fields.date(v[...]), "\(v)")
            checked += 1
            if word != nil { valid += 1 }
          }
        }
      }
    }
    XCTAssertGreaterThan(valid, 2_000, "real dates among \(checked)")
    XCTAssertLessThan(valid, checked / 4, "\(valid) of \(checked)")
  }
}
