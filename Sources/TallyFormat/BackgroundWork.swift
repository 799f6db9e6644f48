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

  public init(_ work: @escaping () -> Result) {
    self.work = work
    group.enter()
    let run: @Sendable () -> Void = {
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
