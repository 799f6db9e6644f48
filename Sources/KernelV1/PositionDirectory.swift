// Where an account's position in a security is: a lookup on every side of every
// trade. The first eight positions of each account sit in one 64-byte line (a trade's
// lookup costs one cache miss, and no hash); an account with more overflows into an
// open-addressing index. Derived storage: rebuilt on load, never digested, never
// iterated into state or output.
//
// The lines are lanes of one `[Int32]`, started `pad` lanes into the array so that
// every account's line is one cache line: an array's elements begin 32 bytes after its
// header, 48 bytes into a line here, so an `[AccountPositions]` straddled two lines
// per account, and the second missed in the apply or stalled the prefetches (perf,
// docs/PERFORMANCE.md, V1's fourth round).

import KernelAPI

/// One account's line as read: its first eight positions.
struct AccountPositions {
  /// Security row ids, -1 in unused lanes.
  var securities = SIMD8<Int32>(repeating: -1)
  /// The position row id in the lane of its security.
  var positions = SIMD8<Int32>(repeating: -1)
}

struct PositionDirectory {
  /// Int32 lanes a line holds: eight security ids, then eight position ids.
  static let lanesPerLine = 16
  /// Account `a`'s line is `lanes[pad + 16a ..< pad + 16a + 16]`; one line of lanes
  /// more than the accounts is kept as room for `pad`. Lanes outside the accounts'
  /// lines hold anything.
  private var lanes = PositionDirectory.emptyLine
  private static let emptyLine = [Int32](repeating: -1, count: PositionDirectory.lanesPerLine)
  /// Where the lines start (0..<16): 64-byte aligned when the array was last changed.
  /// Reads use it as it is (a copy of the kernel whose array moved reads right, only
  /// misaligned, until its next change realigns it).
  private var pad = 0
  private(set) var accountCount = 0
  private var overflow = FastIndex<Int64>()
  /// The positions in `overflow`, in insertion order: the holdings order walks the
  /// lines and these (an index cannot be walked). Few: accounts beyond eight securities.
  private(set) var overflowed: [(account: Int32, security: Int32, position: Int32)] = []

  mutating func reserveAccounts(_ n: Int) {
    lanes.reserveCapacity((n + 1) * Self.lanesPerLine)
    realign()
  }

  /// The room reserved beyond the accounts' lines (`PageWarmer`).
  func unusedCapacity() -> MemoryRegion? { MemoryRegion.unusedCapacity(of: lanes) }

  /// Makes the array unique and moves the lines so that they start a cache line (an
  /// append that grew the array, or a copy on write, may have moved it to an address
  /// with another offset in its line). Rare: growth and the first change of a copy.
  private mutating func realign() {
    let lineLanes = Self.lanesPerLine
    let (count, oldPad) = (accountCount * lineLanes, pad)
    pad = lanes.withUnsafeMutableBufferPointer { b -> Int in
      guard let base = b.baseAddress else { return oldPad }
      // The element size is 4 and malloc aligns to 16: `wanted` is a whole lane count.
      let misalignment = Int(bitPattern: UInt(bitPattern: base) & 63)
      let wanted = ((64 - misalignment) & 63) / MemoryLayout<Int32>.stride
      precondition(wanted < lineLanes && b.count >= count + lineLanes, "directory keeps a line of room")
      if wanted < oldPad {
        for i in 0..<count { b[wanted + i] = b[oldPad + i] }
      } else if wanted > oldPad {
        for i in stride(from: count - 1, through: 0, by: -1) { b[wanted + i] = b[oldPad + i] }
      }
      return wanted
    }
  }

  /// Makes room for account `a` (accounts are added in row-id order).
  mutating func addAccount(_ a: Int32) {
    precondition(Int(a) == accountCount, "accounts are added in row-id order")
    addAccounts(1)
  }

  /// Makes room for the `n` accounts after the last (in row-id order) at once: the
  /// opening's million one at a time retained and released an empty line's array and
  /// realigned a million times, ~10% of V1's opening on the 1M-account day (perf,
  /// twenty-second session).
  mutating func addAccounts(_ n: Int) {
    precondition(n >= 0 && accountCount + n < Int(Int32.max), "position directory is full")
    let first = accountCount
    var left = n
    while left > 0 {
      let lines = min(left, Self.emptyLinesCount)
      lanes.append(contentsOf: Self.emptyLines[0..<(lines * Self.lanesPerLine)])
      left -= lines
    }
    accountCount += n
    realign()
    // Every new lane -1 again: the realignment may have moved the lines under them.
    let start = pad + first * Self.lanesPerLine
    lanes.withUnsafeMutableBufferPointer { b in
      for i in start..<(start + n * Self.lanesPerLine) { b[i] = -1 }
    }
  }

  /// Empty lines appended by `addAccounts`, this many at a time (64 KB).
  private static let emptyLinesCount = 1024
  private static let emptyLines = [Int32](repeating: -1, count: emptyLinesCount * lanesPerLine)

  @inline(__always) static func key(_ account: Int32, _ security: Int32) -> Int64 {
    Int64(account) << 32 | Int64(UInt32(bitPattern: security))
  }

  /// The account's line.
  @inline(__always) func line(of account: Int32) -> AccountPositions {
    precondition(account >= 0 && Int(account) < accountCount, "directory line of an unknown account")
    return lanes.withUnsafeBufferPointer { b in
      // In bounds: the line's 16 lanes are within `lanes` (checked above).
      let raw = UnsafeRawPointer(b.baseAddress! + pad + Int(account) * Self.lanesPerLine)
      return AccountPositions(
        securities: raw.loadUnaligned(as: SIMD8<Int32>.self),
        positions: raw.loadUnaligned(fromByteOffset: 32, as: SIMD8<Int32>.self))
    }
  }

  /// Starts loading the account's line (one cache line).
  @inline(__always) func prefetch(_ account: Int32) {
    guard account >= 0 && Int(account) < accountCount else { return }
    lanes.prefetch(pad + Int(account) * Self.lanesPerLine)
  }

  /// Where (account, security) is, its line loaded: `.found`, `.absent`, or in the
  /// overflow, whose slot this starts loading (`find` then reads it).
  enum LineLookup {
    case found(Int32)
    case absent
    case overflow
  }

  @inline(__always) func lookInLine(account: Int32, security: Int32) -> LineLookup {
    let line = line(of: account)
    let p = Self.position(in: line, security: security)
    if p >= 0 { return .found(p) }
    if line.securities[7] < 0 { return .absent }
    overflow.prefetchSlot(hash: Self.key(account, security).fastHash)
    return .overflow
  }

  /// The position in the lane of `security` in `line`, -1 when no lane holds it. Lane
  /// arithmetic without branches or masks: `line.securities .== SIMD8(repeating:)` and
  /// a loop over the mask's lanes compiled to a scalar loop that stored each lane to
  /// the stack and reloaded the vector (a store-forwarding stall per lane: a third of
  /// the apply's samples in the directory lookups, perf, V1's fifth round). A lane
  /// that differs gets all ones (-1) in `miss`; the hit, if any, keeps its position
  /// (>= 0), so the largest lane is the answer. A security is in at most one lane of
  /// its account's line, and unused lanes hold security -1, never a row id.
  @inline(__always) static func position(in line: AccountPositions, security: Int32) -> Int32 {
    precondition(security >= 0, "directory lookup of a security row id")
    let difference = line.securities ^ SIMD8(repeating: security)
    // Sign bit of (d | -d) is set exactly when d != 0; the shift spreads it to all bits.
    let miss = (difference | (SIMD8<Int32>() &- difference)) &>> 31
    return (line.positions | miss).max()
  }

  @inline(__always) func find(account: Int32, security: Int32) -> Int32? {
    find(in: line(of: account), account: account, security: security)
  }

  /// `line` must be `line(of: account)`, read since the last insert for the account.
  @inline(__always) func find(in line: AccountPositions, account: Int32, security: Int32) -> Int32? {
    let p = Self.position(in: line, security: security)
    if p >= 0 { return p }
    // Lanes fill in order: a free lane means the account has no overflow.
    if line.securities[7] < 0 { return nil }
    return overflow[Self.key(account, security)]
  }

  mutating func insert(account: Int32, security: Int32, position: Int32) {
    precondition(security >= 0 && position >= 0, "position directory takes row ids")
    precondition(account >= 0 && Int(account) < accountCount, "directory line of an unknown account")
    realign()
    let start = pad + Int(account) * Self.lanesPerLine
    // One access to the lanes (each `lanes[i] = x` was a uniqueness and a bounds
    // check). In bounds: `realign` keeps a line of lanes past the accounts' lines and
    // `pad` is under a line, so the account's 16 lanes are within the array.
    let placed = lanes.withUnsafeMutableBufferPointer { b -> Bool in
      precondition(start + Self.lanesPerLine <= b.count, "directory line within its lanes")
      for lane in 0..<8 where b[start + lane] < 0 {
        b[start + lane] = security
        b[start + 8 + lane] = position
        return true
      }
      return false
    }
    if !placed {
      overflow[Self.key(account, security)] = position
      overflowed.append((account, security, position))
    }
  }
}
