// Work started on another thread and waited for: the reference folder's largest file
// read and half parsed on the second core, a RocksDB flush while outputs are written.
// It lives here, the lowest module that uses it (TallyEngine and the command line use
// it too).
import Dispatch

/// Runs `work` on another thread at once; `wait()` gives its result. The caller must
/// not touch what `work` uses until `wait()` returns (hence the unchecked sendability:
/// the work may use values that are not Sendable, such as a store handle). The worker
/// writes the result once before leaving the group and `wait()` reads it only after
/// the group is done, which orders the two.
public final class BackgroundWork<Result>: @unchecked Sendable {
  private let group = DispatchGroup()
  private var result: Result?
  private var work: (() -> Result)?

  public init(_ work: @escaping () -> Result) {
    self.work = work
    group.enter()
    DispatchQueue.global().async {
      self.result = self.work!()
      self.work = nil
      self.group.leave()
    }
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
