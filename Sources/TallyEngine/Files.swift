// File I/O for the embedded mode: reference folders, event files, output folders.
// Errors name the path and what went wrong.
import Foundation
import KernelAPI
import TallyFormat

public enum FileIO {
  /// A file's bytes, read straight into one array (no Data in between: event and
  /// holdings files run to hundreds of MiB).
  public static func read(_ path: String) throws(InputError) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
      throw InputError(file: path, line: 0, problem: "cannot read: \(String(cString: strerror(errno)))")
    }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else {
      throw InputError(file: path, line: 0, problem: "cannot read: \(String(cString: strerror(errno)))")
    }
    guard info.st_mode & S_IFMT == S_IFREG else {
      // Not a regular file (a pipe, a device): read as a stream.
      do {
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
      } catch {
        throw InputError(file: path, line: 0, problem: "cannot read: \(describe(error))")
      }
    }
    let size = Int(info.st_size)
    if size == 0 { return [] }
    var failure: Int32 = 0
    let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
      count = 0
      while count < size {
        let n = Glibc.read(fd, buffer.baseAddress! + count, size - count)
        if n < 0 && errno == EINTR { continue }
        if n < 0 {
          failure = errno
          break
        }
        if n == 0 { break }
        count += n
      }
    }
    if failure != 0 {
      throw InputError(file: path, line: 0, problem: "cannot read: \(String(cString: strerror(failure)))")
    }
    return bytes
  }

  /// Reads the file at `path` a piece at a time through one buffer that is reused:
  /// `body` gets the buffer and the range of the piece's whole lines (every line ends
  /// in LF but maybe the file's last), in order. A piece is about `pieceBytes` (more when
  /// one line is longer). For files larger than memory should hold at once: an event
  /// file of a million trades read whole was 80 MB of fresh pages. Works on a pipe too.
  public static func forEachPieceOfLines(
    _ path: String, pieceBytes: Int, _ body: (_ buffer: [UInt8], _ lines: Range<Int>) throws -> Void
  ) throws {
    precondition(pieceBytes > 0, "a piece holds at least one byte")
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
      throw InputError(file: path, line: 0, problem: "cannot read: \(String(cString: strerror(errno)))")
    }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: pieceBytes)
    var filled = 0
    var atEnd = false
    while !atEnd {
      if filled == buffer.count {
        // One line longer than the buffer: room for the rest of it.
        buffer.append(contentsOf: repeatElement(0, count: buffer.count))
      }
      var failure: Int32 = 0
      let n = buffer.withUnsafeMutableBytes { raw -> Int in
        while true {
          let n = Glibc.read(fd, raw.baseAddress! + filled, raw.count - filled)
          if n < 0 && errno == EINTR { continue }
          if n < 0 { failure = errno }
          return n
        }
      }
      if n < 0 {
        throw InputError(file: path, line: 0, problem: "cannot read: \(String(cString: strerror(failure)))")
      }
      atEnd = n == 0
      filled += n
      // Whole lines end at the last LF read, or at the end of the file.
      var end = filled
      if !atEnd {
        while end > 0 && buffer[end - 1] != 10 { end -= 1 }
        if end == 0 { continue }  // no whole line yet: read on
      }
      if end > 0 { try body(buffer, 0..<end) }
      // The start of the next line moves to the front.
      if end < filled {
        buffer.withUnsafeMutableBytes { raw in
          (raw.baseAddress! + 0).copyMemory(from: raw.baseAddress! + end, byteCount: filled - end)
        }
      }
      filled -= end
    }
  }

  /// The number of LF bytes in the file at `path` (a regular file; nil for a pipe or a
  /// device, which cannot be read twice), read through one buffer of `pieceBytes`.
  public static func lineFeedCount(_ path: String, pieceBytes: Int) throws -> Int? {
    var info = stat()
    guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
    var count = 0
    try forEachPieceOfLines(path, pieceBytes: pieceBytes) { buffer, lines in
      count += Fields.lineFeedCount(buffer, in: lines)
    }
    return count
  }

  /// Opens `path` for writing from its start: created if missing, else truncated, but
  /// never replaced. A file the user names (`--effects`, `--dump-rows`) may be a device
  /// or a pipe: Foundation's `createFile` writes a temporary file and renames it over the
  /// path, which turned `--effects /dev/null` into a regular file (found 2026-12-03,
  /// running as root). The output folder's files are still written atomically
  /// (`writeFolder`): those are ours.
  /// `what` names the file in the error (e.g. "effects file ").
  public static func openForWriting(_ path: String, what: String = "") throws(OutputError) -> FileHandle {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
      throw OutputError("cannot write \(what)\(path): \(String(cString: strerror(errno)))")
    }
    return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
  }

  static func describe(_ error: any Error) -> String {
    if let e = error as? CocoaError, let underlying = e.userInfo[NSUnderlyingErrorKey] as? NSError {
      return underlying.localizedDescription
    }
    return (error as NSError).localizedDescription
  }

  /// Loads and validates a reference folder (SPEC §2).
  public static func loadReference(_ folder: String) throws(InputError) -> ReferenceData {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue
    else {
      throw InputError(file: folder, line: 0, problem: "reference folder does not exist or is not a folder")
    }
    func readIfReadable(_ path: String) -> [UInt8]? {
      FileManager.default.isReadableFile(atPath: path) ? (try? read(path)) : nil
    }
    // holdings.csv, by far the largest file (123 MB for a million accounts), is mapped
    // rather than read: its pages are the page cache's, where a read had filled as many
    // freshly zeroed pages of the process. Where it cannot be mapped (a pipe, an empty
    // file) it is read on another core while this one parses the files before it.
    let mapped = MappedFile(folder + "/holdings.csv")
    let holdings = BackgroundWork { mapped == nil ? readIfReadable(folder + "/holdings.csv") : nil }
    defer { _ = holdings.wait() }  // not left running when an earlier file is refused
    return try withExtendedLifetime(mapped) { () throws(InputError) -> ReferenceData in
      try ReferenceParser.parse(
        prefix: folder,
        contents: { name in name == "holdings.csv" ? holdings.wait() : readIfReadable(folder + "/" + name) },
        mappedHoldings: mapped?.bytes)
    }
  }

  /// Writes files into `folder` (created if needed), each atomically.
  public static func writeFolder(_ folder: String, files: [(name: String, bytes: [UInt8])])
    throws(OutputError)
  {
    try createFolder(folder)
    for file in files {
      let path = folder + "/" + file.name
      try writeAtomically(path, file.bytes)
    }
  }

  /// Creates `folder` if needed (the first step of `writeFolder`).
  public static func createFolder(_ folder: String) throws(OutputError) {
    do {
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    } catch {
      throw OutputError("cannot create output folder \(folder): \(describe(error))")
    }
  }

  /// Writes all of `bytes` to `fd` (a short write or EINTR is continued); 0, or the
  /// errno of the write that failed.
  public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Int32 {
    bytes.withUnsafeBytes { raw in
      var done = 0
      while done < raw.count {
        let n = write(fd, raw.baseAddress! + done, raw.count - done)
        if n < 0 && errno == EINTR { continue }
        if n < 0 { return errno }
        if n == 0 { return EIO }
        done += n
      }
      return 0
    }
  }

  /// Writes `bytes` to a temporary file beside `path`, then renames it over `path`: a
  /// reader sees the old file or the new one, never a part. Straight from the array
  /// (`Data(bytes)` copied the 77 MB holdings file of the 1M-account day into fresh
  /// pages first: memory the kernel had to zero, docs/PERFORMANCE.md).
  static func writeAtomically(_ path: String, _ bytes: [UInt8]) throws(OutputError) {
    try writeAtomically(path) { write in write(bytes) }
  }

  /// Writes the file at `path` atomically from the pieces `produce` hands to `write`,
  /// in order (a large file rendered a piece at a time into one reused buffer). After a
  /// failed write the rest are ignored and the error thrown once `produce` returns.
  public static func writeAtomically(_ path: String, _ produce: (_ write: ([UInt8]) -> Void) -> Void)
    throws(OutputError)
  {
    let (fd, temporary) = try openTemporary(for: path)
    var failure: Int32 = 0
    produce { piece in
      if failure == 0 { failure = writeAll(fd, piece) }
    }
    if let error = finishFile(fd, temporary, as: path, failure: failure) { throw error }
  }

  /// Pieces written to a file at a time by `writeAtomicallyInBackground`'s writer: at
  /// most this many wait for it (the renderer blocks beyond, and memory stays at a few
  /// pieces).
  public static let backgroundPiecesMax = 3

  /// `writeAtomically(_:_:)` with the writes, the close and the rename on another
  /// thread: `produce` hands each piece over (`write` swaps an emptied spare of the
  /// same capacity into it, a buffer the writer has finished with when there is one, so
  /// that the few buffers in flight are reused and no piece is copied). Why: the
  /// write calls copy every byte into the page cache, about 0.09 s of the 80 MB
  /// holdings.csv of the 1M-account day (perf: `copy_folio_from_iter_atomic`, a
  /// quarter of the outputs' time), which the other core now does while this one
  /// renders. The rename runs there too: renamed over an existing file, ext4 writes the
  /// new file's pages out and drops the old file's inside the renaming call (50-60 ms
  /// for holdings.csv, measured with perf). The work's result is the error, if any
  /// (after a failed write the rest are skipped); wait for it before relying on the
  /// file.
  public static func writeAtomicallyInBackground(
    _ path: String, _ produce: (_ write: (inout [UInt8]) -> Void) -> Void
  ) throws(OutputError) -> BackgroundWork<OutputError?> {
    let (fd, temporary) = try openTemporary(for: path)
    let pieces = HandoffPipe<[UInt8]>(depth: backgroundPiecesMax)
    let spares = HandoffPipe<[UInt8]>(depth: backgroundPiecesMax)
    let writer = BackgroundWork { () -> OutputError? in
      var failure: Int32 = 0
      // `take` throws only what `finish` was given: nothing here.
      while let taken = try? pieces.take() {
        var piece = taken
        if failure == 0 { failure = writeAll(fd, piece) }
        piece.removeAll(keepingCapacity: true)
        _ = spares.putIfRoom(piece)
      }
      return finishFile(fd, temporary, as: path, failure: failure)
    }
    produce { piece in
      // `piece` leaves with the rendered bytes; the caller renders on into the spare.
      var rendered = spares.takeIfAny() ?? []
      rendered.reserveCapacity(piece.capacity)
      swap(&rendered, &piece)
      precondition(pieces.put(rendered), "the writer takes every piece until the pipe is finished")
    }
    pieces.finish(nil)
    return writer
  }

  /// Closes the temporary file written for `path` and renames it over `path`, or
  /// removes it after a failure (`failure`: the errno of the first failed write, or 0).
  private static func finishFile(_ fd: Int32, _ temporary: String, as path: String, failure: Int32)
    -> OutputError?
  {
    var failure = failure
    if close(fd) != 0 && failure == 0 { failure = errno }
    if failure == 0 && rename(temporary, path) != 0 { failure = errno }
    guard failure != 0 else { return nil }
    unlink(temporary)
    return OutputError("cannot write \(path): \(String(cString: strerror(failure)))")
  }

  private static func openTemporary(for path: String) throws(OutputError) -> (fd: Int32, temporary: String) {
    let temporary = path + ".tmp-\(getpid())"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw OutputError("cannot write \(path): \(String(cString: strerror(errno)))") }
    return (fd, temporary)
  }
}

public struct OutputError: Error, CustomStringConvertible, Sendable {
  public var description: String
  public init(_ description: String) { self.description = description }
}

/// A regular file mapped read-only into memory: its pages are shared with the page cache
/// (no copy, no zeroed pages of the process). Unmapped when the object goes.
final class MappedFile {
  let bytes: UnsafeRawBufferPointer

  /// Nil when `path` is not a readable, non-empty regular file, or cannot be mapped.
  init?(_ path: String) {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_size > 0 else { return nil }
    let size = Int(info.st_size)
    guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else { return nil }
    // Read ahead now: the file is parsed in two halves at once.
    _ = madvise(base, size, MADV_WILLNEED)
    bytes = UnsafeRawBufferPointer(start: base, count: size)
  }

  deinit { munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count) }
}
