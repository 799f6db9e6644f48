// A TRADE's identifiers resolved on the thread that splits the event lines, while this
// core applies the trades before it (issue 8: identifiers interned to row ids at the
// parser's edge). The first two stages of the trade pipeline (TradeGroups.swift) were
// that work, ~a fifth of the apply's samples on the 1M-account day (perf, the
// twenty-first session): the trade id's hash, both accounts' slots in the 1M-entry
// index (a miss each), the security and the two units. The resolver does it on the
// other core, from its own copy of the three indexes taken when the run's kernel was
// built (the copies share the kernel's storage until the kernel adds an entry).
//
// What it finds stays right: accounts, securities and units are only added (by their
// own events) and never re-numbered, so a row found in the copy is the row the kernel
// finds. What the copy lacks (added since) is -1, and the kernel looks it up when it
// applies the trade. The trade id is only hashed here: whether it is taken is the
// kernel's to find, at apply time.

import KernelAPI
import Synchronization

/// V1's `TradeResolver`. Its `TradeHints`, as `locateSlots` (TradeGroups.swift) reads
/// them: `key` the trade id's `TradeIndex.hash` with the date, `keyValue` its
/// `TradeIndex.decimalValue`, `rows` (buy account, sell account, security, buy unit,
/// sell unit, unused), -1 where not found.
struct V1TradeResolver: TradeResolver {
  let accountById: FastIndex<Ident>
  let securityById: FastIndex<Ident>
  let unitById: FastIndex<Ident>
  let securityCount: Int
  let unitCount: Int

  /// The securities and units remembered by this resolver's earlier calls (a replica's
  /// resolver splits the later batches of one fetch reply, `tally run`'s the blocks of
  /// the whole run): a memo made afresh for each call (a batch of ~1,000 TRADEs against
  /// ~1,000 securities) remembered little before the batch ended, and zeroed its ~100 KB
  /// of slots each time (perf of a replica catching up: the resolver 26% of the apply's
  /// samples, 19% with the memo kept). Not kept by the kernel for its next resolver: a
  /// copy of the kernel that adds other securities would give the same bytes another
  /// row. A call takes it and puts it back; a call on another thread meanwhile makes its
  /// own.
  let memo = MemoShelf()

  final class MemoShelf: Sendable {
    private let shelved = Mutex<TradeGroupMemo?>(nil)
    func take() -> TradeGroupMemo { shelved.withLock { $0.take() } ?? TradeGroupMemo() }
    func put(_ memo: consuming TradeGroupMemo) { shelved.withLock { $0 = memo } }
  }

  /// Trades whose account slots are prefetched together before they are read: their
  /// misses overlap (a window's slots, 2 × 16 lines, stay in L1).
  static let window = 16

  func resolve(_ trades: UnsafeMutableBufferPointer<TradeInput>, bytes: UnsafeRawBufferPointer) {
    var memo = self.memo.take()
    defer { self.memo.put(memo) }
    memo.prepare(securities: securityCount, units: unitCount)
    var accountHashes = [UInt64](repeating: 0, count: 2 * Self.window)
    var start = trades.startIndex
    while start < trades.endIndex {
      let end = min(start + Self.window, trades.endIndex)
      for i in start..<end {
        let t = trades[i]
        let id = t.field(t.trade.tradeId, in: bytes)
        let buyHash = Ident.fastHash(of: t.field(t.trade.buyAccount, in: bytes))
        let sellHash = Ident.fastHash(of: t.field(t.trade.sellAccount, in: bytes))
        accountById.prefetchSlot(hash: buyHash)
        accountById.prefetchSlot(hash: sellHash)
        accountHashes[2 * (i - start)] = buyHash
        accountHashes[2 * (i - start) + 1] = sellHash
        trades[i].hints.key = TradeIndex.hash(id: id, date: t.trade.date)
        trades[i].hints.keyValue = TradeIndex.decimalValue(of: id)
      }
      for i in start..<end {
        let t = trades[i]
        let buy =
          accountById.v1Find(
            hash: accountHashes[2 * (i - start)], bytes: t.field(t.trade.buyAccount, in: bytes))
          ?? -1
        let sell =
          accountById.v1Find(
            hash: accountHashes[2 * (i - start) + 1], bytes: t.field(t.trade.sellAccount, in: bytes)) ?? -1
        let security =
          securityById.v1Find(bytes: t.field(t.trade.security, in: bytes), memo: &memo.securities) ?? -1
        let buyUnit = unitById.v1Find(bytes: t.field(t.trade.buyUnit, in: bytes), memo: &memo.units) ?? -1
        let sellUnit = unitById.v1Find(bytes: t.field(t.trade.sellUnit, in: bytes), memo: &memo.units) ?? -1
        trades[i].hints.rows = (buy, sell, security, buyUnit, sellUnit, -1)
        trades[i].hints.isSet = true
      }
      start = end
    }
  }
}

extension V1Kernel {
  public func tradeResolver() -> (any TradeResolver)? {
    V1TradeResolver(
      accountById: accountById, securityById: securityById, unitById: unitById,
      securityCount: securities.count, unitCount: units.count)
  }
}
