// Alerts that explain (issue 9): before a dissenting replica is told to repair, the
// voter asks it and a replica of the majority for the batch's effect records and
// names the first seq whose effects differ and the differing rows, majority vs
// dissenter (`clearing 20260105,...: handling_fee 3.41 vs 3.40`).
import Foundation
import KernelAPI
import TallyEngine
import TallyFormat
import ZeroMQTransport

extension Voter {
  /// How long the voter waits for the effect records that explain a dissent. The
  /// voter loop stands still meanwhile (dissents are rare); without an answer the
  /// alert names the batch only.
  static let explainTimeoutMs = 3_000
  /// Differing rows named in one alert.
  static let explainRowsMax = 8

  /// Asks replica `r` for the effect records of batch first...last; nil when it has
  /// none or does not answer in time. Replies for other requests are handed on.
  func fetchEffects(_ r: Int, first: Int64, last: Int64, commands: [ZMQSocket], timeoutMs: Int) -> [UInt8]? {
    let socket = commands[r]
    guard (try? socket.send(["EFFECTS".bytes, first.leBytes, last.leBytes], dontWait: true)) == true else {
      return nil
    }
    let deadline = ContinuousClock.now + .milliseconds(timeoutMs)
    while ContinuousClock.now < deadline {
      let received: [[UInt8]]?
      do { received = try socket.receive(timeoutMs: 50) } catch { return nil }
      guard let msg = received else { continue }  // not yet
      if msg.count == 4, msg[0].text == "EFFECTS", Int64(leBytes: msg[1]) == first,
        Int64(leBytes: msg[2]) == last
      {
        return msg[3]
      }
      if msg.first?.text == "NOEFFECTS", msg.count >= 2, Int64(leBytes: msg[1]) == first { return nil }
      streamReply(msg, from: r)
    }
    return nil
  }

  /// The DISSENT alert with its explanation (first differing seq, rows), when the
  /// records can be had; the alert as it was otherwise.
  func explain(_ alert: VoterAlert, commands: [ZMQSocket]) -> VoterAlert {
    var a = alert
    a.batchFirst = alert.first
    guard let id = alert.replica, let r = config.replicaIndex(id),
      let decided = core.decidedKeys[alert.first], decided.last == alert.last
    else { return a }
    let majorityDigest = Array(decided.key.prefix(EffectDigest.byteCount))
    guard
      let dissenterBytes = fetchEffects(
        r, first: alert.first, last: alert.last, commands: commands, timeoutMs: Self.explainTimeoutMs)
    else {
      a.detail += "; the dissenter's effect records could not be had"
      return a
    }
    if EffectDigest.of(dissenterBytes) == majorityDigest {
      a.detail += "; its effects agree with the majority's, its state digest does not"
      return a
    }
    var majorityBytes: [UInt8]? = nil
    for m in core.replicas.indices where m != r && !core.replicas[m].quarantined {
      if let b = fetchEffects(
        m, first: alert.first, last: alert.last, commands: commands, timeoutMs: Self.explainTimeoutMs),
        EffectDigest.of(b) == majorityDigest
      {
        majorityBytes = b
        break
      }
    }
    // Lenient decoders: a batch names rows by id (docs/EFFECTS.md). The voter knows the
    // reference rows' keys (`explainKeys`) and reads the batch's own key records; rows
    // created by earlier batches are named by placeholders (`position#17`), and the
    // journaled event line says which trade it was.
    let keys = explainKeys()
    var majorityDecoder = EffectDecoder(lenient: true, dictionary: keys)
    var dissenterDecoder = EffectDecoder(lenient: true, dictionary: keys)
    guard let majorityBytes, let majority = try? majorityDecoder.decode(majorityBytes) else {
      a.detail += "; no majority replica sent the batch's effect records"
      return a
    }
    guard let dissenter = try? dissenterDecoder.decode(dissenterBytes) else {
      a.detail += "; the dissenter's effect records do not decode"
      return a
    }
    guard
      let diff = EffectText.firstDifference(
        majority: majority, dissenter: dissenter, linesMax: Self.explainRowsMax)
    else { return a }
    a.first = diff.seq
    a.rows = diff.lines
    a.event = journalLine(seq: diff.seq, batchFirst: alert.first)
    // What the core added (e.g. "; still after 3 repairs, stays quarantined") is kept.
    let note = alert.detail.range(of: "; ").map { String(alert.detail[$0.lowerBound...]) } ?? ""
    a.detail =
      "effects differ from the majority's first at seq \(diff.seq) (batch \(alert.first)...\(alert.last))"
      + (a.event.map { " for event \($0)" } ?? "") + ": " + diff.lines.joined(separator: "; ") + note
    return a
  }

  /// The reference rows' keys (`explainReference`), read once at the first dissent;
  /// empty without a reference folder or when it cannot be read (rows are then named by
  /// id).
  func explainKeys() -> EffectDictionary {
    if let keys = explainKeysLoaded { return keys }
    var keys = EffectDictionary()
    if let path = explainReference {
      let clock = ContinuousClock()
      let started = clock.now
      do {
        keys = EffectDictionary(reference: try FileIO.loadReference(path))
        log.info(
          "voter: read the reference rows' keys of \(path) to explain dissents (\(clock.now - started))")
      } catch {
        log.warning("voter: cannot read the reference folder \(path) to explain dissents: \(error)")
      }
    }
    explainKeysLoaded = keys
    return keys
  }

  /// The journaled event line at `seq`, asked of the sequencer (its batch starts at
  /// `batchFirst`); nil when it does not answer within explainTimeoutMs.
  func journalLine(seq: Int64, batchFirst: Int64) -> String? {
    guard let context = stream.context, let socket = try? ZMQSocket(context: context, type: .dealer) else {
      return nil
    }
    defer { socket.close() }
    guard (try? Secure.node(socket, config.curve)) != nil,
      (try? socket.connect(config.sequencerFetch)) != nil,
      (try? socket.send(["FETCH".bytes, batchFirst.leBytes], dontWait: true)) == true,
      let reply = try? socket.receive(timeoutMs: Int32(Self.explainTimeoutMs)),
      reply.first?.text == "BATCHES",
      reply.count >= 2
    else { return nil }
    var r = ByteReader(reply[1])
    guard let batch = try? JournalBatch(decoding: &r), batch.first <= seq, seq <= batch.last else {
      return nil
    }
    let line = batch.line(Int(seq - batch.first))
    return String(decoding: line.prefix(200), as: UTF8.self)
  }
}
