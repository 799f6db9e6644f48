// The state checksum: a sum, modulo 2^64 in each of two lanes, of a hash of every
// row (table tag, row id, canonical bytes). A sum does not depend on the order
// rows are visited and can be updated in O(changed rows): subtract a row's old
// hash, add its new one. The state digest replicas vote on is SHA-256 over it.
// It detects corruption and divergence; it is not meant to resist an adversary
// crafting collisions (CurveZMQ authenticates the nodes).

public struct RowHash: Sendable, Equatable {
  public var lane0: UInt64
  public var lane1: UInt64

  public static let zero = RowHash(lane0: 0, lane1: 0)

  public init(lane0: UInt64, lane1: UInt64) {
    self.lane0 = lane0
    self.lane1 = lane1
  }

  @inline(__always) static func mix(_ x: UInt64) -> UInt64 {
    // murmur3's 64-bit finalizer.
    var z = x
    z ^= z >> 33
    z &*= 0xff51_afd7_ed55_8ccd
    z ^= z >> 33
    z &*= 0xc4ce_b9fe_1a85_ec53
    z ^= z >> 33
    return z
  }

  /// The hash of one row.
  public init(table: UInt8, id: Int32, bytes: [UInt8]) {
    self = bytes.withUnsafeBytes { RowHash(table: table, id: id, raw: $0) }
  }

  /// The hash of one row whose bytes are `raw` (a row inside a larger buffer).
  public init(table: UInt8, id: Int32, raw: UnsafeRawBufferPointer) {
    var a: UInt64 = 0x9e37_79b9_7f4a_7c15 ^ UInt64(table) << 40 ^ UInt64(UInt32(bitPattern: id))
    var b: UInt64 = 0xd6e8_feb8_6659_fd93 ^ UInt64(UInt32(bitPattern: id)) << 8 ^ UInt64(table)
    var i = 0
    let n = raw.count
    while i + 8 <= n {
      let w = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))
      a = Self.mix(a ^ w) &* 0x0000_0100_0000_01b3
      b = Self.mix(b &+ w ^ 0x5851_f42d_4c95_7f2d)
      i += 8
    }
    var tail: UInt64 = UInt64(n) << 56
    var k = 0
    while i < n {
      tail |= UInt64(raw[i]) << UInt64(8 * k)
      i += 1
      k += 1
    }
    lane0 = Self.mix(a ^ tail)
    lane1 = Self.mix(b &+ tail &+ 0x1405_7b7e_f767_814f)
  }
}

public struct StateChecksum: Sendable, Equatable {
  public var lane0: UInt64 = 0
  public var lane1: UInt64 = 0
  public var rowCount: Int64 = 0

  public init() {}

  public init(lane0: UInt64, lane1: UInt64, rowCount: Int64) {
    self.lane0 = lane0
    self.lane1 = lane1
    self.rowCount = rowCount
  }

  public mutating func add(_ h: RowHash) {
    lane0 &+= h.lane0
    lane1 &+= h.lane1
    rowCount += 1
  }

  /// Replaces an existing row's hash.
  public mutating func replace(_ old: RowHash, with new: RowHash) {
    lane0 = lane0 &- old.lane0 &+ new.lane0
    lane1 = lane1 &- old.lane1 &+ new.lane1
  }

  public var encoded: [UInt8] {
    var w = ByteWriter(capacity: 24)
    w.i64(Int64(bitPattern: lane0))
    w.i64(Int64(bitPattern: lane1))
    w.i64(rowCount)
    return w.bytes
  }

  public init(decoding bytes: [UInt8]) throws(DecodeError) {
    var r = ByteReader(bytes)
    lane0 = UInt64(bitPattern: try r.i64())
    lane1 = UInt64(bitPattern: try r.i64())
    rowCount = try r.i64()
  }
}
