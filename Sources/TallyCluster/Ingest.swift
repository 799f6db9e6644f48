// SPEC §7: the ingest protocol, validated without I/O so that it can be tested
// and simulated. The sequencer service wraps this with sockets and the journal.
import KernelAPI
import TallyFormat

public enum IngestRefusal: String, Error, Sendable {
  case badFrames = "BAD_FRAMES"
  case badClient = "BAD_CLIENT"
  case badBatch = "BAD_BATCH"
  case tooLarge = "TOO_LARGE"
}

public struct IngestBatch: Sendable, Equatable {
  public var client: [UInt8]
  public var batchNumber: Int64
  /// The event lines (blank and comment lines removed), as sent, in the form a journal
  /// batch encodes them (`JournalBatch.encode`: each line's length as a little-endian
  /// Int32, then its bytes). Built once from the client's frame, so that the sequencer
  /// journals a batch with one copy, not a copy a line and two of the whole.
  public private(set) var encodedLines: [UInt8]
  /// How many lines `encodedLines` holds.
  public private(set) var lineCount: Int

  public init(client: [UInt8], batchNumber: Int64, eventLines: [[UInt8]]) {
    var w = ByteWriter(capacity: eventLines.reduce(0) { $0 + 4 + $1.count })
    for line in eventLines { JournalBatch.encodeLine(line[...], into: &w) }
    self.init(client: client, batchNumber: batchNumber, encodedLines: w.bytes, lineCount: eventLines.count)
  }

  init(client: [UInt8], batchNumber: Int64, encodedLines: [UInt8], lineCount: Int) {
    self.client = client
    self.batchNumber = batchNumber
    self.encodedLines = encodedLines
    self.lineCount = lineCount
  }

  /// The lines as arrays (copies: tests and the simulator's checks, not the ingest path).
  public var eventLines: [[UInt8]] {
    guard let (ranges, end) = try? JournalBatch.lineRanges(in: encodedLines, from: 0, count: lineCount),
      end == encodedLines.count
    else { preconditionFailure("an ingest batch holds the lines it encoded") }
    return ranges.map { Array(encodedLines[$0]) }
  }
}

public enum Ingest {
  public static let magic = Array("TALLY1".utf8)

  /// Validates one client message (the frames after the ROUTER identity).
  public static func parse(_ frames: [[UInt8]]) -> Result<IngestBatch, IngestRefusal> {
    guard frames.count == 4, frames[0] == magic else { return .failure(.badFrames) }
    let client = frames[1]
    guard !client.isEmpty, client.count <= 64, client.allSatisfy(isClientByte) else {
      return .failure(.badClient)
    }
    guard let number = batchNumber(frames[2]) else { return .failure(.badBatch) }
    let events = frames[3]
    guard events.count <= WireLimits.batchBytesMax else { return .failure(.tooLarge) }
    // At most one line more than the frame has line feeds: room for every length.
    var encoded = ByteWriter(capacity: events.count + 4 * (Fields.lineCount(events) + 1))
    var kept = 0
    var lineCount = 0
    var start = 0
    // Lines are separated by \n; a final \n is optional; an empty frame has no lines.
    while start < events.count {
      let i = Fields.lineFeed(in: events, from: start, to: events.count)
      var end = i
      if end > start && events[end - 1] == 13 { end -= 1 }
      lineCount += 1
      guard lineCount <= WireLimits.batchLinesMax else { return .failure(.tooLarge) }
      let line = events[start..<end]
      if !EventParser.isSkipped(line) {
        JournalBatch.encodeLine(line, into: &encoded)
        kept += 1
      }
      start = i + 1
    }
    return .success(
      IngestBatch(client: client, batchNumber: number, encodedLines: encoded.bytes, lineCount: kept))
  }

  static func isClientByte(_ b: UInt8) -> Bool {
    (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 46 || b == 95 || b == 45
  }

  /// Decimal, no sign, no leading zero, 1...Int64.max.
  public static func batchNumber(_ bytes: [UInt8]) -> Int64? {
    guard let first = bytes.first, first >= 49 && first <= 57, bytes.count <= 19 else { return nil }
    var value: Int64 = 0
    for b in bytes {
      guard b >= 48 && b <= 57 else { return nil }
      let (m, o1) = value.multipliedReportingOverflow(by: 10)
      let (a, o2) = m.addingReportingOverflow(Int64(b - 48))
      if o1 || o2 { return nil }
      value = a
    }
    return value
  }

  public static func ok(batch: [UInt8], first: Int64, last: Int64) -> [[UInt8]] {
    [magic, batch, Array("OK".utf8), Array(String(first).utf8), Array(String(last).utf8)]
  }

  public static func refusal(_ frames: [[UInt8]], _ reason: IngestRefusal) -> [[UInt8]] {
    [magic, frames.count > 2 ? frames[2] : [], Array("ERR".utf8), Array(reason.rawValue.utf8)]
  }
}
