// V2's own lookup tables (not KernelAPI's generic FastIndex): concrete, non-generic
// open addressing, so the hot path needs no generic metadata across modules.
// - `KeyBytesTable`: identifier bytes (+ an optional Int32 salt, the day for trade
//   ids) → dense id. Keys of up to 16 bytes (SPEC's identifiers in practice) sit in the
//   24-byte slot itself: a lookup costs one cache miss. Longer keys keep their hash
//   in the slot and their bytes in an arena.
// - `IntKeyTable`: Int64 key → Int32 id.
// Neither is ever iterated: their order cannot reach state or outputs.

import KernelAPI

@inline(__always) func v2Mix(_ x: UInt64) -> UInt64 {
  var z = x ^ (x >> 31)
  z &*= 0x7fb5_d329_728e_a185
  z ^= z >> 27
  z &*= 0x81da_def4_bc2d_d44d
  return z ^ (z >> 33)
}

/// A hash over bytes, 8 at a time; never 0 (0 marks an empty slot).
@inline(__always) func v2HashBytes(_ b: UnsafeRawBufferPointer, salt: Int32) -> UInt64 {
  var h: UInt64 = 0x243f_6a88_85a3_08d3 ^ (UInt64(b.count) << 32) ^ UInt64(UInt32(bitPattern: salt))
  var i = 0
  let n = b.count
  while i + 8 <= n {
    h = v2Mix(h ^ b.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &+ 0x9e37_79b9
    i += 8
  }
  var tail: UInt64 = 0
  var shift: UInt64 = 0
  while i < n {
    tail |= UInt64(b[i]) << shift
    shift += 8
    i += 1
  }
  return v2Mix(h ^ tail) | 1
}

struct KeyBytesTable: Sendable {
  /// One 24-byte slot. A key of at most 16 bytes sits in the slot itself (`k0`, `k1`:
  /// its bytes, zero-padded): a lookup reads ONE slot, no second cache miss. A longer
  /// key keeps its full hash in `k0` and its arena offset in `k1`.
  /// `meta`: 0 empty; else salt << 8 | (length + 1) inline, or salt << 8 | 0xFF long.
  struct Slot: Sendable {
    var k0: UInt64
    var k1: UInt64
    var id: Int32
    var meta: UInt32
  }
  static let inlineMax = 16
  private var slots: [Slot] = Array(repeating: Slot(k0: 0, k1: 0, id: -1, meta: 0), count: 16)
  private var mask = 15
  /// Long keys only: length (u32 LE), salt (i32 LE), then the key's bytes.
  private var arena: [UInt8] = []
  private(set) var count = 0
  /// Keys of 1 to 16 ASCII digits hash by runs of `1 << runBits` consecutive values
  /// (`digitHash`): the trade ids of a day, usually consecutive numbers, then fill
  /// neighbouring slots (one cache line serves several trades) instead of one random
  /// line each. Other keys hash as in any table. (Made for the trade ids; those are in `TradeIdIndex` now, whose
  /// decimal ids do not hash at all.)
  let digitRuns: Bool

  init(digitRuns: Bool = false) { self.digitRuns = digitRuns }

  mutating func reserveCapacity(_ n: Int) {
    var cap = 16
    while cap * 2 < n * 3 { cap *= 2 }
    if cap > slots.count { rehash(cap) }
  }

  static let runBits: UInt64 = 3

  /// The decimal value of an inline key of 1 to 16 bytes, all ASCII digits; nil otherwise.
  @inline(__always) static func digitValue(_ k0: UInt64, _ k1: UInt64, count n: Int) -> UInt64? {
    if n < 1 || n > 16 { return nil }
    var v: UInt64 = 0
    var i = 0
    while i < n {
      let word = i < 8 ? k0 : k1
      let d = ((word >> UInt64(8 * (i & 7))) & 0xFF) &- 48
      if d > 9 { return nil }
      v = v &* 10 &+ d
      i += 1
    }
    return v
  }

  /// An inline key's hash: with `digitRuns`, a digit key's run (value >> runBits, and
  /// the meta: salt and length) is mixed and its place in the run kept in the low bits.
  @inline(__always) static func hash(_ k0: UInt64, _ k1: UInt64, _ meta: UInt32, digitRuns: Bool) -> UInt64 {
    if digitRuns, let v = digitValue(k0, k1, count: Int(meta & 0xFF) - 1) {
      let low = (UInt64(1) << runBits) - 1
      return v2Mix((v >> runBits) ^ v2Mix(UInt64(meta))) & ~low | v & low
    }
    return inlineHash(k0, k1, meta)
  }

  /// A probe for this table (its hash as the table hashes).
  @inline(__always) func probe(_ key: UnsafeRawBufferPointer, salt: Int32) -> Probe {
    Probe(key, salt: salt, digitRuns: digitRuns)
  }

  /// A key of at most 16 bytes as two little-endian words, zero-padded.
  @inline(__always) static func words(_ b: UnsafeRawBufferPointer) -> (UInt64, UInt64) {
    let n = b.count
    if n >= 8 {
      let k0 = b.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
      if n == 8 { return (k0, 0) }
      // Bytes 8..<n are the top bytes of the word that ends at n.
      let last = b.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
      return (k0, last >> UInt64(8 * (16 - n)))
    }
    if n >= 4 {
      let lo = UInt64(b.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
      let hi = UInt64(b.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self))
      return (lo | (hi >> UInt64(8 * (8 - n))) << 32, 0)
    }
    var k0: UInt64 = 0
    for i in 0..<n { k0 |= UInt64(b[i]) << UInt64(8 * i) }
    return (k0, 0)
  }

  /// The second word and the meta are folded in by one odd multiply (a bijection: keys
  /// that differ in them differ before the one finalizing mix), not a mix of their own:
  /// a TRADE hashes five keys, two multiplies each saved.
  @inline(__always) static func inlineHash(_ k0: UInt64, _ k1: UInt64, _ meta: UInt32) -> UInt64 {
    v2Mix(k0 ^ (k1 ^ UInt64(meta) << 32) &* 0x9e37_79b9_7f4a_7c15)
  }

  @inline(__always) func slotHash(_ s: Slot) -> UInt64 {
    s.meta & 0xFF == 0xFF ? s.k0 : Self.hash(s.k0, s.k1, s.meta, digitRuns: digitRuns)
  }

  @inline(__always) static func saltBits(_ salt: Int32) -> UInt32 {
    precondition(salt >= 0 && salt < 1 << 24, "KeyBytesTable: salt out of range")
    return UInt32(salt) << 8
  }

  private mutating func rehash(_ capacity: Int) {
    let old = slots
    slots = Array(repeating: Slot(k0: 0, k1: 0, id: -1, meta: 0), count: capacity)
    mask = capacity - 1
    for slot in old where slot.meta != 0 {
      var i = Int(truncatingIfNeeded: slotHash(slot)) & mask
      while slots[i].meta != 0 { i = (i + 1) & mask }
      slots[i] = slot
    }
  }

  @inline(__always)
  private func entryEquals(_ start: UInt64, _ key: UnsafeRawBufferPointer) -> Bool {
    arena.withUnsafeBytes { a in
      let at = Int(start)
      let length = Int(UInt32(littleEndian: a.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
      return length == key.count && memcmpEqual(a.baseAddress! + at + 8, key.baseAddress!, length)
    }
  }

  /// A key ready to look up: its words (inline keys), meta and hash, computed once.
  struct Probe {
    let key: UnsafeRawBufferPointer
    let k0: UInt64
    let k1: UInt64
    let meta: UInt32
    let hash: UInt64

    @inline(__always) init(_ key: UnsafeRawBufferPointer, salt: Int32, digitRuns: Bool = false) {
      self.key = key
      let saltBits = KeyBytesTable.saltBits(salt)
      if key.count <= KeyBytesTable.inlineMax {
        (k0, k1) = KeyBytesTable.words(key)
        meta = saltBits | UInt32(key.count + 1)
        hash = KeyBytesTable.hash(k0, k1, meta, digitRuns: digitRuns)
      } else {
        hash = v2HashBytes(key, salt: salt)
        k0 = hash
        k1 = 0
        meta = saltBits | 0xFF
      }
    }

    /// `init(key, salt: 0)` for a table without digit runs (`accountIx`: no table of V2
    /// hashes by digit runs): small enough to be inlined. The general one, with the
    /// digit-run hash, was a call whose result, written field by field and read back in
    /// 16-byte moves, could not be forwarded from the stores and waited for them.
    @inline(__always) init(plain key: UnsafeRawBufferPointer) {
      self.key = key
      if key.count <= KeyBytesTable.inlineMax {
        (k0, k1) = KeyBytesTable.words(key)
        meta = UInt32(key.count + 1)
        hash = KeyBytesTable.inlineHash(k0, k1, meta)
      } else {
        hash = v2HashBytes(key, salt: 0)
        k0 = hash
        k1 = 0
        meta = 0xFF
      }
    }
  }

  /// Reads the probe's first slot and returns a word of it: a caller that has several
  /// independent lookups to make issues their cache misses together this way.
  @inline(__always) func touch(_ p: Probe) -> UInt64 {
    slots.withUnsafeBufferPointer { $0[Int(truncatingIfNeeded: p.hash) & mask].k0 }
  }

  /// Starts loading the probe's first slot, all of it, and the next (a hint: `find`
  /// later finds them cached).
  @inline(__always) func prefetch(_ p: Probe) {
    slots.prefetchSlotPair(Int(truncatingIfNeeded: p.hash) & mask)
  }

  @inline(__always)
  func find(_ key: UnsafeRawBufferPointer, salt: Int32 = 0) -> Int32? {
    find(Probe(key, salt: salt, digitRuns: digitRuns))
  }

  @inline(__always)
  func find(_ p: Probe) -> Int32? {
    if p.meta & 0xFF != 0xFF {
      return slots.withUnsafeBufferPointer { slots in
        var i = Int(truncatingIfNeeded: p.hash) & mask
        while true {
          let slot = slots[i]
          if slot.meta == p.meta && slot.k0 == p.k0 && slot.k1 == p.k1 { return slot.id }
          if slot.meta == 0 { return nil }
          i = (i + 1) & mask
        }
      }
    }
    return slots.withUnsafeBufferPointer { slots in
      var i = Int(truncatingIfNeeded: p.hash) & mask
      while true {
        let slot = slots[i]
        if slot.meta == 0 { return nil }
        if slot.meta == p.meta && slot.k0 == p.hash && entryEquals(slot.k1, p.key) { return slot.id }
        i = (i + 1) & mask
      }
    }
  }

  func find(_ key: String, salt: Int32 = 0) -> Int32? {
    var k = key
    return k.withUTF8 { find(UnsafeRawBufferPointer($0), salt: salt) }
  }

  /// Adds a key not present yet; its id is the next dense id.
  @discardableResult
  mutating func insert(_ key: UnsafeRawBufferPointer, salt: Int32 = 0) -> Int32 {
    insert(key, salt: salt, id: Int32(count))
  }

  /// Adds a key not present yet with the id given (a table whose ids are not its own
  /// dense numbering: `TradeIdIndex`'s other ids, numbered by trade).
  @discardableResult
  mutating func insert(_ key: UnsafeRawBufferPointer, salt: Int32, id: Int32) -> Int32 {
    if (count + 1) * 3 > slots.count * 2 { rehash(slots.count * 2) }
    let saltBits = Self.saltBits(salt)
    let slot: Slot
    if key.count <= Self.inlineMax {
      let (k0, k1) = Self.words(key)
      slot = Slot(k0: k0, k1: k1, id: id, meta: saltBits | UInt32(key.count + 1))
    } else {
      precondition(arena.count + key.count + 8 < Int(UInt32.max), "KeyBytesTable: arena full")
      slot = Slot(k0: v2HashBytes(key, salt: salt), k1: UInt64(arena.count), id: id, meta: saltBits | 0xFF)
      withUnsafeBytes(of: UInt32(key.count).littleEndian) { arena.append(contentsOf: $0) }
      withUnsafeBytes(of: salt.littleEndian) { arena.append(contentsOf: $0) }
      arena.append(contentsOf: key)
    }
    var i = Int(truncatingIfNeeded: slotHash(slot)) & mask
    while slots[i].meta != 0 { i = (i + 1) & mask }
    slots[i] = slot
    count += 1
    return id
  }

  /// Adds the key of a probe made for this table (`probe`), not present yet: an inline
  /// key's slot straight from the probe's words and hash (no second hashing).
  @discardableResult
  mutating func insert(_ p: Probe) -> Int32 {
    if p.meta & 0xFF == 0xFF { return insert(p.key, salt: Int32(bitPattern: p.meta >> 8)) }
    if (count + 1) * 3 > slots.count * 2 { rehash(slots.count * 2) }
    let id = Int32(count)
    let slot = Slot(k0: p.k0, k1: p.k1, id: id, meta: p.meta)
    assert(slotHash(slot) == p.hash, "KeyBytesTable: a probe made for another table")
    var i = Int(truncatingIfNeeded: p.hash) & mask
    while slots[i].meta != 0 { i = (i + 1) & mask }
    slots[i] = slot
    count += 1
    return id
  }

  @discardableResult
  mutating func insert(_ key: String, salt: Int32 = 0) -> Int32 {
    var k = key
    return k.withUTF8 { insert(UnsafeRawBufferPointer($0), salt: salt) }
  }

  /// The slot of a key not present yet, with id `id` (a long key's bytes go to the arena).
  @inline(__always)
  private mutating func newSlot(_ key: UnsafeRawBufferPointer, salt: Int32, id: Int32) -> Slot {
    let saltBits = Self.saltBits(salt)
    if key.count <= Self.inlineMax {
      let (k0, k1) = Self.words(key)
      return Slot(k0: k0, k1: k1, id: id, meta: saltBits | UInt32(key.count + 1))
    }
    precondition(arena.count + key.count + 8 < Int(UInt32.max), "KeyBytesTable: arena full")
    let slot = Slot(k0: v2HashBytes(key, salt: salt), k1: UInt64(arena.count), id: id, meta: saltBits | 0xFF)
    withUnsafeBytes(of: UInt32(key.count).littleEndian) { arena.append(contentsOf: $0) }
    withUnsafeBytes(of: salt.littleEndian) { arena.append(contentsOf: $0) }
    arena.append(contentsOf: key)
    return slot
  }

  /// Adds the keys `key(i)` (salt 0, none present yet) for ids `count..<n`: the same
  /// table as `insert` one by one, sized once, with each key's slot computed a few
  /// keys ahead and its cache line requested then (the misses overlap).
  mutating func insertAll(upTo n: Int, _ key: (Int) -> String) {
    if count >= n { return }
    reserveCapacity(n)
    let ahead = 16
    // The ring is a buffer of its own and the keys are prepared inline (no local function
    // capturing a ring array: a retain and release per key, ~0.02 s of the 1M accounts
    // in a profile). Keys are prepared in id order, as before: a long key's arena bytes
    // land at the same offsets.
    let ring = UnsafeMutableBufferPointer<Slot>.allocate(capacity: ahead)
    defer { ring.deallocate() }
    ring.initialize(repeating: Slot(k0: 0, k1: 0, id: -1, meta: 0))
    var prepared = count
    var i = count
    while i < n {
      let limit = min(i + ahead, n)
      while prepared < limit {
        var k = key(prepared)
        let slot = k.withUTF8 { newSlot(UnsafeRawBufferPointer($0), salt: 0, id: Int32(prepared)) }
        ring[prepared % ahead] = slot
        slots.prefetch(Int(truncatingIfNeeded: slotHash(slot)) & mask)
        prepared += 1
      }
      let slot = ring[i % ahead]
      var j = Int(truncatingIfNeeded: slotHash(slot)) & mask
      while slots[j].meta != 0 { j = (j + 1) & mask }
      slots[j] = slot
      i += 1
    }
    count = n
  }
}

@inline(__always)
func memcmpEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
  var i = 0
  while i + 8 <= n {
    if a.loadUnaligned(fromByteOffset: i, as: UInt64.self)
      != b.loadUnaligned(fromByteOffset: i, as: UInt64.self)
    {
      return false
    }
    i += 8
  }
  while i < n {
    if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
    i += 1
  }
  return true
}

struct IntKeyTable: Sendable {
  /// Key and value side by side: one cache miss per probe. The key is kept as two
  /// 32-bit halves: a 12-byte slot (16 with an Int64 field), a quarter less memory to
  /// fault in and fill (positions: 5.8M slots for a million-account opening).
  struct Slot: Sendable {
    var keyLow: UInt32
    var keyHigh: UInt32
    var value: Int32

    @inline(__always) init(key: Int64, value: Int32) {
      keyLow = UInt32(truncatingIfNeeded: key)
      keyHigh = UInt32(truncatingIfNeeded: key >> 32)
      self.value = value
    }

    @inline(__always) var key: Int64 { Int64(bitPattern: UInt64(keyHigh) << 32 | UInt64(keyLow)) }
  }
  /// Any number of slots (not a power of two): a key's first slot is the high word of
  /// hash x size (`home`), so the table is sized to what it must hold at a load of 2/3
  /// (`slotsFor`) instead of up to twice that. On the 1M-account day the position
  /// index needs 5.8M slots (70 MB) where a power of two took 8M (96 MB): every page of
  /// it is a fresh page the operating system zeroes, the largest cost of an opening.
  private var slots: [Slot] = Array(repeating: Slot(key: 0, value: -1), count: IntKeyTable.slotsMin)
  private var size = UInt64(IntKeyTable.slotsMin)
  private(set) var count = 0

  static let slotsMin = 16
  /// Slots are added in steps of this many (a whole number of 4 KB pages' worth, 12 KB).
  static let slotsStep = 1024
  /// The largest table: ids are Int32 and `home` multiplies by the size in 64 bits.
  static let slotsMax = 1 << 40

  init() {}

  /// The slots for `n` keys at a load of at most 2/3, rounded up to `slotsStep`.
  static func slotsFor(_ n: Int) -> Int {
    precondition(n >= 0 && n <= slotsMax / 2, "IntKeyTable: more keys than slotsMax allows")
    let need = (3 * n + 1) / 2 + 1
    return max(slotsMin, (need + slotsStep - 1) / slotsStep * slotsStep)
  }

  /// The first slot of a key (Lemire's multiply-shift: uniform for a uniform hash).
  /// Only the hash's top bits choose the slot, and an odd multiply's top bits depend on
  /// every bit of its input (the high half folded into the low first): one multiply
  /// instead of `v2Mix`'s two, the position index being hashed up to four times a TRADE.
  @inline(__always) func home(_ key: Int64) -> Int {
    let k = UInt64(bitPattern: key)
    let h = (k ^ k >> 32) &* 0x9e37_79b9_7f4a_7c15
    return Int(truncatingIfNeeded: h.multipliedFullWidth(by: size).high)
  }

  /// The slot after `i` (linear probing, wrapping at the end).
  @inline(__always) func next(_ i: Int) -> Int {
    i + 1 == Int(truncatingIfNeeded: size) ? 0 : i + 1
  }

  mutating func reserveCapacity(_ n: Int) {
    let want = Self.slotsFor(n)
    if want > slots.count { rehash(want) }
  }

  private mutating func rehash(_ capacity: Int) {
    precondition(capacity <= Self.slotsMax, "IntKeyTable: beyond slotsMax")
    let old = slots
    slots = Array(repeating: Slot(key: 0, value: -1), count: capacity)
    size = UInt64(capacity)
    for slot in old where slot.value >= 0 {
      var i = home(slot.key)
      while slots[i].value >= 0 { i = next(i) }
      slots[i] = slot
    }
  }

  @inline(__always)
  subscript(key: Int64) -> Int32? {
    slots.withUnsafeBufferPointer { slots in
      var i = home(key)
      while true {
        let slot = slots[i]
        if slot.value < 0 { return nil }
        if slot.key == key { return slot.value }
        i = next(i)
      }
    }
  }

  /// Looks `key` up; when it is absent, also the slot `insert(_:_:at:)` fills for it
  /// (where its probe ended: the slot `insert` would find), so that an insert right
  /// after a failed lookup needs no second hash and probe.
  @inline(__always)
  func lookup(_ key: Int64) -> (id: Int32?, emptySlot: Int) {
    slots.withUnsafeBufferPointer { slots in
      var i = home(key)
      while true {
        let slot = slots[i]
        if slot.value < 0 { return (nil, i) }
        if slot.key == key { return (slot.value, -1) }
        i = next(i)
      }
    }
  }

  /// Whether slot `slot` of a table of `slotCount` slots is (still) empty: for a key whose
  /// `lookup` ended there, absent then, it is still absent and still ends there, even with
  /// inserts since. (No key is ever removed, so the slots its probe passed stay full; an
  /// insert of that key would have filled the first empty one, this one. A table resized
  /// since, whose keys moved, has another slot count.)
  @inline(__always) func isEmpty(slot: Int, slotCount: Int) -> Bool {
    slots.withUnsafeBufferPointer { $0.count == slotCount && $0[slot].value < 0 }
  }

  /// Adds a key that `lookup` found absent, ending at `emptySlot`, with no insert since
  /// (else, or when the table must grow first, as `insert(_:_:)`).
  mutating func insert(_ key: Int64, _ value: Int32, at emptySlot: Int) {
    guard emptySlot >= 0 && (count + 1) * 3 <= slots.count * 2 else { return insert(key, value) }
    precondition(value >= 0, "IntKeyTable values are row ids")
    precondition(slots[emptySlot].value < 0, "IntKeyTable: a slot filled since its lookup")
    slots[emptySlot] = Slot(key: key, value: value)
    count += 1
  }

  /// Reads the key's first slot (see `KeyBytesTable.touch`).
  @inline(__always) func touch(_ key: Int64) -> Int64 {
    slots.withUnsafeBufferPointer { $0[home(key)].key }
  }

  /// Starts loading the key's first slot and the next (a hint: the lookup later finds
  /// them cached).
  @inline(__always) func prefetch(_ key: Int64) {
    slots.prefetchSlotPair(home(key))
  }

  /// Adds the keys `key(i)` → i for `count..<n` (none present yet): the same table as
  /// `insert` one by one, sized once, each key's slot requested a few keys ahead (the
  /// cache misses overlap).
  mutating func insertDense(upTo n: Int, _ key: (Int) -> Int64) {
    if count >= n { return }
    precondition(n <= Int(Int32.max), "IntKeyTable values are row ids")
    reserveCapacity(n)
    let ahead = 16
    for i in count..<min(count + ahead, n) { prefetch(key(i)) }
    var i = count
    while i < n {
      if i + ahead < n { prefetch(key(i + ahead)) }
      let k = key(i)
      var j = home(k)
      while slots[j].value >= 0 {
        precondition(slots[j].key != k, "IntKeyTable: duplicate key")
        j = next(j)
      }
      slots[j] = Slot(key: k, value: Int32(i))
      i += 1
    }
    count = n
  }

  /// Adds a key not present yet.
  mutating func insert(_ key: Int64, _ value: Int32) {
    precondition(value >= 0, "IntKeyTable values are row ids")
    if (count + 1) * 3 > slots.count * 2 { rehash(Self.slotsFor(2 * (count + 1))) }
    var i = home(key)
    while slots[i].value >= 0 {
      precondition(slots[i].key != key, "IntKeyTable: duplicate key")
      i = next(i)
    }
    slots[i] = Slot(key: key, value: value)
    count += 1
  }

  /// The number of slots (tests).
  var slotCount: Int { slots.count }
}

// MARK: - Images (V2Image.swift): the tables copied whole, checked on the way in so
// that no lookup of a loaded table can run off its storage or loop forever.

extension KeyBytesTable {
  func writeImage(to w: inout ImageWriter) {
    w.tag("keys")
    w.bool(digitRuns)
    w.i64(Int64(count))
    w.array(slots)
    w.array(arena)
  }

  /// A table `writeImage` wrote, whose ids all lie in `0..<ids`.
  static func loadImage(from r: inout ImageReader, ids: Int, digitRuns: Bool) throws(DecodeError)
    -> KeyBytesTable
  {
    try r.expect("keys")
    guard try r.bool() == digitRuns else {
      throw DecodeError(description: "V2 image: key table of another kind")
    }
    let count = try r.count(max: KernelImageLimits.arrayCountMax)
    let slots = try r.array(of: Slot.self)
    let arena = try r.array(of: UInt8.self, maxCount: Int(UInt32.max))
    // A power of two of at least 16 slots, one at least empty (a probe ends), the
    // occupied ones as many as the count, each with an id in range and a well-formed key.
    guard slots.count >= 16, slots.count & (slots.count - 1) == 0, count < slots.count else {
      throw DecodeError(description: "V2 image: key table of \(slots.count) slots for \(count) keys")
    }
    var occupied = 0
    var bad = false
    arena.withUnsafeBytes { a in
      slots.withUnsafeBufferPointer { slots in
        for s in slots where s.meta != 0 {
          occupied += 1
          if s.id < 0 || Int(s.id) >= ids { bad = true }
          let length = s.meta & 0xFF
          if length == 0xFF {
            guard s.k1 <= UInt64(a.count), Int(s.k1) + 8 <= a.count else {
              bad = true
              continue
            }
            let n = Int(UInt32(littleEndian: a.loadUnaligned(fromByteOffset: Int(s.k1), as: UInt32.self)))
            if n > a.count - Int(s.k1) - 8 { bad = true }
          } else if length == 0 || Int(length) > inlineMax + 1 {
            bad = true
          }
        }
      }
    }
    guard !bad, occupied == count else {
      throw DecodeError(description: "V2 image: key table slots do not hold \(count) well-formed keys")
    }
    var t = KeyBytesTable(digitRuns: digitRuns)
    t.slots = slots
    t.mask = slots.count - 1
    t.arena = arena
    t.count = count
    return t
  }
}

extension IntKeyTable {
  func writeImage(to w: inout ImageWriter) {
    w.tag("ints")
    w.i64(Int64(count))
    w.array(slots)
  }

  /// A table `writeImage` wrote, whose values all lie in `0..<values`.
  static func loadImage(from r: inout ImageReader, values: Int) throws(DecodeError) -> IntKeyTable {
    try r.expect("ints")
    let count = try r.count(max: KernelImageLimits.arrayCountMax)
    let slots = try r.array(of: Slot.self)
    guard slots.count >= slotsMin, slots.count <= slotsMax, count < slots.count else {
      throw DecodeError(description: "V2 image: int table of \(slots.count) slots for \(count) keys")
    }
    // One branch-free pass over the slots (millions: the position table).
    let (occupied, top) = slots.withUnsafeBufferPointer { b -> (Int, Int32) in
      var n = 0
      var top: Int32 = -1
      for s in b {
        n &+= s.value >= 0 ? 1 : 0
        top = max(top, s.value)
      }
      return (n, top)
    }
    guard Int(top) < values, occupied == count else {
      throw DecodeError(description: "V2 image: int table slots do not hold \(count) keys in range")
    }
    var t = IntKeyTable()
    t.slots = slots
    t.size = UInt64(slots.count)
    t.count = count
    return t
  }
}

extension IntKeyTable {
  /// The slots as their values alone, for a table whose keys follow from its values
  /// (the position index: a position's key is its account and security): each slot's
  /// value + 1 (0: empty) as a varint, in blocks (V2ImageVarints.swift). ~3 bytes a slot
  /// instead of 12; the keys are read back from the rows.
  func writeImageValues(to w: inout ImageWriter) {
    w.tag("intvalues")
    w.i64(Int64(count))
    w.i64(Int64(slots.count))
    var v = V2VarintWriter()
    for s in slots {
      v.putUnsigned(UInt64(Int64(s.value) + 1))
      v.endRow(to: &w)
    }
    v.flush(to: &w)
  }

  /// A table `writeImageValues` wrote, whose values all lie in `0..<values`, the key of
  /// value `i` being `key(i)`.
  static func loadImageValues(from r: inout ImageReader, values: Int, key: (Int32) -> Int64)
    throws(DecodeError) -> IntKeyTable
  {
    try r.expect("intvalues")
    let count = try r.count(max: KernelImageLimits.arrayCountMax)
    var v = try V2VarintReader(from: &r, maxRows: KernelImageLimits.arrayCountMax)
    let n = v.rowsLeft
    guard n >= slotsMin, n <= slotsMax, count < n, values <= Int(Int32.max) else {
      throw DecodeError(description: "V2 image: int table of \(n) slots for \(count) keys")
    }
    var slots: [Slot] = []
    slots.reserveCapacity(v.reserveHint)
    var occupied = 0
    while v.rowsLeft > 0 {
      try v.beginRow(from: &r)
      let u = try v.unsigned()
      guard u <= UInt64(values) else {
        throw DecodeError(description: "V2 image: int table value \(u) beyond \(values) rows")
      }
      if u == 0 {
        slots.append(Slot(key: 0, value: -1))
      } else {
        let id = Int32(u - 1)
        slots.append(Slot(key: key(id), value: id))
        occupied += 1
      }
    }
    try v.end()
    guard occupied == count else {
      throw DecodeError(description: "V2 image: int table slots do not hold \(count) keys")
    }
    var t = IntKeyTable()
    t.slots = slots
    t.size = UInt64(slots.count)
    t.count = count
    return t
  }
}

extension KeyBytesTable {
  /// Every key sits in its slot (at most 16 bytes) with salt 0: `writeImageIds` can
  /// write the table (the account table, whose keys are the accounts' ids).
  var keysInlineUnsalted: Bool {
    arena.isEmpty
      && slots.withUnsafeBufferPointer { b in
        !b.contains { $0.meta != 0 && ($0.meta >> 8 != 0 || $0.meta & 0xFF == 0xFF) }
      }
  }

  /// The slots as their ids alone (id + 1, 0: empty) as varints in blocks
  /// (V2ImageVarints.swift): ~2 bytes a slot instead of 24; the keys are read back
  /// from the rows. Only when `keysInlineUnsalted`.
  func writeImageIds(to w: inout ImageWriter) {
    precondition(keysInlineUnsalted, "KeyBytesTable: ids alone only for inline keys")
    w.tag("keyids")
    w.bool(digitRuns)
    w.i64(Int64(count))
    w.i64(Int64(slots.count))
    var v = V2VarintWriter()
    for s in slots {
      v.putUnsigned(s.meta == 0 ? 0 : UInt64(Int64(s.id) + 1))
      v.endRow(to: &w)
    }
    v.flush(to: &w)
  }

  /// A table `writeImageIds` wrote, whose ids all lie in `0..<ids`, the key of id `i`
  /// being `key(i)` (of at most 16 bytes).
  static func loadImageIds(from r: inout ImageReader, ids: Int, digitRuns: Bool, key: (Int32) -> String)
    throws(DecodeError) -> KeyBytesTable
  {
    try r.expect("keyids")
    guard try r.bool() == digitRuns else {
      throw DecodeError(description: "V2 image: key table of another kind")
    }
    let count = try r.count(max: KernelImageLimits.arrayCountMax)
    var v = try V2VarintReader(from: &r, maxRows: 1 << 40)
    let n = v.rowsLeft
    guard n >= 16, n & (n - 1) == 0, count < n, ids <= Int(Int32.max) else {
      throw DecodeError(description: "V2 image: key table of \(n) slots for \(count) keys")
    }
    var slots: [Slot] = []
    slots.reserveCapacity(v.reserveHint)
    var occupied = 0
    while v.rowsLeft > 0 {
      try v.beginRow(from: &r)
      let u = try v.unsigned()
      guard u <= UInt64(ids) else {
        throw DecodeError(description: "V2 image: key table id \(u) beyond \(ids) rows")
      }
      if u == 0 {
        slots.append(Slot(k0: 0, k1: 0, id: -1, meta: 0))
        continue
      }
      let id = Int32(u - 1)
      var text = key(id)
      let slot = text.withUTF8 { b -> Slot? in
        guard b.count <= inlineMax else { return nil }
        let (k0, k1) = words(UnsafeRawBufferPointer(b))
        return Slot(k0: k0, k1: k1, id: id, meta: UInt32(b.count + 1))
      }
      guard let slot else { throw DecodeError(description: "V2 image: key of id \(id) beyond 16 bytes") }
      slots.append(slot)
      occupied += 1
    }
    try v.end()
    guard occupied == count else {
      throw DecodeError(description: "V2 image: key table slots do not hold \(count) keys")
    }
    var t = KeyBytesTable(digitRuns: digitRuns)
    t.slots = slots
    t.mask = n - 1
    t.count = count
    return t
  }
}
