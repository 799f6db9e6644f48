// The worked example and small generated markets, byte for byte against golden
// files produced by the V1 black box (`bin/tally-v1 run … --effects --dump-rows`).
import Foundation
import KernelAPI
import KernelV2
import TallyFormat
import XCTest

final class DifferentialTests: XCTestCase {
  func testWorkedExampleOutputsByteForByte() throws {
    let base = sandboxRoot + "/Tests/Fixtures/basic"
    let r = try runMarket(reference: base + "/reference", events: base + "/events.txt")
    let files = renderedFiles(r.kernel)
    for name in ReportWriter.fileNames {
      let expected = readBytes(base + "/expected/" + name)
      XCTAssertEqual(files[name], expected, "\(name) differs from the worked example")
    }
    XCTAssertEqual(r.kernel.selfCheckViolations(limit: 10), [])
  }

  func fixtureNames() throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: fixturesRoot).sorted()
  }

  func testGeneratedMarketsMatchGoldenFiles() throws {
    let names = try fixtureNames()
    XCTAssertFalse(names.isEmpty)
    for name in names {
      let dir = fixturesRoot + "/" + name
      let r = try runMarket(reference: dir + "/reference", events: dir + "/events.txt")
      let files = renderedFiles(r.kernel)
      for file in ReportWriter.fileNames {
        XCTAssertEqual(files[file], readBytes(dir + "/expected/" + file), "\(name): \(file)")
      }
      XCTAssertEqual(
        r.effectsText, String(decoding: readBytes(dir + "/effects.txt"), as: UTF8.self), "\(name): effects")
      XCTAssertEqual(
        rowsText(r.kernel), String(decoding: readBytes(dir + "/rows.txt"), as: UTF8.self), "\(name): rows")
      XCTAssertEqual(r.kernel.selfCheckViolations(limit: 10), [], name)
    }
  }

  /// Planted faults give exactly the effects of V1's kernels with the same fault
  /// (golden `effects-fault-<fault>.txt` files, where present).
  func testPlantedFaultsMatchGoldenFiles() throws {
    var checked = 0
    for name in try fixtureNames() {
      let dir = fixturesRoot + "/" + name
      for fault in [PlantedFault.feeRounding, .transfer, .settlement] {
        let path = dir + "/effects-fault-" + fault.rawValue + ".txt"
        guard FileManager.default.fileExists(atPath: path) else { continue }
        let r = try runMarket(reference: dir + "/reference", events: dir + "/events.txt", fault: fault)
        XCTAssertEqual(r.effectsText, String(decoding: readBytes(path), as: UTF8.self), "\(name): \(fault)")
        XCTAssertNotEqual(
          r.effectsText, String(decoding: readBytes(dir + "/effects.txt"), as: UTF8.self),
          "\(name): \(fault) has no visible effect")
        checked += 1
      }
    }
    XCTAssertGreaterThan(checked, 0)
  }

  func testTradeFastPathEqualsParsedEvent() throws {
    for name in try fixtureNames() {
      let dir = fixturesRoot + "/" + name
      let fast = try runMarket(reference: dir + "/reference", events: dir + "/events.txt", fastPath: true)
      let slow = try runMarket(reference: dir + "/reference", events: dir + "/events.txt", fastPath: false)
      XCTAssertEqual(fast.effectsText, slow.effectsText, name)
      XCTAssertEqual(rowsText(fast.kernel), rowsText(slow.kernel), name)
    }
  }

  /// A restart: rows taken with change tracking at irregular commit points, laid over a
  /// fresh opening state, must give the same rows and checksum, and the restored kernel
  /// must go on exactly like the one that never stopped.
  func testRestoreFromChangedRows() throws {
    for name in try fixtureNames() {
      for fraction in [1, 2, 3] {
        try checkRestore(name, cutQuarter: fraction)
      }
    }
  }

  func checkRestore(_ name: String, cutQuarter: Int) throws {
    let dir = fixturesRoot + "/" + name
    let reference = try loadReference(dir + "/reference")
    let lines = eventLines(dir + "/events.txt")
    var k = V2Kernel(reference: reference, plantedFault: nil)
    k.setChangeTracking(true)
    var store: [StateTable: [Int32: [UInt8]]] = [:]
    func commit() {
      var w = ByteWriter()
      var taken: [(StateTable, Int32, Range<Int>)] = []
      k.takeChangedRows(into: &w) { t, id, range in taken.append((t, id, range)) }
      // Each table's rows once each, by id, tables in order.
      for (a, b) in zip(taken, taken.dropFirst()) {
        XCTAssert(
          a.0.rawValue < b.0.rawValue || (a.0 == b.0 && a.1 < b.1),
          "taken rows out of order: \(a.0) \(a.1), \(b.0) \(b.1)")
      }
      for (t, id, range) in taken { store[t, default: [:]][id] = Array(w.bytes[range]) }
    }
    let cut = lines.count * cutQuarter / 4
    for (i, line) in lines[..<cut].enumerated() {
      applyLine(&k, line, seq: Int64(i + 1))
      if i % 37 == 5 { commit() }
    }
    commit()
    let restored = try V2Kernel.restore(opening: V2Kernel(reference: reference, plantedFault: nil)) { put in
      for table in StateTable.allCases {
        for (id, bytes) in (store[table] ?? [:]).sorted(by: { $0.key < $1.key }) { try put(table, id, bytes) }
      }
    }
    let what = "\(name) cut \(cut)"
    XCTAssertEqual(rowsText(restored), rowsText(k), "\(what): restored rows")
    XCTAssertEqual(restored.computeChecksum(), k.computeChecksum(), what)
    var a = k
    var b = restored
    a.enableEffects()
    b.enableEffects()
    let snapshot = b.snapshotEffects()
    XCTAssertEqual(a.snapshotEffects(), snapshot, "\(what): snapshot")
    for (i, line) in lines[cut...].enumerated() {
      let seq = Int64(cut + i + 1)
      XCTAssertEqual(applyLine(&a, line, seq: seq), applyLine(&b, line, seq: seq), "\(what) seq \(seq)")
    }
    let rest = b.takeEffects()
    XCTAssertEqual(a.takeEffects(), rest, "\(what): effects after restore")
    // The restored kernel's stream, decoded from its snapshot (every row existing at the
    // restart named there, later ones by key records), is the golden run's tail.
    var decoder = EffectDecoder()
    _ = try decoder.decode(snapshot)
    let golden = String(decoding: readBytes(dir + "/effects.txt"), as: UTF8.self)
    if let from = golden.range(of: "\nevent \(cut + 1) ") {
      XCTAssertEqual(
        String(decoding: EffectText.render(try decoder.decode(rest)), as: UTF8.self),
        String(golden[golden.index(after: from.lowerBound)...]), "\(what): effects text after restore")
    } else {
      XCTFail("\(what): no event \(cut + 1) in the golden effects")
    }
    XCTAssertEqual(rowsText(a), rowsText(b), "\(what): rows after restore")
    XCTAssertEqual(b.selfCheckViolations(limit: 10), [], what)
  }
}
