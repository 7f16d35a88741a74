import Bench
import Foundation

/// The `junction` binary the trio tests run: the one `make test` builds (`swift build
/// --build-tests`), or `JUNCTION_BIN`.
func junctionBinary() -> String {
    if let path = ProcessInfo.processInfo.environment["JUNCTION_BIN"] { return path }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return root.appendingPathComponent(".build/debug/junction").path
}
