import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A loopback TCP port nobody listens on right now, for a process a test starts and must name in
/// advance (a scheduler trio's members list each other's ports).
///
/// Taken at random below the kernel's ephemeral range, and checked by binding it: the kernel's
/// own choice for port 0 comes from that range, which is also where every outgoing connection
/// of every test running at the same time takes its local port, so a port chosen there was seen
/// taken before the process bound it ("Address already in use"). Below the range, only another
/// caller's pick can collide, and within this process none can: a port is handed out once. (A
/// port handed out but not bound at the moment, such as a killed node's before its restart or a
/// spare member's never started, binds fine, so the bind check alone gave it out twice; CI saw
/// an engine simulator fail with "Address already in use".)
public func freeLoopbackPort() throws -> Int {
    let low = ephemeralPortsStart()
    let candidates = 10_000..<max(10_001, low)
    for _ in 0..<200 {
        let port = Int.random(in: candidates)
        if handedOut.claim(port) {
            if canBind(port) { return port }
            handedOut.release(port)
        }
    }
    throw POSIXError(.EADDRINUSE)
}

/// The ports `freeLoopbackPort` has given out in this process.
private let handedOut = HandedOutPorts()

private final class HandedOutPorts: Sendable {
    private let ports = Mutex<Set<Int>>([])

    /// True if `port` was not handed out before (it is now).
    func claim(_ port: Int) -> Bool { ports.withLock { $0.insert(port).inserted } }
    func release(_ port: Int) { _ = ports.withLock { $0.remove(port) } }
}

/// The first port of `net.ipv4.ip_local_port_range` (Linux's default 32768 if unreadable).
private func ephemeralPortsStart() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8),
        let first = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first, let low = Int(first)
    else { return 32_768 }
    return low
}

private func canBind(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}
