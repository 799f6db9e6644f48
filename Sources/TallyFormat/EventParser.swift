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
    guard line.count > 6, line[base] == UInt8(ascii: "T"), line[base + 1] == UInt8(ascii: "R"),
      line[base + 2] == UInt8(ascii: "A"), line[base + 3] == UInt8(ascii: "D"),
      line[base + 4] == UInt8(ascii: "E"), line[base + 5] == UInt8(ascii: ",")
    else { return nil }
    // The ten fields after the record type, each non-empty and ASCII, in order (ranges
    // relative to the line's start): exactly nine commas after "TRADE,", found in one
    // pass eight bytes at a time (`ByteScan.commas`), no byte with its top bit.
    let split = line.withUnsafeBytes { raw -> TradeFieldRanges? in
      guard let c = ByteScan.commas(in: raw, from: 6, to: raw.count, expected: 9) else { return nil }
      let n = raw.count
      // Every field non-empty: each comma after the one before (or the record type),
      // and the last field before the line's end.
      guard c.c0 > 6, c.c1 > c.c0 + 1, c.c2 > c.c1 + 1, c.c3 > c.c2 + 1, c.c4 > c.c3 + 1, c.c5 > c.c4 + 1,
        c.c6 > c.c5 + 1, c.c7 > c.c6 + 1, c.c8 > c.c7 + 1, n > c.c8 + 1
      else { return nil }
      @inline(__always) func r(_ start: Int32, _ end: Int32) -> Range<Int> { Int(start)..<Int(end) }
      return TradeFieldRanges(
        id: r(6, c.c0), date: r(c.c0 + 1, c.c1), time: r(c.c1 + 1, c.c2), security: r(c.c2 + 1, c.c3),
        price: r(c.c3 + 1, c.c4), quantity: r(c.c4 + 1, c.c5), buyAccount: r(c.c5 + 1, c.c6),
        buyUnit: r(c.c6 + 1, c.c7), sellAccount: r(c.c7 + 1, c.c8), sellUnit: r(c.c8 + 1, Int32(n)))
    }
    @inline(__always) func field(_ r: Range<Int>) -> ArraySlice<UInt8> {
      line[(base + r.lowerBound)..<(base + r.upperBound)]
    }
    guard let f = split, let date = Fields.date(field(f.date)), let time = Fields.time(field(f.time)),
      let price = Fields.price(field(f.price)), let quantity = Fields.quantity(field(f.quantity))
    else { return nil }
    return TradeLine(
      date: date, time: time, priceMilli: price, quantity: quantity, tradeId: f.id, security: f.security,
      buyAccount: f.buyAccount, buyUnit: f.buyUnit, sellAccount: f.sellAccount, sellUnit: f.sellUnit)
  }

  /// The ten field ranges of a TRADE line, relative to its start (`tradeLine`).
  @usableFromInline
  struct TradeFieldRanges {
    @usableFromInline var id, date, time, security, price, quantity: Range<Int>
    @usableFromInline var buyAccount, buyUnit, sellAccount, sellUnit: Range<Int>

    @inlinable
    init(
      id: Range<Int>, date: Range<Int>, time: Range<Int>, security: Range<Int>, price: Range<Int>,
      quantity: Range<Int>, buyAccount: Range<Int>, buyUnit: Range<Int>, sellAccount: Range<Int>,
      sellUnit: Range<Int>
    ) {
      self.id = id
      self.date = date
      self.time = time
      self.security = security
      self.price = price
      self.quantity = quantity
      self.buyAccount = buyAccount
      self.buyUnit = buyUnit
      self.sellAccount = sellAccount
      self.sellUnit = sellUnit
    }
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
