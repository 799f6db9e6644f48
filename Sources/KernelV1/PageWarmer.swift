// Pages mapped ahead of the writes, on another core. A kernel that has reserved room
// (for its opening state, or for the day: `BusinessKernel.reserveCapacity`) then writes
// it first-hand: on the 1M-account day ~200 MB of opening lots and positions, then
// ~200 MB of trade rows, slices, lots and new positions, every 2 MiB (a huge page)
// zeroed by the OS at its first write, on the kernel's thread. On this project's
// virtual machines that zeroing is slow and varies with the host (0.4 to 5 ms a MiB
// measured): about half of V1's apply loop. Here a background thread asks the OS to
// populate the reserved regions (`madvise(MADV_POPULATE_WRITE)`, Linux 5.14+: the pages
// are faulted in as by a write, but nothing is written), so that the kernel, filling
// them from the front, finds them mapped. It never reads or writes the memory: no
// byte of any state changes, whenever it runs; a region freed or reused meanwhile is
// populated to no effect (or the call fails, ignored). It reads no clock and no input:
// determinism is untouched. Each region is taken a slice at a time, all of them in
// turn, as a kernel fills them together. Regions under `minimumBytes` in all are left
// (tests make thousands of small kernels). `TALLY_PAGE_WARMER=0` turns it off.

#if canImport(Glibc)
  import Glibc

  public enum PageWarmer {
    /// Steps in which every region is populated (each step a 1/steps slice of each).
    static let steps = 64
    /// The most one `madvise` call populates. The call holds the address space's lock
    /// (read) while it zeroes: a thread that changes the address space meanwhile
    /// (malloc growing a thread's heap with `mprotect`, a `munmap`) waits for the call
    /// to end, and every page fault of the process waits behind that writer. Slices of
    /// 1/64 of a 200 MB region held it ~1-2 ms each; the opening state's builder
    /// lost 20-50 ms so (perf sched, twenty-fifth session).
    static let sliceBytesMax = 2 << 20
    /// `MADV_POPULATE_WRITE` (linux/mman.h; not in every libc's headers).
    static let populateWrite: Int32 = 23

    /// Whether warming is on (`TALLY_PAGE_WARMER` unset or not `0`).
    public static var enabled: Bool {
      guard let value = getenv("TALLY_PAGE_WARMER") else { return true }
      return String(cString: value) != "0"
    }

    /// Less than this in all is not worth a thread.
    public static let minimumBytes = 16 << 20

    /// Starts populating `regions` on a background thread and returns at once.
    /// `yielding`: the thread runs at the lowest priority (nice 19, Linux: its own), on
    /// what the other threads leave of the cores (see `Regions.yielding`).
    public static func warm(_ regions: [MemoryRegion], yielding: Bool = false) {
      warm(inTurn: [regions], yielding: yielding)
    }

    /// Starts populating `groups` on a background thread, one group after another
    /// (the order the kernel fills them in), the regions of a group together.
    /// `fromTheEnd`: the last group first, each from its end back, for memory the
    /// kernel fills faster than it is populated (an opening state): the two threads
    /// then meet halfway, each zeroing its own pages, where a warmer that starts at the
    /// front is overtaken and zeroes pages the kernel waits for.
    public static func warm(inTurn groups: [[MemoryRegion]], fromTheEnd: Bool = false, yielding: Bool = false)
    {
      guard groups.joined().reduce(0, { $0 + $1.bytes }) >= minimumBytes else { return }
      let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
      // Whole pages inside each region: the first and last partial pages are left.
      let whole = groups.map { regions in
        regions.compactMap { r -> MemoryRegion? in
          let start = (r.start + page - 1) / page * page
          let end = (r.start + UInt(r.bytes)) / page * page
          return end > start ? MemoryRegion(start: start, bytes: Int(end - start)) : nil
        }
      }
      guard enabled, !whole.joined().isEmpty else { return }
      var thread = pthread_t()
      let box = Unmanaged.passRetained(Regions(whole, page: page, fromTheEnd: fromTheEnd, yielding: yielding))
      let started = pthread_create(
        &thread, nil,
        { context in
          let regions = Unmanaged<Regions>.fromOpaque(context!).takeRetainedValue()
          regions.populate()
          return nil
        }, box.toOpaque())
      if started == 0 {
        pthread_detach(thread)
      } else {
        box.release()  // no thread: the loop zeroes its pages itself, as before
      }
    }

    /// The regions a warming thread owns.
    final class Regions: Sendable {
      let groups: [[MemoryRegion]]
      let page: UInt
      let fromTheEnd: Bool
      /// Niced to 19 first: the day's room is warmed while the event reader starts
      /// resolving on the same core, and the reader, which the apply waits for, came
      /// second (perf timeline, twenty-fifth session); the warmer then runs in the
      /// reader's waits, well ahead of the apply's fill.
      let yielding: Bool

      init(_ groups: [[MemoryRegion]], page: UInt, fromTheEnd: Bool, yielding: Bool) {
        self.groups = groups
        self.page = page
        self.fromTheEnd = fromTheEnd
        self.yielding = yielding
      }

      func populate() {
        if yielding { _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19) }
        for regions in fromTheEnd ? groups.reversed() : groups {
          populate(together: regions)
        }
      }

      func populate(together regions: [MemoryRegion]) {
        // At least `steps`; more when a slice would exceed `sliceBytesMax`.
        let largest = regions.map(\.bytes).max() ?? 0
        let count = max(PageWarmer.steps, (largest + PageWarmer.sliceBytesMax - 1) / PageWarmer.sliceBytesMax)
        let steps = Array(0..<count)
        for step in fromTheEnd ? steps.reversed() : steps {
          for r in regions {
            // This step's slice of the region, in whole pages.
            let pages = (UInt(r.bytes) / page)
            let from = pages * UInt(step) / UInt(count)
            let to = pages * UInt(step + 1) / UInt(count)
            guard to > from, let address = UnsafeMutableRawPointer(bitPattern: r.start + from * page) else {
              continue
            }
            _ = madvise(address, Int((to - from) * page), PageWarmer.populateWrite)
          }
        }
      }
    }
  }
#else
  public enum PageWarmer {
    public static var enabled: Bool { false }
    public static func warm(_ regions: [MemoryRegion], yielding: Bool = false) {}
    public static func warm(inTurn groups: [[MemoryRegion]], fromTheEnd: Bool = false, yielding: Bool = false)
    {}
  }
#endif

/// A range of a kernel's address space, for `PageWarmer`: an address as a number,
/// never dereferenced.
public struct MemoryRegion: Sendable, Equatable {
  public var start: UInt
  public var bytes: Int

  public init(start: UInt, bytes: Int) {
    self.start = start
    self.bytes = bytes
  }

  /// The capacity of `array` beyond its elements, at most `limit` elements of it (nil
  /// when there is none).
  @inlinable public static func unusedCapacity<Element>(of array: [Element], limit: Int = .max)
    -> MemoryRegion?
  {
    let spare = min(array.capacity - array.count, limit)
    guard spare > 0 else { return nil }
    return array.withUnsafeBufferPointer { b -> MemoryRegion? in
      guard let base = b.baseAddress else { return nil }
      return MemoryRegion(
        start: UInt(bitPattern: base + array.count), bytes: spare * MemoryLayout<Element>.stride)
    }
  }
}
