// Deterministic pseudo-random numbers. Never the system generator, never a clock:
// the same seed gives the same stream in every process on every platform.

/// SplitMix64 (Steele, Lea, Flood 2014): used to expand a seed and as a stateless hash.
struct SplitMix64 {
  var state: UInt64

  init(seed: UInt64) { state = seed }

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    return SplitMix64.finalize(state)
  }

  @inline(__always)
  static func finalize(_ x: UInt64) -> UInt64 {
    var z = x
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

/// A stateless 64-bit hash of `x` under `salt` (a per-purpose, per-seed value).
@inline(__always)
func mix64(_ salt: UInt64, _ x: UInt64) -> UInt64 {
  SplitMix64.finalize(salt &+ x &* 0x9E37_79B9_7F4A_7C15)
}

/// xoshiro256** 1.0 (Blackman, Vigna): the generator behind every random choice.
struct Xoshiro256 {
  private var s0: UInt64
  private var s1: UInt64
  private var s2: UInt64
  private var s3: UInt64

  init(seed: UInt64) {
    var sm = SplitMix64(seed: seed)
    s0 = sm.next()
    s1 = sm.next()
    s2 = sm.next()
    s3 = sm.next()
  }

  @inline(__always)
  private static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 &- k)) }

  @inline(__always)
  mutating func next() -> UInt64 {
    let result = Xoshiro256.rotl(s1 &* 5, 7) &* 9
    let t = s1 << 17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = Xoshiro256.rotl(s3, 45)
    return result
  }

  /// A value in `0..<n` (`n > 0`), by Lemire's multiply-shift (bias below 2^-32 for our sizes).
  @inline(__always)
  mutating func below(_ n: Int) -> Int {
    Int(truncatingIfNeeded: next().multipliedFullWidth(by: UInt64(n)).high)
  }

  /// A value in `lo...hi`.
  @inline(__always)
  mutating func inRange(_ lo: Int, _ hi: Int) -> Int { lo + below(hi - lo + 1) }

  /// True with probability `perMille / 1000`.
  @inline(__always)
  mutating func chance(perMille: Int) -> Bool { below(1000) < perMille }
}
