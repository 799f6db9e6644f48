// Lookup indexes from a key to a dense row id: open addressing with linear probing
// and a cheap multiplicative hash. Swift's Dictionary hashes with SipHash and a
// per-process seed; these indexes are on the hot path of every trade, never
// iterated, and need no seed (their order never reaches state or output).
// Everything is @inlinable: the users are in other modules (kernels, the parser), and
// unspecialised generic lookups cost a third of V1's per-trade time (measured).

public protocol FastHashKey: Equatable {
  /// A well-mixed 64-bit hash; equal keys hash equally.
  var fastHash: UInt64 { get }
  /// Any value, stored in empty slots.
  static var placeholder: Self { get }
}

@inlinable @inline(__always) public func mix64(_ x: UInt64) -> UInt64 {
  var z = x &* 0x9e37_79b9_7f4a_7c15
  z ^= z >> 32
  z &*= 0xd6e8_feb8_6659_fd93
  z ^= z >> 29
  return z
}

extension Int64: FastHashKey {
  @inlinable @inline(__always) public var fastHash: UInt64 { mix64(UInt64(bitPattern: self)) }
  @inlinable public static var placeholder: Int64 { 0 }
}

extension Int32: FastHashKey {
  @inlinable @inline(__always) public var fastHash: UInt64 { mix64(UInt64(UInt32(bitPattern: self))) }
  @inlinable public static var placeholder: Int32 { 0 }
}

extension Ident: FastHashKey {
  /// Over the UTF-8 bytes, eight at a time.
  @inlinable @inline(__always) public var fastHash: UInt64 {
    var text = self.text
    return text.withUTF8 { Self.fastHash(of: UnsafeRawBufferPointer($0)) }
  }

  /// The hash an identifier with these UTF-8 bytes has: lookups straight from
  /// input bytes, with no String made.
  @inlinable @inline(__always) public static func fastHash(of bytes: UnsafeRawBufferPointer) -> UInt64 {
    var h: UInt64 = UInt64(bytes.count) &* 0x9e37_79b9_7f4a_7c15
    var i = 0
    while i + 8 <= bytes.count {
      h = mix64(h ^ bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
      i += 8
    }
    var tail: UInt64 = 0
    var shift: UInt64 = 0
    while i < bytes.count {
      tail |= UInt64(bytes[i]) << shift
      shift += 8
      i += 1
    }
    return mix64(h ^ tail ^ 0x5851_f42d_4c95_7f2d)
  }

  /// True when this identifier's UTF-8 bytes are `bytes`.
  @inlinable @inline(__always) public func hasBytes(_ bytes: UnsafeRawBufferPointer) -> Bool {
    let utf8 = text.utf8
    guard utf8.count == bytes.count else { return false }
    if let equal = utf8.withContiguousStorageIfAvailable({ $0.elementsEqual(bytes) }) { return equal }
    return utf8.elementsEqual(bytes)
  }
  @inlinable public static var placeholder: Ident { Ident("") }
}

public struct FastIndex<Key: FastHashKey>: ExpressibleByDictionaryLiteral {
  // Keys are values (Ident is a String): the index is Sendable when its keys are.
  /// Key and value side by side: one cache line per probe, not two.
  @usableFromInline struct Slot {
    @usableFromInline var key: Key
    /// -1: empty slot.
    @usableFromInline var value: Int32
    @inlinable init(key: Key, value: Int32) {
      self.key = key
      self.value = value
    }
  }
  @usableFromInline var slots: [Slot] = []
  @usableFromInline var mask = 0
  @usableFromInline var storedCount = 0
  @inlinable public var count: Int { storedCount }

  @inlinable public init() { allocate(16) }

  @inlinable public init(dictionaryLiteral elements: (Key, Int32)...) {
    allocate(16)
    for (k, v) in elements { self[k] = v }
  }

  @inlinable mutating func allocate(_ capacity: Int) {
    precondition(capacity > 0 && capacity & (capacity - 1) == 0, "index capacity must be a power of two")
    slots = [Slot](repeating: Slot(key: .placeholder, value: -1), count: capacity)
    mask = capacity - 1
    storedCount = 0
  }

  @inlinable public mutating func reserveCapacity(_ n: Int) {
    var capacity = 16
    while capacity * 7 < n * 10 { capacity *= 2 }
    if capacity > slots.count { grow(to: capacity) }
  }

  /// Moves every key into a table of `capacity` slots. Inlinable like the rest: left
  /// generic (it was), a rehash of the position directory's 600k overflow keys looked
  /// up type metadata per key and stalled a replica for 20-40 ms (perf of the cluster,
  /// docs/PERFORMANCE.md, eighth session).
  @inlinable mutating func grow(to capacity: Int) {
    let old = slots
    let moved = storedCount
    allocate(capacity)
    let mask = self.mask
    slots.withUnsafeMutableBufferPointer { new in
      for slot in old where slot.value >= 0 {
        var i = Int(truncatingIfNeeded: slot.key.fastHash) & mask
        while new[i].value >= 0 { i = (i + 1) & mask }  // keys are distinct: no compare
        new[i] = slot
      }
    }
    storedCount = moved
  }

  @inlinable public subscript(key: Key) -> Int32? {
    get {
      var i = Int(truncatingIfNeeded: key.fastHash) & mask
      return slots.withUnsafeBufferPointer { slots in
        while true {
          let v = slots[i].value
          if v < 0 { return nil }
          if slots[i].key == key { return v }
          i = (i + 1) & mask
        }
      }
    }
    set {
      guard let newValue else { preconditionFailure("FastIndex does not remove keys") }
      precondition(newValue >= 0, "FastIndex values are row ids (>= 0)")
      let (i, found) = slotForInsert(key)
      if found {
        slots[i].value = newValue
      } else {
        slots[i] = Slot(key: key, value: newValue)
        storedCount += 1
      }
    }
  }

  /// The slot that holds `key` (found) or would take it (the first free slot of its
  /// probe sequence), after growing the table if one more key would overfill it.
  @inlinable mutating func slotForInsert(_ key: Key) -> (index: Int, found: Bool) {
    slotForInsert(key, hash: key.fastHash)
  }

  /// The same, with the key's `fastHash` known.
  @inlinable mutating func slotForInsert(_ key: Key, hash: UInt64) -> (index: Int, found: Bool) {
    if (storedCount + 1) * 10 > slots.count * 7 { grow(to: slots.count * 2) }
    var i = Int(truncatingIfNeeded: hash) & mask
    while true {
      if slots[i].value < 0 { return (i, false) }
      if slots[i].key == key { return (i, true) }
      i = (i + 1) & mask
    }
  }
}

extension FastIndex {
  /// Adds `key → value` unless `key` is there already (then returns false and changes
  /// nothing): one probe sequence where a lookup and then an insert took two.
  @inlinable public mutating func insertIfAbsent(_ key: Key, _ value: Int32) -> Bool {
    insertIfAbsent(key, hash: key.fastHash, value)
  }

  /// The same, with the key's `fastHash` known (`hash` must be it: a key hashed from
  /// its input bytes, not again from the key).
  @inlinable public mutating func insertIfAbsent(_ key: Key, hash: UInt64, _ value: Int32) -> Bool {
    precondition(value >= 0, "FastIndex values are row ids (>= 0)")
    let (i, found) = slotForInsert(key, hash: hash)
    if found { return false }
    slots[i] = Slot(key: key, value: value)
    storedCount += 1
    return true
  }

  /// The first slot a key with this hash is looked for in, read now. A caller with
  /// several independent lookups reads all their first slots before comparing keys, so
  /// the cache misses overlap instead of following one another.
  public struct Probe {
    @usableFromInline let slot: Int
    @usableFromInline let value: Int32
    @inlinable init(slot: Int, value: Int32) {
      self.slot = slot
      self.value = value
    }
  }

  @inlinable @inline(__always) public func probe(hash: UInt64) -> Probe {
    let i = Int(truncatingIfNeeded: hash) & mask
    return Probe(slot: i, value: slots[i].value)
  }

  /// The value of the key that `matches` picks out, from its first slot `probe`.
  @inlinable @inline(__always)
  public func find(_ probe: Probe, matches: (Key) -> Bool) -> Int32? {
    if probe.value < 0 { return nil }
    var i = probe.slot
    return slots.withUnsafeBufferPointer { slots in
      while true {
        let v = slots[i].value
        if v < 0 { return nil }
        if matches(slots[i].key) { return v }
        i = (i + 1) & mask
      }
    }
  }

  /// The value of the key that `hash` and `matches` pick out, without making the key:
  /// `hash` must be the key's `fastHash`.
  @inlinable @inline(__always)
  public func find(hash: UInt64, matches: (Key) -> Bool) -> Int32? {
    find(probe(hash: hash), matches: matches)
  }
}

extension FastIndex where Key == Ident {
  /// The value of the identifier whose UTF-8 bytes are `bytes`.
  @inlinable @inline(__always) public subscript(bytes bytes: UnsafeRawBufferPointer) -> Int32? {
    find(hash: Ident.fastHash(of: bytes)) { $0.hasBytes(bytes) }
  }
}

extension FastIndex: Sendable where Key: Sendable {}
extension FastIndex.Slot: Sendable where Key: Sendable {}
