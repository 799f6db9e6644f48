// V1 as a `BusinessKernel` (KernelAPI): most requirements are V1's own methods; the
// restart and the holdings walk are put together here.
import KernelAPI

extension V1Kernel: BusinessKernel {
  public static let versionName = "v1"

  public var plantedFault: PlantedFault? { fees.plantedFault }

  public var appliedSeq: Int64 { globals.appliedSeq }

  public static func restore(
    opening: consuming V1Kernel,
    stored: ((StateTable, Int32, [UInt8]) throws -> Void) throws -> Void
  ) throws -> V1Kernel {
    let reference = ReferenceData(
      calendar: opening.calendar, securities: [], participants: [], units: [], accounts: [], holdings: [],
      feeRows: opening.feeRows)
    let fault = opening.plantedFault
    // `consume`: the opening state ends here, so `tables` owns its arrays alone and the
    // overlays copy no table.
    var tables = StoredTables(state: consume opening)
    try stored { table, id, bytes in try tables.overlay(table, id: id, bytes: bytes) }
    return V1Kernel(restoring: tables, reference: reference, plantedFault: fault)
  }

  public func forEachHolding(
    _ body: (_ account: Ident, _ security: Ident, _ quantity: Int64, _ available: Int64, _ withheld: Int64) ->
      Void
  ) {
    forEachHolding(in: positionOrder(), body)
  }

  /// The accounts are cut by rank (byte order of their ids) into `parts` runs of about
  /// equal count (`positionOrder(part:of:)`).
  public func forEachHolding(
    part: Int, of parts: Int,
    _ body: (_ account: Ident, _ security: Ident, _ quantity: Int64, _ available: Int64, _ withheld: Int64) ->
      Void
  ) {
    forEachHolding(in: positionOrder(part: part, of: parts), body)
  }

  /// The rows of the positions in `order` that hold shares.
  private func forEachHolding(
    in order: [Int32],
    _ body: (_ account: Ident, _ security: Ident, _ quantity: Int64, _ available: Int64, _ withheld: Int64) ->
      Void
  ) {
    let rows = positions.rows
    for k in order.indices {
      // The day's new positions lie far apart: the rows a few places ahead are loaded
      // while this one is written out.
      if k + holdingPrefetchDistance < order.count {
        rows.prefetchWhole(Int(order[k + holdingPrefetchDistance]))
      }
      let p = rows[Int(order[k])]
      guard p.quantity > 0 else { continue }
      body(
        accounts.rows[Int(p.account)].id, securities.rows[Int(p.security)].code, p.quantity, p.available,
        p.withheld)
    }
  }
}

/// Rows of holdings.csv ahead of the one written whose position row is prefetched.
let holdingPrefetchDistance = 16
