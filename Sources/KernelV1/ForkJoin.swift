// Two halves of a read-only walk at once: one on this thread, one on a thread made for
// it and joined before the results are used. For the walks of the whole state that an
// event does alone while the other core has nothing to do (CLOSE's self-check of every
// position's lots: ~0.1 s of the 1M-account day, one random miss a lot). Each half
// returns its own value, combined by the caller in a fixed order: what the walk
// reports does not depend on which half ends first, so determinism holds. Nothing is
// written to shared memory; the halves read a copy of the kernel's value (its storage
// shared, unchanged until both have ended: `both` returns only after the join).

#if canImport(Glibc)
  import Glibc
#endif

/// What the thread `ForkJoin.both` makes runs (not generic: a C thread function
/// cannot name a generic type).
class ForkJoinRunnable: @unchecked Sendable {
  func run() {}
}

/// The work and the result of that thread. Written by that thread only, read after
/// `pthread_join` (which orders the two).
final class ForkJoinTask<T: Sendable>: ForkJoinRunnable, @unchecked Sendable {
  let work: @Sendable () -> T
  var result: T? = nil
  init(_ work: @escaping @Sendable () -> T) { self.work = work }
  override func run() { result = work() }
}

enum ForkJoin {
  /// Below this many items a walk is not split (a thread costs ~50 µs to make and
  /// join; tests make thousands of small kernels).
  static let minimumItems = 100_000

  /// `(here(), other())`, with `other` run on a new thread while `here` runs on this
  /// one; both on this thread, one after the other, when no thread can be made.
  static func both<T: Sendable>(_ here: () -> T, _ other: @escaping @Sendable () -> T) -> (T, T) {
    #if canImport(Glibc)
      let task = ForkJoinTask(other)
      let box = Unmanaged<ForkJoinRunnable>.passRetained(task)
      var thread = pthread_t()
      let started = pthread_create(
        &thread, nil,
        { context in
          Unmanaged<ForkJoinRunnable>.fromOpaque(context!).takeRetainedValue().run()
          return nil
        }, box.toOpaque())
      guard started == 0 else {
        box.release()
        return (here(), other())
      }
      let first = here()
      let joined = pthread_join(thread, nil)
      precondition(joined == 0, "the self-check's other half joined")
      guard let second = task.result else { preconditionFailure("the other half returned its result") }
      return (first, second)
    #else
      return (here(), other())
    #endif
  }
}
