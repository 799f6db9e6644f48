// Client side of the cluster: submitting event files (SPEC §7) with safe retries,
// asking nodes for status, and assembling a report from voted data only.
import Foundation
import KernelAPI
import TallyEngine
import TallyFormat
import ZeroMQTransport

public struct ClusterClientError: Error, CustomStringConvertible, Sendable {
  public var description: String
  public init(_ description: String) { self.description = description }
}

public enum ControlClient {
  /// One request to a node's control endpoint; nil when it does not answer in time.
  public static func request(
    context: ZMQContext, endpoint: String, _ frames: [[UInt8]], timeoutMs: Int32 = 1_000,
    curve: CurveKeys? = nil
  ) throws -> [[UInt8]]? {
    let s = try ZMQSocket(context: context, type: .dealer)
    defer { s.close() }
    try Secure.client(s, curve)
    try s.setMaxMessageBytes(WireLimits.controlMessageBytesMax)
    try s.connect(endpoint)
    try s.send(frames)
    return try s.receive(timeoutMs: timeoutMs)
  }

  public static func status(
    context: ZMQContext, endpoint: String, timeoutMs: Int32 = 1_000, curve: CurveKeys? = nil
  )
    -> String?
  {
    guard
      let reply = try? request(
        context: context, endpoint: endpoint, ["STATUS".bytes], timeoutMs: timeoutMs, curve: curve),
      let first = reply.first
    else { return nil }
    return first.text
  }

  /// A node's typed status (`SequencerStatus`, `ReplicaStatus`, `VoterStatus`); nil
  /// when it does not answer in time or answers something else.
  public static func status<S: Decodable>(
    _ type: S.Type, context: ZMQContext, endpoint: String, timeoutMs: Int32 = 1_000, curve: CurveKeys? = nil
  ) -> S? {
    status(context: context, endpoint: endpoint, timeoutMs: timeoutMs, curve: curve).flatMap {
      NodeStatus.decode(type, from: $0)
    }
  }

  /// Reads an integer field from a flat JSON line of our own writer (alerts.jsonl);
  /// node status is decoded, never read this way.
  public static func field(_ json: String, _ name: String) -> Int64? {
    guard let r = json.range(of: "\"\(name)\":") else { return nil }
    let digits = json[r.upperBound...].prefix { $0 == "-" || $0.isNumber }
    return Int64(digits)
  }
}

public struct SubmitResult: Sendable {
  public var batches = 0
  /// Events journaled by this submit (not counting batches already journaled before).
  public var events: Int64 = 0
  /// Events in every acked batch, new or a retry.
  public var ackedEvents: Int64 = 0
  public var firstSeq: Int64 = 0
  public var lastSeq: Int64 = 0
}

public enum Submitter {
  public static let batchLinesDefault = 10_000
  /// One batch in flight: a batch is journaled only after the one before it, so
  /// the journal keeps each file's order even when a retry follows a sequencer
  /// crash (SPEC §7 lets a new batch number through whatever came before it).
  public static let windowBatches = 1
  /// The most batches a caller may keep in flight (`window`): a client that knows no
  /// retry will follow (the cluster bench on a fresh cluster) keeps several, as the
  /// independent client (scripts/cluster-client.py) does, so that the sequencer's
  /// journal write of one overlaps the transfer of the next.
  public static let windowBatchesMax = 64
  public static let ackTimeoutMs = 5_000
  public static let attemptsMax = 20

  /// A client id derived from the files' contents: submitting the same files again
  /// is recognised as a retry and journals nothing twice.
  public static func contentClientId(_ files: [[UInt8]]) -> String {
    var sha = SHA256Stream()
    for f in files {
      var w = ByteWriter()
      w.i64(Int64(f.count))
      sha.update(w.bytes)
      sha.update(f)
    }
    return "submit-" + String(sha.finalize().hexString.prefix(24))
  }

  /// Splits files into batches of whole lines; files never share a batch.
  public static func batches(_ files: [[UInt8]], linesMax: Int) -> [[UInt8]] {
    batchRanges(files, linesMax: linesMax).map { Array(files[$0.file][$0.bytes]) }
  }

  /// Where `batches` splits: each batch's file and byte range, in order.
  public static func batchRanges(_ files: [[UInt8]], linesMax: Int) -> [(file: Int, bytes: Range<Int>)] {
    var out: [(file: Int, bytes: Range<Int>)] = []
    for (f, bytes) in files.enumerated() {
      var lines = 0
      var i = 0
      var batchStart = 0
      while i < bytes.count {
        if bytes[i] == 10 {
          lines += 1
          if lines == linesMax || i + 1 - batchStart >= WireLimits.batchBytesMax - 65_536 {
            out.append((f, batchStart..<(i + 1)))
            batchStart = i + 1
            lines = 0
          }
        }
        i += 1
      }
      if batchStart < bytes.count { out.append((f, batchStart..<bytes.count)) }
    }
    return out
  }

  public static func submit(
    context: ZMQContext, ingest: String, files: [[UInt8]], clientId: String,
    linesMax: Int = batchLinesDefault, window: Int = windowBatches,
    curve: CurveKeys? = nil, journalEndBefore: Int64 = 0, progress: (String) -> Void = { _ in }
  ) throws -> SubmitResult {
    precondition(
      window >= 1 && window <= windowBatchesMax, "submit: window of \(window) batches out of range")
    // A batch's bytes are copied out of its file when sent (and again on a retry), not
    // all up front: a day's file is then not held twice, and each copy reuses the memory
    // the last one freed.
    let split = batchRanges(files, linesMax: linesMax)
    let socket = try ZMQSocket(context: context, type: .dealer)
    defer { socket.close() }
    try Secure.client(socket, curve)
    try socket.connect(ingest)
    var result = SubmitResult()
    var next = 0
    var inFlight: [Int: (sentAt: ContinuousClock.Instant, attempts: Int)] = [:]
    let clock = ContinuousClock()
    var acked = 0
    func send(_ i: Int) throws {
      let frame = Array(files[split[i].file][split[i].bytes])
      try socket.send([Ingest.magic, clientId.bytes, String(i + 1).bytes, frame])
      inFlight[i] = (clock.now, (inFlight[i]?.attempts ?? 0) + 1)
    }
    while acked < split.count {
      while next < split.count && inFlight.count < window {
        try send(next)
        next += 1
      }
      if let reply = try socket.receive(timeoutMs: 200) {
        guard reply.count >= 3, reply[0] == Ingest.magic, let n = Ingest.batchNumber(reply[1]) else {
          throw ClusterClientError("the sequencer answered with a malformed message")
        }
        let i = Int(n - 1)
        if reply[2].text == "ERR" {
          throw ClusterClientError("batch \(n) refused: \(reply.count > 3 ? reply[3].text : "?")")
        }
        guard reply.count == 5, inFlight[i] != nil, let first = Int64(reply[3].text),
          let last = Int64(reply[4].text)
        else { continue }  // a duplicate answer to a retry
        inFlight[i] = nil
        acked += 1
        result.batches += 1
        result.ackedEvents += first > 0 ? last - first + 1 : 0
        // A retry's answer repeats its original range: only ranges past the journal's
        // end before this submit are new.
        if first > journalEndBefore {
          result.events += last - first + 1
          if result.firstSeq == 0 { result.firstSeq = first }
          result.lastSeq = max(result.lastSeq, last)
        }
        if acked % 50 == 0 { progress("\(acked)/\(split.count) batches acked, last seq \(result.lastSeq)") }
      }
      for i in inFlight.keys.sorted() where clock.now - inFlight[i]!.sentAt > .milliseconds(ackTimeoutMs) {
        let f = inFlight[i]!
        guard f.attempts < attemptsMax else {
          throw ClusterClientError(
            "batch \(i + 1) not acknowledged after \(attemptsMax) attempts; is the sequencer up?")
        }
        progress("batch \(i + 1) not acknowledged yet; sending it again (a retry is never journaled twice)")
        try send(i)
      }
    }
    return result
  }
}

public enum Reporter {
  /// Waits until the voter has decided every journaled event, then collects the
  /// seven files from replicas whose state digest equals the voted one, and
  /// returns them when a quorum of those replicas produced identical bytes.
  public static func report(
    context: ZMQContext, config: ClusterConfig, timeoutSeconds: Int = 300,
    progress: (String) -> Void = { _ in }
  ) throws -> [(name: String, bytes: [UInt8])] {
    let clock = ContinuousClock()
    let deadline = clock.now + .seconds(timeoutSeconds)
    let curve = config.curve
    guard
      let lastSeq = ControlClient.status(
        SequencerStatus.self, context: context, endpoint: config.sequencerControl, curve: curve)?.lastSeq
    else { throw ClusterClientError("the sequencer does not answer at \(config.sequencerControl)") }
    var reported = Int64(-1)
    while true {
      guard clock.now < deadline else {
        throw ClusterClientError("timed out waiting for the voter to reach seq \(lastSeq)")
      }
      if let w = ControlClient.status(
        VoterStatus.self, context: context, endpoint: config.voterControl, curve: curve)?.watermark
      {
        if w > lastSeq { break }
        if w != reported {
          progress("voter has decided through seq \(w - 1) of \(lastSeq)")
          reported = w
        }
      }
      Thread.sleep(forTimeInterval: 0.1)
    }
    // The voted state digest at the last seq, when that batch ended on a checkpoint;
    // otherwise the quorum below also requires equal state digests.
    var voted: [UInt8]? = nil
    if lastSeq > 0 {
      guard
        let reply = try ControlClient.request(
          context: context, endpoint: config.voterControl, ["DECIDED".bytes, lastSeq.leBytes], curve: curve),
        reply.count == 2, reply[0].text == "YES"
      else { throw ClusterClientError("the voter has no decided batch ending at seq \(lastSeq)") }
      voted = reply[1].isEmpty ? nil : reply[1]
    }
    while clock.now < deadline {
      var groups: [(digest: [UInt8], files: [(name: String, bytes: [UInt8])], count: Int)] = []
      for i in config.replicas.indices {
        // A replica that is down must not cost the report a long timeout.
        guard
          let pong = try ControlClient.request(
            context: context, endpoint: config.replicaControl(i), ["PING".bytes], timeoutMs: 1_000,
            curve: curve),
          pong.first?.text == "PONG"
        else { continue }
        guard
          let reply = try ControlClient.request(
            context: context, endpoint: config.replicaControl(i), ["REPORT".bytes, lastSeq.leBytes],
            timeoutMs: 30_000,
            curve: curve),
          reply.count == 4, reply[0].text == "REPORT"
        else { continue }
        if let voted, reply[2] != voted { continue }  // not the voted state: not used
        let digest = Digests.sha256(reply[2] + reply[3])
        if let g = groups.firstIndex(where: { $0.digest == digest }) {
          groups[g].count += 1
        } else {
          groups.append((digest, try FileBundle.decode(reply[3]), 1))
        }
      }
      if let winner = groups.first(where: { $0.count >= config.quorum }) { return winner.files }
      progress("waiting for a quorum of replicas at seq \(lastSeq) with the voted state")
      Thread.sleep(forTimeInterval: 0.5)
    }
    throw ClusterClientError("no quorum of replicas produced the report at seq \(lastSeq)")
  }
}
