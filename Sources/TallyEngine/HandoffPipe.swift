// Items handed from one thread to another in order, through a bounded queue: a resume's
// log entries read ahead of their apply, event lines read and split on the other core
// while the engine applies the blocks before. The consumer's wait is what the pipeline
// costs when the producer is slower; the bound keeps a fast producer's memory small.
import Foundation

/// A bounded first-in first-out hand-over between one producer and one consumer. At
/// most `depth` items wait; `finish` ends the stream (with an error the consumer gets
/// after the items before it); `cancel` lets a producer blocked in `put` go when the
/// consumer stops early.
final class HandoffPipe<Item>: @unchecked Sendable {
  /// Items that may wait, named by the pipe's owner (a limit: a producer blocks there).
  let depth: Int
  private let condition = NSCondition()
  /// Taken items are set to nil at once: a taken buffer is then referenced once, and its
  /// owner can refill it without a copy.
  private var items: [Item?] = []
  private var head = 0
  private var finished = false
  private var cancelled = false
  private var failure: (any Error)? = nil

  init(depth: Int) {
    precondition(depth >= 1, "a pipe holds at least one item")
    self.depth = depth
  }

  /// Hands an item over, waiting while `depth` are queued; false once cancelled.
  func put(_ item: Item) -> Bool {
    condition.lock()
    defer { condition.unlock() }
    while items.count - head >= depth && !cancelled { condition.wait() }
    guard !cancelled else { return false }
    items.append(item)
    condition.broadcast()
    return true
  }

  /// Hands an item over if fewer than `depth` wait (never blocks); whether it did.
  func putIfRoom(_ item: Item) -> Bool {
    condition.lock()
    defer { condition.unlock() }
    guard items.count - head < depth && !cancelled else { return false }
    items.append(item)
    condition.broadcast()
    return true
  }

  /// The producer is done; `error` is thrown to the consumer after the items before it.
  func finish(_ error: (any Error)?) {
    condition.lock()
    finished = true
    failure = error
    condition.broadcast()
    condition.unlock()
  }

  func cancel() {
    condition.lock()
    cancelled = true
    condition.broadcast()
    condition.unlock()
  }

  /// The next item if one waits (never blocks).
  func takeIfAny() -> Item? {
    condition.lock()
    defer { condition.unlock() }
    return next()
  }

  /// The next item in order; nil after the last (or the producer's failure, thrown).
  func take() throws -> Item? {
    condition.lock()
    defer { condition.unlock() }
    while head == items.count && !finished { condition.wait() }
    if let item = next() { return item }
    if let failure { throw failure }
    return nil
  }

  /// Removes the first waiting item (the lock held) and wakes a waiting producer.
  private func next() -> Item? {
    guard head < items.count else { return nil }
    let item = items[head]
    items[head] = nil
    head += 1
    if head == items.count {
      items.removeAll(keepingCapacity: true)
      head = 0
    }
    condition.broadcast()
    return item
  }
}
