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
