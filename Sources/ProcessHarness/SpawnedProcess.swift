import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A child process with its output appended to a log file (`<directory>/<name>.log`), stopped
/// by PID. Used by the local trio, the benchmarks and the process tests.
public final class SpawnedProcess: @unchecked Sendable {
    // Safe: `process` is set once in init and only read after; Foundation's Process is itself
    // thread-safe for signalling and waiting.
    public let name: String
    public let logPath: String
    private let process: Process

    public init(name: String, binary: String, arguments: [String], directory: String) throws {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw SpawnError.noBinary(binary)
        }
        self.name = name
        logPath = directory + "/\(name).log"
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        handle.seekToEndOfFile()
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    public var isRunning: Bool { process.isRunning }

    /// Sends `signal` and waits for the process to exit (SIGSTOP excepted).
    public func stop(_ signal: Int32 = SIGKILL) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, signal)
        if signal != SIGSTOP && signal != SIGCONT { process.waitUntilExit() }
    }

    /// The URL the process printed in its "metrics listening on URL" line (it was started with
    /// `--metrics-listen HOST:0`), waiting for the line up to `limit`.
    public func metricsURL(within limit: Duration = .seconds(20)) async throws -> String {
        let marker = "metrics listening on "
        let start = ContinuousClock.now
        while ContinuousClock.now - start < limit {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.contains(marker) }), let range = line.range(of: marker) {
                return String(line[range.upperBound...]).trimmingCharacters(in: .whitespaces)
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw SpawnError.noMetricsURL(name)
    }

    public func log(lines: Int = 30) -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return "--- \(name) ---\n" + text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }
}

public enum SpawnError: Error, CustomStringConvertible {
    case noBinary(String)
    case noMetricsURL(String)
    public var description: String {
        switch self {
        case .noBinary(let path): "no junction binary at \(path): run `swift build` (or set JUNCTION_BIN)"
        case .noMetricsURL(let name): "\(name) printed no \"metrics listening on\" line"
        }
    }
}

/// The `junction` binary the process tests run: `JUNCTION_BIN`, or the debug build of the
/// package the calling test file belongs to (`make test` builds it first).
public func builtJunctionBinary(testFile: String = #filePath) -> String {
    if let path = ProcessInfo.processInfo.environment["JUNCTION_BIN"] { return path }
    let root = URL(fileURLWithPath: testFile).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return root.appendingPathComponent(".build/debug/junction").path
}
