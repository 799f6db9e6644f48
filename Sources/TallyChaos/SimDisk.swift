// The simulated nodes' disks: a `StateStore` in memory whose keys are kept sorted, so
// that a prefix scan (every restart's verified restore, the logs) is a binary search
// and a walk, not a sort of every key. Same contract as InMemoryStateStore.
import TallyEngine

final class SimDisk: StateStore {
  private var keys: [[UInt8]] = []
  private var values: [[UInt8]] = []

  /// The index of the first key not below `key`.
  private func lowerBound(_ key: [UInt8]) -> Int {
    var lo = 0
    var hi = keys.count
    while lo < hi {
      let mid = (lo + hi) / 2
      if keys[mid].lexicographicallyPrecedes(key) { lo = mid + 1 } else { hi = mid }
    }
    return lo
  }

  func value(for key: [UInt8]) throws -> [UInt8]? {
    let i = lowerBound(key)
    return i < keys.count && keys[i] == key ? values[i] : nil
  }

  func commit(_ batch: StoreBatch, sync: Bool) throws {
    for key in batch.deletes {
      let i = lowerBound(key)
      if i < keys.count && keys[i] == key {
        keys.remove(at: i)
        values.remove(at: i)
      }
    }
    batch.forEachPut { k, v in
      let key = Array(k)
      let i = lowerBound(key)
      if i < keys.count && keys[i] == key {
        values[i] = Array(v)
      } else {
        keys.insert(key, at: i)
        values.insert(Array(v), at: i)
      }
    }
  }

  func scan(prefix: [UInt8], _ body: ([UInt8], [UInt8]) throws -> Bool) throws {
    var i = lowerBound(prefix)
    while i < keys.count && keys[i].starts(with: prefix) {
      guard try body(keys[i], values[i]) else { return }
      i += 1
    }
  }
}
