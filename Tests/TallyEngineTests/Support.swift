// Test helpers for the engine: temporary folders, small generated markets, a store
// that records the batches it is given, and straight (non-durable) runs to compare with.
import Foundation
import KernelAPI
import KernelV1
import MarketGenerator
import TallyEngine
import TallyFormat
import XCTest

func makeTemporaryDirectory(_ label: String) throws -> String {
  let path = FileManager.default.temporaryDirectory.path + "/tally-engine-\(label)-\(UUID().uuidString)"
  try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}

func removeDirectory(_ path: String) { try? FileManager.default.removeItem(atPath: path) }

/// A generated market, loaded: its reference data and its event lines in order.
struct TestMarket {
  var directory: String
  var reference: ReferenceData
  var lines: [ArraySlice<UInt8>]

  static func generate(
    _ label: String, seed: UInt64 = 20_261_125, days: Int = 4, tradesPerDay: Int = 400, accounts: Int = 60
  ) throws -> TestMarket {
    let directory = try makeTemporaryDirectory(label)
    _ = try MarketGenerator.generate(
      MarketOptions(
        seed: seed, days: days, tradesPerDay: tradesPerDay, accounts: accounts, securities: 12,
        participants: 4),
      into: directory)
    let reference = try FileIO.loadReference(directory + "/reference")
    var lines: [ArraySlice<UInt8>] = []
    try EventLines.forEach(files: [directory + "/events.txt"]) { lines.append($0.bytes) }
    return TestMarket(directory: directory, reference: reference, lines: lines)
  }

  /// The reference data and event lines of a market generated from `options` (its
  /// folder removed again).
  static func loaded(_ label: String, _ options: MarketOptions) throws -> (ReferenceData, [ArraySlice<UInt8>])
  {
    let directory = try makeTemporaryDirectory(label)
    defer { removeDirectory(directory) }
    _ = try MarketGenerator.generate(options, into: directory)
    let reference = try FileIO.loadReference(directory + "/reference")
    var lines: [ArraySlice<UInt8>] = []
    try EventLines.forEach(files: [directory + "/events.txt"]) { lines.append($0.bytes) }
    return (reference, lines)
  }

  /// The outputs and digest of an uninterrupted in-memory run over every line.
  func straightRun() throws -> (outputs: [String: [UInt8]], digest: [UInt8]) {
    var engine = Engine<V1Kernel>(reference: reference)
    for (i, line) in lines.enumerated() { engine.apply(line: line, seq: Int64(i + 1)) }
    return (outputs(engine), engine.stateDigest)
  }
}

func outputs<K: BusinessKernel>(_ engine: Engine<K>) -> [String: [UInt8]] {
  var result: [String: [UInt8]] = [:]
  for file in engine.outputFiles() { result[file.name] = file.bytes }
  return result
}

func assertSameOutputs(
  _ a: [String: [UInt8]], _ b: [String: [UInt8]], file: StaticString = #filePath, line: UInt = #line
) {
  XCTAssertEqual(a.keys.sorted(), b.keys.sorted(), file: file, line: line)
  XCTAssertEqual(a.count, 7, "SPEC §5 has seven output files", file: file, line: line)
  for name in a.keys.sorted() where a[name] != b[name] {
    XCTFail("\(name) differs", file: file, line: line)
  }
}

/// An in-memory store that keeps every batch it commits, to look at what a commit wrote.
final class RecordingStore: StateStore {
  let inner = InMemoryStateStore()
  private(set) var batches: [StoreBatch] = []

  func value(for key: [UInt8]) throws -> [UInt8]? { try inner.value(for: key) }

  func commit(_ batch: StoreBatch, sync: Bool) throws {
    batches.append(batch)
    try inner.commit(batch, sync: sync)
  }

  func scan(prefix: [UInt8], _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
    try inner.scan(prefix: prefix, body)
  }

  /// Writes raw keys and values, bypassing the engine (to damage a state on purpose).
  func overwrite(_ pairs: [([UInt8], [UInt8])], deleting: [[UInt8]] = []) throws {
    var batch = StoreBatch()
    for key in deleting { batch.delete(key) }
    for (key, value) in pairs { batch.put(key, value) }
    try inner.commit(batch, sync: true)
  }
}

/// A store whose commits fail on demand (a full disk), to check that a failed commit
/// leaves the stored position where it was.
final class FailingStore: StateStore {
  let inner = InMemoryStateStore()
  var failCommits = false

  func value(for key: [UInt8]) throws -> [UInt8]? { try inner.value(for: key) }

  func commit(_ batch: StoreBatch, sync: Bool) throws {
    if failCommits { throw StoreError("disk full (test)") }
    try inner.commit(batch, sync: sync)
  }

  func scan(prefix: [UInt8], _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
    try inner.scan(prefix: prefix, body)
  }
}

/// Every state row of a store (all keys but the meta keys), counted.
func storedRowCount(_ store: any StateStore) throws -> Int {
  var count = 0
  for table in StateTable.allCases {
    try store.scan(prefix: [table.rawValue]) { _, _ in
      count += 1
      return true
    }
  }
  return count
}

/// The applied seq stored in the globals row of a store.
func storedAppliedSeq(_ store: any StateStore) throws -> Int64? {
  guard let bytes = try store.value(for: StateKeys.row(.globals, 0)) else { return nil }
  var reader = ByteReader(bytes)
  return try GlobalRecord(from: &reader).appliedSeq
}

/// The error's description, or nil when `body` did not throw.
func errorText(_ body: () throws -> Void) -> String? {
  do {
    try body()
    return nil
  } catch {
    return "\(error)"
  }
}

/// Offers the market's lines to `d` from the first (those it holds are skipped),
/// committing after every `commitEvery` applied, and stops after `stopAfter` applied
/// events: a "crash" (nothing more is committed). True when it reached the end first
/// (the stream then finished and committed).
func offerUntilCrash<K: BusinessKernel>(
  _ d: DurableEngine<K>, _ m: TestMarket, commitEvery: Int, stopAfter: Int
) throws -> Bool {
  var applied = 0
  for i in 0..<m.lines.count {
    guard try d.offer(line: m.lines[i], seq: Int64(i + 1)) != nil else { continue }
    applied += 1
    if applied % commitEvery == 0 { try d.commit() }
    if applied == stopAfter { return false }
  }
  try d.finishStream()
  try d.commit()
  return true
}
