// Work started on another thread and waited for: the reference folder's largest file
// read and half parsed on the second core, a RocksDB flush while outputs are written.
// It lives here, the lowest module that uses it (TallyEngine and the command line use
// it too).
import Dispatch

#if canImport(Glibc)
  import Glibc
#endif

/// Runs `work` on another thread at once; `wait()` gives its result. The caller must
/// not touch what `work` uses until `wait()` returns (hence the unchecked sendability:
/// the work may use values that are not Sendable, such as a store handle). The worker
/// writes the result once before leaving the group and `wait()` reads it only after
/// the group is done, which orders the two.
///
/// Each work gets a thread of its own (a detached pthread), not a slot of Dispatch's
/// global queue: that pool runs about one work a core at once, and a work that blocks
/// in it (a file writer waiting for its next piece, a caller's `wait()` on a pool
/// thread) held back the others behind it. holdings.csv rendered in two parts while its
/// writer waited took 1.0-1.25 s instead of 0.4 s (1M-account day, docs/PERFORMANCE.md).
public final class BackgroundWork<Result>: @unchecked Sendable {
  private let group = DispatchGroup()
  private var result: Result?
  private var work: (() -> Result)?

  /// How much a `yielding` work is niced (Linux's lowest priority, 19): it runs on what
  /// the other threads leave of the cores.
  public static var yieldingNice: Int32 { 19 }

  /// `yielding`: the thread lowers its own scheduling priority first (Linux: a thread's
  /// nice value is its own), for work that may wait for idle cycles: the reference
  /// files' digest a `--state` run needs only at its very end, which took the core
  /// from the apply and the reader while the events applied (docs/PERFORMANCE.md,
  /// twenty-third session).
  public init(yielding: Bool = false, _ work: @escaping () -> Result) {
    self.work = work
    group.enter()
    let run: @Sendable () -> Void = {
      if yielding { Self.yield() }
      self.result = self.work!()
      self.work = nil
      self.group.leave()
    }
    #if canImport(Glibc)
      let body = Unmanaged.passRetained(ThreadBody(run))
      var thread = pthread_t()
      let started = pthread_create(
        &thread, nil,
        { context in
          Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue().run()
          return nil
        }, body.toOpaque())
      if started == 0 {
        pthread_detach(thread)
        return
      }
      body.release()  // no thread to be had: the pool runs it
    #endif
    DispatchQueue.global().async(execute: run)
  }

  private init(result: Result) {
    self.result = result
    work = nil
  }

  /// A result already computed (a caller that chose not to use another thread).
  public static func completed(_ result: Result) -> BackgroundWork { BackgroundWork(result: result) }

  /// Lowers this thread's priority (nothing where that is not possible). On Linux the
  /// nice value is a thread's own, and `who` 0 names the calling thread (setpriority(2),
  /// "Bugs": not the whole process, as POSIX would have it).
  private static func yield() {
    #if os(Linux)
      _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, yieldingNice)
    #endif
  }

  /// Waits for the work and gives its result (again on later calls).
  public func wait() -> Result {
    group.wait()
    guard let result else { preconditionFailure("the worker leaves the group only after writing its result") }
    return result
  }
}

/// What a `BackgroundWork` thread runs (a class: a C thread's start routine takes one
/// pointer and captures nothing).
private final class ThreadBody: Sendable {
  let run: @Sendable () -> Void
  init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}
