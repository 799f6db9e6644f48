// Reads a state folder without the reference data: for `tally inspect` and for
// operators. Decodes every row, recomputes the checksum and compares it.
import TallyCore

public struct StateInspection {
  public var format: String
  public var tables = StoredTables()
  public var rowCounts: [(table: StateTable, rows: Int)] = []
  public var storedChecksum: StateChecksum?
  public var recomputedChecksum = StateChecksum()

  public var verified: Bool { storedChecksum == recomputedChecksum }
  public var appliedSeq: Int64 { tables.globals.appliedSeq }

  public init(store: any StateStore) throws {
    guard let f = try store.value(for: StateKeys.format) else {
      throw DurableError("not a Tally state folder (no format marker)")
    }
    format = String(decoding: f, as: UTF8.self)
    for table in StateTable.allCases {
      var n = 0
      try store.scan(prefix: [table.rawValue]) { key, value in
        guard let id = StateKeys.rowId(key) else { throw DurableError("unexpected key \(key.hexString)") }
        try tables.add(table, id: id, bytes: value)
        recomputedChecksum.add(RowHash(table: table.rawValue, id: id, bytes: value))
        n += 1
        return true
      }
      rowCounts.append((table, n))
    }
    if let c = try store.value(for: StateKeys.checksum) { storedChecksum = try StateChecksum(decoding: c) }
  }
}
