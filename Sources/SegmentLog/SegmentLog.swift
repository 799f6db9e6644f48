// An append-only log of entries in segment files, written once with direct I/O.
//
// Why not RocksDB: the voter's stream records (hundreds of bytes an event, written once,
// read back only for replays, dropped oldest first) went through RocksDB's WAL, its
// memtable flush and its compaction: three copies of every byte into fresh page-cache
// pages, which perf showed as the single largest cost of the whole cluster
// (docs/PERFORMANCE.md, eighth session). Here each entry is written once, from one
// reused, block-aligned buffer straight to the device (O_DIRECT, no page-cache copy),
// and made durable with one fdatasync per `sync()`. This is Kafka's log layout: segment
// files named by the first sequence number they hold, retention by whole segments.
//
// On disk, each entry starts on a 4 KiB block: a 40-byte header (magic, payload length,
// the entry's first and last sequence numbers, a checksum of the payload), the payload,
// zeros to the next block. Opening walks the headers; the newest segment's entries are
// also checked against their checksums and its torn tail (a crash inside a write that
// was never synced, so never acknowledged) is cut off. A bad header in an older
// segment is corruption, reported with the file and offset.
//
// The unsafe code (the aligned buffer, pread/pwrite) stays inside this type.
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Linux's O_DIRECT, which Glibc's Swift module does not export (it is behind
/// _GNU_SOURCE); its value differs by architecture. 0 where unknown: buffered writes.
#if arch(x86_64) || arch(i386)
  let openDirect: Int32 = 0o40000
#elseif arch(arm64) || arch(arm)
  let openDirect: Int32 = 0o200000
#else
  let openDirect: Int32 = 0
#endif

public struct SegmentLogError: Error, CustomStringConvertible {
  public let description: String
  init(_ description: String) { self.description = description }
}

public final class SegmentLog {
  /// Entries start on this boundary (the direct-I/O alignment of every Linux block device).
  public static let blockBytes = 4_096
  /// Bytes a segment grows to before the next entry opens a new one.
  public static let segmentBytesDefault = 64 << 20
  /// The largest payload of one entry.
  public static let entryBytesMax = 256 << 20
  static let headerBytes = 40
  static let magic: UInt32 = 0x3147_5354  // "TSG1", little-endian

  public struct Entry: Equatable, Sendable {
    public let first: Int64
    public let last: Int64
    /// Payload bytes (the header and padding are not counted).
    public let length: Int
    let segment: Int64
    let offset: Int
    /// The payload's checksum, from its header (checked again by `read`).
    let sum: UInt64
  }

  struct Segment {
    /// The first sequence number the segment was opened for: its file name.
    let id: Int64
    /// Bytes written (synced once `unsynced` is false), always a multiple of `blockBytes`.
    var end: Int
    /// A read-only descriptor for replays, opened at the first read.
    var reader: Int32 = -1
  }

  public let directory: String
  public let segmentBytes: Int
  /// Whether writes bypass the page cache (false where the file system refuses O_DIRECT).
  public private(set) var direct = true
  /// Every entry on disk and staged, oldest first.
  public private(set) var entries: [Entry] = []
  /// Bytes the segments take on disk, including what is staged.
  public private(set) var totalBytes = 0
  /// What the open cut off the newest segment's end (a torn tail), for the owner to
  /// report; nil when nothing was cut.
  public private(set) var cutTail: String? = nil
  var segments: [Segment] = []
  var writer: Int32 = -1
  /// Staged entries, not yet written: block-aligned, reused across syncs so that its
  /// pages are faulted in once.
  var buffer: UnsafeMutableRawPointer
  var capacity: Int
  var staged = 0
  /// True when staged entries were written to the newest segment (to keep the buffer
  /// small) and not yet synced: the next `sync` syncs even with nothing staged.
  var unsynced = false
  /// The staging buffer grows past this only for one entry larger than it: entries
  /// beyond it are written out (not synced) first. A writer that syncs many entries at
  /// once (the voter's stream: up to 32 batches of megabytes) otherwise grew the buffer
  /// by doubling, each step fresh pages and a copy (perf of the voter: ~10% of its
  /// samples), and copied every entry through memory that no cache holds.
  public static let stagedBytesMax = 8 << 20
  /// Read descriptors open at once, at most: a reader opened for a replay stays open for
  /// the next reads of its segment, and the one opened longest ago is closed when
  /// another segment needs one. (A log kept for good, the sequencer's journal, is read
  /// from its first segment when a replica rebuilds: one descriptor a segment would run
  /// out of the process's descriptors after ~1,000 segments, ~64 GB.)
  public static let readersOpenMax = 8
  /// Segment ids with an open reader, the one opened longest ago first.
  var readerOrder: [Int64] = []
  /// Read descriptors open now (at most `readersOpenMax`).
  public var openReaderCount: Int { readerOrder.count }

  /// Which payloads of the newest segment the open checks against their checksums (the
  /// headers are always checked): all of them (a writer that syncs several entries at a
  /// time may leave any of them torn), or only the last one (a writer that syncs each
  /// entry as it appends it leaves at most that one torn; `read` checks every payload
  /// anyway, so the open need not read the whole segment).
  public enum OpenCheck: Sendable { case newestSegment, lastEntry }

  public init(
    directory: String, segmentBytes: Int = SegmentLog.segmentBytesDefault, check: OpenCheck = .newestSegment
  ) throws {
    precondition(
      segmentBytes >= Self.blockBytes && segmentBytes % Self.blockBytes == 0,
      "segment log: segment size must be a positive multiple of \(Self.blockBytes)")
    self.directory = directory
    self.segmentBytes = segmentBytes
    capacity = 4 << 20
    buffer = Self.allocate(capacity)
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let names = try FileManager.default.contentsOfDirectory(atPath: directory)
      .filter { $0.hasSuffix(".seg") }.sorted()
    for (i, name) in names.enumerated() {
      guard let id = Int64(name.dropLast(4)), name.count == 24 else {
        throw SegmentLogError("\(directory)/\(name): not a segment file name (20 digits and .seg)")
      }
      try recover(id: id, newest: i == names.count - 1, check: check)
    }
    if let newest = segments.last { try openWriter(newest.id, creating: false) }
  }

  deinit {
    if writer >= 0 { close(writer) }
    for s in segments where s.reader >= 0 { close(s.reader) }
    free(buffer)
  }

  static func allocate(_ bytes: Int) -> UnsafeMutableRawPointer {
    var p: UnsafeMutableRawPointer? = nil
    precondition(posix_memalign(&p, blockBytes, bytes) == 0 && p != nil, "segment log: out of memory")
    return p!
  }

  func path(_ id: Int64) -> String {
    let digits = String(id)
    return directory + "/" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".seg"
  }

  /// Reads a segment's headers into `entries`. The newest segment's payloads are
  /// checked and a torn tail is cut off; anything wrong in an older one is corruption.
  func recover(id: Int64, newest: Bool, check: OpenCheck) throws {
    let file = path(id)
    let fd = open(file, O_RDWR | O_CLOEXEC)
    guard fd >= 0 else { throw SegmentLogError("\(file): cannot open (errno \(errno))") }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw SegmentLogError("\(file): cannot stat (errno \(errno))") }
    let size = Int(st.st_size)
    var offset = 0
    var header = [UInt8](repeating: 0, count: Self.headerBytes)
    var payload: [UInt8] = []
    var previousLast = entries.last?.last
    var tornBecause = "a partial header"
    while offset + Self.headerBytes <= size {
      let n = header.withUnsafeMutableBytes { pread(fd, $0.baseAddress, Self.headerBytes, off_t(offset)) }
      guard n == Self.headerBytes else { throw SegmentLogError("\(file): read failed at offset \(offset)") }
      let magic = Self.u32(header, 0)
      // A torn header's length can be any 64 bits: anything over the limit is torn, and
      // is not converted (a length over Int.max trapped the open).
      let rawLength = Self.u64(header, 8)
      let length = rawLength > UInt64(Self.entryBytesMax) ? Self.entryBytesMax + 1 : Int(rawLength)
      let first = Int64(bitPattern: Self.u64(header, 16))
      let last = Int64(bitPattern: Self.u64(header, 24))
      let sum = Self.u64(header, 32)
      var problem: String? = nil
      if magic != Self.magic {
        problem = magic == 0 ? "no entry" : "bad magic"
      } else if length > Self.entryBytesMax || offset + Self.headerBytes + length > size {
        problem = "entry length \(rawLength) runs past the file (\(size) bytes)"
      } else if last < first || (previousLast.map { first != $0 + 1 } ?? false) {
        problem = "entry \(first)...\(last) does not follow \(previousLast.map(String.init) ?? "-")"
      } else if newest && check == .newestSegment {
        if !payloadMatches(fd, offset: offset, length: length, sum: sum, &payload) {
          problem = "checksum mismatch"
        }
      }
      if let problem {
        guard newest else {
          throw SegmentLogError("\(file): corrupt at offset \(offset): \(problem)")
        }
        tornBecause = problem
        break  // a torn tail: written but never synced, so never acknowledged
      }
      entries.append(Entry(first: first, last: last, length: length, segment: id, offset: offset, sum: sum))
      previousLast = last
      offset += Self.blockAligned(Self.headerBytes + length)
    }
    if newest && check == .lastEntry, let last = entries.last, last.segment == id,
      !payloadMatches(fd, offset: last.offset, length: last.length, sum: last.sum, &payload)
    {
      entries.removeLast()
      offset = last.offset
      tornBecause = "checksum mismatch"
    }
    if offset != size {
      guard newest else { throw SegmentLogError("\(file): corrupt at offset \(offset): trailing bytes") }
      guard ftruncate(fd, off_t(offset)) == 0, fdatasync(fd) == 0 else {
        throw SegmentLogError("\(file): cannot cut the torn tail at \(offset) (errno \(errno))")
      }
      cutTail = "\(file): \(size - offset) bytes cut at offset \(offset) (\(tornBecause))"
    }
    segments.append(Segment(id: id, end: offset))
    totalBytes += offset
  }

  /// Whether the payload at `offset` (an entry's header's) reads whole and matches `sum`.
  private func payloadMatches(_ fd: Int32, offset: Int, length: Int, sum: UInt64, _ payload: inout [UInt8])
    -> Bool
  {
    if payload.count < length { payload = [UInt8](repeating: 0, count: length) }
    let got = payload.withUnsafeMutableBytes {
      pread(fd, $0.baseAddress, length, off_t(offset + Self.headerBytes))
    }
    let actual = payload.withUnsafeBytes { Self.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<length])) }
    return got == length && actual == sum
  }

  func openWriter(_ id: Int64, creating: Bool) throws {
    if writer >= 0 { close(writer) }
    let file = path(id)
    let flags = O_WRONLY | O_CLOEXEC | (creating ? O_CREAT | O_EXCL : 0)
    if openDirect == 0 { direct = false }
    var fd = direct ? open(file, flags | openDirect, 0o644) : -1
    if fd < 0 && direct && errno == EINVAL {
      direct = false  // e.g. tmpfs: buffered writes, still synced
    }
    if fd < 0 { fd = open(file, flags, 0o644) }
    guard fd >= 0 else { throw SegmentLogError("\(file): cannot open for writing (errno \(errno))") }
    writer = fd
    if creating {
      // The new file's name must be durable before anything in it is relied on.
      let dir = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
      guard dir >= 0 else { throw SegmentLogError("\(directory): cannot open (errno \(errno))") }
      defer { close(dir) }
      guard fsync(dir) == 0 else { throw SegmentLogError("\(directory): fsync failed (errno \(errno))") }
    }
  }

  static func blockAligned(_ n: Int) -> Int { (n + blockBytes - 1) / blockBytes * blockBytes }

  /// Stages one entry (its payload is `parts` joined); `sync()` makes it durable.
  /// Entries must continue the sequence: `first` is the previous entry's `last + 1`.
  public func append(first: Int64, last: Int64, parts: [[UInt8]]) throws {
    try withRawParts(parts) { try append(first: first, last: last, rawParts: $0) }
  }

  /// `append(first:last:parts:)` with the parts as raw bytes where they lie (a put of a
  /// store batch, a slice of a larger buffer): copied once, into the staging buffer.
  public func append(first: Int64, last: Int64, rawParts parts: [UnsafeRawBufferPointer]) throws {
    let length = parts.reduce(0) { $0 + $1.count }
    precondition(length <= Self.entryBytesMax, "segment log: entry of \(length) bytes over the limit")
    precondition(last >= first, "segment log: entry \(first)...\(last) is empty")
    if let previous = entries.last {
      precondition(first == previous.last + 1, "segment log: entry \(first) does not follow \(previous.last)")
    }
    let size = Self.blockAligned(Self.headerBytes + length)
    // A full segment (or none yet) starts a new one, named by this entry's first seq.
    let current = segments.last.map { $0.end + staged } ?? 0
    if segments.isEmpty || (current > 0 && current + size > segmentBytes) {
      try sync()
      segments.append(Segment(id: first, end: 0))
      try openWriter(first, creating: true)
    }
    if staged > 0 && staged + size > Self.stagedBytesMax {
      try writeStaged()
    }
    if staged + size > capacity {
      let grown = Self.blockAligned(max(capacity * 2, staged + size))
      let bigger = Self.allocate(grown)
      bigger.copyMemory(from: buffer, byteCount: staged)
      free(buffer)
      buffer = bigger
      capacity = grown
    }
    let at = buffer + staged
    var cursor = at + Self.headerBytes
    for part in parts where part.count > 0 {
      cursor.copyMemory(from: part.baseAddress!, byteCount: part.count)
      cursor += part.count
    }
    let sum = Self.checksum(UnsafeRawBufferPointer(start: at + Self.headerBytes, count: length))
    at.storeBytes(of: Self.magic.littleEndian, as: UInt32.self)
    (at + 4).storeBytes(of: UInt32(0), as: UInt32.self)
    (at + 8).storeBytes(of: UInt64(length).littleEndian, toByteOffset: 0, as: UInt64.self)
    (at + 16).storeBytes(of: UInt64(bitPattern: first).littleEndian, as: UInt64.self)
    (at + 24).storeBytes(of: UInt64(bitPattern: last).littleEndian, as: UInt64.self)
    (at + 32).storeBytes(of: sum.littleEndian, as: UInt64.self)
    (at + Self.headerBytes + length).initializeMemory(
      as: UInt8.self, repeating: 0, count: size - Self.headerBytes - length)
    let segment = segments[segments.count - 1]
    entries.append(
      Entry(
        first: first, last: last, length: length, segment: segment.id, offset: segment.end + staged, sum: sum)
    )
    staged += size
    totalBytes += size
  }

  /// Writes the staged entries to the newest segment and syncs it (with `durably`
  /// false it only writes them: a run told not to sync).
  public func sync(durably: Bool = true) throws {
    guard staged > 0 || unsynced else { return }
    try writeStaged()
    let i = segments.count - 1
    guard durably else { return }  // written, still unsynced: a later durable sync syncs it
    guard fdatasync(writer) == 0 else {
      throw SegmentLogError("\(path(segments[i].id)): fdatasync failed (errno \(errno))")
    }
    unsynced = false
  }

  /// Writes the staged entries to the newest segment, not synced (`sync` syncs them).
  func writeStaged() throws {
    guard staged > 0 else { return }
    let i = segments.count - 1
    var done = 0
    while done < staged {
      let n = pwrite(writer, buffer + done, staged - done, off_t(segments[i].end + done))
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else { throw SegmentLogError("\(path(segments[i].id)): write failed (errno \(errno))") }
      done += n
    }
    segments[i].end += staged
    staged = 0
    unsynced = true
  }

  /// The payload of `entries[index]` (a synced entry), checked against its checksum
  /// (an older segment's payloads are not read at open).
  public func read(_ index: Int) throws -> [UInt8] {
    let e = entries[index]
    guard let s = segments.firstIndex(where: { $0.id == e.segment }) else {
      throw SegmentLogError("segment log: entry \(e.first) has no segment")
    }
    precondition(
      e.offset + Self.headerBytes + e.length <= segments[s].end, "segment log: reading an unsynced entry")
    if segments[s].reader < 0 {
      if readerOrder.count >= Self.readersOpenMax {
        let oldest = readerOrder.removeFirst()
        if let o = segments.firstIndex(where: { $0.id == oldest }), segments[o].reader >= 0 {
          close(segments[o].reader)
          segments[o].reader = -1
        }
      }
      segments[s].reader = open(path(e.segment), O_RDONLY | O_CLOEXEC)
      guard segments[s].reader >= 0 else {
        throw SegmentLogError("\(path(e.segment)): cannot open (errno \(errno))")
      }
      readerOrder.append(e.segment)
      precondition(readerOrder.count <= Self.readersOpenMax, "segment log: too many open readers")
    }
    var bytes = [UInt8](repeating: 0, count: e.length)
    let fd = segments[s].reader
    var done = 0
    while done < e.length {
      let n = bytes.withUnsafeMutableBytes {
        pread(fd, $0.baseAddress! + done, e.length - done, off_t(e.offset + Self.headerBytes + done))
      }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else {
        throw SegmentLogError("\(path(e.segment)): read failed at \(e.offset) (errno \(errno))")
      }
      done += n
    }
    guard bytes.withUnsafeBytes({ Self.checksum($0) }) == e.sum else {
      throw SegmentLogError("\(path(e.segment)): corrupt at offset \(e.offset): checksum mismatch")
    }
    return bytes
  }

  /// How many segments there are (the newest is the one written to).
  public var segmentCount: Int { segments.count }

  /// Deletes the oldest segment and its entries; the newest is never deleted.
  /// Returns the number of entries dropped.
  @discardableResult
  public func dropOldestSegment() throws -> Int {
    guard segments.count > 1 else { return 0 }
    let oldest = segments.removeFirst()
    if oldest.reader >= 0 { close(oldest.reader) }
    readerOrder.removeAll { $0 == oldest.id }
    guard unlink(path(oldest.id)) == 0 || errno == ENOENT else {
      throw SegmentLogError("\(path(oldest.id)): cannot delete (errno \(errno))")
    }
    totalBytes -= oldest.end
    let n = entries.prefix { $0.segment == oldest.id }.count
    entries.removeFirst(n)
    return n
  }

  /// Deletes the oldest segments whose entries all end at or before `seq` (never the
  /// newest): what a snapshot at `seq` makes obsolete. Returns the entries dropped.
  @discardableResult
  public func dropSegments(endingBy seq: Int64) throws -> Int {
    var dropped = 0
    while segments.count > 1 {
      let oldest = segments[0].id
      // Its entries are the first ones; the last of them ends it.
      guard (entries.prefix { $0.segment == oldest }.last?.last ?? .min) <= seq else { break }
      dropped += try dropOldestSegment()
    }
    return dropped
  }

  /// `body` with every array of `parts` as raw bytes (valid for the call only).
  func withRawParts<R>(
    _ parts: [[UInt8]], _ body: ([UnsafeRawBufferPointer]) throws -> R
  ) rethrows -> R {
    var raw: [UnsafeRawBufferPointer] = []
    raw.reserveCapacity(parts.count)
    func step(_ i: Int) throws -> R {
      guard i < parts.count else { return try body(raw) }
      return try parts[i].withUnsafeBytes { bytes in
        raw.append(bytes)
        return try step(i + 1)
      }
    }
    return try step(0)
  }

  static func u32(_ b: [UInt8], _ at: Int) -> UInt32 {
    (0..<4).reduce(0) { $0 | UInt32(b[at + $1]) << (8 * UInt32($1)) }
  }
  static func u64(_ b: [UInt8], _ at: Int) -> UInt64 {
    (0..<8).reduce(0) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) }
  }

  /// A fast 64-bit checksum (four independent multiply-xor lanes) for torn and
  /// damaged entries: not a cryptographic digest (the payloads carry their own).
  static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    var c = StreamChecksum()
    c.update(bytes)
    return c.value
  }
}

/// The segment log's 64-bit checksum, fed in pieces of any size: the value of the
/// concatenation, as one `update` would give it (a partial 32-byte stripe waits for its
/// other bytes). Kernel images check their chunks with it too. Four independent
/// multiply-xor lanes over 8-byte words, so that the CPU overlaps them; it catches torn
/// writes, old or zeroed blocks and flipped bits, not an adversary.
public struct StreamChecksum: Sendable {
  private static let k: UInt64 = 0x9E37_79B9_7F4A_7C15
  private var lanes: (UInt64, UInt64, UInt64, UInt64) = (1, 2, 3, 4)
  private var total: UInt64 = 0
  /// Bytes of a stripe not yet folded in (`pendingCount` of them).
  private var pending: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
  private var pendingCount = 0

  public init() {}

  @inline(__always) private static func mix(_ lane: UInt64, _ word: UInt64) -> UInt64 {
    ((lane ^ word) &* k).rotated(29)
  }

  public mutating func update(_ bytes: UnsafeRawBufferPointer) {
    guard var base = bytes.baseAddress else { return }
    var n = bytes.count
    total &+= UInt64(n)
    // Finish a stripe begun by an earlier piece.
    while pendingCount > 0 && n > 0 {
      let at = pendingCount
      withUnsafeMutableBytes(of: &pending) { $0[at] = base.load(as: UInt8.self) }
      pendingCount += 1
      base += 1
      n -= 1
      if pendingCount == 32 {
        lanes = (
          Self.mix(lanes.0, pending.0), Self.mix(lanes.1, pending.1), Self.mix(lanes.2, pending.2),
          Self.mix(lanes.3, pending.3)
        )
        pendingCount = 0
      }
    }
    var (a, b, c, d) = lanes
    while n >= 32 {
      a = Self.mix(a, base.loadUnaligned(as: UInt64.self))
      b = Self.mix(b, base.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
      c = Self.mix(c, base.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
      d = Self.mix(d, base.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
      base += 32
      n -= 32
    }
    lanes = (a, b, c, d)
    if n > 0 {
      let source = base
      withUnsafeMutableBytes(of: &pending) { p in
        for i in 0..<n { p[i] = source.load(fromByteOffset: i, as: UInt8.self) }
      }
      pendingCount = n
    }
  }

  /// The checksum of every byte given so far.
  public var value: UInt64 {
    var h = total &* Self.k
    for lane in [lanes.0, lanes.1, lanes.2, lanes.3] { h = ((h ^ lane) &* Self.k).rotated(31) }
    var tail = pending
    let count = pendingCount
    withUnsafeBytes(of: &tail) { p in
      for i in 0..<count { h = ((h ^ UInt64(p[i])) &* Self.k).rotated(23) }
    }
    return h ^ (h >> 29)
  }
}

extension UInt64 {
  fileprivate func rotated(_ r: UInt64) -> UInt64 { (self << r) | (self >> (64 - r)) }
}
