// The fast path of holdings.csv (millions of lines): a line that is all ASCII, has four
// non-empty fields and passes every check becomes a row in one pass; anything else is
// left to ReferenceParser's general path, which names the problem. A large file is read
// in two parts at once, the second on another core.
import KernelAPI

struct FastHoldingLines: Sendable {
  let accounts: [(id: String, kind: AccountKind)]
  let accountIds: FastIndex<Ident>
  let securityIds: FastIndex<Ident>
  /// Lines of one account follow each other: its bytes and index are kept from the last line.
  var lastAccount: (bytes: [UInt8], index: Int32) = ([], -1)
  /// Valid acquired dates by their eight bytes (as one word), one per slot (date 0: an
  /// empty slot): a cache of `Fields.date`, nothing else.
  var dateMemo = [(key: UInt64, date: Int32)](repeating: (0, 0), count: FastHoldingLines.memoSlots)
  /// Security row ids by their field's bytes (a field of up to eight, as one word, with
  /// its length), one per slot (-1: empty): a cache of `securityIds[bytes:]`, which
  /// hashed the field and compared it with a String on every line.
  var securityMemo = [(key: UInt64, count: Int, security: Int32)](
    repeating: (0, 0, -1), count: FastHoldingLines.memoSlots)
  /// Slots of each memo (64 KB and 96 KB: within a core's L2). The date memo had 256,
  /// fewer than the dates of a real file (a few thousand): most lines then missed it
  /// and checked their date again (perf, twenty-second session).
  static let memoSlots = 4096
  /// The hash bits that pick a slot: the top log2(memoSlots).
  static let memoShift = UInt64(64 - memoSlots.trailingZeroBitCount)

  init(
    accounts: [(id: String, kind: AccountKind)], accountIds: FastIndex<Ident>, securityIds: FastIndex<Ident>
  ) {
    self.accounts = accounts
    self.accountIds = accountIds
    self.securityIds = securityIds
  }

  /// Files at least this large are read in two parts at once (below it a thread costs
  /// more than it saves).
  static let twoPartBytesMin = 4 << 20

  /// Where the second part of a large file starts: the first line starting at or after
  /// its middle. Nil for a small file or one without such a line.
  static func secondPart(of bytes: [UInt8]) -> Int? {
    guard bytes.count >= twoPartBytesMin else { return nil }
    var i = bytes.count / 2
    while i < bytes.count && bytes[i] != 10 { i += 1 }
    guard i + 1 < bytes.count else { return nil }
    return i + 1
  }

  /// Appends the row of `line` when the fast path takes it; false leaves the line
  /// (and its error) to the general path.
  mutating func take(_ line: ArraySlice<UInt8>, into holdings: inout [ReferenceData.HoldingRow]) -> Bool {
    // Through a pointer: slicing the line into fields retained and released the file's
    // array four times a line (8% of a 1M-account run, in retain/release).
    line.withUnsafeBufferPointer { take(row: $0, into: &holdings) }
  }

  private mutating func take(
    row line: UnsafeBufferPointer<UInt8>, into holdings: inout [ReferenceData.HoldingRow]
  )
    -> Bool
  {
    guard let row = row(of: line) else { return false }
    holdings.append(row)
    return true
  }

  /// The row of `line` when the fast path takes it; nil leaves the line (and its error)
  /// to the general path.
  @inline(__always)
  private mutating func row(of line: UnsafeBufferPointer<UInt8>) -> ReferenceData.HoldingRow? {
    let raw = UnsafeRawBufferPointer(line)
    // Exactly three commas, every byte ASCII: one pass, eight bytes at a time.
    guard let commas = ByteScan.commas(in: raw, from: 0, to: raw.count, expected: 3) else { return nil }
    let c0 = Int(commas.c0)
    let c1 = Int(commas.c1)
    let c2 = Int(commas.c2)
    let accountField = UnsafeRawBufferPointer(rebasing: raw[0..<c0])
    let securityField = UnsafeRawBufferPointer(rebasing: raw[(c0 + 1)..<c1])
    guard !accountField.isEmpty, !securityField.isEmpty,
      let quantity = Fields.quantity(line[(c1 + 1)..<c2]), quantity > 0,
      let acquired = date(UnsafeRawBufferPointer(rebasing: raw[(c2 + 1)...]))
    else { return nil }
    let account: Int32
    if lastAccount.index >= 0 && lastAccount.bytes.withUnsafeBytes({ ByteScan.equal(accountField, $0) }) {
      account = lastAccount.index
    } else if Int(lastAccount.index) + 1 < accounts.count,
      Ident(accounts[Int(lastAccount.index) + 1].id).hasBytes(accountField)
    {
      // Holdings usually list accounts in the order of accounts.csv: the next account
      // is read in sequence, where the index lookup would miss the cache.
      account = lastAccount.index + 1
      remember(accountField, account)
    } else {
      guard let found = accountIds[bytes: accountField] else { return nil }
      account = found
      remember(accountField, found)
    }
    guard let security = security(securityField) else { return nil }
    return .init(account: account, security: security, quantity: quantity, acquiredDate: acquired)
  }

  /// `Fields.date` of an acquired-date field, through `dateMemo`: a file of millions of
  /// lots holds a few thousand dates, and checking one (`CalendarDate.isValid`) cost a
  /// sixth of a line.
  @inline(__always)
  private mutating func date(_ field: UnsafeRawBufferPointer) -> Int32? {
    guard field.count == 8 else { return nil }
    let key = field.loadUnaligned(as: UInt64.self)
    let slot = Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> Self.memoShift)
    // A slot's date is 0 only while it is empty (no valid date is 0): eight bytes that
    // read as the empty key (eight NULs, ASCII) are not taken for a date.
    if dateMemo[slot].key == key && dateMemo[slot].date != 0 { return dateMemo[slot].date }
    guard let date = Fields.date(field) else { return nil }
    dateMemo[slot] = (key, date)
    return date
  }

  /// `securityIds[bytes: field]` through `securityMemo`.
  @inline(__always)
  private mutating func security(_ field: UnsafeRawBufferPointer) -> Int32? {
    guard field.count <= 8 else { return securityIds[bytes: field] }
    var key: UInt64 = 0
    for i in 0..<field.count { key |= UInt64(field[i]) << UInt64(8 * i) }
    let slot = Int(
      truncatingIfNeeded: ((key ^ UInt64(field.count)) &* 0x9E37_79B9_7F4A_7C15) >> Self.memoShift)
    let cached = securityMemo[slot]
    if cached.security >= 0 && cached.key == key && cached.count == field.count { return cached.security }
    guard let found = securityIds[bytes: field] else { return nil }
    securityMemo[slot] = (key, field.count, found)
    return found
  }

  /// Keeps a copy of the account's bytes (in the same buffer each time).
  private mutating func remember(_ bytes: UnsafeRawBufferPointer, _ index: Int32) {
    lastAccount.bytes.removeAll(keepingCapacity: true)
    lastAccount.bytes.append(contentsOf: bytes)
    lastAccount.index = index
  }

  /// The rows of the lines from `start` on, taken on another core; `wait()` gives them.
  func parseInBackground(_ bytes: [UInt8], from start: Int) -> BackgroundWork<Part> {
    let base = self
    return BackgroundWork {
      var parser = base
      var rows: [ReferenceData.HoldingRow] = []
      rows.reserveCapacity(Fields.lineFeedCount(bytes, in: start..<bytes.count) + 1)
      var reader = LineReader(bytes, from: start, firstNumber: 1)
      var part = Part(rows: [], stoppedAt: bytes.count, lines: 0)
      while true {
        let offset = reader.offset
        guard let (_, line) = reader.next() else { break }
        guard parser.take(line, into: &rows) else {
          part.stoppedAt = offset
          break
        }
        part.lines += 1
      }
      part.rows = rows
      return part
    }
  }

  /// Where a whole holdings file's two parts lie and how many lines each has: what
  /// `parseWhole` needs before it fills rows, none of it depending on the accounts (the
  /// reference parser has it counted while it indexes the accounts).
  struct Layout: Sendable {
    /// The first data line's offset (after the header), where the second part starts,
    /// and the lines of each part.
    var start: Int, split: Int, firstLines: Int, secondLines: Int
  }

  /// The layout of `file` when its header line is exactly `header`; nil otherwise.
  static func layout(_ file: UnsafeRawBufferPointer, header: String) -> Layout? {
    let bytes = file.bindMemory(to: UInt8.self)
    var start = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
    let headerLine = Self.line(in: bytes, at: start)
    guard UnsafeBufferPointer(rebasing: bytes[headerLine.line]).elementsEqual(header.utf8) else { return nil }
    start = headerLine.next
    // The second part starts at the first line at or after the middle.
    var split = bytes.count
    if bytes.count >= Self.twoPartBytesMin {
      var i = max(start, bytes.count / 2)
      while i < bytes.count && bytes[i] != 10 { i += 1 }
      split = min(i + 1, bytes.count)
    }
    // Every line the fast path takes is one row, so the rows are the lines: the parts'
    // lines are counted first (the count reads the whole mapping), then both parts
    // write into one array sized for them (appending the second part's array to the
    // first's copied the first part again into fresh pages, ~60 ms of the 1M-account
    // run's main thread).
    return Layout(
      start: start, split: split, firstLines: Self.lineCount(in: bytes, from: start, to: split),
      secondLines: Self.lineCount(in: bytes, from: split, to: bytes.count))
  }

  /// The rows of a whole holdings file the caller keeps in memory it does not own as a
  /// Swift array (a mapped file), laid out by `layout(_:header:)`: only lines the fast
  /// path takes, lines split as `LineReader` splits them (a leading byte-order mark
  /// skipped, a CR before LF dropped). The second part is parsed on another core. Nil
  /// as soon as anything else is found: the caller then parses the file the general
  /// way, which names the problem and its line.
  func parseWhole(_ file: UnsafeRawBufferPointer, layout: Layout) -> [ReferenceData.HoldingRow]? {
    let bytes = file.bindMemory(to: UInt8.self)
    let (start, split, firstLines, secondLines) = (
      layout.start, layout.split, layout.firstLines, layout.secondLines
    )
    precondition(
      start >= 0 && start <= split && split <= bytes.count && firstLines >= 0 && secondLines >= 0,
      "a holdings layout within its file")
    let total = firstLines + secondLines
    var complete = false
    let rows = [ReferenceData.HoldingRow](unsafeUninitializedCapacity: total) { buffer, initialized in
      // Rows are plain values (no references): a part that stopped early leaves
      // nothing to deinitialize, and `initialized` stays 0.
      let out = buffer.baseAddress
      let base = self
      let secondPart = BackgroundWork { () -> Int in
        var parser = base
        return parser.fill(
          bytes, from: split, to: bytes.count, into: out.map { $0 + firstLines }, room: secondLines)
      }
      var parser = self
      let firstTaken = parser.fill(bytes, from: start, to: split, into: out, room: firstLines)
      let secondTaken = secondPart.wait()
      if firstTaken == firstLines && secondTaken == secondLines {
        initialized = total
        complete = true
      }
    }
    return complete ? rows : nil
  }

  /// Lines in `bytes[start..<end]` (`start` begins a line): its line feeds, and one more
  /// for a last line without one.
  private static func lineCount(in bytes: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> Int {
    guard start < end else { return 0 }
    let feeds = ByteScan.lineFeedCount(in: UnsafeRawBufferPointer(bytes), from: start, to: end)
    return bytes[end - 1] == 10 ? feeds : feeds + 1
  }

  /// Writes the rows of the lines in `bytes[start..<end]` (`start` begins a line) to
  /// `out` (`room` of them: the lines `lineCount` found); returns how many it wrote,
  /// stopping at the first line the fast path does not take.
  private mutating func fill(
    _ bytes: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int,
    into out: UnsafeMutablePointer<ReferenceData.HoldingRow>?, room: Int
  ) -> Int {
    var taken = 0
    var position = start
    while position < end {
      let (line, next) = Self.line(in: bytes, at: position, end: end)
      precondition(taken < room, "holdings: a part has exactly the lines it counted")
      guard let out, let row = row(of: UnsafeBufferPointer(rebasing: bytes[line])) else { return taken }
      (out + taken).initialize(to: row)
      taken += 1
      position = next
    }
    return taken
  }

  /// The line starting at `start`: its bytes without LF (and without a CR before it), and
  /// where the next line starts.
  @inline(__always)
  private static func line(in bytes: UnsafeBufferPointer<UInt8>, at start: Int, end: Int? = nil)
    -> (line: Range<Int>, next: Int)
  {
    let end = end ?? bytes.count
    let stop = ByteScan.lineFeed(in: UnsafeRawBufferPointer(bytes), from: start, to: end)
    var lineEnd = stop
    if lineEnd > start && bytes[lineEnd - 1] == 13 { lineEnd -= 1 }
    return (start..<lineEnd, stop + 1)
  }

  /// What the other core took: its rows, where it stopped (the first line it did not
  /// take, or the end of the file) and how many lines it took.
  struct Part: Sendable {
    var rows: [ReferenceData.HoldingRow]
    var stoppedAt: Int
    var lines: Int
  }
}
