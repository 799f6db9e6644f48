// One seed drives everything the harness and the simulator decide: SplitMix64 is
// tiny, fast, and the same in every process (no system random anywhere here).

public struct SplitMix64: Sendable {
  public private(set) var state: UInt64

  public init(seed: UInt64) { state = seed }

  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Uniform in `range` (inclusive); the modulo bias is irrelevant at these spans.
  public mutating func int(_ range: ClosedRange<Int>) -> Int {
    let span = UInt64(range.upperBound - range.lowerBound) &+ 1
    if span == 0 { return Int(truncatingIfNeeded: next()) }
    return range.lowerBound + Int(next() % span)
  }

  public mutating func int64(_ range: ClosedRange<Int64>) -> Int64 {
    let span = UInt64(range.upperBound - range.lowerBound) &+ 1
    return range.lowerBound + Int64(next() % span)
  }

  /// True with probability `perMillion` / 1,000,000.
  public mutating func chance(perMillion: Int) -> Bool { Int(next() % 1_000_000) < perMillion }

  public mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }

  /// A new independent stream (so that one component's draws do not shift another's).
  public mutating func fork() -> SplitMix64 { SplitMix64(seed: next()) }
}
