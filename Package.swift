// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Marina",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "marina", targets: ["marina"]),
        .executable(name: "marina-agent", targets: ["marina-agent"]),
        .library(name: "MariaDBClient", targets: ["MariaDBClient"]),
        .library(name: "EtcdClient", targets: ["EtcdClient"]),
        .library(name: "MarinaSandbox", targets: ["MarinaSandbox"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        // HTTP for the controller's API, metrics and web page (the agent keeps its own small listener).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0", traits: []),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
    ],
    targets: [
        // The two C libraries, each behind one system-library target and imported by exactly one Swift module.
        .systemLibrary(name: "CMariaDB", pkgConfig: "libmariadb", providers: [.apt(["libmariadb-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),

        // Runs blocking C calls on threads that are not Swift's cooperative pool.
        .target(name: "BlockingIO"),

        // SQL text: quoting of literals and identifiers, placeholders. No dependency, no I/O.
        .target(name: "SQLText"),
        .target(name: "MariaDBClient", dependencies: ["CMariaDB", "BlockingIO", "SQLText"]),
        .target(name: "EtcdClient", dependencies: ["CCurl", "BlockingIO", .product(name: "CoreMetrics", package: "swift-metrics")]),
        // The failsafe link: a primary's agent asks the controller and its replica agents, over TCP, whether it may keep its writes while etcd is down.
        .target(name: "FailsafeLink", dependencies: ["BlockingIO"]),

        // The source of truth as values: model, validation, generated configuration, diff, edits. No I/O.
        .target(name: "Topology", dependencies: [.product(name: "Yams", package: "Yams")]),
        // The one codec of Marina's records in etcd (JSON, ISO 8601 times, schema check). FoundationEssentials only.
        .target(name: "StoredRecords"),
        // What agents see: GTID positions, observations, when to publish. No I/O.
        .target(name: "Observation", dependencies: ["StoredRecords"]),
        // Files an operator writes: the YAML subset, the shared `etcd:` section, option files. FoundationEssentials only.
        .target(name: "ConfigurationFiles", dependencies: ["EtcdClient"]),
        // log_format (text or json) and the JSON log lines the agent and the controller write with it.
        .target(name: "MarinaLogging", dependencies: ["ConfigurationFiles", .product(name: "Logging", package: "swift-log")]),
        // One probe of one instance (the agent's and the controller's): an Observation read over a DatabaseSession.
        .target(name: "Probing", dependencies: ["MariaDBClient", "Observation"]),
        // Drift: source of truth versus observations, as a detection table. No I/O.
        .target(name: "Drift", dependencies: ["Topology", "Observation"]),
        // The agent: probes local instances, publishes observations under a lease.
        .target(
            name: "Agent",
            dependencies: [
                "Observation", "Probing", "ConfigurationFiles", "StoredRecords", "MariaDBClient", "EtcdClient", "BlockingIO", "FailsafeLink",
                "MarinaLogging",
                .product(name: "Logging", package: "swift-log"), .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        // The source of truth in etcd: staged objects, commits, history.
        .target(name: "TopologyStore", dependencies: ["Topology", "EtcdClient", "Observation", "StoredRecords"]),
        // Operations as data: playbooks and their safety rules, switchover preflight and plan, the journal. No I/O.
        .target(
            name: "Operations",
            dependencies: [
                "Topology", "Observation", "StoredRecords", "SQLText", .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // Managed accounts: reading them off a server (through a query closure), planning the statements that converge them, import. No I/O.
        .target(name: "Grants", dependencies: ["Topology", "SQLText"]),
        // The automatic depool/repool policy as a pure decision over topology, observations, state and a clock.
        .target(name: "Policy", dependencies: ["Topology", "Observation", "StoredRecords"]),
        // The controller: leader lease, requests, running operations with journal and rollback.
        .target(
            name: "Controller",
            dependencies: [
                "Operations", "Policy", "Topology", "TopologyStore", "Probing", "ConfigurationFiles", "Observation", "EtcdClient", "MariaDBClient",
                "FailsafeLink", "Grants", "MarinaLogging",
                .product(name: "Logging", package: "swift-log"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"), .product(name: "CoreMetrics", package: "swift-metrics"),
            ]),
        // What the CLI prints with --json and the HTTP API serves: one reading of etcd into one view, and the requests both write.
        .target(
            name: "MarinaViews",
            dependencies: ["Topology", "TopologyStore", "Observation", "Drift", "Operations", "Policy", "StoredRecords", "EtcdClient"]),
        // The controller's HTTP side: the API, Prometheus metrics, the web page (Hummingbird).
        .target(
            name: "MarinaHTTP",
            dependencies: [
                "MarinaViews", "Controller", "Topology", "TopologyStore", "Operations", "Drift", "Observation", "Policy", "EtcdClient",
                "StoredRecords",
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"), .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"), .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .target(
            name: "MarinaSandbox",
            dependencies: [
                "MariaDBClient", "EtcdClient", "BlockingIO", "Topology", "TopologyStore", "ConfigurationFiles",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "marina",
            dependencies: [
                "MarinaSandbox", "MariaDBClient", "EtcdClient", "Topology", "TopologyStore", "Agent", "Observation", "Drift", "ConfigurationFiles",
                "Grants",
                "Operations", "Controller", "Policy", "StoredRecords", "MarinaViews", "MarinaHTTP", "MarinaLogging",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"), .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The agent alone, without ArgumentParser or full Foundation: what runs on every database host.
        .executableTarget(
            name: "marina-agent",
            dependencies: [
                "Agent", "MarinaLogging", .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),

        // Figures for docs/benchmarks.md (`make bench`).
        .executableTarget(
            name: "MarinaBenchmarks",
            dependencies: [
                "MarinaSandbox", "Topology", "TopologyStore", "EtcdClient", "Drift", "Observation",
                "Operations", "MariaDBClient", "MarinaViews", "MarinaHTTP",
                .product(name: "Prometheus", package: "swift-prometheus"), .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),

        // Seeded fuzz inputs for the parsers' tests. No dependency.
        .target(name: "FuzzSupport", path: "Sources/FuzzSupport"),

        // In-memory twins of the two outside systems (etcd, MariaDB) for the controller's decision tests.
        .target(name: "MarinaTwins", dependencies: ["EtcdClient", "MariaDBClient", "Observation"]),

        // Starts real servers for the integration tests; shared by every test target.
        .target(name: "MarinaTestSupport", dependencies: ["MarinaSandbox", "MariaDBClient", "EtcdClient"]),

        .testTarget(name: "TopologyTests", dependencies: ["FuzzSupport", "Topology"]),
        .testTarget(name: "ObservationTests", dependencies: ["FuzzSupport", "Observation", "StoredRecords"]),
        .testTarget(name: "DriftTests", dependencies: ["Drift", "Topology", "Observation"]),
        .testTarget(name: "GrantsTests", dependencies: ["Grants", "Topology", "SQLText", "MarinaTestSupport", "MariaDBClient", "MarinaSandbox"]),
        .testTarget(name: "OperationsTests", dependencies: ["FuzzSupport", "Operations", "Topology", "Observation"]),
        .testTarget(
            name: "ControllerTests",
            dependencies: [
                "FuzzSupport", "Controller", "Policy", "MariaDBClient", "MarinaTwins", "EtcdClient",
                "Operations", "Topology", "TopologyStore", "Observation",
            ]),
        .testTarget(name: "PolicyTests", dependencies: ["FuzzSupport", "Policy", "Topology", "Observation", "StoredRecords"]),
        .testTarget(
            name: "AgentTests",
            dependencies: [
                "FuzzSupport", "Agent", "ConfigurationFiles", "Observation", "TopologyStore", "MarinaSandbox", "MarinaTestSupport",
                "EtcdClient", "MariaDBClient",
            ]),
        .testTarget(
            name: "TopologyStoreTests",
            dependencies: ["FuzzSupport", "TopologyStore", "StoredRecords", "Topology", "EtcdClient", "MarinaTestSupport"]),
        .testTarget(name: "TwinTests", dependencies: ["MarinaTwins", "EtcdClient", "MariaDBClient", "Observation"]),
        .testTarget(name: "MariaDBClientTests", dependencies: ["MariaDBClient", "SQLText", "MarinaTestSupport"]),
        .testTarget(name: "EtcdClientTests", dependencies: ["EtcdClient", "MarinaTestSupport", "MarinaTwins"]),
        .testTarget(name: "ConfigurationFilesTests", dependencies: ["ConfigurationFiles"]),
        .testTarget(name: "StoredRecordsTests", dependencies: ["StoredRecords"]),
        .testTarget(
            name: "MarinaLoggingTests",
            dependencies: ["MarinaLogging", "ConfigurationFiles", "Controller", .product(name: "Logging", package: "swift-log")]),
        .testTarget(
            name: "MarinaSandboxTests",
            dependencies: [
                "MarinaSandbox", "MarinaTestSupport", "MariaDBClient", "EtcdClient",
                "Operations", "TopologyStore", "Topology", "Policy", "Observation", "MarinaViews", "MarinaHTTP", "Controller",
            ],
            // Python helpers the tests run: the Prometheus text parser and the OpenAPI validator.
            exclude: ["Scripts"]),
    ],
    swiftLanguageModes: [.v6]
)
