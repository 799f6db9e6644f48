// Exact money arithmetic. SPEC §1: every amount is exact and rounding is always
// half-up (away from zero on .5) to 0.01 CNY, only where the SPEC says so.
// Money is Int64 fen; products go through Int128 so that they cannot overflow.

import KernelAPI

/// `numerator / divisor` rounded half away from zero. `divisor > 0`.
@inlinable
public func roundHalfUpDivide(_ numerator: Int128, by divisor: Int128) -> Int128 {
  precondition(divisor > 0, "rounding divisor must be positive")
  let magnitude = numerator.magnitude
  let d = divisor.magnitude
  if magnitude >> 64 == 0 && d >> 64 == 0 {
    // Both fit 64 bits (every fee and amount of a real trade): the same quotient and
    // remainder from a 64-bit division, where Int128's is a library call (~9% of a
    // trade's apply, perf). `2r >= d` as `r >= d - r` (r < d: no overflow).
    let (m, d64) = (UInt64(magnitude), UInt64(d))
    let (quotient, remainder) = m.quotientAndRemainder(dividingBy: d64)
    let rounded = Int128(remainder >= d64 - remainder ? quotient + 1 : quotient)
    return numerator < 0 ? -rounded : rounded
  }
  let quotient = magnitude / d
  let remainder = magnitude % d
  let rounded = remainder * 2 >= d ? quotient + 1 : quotient
  return numerator < 0 ? -Int128(rounded) : Int128(rounded)
}

/// `numerator / 10^scale` rounded half away from zero: `roundHalfUpDivide` by a power
/// of ten, the same result. The fee, amount and tax roundings of every TRADE. When the
/// numerator's magnitude fits 64 bits (every real fee and amount) each case of
/// `roundedQuotient` divides by a literal, which the compiler turns into a
/// multiplication by its reciprocal and a shift: exact for every UInt64 (a division
/// by a constant keeps the division's meaning; `V1ArithmeticTests` checks edge values
/// of every scale against a division by a runtime divisor). A 64-bit division by a
/// runtime power of ten took tens of cycles, nine of them a trade.
@inlinable @inline(__always)
public func roundHalfUpDivide(_ numerator: Int128, byPowerOfTen scale: Int) -> Int128 {
  let magnitude = numerator.magnitude
  guard magnitude >> 64 == 0, let rounded = roundedQuotient(UInt64(magnitude), byPowerOfTen: scale) else {
    return roundHalfUpDivide(numerator, by: powersOfTen[scale])
  }
  return numerator < 0 ? -Int128(rounded) : Int128(rounded)
}

/// `m / 10^scale` rounded half up, for scale 0...19 (10^19 is the largest power of ten
/// below 2^64); nil for another scale.
@inlinable @inline(__always)
public func roundedQuotient(_ m: UInt64, byPowerOfTen scale: Int) -> UInt64? {
  // `2r >= d` as `r >= d - r` (r < d: no overflow); q + 1 cannot overflow for d >= 2,
  // and for d = 1 the remainder is 0 (never rounds up).
  @inline(__always) func halfUp(_ d: UInt64) -> UInt64 {
    let (q, r) = m.quotientAndRemainder(dividingBy: d)
    return r >= d - r ? q + 1 : q
  }
  switch scale {
  case 0: return m
  case 1: return halfUp(10)
  case 2: return halfUp(100)
  case 3: return halfUp(1_000)
  case 4: return halfUp(10_000)
  case 5: return halfUp(100_000)
  case 6: return halfUp(1_000_000)
  case 7: return halfUp(10_000_000)
  case 8: return halfUp(100_000_000)
  case 9: return halfUp(1_000_000_000)
  case 10: return halfUp(10_000_000_000)
  case 11: return halfUp(100_000_000_000)
  case 12: return halfUp(1_000_000_000_000)
  case 13: return halfUp(10_000_000_000_000)
  case 14: return halfUp(100_000_000_000_000)
  case 15: return halfUp(1_000_000_000_000_000)
  case 16: return halfUp(10_000_000_000_000_000)
  case 17: return halfUp(100_000_000_000_000_000)
  case 18: return halfUp(1_000_000_000_000_000_000)
  case 19: return halfUp(10_000_000_000_000_000_000)
  default: return nil
  }
}

/// Narrows an exact intermediate to Int64, stopping loudly on overflow
/// (a value that large means corrupted input or a broken invariant).
@inlinable
public func exactInt64(_ value: Int128, _ what: StaticString) -> Int64 {
  precondition(value >= Int128(Int64.min) && value <= Int128(Int64.max), "\(what) overflows Int64")
  return Int64(value)
}

/// Powers of ten as Int128, for fixed-point scales up to 10^38.
public let powersOfTen: [Int128] = {
  var table: [Int128] = [1]
  for _ in 1...38 { table.append(table.last! * 10) }
  return table
}()
