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
//
// Kept memory is reused only once it was first taken: until a node's heap reaches the
// day's high-water mark (a replica's recent effect records and its RocksDB memtable, the
// sequencer's recent journal batches), each new buffer still lands in fresh pages, and
// on this project's hosts a fresh page costs more than the bytes written to it (0.5-0.8
// GB/s). Counted with `perf record -e page-faults` over the voting of the 1M-event day:
// ~214,000 faults in the five nodes (sequencer ~52,000, replicas 45,000-63,000 each,
// mostly their effect records), ~0.85 GB of fresh pages. So a node first makes
// `[limits] heap_reserve_mib` of heap resident and frees it (`reserve`), once its state
// is open and before its loop starts: its batches then reuse those pages from the first
// event on (the `-XX:+AlwaysPreTouch` of a JVM service); the count fell to ~39,000.
// Not while it opens, on another thread: a V1 replica's opening then took the freed
// pages for its own tables, and its batches faulted as before (~45,000 pages each).
// Alternated benches: median 232,440 voted events/s against the base's 209,515, the
// nodes' CPU while voting ~0.4-1.0 s lower of ~7.5 (docs/PERFORMANCE.md, thirty-second
// session).
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

extension NodeHeap {
  /// Bytes the reserve takes at a time: under `mmapThresholdBytes`, so from the heap,
  /// where they stay once freed (`trimThresholdBytes`).
  static let reservePieceBytes = 8 << 20
  /// The largest reserve (`[limits] heap_reserve_mib` is checked against the same).
  static let reserveBytesMax = 1 << 40
  /// madvise(2)'s MADV_POPULATE_WRITE (Linux 5.14): pages made resident and writable in
  /// one call, as first writes would; where refused, one write a page does it.
  static let advicePopulateWrite: Int32 = 23

  /// What `reserve` did.
  struct Reserve: Sendable {
    var bytes: Int
    var seconds: Double
    var text: String {
      bytes == 0
        ? "heap reserve: none ([limits] heap_reserve_mib = 0)"
        : "heap reserve: \(bytes >> 20) MiB made resident in \(String(format: "%.2f", seconds)) s and freed for the batches to reuse ([limits] heap_reserve_mib)"
    }
  }

  /// Makes `bytes` of this process's heap resident, then frees it (in reverse, so the
  /// pieces rejoin one another): the kept memory later allocations are served from.
  /// Call after `keepFreedMemory` (else glibc would hand the pieces back at once).
  static func reserve(bytes: Int) -> Reserve {
    precondition(bytes >= 0 && bytes <= reserveBytesMax, "heap reserve of \(bytes) bytes")
    let clock = ContinuousClock()
    let started = clock.now
    var pieces: [UnsafeMutableRawPointer] = []
    pieces.reserveCapacity(bytes / reservePieceBytes + 1)
    var resident = 0
    while resident < bytes, let piece = malloc(reservePieceBytes) {
      populate(piece, bytes: reservePieceBytes)
      pieces.append(piece)
      resident += reservePieceBytes
    }
    for piece in pieces.reversed() { free(piece) }
    return Reserve(bytes: resident, seconds: (clock.now - started).seconds)
  }

  /// Makes the whole pages of `bytes` at `start` resident and writable.
  private static func populate(_ start: UnsafeMutableRawPointer, bytes: Int) {
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let first = (Int(bitPattern: start) + page - 1) & ~(page - 1)
    let end = (Int(bitPattern: start) + bytes) & ~(page - 1)
    if end > first, let aligned = UnsafeMutableRawPointer(bitPattern: first),
      madvise(aligned, end - first, advicePopulateWrite) == 0
    {
      return
    }
    var offset = 0
    while offset < bytes {
      start.storeBytes(of: 0, toByteOffset: offset, as: UInt8.self)
      offset += page
    }
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
