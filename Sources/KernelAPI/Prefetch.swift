// Software prefetch: a hint to start loading a cache line now, so that independent
// cache misses overlap instead of following one another (memory-level parallelism).
// On this project's machines a miss to main memory costs ~180 ns and eight
// independent ones cost ~22 ns each (docs/PERFORMANCE.md, "Memory-level parallelism"):
// a kernel that applies TRADEs in groups (`BusinessKernel.applyTrades`) can start
// every trade's loads of a group before it applies the first.
//
// A prefetch changes nothing observable: it never faults (an address out of range is
// not even formed here), never writes, and its only effect is time. It is LLVM's
// `llvm.prefetch` intrinsic, named directly (Swift has no spelling for it); the
// compiler emits one `prefetcht0` (x86-64) or `prfm pldl1keep` (arm64) instruction.

// `releasenone`: it frees no object, so the retain and release of an array's buffer
// around a prefetch of it can be dropped (not `readnone`: a call with no result and no
// effects would be deleted).
@_effects(releasenone)
@_silgen_name("llvm.prefetch.p0")
@usableFromInline func llvmPrefetch(
  _ address: UnsafeRawPointer, _ write: Int32, _ locality: Int32, _ cacheType: Int32)

extension Array {
  /// Starts loading the cache line of element `index` (for reading; kept in every
  /// cache level). Does nothing when `index` is out of range.
  @inlinable @inline(__always) public func prefetch(_ index: Int) {
    guard index >= 0 && index < count else { return }
    withUnsafeBufferPointer { llvmPrefetch(UnsafeRawPointer($0.baseAddress! + index), 0, 3, 1) }
  }
}

extension FastIndex {
  /// Starts loading the first slot a key with this hash is looked for in.
  @inlinable @inline(__always) public func prefetch(hash: UInt64) {
    slots.prefetch(Int(truncatingIfNeeded: hash) & mask)
  }
}

extension Array {
  /// Starts loading every cache line of element `index`: an element need not start a
  /// line (an array's elements follow its 32-byte header), and one that straddles two
  /// lines, prefetched by its first byte only, still misses on the second. Does nothing
  /// when `index` is out of range.
  @inlinable @inline(__always) public func prefetchWhole(_ index: Int) {
    guard index >= 0 && index < count else { return }
    withUnsafeBufferPointer {
      let start = UnsafeRawPointer($0.baseAddress! + index)
      let size = MemoryLayout<Element>.size
      var offset = 0
      while offset < size {
        llvmPrefetch(start + offset, 0, 3, 1)
        offset += 64
      }
      if size > 1 { llvmPrefetch(start + (size - 1), 0, 3, 1) }
    }
  }
}

extension FastIndex {
  /// `prefetch(hash:)` for the whole first slot and the one after it (a probe goes on
  /// to it when the first holds another key: ~1 lookup in 4 at the index's load).
  @inlinable @inline(__always) public func prefetchSlot(hash: UInt64) {
    let home = Int(truncatingIfNeeded: hash) & mask
    slots.prefetchWhole(home)
    slots.prefetchWhole((home + 1) & mask)
  }
}
