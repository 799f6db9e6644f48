// Where V1 plants the faults of KernelAPI/PlantedFaults.swift.
import KernelAPI

extension V1Kernel {
  /// True when the kernel plants the settlement fault (read at defaults only).
  var skipsDefaultWithholding: Bool { fees.plantedFault == .settlement }
}
