import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A child process of the test with its output in a log file; killed by PID.
final class SpawnedProcess: @unchecked Sendable {
    // Safe: `process` is set once in init and only read after; Foundation's Process is itself
    // thread-safe for signalling and waiting.
    let name: String
    let logPath: String
    private let process: Process

    init(name: String, binary: String, arguments: [String], directory: String) throws {
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

    var isRunning: Bool { process.isRunning }

    /// Sends `signal` and waits for the process to exit (SIGSTOP excepted).
    func stop(_ signal: Int32 = SIGKILL) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, signal)
        if signal != SIGSTOP && signal != SIGCONT { process.waitUntilExit() }
    }

    func log(lines: Int = 30) -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return "--- \(name) ---\n" + text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }
}
