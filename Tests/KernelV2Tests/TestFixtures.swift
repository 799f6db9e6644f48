import KernelAPI
import KernelV2
import XCTest

/// Runs the events of the fixture at `dir` through a V2 kernel, takes its encoded rows,
/// changes the first trade row's record with `edit` (re-encoding it in place) and restores
/// a fresh kernel from those rows. Returns the rows as handed to the restore and the
/// restored kernel, or nil after recording a failure when the run left no trade rows.
func restoreWithEditedTradeRow(
  _ dir: String, file: StaticString = #filePath, line: UInt = #line, edit: (inout TradeRecord) -> Void
) throws -> (rows: [(StateTable, Int32, [UInt8])], restored: V2Kernel)? {
  let reference = try loadReference(dir + "/reference")
  var k = V2Kernel(reference: reference, plantedFault: nil)
  for (i, line) in eventLines(dir + "/events.txt").enumerated() { applyLine(&k, line, seq: Int64(i + 1)) }
  var rows: [(StateTable, Int32, [UInt8])] = []
  k.forEachEncodedRow { t, id, bytes in rows.append((t, id, bytes)) }
  guard let at = rows.firstIndex(where: { $0.0 == .trades }) else {
    XCTFail("no trade rows", file: file, line: line)
    return nil
  }
  var r = ByteReader(rows[at].2)
  var t = try TradeRecord(from: &r)
  edit(&t)
  var w = ByteWriter(capacity: 256)
  t.encode(into: &w)
  rows[at].2 = w.bytes
  let restored = try V2Kernel.restore(opening: V2Kernel(reference: reference, plantedFault: nil)) { put in
    for (table, id, bytes) in rows { try put(table, id, bytes) }
  }
  return (rows, restored)
}
