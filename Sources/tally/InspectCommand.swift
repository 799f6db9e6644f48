import ArgumentParser
import Foundation
import KernelAPI
import RocksDBStore
import TallyEngine
import TallyFormat

struct InspectCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "inspect",
    abstract:
      "Show what a state folder holds: applied seq, digest, rows per table, an account, a participant.",
    discussion: helpText(
      """
      Opens the RocksDB state folder read-write (stop the run that owns it first), rebuilds
      the opening state from --reference, lays the stored rows (those changed since the
      opening) over it and verifies the stored checksum. The key layout is in docs/STATE-LAYOUT.md;
      `ldb --db=DIR scan --hex` (Debian package rocksdb-tools) reads the same keys.
      """))

  @Option(name: .long, help: "The state folder (tally run --state DIR).")
  var state: String

  @Option(
    name: .long, help: "The reference folder the state was made with (its opening state is not stored).")
  var reference: String

  @Option(name: .long, help: "Show this account's holdings and lots.")
  var account: String?

  @Option(name: .long, help: "Show this participant's balance, clearing and settlement rows.")
  var participant: String?

  func run() throws {
    guard FileManager.default.fileExists(atPath: state + "/CURRENT") else {
      fail("\(state) is not a state folder (no RocksDB CURRENT file)", code: 2)
    }
    let inspection: StateInspection
    do {
      let store = try RocksDBStateStore(
        path: state,
        options: {
          var o = RocksDBOptions(); o.createIfMissing = false; return o
        }())
      let folder = reference
      let stamps = ReferenceFiles.stamps(folder: folder)
      let referenceData = try FileIO.loadReference(folder)
      // A folder marked with its reference files' digest is checked against the files
      // just parsed (unchanged since: the same stamps).
      inspection = try StateInspection(
        store: store, reference: referenceData,
        referenceFiles: { try ReferenceFiles.digest(folder: folder, unchangedSince: stamps) })
    } catch { fail("\(error)", code: 2) }
    let t = inspection.tables
    print("state folder: \(state)")
    print("format:       \(inspection.format)")
    print("reference:    \(inspection.referenceMarker)")
    print("applied seq:  \(inspection.appliedSeq)")
    print(
      "day:          last opened \(t.globals.lastOpened == 0 ? "none" : dateText(t.globals.lastOpened)), \(t.globals.dayOpen ? "open" : "closed")"
    )
    print("digest:       \(StateDigest.of(inspection.recomputedChecksum).hexString)")
    print(
      "checksum:     \(inspection.verified ? "verified (stored = recomputed from rows)" : "MISMATCH: stored \(inspection.storedChecksum.map { StateDigest.of($0).hexString } ?? "none")")"
    )
    print("rows (in the state, of them stored as changed since the opening state):")
    for (table, n, stored) in inspection.rowCounts {
      print("  \(DemoSummary.pad(table.name, 14))\(n) (\(stored) stored)")
    }
    if let account {
      guard let a = t.accounts.firstIndex(where: { $0.id == Ident(account) }) else {
        fail("no account \(account)", code: 2)
      }
      print("account \(account) (\(t.accounts[a].kind.word)):")
      print("  security  quantity  available  withheld  lots (acquired/creation/accrued per share/quantity)")
      let rows = t.positions.indices.filter { t.positions[$0].account == Int32(a) }.sorted {
        t.securities[Int(t.positions[$0].security)].code < t.securities[Int(t.positions[$1].security)].code
      }
      for i in rows {
        let p = t.positions[i]
        let lots = t.lots(of: i).map {
          "\($0.acquired)/\($0.creation)/\(micro($0.accruedMicro))/\($0.quantity)"
        }
        .joined(separator: " ")
        print(
          "  \(DemoSummary.pad(t.securities[Int(p.security)].code.text, 9)) \(p.quantity) \(p.available) \(p.withheld)  \(lots)"
        )
      }
    }
    if let participant {
      guard let p = t.participants.firstIndex(where: { $0.id == Ident(participant) }) else {
        fail("no participant \(participant)", code: 2)
      }
      print(
        "participant \(participant) (\(t.participants[p].name)): balance \(ReportWriter.money(t.participants[p].balance))"
      )
      for s in t.settlement where s.participant == Int32(p) {
        print(
          "  settlement \(s.tradeDate): net \(ReportWriter.money(s.netFen)) \(s.status.word) \(s.settledOn == 0 ? "" : String(s.settledOn))"
        )
      }
      for c in t.clearing where c.participant == Int32(p) && (c.buyQuantity != 0 || c.sellQuantity != 0) {
        print(
          "  clearing \(c.tradeDate) \(t.securities[Int(c.security)].code): buy \(c.buyQuantity) / \(ReportWriter.money(c.buyAmount)), sell \(c.sellQuantity) / \(ReportWriter.money(c.sellAmount)), fees \(ReportWriter.money(c.fees.total))"
        )
      }
    }
    if !inspection.verified { throw ExitCode(4) }
  }
}

/// 0.000001 CNY units as an exact decimal, e.g. 250000 → 0.250000.
func micro(_ value: Int64) -> String {
  let m = value.magnitude
  let fraction = String(m % 1_000_000)
  return (value < 0 ? "-" : "") + String(m / 1_000_000) + "."
    + String(repeating: "0", count: 6 - fraction.count) + fraction
}
