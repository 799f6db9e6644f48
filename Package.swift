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
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
  ],
  targets: [
    // What a business kernel is: events, effects, canonical state rows, digest rules.
    // No I/O, no Foundation, no dependencies.
    .target(name: "KernelAPI", swiftSettings: strict),
    // Version 1 of the business state machine (SPEC §3-§5). Depends on KernelAPI only.
    .target(name: "KernelV1", dependencies: ["KernelAPI"], swiftSettings: strict),
    // Version 2, written independently from SPEC.md and KernelAPI alone (never KernelV1's
    // code or tests: docs/ARCHITECTURE.md "N-version"). Depends on KernelAPI only.
    .target(name: "KernelV2", dependencies: ["KernelAPI"], swiftSettings: strict),
    // SPEC §1-§3 and §5 text formats: field patterns, event lines, reference CSV, output CSV.
    .target(name: "TallyFormat", dependencies: ["KernelAPI"], swiftSettings: strict),
    // Running the core: batches, digests, the state-store port, file I/O.
    .target(
      name: "TallyEngine",
      dependencies: [
        "KernelAPI", "KernelV1", "KernelV2", "TallyFormat", "SegmentLog",
        .product(name: "Crypto", package: "swift-crypto"),
      ],
      swiftSettings: strict),
    // RocksDB: the C library and the one adapter that owns its pointers.
    .systemLibrary(
      name: "CRocksDB", providers: [.apt(["librocksdb-dev"])]),
    .target(name: "RocksDBStore", dependencies: ["CRocksDB", "TallyEngine"], swiftSettings: strict),
    // ZeroMQ: the C library and the one adapter that owns its pointers.
    .systemLibrary(
      name: "CZeroMQ", providers: [.apt(["libzmq3-dev"])]),
    .target(name: "ZeroMQTransport", dependencies: ["CZeroMQ"], swiftSettings: strict),
    // Append-only segment files written with direct I/O (the voter's stream records).
    .target(name: "SegmentLog", swiftSettings: strict),
    // The replicated cluster: sequencer, replicas, voter, their wire format and supervisor.
    .target(
      name: "TallyCluster",
      dependencies: [
        "KernelAPI", "KernelV1", "TallyFormat", "TallyEngine", "RocksDBStore", "ZeroMQTransport",
        "SegmentLog",
        .product(name: "TOMLKit", package: "TOMLKit"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Metrics", package: "swift-metrics"),
      ],
      swiftSettings: strict),
    // Operations: structured logs with rotation, Prometheus metrics and the HTTP endpoints
    // (/metrics, /health, /ready), and the node lifecycle (graceful SIGTERM/SIGINT).
    .target(
      name: "TallyOps",
      dependencies: [
        "TallyCluster", "TallyEngine", "KernelAPI",
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Metrics", package: "swift-metrics"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "Hummingbird", package: "hummingbird"),
      ],
      swiftSettings: strict),
    // The chaos harness: fault injection against real clusters, and a deterministic simulator.
    .target(
      name: "TallyChaos",
      dependencies: [
        "TallyCluster", "TallyEngine", "KernelAPI", "TallyFormat", "MarketGenerator", "ZeroMQTransport",
        .product(name: "TOMLKit", package: "TOMLKit"),
      ],
      swiftSettings: strict),
    // Synthetic but realistic markets for demos, tests and benchmarks.
    .target(name: "MarketGenerator", dependencies: ["KernelAPI"], swiftSettings: strict),
    // The command line: parse arguments and compose the modules above.
    .executableTarget(
      name: "tally",
      dependencies: [
        "KernelAPI", "TallyFormat", "TallyEngine", "RocksDBStore", "ZeroMQTransport",
        "MarketGenerator", "KernelV1", "KernelV2", "TallyCluster", "TallyChaos", "TallyOps",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      swiftSettings: strict),
    .testTarget(
      name: "KernelSpecTests", dependencies: ["KernelAPI", "KernelV1", "TallyFormat", "TallyEngine"],
      swiftSettings: strict),
    .testTarget(
      name: "TallyEngineTests",
      dependencies: [
        "KernelAPI", "KernelV1", "TallyFormat", "TallyEngine", "MarketGenerator", "RocksDBStore",
      ],
      swiftSettings: strict),
    .testTarget(
      name: "RocksDBStoreTests", dependencies: ["RocksDBStore", "TallyEngine"],
      swiftSettings: strict),
    .testTarget(
      name: "KernelV2Tests", dependencies: ["KernelV2", "KernelAPI", "TallyFormat"], exclude: ["Fixtures"],
      swiftSettings: strict),
    .testTarget(name: "SegmentLogTests", dependencies: ["SegmentLog"], swiftSettings: strict),
    .testTarget(
      name: "ZeroMQTransportTests", dependencies: ["ZeroMQTransport"], swiftSettings: strict),
    .testTarget(
      name: "MarketGeneratorTests", dependencies: ["MarketGenerator", "KernelAPI"],
      swiftSettings: strict),
    .testTarget(
      name: "TallyClusterTests",
      dependencies: [
        "TallyCluster", "TallyEngine", "KernelAPI", "MarketGenerator", "RocksDBStore", "SegmentLog",
      ],
      swiftSettings: strict),
    .testTarget(
      name: "TallyChaosTests",
      dependencies: [
        "TallyChaos", "TallyCluster", "TallyEngine", "KernelAPI", "KernelV1", "MarketGenerator",
      ],
      swiftSettings: strict),
    .testTarget(
      name: "TallyOpsTests",
      dependencies: ["TallyOps", "TallyCluster", "KernelAPI", "KernelV1", "TallyEngine", "TallyFormat"],
      swiftSettings: strict),
    .testTarget(
      name: "TallyCLITests", dependencies: ["tally"], swiftSettings: strict),
  ],
  swiftLanguageModes: [.v6]
)
