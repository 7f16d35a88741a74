// swift-tools-version:6.1
// Junction: an LLM-aware router. See Docs/architecture.md for how the targets fit together.
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "junction",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "junction", targets: ["junction"]),
        .executable(name: "raft-sim", targets: ["raft-sim"]),
        .library(name: "Wire", targets: ["Wire"]),
        .library(name: "Raft", targets: ["Raft"]),
        .library(name: "Routing", targets: ["Routing"]),
        .library(name: "PromText", targets: ["PromText"]),
        // For the scheduler's fuzz harness (Tests/Fuzz), which drives its handlers.
        .library(name: "Scheduler", targets: ["Scheduler"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        // OTLP over HTTP only: the gRPC exporter's trait would bring gRPC into the build.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // libprotobuf-c from the system (Debian: libprotobuf-c-dev).
        .systemLibrary(
            name: "CProtobufC",
            pkgConfig: "libprotobuf-c",
            providers: [.apt(["libprotobuf-c-dev"])]
        ),
        // protoc-c output for Proto/junction.proto; regenerate with `make proto`.
        .target(name: "CJunctionProto", dependencies: ["CProtobufC"]),
        .target(
            name: "Wire",
            dependencies: [
                "CJunctionProto", "ClusterConfig",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Pure cores: no I/O, no clocks, no NIO.
        .target(name: "Seeded", swiftSettings: strict),
        .target(name: "Raft", dependencies: ["Seeded"], swiftSettings: strict),
        .target(name: "Routing", dependencies: ["Seeded"], swiftSettings: strict),
        // The scheduler's replicated state machine: registry, policy, affinity. Pure.
        .target(name: "SchedulerCore", dependencies: ["Routing"], swiftSettings: strict),
        // Raft's file-backed storage: segmented WAL with CRC32C, atomic snapshots.
        .target(name: "RaftStore", dependencies: ["Raft"], swiftSettings: strict),
        // Deterministic simulation of a Raft group under faults, with safety and linearizability checks.
        .target(name: "RaftSim", dependencies: ["Raft", "Seeded"], swiftSettings: strict),
        .executableTarget(name: "raft-sim", dependencies: ["RaftSim"], swiftSettings: strict),
        // Shells: wire the cores to the network, the disk and the clock.
        .target(
            name: "Scheduler",
            dependencies: [
                "Wire", "Raft", "RaftStore", "Routing", "SchedulerCore", "FlowControl", "ClusterConfig", "PromText", "MetricsEndpoint",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict
        ),
        // The gateway: a pure core (the request lifecycle, request features, prefix hashes,
        // fallback round-robin, retry rules, OpenAI error shapes) and the SwiftNIO shell.
        .target(name: "GatewayCore", swiftSettings: strict),
        // Flow control: tenants' limits, the banded fair queue (pure; the gateway's shell drives it).
        .target(name: "FlowControl", swiftSettings: strict),
        .target(
            name: "Gateway",
            dependencies: [
                "Wire", "GatewayCore", "FlowControl", "ClusterConfig",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict),
        // `/metrics`, `/healthz` and `/readyz` over HTTP for the processes without an HTTP server
        // of their own (schedulers, agents): a route decision and a thin NIO handler.
        .target(
            name: "MetricsEndpoint",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict),
        // Exporting spans with OTLP/HTTP (swift-otel) when the config's `tracing` section asks for
        // it. Only the executable links it: the gateway and the scheduler speak the `Tracing` API.
        .target(
            name: "TraceExport",
            dependencies: [
                "ClusterConfig",
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // What `junction ctl top` shows, rendered purely from a status answer and the gateways' pages.
        .target(name: "CtlViews", dependencies: ["Wire", "PromText"], swiftSettings: strict),
        // The JSON config file every process reads: the cluster section and key helpers.
        .target(name: "ClusterConfig", swiftSettings: strict),
        // The Prometheus text format parser (pure; fuzzed in Tests/Fuzz).
        .target(name: "PromText", swiftSettings: strict),
        // The agent: a pure core (engine detection, the metric-name table, normalisation, health)
        // and the shell that scrapes the engine and talks to the scheduler.
        .target(name: "AgentCore", dependencies: ["PromText"], swiftSettings: strict),
        .target(
            name: "Agent",
            dependencies: [
                "Wire", "AgentCore", "PromText", "ClusterConfig", "MetricsEndpoint",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        // The simulated engine: a pure model (tokenizer, KV cache, continuous batching, step cost)
        // and the HTTP shell that speaks vLLM's, SGLang's or BladeLLM's dialect around it.
        .target(name: "EngineModel", dependencies: ["Seeded"], swiftSettings: strict),
        .target(
            name: "EngineSim",
            dependencies: [
                "EngineModel",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "BenchCore",
            dependencies: ["Seeded"],
            swiftSettings: strict
        ),
        // Real processes on loopback (a scheduler trio, spawned binaries, free ports) for the
        // tests and the benchmarks that drive them.
        .target(
            name: "ProcessHarness",
            dependencies: [
                "Wire", .product(name: "X509", package: "swift-certificates"), .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strict),
        .target(
            name: "Bench",
            dependencies: [
                "Wire", "Raft", "RaftStore", "Routing", "Seeded", "BenchCore", "PromText", "ProcessHarness",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "junction",
            dependencies: [
                "Wire", "Scheduler", "Gateway", "Agent", "TraceExport", "EngineModel", "EngineSim", "Bench", "BenchCore", "Seeded", "ClusterConfig", "MetricsEndpoint",
                "CtlViews", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "EngineModelTests", dependencies: ["EngineModel"], swiftSettings: strict),
        .testTarget(name: "RoutingTests", dependencies: ["Routing"], swiftSettings: strict),
        .testTarget(name: "FlowControlTests", dependencies: ["FlowControl", "Seeded"], swiftSettings: strict),
        .testTarget(name: "BenchCoreTests", dependencies: ["BenchCore", "Seeded"], swiftSettings: strict),
        .testTarget(name: "PromTextTests", dependencies: ["PromText"], swiftSettings: strict),
        .testTarget(name: "CtlViewsTests", dependencies: ["CtlViews", "Wire"], swiftSettings: strict),
        .testTarget(
            name: "MetricsEndpointTests",
            dependencies: [
                "MetricsEndpoint",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "GatewayTests",
            dependencies: [
                "Gateway", "GatewayCore", "ClusterConfig", "FlowControl", "ProcessHarness", "Wire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict),
        .testTarget(name: "GatewayCoreTests", dependencies: ["GatewayCore", "Seeded"], swiftSettings: strict),
        .testTarget(name: "AgentCoreTests", dependencies: ["AgentCore", "PromText"], swiftSettings: strict),
        .testTarget(name: "AgentTests", dependencies: ["Agent", "AgentCore", "ClusterConfig", "ProcessHarness", "Wire", "PromText"], swiftSettings: strict),
        .testTarget(name: "SchedulerCoreTests", dependencies: ["SchedulerCore", "Routing"], swiftSettings: strict),
        .testTarget(name: "SchedulerTests", dependencies: ["Scheduler", "SchedulerCore", "Routing", "Raft", "Wire", "ProcessHarness", "ClusterConfig", "PromText", .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"), .product(name: "Logging", package: "swift-log")], swiftSettings: strict),
        .testTarget(name: "RaftTests", dependencies: ["Raft", "RaftSim", "RaftStore"], swiftSettings: strict),
        .testTarget(
            name: "WireTests",
            dependencies: [
                "Wire", "ProcessHarness",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
    ]
)
