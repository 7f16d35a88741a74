#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct RaftStoreError: Error, CustomStringConvertible, Equatable {
    public var description: String

    static func io(_ what: String, _ path: String) -> RaftStoreError {
        RaftStoreError(description: "raft storage: \(what) \(path): \(String(cString: strerror(errno)))")
    }

    static func corrupt(_ path: String, offset: Int, _ why: String) -> RaftStoreError {
        RaftStoreError(description: "raft storage: \(path) is corrupt at offset \(offset): \(why); refusing to start (restore this node from a peer)")
    }
}

/// Thin wrappers over POSIX file calls: the WAL needs append, fsync, truncate and rename with
/// exact control over what is durable when.
enum FileIO {
    static func readAll(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw RaftStoreError.io("open", path) }
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw RaftStoreError.io("read", path) }
            if n == 0 { return out }
            out.append(contentsOf: buffer[0..<n])
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 { if errno == EINTR { continue }; throw RaftStoreError.io("write", path) }
            offset += n
        }
    }

    static func sync(_ fd: Int32, path: String) throws {
        guard fsync(fd) == 0 else { throw RaftStoreError.io("fsync", path) }
    }

    /// Makes a rename or a new file in `dir` durable.
    static func syncDirectory(_ dir: String) throws {
        let fd = open(dir, O_RDONLY)
        guard fd >= 0 else { throw RaftStoreError.io("open directory", dir) }
        defer { close(fd) }
        try sync(fd, path: dir)
    }

    /// Creates `path` and any missing parents.
    static func makeDirectory(_ path: String) throws {
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            let parent = String(path[..<slash])
            if access(parent, F_OK) != 0 { try makeDirectory(parent) }
        }
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw RaftStoreError.io("mkdir", path) }
    }

    static func list(_ dir: String) throws -> [String] {
        guard let d = opendir(dir) else { throw RaftStoreError.io("opendir", dir) }
        defer { closedir(d) }
        var names: [String] = []
        while let entry = readdir(d) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Writes a whole file atomically: temporary file, fsync, rename, fsync the folder.
    static func writeAtomically(_ bytes: [UInt8], to path: String, dir: String) throws {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw RaftStoreError.io("create", tmp) }
        do {
            try writeAll(fd, bytes, path: tmp)
            try sync(fd, path: tmp)
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        guard rename(tmp, path) == 0 else { throw RaftStoreError.io("rename", tmp) }
        try syncDirectory(dir)
    }

    static func remove(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT { throw RaftStoreError.io("unlink", path) }
    }
}
