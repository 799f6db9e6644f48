// An engine of whichever kernel a name stands for, behind one type: for tests and tools
// that pick the version at run time and are not on a hot path (every call is one
// dynamic dispatch). Production loops use `Engine<K>` (or `KernelCatalog.openDurable`,
// whose calls are per batch).
import KernelAPI

public final class AnyEngine {
  private let box: any EngineBox

  /// A fresh engine on the kernel `name` names (`v1`, `v2-faulty-transfer`, ...).
  public init(kernel name: String, reference: ReferenceData) throws(UsageError) {
    let (type, fault) = try KernelCatalog.resolve(name)
    func make<K: BusinessKernel>(_: K.Type) -> any EngineBox {
      Box<K>(Engine<K>(reference: reference, plantedFault: fault))
    }
    box = make(type)
  }

  /// The kernel `name` names, restarted from canonical rows (every row of a state, in
  /// table and id order, as `forEachEncodedRow` gives them) laid over its opening state.
  public init(
    kernel name: String, reference: ReferenceData, restoringRows rows: [(StateTable, Int32, [UInt8])]
  )
    throws
  {
    let (type, fault) = try KernelCatalog.resolve(name)
    func make<K: BusinessKernel>(_: K.Type) throws -> any EngineBox {
      let state = try K.restore(opening: K(reference: reference, plantedFault: fault)) { overlay in
        for (table, id, bytes) in rows { try overlay(table, id, bytes) }
      }
      return Box<K>(Engine<K>(state: state))
    }
    box = try make(type)
  }

  public var kernelName: String { box.kernelName }
  public var appliedSeq: Int64 { box.appliedSeq }
  public var statistics: RunStatistics { box.statistics }
  public var stateDigest: [UInt8] { box.stateDigest }
  public var checksum: StateChecksum { box.checksum }

  @discardableResult
  public func apply(line: ArraySlice<UInt8>, seq: Int64) -> Outcome { box.apply(line: line, seq: seq) }
  @discardableResult
  public func apply(_ event: Event, seq: Int64) -> Outcome { box.apply(event, seq: seq) }
  public func enableEffects() { box.enableEffects() }
  public func takeEffects() -> [UInt8] { box.takeEffects() }
  public func snapshotEffects() -> [UInt8] { box.snapshotEffects() }
  public func outputFiles() -> [(name: String, bytes: [UInt8])] { box.outputFiles() }
  public func report() -> Report { box.report() }
  public func selfCheckViolations() -> [String] { box.selfCheckViolations() }
  /// Every canonical row, in table and id order.
  public func encodedRows() -> [(StateTable, Int32, [UInt8])] { box.encodedRows() }
}

private protocol EngineBox: AnyObject {
  var kernelName: String { get }
  var appliedSeq: Int64 { get }
  var statistics: RunStatistics { get }
  var stateDigest: [UInt8] { get }
  var checksum: StateChecksum { get }
  func apply(line: ArraySlice<UInt8>, seq: Int64) -> Outcome
  func apply(_ event: Event, seq: Int64) -> Outcome
  func enableEffects()
  func takeEffects() -> [UInt8]
  func snapshotEffects() -> [UInt8]
  func outputFiles() -> [(name: String, bytes: [UInt8])]
  func report() -> Report
  func selfCheckViolations() -> [String]
  func encodedRows() -> [(StateTable, Int32, [UInt8])]
}

private final class Box<K: BusinessKernel>: EngineBox {
  var engine: Engine<K>
  init(_ engine: Engine<K>) { self.engine = engine }

  var kernelName: String { engine.state.kernelName }
  var appliedSeq: Int64 { engine.appliedSeq }
  var statistics: RunStatistics { engine.statistics }
  var stateDigest: [UInt8] { engine.stateDigest }
  var checksum: StateChecksum { engine.state.computeChecksum() }
  func apply(line: ArraySlice<UInt8>, seq: Int64) -> Outcome { engine.apply(line: line, seq: seq) }
  func apply(_ event: Event, seq: Int64) -> Outcome { engine.apply(event, seq: seq) }
  func enableEffects() { engine.enableEffects() }
  func takeEffects() -> [UInt8] { engine.takeEffects() }
  func snapshotEffects() -> [UInt8] { engine.state.snapshotEffects() }
  func outputFiles() -> [(name: String, bytes: [UInt8])] { engine.outputFiles() }
  func report() -> Report { engine.state.report(holdings: true) }
  func selfCheckViolations() -> [String] { engine.state.selfCheckViolations(limit: 10) }
  func encodedRows() -> [(StateTable, Int32, [UInt8])] {
    var rows: [(StateTable, Int32, [UInt8])] = []
    engine.state.forEachEncodedRow { rows.append(($0, $1, $2)) }
    return rows
  }
}
