// Cluster nodes keep the memory they free for their next batches. Every batch a node
// handles comes in and goes out in buffers of megabytes (a replica's fetch replies and
// effect records, the voter's fetched records, the sequencer's journal writes); glibc
// serves those from fresh mmap'd pages and trims its heap top back to the OS as soon as
// they are freed, so each batch's bytes landed in pages the kernel had to zero first.
// perf of the cluster at full rate (docs/PERFORMANCE.md, eighth session): the voter's
// samples were ~90% `clear_page_erms`. With the thresholds below, buffers under 32 MiB
// come from the heap and freed memory stays there for the next batch: a node's resident
// size settles at its peak working set instead of following each batch.
// One arena: a node's loop runs on a thread of its own, whose glibc arena is a chain
// of 64 MiB heaps that glibc unmaps as they empty, whatever the trim threshold; with
// batches of megabytes in flight (a voter's 32 fetched batches, a replica's recent
// effect records) the pages came back zeroed again and again (perf of the 1M-event
// day: `clear_page` ~15% of a V1 replica's samples, ~25% of the voter's). In the one
// main arena the thresholds hold: alternated, the independent client's voted rate
// went 324k → 348k, 338k → 363k, 368k → 376k events/s, the nodes' CPU 5.1-5.6 → 4.5 s
// (docs/PERFORMANCE.md, fourteenth session). The nodes' threads rarely allocate at
// once (the loop, ZeroMQ's I/O thread, RocksDB's), so one arena's lock costs nothing seen.
import Foundation

enum NodeHeap {
  /// glibc's largest mmap threshold (4 MiB × sizeof(long)): buffers below it come from the heap.
  static let mmapThresholdBytes: Int32 = 32 << 20
  /// Freed memory at the heap's top is returned to the OS only beyond this.
  static let trimThresholdBytes: Int32 = 1 << 30
  /// malloc.h's option numbers (glibc ABI): M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX.
  static let optionTrimThreshold: Int32 = -1
  static let optionMmapThreshold: Int32 = -3
  static let optionArenaMax: Int32 = -8

  /// Sets the two thresholds and the one arena (`GlibcMalloc.set`).
  static func keepFreedMemory() {
    GlibcMalloc.set(optionMmapThreshold, mmapThresholdBytes)
    GlibcMalloc.set(optionTrimThreshold, trimThresholdBytes)
    GlibcMalloc.set(optionArenaMax, 1)
  }
}

/// glibc's `mallopt`, which Swift's Glibc module does not export (malloc.h): looked up
/// by name; elsewhere (no such symbol) nothing changes.
enum GlibcMalloc {
  static func set(_ option: Int32, _ value: Int32) {
    guard let symbol = dlsym(nil, "mallopt") else { return }
    typealias MallOpt = @convention(c) (Int32, Int32) -> Int32
    _ = unsafeBitCast(symbol, to: MallOpt.self)(option, value)
  }
}
