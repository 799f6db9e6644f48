// A replica's effect log: the effect records of every journal batch it applied,
// committed with its votes at checkpoints (batches since the last checkpoint are in
// memory, and are produced again by the replay after a crash). The voter asks for a
// batch's records to explain a dissent and to publish the voted stream.
import KernelAPI
import TallyEngine

extension Replica {
  static func effectsKey(_ first: Int64) -> [UInt8] {
    [effectsPrefix] + (0..<8).map { UInt8(truncatingIfNeeded: UInt64(first) >> UInt64(56 - 8 * $0)) }
  }

  /// `last:i64 bytes` (the first seq is in the key).
  static func encodeEffects(_ e: (first: Int64, last: Int64, bytes: [UInt8])) -> [UInt8] {
    var w = ByteWriter(capacity: 8 + e.bytes.count)
    w.i64(e.last)
    w.raw(e.bytes)
    return w.bytes
  }

  /// The effect records of the batch starting at `first` that ends at `last`; nil
  /// when this replica has not applied it (or applied a different range).
  func effects(first: Int64, last: Int64) throws -> [UInt8]? {
    if let e = uncommittedEffects.first(where: { $0.first == first }) {
      return e.last == last ? e.bytes : nil
    }
    guard let stored = try store.value(for: Self.effectsKey(first)), stored.count >= 8 else { return nil }
    var r = ByteReader(Array(stored.prefix(8)))
    guard try r.i64() == last else { return nil }
    return Array(stored.dropFirst(8))
  }
}
