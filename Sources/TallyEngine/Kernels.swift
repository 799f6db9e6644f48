// The clearing kernel versions a node can run, by the name used in configs and flags.
import ClearingKernelV2
import TallyCore

public enum KernelCatalog {
  /// `v1`, `v2`, and `v1-faulty` (fault injection: truncates the handling fee; for
  /// N-version tests and chaos scenarios only).
  public static let names = ["v1", "v2", "v1-faulty"]

  public static func make(_ name: String, feeRows: [FeeRateRow]) throws(UsageError) -> any ClearingKernel {
    switch name {
    case "v1": return ClearingKernelV1(feeRows: feeRows)
    case "v2": return ClearingKernelV2(feeRows: feeRows)
    case "v1-faulty": return ClearingKernelV1(feeRows: feeRows, truncatesHandlingFee: true)
    default: throw UsageError("unknown kernel '\(name)'; known: \(names.joined(separator: ", "))")
    }
  }
}

/// A mistake in how a command was called (a flag, a name), reported as is.
public struct UsageError: Error, CustomStringConvertible, Sendable {
  public var description: String
  public init(_ description: String) { self.description = description }
}
