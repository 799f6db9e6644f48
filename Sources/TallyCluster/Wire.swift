// Messages between the cluster's nodes, in the project's one canonical binary
// encoding (KernelAPI's ByteWriter/ByteReader). Every message has a limit and a
// decoder that refuses malformed bytes with a reason instead of crashing.
import KernelAPI
import TallyEngine

public enum WireLimits {
  /// SPEC §7: one client batch.
  public static let batchBytesMax = 16 << 20
  public static let batchLinesMax = 100_000
  /// Frames up to this size reach the sequencer and are answered (TOO_LARGE above
  /// 16 MiB); a larger message makes libzmq drop the connection unanswered.
  public static let ingestMessageBytesMax = 64 << 20
  /// A fetch reply carries at most this many journal batches (and is capped in bytes).
  public static let fetchReplyBytesMax = 64 << 20
  /// Control replies (reports) may be large: the seven files of a big day.
  public static let controlMessageBytesMax: Int64 = 1 << 30
  public static let clientIdBytesMax = 64
}

/// One journal batch: a contiguous seq range and its event lines. The lines are ranges
/// of one buffer: a batch decoded from a fetch reply keeps the reply's frame as that
/// buffer and the replica applies the lines where they lie (one array a line, copied
/// twice more on the way to the engine, was a malloc, a free and their retains and
/// releases per event in every replica).
public struct JournalBatch: Sendable, Equatable {
  public var first: Int64
  public var last: Int64
  /// The bytes holding the lines (a decoded batch: the whole encoded frame).
  public private(set) var storage: [UInt8]
  /// Line `i` is `storage[ranges[i]]` (no line ends).
  public private(set) var ranges: [Range<Int>]

  public init(first: Int64, last: Int64, lines: [[UInt8]]) {
    precondition(last - first + 1 == Int64(lines.count), "journal batch range and lines disagree")
    self.first = first
    self.last = last
    (storage, ranges) = EventLines.joined(lines)
  }

  /// The number of lines (`last - first + 1`).
  public var lineCount: Int { ranges.count }
  /// Line `i`, in place.
  public func line(_ i: Int) -> ArraySlice<UInt8> { storage[ranges[i]] }
  /// The lines as arrays (copies: tests, reports and explanations, not the apply path).
  public var lines: [[UInt8]] { ranges.map { Array(storage[$0]) } }

  public static func == (a: JournalBatch, b: JournalBatch) -> Bool {
    a.first == b.first && a.last == b.last && a.lineCount == b.lineCount
      && a.ranges.indices.allSatisfy { a.line($0) == b.line($0) }
  }

  public func encode(into w: inout ByteWriter) {
    w.i64(first)
    w.i64(last)
    for r in ranges { Self.encodeLine(storage[r], into: &w) }
  }

  /// One line as a batch encodes it: its length (little-endian Int32), then its bytes.
  /// The ingest writes a client's lines this way straight from its frame
  /// (`IngestBatch.encodedLines`).
  static func encodeLine(_ line: ArraySlice<UInt8>, into w: inout ByteWriter) {
    w.i32(Int32(line.count))
    w.raw(line)
  }

  public var encoded: [UInt8] {
    var w = ByteWriter(capacity: 16 + storage.count + 4 * ranges.count)
    encode(into: &w)
    return w.bytes
  }

  /// The last seq an encoded batch covers, from its header (first, last: i64 LE),
  /// without decoding its lines; nil when the bytes are shorter than the header.
  public static func lastSeq(ofEncoded bytes: UnsafeRawBufferPointer) -> Int64? {
    guard bytes.count >= 16 else { return nil }
    return Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: Int64.self))
  }

  /// The encoding of the batch `first...last` whose lines are already encoded as
  /// `encode` writes them (`IngestBatch.encodedLines`): one copy.
  public static func encoded(first: Int64, last: Int64, encodedLines: [UInt8]) -> [UInt8] {
    var w = ByteWriter(capacity: 16 + encodedLines.count)
    w.i64(first)
    w.i64(last)
    w.raw(encodedLines[...])
    return w.bytes
  }

  /// Decodes one batch from `r` (the lines copied into one buffer).
  public init(decoding r: inout ByteReader) throws(DecodeError) {
    first = try r.i64()
    last = try r.i64()
    try Self.checkRange(first, last)
    storage = []
    ranges = []
    ranges.reserveCapacity(Int(last - first + 1))
    for _ in first...last {
      let n = try Self.lineLength(try r.i32())
      let start = storage.count
      try r.append(n, to: &storage)
      ranges.append(start..<storage.count)
    }
  }

  /// Decodes a batch that is the whole of `frame` (a fetch reply's frame): the lines stay
  /// in the frame. Trailing bytes are refused.
  public init(frame: [UInt8]) throws(DecodeError) {
    var r = ByteReader(frame)
    first = try r.i64()
    last = try r.i64()
    try Self.checkRange(first, last)
    let (ranges, end) = try Self.lineRanges(in: frame, from: 16, count: Int(last - first + 1))
    guard end == frame.count else {
      throw DecodeError(description: "journal batch has \(frame.count - end) bytes after its last line")
    }
    storage = frame
    self.ranges = ranges
  }

  /// The ranges of `count` encoded lines (`encodeLine`) in `bytes` from `start`, and
  /// where the last one ends.
  static func lineRanges(in bytes: [UInt8], from start: Int, count: Int) throws(DecodeError) -> (
    [Range<Int>], end: Int
  ) {
    var ranges: [Range<Int>] = []
    ranges.reserveCapacity(count)
    var at = start
    for _ in 0..<count {
      guard at + 4 <= bytes.count else {
        throw DecodeError(description: "journal batch truncated at byte \(at) (a line length)")
      }
      let n = try Self.lineLength(
        Int32(
          bitPattern: UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16
            | UInt32(bytes[at + 3]) << 24))
      at += 4
      guard at + n <= bytes.count else {
        throw DecodeError(
          description: "journal batch truncated at byte \(at) (needs \(n) of \(bytes.count - at))")
      }
      ranges.append(at..<(at + n))
      at += n
    }
    return (ranges, at)
  }

  static func checkRange(_ first: Int64, _ last: Int64) throws(DecodeError) {
    guard first >= 1, last >= first, last - first < Int64(WireLimits.batchLinesMax) else {
      throw DecodeError(description: "bad journal batch range \(first)...\(last)")
    }
  }

  static func lineLength(_ n: Int32) throws(DecodeError) -> Int {
    guard n >= 0 && n <= WireLimits.batchBytesMax else {
      throw DecodeError(description: "bad line length \(n)")
    }
    return Int(n)
  }
}

/// What a replica reports to the voter for one journal batch.
public struct Vote: Sendable, Equatable {
  public var replica: String
  public var kernel: String
  public var first: Int64
  public var last: Int64
  /// One byte per event: 0 applied, else RejectReason.rawValue + 1.
  public var outcomes: [UInt8]
  /// The 128-bit digest (`EffectDigest`, docs/EFFECTS.md) of the batch's effect
  /// records: every event's header (seq, outcome) and every row it created or changed.
  /// The records themselves travel only on the voted stream.
  public var outputDigest: [UInt8]
  public var stateDigest: [UInt8]

  public init(
    replica: String, kernel: String, first: Int64, last: Int64, outcomes: [UInt8], effectsDigest: [UInt8],
    stateDigest: [UInt8]
  ) {
    precondition(effectsDigest.count == EffectDigest.byteCount, "an effects digest has 16 bytes")
    self.replica = replica
    self.kernel = kernel
    self.first = first
    self.last = last
    self.outcomes = outcomes
    self.outputDigest = effectsDigest
    self.stateDigest = stateDigest
  }

  /// What the voter compares: outputs, and at checkpoints the state too (a vote
  /// between checkpoints has an empty state digest; all replicas agree on where
  /// checkpoints are, since they are placed by seq).
  public var key: [UInt8] { outputDigest + stateDigest }

  public var encoded: [UInt8] {
    var w = ByteWriter(capacity: 128 + outcomes.count)
    w.string(replica)
    w.string(kernel)
    w.i64(first)
    w.i64(last)
    w.i32(Int32(outcomes.count))
    w.raw(outcomes)
    w.raw(outputDigest)
    w.i32(Int32(stateDigest.count))
    w.raw(stateDigest)
    return w.bytes
  }

  public init(decoding bytes: [UInt8]) throws(DecodeError) {
    var r = ByteReader(bytes)
    replica = try r.string()
    kernel = try r.string()
    first = try r.i64()
    last = try r.i64()
    let n = Int(try r.i32())
    guard first >= 1, last >= first, Int64(n) == last - first + 1 else {
      throw DecodeError(description: "vote range \(first)...\(last) does not match \(n) outcomes")
    }
    outcomes = try r.bytes(n)
    outputDigest = try r.bytes(EffectDigest.byteCount)
    let stateDigestCount = Int(try r.i32())
    guard stateDigestCount == 0 || stateDigestCount == 32 else {
      throw DecodeError(description: "vote's state digest has \(stateDigestCount) bytes")
    }
    stateDigest = try r.bytes(stateDigestCount)
    guard r.isAtEnd else { throw DecodeError(description: "vote has trailing bytes") }
  }
}

/// A replica's heartbeat.
public struct Heartbeat: Sendable, Equatable {
  public var replica: String
  public var kernel: String
  public var appliedSeq: Int64
  public var stateDigest: [UInt8]

  public var encoded: [UInt8] {
    var w = ByteWriter()
    w.string(replica)
    w.string(kernel)
    w.i64(appliedSeq)
    w.raw(stateDigest)
    return w.bytes
  }

  public init(replica: String, kernel: String, appliedSeq: Int64, stateDigest: [UInt8]) {
    self.replica = replica
    self.kernel = kernel
    self.appliedSeq = appliedSeq
    self.stateDigest = stateDigest
  }

  public init(decoding bytes: [UInt8]) throws(DecodeError) {
    var r = ByteReader(bytes)
    replica = try r.string()
    kernel = try r.string()
    appliedSeq = try r.i64()
    stateDigest = try r.bytes(32)
    guard r.isAtEnd else { throw DecodeError(description: "heartbeat has trailing bytes") }
  }
}

/// The seven output files as one message (reports), with their digest.
public enum FileBundle {
  public static func encode(_ files: [(name: String, bytes: [UInt8])]) -> [UInt8] {
    var w = ByteWriter(capacity: files.reduce(8) { $0 + $1.bytes.count + $1.name.utf8.count + 8 })
    w.i32(Int32(files.count))
    for f in files {
      w.string(f.name)
      w.i32(Int32(f.bytes.count))
      w.raw(f.bytes)
    }
    return w.bytes
  }

  public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> [(name: String, bytes: [UInt8])] {
    var r = ByteReader(bytes)
    let n = Int(try r.i32())
    guard n >= 0 && n <= 64 else { throw DecodeError(description: "bad file count \(n)") }
    var files: [(String, [UInt8])] = []
    for _ in 0..<n {
      let name = try r.string()
      guard !name.contains("/"), !name.hasPrefix(".") else {
        throw DecodeError(description: "bad file name \(name)")
      }
      let size = Int(try r.i32())
      guard size >= 0 else { throw DecodeError(description: "bad file size") }
      files.append((name, try r.bytes(size)))
    }
    return files
  }
}

extension Int64 {
  var leBytes: [UInt8] {
    var w = ByteWriter(capacity: 8)
    w.i64(self)
    return w.bytes
  }

  init?(leBytes: [UInt8]) {
    guard leBytes.count == 8 else { return nil }
    var r = ByteReader(leBytes)
    guard let v = try? r.i64() else { return nil }
    self = v
  }
}

/// Frames as text, for simple control verbs.
extension Array where Element == UInt8 {
  public var text: String { String(decoding: self, as: UTF8.self) }
}

extension String {
  public var bytes: [UInt8] { Array(utf8) }
}
