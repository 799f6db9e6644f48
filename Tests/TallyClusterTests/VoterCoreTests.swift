import KernelAPI
// The voter's decisions, driven directly (no sockets): votes in, actions out.
import TallyCluster
import XCTest

final class VoterCoreTests: XCTestCase {
  let ids = ["r1", "r2", "r3"]

  func core(repairsMax: Int = 3, watermark: Int64 = 1) -> VoterCore {
    VoterCore(replicaIds: ids, quorum: 2, repairsMax: repairsMax, watermark: watermark, decided: [])
  }

  /// A vote for seq first...last whose state digest is 32 bytes of `state` and outcomes all `outcome`.
  func vote(_ r: Int, _ first: Int64, _ last: Int64, state: UInt8 = 1, outcome: UInt8 = 0) -> Vote {
    Vote(
      replica: ids[r], kernel: r == 1 ? "v2" : "v1", first: first, last: last,
      outcomes: Array(repeating: outcome, count: Int(last - first + 1)),
      effectsDigest: EffectDigest.of([
        outcome, UInt8(truncatingIfNeeded: first), UInt8(truncatingIfNeeded: last),
      ]),
      stateDigest: Array(repeating: state, count: 32))
  }

  func emitted(_ actions: [VoterAction]) -> [ClosedRange<Int64>] {
    actions.compactMap { if case .emit(let d) = $0 { return d.first...d.last } else { return nil } }
  }

  func alerts(_ actions: [VoterAction]) -> [VoterAlert] {
    actions.compactMap { if case .alert(let a) = $0 { return a } else { return nil } }
  }

  func testTwoOfThreeDecide() {
    var c = core()
    XCTAssertEqual(c.receive(vote(0, 1, 10), from: 0), [], "one vote is not a quorum")
    XCTAssertEqual(c.watermark, 1)
    let actions = c.receive(vote(1, 1, 10), from: 1)
    XCTAssertEqual(emitted(actions), [1...10])
    XCTAssertEqual(actions.count, 1)
    if case .emit(let d) = actions[0] {
      XCTAssertEqual(d.outcomes, Array(repeating: 0, count: 10))
      XCTAssertEqual(d.stateDigest, Array(repeating: 1, count: 32))
      XCTAssertEqual(d.outputDigest, vote(0, 1, 10).outputDigest)
    }
    XCTAssertEqual(c.watermark, 11)
    // The third, agreeing vote arrives late: nothing to emit again, no alert.
    XCTAssertEqual(c.receive(vote(2, 1, 10), from: 2), [])
    XCTAssertEqual(c.replicas.map(\.agreed), [1, 1, 1])
    XCTAssertEqual(c.replicas.map(\.quarantined), [false, false, false])
    XCTAssertNil(c.halted)
  }

  /// A replica restarted after its last commit applies and votes again on batches
  /// already decided and judged: its agreed votes count each batch once (they read
  /// 22 against its peers' 11 in a README walk-through before), and the stream moves on.
  func testARestartedReplicasRepeatedVotesCountOnce() {
    var c = core()
    _ = c.receive(vote(0, 1, 10), from: 0)
    _ = c.receive(vote(1, 1, 10), from: 1)
    _ = c.receive(vote(2, 1, 10), from: 2)
    _ = c.receive(vote(0, 11, 20), from: 0)
    XCTAssertEqual(emitted(c.receive(vote(1, 11, 20), from: 1)), [11...20])
    XCTAssertEqual(c.receive(vote(2, 11, 20), from: 2), [])
    XCTAssertEqual(c.replicas.map(\.agreed), [2, 2, 2])
    // r2 restarts from a commit at seq 0 and votes on both batches again.
    XCTAssertEqual(c.receive(vote(2, 1, 10), from: 2), [])
    XCTAssertEqual(c.receive(vote(2, 11, 20), from: 2), [])
    XCTAssertEqual(c.replicas.map(\.agreed), [2, 2, 2])
    XCTAssertEqual(c.replicas.map(\.dissents), [0, 0, 0])
    // A repeated vote that disagrees is still a dissent.
    let wrong = c.receive(vote(2, 11, 20, state: 9), from: 2)
    XCTAssertEqual(alerts(wrong).map(\.kind), [.dissent])
    XCTAssertEqual(c.replicas[2].dissents, 1)
    // The next batch counts as before.
    _ = c.receive(vote(0, 21, 30), from: 0)
    XCTAssertEqual(emitted(c.receive(vote(1, 21, 30), from: 1)), [21...30])
    XCTAssertEqual(c.replicas.map(\.agreed), [3, 3, 2])
  }

  func testAnyTwoMakeAQuorum() {
    var c = core()
    _ = c.receive(vote(2, 1, 5), from: 2)
    XCTAssertEqual(emitted(c.receive(vote(0, 1, 5), from: 0)), [1...5])
    _ = c.receive(vote(1, 6, 9), from: 1)
    XCTAssertEqual(emitted(c.receive(vote(2, 6, 9), from: 2)), [6...9])
  }

  func testLateDissenterIsAlertedQuarantinedAndRepaired() {
    var c = core()
    _ = c.receive(vote(0, 1, 4), from: 0)
    _ = c.receive(vote(1, 1, 4), from: 1)
    let actions = c.receive(vote(2, 1, 4, state: 9), from: 2)
    let a = alerts(actions)
    XCTAssertEqual(a.count, 1)
    XCTAssertEqual(a.first?.kind, .dissent)
    XCTAssertEqual(a.first?.replica, "r3")
    XCTAssertEqual(a.first?.first, 1)
    XCTAssertEqual(a.first?.last, 4)
    XCTAssertTrue(actions.contains(.quarantine(replica: 2)))
    XCTAssertTrue(actions.contains(.repair(replica: 2)))
    XCTAssertTrue(c.replicas[2].quarantined)
    XCTAssertEqual(c.replicas[2].dissents, 1)
    XCTAssertEqual(c.replicas[2].repairs, 1)
  }

  func testDissenterBeforeTheDecisionIsAlertedToo() {
    var c = core()
    XCTAssertEqual(c.receive(vote(2, 1, 4, outcome: 7), from: 2), [])
    XCTAssertEqual(c.receive(vote(0, 1, 4), from: 0), [], "1 against 1: wait for the third")
    let actions = c.receive(vote(1, 1, 4), from: 1)
    XCTAssertEqual(emitted(actions), [1...4])
    XCTAssertEqual(alerts(actions).map(\.kind), [.dissent])
    XCTAssertEqual(alerts(actions).first?.replica, "r3")
    XCTAssertEqual(alerts(actions).first?.detail, "outputs differ from the majority's")
    XCTAssertTrue(actions.contains(.quarantine(replica: 2)))
    XCTAssertTrue(actions.contains(.repair(replica: 2)))
    // The emitted batch is the majority's, never the dissenter's.
    if case .emit(let d)? = actions.first(where: { if case .emit = $0 { return true } else { return false } })
    {
      XCTAssertEqual(d.outcomes, [0, 0, 0, 0])
    }
  }

  func testStateDigestDissentIsNamed() {
    var c = core()
    _ = c.receive(vote(0, 1, 2), from: 0)
    _ = c.receive(vote(1, 1, 2), from: 1)
    let a = alerts(c.receive(vote(2, 1, 2, state: 3), from: 2))
    XCTAssertEqual(a.first?.detail, "state digest differs from the majority's")
  }

  func testRepairsStopAtTheLimit() {
    var c = core(repairsMax: 2)
    var repairs = 0
    var quarantines = 0
    var alerted: [Int] = []
    // Three rounds: the faulty r3 dissents, is repaired, replays from seq 1, dissents again.
    for round in 0..<3 {
      for b in 0..<3 {
        let first = Int64(b * 3 + 1)
        if round == 0 {
          _ = c.receive(vote(0, first, first + 2), from: 0)
          _ = c.receive(vote(1, first, first + 2), from: 1)
        }
        let actions = c.receive(vote(2, first, first + 2, state: 9), from: 2)
        repairs += actions.filter { $0 == .repair(replica: 2) }.count
        quarantines += actions.filter { $0 == .quarantine(replica: 2) }.count
        if !alerts(actions).isEmpty { alerted.append(round * 3 + b) }
      }
    }
    // One alert for the incident (its first dissent), then one when out of repairs; a
    // repaired replica dissenting again and dissents while awaiting a rebuild are
    // counted, not re-alerted (no alert flood: issue 9's "once per incident").
    XCTAssertEqual(alerted, [0, 6])
    XCTAssertEqual(repairs, 2)
    XCTAssertEqual(quarantines, 1, "quarantined once, and it stays")
    XCTAssertEqual(c.replicas[2].dissents, 9)
    XCTAssertTrue(c.replicas[2].quarantined)
    // Out of repairs: later dissents raise nothing more.
    XCTAssertEqual(alerts(c.receive(vote(2, 1, 3, state: 9), from: 2)), [])
  }

  func testNoMajorityHalts() {
    var c = core()
    XCTAssertEqual(c.receive(vote(0, 1, 3, state: 1), from: 0), [])
    XCTAssertEqual(c.receive(vote(1, 1, 3, state: 2), from: 1), [])
    let actions = c.receive(vote(2, 1, 3, state: 3), from: 2)
    XCTAssertEqual(emitted(actions), [])
    XCTAssertEqual(alerts(actions).map(\.kind), [.noMajority])
    XCTAssertEqual(alerts(actions).first?.first, 1)
    XCTAssertEqual(alerts(actions).first?.last, 3)
    XCTAssertNil(alerts(actions).first?.replica)
    XCTAssertNotNil(c.halted)
    XCTAssertEqual(c.halted?.kind, .noMajority)
    XCTAssertEqual(c.watermark, 1, "nothing is emitted when no majority agrees")
    // Once halted, nothing more is decided, even a batch with a clear majority.
    XCTAssertEqual(emitted(c.receive(vote(0, 4, 5), from: 0) + c.receive(vote(1, 4, 5), from: 1)), [])
    XCTAssertEqual(c.watermark, 1)
  }

  func testTwoEligibleReplicasThatDisagreeHalt() {
    var c = core()
    // r2 dissents and is quarantined; then r1 and r3, the only eligible ones, disagree.
    _ = c.receive(vote(0, 1, 1), from: 0)
    _ = c.receive(vote(1, 1, 1, state: 5), from: 1)
    _ = c.receive(vote(2, 1, 1), from: 2)  // decides 1...1 with r1 and r3; r2 dissents
    XCTAssertTrue(c.replicas[1].quarantined)
    _ = c.receive(vote(0, 2, 2), from: 0)
    _ = c.receive(vote(2, 2, 2, state: 6), from: 2)
    _ = c.receive(vote(1, 2, 2), from: 1)
    // r1 and r3 disagree and r2 does not count: no majority, and nothing guessed.
    XCTAssertEqual(c.halted?.kind, .noMajority)
    XCTAssertNotNil(c.halted)
    XCTAssertEqual(c.watermark, 2)
  }

  func testVotesOutOfOrderAreDecidedInSeqOrder() {
    var c = core()
    // Batches 3 and 2 arrive before batch 1.
    XCTAssertEqual(c.receive(vote(0, 21, 30), from: 0), [])
    XCTAssertEqual(c.receive(vote(1, 21, 30), from: 1), [])
    XCTAssertEqual(c.receive(vote(1, 11, 20), from: 1), [])
    XCTAssertEqual(c.receive(vote(2, 11, 20), from: 2), [])
    XCTAssertEqual(c.watermark, 1, "nothing past a gap is decided")
    XCTAssertEqual(c.receive(vote(2, 1, 10), from: 2), [])
    let actions = c.receive(vote(0, 1, 10), from: 0)
    XCTAssertEqual(emitted(actions), [1...10, 11...20, 21...30])
    XCTAssertEqual(c.watermark, 31)
    XCTAssertTrue(c.pending.isEmpty)
  }

  func testLateMatchingVoteFromARepairedReplicaRejoins() {
    var c = core()
    // Batch 1: r3 dissents, is quarantined and asked to repair.
    _ = c.receive(vote(0, 1, 5), from: 0)
    _ = c.receive(vote(1, 1, 5), from: 1)
    _ = c.receive(vote(2, 1, 5, state: 9), from: 2)
    XCTAssertTrue(c.replicas[2].quarantined)
    // Batches 2 and 3 are decided by r1 and r2 while r3 rebuilds.
    for (f, l) in [(Int64(6), Int64(8)), (9, 12)] {
      _ = c.receive(vote(0, f, l), from: 0)
      XCTAssertEqual(emitted(c.receive(vote(1, f, l), from: 1)), [f...l])
    }
    // The repaired r3 replays: matching votes for old batches do not rejoin it yet...
    XCTAssertEqual(alerts(c.receive(vote(2, 1, 5), from: 2)), [])
    XCTAssertEqual(alerts(c.receive(vote(2, 6, 8), from: 2)), [])
    XCTAssertTrue(c.replicas[2].quarantined)
    // ...its matching vote for the last decided batch does.
    let a = alerts(c.receive(vote(2, 9, 12), from: 2))
    XCTAssertEqual(a.map(\.kind), [.rejoined])
    XCTAssertEqual(a.first?.replica, "r3")
    XCTAssertFalse(c.replicas[2].quarantined)
    // And it counts toward the quorum again: r3 + r1 decide without r2.
    _ = c.receive(vote(2, 13, 14), from: 2)
    XCTAssertEqual(emitted(c.receive(vote(0, 13, 14), from: 0)), [13...14])
  }

  func testQuarantinedVotesDoNotCount() {
    var c = core()
    _ = c.receive(vote(0, 1, 1), from: 0)
    _ = c.receive(vote(1, 1, 1), from: 1)
    _ = c.receive(vote(2, 1, 1, state: 9), from: 2)
    XCTAssertTrue(c.replicas[2].quarantined)
    XCTAssertEqual(c.receive(vote(2, 2, 2), from: 2), [])
    XCTAssertEqual(c.receive(vote(0, 2, 2), from: 0), [], "r1 plus a quarantined r3 is not a quorum")
    XCTAssertEqual(emitted(c.receive(vote(1, 2, 2), from: 1)), [2...2])
  }

  /// A repaired replica replays while the others move on: it rejoins when its (in-order)
  /// replay reaches the newest decided batch, and counts toward the quorum after that.
  func testRepairedReplicaRejoinsWhileTheStreamMovesOn() {
    var c = core()
    _ = c.receive(vote(0, 1, 5), from: 0)
    _ = c.receive(vote(1, 1, 5), from: 1)
    _ = c.receive(vote(2, 1, 5, state: 9), from: 2)
    XCTAssertTrue(c.replicas[2].quarantined)
    _ = c.receive(vote(0, 6, 8), from: 0)
    _ = c.receive(vote(1, 6, 8), from: 1)
    // r3's replayed vote for 1...5 arrives after 6...8 was decided: not the newest, no rejoin.
    XCTAssertEqual(alerts(c.receive(vote(2, 1, 5), from: 2)), [])
    XCTAssertTrue(c.replicas[2].quarantined)
    // 9...10 is decided before r3's vote for 6...8 arrives.
    _ = c.receive(vote(0, 9, 10), from: 0)
    _ = c.receive(vote(1, 9, 10), from: 1)
    XCTAssertEqual(alerts(c.receive(vote(2, 6, 8), from: 2)), [])
    // r3 reaches the newest decided batch: rejoined.
    XCTAssertEqual(alerts(c.receive(vote(2, 9, 10), from: 2)).map(\.kind), [.rejoined])
    XCTAssertFalse(c.replicas[2].quarantined)
    // It is now first on 11...12 and, with r2, decides it.
    XCTAssertEqual(c.receive(vote(2, 11, 12), from: 2), [])
    XCTAssertEqual(emitted(c.receive(vote(1, 11, 12), from: 1)), [11...12])
  }

  func testResendAskedOnlyOfReplicasThatAppliedPastTheWatermark() {
    var c = core()
    c.heartbeat(replica: 0, appliedSeq: 50, kernel: "v1")
    c.heartbeat(replica: 1, appliedSeq: 0, kernel: "v2")
    c.heartbeat(replica: 2, appliedSeq: 10, kernel: "v1")
    XCTAssertEqual(c.replicasToAskForResend().map(\.replica), [0, 2])
    _ = c.receive(vote(2, 1, 10), from: 2)
    XCTAssertEqual(c.replicasToAskForResend().map(\.replica), [0])
  }

  func testRestartedCoreJudgesLateVotesAgainstStoredDecisions() {
    // A voter restarted with its decided batches: a late vote is compared, not re-emitted.
    var before = core()
    _ = before.receive(vote(0, 1, 4), from: 0)
    let decided: [DecidedBatch] = before.receive(vote(1, 1, 4), from: 1).compactMap {
      if case .emit(let d) = $0 { return d } else { return nil }
    }
    XCTAssertEqual(decided.count, 1)
    var c = VoterCore(replicaIds: ids, quorum: 2, repairsMax: 3, watermark: 5, decided: decided)
    XCTAssertEqual(c.receive(vote(2, 1, 4), from: 2), [])
    let a = alerts(c.receive(vote(2, 1, 4, state: 8), from: 2))
    XCTAssertEqual(a.map(\.kind), [.dissent])
    XCTAssertEqual(c.watermark, 5)
    _ = c.receive(vote(0, 5, 6), from: 0)
    XCTAssertEqual(emitted(c.receive(vote(1, 5, 6), from: 1)), [5...6])
  }

  /// The stream asks a decided batch's records of a replica whose votes show it applied
  /// the batch, in rotation; only when none has does it fall back to plain rotation.
  func testStreamAsksAReplicaThatAppliedTheBatch() {
    var c = core()
    _ = c.receive(vote(0, 1, 10), from: 0)
    XCTAssertEqual(emitted(c.receive(vote(1, 1, 10), from: 1)), [1...10])
    let views = c.replicas
    XCTAssertEqual(views.map(\.appliedSeq), [10, 10, 0])
    // r3 (index 2) is next in rotation but has not applied seq 10: r1 is asked.
    let a = StreamProtocol.source(replicas: views, rotation: 2, previous: nil, through: 10)
    XCTAssertEqual(a?.replica, 0)
    XCTAssertEqual(a?.rotation, 1)
    // Not the one that did not answer, when another has the batch.
    XCTAssertEqual(StreamProtocol.source(replicas: views, rotation: 0, previous: 0, through: 10)?.replica, 1)
    // Nobody applied seq 11 yet: plain rotation.
    XCTAssertEqual(
      StreamProtocol.source(replicas: views, rotation: 2, previous: nil, through: 11)?.replica, 2)
    // Quarantined replicas are never asked; with all quarantined, nobody is.
    var q = views
    q[0].quarantined = true
    XCTAssertEqual(StreamProtocol.source(replicas: q, rotation: 0, previous: nil, through: 10)?.replica, 1)
    for i in q.indices { q[i].quarantined = true }
    XCTAssertNil(StreamProtocol.source(replicas: q, rotation: 0, previous: nil, through: 10))
  }
}
