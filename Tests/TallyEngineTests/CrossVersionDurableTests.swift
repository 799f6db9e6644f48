// N-version and durability together: a state folder (real RocksDB on disk) written by
// one kernel version is reopened by the other, which verifies the stored checksum,
// applies the rest and ends with the digest and outputs of a straight run. A replica
// may restart on another version than the one that wrote its state.
import Foundation
import KernelAPI
import KernelV1
import KernelV2
import RocksDBStore
import TallyEngine
import XCTest

final class CrossVersionDurableTests: XCTestCase {
  func run<A: BusinessKernel, B: BusinessKernel>(first _: A.Type, then _: B.Type) throws {
    let m = try TestMarket.generate("crossdurable", seed: 31, days: 4, tradesPerDay: 300, accounts: 50)
    addTeardownBlock { removeDirectory(m.directory) }
    let straight = try m.straightRun()
    let path = m.directory + "/state"
    let half = m.lines.count / 2
    do {
      let store = try RocksDBStateStore(path: path)
      let d = try DurableEngine<A>(store: store, reference: m.reference)
      for i in 0..<half {
        try d.offer(line: m.lines[i], seq: Int64(i + 1))
        if i % 97 == 96 { try d.commit() }
      }
      try d.commit()
      store.close()
    }
    let store = try RocksDBStateStore(path: path)
    defer { store.close() }
    let d = try DurableEngine<B>(store: store, reference: m.reference)
    XCTAssertEqual(d.committedSeq, Int64(half), "\(B.versionName) resumes where \(A.versionName) committed")
    for i in 0..<m.lines.count { try d.offer(line: m.lines[i], seq: Int64(i + 1)) }
    try d.finishStream()
    try d.commit()
    XCTAssertEqual(d.engine.stateDigest, straight.digest)
    assertSameOutputs(outputs(d.engine), straight.outputs)
    // The folder B committed reopens too (its own rows verified).
    store.close()
    let again = try RocksDBStateStore(path: path)
    defer { again.close() }
    XCTAssertEqual(
      try DurableEngine<A>(store: again, reference: m.reference).engine.stateDigest, straight.digest)
  }

  func testStateWrittenByV1IsResumedByV2() throws { try run(first: V1Kernel.self, then: V2Kernel.self) }
  func testStateWrittenByV2IsResumedByV1() throws { try run(first: V2Kernel.self, then: V1Kernel.self) }
}
