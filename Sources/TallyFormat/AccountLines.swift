// accounts.csv's plain lines read straight from the file's bytes. A million lines
// through `LineReader` made an array slice each (a retain and a release, two locked
// instructions) and every identifier was hashed again from its String for the index:
// ~0.18 s of the 1M-account run, all before anything else could start (perf, twenty-
// second session). Here a line is read through a pointer, its identifier made into a
// String once and hashed from its bytes. Anything but a plain line (and the header
// exactly) makes the whole file go the general way, which names the problem and its
// line: this path only ever takes what that one takes, and gives the same rows.

import KernelAPI

enum FastAccountLines {
  /// The rows of `file` and the `Ident.fastHash` of each row's identifier, when its
  /// header is exactly `header` and every line after it is `id,kind` with an `id` of
  /// printable ASCII other than a comma and a `kind` that `Fields.accountKind` reads
  /// (a leading byte-order mark skipped, a CR before a line feed or the end dropped, as
  /// `LineReader` does). Nil otherwise. Row `i` is line `i + 2` of the file (no blank
  /// line is taken).
  static func parseWhole(_ file: [UInt8], header: String) -> (
    rows: [(id: String, kind: AccountKind)], hashes: [UInt64]
  )? {
    // The header line.
    let (n, dataStart): (Int, Int?) = file.withUnsafeBytes { raw in
      let bytes = raw.bindMemory(to: UInt8.self)
      let n = bytes.count
      let position = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
      var headerEnd = position
      while headerEnd < n && bytes[headerEnd] != 10 { headerEnd += 1 }
      var headerLast = headerEnd
      if headerLast > position && bytes[headerLast - 1] == 13 { headerLast -= 1 }
      guard UnsafeBufferPointer(rebasing: bytes[position..<headerLast]).elementsEqual(header.utf8) else {
        return (n, nil)
      }
      return (n, min(headerEnd + 1, n))
    }
    guard let dataStart else { return nil }
    // A large file's second half (from the first line at or after its middle) is read
    // on another core while this one reads the first: ~0.09 s of the 1M-account run's
    // start, when nothing else runs on the second core (perf, twenty-fourth session).
    var split = n
    if n - dataStart >= twoPartBytesMin {
      split = file.withUnsafeBytes { raw in
        var i = dataStart + (n - dataStart) / 2
        while i < n && raw[i] != 10 { i += 1 }
        return min(i + 1, n)
      }
    }
    let second =
      split < n ? BackgroundWork { file.withUnsafeBytes { Self.rows(in: $0, from: split, to: n) } } : nil
    guard
      var first = file.withUnsafeBytes({ Self.rows(in: $0, from: dataStart, to: split, extra: split < n) })
    else {
      _ = second?.wait()
      return nil
    }
    if let second {
      guard let rest = second.wait() else { return nil }
      first.rows.append(contentsOf: rest.rows)
      first.hashes.append(contentsOf: rest.hashes)
    }
    return first
  }

  /// Files of at least this many bytes are read in two parts at once.
  static let twoPartBytesMin = 1 << 20

  /// The rows of the lines in `raw[start..<end]` (`start` begins a line; `end` is the
  /// file's end or follows a line feed), or nil at the first line the fast path does
  /// not take. `extra`: room for as many rows again (a second part follows).
  private static func rows(in raw: UnsafeRawBufferPointer, from start: Int, to end: Int, extra: Bool = false)
    -> (rows: [(id: String, kind: AccountKind)], hashes: [UInt64])?
  {
    let bytes = raw.bindMemory(to: UInt8.self)
    var position = start
    let lines = position < end ? ByteScan.lineFeedCount(in: raw, from: position, to: end) + 1 : 0
    var rows: [(id: String, kind: AccountKind)] = []
    var hashes: [UInt64] = []
    rows.reserveCapacity(extra ? 2 * lines + 64 : lines)
    hashes.reserveCapacity(extra ? 2 * lines + 64 : lines)
    while position < end {
      // The identifier: printable ASCII up to the comma.
      let idStart = position
      while position < end {
        let b = bytes[position]
        if b == UInt8(ascii: ",") || b < 0x20 || b > 0x7E { break }
        position += 1
      }
      guard position < end, bytes[position] == UInt8(ascii: ","), position > idStart else { return nil }
      let id = UnsafeRawBufferPointer(rebasing: raw[idStart..<position])
      position += 1
      // The kind up to the line's end (a CR before it dropped).
      let kindStart = position
      while position < end && bytes[position] != 10 { position += 1 }
      var kindEnd = position
      if kindEnd > kindStart && bytes[kindEnd - 1] == 13 { kindEnd -= 1 }
      guard let kind = Fields.accountKind(bytes: UnsafeRawBufferPointer(rebasing: raw[kindStart..<kindEnd]))
      else {
        return nil
      }
      rows.append((String(decoding: id, as: UTF8.self), kind))
      hashes.append(Ident.fastHash(of: id))
      position += 1  // past the line feed (or the end)
    }
    return (rows, hashes)
  }
}
