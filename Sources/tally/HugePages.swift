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
import Foundation

enum HugePages {
  static let tunable = "glibc.malloc.hugetlb=1"
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
    let advised = getenv("GLIBC_TUNABLES").map { String(cString: $0).contains(tunable) } ?? false
    let modes =
      (try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/enabled", encoding: .utf8)) ?? ""
    // The file lists the modes with the current one in brackets: `always [madvise] never`.
    let mode =
      modes.split(separator: "[").dropFirst().first?.split(separator: "]").first.map(String.init) ?? "unknown"
    if advised && mode == "never" { return "advised, but THP never" }
    return (advised ? "on" : "off") + " (THP \(mode))"
  }
}
