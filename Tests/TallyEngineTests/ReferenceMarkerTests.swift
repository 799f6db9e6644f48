// The two kinds of a state folder's reference marker (`ReferenceMarker`): a folder made
// with the reference files' digest (what `tally run --state` does) is checked against
// the files' digest and refuses other bytes; a folder made with the canonical
// fingerprint (in-memory references, replicas, folders made before) keeps being
// checked that way, whatever the caller offers. Real RocksDB folders, real files.
import Foundation
import KernelAPI
import KernelV1
import MarketGenerator
import RocksDBStore
import TallyEngine
import TallyFormat
import XCTest

final class ReferenceMarkerTests: XCTestCase {
  private var market: TestMarket!
  private var folder: String { market.directory + "/reference" }
  private var statePath: String { market.directory + "/state" }
  private var reference: ReferenceData { market.reference }
  private var lines: [ArraySlice<UInt8>] { market.lines }

  override func setUpWithError() throws {
    market = try TestMarket.generate("marker", days: 2, tradesPerDay: 300)
  }

  override func tearDown() { market.map { removeDirectory($0.directory) } }

  /// The digest of the reference folder's files, as the CLI gives it.
  private var files: @Sendable () throws -> [UInt8] {
    let folder = self.folder
    return { ReferenceFiles.digest(folder: folder) }
  }

  /// Opens the folder, applies `count` lines after what it holds and commits; closes it.
  @discardableResult
  private func run(_ count: Int, referenceFiles: (@Sendable () throws -> [UInt8])?) throws -> Int64 {
    let store = try RocksDBStateStore(path: statePath)
    defer { store.close() }
    let d = try DurableEngine<V1Kernel>(
      store: store, reference: reference, layout: .segmentLog, referenceFiles: referenceFiles)
    // Offered from the first line, as a run offers its event files: the lines the folder
    // holds are recognised (its stream fingerprint) and not applied again.
    let end = min(Int(d.committedSeq) + count, lines.count)
    for i in 0..<end { try d.offer(line: lines[i], seq: Int64(i + 1)) }
    try d.commit()
    return d.committedSeq
  }

  private func storedMarker() throws -> [UInt8]? {
    let store = try RocksDBStateStore(path: statePath)
    defer { store.close() }
    return try store.value(for: StateKeys.reference)
  }

  func testAFolderMadeFromFilesIsMarkedWithTheirDigestAndResumesWithThem() throws {
    XCTAssertEqual(try run(200, referenceFiles: files), 200)
    let marker = try XCTUnwrap(storedMarker())
    XCTAssertTrue(ReferenceMarker.isFiles(marker))
    XCTAssertEqual(marker, Array("files-sha256:".utf8) + ReferenceFiles.digest(folder: folder))
    XCTAssertEqual(ReferenceMarker.digest(ofFiles: marker), ReferenceFiles.digest(folder: folder))
    XCTAssertEqual(try run(200, referenceFiles: files), 400, "the same files: resumed")
    let inspection = try StateInspection(
      store: try RocksDBStateStore(path: statePath), reference: reference, referenceFiles: files)
    XCTAssertTrue(inspection.verified)
    XCTAssertEqual(inspection.appliedSeq, 400)
  }

  func testAFolderMadeFromFilesRefusesOtherBytesAndACallerWithoutFiles() throws {
    try run(200, referenceFiles: files)
    // One byte more in one file: other reference files, whatever it parses to.
    let other: @Sendable () throws -> [UInt8] = { [folder] in
      var digest = ReferenceFiles.digest(folder: folder)
      digest[0] ^= 1
      return digest
    }
    let refused = errorText { try self.run(10, referenceFiles: other) }
    XCTAssertTrue(refused?.contains("other reference data") ?? false, refused ?? "other files were accepted")
    let withoutFiles = errorText { try self.run(10, referenceFiles: nil) }
    XCTAssertTrue(
      withoutFiles?.contains("reference folder's files") ?? false, withoutFiles ?? "opened without its files")
    let inspected = errorText {
      _ = try StateInspection(store: try RocksDBStateStore(path: self.statePath), reference: self.reference)
    }
    XCTAssertTrue(
      inspected?.contains("reference folder's files") ?? false, inspected ?? "inspected without files")
    XCTAssertEqual(try run(0, referenceFiles: files), 200, "nothing was changed by the refusals")
  }

  func testFilesThatCannotBeVouchedForStopAFreshFolderBeforeAnyMarker() throws {
    struct Changed: Error, CustomStringConvertible {
      var description: String { "the files changed under the run" }
    }
    let message = errorText { try self.run(10, referenceFiles: { throw Changed() }) }
    XCTAssertTrue(message?.contains("the files changed under the run") ?? false, message ?? "accepted")
    XCTAssertNil(try storedMarker(), "no marker was written")
    XCTAssertEqual(try run(10, referenceFiles: files), 10, "the folder is still a fresh one")
  }

  func testTheFilesDigestIsVouchedForByTheStampsTakenBeforeTheParse() throws {
    let stamps = ReferenceFiles.stamps(folder: folder)
    XCTAssertEqual(
      try ReferenceFiles.digest(folder: folder, unchangedSince: stamps), ReferenceFiles.digest(folder: folder)
    )
    // A file rewritten after the stamps (as by an operator during a run's start): the
    // digest is no longer of the bytes parsed.
    let path = folder + "/participants.csv"
    var bytes = try XCTUnwrap(FileManager.default.contents(atPath: path))
    bytes.append(contentsOf: Array("P0999,Late Member\n".utf8))
    try bytes.write(to: URL(fileURLWithPath: path))
    let message = errorText { _ = try ReferenceFiles.digest(folder: self.folder, unchangedSince: stamps) }
    XCTAssertTrue(
      message?.contains("changed while it was read") ?? false, message ?? "a changed folder was vouched for")
  }

  func testACanonicalFolderStaysCanonicalWhenFilesAreOffered() throws {
    try run(200, referenceFiles: nil)
    let marker = try XCTUnwrap(storedMarker())
    XCTAssertFalse(ReferenceMarker.isFiles(marker))
    XCTAssertEqual(marker, referenceFingerprint(reference))
    // The CLI offers the files' digest; the folder is checked by its own kind.
    XCTAssertEqual(try run(100, referenceFiles: files), 300)
    XCTAssertEqual(try storedMarker(), marker, "the marker is not rewritten")
    var other = reference
    other.accounts.append((id: "Z000000001", kind: other.accounts[0].kind))
    let store = try RocksDBStateStore(path: statePath)
    defer { store.close() }
    let message = errorText {
      _ = try DurableEngine<V1Kernel>(
        store: store, reference: other, layout: .segmentLog, referenceFiles: self.files)
    }
    XCTAssertTrue(
      message?.contains("other reference data") ?? false, message ?? "other reference data was accepted")
  }
}
