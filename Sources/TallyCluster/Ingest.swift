// SPEC §7: the ingest protocol, validated without I/O so that it can be tested
// and simulated. The sequencer service wraps this with sockets and the journal.
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
  /// The event lines (blank and comment lines removed), as sent.
  public var eventLines: [[UInt8]]

  public init(client: [UInt8], batchNumber: Int64, eventLines: [[UInt8]]) {
    self.client = client
    self.batchNumber = batchNumber
    self.eventLines = eventLines
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
    var lines: [[UInt8]] = []
    var lineCount = 0
    var start = 0
    var i = 0
    // Lines are separated by \n; a final \n is optional; an empty frame has no lines.
    while start < events.count {
      i = start
      while i < events.count && events[i] != 10 { i += 1 }
      var end = i
      if end > start && events[end - 1] == 13 { end -= 1 }
      lineCount += 1
      guard lineCount <= WireLimits.batchLinesMax else { return .failure(.tooLarge) }
      let line = events[start..<end]
      if !EventParser.isSkipped(line) { lines.append(Array(line)) }
      start = i + 1
    }
    return .success(IngestBatch(client: client, batchNumber: number, eventLines: lines))
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
