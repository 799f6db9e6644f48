// A replica running V2 restarts from rows that V1 stored (its RocksDB state folder,
// dumped as `tag id hex` lines) laid over V2's own opening state: the checksum must be
// the one V1 stored, and the rest of the run must give V1's golden effects and rows.
import Foundation
import KernelAPI
import KernelV2
import TallyFormat
import XCTest

final class CrossVersionRestartTests: XCTestCase {
  func parseStoredRows(_ path: String) -> [(StateTable, Int32, [UInt8])] {
    var rows: [(StateTable, Int32, [UInt8])] = []
    for line in String(decoding: readBytes(path), as: UTF8.self).split(separator: "\n") {
      let f = line.split(separator: " ")
      guard f.count == 3, let tag = UInt8(f[0]), let table = StateTable(rawValue: tag), let id = Int32(f[1])
      else {
        XCTFail("bad stored row line \(line)")
        continue
      }
      let hex = Array(f[2].utf8)
      var bytes: [UInt8] = []
      var i = 0
      while i + 1 < hex.count {
        bytes.append(UInt8(String(decoding: hex[i..<(i + 2)], as: UTF8.self), radix: 16)!)
        i += 2
      }
      rows.append((table, id, bytes))
    }
    rows.sort { ($0.0.rawValue, $0.1) < ($1.0.rawValue, $1.1) }
    return rows
  }

  func testRestartFromRowsV1Stored() throws {
    var checked = 0
    for name in try FileManager.default.contentsOfDirectory(atPath: fixturesRoot).sorted() {
      let dir = fixturesRoot + "/" + name
      guard FileManager.default.fileExists(atPath: dir + "/v1-stored-rows.txt") else { continue }
      let reference = try loadReference(dir + "/reference")
      let stored = parseStoredRows(dir + "/v1-stored-rows.txt")
      var k = try V2Kernel.restore(opening: V2Kernel(reference: reference, plantedFault: nil)) { put in
        for (t, id, b) in stored { try put(t, id, b) }
      }
      let c = k.computeChecksum()
      let expected = String(decoding: readBytes(dir + "/v1-stored-checksum.txt"), as: UTF8.self)
      XCTAssertEqual(
        "\(String(c.lane0, radix: 16)) \(String(c.lane1, radix: 16)) \(c.rowCount)\n", expected, name)
      k.enableEffects()
      // Version 2 effects name rows by id: the rows restored are named by the snapshot a
      // stream is decoded from, the rows made after the restart by key records.
      let snapshot = k.snapshotEffects()
      let start = k.appliedSeq
      XCTAssertGreaterThan(start, 0, name)
      var effects: [UInt8] = []
      for (i, line) in eventLines(dir + "/events.txt").enumerated() where Int64(i + 1) > start {
        applyLine(&k, line, seq: Int64(i + 1))
        effects += k.takeEffects()
      }
      XCTAssertEqual(rowsText(k), String(decoding: readBytes(dir + "/rows.txt"), as: UTF8.self), name)
      let golden = String(decoding: readBytes(dir + "/effects.txt"), as: UTF8.self)
      guard let from = golden.range(of: "event \(start + 1) ") else {
        XCTFail("\(name): no event \(start + 1) in golden effects")
        continue
      }
      let tail = String(golden[from.lowerBound...])
      var decoder = EffectDecoder()
      _ = try decoder.decode(snapshot)
      XCTAssertEqual(
        String(decoding: EffectText.render(try decoder.decode(effects)), as: UTF8.self), tail, name)
      checked += 1
    }
    XCTAssertEqual(checked, 2)
  }
}
