// SPEC §2 reference folder: every file checked before anything runs. An error
// names the file, the line, the field and what is wrong.
import KernelAPI

/// A problem with an input file: where it is and what is wrong.
public struct InputError: Error, CustomStringConvertible, Sendable, Equatable {
  public var file: String
  /// 1-based line number, 0 when the problem is the file as a whole.
  public var line: Int
  /// The field's name, or nil when the problem is the line as a whole.
  public var field: String?
  public var problem: String

  public init(file: String, line: Int, field: String? = nil, problem: String) {
    self.file = file
    self.line = line
    self.field = field
    self.problem = problem
  }

  public var description: String {
    var s = file
    if line > 0 { s += ":\(line)" }
    if let field { s += ": field '\(field)'" }
    return s + ": " + problem
  }
}

public enum ReferenceParser {
  /// Rows between an account id's index slot starting to load and its insert: enough
  /// for a miss to arrive meanwhile, few enough for the slots to stay in cache.
  static let accountSlotsAhead = 8

  /// The row of an accounts.csv line that is all ASCII, has one comma, a non-empty
  /// account and a kind as SPEC writes it: what the general path makes of it (which
  /// names the problem of any other line).
  @inline(__always)
  static func fastAccountRow(_ line: ArraySlice<UInt8>) -> (id: String, kind: AccountKind)? {
    let comma = line.withUnsafeBytes { ByteScan.commas(in: $0, from: 0, to: $0.count, expected: 1) }
    guard let comma, comma.c0 > 0 else { return nil }
    let split = line.startIndex + Int(comma.c0)
    // The kind as the general path reads it (`Fields.accountKind`: one place for its names).
    guard let kind = Fields.accountKind(line[(split + 1)...]) else { return nil }
    return (Fields.text(line[..<split]), kind)
  }

  /// The files of a reference folder, by name; nil for one that is missing.
  public typealias FileContents = (String) -> [UInt8]?

  static let headers: [String: String] = [
    "calendar.csv": "date",
    "securities.csv": "security,isin,name,kind",
    "participants.csv": "participant,name",
    "units.csv": "unit,participant",
    "accounts.csv": "account,kind",
    "holdings.csv": "account,security,quantity,acquired_date",
    "fees.csv": "kind,fee,side,rate,effective_date",
  ]

  public static let requiredFiles = [
    "calendar.csv", "securities.csv", "participants.csv", "units.csv", "accounts.csv", "holdings.csv",
  ]

  /// Parses and validates a whole folder; `prefix` is how files are named in errors (the folder path).
  /// `mappedHoldings`, when given, is holdings.csv's bytes in memory the caller keeps
  /// (a mapped file): read through a pointer, without a copy into an array, when every
  /// line takes the fast path; otherwise copied and parsed the general way.
  public static func parse(
    prefix: String, contents: FileContents, mappedHoldings: UnsafeRawBufferPointer? = nil
  ) throws(InputError) -> ReferenceData {
    /// Calls `body` for every data row of a file, streaming: nothing is kept per row
    /// (a holdings file has millions of lines). False when an optional file is missing.
    /// `preloaded`: the file's bytes, already read.
    @discardableResult
    func forEachRow(
      preloaded: [UInt8]? = nil, _ name: String, required: Bool = true, reserve: (Int) -> Void = { _ in },
      fast: (Int, ArraySlice<UInt8>) -> Bool = { _, _ in false },
      _ body: (Int, [ArraySlice<UInt8>]) throws(InputError) -> Void
    ) throws(InputError) -> Bool {
      let path = prefix.isEmpty ? name : prefix + "/" + name
      guard let bytes = preloaded ?? contents(name) else {
        if required {
          throw InputError(file: path, line: 0, problem: "required file is missing or unreadable")
        }
        return false
      }
      reserve(Fields.lineCount(bytes))
      var sawHeader = false
      try forEachRow(name, path, bytes, LineReader(bytes), sawHeader: &sawHeader, fast: fast, body)
      if !sawHeader {
        throw InputError(
          file: path, line: 1, problem: "header must be exactly '\(headers[name]!)', file is empty")
      }
      return true
    }
    /// The rows of the lines `reader` gives (a whole file or a part of it), up to
    /// `endOffset` when given.
    func forEachRow(
      _ name: String, _ path: String, _ bytes: [UInt8], _ reader: LineReader, endOffset: Int? = nil,
      sawHeader: inout Bool, fast: (Int, ArraySlice<UInt8>) -> Bool,
      _ body: (Int, [ArraySlice<UInt8>]) throws(InputError) -> Void
    ) throws(InputError) {
      let header = headers[name]!
      let columns = header.split(separator: ",").map(String.init)
      // One array of fields for every line (millions of lines: no array each).
      var fields: [ArraySlice<UInt8>] = []
      fields.reserveCapacity(columns.count + 1)
      var reader = reader
      while endOffset.map({ reader.offset < $0 }) ?? true, let (number, line) = reader.next() {
        // A data line that `fast` takes whole is done; anything else (the header, a
        // line it does not take) goes the general way, which names the problem.
        if sawHeader && fast(number, line) { continue }
        guard Fields.isValidUTF8(line) else {
          throw InputError(file: path, line: number, problem: "line is not valid UTF-8")
        }
        if !sawHeader {
          guard line.elementsEqual(header.utf8) else {
            throw InputError(
              file: path, line: number,
              problem: "header must be exactly '\(header)', found '\(Fields.text(line))'")
          }
          sawHeader = true
          continue
        }
        if line.isEmpty { throw InputError(file: path, line: number, problem: "blank lines are not allowed") }
        Fields.split(line, into: &fields)
        guard fields.count == columns.count else {
          throw InputError(
            file: path, line: number,
            problem: "expected \(columns.count) fields (\(header)), found \(fields.count)")
        }
        for (i, f) in fields.enumerated() where f.isEmpty {
          throw InputError(file: path, line: number, field: columns[i], problem: "empty")
        }
        try body(number, fields)
      }
    }
    func fail(_ name: String, _ line: Int, _ field: String?, _ problem: String) -> InputError {
      InputError(
        file: prefix.isEmpty ? name : prefix + "/" + name, line: line, field: field, problem: problem)
    }
    func value<T>(
      _ parsed: T?, _ name: String, _ line: Int, _ field: String, _ raw: ArraySlice<UInt8>, _ what: String
    )
      throws(InputError) -> T
    {
      guard let parsed else { throw fail(name, line, field, "'\(Fields.text(raw))' is not \(what)") }
      return parsed
    }

    var calendar: [Int32] = []
    var seenDates = Set<Int32>()
    try forEachRow("calendar.csv") { (n: Int, f: [ArraySlice<UInt8>]) throws(InputError) in
      let d = try value(Fields.date(f[0]), "calendar.csv", n, "date", f[0], "a date (YYYYMMDD)")
      guard seenDates.insert(d).inserted else { throw fail("calendar.csv", n, "date", "date \(d) repeats") }
      calendar.append(d)
    }

    var securities: [ReferenceData.SecurityRow] = []
    var securityIds = FastIndex<Ident>()
    try forEachRow("securities.csv") { (n: Int, f: [ArraySlice<UInt8>]) throws(InputError) in
      let kind = try value(
        Fields.securityKind(f[3]), "securities.csv", n, "kind", f[3], "STOCK, FUND or BOND")
      let code = Fields.text(f[0])
      guard securityIds[Ident(code)] == nil else {
        throw fail("securities.csv", n, "security", "security \(code) repeats")
      }
      securityIds[Ident(code)] = Int32(securities.count)
      securities.append(.init(code: code, isin: Fields.text(f[1]), name: Fields.text(f[2]), kind: kind))
    }

    var participants: [(id: String, name: String)] = []
    var participantIds = Set<Ident>()
    try forEachRow("participants.csv") { (n: Int, f: [ArraySlice<UInt8>]) throws(InputError) in
      let id = Fields.text(f[0])
      guard participantIds.insert(Ident(id)).inserted else {
        throw fail("participants.csv", n, "participant", "participant \(id) repeats")
      }
      participants.append((id, Fields.text(f[1])))
    }

    var units: [(id: String, participant: String)] = []
    var unitIds = Set<Ident>()
    try forEachRow("units.csv") { (n: Int, f: [ArraySlice<UInt8>]) throws(InputError) in
      let id = Fields.text(f[0])
      let participant = Fields.text(f[1])
      guard unitIds.insert(Ident(id)).inserted else {
        throw fail("units.csv", n, "unit", "unit \(id) repeats")
      }
      guard participantIds.contains(Ident(participant)) else {
        throw fail("units.csv", n, "participant", "unknown participant \(participant)")
      }
      units.append((id, participant))
    }

    var accounts: [(id: String, kind: AccountKind)] = []
    var accountIds = FastIndex<Ident>()
    // The rows first, then their index, each row's slot loaded `accountSlotsAhead` rows
    // before its insert: a million inserts into a 48 MB table missed the cache one after
    // another (~0.15 s of a 1M-account run, perf). An error that stops the rows is
    // thrown after the rows before it are indexed, so that a repeat above it is still
    // the error reported, as when each row was indexed as it was read.
    // The line of each row: kept by the line-by-line path; row i is line i + 2 when the
    // file was read whole (a file of plain lines has no blank or comment line).
    var accountLines: [Int]? = nil
    var accountHashes: [UInt64] = []
    var rowsError: InputError? = nil
    let accountBytes = contents("accounts.csv")
    if let accountBytes,
      let fast = FastAccountLines.parseWhole(accountBytes, header: headers["accounts.csv"]!)
    {
      accounts = fast.rows
      accountHashes = fast.hashes
    } else {
      var lines: [Int] = []
      do {
        try forEachRow(
          preloaded: accountBytes,
          "accounts.csv",
          reserve: {
            accounts.reserveCapacity($0)
            lines.reserveCapacity($0)
          },
          fast: { n, line in
            // A million lines: the common one taken whole, without an array of fields.
            guard let row = Self.fastAccountRow(line) else { return false }
            accounts.append(row)
            lines.append(n)
            return true
          }
        ) { (n: Int, f: [ArraySlice<UInt8>]) throws(InputError) in
          let kind = try value(
            Fields.accountKind(f[1]), "accounts.csv", n, "kind", f[1], "INDIVIDUAL or INSTITUTION")
          accounts.append((Fields.text(f[0]), kind))
          lines.append(n)
        }
      } catch {
        rowsError = error
      }
      accountLines = lines
      accountHashes = accounts.map { Ident($0.id).fastHash }
    }
    // holdings.csv's lines counted on another core while this one indexes the accounts
    // (that core was idle meanwhile, ~50 ms on the 1M-account day, perf timeline).
    let holdingsHeader = headers["holdings.csv"]!
    let holdingsLayout = mappedHoldings.map { file in
      BackgroundWork { FastHoldingLines.layout(file, header: holdingsHeader) }
    }
    // The count reads the caller's mapping: it ends before this returns or throws.
    defer { _ = holdingsLayout?.wait() }
    accountIds.reserveCapacity(accounts.count)
    let ahead = Self.accountSlotsAhead
    for i in accounts.indices {
      if i + ahead < accounts.count { accountIds.prefetchSlot(hash: accountHashes[i + ahead]) }
      guard accountIds.insertIfAbsent(Ident(accounts[i].id), hash: accountHashes[i], Int32(i)) else {
        throw fail("accounts.csv", accountLines?[i] ?? i + 2, "account", "account \(accounts[i].id) repeats")
      }
    }
    if let rowsError { throw rowsError }

    var holdings: [ReferenceData.HoldingRow] = []
    var fastHoldings = FastHoldingLines(accounts: accounts, accountIds: accountIds, securityIds: securityIds)
    // Lines of one account follow each other: the general path keeps its index too.
    var lastAccount: (bytes: ArraySlice<UInt8>, index: Int32) = ([], -1)
    func holding(_ n: Int, _ f: [ArraySlice<UInt8>]) throws(InputError) {
      let account: Int32
      if lastAccount.index >= 0 && f[0].elementsEqual(lastAccount.bytes) {
        account = lastAccount.index
      } else {
        guard let found = f[0].withUnsafeBytes({ accountIds[bytes: $0] }) else {
          throw fail("holdings.csv", n, "account", "unknown account \(Fields.text(f[0]))")
        }
        account = found
        lastAccount = (f[0], found)
      }
      guard let security = f[1].withUnsafeBytes({ securityIds[bytes: $0] }) else {
        throw fail("holdings.csv", n, "security", "unknown security \(Fields.text(f[1]))")
      }
      let quantity = try value(Fields.quantity(f[2]), "holdings.csv", n, "quantity", f[2], "a quantity")
      guard quantity > 0 else { throw fail("holdings.csv", n, "quantity", "must be > 0, found \(quantity)") }
      let acquired = try value(
        Fields.date(f[3]), "holdings.csv", n, "acquired_date", f[3], "a date (YYYYMMDD)")
      holdings.append(.init(account: account, security: security, quantity: quantity, acquiredDate: acquired))
    }
    let holdingsPath = prefix.isEmpty ? "holdings.csv" : prefix + "/holdings.csv"
    /// holdings.csv the general way (its lines through the fast path where they can).
    func parseHoldingsFile() throws(InputError) {
      guard let holdingBytes = mappedHoldings.map({ Array($0) }) ?? contents("holdings.csv") else {
        throw InputError(file: holdingsPath, line: 0, problem: "required file is missing or unreadable")
      }
      holdings.reserveCapacity(Fields.lineCount(holdingBytes))
      var sawHoldingsHeader = false
      if let split = FastHoldingLines.secondPart(of: holdingBytes) {
        // Millions of lines: the second half is read on another core while this one reads
        // the first (`FastHoldingLines.parseInBackground`). Rows, line numbers and errors
        // are those of one pass: the halves' rows are joined in file order, and a line the
        // fast path does not take stops the other core, leaving the rest of the file to the
        // general path here, line numbers counted on.
        let background = fastHoldings.parseInBackground(holdingBytes, from: split)
        var firstPart = LineReader(holdingBytes)
        let firstError: InputError?
        do {
          try forEachRow(
            "holdings.csv", holdingsPath, holdingBytes, firstPart, endOffset: split,
            sawHeader: &sawHoldingsHeader,
            fast: { fastHoldings.take($1, into: &holdings) }, holding)
          firstError = nil
        } catch { firstError = error }
        let second = background.wait()
        if let firstError { throw firstError }
        holdings.append(contentsOf: second.rows)
        if second.stoppedAt < holdingBytes.count {
          // The lines before the split, then those the other core took.
          var linesBefore = 0
          firstPart = LineReader(holdingBytes)
          while firstPart.offset < split, firstPart.next() != nil { linesBefore += 1 }
          try forEachRow(
            "holdings.csv", holdingsPath, holdingBytes,
            LineReader(holdingBytes, from: second.stoppedAt, firstNumber: linesBefore + second.lines + 1),
            sawHeader: &sawHoldingsHeader, fast: { fastHoldings.take($1, into: &holdings) }, holding)
        }
      } else {
        try forEachRow(
          "holdings.csv", holdingsPath, holdingBytes, LineReader(holdingBytes), sawHeader: &sawHoldingsHeader,
          fast: { fastHoldings.take($1, into: &holdings) }, holding)
      }
      if !sawHoldingsHeader {
        throw InputError(
          file: holdingsPath, line: 1,
          problem: "header must be exactly '\(headers["holdings.csv"]!)', file is empty")
      }
    }
    if let mappedHoldings, let layout = holdingsLayout?.wait(),
      let rows = fastHoldings.parseWhole(mappedHoldings, layout: layout)
    {
      // Every line took the fast path (the common case, no copy of the file).
      holdings = rows
    } else {
      try parseHoldingsFile()
    }

    var feeRows: [FeeRateRow] = []
    struct FeeKey: Hashable {
      var kind: SecurityKind, fee: FeeKind, side: FeeSide, date: Int32
    }
    var seen = Set<FeeKey>()
    do {
      try forEachRow("fees.csv", required: false) { (n: Int, f: [ArraySlice<UInt8>]) throws(InputError) in
        let kind = try value(Fields.securityKind(f[0]), "fees.csv", n, "kind", f[0], "STOCK, FUND or BOND")
        let fee = try value(
          FeeKind.allCases.first { f[1].elementsEqual($0.word.utf8) }, "fees.csv", n, "fee", f[1],
          "handling, regulatory, transfer or stamp")
        let side = try value(
          FeeSide.allCases.first { f[2].elementsEqual($0.word.utf8) }, "fees.csv", n, "side", f[2],
          "both, buy or sell")
        let rateText = Fields.text(f[3])
        _ = try value(
          FeeRateRow.isValidRateText(rateText) ? rateText : nil, "fees.csv", n, "rate", f[3],
          "a rate ([0-9]+(.[0-9]+)?, below 10, at most 18 significant fraction digits)")
        let date = try value(Fields.date(f[4]), "fees.csv", n, "effective_date", f[4], "a date (YYYYMMDD)")
        guard seen.insert(FeeKey(kind: kind, fee: fee, side: side, date: date)).inserted else {
          throw fail("fees.csv", n, nil, "a row with this kind, fee, side and effective_date repeats")
        }
        feeRows.append(FeeRateRow(kind: kind, fee: fee, side: side, rateText: rateText, effectiveDate: date))
      }
    }
    return ReferenceData(
      calendar: calendar, securities: securities, participants: participants, units: units,
      accounts: accounts,
      holdings: holdings, feeRows: ReferenceData.feeTable(replacingWith: feeRows), accountLookup: accountIds,
      securityLookup: securityIds)
  }
}
