// The retention of the cores' bounded maps (the sequencer's dedupe cache, the voter's
// decided keys and recent journal batches): keys in insertion order with a limit, the
// oldest handed back to be forgotten once the limit is passed.

/// Keys in insertion order, at most `limit`: appending one more hands back the oldest.
/// O(1) amortised: the head moves, and the dropped prefix is removed once it is as
/// long as the limit (never a shift of the whole array per append).
struct RetentionQueue<Element> {
  let limit: Int
  private var items: [Element] = []
  private var head = 0

  init(limit: Int) {
    precondition(limit >= 1, "a retention keeps at least one key")
    self.limit = limit
  }

  var count: Int { items.count - head }

  /// Appends `key`; returns the oldest key when the queue is over its limit (it left).
  mutating func append(_ key: Element) -> Element? {
    items.append(key)
    guard count > limit else { return nil }
    let oldest = items[head]
    head += 1
    if head >= limit {
      items.removeFirst(head)
      head = 0
    }
    return oldest
  }
}

extension RetentionQueue: Sendable where Element: Sendable {}
