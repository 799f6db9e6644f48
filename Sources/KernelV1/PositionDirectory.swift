// Where an account's position in a security is: a lookup on every side of every
// trade. The first eight positions of each account sit in one 64-byte line of
// `AccountPositions` (a trade's lookup costs one cache miss, and no hash); an
// account with more overflows into an open-addressing index. Derived storage:
// rebuilt on load, never digested, never iterated into state or output.

import KernelAPI

struct AccountPositions {
  /// Security row ids, -1 in unused lanes.
  var securities = SIMD8<Int32>(repeating: -1)
  /// The position row id in the lane of its security.
  var positions = SIMD8<Int32>(repeating: -1)
}

struct PositionDirectory {
  private var accounts: [AccountPositions] = []
  private var overflow = FastIndex<Int64>()

  mutating func reserveAccounts(_ n: Int) { accounts.reserveCapacity(n) }

  /// The room reserved beyond the accounts' lines (`PageWarmer`).
  func unusedCapacity() -> MemoryRegion? { MemoryRegion.unusedCapacity(of: accounts) }

  /// Makes room for account `a` (accounts are added in row-id order).
  mutating func addAccount(_ a: Int32) {
    precondition(Int(a) == accounts.count, "accounts are added in row-id order")
    accounts.append(AccountPositions())
  }

  @inline(__always) static func key(_ account: Int32, _ security: Int32) -> Int64 {
    Int64(account) << 32 | Int64(UInt32(bitPattern: security))
  }

  /// The account's line (to read it early; see `find(in:account:security:)`).
  @inline(__always) func line(of account: Int32) -> AccountPositions { accounts[Int(account)] }

  /// Starts loading the account's line.
  @inline(__always) func prefetch(_ account: Int32) { accounts.prefetchWhole(Int(account)) }

  /// Where (account, security) is, its line loaded: `.found`, `.absent`, or in the
  /// overflow, whose slot this starts loading (`find` then reads it).
  enum LineLookup {
    case found(Int32)
    case absent
    case overflow
  }

  @inline(__always) func lookInLine(account: Int32, security: Int32) -> LineLookup {
    let line = accounts[Int(account)]
    let lanes = line.securities .== SIMD8(repeating: security)
    for lane in 0..<8 where lanes[lane] { return .found(line.positions[lane]) }
    if line.securities[7] < 0 { return .absent }
    overflow.prefetchSlot(hash: Self.key(account, security).fastHash)
    return .overflow
  }

  @inline(__always) func find(account: Int32, security: Int32) -> Int32? {
    find(in: accounts[Int(account)], account: account, security: security)
  }

  /// `line` must be `line(of: account)`, read since the last insert for the account.
  @inline(__always) func find(in line: AccountPositions, account: Int32, security: Int32) -> Int32? {
    let lanes = line.securities .== SIMD8(repeating: security)
    for lane in 0..<8 where lanes[lane] { return line.positions[lane] }
    // Lanes fill in order: a free lane means the account has no overflow.
    if line.securities[7] < 0 { return nil }
    return overflow[Self.key(account, security)]
  }

  mutating func insert(account: Int32, security: Int32, position: Int32) {
    precondition(security >= 0 && position >= 0, "position directory takes row ids")
    let line = accounts[Int(account)]
    for lane in 0..<8 where line.securities[lane] < 0 {
      accounts[Int(account)].securities[lane] = security
      accounts[Int(account)].positions[lane] = position
      return
    }
    overflow[Self.key(account, security)] = position
  }
}
