// DurableEngine over a real RocksDB in a temporary folder (RocksDBStateStore): what a
// commit leaves on disk after the store is closed and reopened. These live here
// because this target links RocksDBStore (through `tally`); TallyEngineTests does not,
// and holds the same properties over in-memory stores.
import Foundation
import MarketGenerator
import RocksDBStore
import TallyCore
import TallyEngine
import TallyFormat
import XCTest

final class DurableRocksDBTests: XCTestCase {
  private var dir = ""
  private var reference: ReferenceData!
  private var lines: [ArraySlice<UInt8>] = []

  override func setUpWithError() throws {
    dir = try makeTemporaryDirectory("durable")
    _ = try MarketGenerator.generate(
      MarketOptions(seed: 11, days: 3, tradesPerDay: 600, accounts: 80, securities: 15, participants: 4),
      into: dir + "/market")
    reference = try FileIO.loadReference(dir + "/market/reference")
    lines = []
    try EventLines.forEach(files: [dir + "/market/events.txt"]) { lines.append($0.bytes) }
    XCTAssertGreaterThan(lines.count, 1_500)
  }

  override func tearDown() { removeDirectory(dir) }

  private var statePath: String { dir + "/state" }

  private func openStore() throws -> RocksDBStateStore { try RocksDBStateStore(path: statePath) }

  private func open(_ store: RocksDBStateStore, reference: ReferenceData? = nil) throws -> DurableEngine {
    let reference = reference ?? self.reference!
    return try DurableEngine(
      store: store, reference: reference, kernel: try KernelCatalog.make("v1", feeRows: reference.feeRows))
  }

  private func offer(_ d: DurableEngine, _ range: Range<Int>) throws {
    for i in range { try d.offer(line: lines[i], seq: Int64(i + 1)) }
  }

  private func memoryEngine(through count: Int) throws -> Engine {
    var engine = Engine(reference: reference, kernel: try KernelCatalog.make("v1", feeRows: reference.feeRows))
    for i in 0..<count { engine.apply(line: lines[i], seq: Int64(i + 1)) }
    return engine
  }

  private func outputs(_ engine: Engine) -> [String: [UInt8]] {
    Dictionary(uniqueKeysWithValues: engine.outputFiles().map { ($0.name, $0.bytes) })
  }

  /// Commits `count` events into a new state folder and closes it.
  private func commitInto(_ count: Int) throws {
    let store = try openStore()
    defer { store.close() }
    let d = try open(store)
    try offer(d, 0..<count)
    try d.commit()
  }

  private func errorText(_ body: () throws -> Void) -> String? {
    do {
      try body()
      return nil
    } catch {
      return "\(error)"
    }
  }

  func testACommitReopensWithTheSameSeqAndDigestAsTheMemoryEngine() throws {
    try commitInto(700)
    let memory = try memoryEngine(through: 700)
    let store = try openStore()
    defer { store.close() }
    let d = try open(store)
    XCTAssertEqual(d.committedSeq, 700)
    XCTAssertEqual(d.stateDigest, memory.stateDigest)
    XCTAssertEqual(d.engine.stateDigest, memory.stateDigest)
    XCTAssertEqual(outputs(d.engine).count, 7)
    XCTAssertEqual(outputs(d.engine).mapValues { $0.count }, outputs(memory).mapValues { $0.count })
    XCTAssertTrue(outputs(d.engine) == outputs(memory), "outputs of the reopened state differ")
  }

  func testWorkAfterTheLastCommitIsNotStored() throws {
    do {
      let store = try openStore()
      defer { store.close() }
      let d = try open(store)
      try offer(d, 0..<500)
      try d.commit()
      try offer(d, 500..<900)  // never committed
    }
    let store = try openStore()
    defer { store.close() }
    let d = try open(store)
    XCTAssertEqual(d.committedSeq, 500)
    XCTAssertEqual(d.stateDigest, try memoryEngine(through: 500).stateDigest)
  }

  func testRestartMatchesAStraightRun() throws {
    let straight = try memoryEngine(through: lines.count)
    let half = lines.count / 2
    try commitInto(half)
    let store = try openStore()
    defer { store.close() }
    let d = try open(store)
    XCTAssertEqual(d.committedSeq, Int64(half))
    try offer(d, 0..<lines.count)
    try d.finishStream()
    try d.commit()
    XCTAssertEqual(d.engine.stateDigest, straight.stateDigest)
    XCTAssertEqual(d.stateDigest, straight.stateDigest)
    XCTAssertTrue(outputs(d.engine) == outputs(straight), "outputs after a restart differ from a straight run")
    store.close()
    let again = try open(try openStore())
    XCTAssertEqual(again.committedSeq, Int64(lines.count))
    XCTAssertEqual(again.stateDigest, straight.stateDigest)
  }

  func testACommitAfterAFewEventsWritesFewRows() throws {
    let rocks = try openStore()
    defer { rocks.close() }
    let store = CountingStore(rocks)
    let d = try DurableEngine(
      store: store, reference: reference, kernel: try KernelCatalog.make("v1", feeRows: reference.feeRows))
    try offer(d, 0..<1_200)
    try d.commit()
    var rows = 0
    for table in StateTable.allCases {
      try rocks.scan(prefix: [table.rawValue]) { _, _ in
        rows += 1
        return true
      }
    }
    XCTAssertGreaterThan(rows, 1_200)
    try offer(d, 1_200..<1_203)
    try d.commit()
    let written = store.putsPerBatch.last ?? .max
    XCTAssertLessThanOrEqual(written, 40, "three events' commit wrote \(written) keys")
    XCTAssertLessThan(written * 25, rows, "a small commit writes far fewer rows than the \(rows) stored")
    XCTAssertEqual(d.stateDigest, try memoryEngine(through: 1_203).stateDigest)
  }

  func testADamagedRowIsRefused() throws {
    try commitInto(600)
    do {
      let store = try openStore()
      defer { store.close() }
      let other = try XCTUnwrap(try store.value(for: StateKeys.row(.trades, 1)))
      var batch = StoreBatch()
      batch.put(StateKeys.row(.trades, 0), other)
      try store.commit(batch, sync: true)
    }
    let store = try openStore()
    defer { store.close() }
    let message = errorText { _ = try open(store) }
    XCTAssertTrue(message?.contains("damaged") ?? false, message ?? "a damaged row was loaded")
    XCTAssertTrue(message?.contains("checksum") ?? false, message ?? "")
  }

  func testOtherReferenceDataIsRefused() throws {
    try commitInto(300)
    var other = reference!
    other.accounts.append((id: "Z000000001", kind: other.accounts[0].kind))
    let store = try openStore()
    defer { store.close() }
    let message = errorText { _ = try open(store, reference: other) }
    XCTAssertTrue(message?.contains("other reference data") ?? false, message ?? "other reference data was accepted")
    XCTAssertEqual(try open(store).committedSeq, 300)
  }

  func testAnotherEventStreamIsRefused() throws {
    try commitInto(300)
    let store = try openStore()
    defer { store.close() }
    let d = try open(store)
    var other = lines
    other.remove(at: 1)
    let message = errorText {
      for (i, line) in other.enumerated() { try d.offer(line: line, seq: Int64(i + 1)) }
      try d.finishStream()
    }
    XCTAssertTrue(message?.contains("another event stream") ?? false, message ?? "another stream was accepted")
  }

  func testAnotherFormatIsRefused() throws {
    try commitInto(100)
    do {
      let store = try openStore()
      defer { store.close() }
      var batch = StoreBatch()
      batch.put(StateKeys.format, Array("tally-state/0 spec/2025-01".utf8))
      try store.commit(batch, sync: true)
    }
    let store = try openStore()
    defer { store.close() }
    let message = errorText { _ = try open(store) }
    XCTAssertTrue(message?.contains("tally-state/0") ?? false, message ?? "another format was accepted")
  }

  func testAStateFolderInUseIsRefused() throws {
    let first = try openStore()
    defer { first.close() }
    XCTAssertThrowsError(try openStore(), "RocksDB's lock keeps a second user out")
  }
}

/// Passes everything to a store and counts the puts of each committed batch.
final class CountingStore: StateStore {
  let inner: any StateStore
  private(set) var putsPerBatch: [Int] = []

  init(_ inner: any StateStore) { self.inner = inner }

  func value(for key: [UInt8]) throws -> [UInt8]? { try inner.value(for: key) }

  func commit(_ batch: StoreBatch, sync: Bool) throws {
    try inner.commit(batch, sync: sync)
    putsPerBatch.append(batch.puts.count)
  }

  func scan(prefix: [UInt8], _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
    try inner.scan(prefix: prefix, body)
  }
}
