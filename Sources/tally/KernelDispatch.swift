// Picks the kernel type a `--kernel` name stands for at a `switch` over concrete
// types, so that the generic run loop called in each case is specialised for that
// kernel (Engine's per-event methods are inlinable). Opening an existential metatype
// instead ran the loop unspecialised, at 2.7x the CPU time (docs/PERFORMANCE.md).
import KernelAPI
import KernelV1
import KernelV2
import TallyEngine

enum KernelDispatch {
  enum Version { case v1, v2 }

  static func resolve(_ name: String) throws(UsageError) -> (version: Version, fault: PlantedFault?) {
    let (type, fault) = try KernelCatalog.resolve(name)
    if type == V1Kernel.self { return (.v1, fault) }
    if type == V2Kernel.self { return (.v2, fault) }
    throw UsageError("kernel '\(name)' has no case in KernelDispatch")
  }
}
