// Cluster nodes keep the memory they free for their next batches. Every batch a node
// handles comes in and goes out in buffers of megabytes (a replica's fetch replies and
// effect records, the voter's fetched records, the sequencer's journal writes); glibc
// serves those from fresh mmap'd pages and trims its heap top back to the OS as soon as
// they are freed, so each batch's bytes landed in pages the kernel had to zero first.
// perf of the cluster at full rate (docs/PERFORMANCE.md, eighth session): the voter's
// samples were ~90% `clear_page_erms`. With the thresholds below, buffers under 32 MiB
// come from the heap and freed memory stays there for the next batch: a node's resident
// size settles at its peak working set instead of following each batch.
import Foundation

enum NodeHeap {
  /// glibc's largest mmap threshold (4 MiB × sizeof(long)): buffers below it come from the heap.
  static let mmapThresholdBytes: Int32 = 32 << 20
  /// Freed memory at the heap's top is returned to the OS only beyond this.
  static let trimThresholdBytes: Int32 = 1 << 30
  /// malloc.h's option numbers (glibc ABI): M_TRIM_THRESHOLD, M_MMAP_THRESHOLD.
  static let optionTrimThreshold: Int32 = -1
  static let optionMmapThreshold: Int32 = -3

  /// Sets the two thresholds through glibc's `mallopt`, which Swift's Glibc module does
  /// not export (malloc.h). Elsewhere (no such symbol) nothing changes.
  static func keepFreedMemory() {
    guard let symbol = dlsym(nil, "mallopt") else { return }
    typealias MallOpt = @convention(c) (Int32, Int32) -> Int32
    let mallopt = unsafeBitCast(symbol, to: MallOpt.self)
    _ = mallopt(optionMmapThreshold, mmapThresholdBytes)
    _ = mallopt(optionTrimThreshold, trimThresholdBytes)
  }
}
