// Kernel images (KernelAPI's KernelImage.swift), for both versions: a kernel loaded
// from an image behaves exactly as the one that wrote it, from there on: the same
// outcomes, effects, changed rows (what the next snapshot writes), canonical rows and
// outputs. And an image that is cut short or damaged is refused, not misread.
import Foundation
import KernelAPI
import KernelV1
import KernelV2
import MarketGenerator
import TallyEngine
import TallyFormat
import XCTest

final class KernelImageTests: XCTestCase {
  /// A generated market of several days with cancels and bad lines (rejections), its
  /// reference and lines.
  private func market(seed: UInt64, days: Int = 4) throws -> (ReferenceData, [ArraySlice<UInt8>]) {
    var options = MarketOptions(
      seed: seed, days: days, tradesPerDay: 900, accounts: 250, securities: 15, participants: 5)
    options.cancelsPerMillion = 10_000
    options.badLinesPerMillion = 5_000
    return try TestMarket.loaded("image-\(seed)", options)
  }

  private func image<K: BusinessKernel>(of k: K) -> [UInt8] {
    var bytes: [UInt8] = []
    var w = ImageWriter { bytes.append(contentsOf: $0) }
    XCTAssertTrue(k.writeImage(to: &w), "\(K.versionName) keeps an image")
    w.flush()
    XCTAssertEqual(w.count, bytes.count)
    return bytes
  }

  private func load<K: BusinessKernel>(_: K.Type, _ bytes: [UInt8], fault: PlantedFault?) throws -> K {
    try bytes.withUnsafeBytes { raw in
      var r = ImageReader(raw)
      guard let k = try K.loadImage(from: &r, plantedFault: fault) else {
        throw DecodeError(description: "\(K.versionName) loaded no image")
      }
      return k
    }
  }

  private func firstDifference(_ a: [UInt8], _ b: [UInt8]) -> Int {
    for i in 0..<min(a.count, b.count) where a[i] != b[i] { return i }
    return min(a.count, b.count)
  }

  private func changedRows<K: BusinessKernel>(_ e: inout Engine<K>) -> [String] {
    var rows: [String] = []
    e.takeChangedRows { table, id, bytes in rows.append("\(table.name) \(id) \(bytes.hexString)") }
    return rows
  }

  /// Applies `lines[range]` to both engines in blocks (the grouped TRADE path) and
  /// asserts the same outcomes and effects block by block.
  private func applyBoth<K: BusinessKernel>(
    _ a: inout Engine<K>, _ b: inout Engine<K>, _ lines: [ArraySlice<UInt8>], _ range: Range<Int>,
    block: Int, label: String
  ) {
    var start = range.lowerBound
    while start < range.upperBound {
      let end = min(start + block, range.upperBound)
      var bytes: [UInt8] = []
      var ranges: [Range<Int>] = []
      for line in lines[start..<end] {
        ranges.append(bytes.count..<bytes.count + line.count)
        bytes.append(contentsOf: line)
      }
      var outA: [Outcome] = []
      var outB: [Outcome] = []
      a.apply(lines: ranges[...], of: bytes, firstSeq: Int64(start + 1)) { _, o in outA.append(o) }
      b.apply(lines: ranges[...], of: bytes, firstSeq: Int64(start + 1)) { _, o in outB.append(o) }
      XCTAssertEqual(outA, outB, "\(label): outcomes of lines \(start + 1)...\(end)")
      let (ea, eb) = (a.takeEffects(), b.takeEffects())
      XCTAssertTrue(
        ea == eb, "\(label): effects of lines \(start + 1)...\(end) differ at byte \(firstDifference(ea, eb))"
      )
      start = end
    }
  }

  private func checkRoundTrips<K: BusinessKernel>(_: K.Type, fault: PlantedFault? = nil) throws {
    let (reference, lines) = try market(seed: 91)
    // Cut points: the first event, within days, around every OPEN/CLOSE/SETTLE line.
    var cuts = [1, 2, lines.count / 3, lines.count / 2, lines.count - 1, lines.count]
    for (i, line) in lines.enumerated()
    where line.starts(with: Array("OPEN".utf8)) || line.starts(with: Array("CLOSE".utf8))
      || line.starts(with: Array("SETTLE".utf8)) || line.starts(with: Array("CANCEL".utf8))
    {
      cuts.append(i + 1)
      if cuts.count > 24 { break }
    }
    for (n, cut) in cuts.enumerated() {
      let label = "\(K.versionName) cut after line \(cut)"
      var a = Engine<K>(reference: reference, plantedFault: fault)
      // Tracking on, and some of the changes taken before the image (as commits and
      // snapshots do): the rest must be reported again after the load. Every third
      // cut runs without tracking, as an in-memory run does.
      a.setChangeTracking(n % 3 != 2)
      for i in 0..<cut {
        a.apply(line: lines[i], seq: Int64(i + 1))
        if i == cut / 2 { _ = changedRows(&a) }
      }
      let bytes = image(of: a.state)
      var b = Engine<K>(state: try load(K.self, bytes, fault: fault))
      XCTAssertEqual(b.state.plantedFault, fault, label)
      XCTAssertEqual(b.appliedSeq, a.appliedSeq, label)
      XCTAssertEqual(b.stateDigest, a.stateDigest, label)
      // V1 writes every field (no record copied whole with its padding): the same state
      // writes the same bytes, from the kernel loaded from them and from another kernel
      // that applied the same events. (V2 copies some records whole; its padding bytes
      // are read by no state, output or digest.)
      if K.self == V1Kernel.self {
        XCTAssertTrue(image(of: b.state) == bytes, "\(label): the loaded kernel writes the same image")
        var c = Engine<K>(reference: reference, plantedFault: fault)
        c.setChangeTracking(n % 3 != 2)
        for i in 0..<cut {
          c.apply(line: lines[i], seq: Int64(i + 1))
          if i == cut / 2 { _ = changedRows(&c) }
        }
        XCTAssertTrue(
          image(of: c.state) == bytes, "\(label): another kernel to the same state writes the same image")
      }
      XCTAssertEqual(changedRows(&b), changedRows(&a), "\(label): rows changed before the image")
      a.enableEffects()
      b.enableEffects()
      let mid = cut + (lines.count - cut) / 2
      applyBoth(&a, &b, lines, cut..<mid, block: 257, label: label)
      XCTAssertEqual(changedRows(&b), changedRows(&a), "\(label): rows changed after the image")
      applyBoth(&a, &b, lines, mid..<lines.count, block: 1_000, label: label)
      XCTAssertEqual(b.stateDigest, a.stateDigest, label)
      XCTAssertTrue(b.state.snapshotEffects() == a.state.snapshotEffects(), "\(label): snapshot effects")
      XCTAssertEqual(b.state.selfCheckViolations(limit: 5), [], label)
      assertSameOutputs(outputs(b), outputs(a))
    }
  }

  func testV1LoadedFromItsImageBehavesAsTheKernelThatWroteIt() throws {
    try checkRoundTrips(V1Kernel.self)
  }

  func testV2LoadedFromItsImageBehavesAsTheKernelThatWroteIt() throws {
    try checkRoundTrips(V2Kernel.self)
  }

  func testAPlantedFaultSurvivesV1sImage() throws { try checkRoundTrips(V1Kernel.self, fault: .transfer) }

  func testAPlantedFaultSurvivesV2sImage() throws { try checkRoundTrips(V2Kernel.self, fault: .feeRounding) }

  /// Cut short anywhere, or with a count or a section name damaged, an image throws.
  private func checkDamage<K: BusinessKernel>(_: K.Type) throws {
    let (reference, lines) = try market(seed: 5, days: 2)
    var e = Engine<K>(reference: reference)
    for (i, line) in lines.enumerated() { e.apply(line: line, seq: Int64(i + 1)) }
    let bytes = image(of: e.state)
    XCTAssertNoThrow(try load(K.self, bytes, fault: nil))
    var lengths = Set((0..<200).map { $0 * bytes.count / 200 })
    lengths.formUnion([0, 1, bytes.count - 1])
    for n in lengths.sorted() where n < bytes.count {
      XCTAssertThrowsError(
        try load(K.self, Array(bytes[..<n]), fault: nil), "\(K.versionName) cut to \(n) bytes")
    }
    XCTAssertThrowsError(
      try load(K.self, bytes + [0], fault: nil), "\(K.versionName) with a byte after its end")
    var other = bytes
    other[0] ^= 0x40  // the first section name's length
    XCTAssertThrowsError(try load(K.self, other, fault: nil))
  }

  func testADamagedV1ImageThrows() throws { try checkDamage(V1Kernel.self) }

  func testADamagedV2ImageThrows() throws { try checkDamage(V2Kernel.self) }
}

/// The image file (KernelImageFile): the reference files' digest is asked for after
/// the body (a `tally run --state` computes it at low priority meanwhile); given, it is
/// the trailer's; thrown, no file is left and the error comes out.
final class KernelImageFileTests: XCTestCase {
  private func kernel() throws -> (V1Kernel, String) {
    let options = MarketOptions(
      seed: 7, days: 1, tradesPerDay: 50, accounts: 40, securities: 5, participants: 3)
    let dir = try makeTemporaryDirectory("image-file")
    _ = try MarketGenerator.generate(options, into: dir)
    let reference = try FileIO.loadReference(dir + "/reference")
    return (V1Kernel(reference: reference, plantedFault: nil), dir)
  }

  func testTheDigestAskedForAfterTheBodyIsTheTrailers() throws {
    let (k, dir) = try kernel()
    defer { removeDirectory(dir) }
    var asked = 0
    let digest = [UInt8](repeating: 0xAB, count: 32)
    let bytes = try KernelImageFile.write(
      k, folder: dir, seq: 0, referencePrint: [1, 2, 3],
      referenceFiles: {
        asked += 1
        // The body is on disk by now: the temporary file holds more than a trailer.
        let temporary = KernelImageFile.path(folder: dir, kernelName: k.kernelName) + ".tmp"
        let size = (try? FileManager.default.attributesOfItem(atPath: temporary)[.size] as? Int) ?? 0
        XCTAssertGreaterThan(size, 1_000, "the body is written before the digest is asked for")
        return digest
      })
    XCTAssertEqual(asked, 1)
    XCTAssertNotNil(bytes)
    let mapped = try XCTUnwrap(try KernelImageFile.open(folder: dir, kernelName: k.kernelName))
    XCTAssertEqual(mapped.trailer.referenceFiles, digest)
    XCTAssertEqual(mapped.trailer.referencePrint, [1, 2, 3])
  }

  /// The writer gathers small values in its buffer and hands large pieces (from
  /// `ImageWriter.directBytes`) straight to the sink: values of every size, around both
  /// limits, read back in order, and the pieces joined are `count` bytes.
  func testValuesOfEverySizeReadBackInTheirOrder() throws {
    let sizes = [
      0, 1, 7, ImageWriter.directBytes - 1, ImageWriter.directBytes, ImageWriter.directBytes + 1,
      KernelImageLimits.bufferBytes - 5, KernelImageLimits.bufferBytes,
    ]
    func piece(_ n: Int, _ salt: Int) -> [UInt8] {
      (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ salt) }
    }
    let wide = (0..<300_000).map { UInt64($0) &* 0x9E37_79B9_7F4A_7C15 }  // 2.4 MB: more than the buffer
    var bytes: [UInt8] = []
    var pieces = 0
    var w = ImageWriter {
      bytes.append(contentsOf: $0)
      pieces += 1
    }
    for (i, n) in sizes.enumerated() {
      w.i32(Int32(i))
      w.byteString(piece(n, i))
      w.u8(UInt8(i))
      piece(n, i + 100).withUnsafeBytes { w.byteString($0) }
      w.string("row \(i)")
      w.i64(-Int64(i))
    }
    w.array(wide)
    w.u64(.max)
    w.flush()
    XCTAssertEqual(w.count, bytes.count)
    XCTAssertGreaterThan(pieces, 3, "large pieces went to the sink apart")
    try bytes.withUnsafeBytes { raw in
      var r = ImageReader(raw)
      for (i, n) in sizes.enumerated() {
        XCTAssertEqual(try r.i32(), Int32(i))
        XCTAssertEqual(try r.byteString(), piece(n, i), "piece of \(n)")
        XCTAssertEqual(try r.u8(), UInt8(i))
        XCTAssertEqual(try r.byteString(), piece(n, i + 100), "pointer piece of \(n)")
        XCTAssertEqual(try r.string(), "row \(i)")
        XCTAssertEqual(try r.i64(), -Int64(i))
      }
      XCTAssertEqual(try r.array(of: UInt64.self), wide)
      XCTAssertEqual(try r.u64(), .max)
      XCTAssertTrue(r.isAtEnd)
    }
  }

  /// `ImageWriter.utf8` of a String's UTF-8 bytes writes what `string` of it writes
  /// (V1 writes its trade ids that way, from its id arena).
  func testUTF8BytesAreWrittenAsTheirString() {
    for text in ["", "T000000001", "0", String(repeating: "x", count: 300), "é-日本-\u{1F600}"] {
      var a: [UInt8] = []
      var b: [UInt8] = []
      var wa = ImageWriter { a.append(contentsOf: $0) }
      var wb = ImageWriter { b.append(contentsOf: $0) }
      wa.string(text)
      var copy = text
      copy.withUTF8 { wb.utf8(UnsafeRawBufferPointer($0)) }
      wa.flush()
      wb.flush()
      XCTAssertEqual(a, b, text)
      XCTAssertEqual(wa.count, wb.count, text)
    }
  }

  func testADigestThatThrowsLeavesNoImage() throws {
    struct Changed: Error {}
    let (k, dir) = try kernel()
    defer { removeDirectory(dir) }
    XCTAssertThrowsError(
      try KernelImageFile.write(
        k, folder: dir, seq: 0, referencePrint: [1], referenceFiles: { throw Changed() })
    ) { XCTAssertTrue($0 is Changed, "\($0)") }
    let final = KernelImageFile.path(folder: dir, kernelName: k.kernelName)
    XCTAssertFalse(FileManager.default.fileExists(atPath: final), "no image")
    XCTAssertFalse(FileManager.default.fileExists(atPath: final + ".tmp"), "no temporary file")
    XCTAssertNil(try KernelImageFile.open(folder: dir, kernelName: k.kernelName))
  }
}
