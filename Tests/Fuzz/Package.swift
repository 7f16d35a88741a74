// swift-tools-version:6.1
// libFuzzer harnesses, kept out of the main package because they have no main() of their own:
// libFuzzer supplies it. Build and run with Tests/Fuzz/run.sh (or `make fuzz-wire`).
import PackageDescription

let package = Package(
    name: "junction-fuzz",
    dependencies: [
        .package(name: "junction", path: "../.."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .target(name: "CFuzzDriver"),
        .executableTarget(
            name: "FuzzWire",
            dependencies: ["CFuzzDriver", .product(name: "Wire", package: "junction")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "FuzzScheduler",
            dependencies: [
                "CFuzzDriver", .product(name: "Wire", package: "junction"), .product(name: "Scheduler", package: "junction"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "FuzzPromtext",
            dependencies: ["CFuzzDriver", .product(name: "PromText", package: "junction")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
