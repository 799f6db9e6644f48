// Reads a state folder for `tally inspect` and for operators: rebuilds the opening
// state from the reference folder (a state folder stores only the rows changed since
// it), lays the stored rows over it, recomputes the checksum and compares it. The
// canonical rows are the same for every kernel version; they are decoded here with V1's
// tables.
import KernelAPI
import KernelV1

public struct StateInspection {
  public var format: String
  /// What the folder says it was made with (`ReferenceMarker`), as an operator reads it.
  public var referenceMarker = ""
  public var tables = StoredTables()
  /// Rows per table in the state, and how many of them the folder stores (changed
  /// since the opening state).
  public var rowCounts: [(table: StateTable, rows: Int, stored: Int)] = []
  public var storedChecksum: StateChecksum?
  public var recomputedChecksum = StateChecksum()

  public var verified: Bool { storedChecksum == recomputedChecksum }
  public var appliedSeq: Int64 { tables.globals.appliedSeq }

  /// `referenceFiles`: the reference folder's files' digest (`DurableEngine.init`), for a
  /// folder marked with it (`ReferenceMarker`).
  public init(
    store: any StateStore, reference: ReferenceData, referenceFiles: (@Sendable () throws -> [UInt8])? = nil
  ) throws {
    guard let f = try store.value(for: StateKeys.format) else {
      throw DurableError("not a Tally state folder (no format marker)")
    }
    format = String(decoding: f, as: UTF8.self)
    guard f == Array(StateKeys.formatVersion.utf8) else {
      throw DurableError("state folder was written by '\(format)', this is '\(StateKeys.formatVersion)'")
    }
    let storedMarker = try store.value(for: StateKeys.reference)
    let expected: [UInt8]
    if let storedMarker, ReferenceMarker.isFiles(storedMarker) {
      guard let referenceFiles else {
        throw DurableError(
          "state folder was made from a reference folder's files; give that folder (--reference)")
      }
      expected = ReferenceMarker.files(try referenceFiles())
    } else {
      expected = referenceFingerprint(reference)
    }
    guard storedMarker == expected else {
      throw DurableError("state folder was made with other reference data; give its --reference")
    }
    let marker = ReferenceMarker.text(expected)
    if let l = try store.value(for: StateKeys.layout),
      StateLayout(rawValue: String(decoding: l, as: UTF8.self))?.logsInput ?? false
    {
      self = try StateInspection(inputLog: store, reference: reference, referenceFiles: referenceFiles)
      referenceMarker = marker
      return
    }
    referenceMarker = marker
    let opening = V1Kernel(reference: reference, plantedFault: nil)
    var (hashes, sum) = rowHashes(of: opening)
    var tables = StoredTables(state: consume opening)
    var stored: [StateTable: Int] = [:]
    try overlayStoredRows(store, hashes: &hashes, checksum: &sum, rowCount: { stored[$0] = $1 }) {
      try tables.overlay($0, id: $1, bytes: $2)
    }
    self.tables = tables
    recomputedChecksum = sum
    for table in StateTable.allCases {
      rowCounts.append((table, tables.count(of: table), stored[table] ?? 0))
    }
    if let c = try store.value(for: StateKeys.checksum) { storedChecksum = try StateChecksum(decoding: c) }
  }

  /// An input-log or segment-log folder: opened as the engine opens it (its last
  /// snapshot's checksum and every log entry's checksum verified, the logged events applied again, in memory
  /// only), so the state shown is the one a resumed run continues from. "Stored" counts
  /// the rows its snapshots hold.
  private init(
    inputLog store: any StateStore, reference: ReferenceData,
    referenceFiles: (@Sendable () throws -> [UInt8])?
  ) throws {
    format = StateKeys.formatVersion
    let durable = try DurableEngine<V1Kernel>(
      store: store, reference: reference, referenceFiles: referenceFiles)
    tables = StoredTables(state: durable.engine.state)
    recomputedChecksum = durable.engine.state.computeChecksum()
    storedChecksum = recomputedChecksum  // the open refused anything that did not verify
    var snapshots: Int64 = 1
    if let n = try store.value(for: StateKeys.snapshots) {
      var r = ByteReader(n)
      snapshots = try r.i64()
    }
    var stored: [StateTable: Int] = [:]
    try overlaySnapshotRows(store, snapshots: Int(snapshots), rowCount: { stored[$0] = $1 }) { _, _, _ in }
    for table in StateTable.allCases {
      rowCounts.append((table, tables.count(of: table), stored[table] ?? 0))
    }
  }
}
