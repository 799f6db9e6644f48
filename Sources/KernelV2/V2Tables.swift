// V2's own lookup tables (not KernelAPI's generic FastIndex): concrete, non-generic
// open addressing, so the hot path needs no generic metadata across modules.
// - `KeyBytesTable`: identifier bytes (+ an optional Int32 salt, the day for trade
//   ids) → dense id. A slot packs the full 64-bit hash, the id and the arena offset of
//   the key's entry (length, salt, bytes): a lookup costs about two cache misses.
// - `IntKeyTable`: Int64 key → Int32 id.
// Neither is ever iterated: their order cannot reach state or outputs.

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
  /// One slot: the key's full hash (0: empty), its id, and where its entry starts in
  /// the arena. One cache line holds 4 slots; a probe reads one slot, then one entry.
  struct Slot: Sendable {
    var hash: UInt64
    var id: Int32
    var start: UInt32
  }
  private var slots: [Slot] = Array(repeating: Slot(hash: 0, id: -1, start: 0), count: 16)
  private var mask = 15
  /// Entries: length (u32 LE), salt (i32 LE), then the key's bytes.
  private var arena: [UInt8] = []
  private(set) var count = 0

  init() {}

  mutating func reserveCapacity(_ n: Int) {
    var cap = 16
    while cap * 2 < n * 3 { cap *= 2 }
    if cap > slots.count { rehash(cap) }
  }

  private mutating func rehash(_ capacity: Int) {
    let old = slots
    slots = Array(repeating: Slot(hash: 0, id: -1, start: 0), count: capacity)
    mask = capacity - 1
    for slot in old where slot.hash != 0 {
      var i = Int(truncatingIfNeeded: slot.hash) & mask
      while slots[i].hash != 0 { i = (i + 1) & mask }
      slots[i] = slot
    }
  }

  @inline(__always)
  private func entryEquals(_ start: UInt32, _ key: UnsafeRawBufferPointer, _ salt: Int32) -> Bool {
    arena.withUnsafeBytes { a in
      let at = Int(start)
      let length = Int(UInt32(littleEndian: a.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
      guard length == key.count,
        Int32(littleEndian: a.loadUnaligned(fromByteOffset: at + 4, as: Int32.self)) == salt
      else { return false }
      return length == 0 || memcmpEqual(a.baseAddress! + at + 8, key.baseAddress!, length)
    }
  }

  @inline(__always)
  func find(_ key: UnsafeRawBufferPointer, salt: Int32 = 0) -> Int32? {
    let h = v2HashBytes(key, salt: salt)
    return slots.withUnsafeBufferPointer { slots in
      var i = Int(truncatingIfNeeded: h) & mask
      while true {
        let slot = slots[i]
        if slot.hash == 0 { return nil }
        if slot.hash == h && entryEquals(slot.start, key, salt) { return slot.id }
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
    if (count + 1) * 3 > slots.count * 2 { rehash(slots.count * 2) }
    precondition(arena.count + key.count + 8 < Int(UInt32.max), "KeyBytesTable: arena full")
    let id = Int32(count)
    let h = v2HashBytes(key, salt: salt)
    var i = Int(truncatingIfNeeded: h) & mask
    while slots[i].hash != 0 { i = (i + 1) & mask }
    slots[i] = Slot(hash: h, id: id, start: UInt32(arena.count))
    withUnsafeBytes(of: UInt32(key.count).littleEndian) { arena.append(contentsOf: $0) }
    withUnsafeBytes(of: salt.littleEndian) { arena.append(contentsOf: $0) }
    arena.append(contentsOf: key)
    count += 1
    return id
  }

  @discardableResult
  mutating func insert(_ key: String, salt: Int32 = 0) -> Int32 {
    var k = key
    return k.withUTF8 { insert(UnsafeRawBufferPointer($0), salt: salt) }
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
  /// Key and value side by side: one cache miss per probe.
  struct Slot: Sendable {
    var key: Int64
    var value: Int32
  }
  private var slots: [Slot] = Array(repeating: Slot(key: 0, value: -1), count: 16)
  private var mask = 15
  private(set) var count = 0

  init() {}

  mutating func reserveCapacity(_ n: Int) {
    var cap = 16
    while cap * 2 < n * 3 { cap *= 2 }
    if cap > slots.count { rehash(cap) }
  }

  private mutating func rehash(_ capacity: Int) {
    let old = slots
    slots = Array(repeating: Slot(key: 0, value: -1), count: capacity)
    mask = capacity - 1
    for slot in old where slot.value >= 0 {
      var i = Int(truncatingIfNeeded: v2Mix(UInt64(bitPattern: slot.key))) & mask
      while slots[i].value >= 0 { i = (i + 1) & mask }
      slots[i] = slot
    }
  }

  @inline(__always)
  subscript(key: Int64) -> Int32? {
    slots.withUnsafeBufferPointer { slots in
      var i = Int(truncatingIfNeeded: v2Mix(UInt64(bitPattern: key))) & mask
      while true {
        let slot = slots[i]
        if slot.value < 0 { return nil }
        if slot.key == key { return slot.value }
        i = (i + 1) & mask
      }
    }
  }

  /// Adds a key not present yet.
  mutating func insert(_ key: Int64, _ value: Int32) {
    precondition(value >= 0, "IntKeyTable values are row ids")
    if (count + 1) * 3 > slots.count * 2 { rehash(slots.count * 2) }
    var i = Int(truncatingIfNeeded: v2Mix(UInt64(bitPattern: key))) & mask
    while slots[i].value >= 0 {
      precondition(slots[i].key != key, "IntKeyTable: duplicate key")
      i = (i + 1) & mask
    }
    slots[i] = Slot(key: key, value: value)
    count += 1
  }
}
