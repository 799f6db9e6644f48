// V2Kernel: holdings.csv's rows (SPEC §5: by account, then by security, identifier
// bytes), walked whole or in parts that several threads walk at once
// (`forEachHolding(part:of:)`; ReportWriter renders each part on a core of its own).
//
// A part is a run of SPEC §5's account order, about 1/parts of the accounts, and it
// orders its own rows only, so that the ordering work is cut with the rows:
// - Account rows in identifier order (`accountsAscending`, what a reference usually
//   lists and what the trading day keeps unless an ACCOUNT sorts before an older one):
//   part p is the account rows n·p/parts ..< n·(p+1)/parts and an account's rank in it
//   is its row minus the run's first. Nothing is sorted.
// - Otherwise the runs are cut by identifier, at cut points that every part draws
//   alike from the state (ids of accounts spread evenly over the rows, a few hundred a
//   part, sorted). A part compares each id with its two cut points, sorts only its own
//   accounts (1/parts of the comparison sort the whole walk needs) and keeps their
//   ranks in a table by account row. Ids are compared as 16-byte keys in arrays of
//   their own (`V2IdentKey`), not by reaching into the account rows.
// - Every part reads every position row once: which account holds a position is only
//   in the row, and V2 keeps no positions-by-account index (the TRADE path would pay
//   for it). The scan keeps the part's live rows as (rank, row) pairs, a counting sort
//   by rank places them, and each account's few rows are ordered by security (an
//   insertion sort) just before they are handed over.
// The security order (a thousand codes) is needed whole by every part: each computes
// it (one pass when the security rows are in code order, as references list them).
// The parts only read the kernel: what a part builds is its own.

import KernelAPI

/// The accounts of one part of the holdings walk, ranked `0 ..< count` in SPEC §5's
/// account order.
struct V2AccountRun {
  var count: Int
  /// With `rankOf` nil, the run is the account rows `first ..< first + count` (the
  /// rows are in identifier order) and an account's rank is its row minus `first`.
  var first: Int32
  /// Else each account's rank in the run by account row, -1 for the other parts'.
  var rankOf: [Int32]?
}

extension V2Kernel {
  /// Account ids drawn for each part to cut the runs by when the account rows are not
  /// in identifier order: the runs then hold about n / parts accounts each, within a
  /// few percent, for a sort of a few hundred ids a part.
  static let accountCutSamples = 256

  /// Rows a part requests ahead of the one it hands over (a day's new positions lie far
  /// apart: their cache misses overlap).
  static let holdingsPrefetchAhead = 16

  /// holdings.csv's rows in SPEC §5 order: the walk in one part.
  public func forEachHolding(
    _ body: (_ account: Ident, _ security: Ident, _ quantity: Int64, _ available: Int64, _ withheld: Int64) ->
      Void
  ) {
    forEachHolding(part: 0, of: 1, body)
  }

  /// Part `part` of `parts` of holdings.csv's rows: the rows of the part's run of
  /// accounts (`accountRun`), in SPEC §5 order. The runs follow one another in account
  /// order and together hold every account once, so the parts walked one after another
  /// give the whole walk's rows in its order.
  public func forEachHolding(
    part: Int, of parts: Int,
    _ body: (_ account: Ident, _ security: Ident, _ quantity: Int64, _ available: Int64, _ withheld: Int64) ->
      Void
  ) {
    precondition(parts >= 1 && part >= 0 && part < parts, "holdings part \(part) of \(parts)")
    let run = accountRun(part: part, of: parts)
    if run.count == 0 { return }
    let (ends, live) = liveRows(of: run)
    var order = live
    let sRank = securityRanks()
    let rows = order.count
    let ahead = Self.holdingsPrefetchAhead
    for j in 0..<min(ahead, rows) { positions.prefetchWhole(Int(order[j])) }
    order.withUnsafeMutableBufferPointer { ids in
      positions.withUnsafeBufferPointer { pos in
        ends.withUnsafeBufferPointer { ends in
          sRank.withUnsafeBufferPointer { sRank in
            var from = 0
            for r in 0..<run.count where Int(ends[r]) > from {
              let end = Int(ends[r])
              var j = from
              while j < end && j + ahead < rows {
                positions.prefetchWhole(Int(ids[j + ahead]))
                j += 1
              }
              // By security code: an account holds a few securities, mostly bought
              // in no particular order.
              if end - from > 1 {
                for j in (from + 1)..<end {
                  let id = ids[j]
                  let key = sRank[Int(pos[Int(id)].security)]
                  var k = j
                  while k > from && sRank[Int(pos[Int(ids[k - 1])].security)] > key {
                    ids[k] = ids[k - 1]
                    k -= 1
                  }
                  ids[k] = id
                }
              }
              for j in from..<end {
                let p = pos[Int(ids[j])]
                body(
                  accounts[Int(p.account)].id, securities[Int(p.security)].code, p.quantity, p.available,
                  p.withheld)
              }
              from = end
            }
            precondition(from == rows, "V2: every live row of a holdings part handed over")
          }
        }
      }
    }
  }

  /// The accounts of part `part` of `parts` (`V2AccountRun`). The runs of parts 0, 1, …
  /// follow one another in SPEC §5's account order and cover every account once: by
  /// rows when the rows are in identifier order, else between cut points drawn alike
  /// by every part (part p's run: ids from cut p on, before cut p + 1).
  func accountRun(part: Int, of parts: Int) -> V2AccountRun {
    let n = accounts.count
    if accountsAscending || n == 0 {
      let first = n * part / parts
      return V2AccountRun(count: n * (part + 1) / parts - first, first: Int32(first), rankOf: nil)
    }
    // Identifiers as keys (`V2IdentKey`): the cut points and the part's own accounts
    // are compared and sorted as words, in arrays of their own.
    let mine = accounts.withUnsafeBufferPointer { rows in
      let id: (AccountRecord) -> Ident = { $0.id }
      let drawn = min(n, parts * Self.accountCutSamples)
      var cuts = (0..<drawn).map { V2IdentKey(rows[$0 * n / drawn].id, row: $0 * n / drawn) }
      cuts.sort { V2IdentKey.less($0, $1, rows, id) }
      let low: V2IdentKey? = part == 0 ? nil : cuts[part * drawn / parts]
      let high: V2IdentKey? = part == parts - 1 ? nil : cuts[(part + 1) * drawn / parts]
      var mine: [V2IdentKey] = []
      mine.reserveCapacity(n / parts + n / 16 + 16)
      for a in 0..<n {
        let key = V2IdentKey(rows[a].id, row: a)
        if let low, V2IdentKey.less(key, low, rows, id) { continue }
        if let high, !V2IdentKey.less(key, high, rows, id) { continue }
        mine.append(key)
      }
      mine.sort { V2IdentKey.less($0, $1, rows, id) }
      return mine
    }
    var rankOf = [Int32](repeating: -1, count: n)
    rankOf.withUnsafeMutableBufferPointer { rankOf in
      for (r, key) in mine.enumerated() { rankOf[Int(key.row)] = Int32(r) }
    }
    return V2AccountRun(count: mine.count, first: 0, rankOf: rankOf)
  }

  /// The live position rows (quantity or withheld above 0) of `run`'s accounts, by
  /// account rank: rank r's rows are `order[ends[r - 1] ..< ends[r]]` (from 0 for
  /// r = 0), in row order.
  func liveRows(of run: V2AccountRun) -> (ends: [Int32], order: [Int32]) {
    // Each live row of the run as rank << 32 | row, in row order: the one scan of the
    // positions, so that placing them reads no position row again.
    var found: [UInt64] = []
    if !accounts.isEmpty {
      let share = positions.count * run.count / accounts.count
      found.reserveCapacity(share + share / 16 + 16)
    }
    // start[r + 1]: rows of rank r; then (a prefix sum) the first row of rank r.
    var start = [Int32](repeating: 0, count: run.count + 1)
    positions.withUnsafeBufferPointer { pos in
      start.withUnsafeMutableBufferPointer { start in
        if let rankOf = run.rankOf {
          rankOf.withUnsafeBufferPointer { rankOf in
            for (i, p) in pos.enumerated() where p.quantity > 0 || p.withheld > 0 {
              let r = rankOf[Int(p.account)]
              if r >= 0 {
                start[Int(r) + 1] += 1
                found.append(UInt64(r) << 32 | UInt64(i))
              }
            }
          }
        } else {
          let first = run.first
          let count = UInt32(run.count)
          for (i, p) in pos.enumerated() {
            // One unsigned comparison: rows before `first` wrap to large ranks.
            let r = UInt32(bitPattern: p.account &- first)
            if r < count && (p.quantity > 0 || p.withheld > 0) {
              start[Int(r) + 1] += 1
              found.append(UInt64(r) << 32 | UInt64(i))
            }
          }
        }
        for r in 0..<(start.count - 1) { start[r + 1] += start[r] }
      }
    }
    let rows = found.count
    // Placing moves each rank's start to the next rank's: start[r] is then where rank
    // r's rows end.
    let order = [Int32](unsafeUninitializedCapacity: rows) { ids, initialized in
      found.withUnsafeBufferPointer { found in
        start.withUnsafeMutableBufferPointer { start in
          for f in found {
            let r = Int(f >> 32)
            ids.initializeElement(at: Int(start[r]), to: Int32(truncatingIfNeeded: f))
            start[r] += 1
          }
        }
      }
      initialized = rows
    }
    return (start, order)
  }

  /// Each security's rank by code bytes: its row when the rows are in that order.
  func securityRanks() -> [Int32] {
    let ascending = securities.withUnsafeBufferPointer { rows in
      rows.indices.dropFirst().allSatisfy { Self.identLess(rows[$0 - 1].code, rows[$0].code) }
    }
    return ascending ? Array(0..<Int32(securities.count)) : Self.ranks(securities) { $0.code }
  }
}
