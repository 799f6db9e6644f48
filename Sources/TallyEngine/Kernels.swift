// The clearing kernel versions a node can run, by the name used in configs and flags.
import ClearingKernelV2
import TallyCore

public enum KernelCatalog {
  /// `v1`, `v2`, and kernels with a planted fault (TallyCore/PlantedFaults.swift), for
  /// N-version tests and chaos scenarios only: `v1-faulty` truncates the handling fee,
  /// `v1-faulty-transfer` makes bought shares available at once, `v1-faulty-settlement`
  /// withholds nothing from a defaulting payer.
  public static let names = ["v1", "v2", "v1-faulty", "v1-faulty-transfer", "v1-faulty-settlement"]

  public static func make(_ name: String, feeRows: [FeeRateRow]) throws(UsageError) -> any ClearingKernel {
    switch name {
    case "v1": return ClearingKernelV1(feeRows: feeRows)
    case "v2": return ClearingKernelV2(feeRows: feeRows)
    case "v1-faulty": return ClearingKernelV1(feeRows: feeRows, plantedFault: .feeRounding)
    case "v1-faulty-transfer": return ClearingKernelV1(feeRows: feeRows, plantedFault: .transfer)
    case "v1-faulty-settlement": return ClearingKernelV1(feeRows: feeRows, plantedFault: .settlement)
    default: throw UsageError("unknown kernel '\(name)'; known: \(names.joined(separator: ", "))")
    }
  }
}

/// A mistake in how a command was called (a flag, a name), reported as is.
public struct UsageError: Error, CustomStringConvertible, Sendable {
  public var description: String
  public init(_ description: String) { self.description = description }
}
