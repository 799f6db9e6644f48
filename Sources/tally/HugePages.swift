// Huge pages for the heap. The engine's tables are hundreds of MB read at random (a
// trade touches a trade-id slot, two account slots, two positions and their lots); with
// 4 KiB pages nearly every such read also misses the TLB, and under virtualisation a
// page walk costs as much as the miss itself (perf: a prefetch of the next trade's slots
// stalled ~400 ns on its page walk). glibc's `glibc.malloc.hugetlb=1` tunable has malloc
// advise the kernel to back its memory with transparent huge pages (2 MiB). A tunable is
// read only when a process starts, so `tally` sets it and executes itself again, once,
// before doing anything else. Measured (docs/PERFORMANCE.md, 2026-12-03 morning): the
// 1M-trade day's apply loop 14% faster in `tally run`, the engine-only loop of `tally
// bench` +14-24% (medians of alternated runs); outputs are the same bytes (memory
// placement reaches no output).
// `TALLY_HUGE_PAGES=0` turns it off; where the kernel's THP mode is `never` the advice
// does nothing.
//
// The same re-execution keeps freed memory in the heap for reuse: `mmap_max=0` has malloc
// take even its largest blocks from the heap (not from mmap, which gives them back to the
// kernel on free) and the high `trim_threshold` keeps the heap from shrinking. A run of
// the 1M-account day frees ~300 MB it read or built on the way (the holdings file, the
// parsed holdings) before it needs ~300 MB more (the day's trades, lots, indexes): taken
// again from the heap, those pages are not faulted in and zeroed a second time, which on
// this project's virtual machines costs 0.3-2.3 s a GB. Measured (docs/PERFORMANCE.md,
// 2026-12-03): `tally run` median 4.72 s → 4.02 s, system time 1.06 s → 0.47 s, peak RSS
// +1%. A process's resident memory then stays at its high-water mark (a replica's or the
// voter's peak, bounded by their limits) rather than shrinking after a peak.
import Foundation

enum HugePages {
  /// 64 GiB: more than any heap here shrinks from.
  static let trimThresholdBytes = 1 << 36
  static let tunable =
    "glibc.malloc.hugetlb=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=\(trimThresholdBytes)"
  /// Set before the re-execution: never execute again (a setuid start, where glibc drops
  /// GLIBC_TUNABLES, would otherwise loop).
  static let marker = "TALLY_HUGE_PAGES_STARTED"

  /// Executes this program again with the tunable set, unless it is set already, was
  /// turned off, or this process is that re-execution. Returns when it does not.
  static func enableByReexecution() {
    if let off = getenv("TALLY_HUGE_PAGES"), String(cString: off) == "0" { return }
    if getenv(marker) != nil { return }
    let current = getenv("GLIBC_TUNABLES").map { String(cString: $0) } ?? ""
    if current.contains("glibc.malloc.hugetlb") { return }
    setenv("GLIBC_TUNABLES", current.isEmpty ? tunable : current + ":" + tunable, 1)
    setenv(marker, "1", 1)
    execv("/proc/self/exe", CommandLine.unsafeArgv)
    // Not executed (no /proc, say): carry on with normal pages and say nothing; the
    // children this process starts inherit the tunable.
  }

  /// What this process runs with, for benchmark reports: `on (THP madvise)`,
  /// `off (THP madvise)`, or `advised, but THP never` (the kernel ignores the advice).
  static func state() -> String {
    let advised =
      getenv("GLIBC_TUNABLES").map { String(cString: $0).contains("glibc.malloc.hugetlb=1") } ?? false
    let modes =
      (try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/enabled", encoding: .utf8)) ?? ""
    // The file lists the modes with the current one in brackets: `always [madvise] never`.
    let mode =
      modes.split(separator: "[").dropFirst().first?.split(separator: "]").first.map(String.init) ?? "unknown"
    if advised && mode == "never" { return "advised, but THP never" }
    return (advised ? "on" : "off") + " (THP \(mode))"
  }
}
