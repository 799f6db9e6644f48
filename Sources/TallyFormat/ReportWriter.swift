// SPEC §5 output files rendered to bytes: header, LF line ends, amounts with
// exactly two fraction digits.
import KernelAPI

public enum ReportWriter {
  public static let fileNames = [
    "clearing.csv", "settlement.csv", "balances.csv", "holdings.csv", "entitlements.csv", "tax.csv",
    "rejections.csv",
  ]

  /// Fen as `-1234.50`, `0.07`, `0.00`.
  public static func money(_ fen: Int64) -> String { money(Int128(fen)) }

  public static func money(_ fen: Int128) -> String {
    let magnitude = fen.magnitude
    let yuan = magnitude / 100
    let cents = magnitude % 100
    return (fen < 0 ? "-" : "") + String(yuan) + "." + (cents < 10 ? "0" : "") + String(cents)
  }

  static func date(_ d: Int32) -> String { d == 0 ? "" : dateText(d) }

  /// The seven files of a state: holdings.csv is rendered straight from the state's
  /// positions (millions of rows, no intermediate row values); the rest from `report`.
  public static func render<K: BusinessKernel>(kernel: K) -> [(name: String, bytes: [UInt8])] {
    var files = render(kernel.report(holdings: false))
    var holdings: [UInt8] = []
    renderHoldings(kernel: kernel, chunkBytes: Int.max) { swap(&holdings, &$0) }
    guard let k = files.firstIndex(where: { $0.name == "holdings.csv" }) else {
      preconditionFailure("render writes holdings.csv")
    }
    files[k].bytes = holdings
    return files
  }

  /// holdings.csv in pieces: `take` gets each piece as soon as it holds `chunkBytes` or
  /// more (and the rest at the end), and the buffer it leaves is emptied and filled
  /// with the next one: a taker that keeps the piece swaps in another buffer (a spare
  /// of the same capacity), so no piece is copied. A million accounts' holdings are
  /// 80 MB: rendered whole, the buffer's doublings faulted in about twice that in fresh
  /// pages, the largest cost of the outputs. With `parts` above 1 the kernel's walk is
  /// cut in that many parts (`forEachHolding(part:of:)`), all but the first rendered on
  /// other threads; `take` still gets the file's bytes in order, each part's last piece
  /// shorter. The bytes are the same for any `parts`. `afterFirstPart` runs on the
  /// calling thread once the first part is handed over and before the later ones are
  /// waited for: the parts take the same time on paper, but the later ones render into
  /// fresh buffers and finish ~0.1 s after the first on the 1M-account day (perf,
  /// twenty-fourth session), a wait the caller can fill with other work.
  public static func renderHoldings<K: BusinessKernel>(
    kernel: K, chunkBytes: Int, parts: Int = 1, afterFirstPart: () -> Void = {},
    _ take: (_ piece: inout [UInt8]) -> Void
  ) {
    precondition(parts >= 1 && parts <= holdingsPartsMax, "holdings.csv in 1...\(holdingsPartsMax) parts")
    precondition(parts == 1 || chunkBytes < Int.max, "a file rendered whole is one part")
    // The parts after the first are rendered at once on other threads, each into pieces
    // of its own that wait (about the file's bytes over `parts` each) until the parts
    // before them are handed over: the kernel's walk of them reads its state only.
    let later = (1..<parts).map { part in
      BackgroundWork { () -> [[UInt8]] in
        var pieces: [[UInt8]] = []
        var b = HoldingsPiece(room: chunkBytes + HoldingsPiece.rowRoomUsual)
        kernel.forEachHolding(part: part, of: parts) { account, security, quantity, available, withheld in
          b.row(account.text, security.text, quantity, available, withheld)
          if b.used >= chunkBytes { b.hand { pieces.append($0) } }
        }
        b.handLast { pieces.append($0) }
        return pieces
      }
    }
    var b = HoldingsPiece(
      room: chunkBytes == .max ? HoldingsPiece.wholeFileFirstRoom : chunkBytes + HoldingsPiece.rowRoomUsual)
    b.header()
    kernel.forEachHolding(part: 0, of: parts) { account, security, quantity, available, withheld in
      b.row(account.text, security.text, quantity, available, withheld)
      if b.used >= chunkBytes { b.hand(take) }
    }
    b.handLast(take)
    afterFirstPart()
    for work in later {
      for var piece in work.wait() where !piece.isEmpty { take(&piece) }
    }
  }

  /// Threads holdings.csv is rendered on at most (`renderHoldings`' `parts`).
  public static let holdingsPartsMax = 8

  /// File name → bytes, for the seven files. Rows are written straight into byte
  /// buffers (no per-field Strings): a day of a million trades has millions of rows.
  public static func render(_ r: Report) -> [(name: String, bytes: [UInt8])] {
    var files: [(String, [UInt8])] = []
    func file<Row>(_ name: String, _ header: String, _ rows: [Row], _ write: (inout CSVBuffer, Row) -> Void) {
      var b = CSVBuffer(capacity: 64 + rows.count * 64)
      b.text(header)
      b.end()
      for row in rows {
        write(&b, row)
        b.end()
      }
      files.append((name, b.bytes))
    }
    file(
      "clearing.csv",
      "trade_date,settle_date,participant,security,buy_quantity,sell_quantity,buy_amount,sell_amount,handling_fee,regulatory_fee,transfer_fee,stamp_duty",
      r.clearing
    ) { b, c in
      b.date(c.tradeDate); b.comma(); b.date(c.settleDate); b.comma(); b.text(c.participant); b.comma()
      b.text(c.security); b.comma(); b.int(Int128(c.buyQuantity)); b.comma(); b.int(Int128(c.sellQuantity));
      b.comma()
      b.money(c.buyAmount); b.comma(); b.money(c.sellAmount); b.comma(); b.money(Int128(c.fees.handling));
      b.comma()
      b.money(Int128(c.fees.regulatory)); b.comma(); b.money(Int128(c.fees.transfer)); b.comma()
      b.money(Int128(c.fees.stamp))
    }
    file("settlement.csv", "trade_date,settle_date,participant,net_amount,status,settled_on", r.settlement) {
      b, s in
      b.date(s.tradeDate); b.comma(); b.date(s.settleDate); b.comma(); b.text(s.participant); b.comma()
      b.money(s.netFen); b.comma(); b.text(s.status.word); b.comma(); b.date(s.settledOn)
    }
    file("balances.csv", "participant,balance", r.balances) { b, x in
      b.text(x.participant); b.comma(); b.money(x.balanceFen)
    }
    file("holdings.csv", "account,security,quantity,available,withheld", r.holdings) { b, h in
      b.text(h.account); b.comma(); b.text(h.security); b.comma(); b.int(Int128(h.quantity)); b.comma()
      b.int(Int128(h.available)); b.comma(); b.int(Int128(h.withheld))
    }
    file("entitlements.csv", "security,record_date,pay_date,account,kind,value", r.entitlements) { b, e in
      b.text(e.security); b.comma(); b.date(e.recordDate); b.comma(); b.date(e.payDate); b.comma()
      b.text(e.account); b.comma(); b.text(e.kind.word); b.comma()
      if e.kind == .cash { b.money(Int128(e.value)) } else { b.int(Int128(e.value)) }
    }
    file("tax.csv", "trade_date,trade_id,account,security,quantity,tax", r.tax) { b, t in
      b.date(t.tradeDate); b.comma(); b.text(t.tradeId); b.comma(); b.text(t.account); b.comma()
      b.text(t.security); b.comma(); b.int(Int128(t.quantity)); b.comma(); b.money(Int128(t.taxFen))
    }
    file("rejections.csv", "seq,record,ref,reason", r.rejections) { b, x in
      b.int(Int128(x.seq)); b.comma(); b.text(x.record); b.comma(); b.text(x.ref); b.comma();
      b.text(x.reason.code)
    }
    return files
  }
}

/// A growing byte buffer with the SPEC §5 field formats.
struct CSVBuffer {
  /// Writes `v` in decimal (`-` when negative) at `raw[i...]`, advancing `i`.
  @inline(__always)
  static func put(_ v: Int64, _ raw: UnsafeMutableRawBufferPointer, _ i: inout Int) {
    if v < 0 {
      raw[i] = UInt8(ascii: "-")
      i += 1
    }
    var m = v.magnitude
    var digits = 1
    var probe = m / 10
    while probe > 0 {
      digits += 1
      probe /= 10
    }
    var k = i + digits
    i = k
    repeat {
      k -= 1
      raw[k] = UInt8(truncatingIfNeeded: m % 10) + 48
      m /= 10
    } while m > 0
  }

  mutating func digits64(_ value: UInt64, minimum: Int) {
    var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0)
    withUnsafeMutableBytes(of: &scratch) { buffer in
      var v = value
      var i = buffer.count
      repeat {
        i -= 1
        buffer[i] = UInt8(truncatingIfNeeded: v % 10) + 48
        v /= 10
      } while v > 0
      while buffer.count - i < minimum {
        i -= 1
        buffer[i] = 48
      }
      bytes.append(contentsOf: buffer[i...])
    }
  }

  var bytes: [UInt8]

  init(capacity: Int) {
    bytes = []
    bytes.reserveCapacity(capacity)
  }

  mutating func text(_ s: String) { bytes.append(contentsOf: s.utf8) }
  mutating func comma() { bytes.append(UInt8(ascii: ",")) }
  mutating func end() { bytes.append(10) }

  /// A plain integer, `-` when negative.
  mutating func int(_ v: Int128) {
    if v < 0 { bytes.append(UInt8(ascii: "-")) }
    digits(v.magnitude, minimum: 1)
  }

  mutating func int(_ v: Int64) {
    if v < 0 { bytes.append(UInt8(ascii: "-")) }
    digits64(v.magnitude, minimum: 1)
  }

  /// Fen as yuan with exactly two fraction digits.
  mutating func money(_ fen: Int128) {
    if fen < 0 { bytes.append(UInt8(ascii: "-")) }
    let m = fen.magnitude
    digits(m / 100, minimum: 1)
    bytes.append(UInt8(ascii: "."))
    digits(m % 100, minimum: 2)
  }

  /// YYYYMMDD, empty for 0.
  mutating func date(_ d: Int32) {
    if d != 0 { digits(UInt128(d), minimum: 8) }
  }

  mutating func digits(_ value: UInt128, minimum: Int) {
    // 128-bit division is slow: nearly every value fits 64 bits; a larger one is
    // written as 64-bit groups of 19 digits.
    if let small = UInt64(exactly: value) {
      digits64(small, minimum: minimum)
      return
    }
    let group: UInt128 = 10_000_000_000_000_000_000  // 10^19
    digits(value / group, minimum: max(1, minimum - 19))
    digits64(UInt64(value % group), minimum: 19)
  }
}

/// holdings.csv a piece at a time, each row written in place: the piece's array is kept
/// at its full size (`room`) and the rows fill it from the front (`used`), so that a row
/// is formatted straight into it. Formatted in a stack scratch and appended (as before),
/// a row cost a scratch of 192 bytes zeroed, a `memmove` call and an append's checks:
/// ~0.11 s of V1's 0.35 s of outputs on the 1M-account day (perf, sixteenth session).
struct HoldingsPiece {
  /// Bytes of a row beyond its two identifiers: three integers of at most 20
  /// characters, four commas and the LF.
  static let rowRoomBeyondIdentifiers = 3 * 20 + 5
  /// Room kept past a piece's size so that its last row fits (identifiers of up to
  /// ~60 bytes together; longer ones make room as they come: SPEC §1 sets no limit).
  static let rowRoomUsual = 128
  /// The first room of a file rendered whole (`chunkBytes` .max: tests, small states);
  /// it doubles as rows come. Every byte of a room is zeroed when made: a test that
  /// renders a small state after every event paid for 128 KiB each time when this
  /// was 64 KiB and the end made a next piece (the suite's differential tests ran 3x
  /// longer, debug build).
  static let wholeFileFirstRoom = 4096

  /// The piece; only `bytes[0..<used]` is rendered.
  private(set) var bytes: [UInt8]
  private(set) var used = 0
  let room: Int

  init(room: Int) {
    precondition(room > 0, "a piece has room for a row")
    self.room = room
    bytes = [UInt8](repeating: 0, count: room)
  }

  mutating func header() {
    for byte in "account,security,quantity,available,withheld\n".utf8 { put(byte) }
  }

  private mutating func put(_ byte: UInt8) {
    makeRoom(1)
    bytes[used] = byte
    used += 1
  }

  /// At least `n` bytes free after `used`: the array doubles when it has not.
  private mutating func makeRoom(_ n: Int) {
    let free = bytes.count - used
    if free < n { bytes.append(contentsOf: repeatElement(0, count: max(n - free, bytes.count))) }
  }

  /// `account,security,quantity,available,withheld` and LF.
  mutating func row(
    _ account: String, _ security: String, _ quantity: Int64, _ available: Int64, _ withheld: Int64
  ) {
    // `withUTF8` gives a native string's bytes as they are (a small one's from the stack).
    var (account, security) = (account, security)
    account.withUTF8 { a in security.withUTF8 { s in row(a, s, quantity, available, withheld) } }
  }

  private mutating func row(
    _ account: UnsafeBufferPointer<UInt8>, _ security: UnsafeBufferPointer<UInt8>, _ quantity: Int64,
    _ available: Int64, _ withheld: Int64
  ) {
    makeRoom(account.count + security.count + Self.rowRoomBeyondIdentifiers)
    let start = used
    used = bytes.withUnsafeMutableBytes { raw -> Int in
      var i = start
      if let from = account.baseAddress, account.count > 0 {
        (raw.baseAddress! + i).copyMemory(from: from, byteCount: account.count)
        i += account.count
      }
      raw[i] = UInt8(ascii: ",")
      i += 1
      if let from = security.baseAddress, security.count > 0 {
        (raw.baseAddress! + i).copyMemory(from: from, byteCount: security.count)
        i += security.count
      }
      raw[i] = UInt8(ascii: ",")
      i += 1
      CSVBuffer.put(quantity, raw, &i)
      raw[i] = UInt8(ascii: ",")
      i += 1
      CSVBuffer.put(available, raw, &i)
      raw[i] = UInt8(ascii: ",")
      i += 1
      CSVBuffer.put(withheld, raw, &i)
      raw[i] = 10
      i += 1
      return i
    }
    precondition(used <= bytes.count, "a row stays inside the room made for it")
  }

  /// Gives the rendered bytes to `take` (which may swap in another buffer, see
  /// `ReportWriter.renderHoldings`) and starts the next piece at the same room, in the
  /// buffer `take` left (a recycled one keeps its capacity: no fresh pages).
  mutating func hand(_ take: (_ piece: inout [UInt8]) -> Void) {
    handLast(take)
    bytes.append(contentsOf: repeatElement(0, count: room))
  }

  /// The same for the last piece: no next one is made.
  mutating func handLast(_ take: (_ piece: inout [UInt8]) -> Void) {
    bytes.removeLast(bytes.count - used)
    take(&bytes)
    bytes.removeAll(keepingCapacity: true)
    used = 0
  }
}
