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
    _ = try KernelCatalog.resolve(name)  // the name's shape and version are known
    guard let (version, fault) = KernelName.parse(name) else { throw UsageError("unknown kernel '\(name)'") }
    switch version {
    case "v1": return (.v1, fault)
    case "v2": return (.v2, fault)
    default: throw UsageError("unknown kernel '\(name)'")
    }
  }
}
