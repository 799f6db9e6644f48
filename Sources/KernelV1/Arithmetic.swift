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
