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
    /// Where this run's output begins in the log: a restarted process appends to its
    /// predecessor's, whose lines (an old port, say) must not be taken for this one's.
    private let logStart: UInt64
    private let process: Process

    public init(name: String, binary: String, arguments: [String], directory: String) throws {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw SpawnError.noBinary(binary)
        }
        self.name = name
        logPath = directory + "/\(name).log"
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        logStart = handle.seekToEndOfFile()
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
        try await printedWord(after: "metrics listening on ", within: limit)
    }

    /// The word that follows `marker` in the first log line holding it (an address the process
    /// printed once it was listening), waiting for the line up to `limit`. Throws at once if the
    /// process exits without printing it.
    public func printedWord(after marker: String, within limit: Duration = .seconds(20)) async throws -> String {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < limit {
            // Whether it ran before the read: a line printed just before it exited is still read.
            let running = process.isRunning
            let text = ownOutput()
            if let line = text.split(separator: "\n").first(where: { $0.contains(marker) }), let range = line.range(of: marker),
                let word = line[range.upperBound...].split(separator: " ").first
            {
                return String(word)
            }
            if !running { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw SpawnError.notPrinted(name, marker)
    }

    /// What this run has written to the log so far.
    private func ownOutput() -> String {
        guard let handle = FileHandle(forReadingAtPath: logPath) else { return "" }
        defer { try? handle.close() }
        guard (try? handle.seek(toOffset: logStart)) != nil, let data = try? handle.readToEnd() else { return "" }
        return String(decoding: data, as: UTF8.self)
    }

    public func log(lines: Int = 30) -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return "--- \(name) ---\n" + text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }
}

public enum SpawnError: Error, CustomStringConvertible {
    case noBinary(String)
    case notPrinted(String, String)
    public var description: String {
        switch self {
        case .noBinary(let path): "no junction binary at \(path): run `swift build` (or set JUNCTION_BIN)"
        case .notPrinted(let name, let marker): "\(name) printed no \"\(marker)\" line"
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
