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
// The same processes grow their heaps 32 MiB at a time (`padHeapTop`, glibc's
// M_TOP_PAD) where a thread's heap grew by what each allocation needed, one `mprotect`
// a few hundred KB. An `mprotect` takes the address space's lock for writing and waits
// for V1's page warmer's `madvise` (KernelV1 PageWarmer.swift) to end, and every page
// fault of the process waits behind it: the opening state's builder and the event
// reader stalled 20-50 ms so on the 1M-account day (perf sched; `strace -c`: 226
// `mprotect`s, 78 ms, against 110 and 0.4 ms; V1's opening phase median 0.30 -> 0.24 s,
// faster in 9 of 10 alternated pairs, docs/PERFORMANCE.md, twenty-fifth session).
// Untouched room costs address space, not memory: the peak RSS did not move. Set with
// `mallopt`, not a tunable: glibc 2.36 rewrites GLIBC_TUNABLES in place as it reads it,
// keeping the first entry only, so a second tunable would not reach the children.
import Foundation

enum HugePages {
  static let tunable = "glibc.malloc.hugetlb=1"
  /// Set before the re-execution: never execute again (a setuid start, where glibc drops
  /// GLIBC_TUNABLES, would otherwise loop).
  static let marker = "TALLY_HUGE_PAGES_STARTED"

  /// Set before a cluster node executes itself again without the tunable.
  static let droppedMarker = "TALLY_HUGE_PAGES_DROPPED"

  /// Cluster nodes (and `cluster bench-replica`, which stands for one) run without huge
  /// pages: a replica's heap grows and shrinks with every batch's buffers (fetch replies,
  /// effect records, votes), and with the heap advised huge each regrowth zeroes 2 MiB
  /// pages. Measured on the 1M-event day (`tally cluster bench`, two alternated rounds):
  /// 182,132 and 184,802 voted events/s without, 102,683 and 138,704 with; the nodes'
  /// CPU 10.3 and 9.9 s against 17.4 and 12.9 s (perf: `clear_page_erms` was ~70% of a
  /// v2 replica's samples). `tally run` and `tally bench` keep them (+14-24% there).
  /// A cluster's clients too (`tally submit`, and `cluster bench`, which is one): they
  /// send batches of megabytes, each copied into buffers that were fresh pages, huge
  /// ones with the tunable (~30,000 faults in the bench's process while the 1M-event
  /// day voted, on the two cores the nodes share; docs/PERFORMANCE.md, thirty-second
  /// session).
  static func configure(arguments: [String]) {
    let command = arguments.dropFirst().first ?? ""
    let sub = arguments.dropFirst(2).first ?? ""
    if ["sequencer", "replica", "voter", "submit"].contains(command)
      || (command == "cluster" && ["bench-replica", "bench"].contains(sub))
    {
      disableByReexecution()
      NodeHeap.keepFreedMemory()
    } else {
      enableByReexecution()
      padHeapTop()
    }
  }

  /// Bytes a heap grows by beyond what an allocation needs (glibc's M_TOP_PAD).
  static let heapTopPadBytes: Int32 = 32 << 20
  /// malloc.h's option number (glibc ABI): M_TOP_PAD.
  static let optionTopPad: Int32 = -2

  /// Sets `heapTopPadBytes` (`GlibcMalloc.set`, NodeHeap.swift).
  static func padHeapTop() { GlibcMalloc.set(optionTopPad, heapTopPadBytes) }

  /// Executes this program again without the tunable when it inherited it (a node that
  /// `cluster up` started); returns when it did not.
  static func disableByReexecution() {
    guard let value = getenv("GLIBC_TUNABLES") else { return }
    let current = String(cString: value)
    guard current.split(separator: ":").contains(where: { $0 == tunable }), getenv(droppedMarker) == nil
    else {
      return
    }
    let rest = current.split(separator: ":").filter { $0 != tunable }.joined(separator: ":")
    if rest.isEmpty { unsetenv("GLIBC_TUNABLES") } else { setenv("GLIBC_TUNABLES", rest, 1) }
    setenv(droppedMarker, "1", 1)
    execv("/proc/self/exe", CommandLine.unsafeArgv)
  }

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
