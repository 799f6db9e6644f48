// swift-tools-version: 6.1
// Tally: a deterministic post-trade engine (clearing, transfer, DVP settlement,
// corporate actions) for the Shanghai A-share market. See README.md and docs/.
import PackageDescription

// Warnings are errors everywhere except in the C shims.
let strict: [SwiftSetting] = [.unsafeFlags(["-warnings-as-errors"])]

let package = Package(
  name: "Tally",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "tally", targets: ["tally"])
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
  ],
  targets: [
    // The business core: domain types and the state machine. No I/O, no Foundation.
    .target(name: "TallyCore", swiftSettings: strict),
    // SPEC §1-§3 and §5 text formats: field patterns, event lines, reference CSV, output CSV.
    .target(name: "TallyFormat", dependencies: ["TallyCore"], swiftSettings: strict),
    // Running the core: batches, digests, the state-store port, file I/O.
    .target(
      name: "TallyEngine", dependencies: ["TallyCore", "TallyFormat", "ClearingKernelV2"],
      swiftSettings: strict),
    // RocksDB: the C library and the one adapter that owns its pointers.
    .systemLibrary(
      name: "CRocksDB", providers: [.apt(["librocksdb-dev"])]),
    .target(name: "RocksDBStore", dependencies: ["CRocksDB", "TallyEngine"], swiftSettings: strict),
    // ZeroMQ: the C library and the one adapter that owns its pointers.
    .systemLibrary(
      name: "CZeroMQ", providers: [.apt(["libzmq3-dev"])]),
    .target(name: "ZeroMQTransport", dependencies: ["CZeroMQ"], swiftSettings: strict),
    // The second, independently written per-trade clearing kernel (N-version voting).
    .target(name: "ClearingKernelV2", dependencies: ["TallyCore"], swiftSettings: strict),
    // The replicated cluster: sequencer, replicas, voter, their wire format and supervisor.
    .target(
      name: "TallyCluster",
      dependencies: ["TallyCore", "TallyFormat", "TallyEngine", "RocksDBStore", "ZeroMQTransport"],
      swiftSettings: strict),
    // The chaos harness: fault injection against real clusters, and a deterministic simulator.
    .target(
      name: "TallyChaos",
      dependencies: [
        "TallyCluster", "TallyEngine", "TallyCore", "TallyFormat", "MarketGenerator", "ZeroMQTransport",
      ],
      swiftSettings: strict),
    // Synthetic but realistic markets for demos, tests and benchmarks.
    .target(name: "MarketGenerator", dependencies: ["TallyCore"], swiftSettings: strict),
    // The command line: parse arguments and compose the modules above.
    .executableTarget(
      name: "tally",
      dependencies: [
        "TallyCore", "TallyFormat", "TallyEngine", "RocksDBStore", "ZeroMQTransport",
        "MarketGenerator", "ClearingKernelV2", "TallyCluster", "TallyChaos",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      swiftSettings: strict),
    .testTarget(
      name: "TallyCoreTests", dependencies: ["TallyCore", "TallyFormat", "TallyEngine"],
      swiftSettings: strict),
    .testTarget(
      name: "TallyEngineTests",
      dependencies: ["TallyCore", "TallyFormat", "TallyEngine", "MarketGenerator", "RocksDBStore"],
      swiftSettings: strict),
    .testTarget(
      name: "RocksDBStoreTests", dependencies: ["RocksDBStore", "TallyEngine"],
      swiftSettings: strict),
    .testTarget(
      name: "ZeroMQTransportTests", dependencies: ["ZeroMQTransport"], swiftSettings: strict),
    .testTarget(
      name: "MarketGeneratorTests", dependencies: ["MarketGenerator", "TallyCore"],
      swiftSettings: strict),
    .testTarget(
      name: "ClearingKernelV2Tests", dependencies: ["ClearingKernelV2", "TallyCore"],
      swiftSettings: strict),
    .testTarget(
      name: "TallyClusterTests",
      dependencies: ["TallyCluster", "TallyEngine", "TallyCore", "MarketGenerator"],
      swiftSettings: strict),
    .testTarget(
      name: "TallyChaosTests", dependencies: ["TallyChaos", "TallyCluster", "TallyEngine", "TallyCore"],
      swiftSettings: strict),
    .testTarget(
      name: "TallyCLITests", dependencies: ["tally"], swiftSettings: strict),
  ],
  swiftLanguageModes: [.v6]
)
