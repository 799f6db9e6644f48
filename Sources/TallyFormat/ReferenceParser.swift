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
  public static func parse(prefix: String, contents: FileContents) throws(InputError) -> ReferenceData {
    /// Calls `body` for every data row of a file, streaming: nothing is kept per row
    /// (a holdings file has millions of lines). False when an optional file is missing.
    @discardableResult
    func forEachRow(
      _ name: String, required: Bool = true, reserve: (Int) -> Void = { _ in },
      fast: (ArraySlice<UInt8>) -> Bool = { _ in false },
      _ body: (Int, [ArraySlice<UInt8>]) throws(InputError) -> Void
    ) throws(InputError) -> Bool {
      let path = prefix.isEmpty ? name : prefix + "/" + name
      guard let bytes = contents(name) else {
        if required {
          throw InputError(file: path, line: 0, problem: "required file is missing or unreadable")
        }
        return false
      }
      reserve(Fields.lineCount(bytes))
      let header = headers[name]!
      let columns = header.split(separator: ",").map(String.init)
      var sawHeader = false
      // One array of fields for every line (millions of lines: no array each).
      var fields: [ArraySlice<UInt8>] = []
      fields.reserveCapacity(columns.count + 1)
      for (number, line) in LineReader(bytes) {
        // A data line that `fast` takes whole is done; anything else (the header, a
        // line it does not take) goes the general way, which names the problem.
        if sawHeader && fast(line) { continue }
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
      if !sawHeader {
        throw InputError(file: path, line: 1, problem: "header must be exactly '\(header)', file is empty")
      }
      return true
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
    try forEachRow(
      "accounts.csv",
      reserve: {
        accounts.reserveCapacity($0)
        accountIds.reserveCapacity($0)
      }
    ) { (n: Int, f: [ArraySlice<UInt8>]) throws(InputError) in
      let kind = try value(
        Fields.accountKind(f[1]), "accounts.csv", n, "kind", f[1], "INDIVIDUAL or INSTITUTION")
      let id = Ident(Fields.text(f[0]))
      guard accountIds.insertIfAbsent(id, Int32(accounts.count)) else {
        throw fail("accounts.csv", n, "account", "account \(id) repeats")
      }
      accounts.append((id.text, kind))
    }

    var holdings: [ReferenceData.HoldingRow] = []
    // Lines of one account follow each other: its bytes and index are kept from the last line.
    var lastAccount: (bytes: ArraySlice<UInt8>, index: Int32) = ([], -1)
    /// A holdings line that is all ASCII, has four non-empty fields and passes every
    /// check is appended here in one pass; false leaves the line (and its error) to the
    /// general path below.
    func fastHolding(_ line: ArraySlice<UInt8>) -> Bool {
      var commas = (0, 0, 0)
      var found = 0
      var i = line.startIndex
      while i < line.endIndex {
        let b = line[i]
        if b >= 0x80 { return false }
        if b == UInt8(ascii: ",") {
          switch found {
          case 0: commas.0 = i
          case 1: commas.1 = i
          case 2: commas.2 = i
          default: return false
          }
          found += 1
        }
        i += 1
      }
      guard found == 3 else { return false }
      let accountField = line[line.startIndex..<commas.0]
      let securityField = line[(commas.0 + 1)..<commas.1]
      let quantityField = line[(commas.1 + 1)..<commas.2]
      let dateField = line[(commas.2 + 1)..<line.endIndex]
      guard !accountField.isEmpty, !securityField.isEmpty, let quantity = Fields.quantity(quantityField),
        quantity > 0, let acquired = Fields.date(dateField)
      else { return false }
      let account: Int32
      if lastAccount.index >= 0 && accountField.elementsEqual(lastAccount.bytes) {
        account = lastAccount.index
      } else if Int(lastAccount.index) + 1 < accounts.count,
        accounts[Int(lastAccount.index) + 1].id.utf8.elementsEqual(accountField)
      {
        // Holdings usually list accounts in the order of accounts.csv: the next account
        // is read in sequence, where the index lookup would miss the cache.
        account = lastAccount.index + 1
        lastAccount = (accountField, account)
      } else {
        guard let found = accountField.withUnsafeBytes({ accountIds[bytes: $0] }) else { return false }
        account = found
        lastAccount = (accountField, found)
      }
      guard let security = securityField.withUnsafeBytes({ securityIds[bytes: $0] }) else { return false }
      holdings.append(.init(account: account, security: security, quantity: quantity, acquiredDate: acquired))
      return true
    }
    try forEachRow("holdings.csv", reserve: { holdings.reserveCapacity($0) }, fast: fastHolding) {
      (n: Int, f: [ArraySlice<UInt8>]) throws(InputError) in
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
