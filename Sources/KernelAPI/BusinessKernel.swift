// What a business kernel is (N-version voting, docs/ARCHITECTURE.md "N-version"):
// the complete state machine of SPEC §3-§5, from the reference folder's opening
// state through every event, producing three things that every version must
// produce byte for byte alike:
//   - the outcome of each event (applied, or rejected with its SPEC reason code);
//   - its business effects (Effects.swift, docs/EFFECTS.md), in canonical order;
//   - the canonical rows of the state (Records.swift, StateCodec.swift,
//     docs/CANONICAL-ROWS.md): what the state digest covers and what a durable
//     store keeps, so that a replica restarts from rows another version wrote.
// How a version keeps its state inside (layout, indexes, arithmetic) is its own.
//
// The engine is generic over the kernel (`Engine<K>`): no existential on the
// per-event path. Everything a kernel may use of the project is in this module.

public protocol BusinessKernel: Sendable {
  /// The version's stable name without a fault: `v1`, `v2`.
  static var versionName: String { get }

  /// The opening state of a validated reference folder (SPEC §2), optionally with a
  /// planted fault (tests and chaos only).
  init(reference: ReferenceData, plantedFault: PlantedFault?)

  /// The planted fault this instance runs with, if any.
  var plantedFault: PlantedFault? { get }

  /// A restart: `opening` (the state `init(reference:plantedFault:)` made) with stored
  /// canonical rows laid over it. `stored` calls its argument once per stored row, in
  /// table-tag order and, within a table, by ascending row id; a stored row replaces
  /// the row of the same id or, when its id is the table's row count, appends it
  /// (docs/STATE-LAYOUT.md). Derived indexes are rebuilt from the rows. A row that does
  /// not decode, or an id beyond the end of its table, throws.
  static func restore(
    opening: consuming Self,
    stored: ((StateTable, Int32, [UInt8]) throws -> Void) throws -> Void
  ) throws -> Self

  /// The last sequence number applied (0 before the first event).
  var appliedSeq: Int64 { get }

  /// Applies event `seq` (SPEC §3: checks in order, the first failing one rejects).
  mutating func apply(_ event: Event, seq: Int64) -> Outcome

  /// Applies a TRADE line already split by the parser (`TradeLine`'s ranges index
  /// `line`). Must give exactly what `apply(.trade(…))` of the same line gives.
  mutating func applyTrade(_ trade: TradeLine, line: UnsafeRawBufferPointer, seq: Int64) -> Outcome

  /// Applies consecutive TRADE lines in order, each exactly as `applyTrade` would, and
  /// writes trade i's outcome to `outcomes[i]` (`outcomes.count == trades.count`).
  /// `bytes` holds every line (`TradeInput.line`). A kernel may start the memory loads
  /// of later trades before it applies earlier ones (KernelAPI's `prefetch`): the
  /// outcomes, effects and state must be those of one `applyTrade` after another.
  /// The default does exactly that.
  mutating func applyTrades(
    _ trades: UnsafeBufferPointer<TradeInput>, bytes: UnsafeRawBufferPointer,
    outcomes: UnsafeMutableBufferPointer<Outcome>)

  /// Room for about `events` more events (a hint; may do nothing).
  mutating func reserveCapacity(events: Int)

  /// A resolver for TRADE lines this kernel will apply (`TradeResolver`), made from its
  /// state now, to run on another thread; nil when the version keeps none (the default).
  func tradeResolver() -> (any TradeResolver)?

  /// Effects (docs/EFFECTS.md) are off until this is called; off, they cost ~nothing.
  mutating func enableEffects()

  /// The effect records (encoded, concatenated) of the events applied since the last call.
  mutating func takeEffects() -> [UInt8]

  /// The same records, handed over in `out` (whose old contents are dropped); a kernel
  /// may keep `out`'s buffer to write on, so a caller that takes every batch into one
  /// array allocates nothing per batch. The default calls `takeEffects()`.
  mutating func takeEffects(into out: inout [UInt8])

  /// The complete SPEC §5 state as effect records: one event record with outcome
  /// `snapshot` and `seq = appliedSeq`, then every row (docs/EFFECTS.md, "Snapshot").
  func snapshotEffects() -> [UInt8]

  /// Every canonical row, in table-tag order then by row id, with its encoding.
  /// `body` must not keep the array beyond the call.
  func forEachEncodedRow(_ body: (StateTable, Int32, [UInt8]) -> Void)

  /// Change tracking for durable commits. Off (an in-memory run), `takeChangedRows`
  /// hands over nothing. The engine always sets it explicitly (a durable engine turns it
  /// on right after opening or restoring), so a kernel's initial setting is its own.
  mutating func setChangeTracking(_ on: Bool)

  /// The rows changed or added since the last call (or since `forgetChanges`), each once
  /// with its current encoding, appended one after another to `w`; `body` gets each
  /// row's table, id and byte range in `w`. In table-tag order, then by row id.
  mutating func takeChangedRows(into w: inout ByteWriter, _ body: (StateTable, Int32, Range<Int>) -> Void)

  /// `takeChangedRows(into:_:)` and `computeChecksum()` at once: the changed rows taken
  /// exactly as `takeChangedRows` takes them (same bytes, same calls of `body`, in the
  /// same order), and the checksum of the whole state after them. A version may encode
  /// each row once for both (a durable snapshot takes both); the default calls the two.
  mutating func takeChangedRowsAndChecksum(
    into w: inout ByteWriter, _ body: (StateTable, Int32, Range<Int>) -> Void
  ) -> StateChecksum

  /// Forgets which rows changed (the store already has them).
  mutating func forgetChanges()

  /// SPEC §5 rows, each file's rows sorted as SPEC §5 says. Without `holdings`, the
  /// holdings rows are left out (`forEachHolding` gives them).
  func report(holdings: Bool) -> Report

  /// holdings.csv rows in SPEC §5 order (account, then security, by identifier bytes),
  /// rows of quantity 0 and withheld 0 left out.
  func forEachHolding(
    _ body: (_ account: Ident, _ security: Ident, _ quantity: Int64, _ available: Int64, _ withheld: Int64) ->
      Void)

  /// Part `part` of `parts` (0 ≤ part < parts) of `forEachHolding`'s rows: walked for
  /// part 0, 1, … one after another, the parts give exactly its rows in its order, each
  /// row once. Each part reads the kernel only, so the parts of one kernel value may be
  /// walked on several threads at once (holdings.csv rendered on every core). How the
  /// rows are cut is the version's own; a part may be empty.
  func forEachHolding(
    part: Int, of parts: Int,
    _ body: (_ account: Ident, _ security: Ident, _ quantity: Int64, _ available: Int64, _ withheld: Int64) ->
      Void)

  /// Invariants that do not hold (empty when all hold), at most `limit` lines.
  func selfCheckViolations(limit: Int) -> [String]

  /// Writes this version's own image of its whole state (KernelImage.swift) to `w`:
  /// everything `loadImage` needs to give back a kernel that behaves exactly as this
  /// one from here on, in outcomes, effects, canonical rows and change tracking (the
  /// rows changed since the last `takeChangedRows` or `forgetChanges` are changed in the
  /// loaded one too). Called with no effects pending (the engine has taken them).
  /// False: the version keeps no image, and the engine writes none.
  func writeImage(to w: inout ImageWriter) -> Bool

  /// A kernel from an image this version's `writeImage` wrote (the engine only offers
  /// an image to the version and planted fault that wrote it, from the same build:
  /// `imageLayout` is checked). Effects start off, as after `init(reference:)`. Throws
  /// on anything malformed; nil when the version keeps no image.
  static func loadImage(from r: inout ImageReader, plantedFault: PlantedFault?) throws(DecodeError) -> Self?

  /// The layout of the plain values this version's image copies whole
  /// (`imageLayoutSignature`): an image written under another is not read.
  static var imageLayout: String { get }
}

extension BusinessKernel {
  public mutating func applyTrades(
    _ trades: UnsafeBufferPointer<TradeInput>, bytes: UnsafeRawBufferPointer,
    outcomes: UnsafeMutableBufferPointer<Outcome>
  ) {
    precondition(outcomes.count == trades.count, "one outcome per trade")
    for i in trades.indices {
      outcomes[i] = applyTrade(trades[i].trade, line: trades[i].line(in: bytes), seq: trades[i].seq)
    }
  }

  public mutating func takeEffects(into out: inout [UInt8]) { out = takeEffects() }

  /// No resolver: every trade is looked up when applied.
  public func tradeResolver() -> (any TradeResolver)? { nil }

  /// Every row in part 0, none in the others (a version that does not cut its walk).
  public func forEachHolding(
    part: Int, of parts: Int,
    _ body: (_ account: Ident, _ security: Ident, _ quantity: Int64, _ available: Int64, _ withheld: Int64) ->
      Void
  ) {
    precondition(parts >= 1 && part >= 0 && part < parts, "holdings part \(part) of \(parts)")
    if part == 0 { forEachHolding(body) }
  }

  /// No image (a version that keeps none).
  public func writeImage(to w: inout ImageWriter) -> Bool { false }
  public static func loadImage(from r: inout ImageReader, plantedFault: PlantedFault?) throws(DecodeError)
    -> Self?
  {
    nil
  }
  public static var imageLayout: String { "" }

  /// `v1`, or `v1-faulty-transfer` with a planted fault: the name configs and alerts use.
  public var kernelName: String { KernelName.name(version: Self.versionName, fault: plantedFault) }

  /// The changed rows, then the whole state's checksum (a version that encodes its rows
  /// once for both has its own).
  public mutating func takeChangedRowsAndChecksum(
    into w: inout ByteWriter, _ body: (StateTable, Int32, Range<Int>) -> Void
  ) -> StateChecksum {
    takeChangedRows(into: &w, body)
    return computeChecksum()
  }

  /// The checksum of all canonical rows, computed from scratch.
  public func computeChecksum() -> StateChecksum {
    var c = StateChecksum()
    forEachEncodedRow { table, id, bytes in c.add(RowHash(table: table.rawValue, id: id, bytes: bytes)) }
    return c
  }
}

/// Kernel names as configs and flags write them: the version, then for a planted
/// fault `-faulty` (fee rounding) or `-faulty-<fault>`.
public enum KernelName {
  public static func name(version: String, fault: PlantedFault?) -> String {
    switch fault {
    case nil: return version
    case .feeRounding: return version + "-faulty"
    case .some(let f): return version + "-faulty-" + f.rawValue
    }
  }

  /// The version and fault of a kernel name; nil when it is not of that shape.
  public static func parse(_ name: String) -> (version: String, fault: PlantedFault?)? {
    guard let dash = name.firstIndex(of: "-") else { return name.isEmpty ? nil : (name, nil) }
    let version = String(name[..<dash])
    let rest = name[name.index(after: dash)...]
    if rest == "faulty" { return (version, .feeRounding) }
    guard rest.hasPrefix("faulty-"), let f = PlantedFault(rawValue: String(rest.dropFirst(7))),
      f != .feeRounding
    else { return nil }
    return (version, f)
  }
}
