// SPEC §3 event lines → Event. Shape errors become `.malformed`, which the core
// rejects with MALFORMED; unknown identifiers are the core's business.
import KernelAPI

public enum EventParser {
  /// True for a line that is not an event (empty, or starting with `#`).
  @inlinable public static func isSkipped(_ line: ArraySlice<UInt8>) -> Bool {
    line.isEmpty || line.first == UInt8(ascii: "#")
  }

  /// Parses one event line (already stripped of its line end).
  public static func parse(_ line: ArraySlice<UInt8>) -> Event {
    guard Fields.isValidUTF8(line) else { return .malformed(record: "", ref: "") }
    let f = Fields.split(line)
    if let event = parseFields(f) { return event }
    let record = Fields.text(f[0])
    let refIndex = record == "CANCEL" ? 2 : 1
    return .malformed(record: record, ref: f.count > refIndex ? Fields.text(f[refIndex]) : "")
  }

  /// A well-formed, all-ASCII TRADE line as a `TradeLine` (ranges relative to the
  /// line's start); nil for any other line, which `parse` then handles. It accepts
  /// exactly the TRADE lines `parse` accepts (the hot path skips building Strings).
  @inlinable
  public static func tradeLine(_ line: ArraySlice<UInt8>) -> TradeLine? {
    line.withUnsafeBytes { tradeLine(bytes: $0) }
  }

  /// `tradeLine` of a line's bytes where they lie. The reader thread of a run splits a
  /// million TRADE lines a day with it: through `ArraySlice`s (a slice made, retained
  /// and released per line and per field, each byte read bounds-checked) the split
  /// and the fields were ~0.2 s of the reader's ~0.6 s of CPU on the 1M-trade day, the
  /// core beside the apply (perf, twenty-eighth session).
  @inlinable
  public static func tradeLine(bytes raw: UnsafeRawBufferPointer) -> TradeLine? {
    let n = raw.count
    // "TRADE," as a 4-byte and a 2-byte word (little-endian loads of the ASCII bytes).
    guard n > 6, raw.loadUnaligned(as: UInt32.self) == UInt32(littleEndian: 0x4441_5254),
      raw.loadUnaligned(fromByteOffset: 4, as: UInt16.self) == UInt16(littleEndian: 0x2C45)
    else { return nil }
    // The ten fields after the record type, each non-empty and ASCII, in order (ranges
    // relative to the line's start): exactly nine commas after "TRADE,", found in one
    // pass eight bytes at a time (`ByteScan.commas`), no byte with its top bit.
    guard let c = ByteScan.commas(in: raw, from: 6, to: n, expected: 9),
      c.c0 > 6, c.c1 > c.c0 + 1, c.c2 > c.c1 + 1, c.c3 > c.c2 + 1, c.c4 > c.c3 + 1, c.c5 > c.c4 + 1,
      c.c6 > c.c5 + 1, c.c7 > c.c6 + 1, c.c8 > c.c7 + 1, n > c.c8 + 1
    else { return nil }
    @inline(__always) func r(_ start: Int32, _ end: Int32) -> Range<Int> { Int(start)..<Int(end) }
    @inline(__always) func field(_ start: Int32, _ end: Int32) -> UnsafeRawBufferPointer {
      UnsafeRawBufferPointer(rebasing: raw[Int(start)..<Int(end)])
    }
    guard let date = Fields.date(field(c.c0 + 1, c.c1)), let time = Fields.time(field(c.c1 + 1, c.c2)),
      let price = Fields.price(field(c.c3 + 1, c.c4)), let quantity = Fields.quantity(field(c.c4 + 1, c.c5))
    else { return nil }
    return TradeLine(
      date: date, time: time, priceMilli: price, quantity: quantity, tradeId: r(6, c.c0),
      security: r(c.c2 + 1, c.c3), buyAccount: r(c.c5 + 1, c.c6), buyUnit: r(c.c6 + 1, c.c7),
      sellAccount: r(c.c7 + 1, c.c8), sellUnit: r(c.c8 + 1, Int32(n)))
  }

  @inline(__always)
  static func ident(_ s: ArraySlice<UInt8>) -> String? { s.isEmpty ? nil : Fields.text(s) }

  static func parseFields(_ f: [ArraySlice<UInt8>]) -> Event? {
    let type = f[0]
    guard let first = type.first else { return nil }
    // Dispatch on length and first byte before comparing whole words.
    switch (type.count, first) {
    case (5, UInt8(ascii: "T")) where type.elementsEqual("TRADE".utf8):
      guard f.count == 11, let id = ident(f[1]), let date = Fields.date(f[2]), let time = Fields.time(f[3]),
        let security = ident(f[4]), let price = Fields.price(f[5]), let quantity = Fields.quantity(f[6]),
        let buyAccount = ident(f[7]), let buyUnit = ident(f[8]), let sellAccount = ident(f[9]),
        let sellUnit = ident(f[10])
      else { return nil }
      return .trade(
        TradeEvent(
          tradeId: id, date: date, time: time, security: security, priceMilli: price, quantity: quantity,
          buyAccount: buyAccount, buyUnit: buyUnit, sellAccount: sellAccount, sellUnit: sellUnit))
    case (4, UInt8(ascii: "O")) where type.elementsEqual("OPEN".utf8):
      guard f.count == 2, let d = Fields.date(f[1]) else { return nil }
      return .open(date: d)
    case (5, UInt8(ascii: "C")) where type.elementsEqual("CLOSE".utf8):
      guard f.count == 2, let d = Fields.date(f[1]) else { return nil }
      return .close(date: d)
    case (6, UInt8(ascii: "S")) where type.elementsEqual("SETTLE".utf8):
      guard f.count == 2, let d = Fields.date(f[1]) else { return nil }
      return .settle(date: d)
    case (6, UInt8(ascii: "C")) where type.elementsEqual("CANCEL".utf8):
      guard f.count == 3, let d = Fields.date(f[1]), let id = ident(f[2]) else { return nil }
      return .cancel(date: d, tradeId: id)
    case (7, UInt8(ascii: "D")) where type.elementsEqual("DEPOSIT".utf8):
      guard f.count == 3, let p = ident(f[1]), let amount = Fields.money(f[2]) else { return nil }
      return .deposit(participant: p, amountFen: amount)
    case (8, UInt8(ascii: "D")) where type.elementsEqual("DIVIDEND".utf8):
      guard f.count == 4, let s = ident(f[1]), let d = Fields.date(f[2]), let a = Fields.perShare(f[3]) else {
        return nil
      }
      return .dividend(security: s, recordDate: d, perShareMicro: a)
    case (5, UInt8(ascii: "B")) where type.elementsEqual("BONUS".utf8):
      guard f.count == 5, let s = ident(f[1]), let d = Fields.date(f[2]), let base = Fields.quantity(f[3]),
        let bonus = Fields.quantity(f[4])
      else { return nil }
      return .bonus(security: s, recordDate: d, base: base, bonus: bonus)
    case (11, UInt8(ascii: "P")) where type.elementsEqual("PARTICIPANT".utf8):
      guard f.count == 3, let id = ident(f[1]), let name = ident(f[2]) else { return nil }
      return .participant(id: id, name: name)
    case (4, UInt8(ascii: "U")) where type.elementsEqual("UNIT".utf8):
      guard f.count == 3, let id = ident(f[1]), let p = ident(f[2]) else { return nil }
      return .unit(id: id, participant: p)
    case (7, UInt8(ascii: "A")) where type.elementsEqual("ACCOUNT".utf8):
      guard f.count == 3, let id = ident(f[1]), let kind = Fields.accountKind(f[2]) else { return nil }
      return .account(id: id, kind: kind)
    case (8, UInt8(ascii: "S")) where type.elementsEqual("SECURITY".utf8):
      guard f.count == 5, let id = ident(f[1]), let isin = ident(f[2]), let name = ident(f[3]),
        let kind = Fields.securityKind(f[4])
      else { return nil }
      return .security(id: id, isin: isin, name: name, kind: kind)
    default:
      return nil
    }
  }
}
