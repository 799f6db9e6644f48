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
    let base = line.startIndex
    let end = line.endIndex
    guard line.count > 6, line[base] == UInt8(ascii: "T"), line[base + 1] == UInt8(ascii: "R"),
      line[base + 2] == UInt8(ascii: "A"), line[base + 3] == UInt8(ascii: "D"),
      line[base + 4] == UInt8(ascii: "E"), line[base + 5] == UInt8(ascii: ",")
    else { return nil }
    // The ten fields after the record type, each non-empty and ASCII, in order.
    var i = base + 6
    var fieldsLeft = 10
    func next() -> Range<Int>? {
      let start = i
      while i < end && line[i] != UInt8(ascii: ",") {
        if line[i] >= 0x80 { return nil }
        i += 1
      }
      fieldsLeft -= 1
      // The last field ends the line; any other ends at a comma.
      guard i > start, fieldsLeft == 0 ? i == end : i < end else { return nil }
      let range = start..<i
      i += 1
      return range
    }
    guard let id = next(), let dateField = next(), let timeField = next(), let security = next(),
      let priceField = next(), let quantityField = next(), let buyAccount = next(), let buyUnit = next(),
      let sellAccount = next(), let sellUnit = next(),
      let date = Fields.date(line[dateField]), let time = Fields.time(line[timeField]),
      let price = Fields.price(line[priceField]), let quantity = Fields.quantity(line[quantityField])
    else { return nil }
    @inline(__always) func relative(_ r: Range<Int>) -> Range<Int> {
      (r.lowerBound - base)..<(r.upperBound - base)
    }
    return TradeLine(
      date: date, time: time, priceMilli: price, quantity: quantity, tradeId: relative(id),
      security: relative(security), buyAccount: relative(buyAccount), buyUnit: relative(buyUnit),
      sellAccount: relative(sellAccount), sellUnit: relative(sellUnit))
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
