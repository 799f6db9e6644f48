// The reference fingerprint a state folder keeps (DurableEngine.swift): the SHA-256 of
// the reference's canonical encoding, written out here field by field as the format
// defines it (docs/STATE-LAYOUT.md), so that a faster encoder cannot change the value
// every existing state folder was made with.
import Foundation
import KernelAPI
import MarketGenerator
import TallyEngine
import XCTest

final class ReferenceFingerprintTests: XCTestCase {
  /// The encoding, the obvious way: every field through `ByteWriter`, in one buffer.
  func canonicalEncoding(_ r: ReferenceData) -> [UInt8] {
    var w = ByteWriter()
    w.string("reference/1")
    w.i32(Int32(r.calendar.count))
    for d in r.calendar { w.i32(d) }
    w.i32(Int32(r.securities.count))
    for s in r.securities {
      w.string(s.code)
      w.string(s.isin)
      w.string(s.name)
      w.u8(s.kind.rawValue)
    }
    w.i32(Int32(r.participants.count))
    for p in r.participants {
      w.string(p.id)
      w.string(p.name)
    }
    w.i32(Int32(r.units.count))
    for u in r.units {
      w.string(u.id)
      w.string(u.participant)
    }
    w.i32(Int32(r.accounts.count))
    for a in r.accounts {
      w.string(a.id)
      w.u8(a.kind.rawValue)
    }
    w.i32(Int32(r.holdings.count))
    for h in r.holdings {
      w.string(r.accounts[Int(h.account)].id)
      w.string(r.securities[Int(h.security)].code)
      w.i64(h.quantity)
      w.i32(h.acquiredDate)
    }
    w.i32(Int32(r.feeRows.count))
    for f in r.feeRows {
      w.u8(f.kind.rawValue)
      w.u8(f.fee.rawValue)
      w.u8(f.side.rawValue)
      w.string(f.rateText)
      w.i32(f.effectiveDate)
    }
    return w.bytes
  }

  /// The worked example, and a generated market whose holdings' encoding spans several
  /// of the encoder's 1 MiB chunks (~100,000 holdings of ~40 bytes).
  func testTheFingerprintIsTheSHA256OfTheCanonicalEncoding() throws {
    let basic = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("Fixtures/basic/reference").path
    let dir = FileManager.default.temporaryDirectory.path + "/tally-fingerprint-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = try MarketGenerator.generate(
      MarketOptions(seed: 3, days: 1, tradesPerDay: 10, accounts: 25_000, securities: 40, participants: 3),
      into: dir)
    for folder in [basic, dir + "/reference"] {
      let reference = try FileIO.loadReference(folder)
      let encoding = canonicalEncoding(reference)
      XCTAssertEqual(referenceFingerprint(reference), Digests.sha256(encoding), folder)
      if folder != basic { XCTAssertGreaterThan(encoding.count, 2 << 20, "the holdings span chunks") }
    }
    // Any changed holding changes it.
    var reference = try FileIO.loadReference(dir + "/reference")
    let before = referenceFingerprint(reference)
    reference.holdings[reference.holdings.count / 2].quantity += 1
    XCTAssertNotEqual(referenceFingerprint(reference), before)
    XCTAssertEqual(referenceFingerprint(reference), Digests.sha256(canonicalEncoding(reference)))
  }
}
