// `tally follow`: a sink of the voted stream (docs/STREAM.md) that keeps the seven
// SPEC §5 files of a folder current. Crash-only: it appends each batch's records to
// its log and fsyncs, then records the new position (log length and seq) by an atomic
// rename; a restart truncates the log to the recorded length, replays it, and asks
// the stream for what follows. The files are rewritten atomically (each file by a
// rename, then `as_of_seq`) whenever it has caught up.
import Foundation
import KernelAPI
import KernelV1
import TallyEngine
import TallyFormat
import ZeroMQTransport

public final class Follower {
  /// Files are written at most this often while batches keep arriving.
  public static let renderEveryMs = 500

  let config: ClusterConfig
  let out: String
  let stateDir: String
  let exitAtSeq: Int64?
  let log: (String) -> Void
  var replay = EffectReplay()
  /// Keeps the row keys of the stream from the seq-0 snapshot on (docs/EFFECTS.md).
  var decoder = EffectDecoder()
  /// The first seq not yet applied.
  public private(set) var next: Int64 = 1
  var logLength = 0
  var logHandle: FileHandle
  var renderedSeq: Int64 = -1

  public init(
    config: ClusterConfig, reference: ReferenceData, out: String, exitAtSeq: Int64?,
    log: @escaping (String) -> Void
  ) throws {
    self.config = config
    self.out = out
    self.exitAtSeq = exitAtSeq
    self.log = log
    stateDir = out + "/.follow"
    try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
    // Seq 0: the state the reference data describes.
    try replay.apply(try decoder.decode(Self.genesisSnapshot(reference)))
    let logPath = stateDir + "/effects.log"
    if !FileManager.default.fileExists(atPath: logPath) {
      _ = FileManager.default.createFile(atPath: logPath, contents: nil)
    }
    var position = (seq: Int64(0), length: 0)
    if let text = try? String(contentsOfFile: stateDir + "/position", encoding: .utf8) {
      let f = text.split(separator: " ")
      if f.count == 2, let s = Int64(f[0]), let l = Int(f[1]) { position = (s, l) }
    }
    guard let handle = FileHandle(forUpdatingAtPath: logPath) else {
      throw FollowError("cannot open \(logPath)")
    }
    logHandle = handle
    // What was appended after the last recorded position is dropped (a crash between the two).
    try handle.truncate(atOffset: UInt64(position.length))
    try handle.seek(toOffset: UInt64(position.length))
    if position.length > 0 {
      let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: logPath)))
      guard bytes.count == position.length else {
        throw FollowError("log is shorter than its recorded position")
      }
      try replay.apply(try decoder.decode(bytes))
      guard replay.seq == position.seq else {
        throw FollowError("log ends at seq \(replay.seq ?? 0), its position says \(position.seq)")
      }
    }
    next = position.seq + 1
    logLength = position.length
    if position.seq > 0 { log("follow: resumed at seq \(position.seq) from \(stateDir)") }
  }

  /// The effects snapshot of the reference data (seq 0), where the voted stream starts:
  /// it carries the key of every reference row the stream's records name by id.
  public static func genesisSnapshot(_ reference: ReferenceData) -> [UInt8] {
    V1Kernel(reference: reference, plantedFault: nil).snapshotEffects()
  }

  /// Applies one batch's records (those of seqs ≥ next, ≤ exitAtSeq), durably.
  func apply(first: Int64, last: Int64, records: [UInt8]) throws {
    guard last >= next else { return }  // a duplicate
    precondition(first <= next, "batch \(first)...\(last) would skip seq \(next)")
    // The events not yet applied, as the stream's own bytes (the log keeps them as
    // sent: their key records name rows for the records after them).
    let through = exitAtSeq ?? Int64.max
    guard through >= next else { return }  // past --exit-at-seq
    let bytes = try EffectDecoder.records(of: records, seqs: next...through)
    guard !bytes.isEmpty else { return }
    let events = try decoder.decode(bytes)
    try replay.apply(events)
    try logHandle.write(contentsOf: Data(bytes))
    try logHandle.synchronize()
    logLength += bytes.count
    next = events.last!.seq + 1
    try writeAtomically(stateDir + "/position", Array("\(next - 1) \(logLength)".utf8))
  }

  func writeAtomically(_ path: String, _ bytes: [UInt8]) throws {
    let tmp = path + ".tmp"
    let url = URL(fileURLWithPath: tmp)
    try Data(bytes).write(to: url)
    let h = try FileHandle(forUpdating: url)
    try h.synchronize()
    try h.close()
    if rename(tmp, path) != 0 { throw FollowError("cannot rename \(tmp) to \(path)") }
  }

  /// Writes the seven files as of the applied seq, then `as_of_seq`.
  func render() throws {
    let seq = next - 1
    guard seq != renderedSeq else { return }
    for f in ReportWriter.render(replay.report()) { try writeAtomically(out + "/" + f.name, f.bytes) }
    try writeAtomically(out + "/as_of_seq", Array("\(seq)\n".utf8))
    renderedSeq = seq
  }

  var done: Bool { exitAtSeq.map { next > $0 } ?? false }

  /// Subscribes and follows until `exitAtSeq` is written (or forever).
  public func run(context: ZMQContext, stop: () -> Bool = { false }) throws {
    let clock = ContinuousClock()
    var lastRender = clock.now
    let tap = StreamTap(config: config) { [log] in log("follow: " + $0) }
    try tap.run(
      context: context, next: { next }, apply: { try apply(first: $0, last: $1, records: $2) },
      finished: { done || stop() },
      idle: { caughtUp in
        if caughtUp && clock.now - lastRender > .milliseconds(Self.renderEveryMs) {
          try render()
          lastRender = clock.now
        }
      })
    if done { try render() }
  }
}

public struct FollowError: Error, CustomStringConvertible, Sendable {
  public var description: String
  public init(_ description: String) { self.description = description }
}
