import CFuzzDriver
import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
@testable import Scheduler
import Wire

/// libFuzzer drives a live scheduler's handlers with decoded messages: a one-member group in this
/// process (it leads, on a real Raft log in a temporary directory), and each input is a peer's
/// identity (its first byte picks one of several roles and ids) followed by length-prefixed
/// frames, decoded by the real decoder and handed to `SchedulerService` exactly as a connection
/// would: the permission check, the message checks, and then the node's handler (register,
/// report, schedule, finish, drain, deregister, policy, status, Raft messages). The oracle: no
/// trap, no sanitizer report, no hang (libFuzzer's -timeout), and the node still leads and
/// answers every 2,000 inputs.
///
/// Leak detection is off for this harness (Tests/Fuzz/run.sh): LeakSanitizer reports three
/// allocations (808 bytes) made once as the node starts, none per input; ASan's other checks stay.
///
/// Left out: membership changes (a committed change to a member that does not exist takes the
/// group's quorum away by design, and every later input would wait on it) and the long-lived
/// subscription streams. A report stream's reports go through the same checks and handler as
/// `SchedulerService.serveReports` applies to each.
final class Harness: Sendable {
    let node: SchedulerNode
    let service: SchedulerService
    let directory: String

    static let peers: [PeerIdentity] = [
        ("scheduler", Role.scheduler, "2"), ("gateway", .gateway, "gw-1"), ("agent", .agent, "e1"), ("agent", .agent, "e2"),
        ("operator", .operator, "ops"), ("bench", .bench, "bench"), ("scheduler", .scheduler, "1"), ("agent", .agent, "e3"),
    ].map { PeerIdentity(role: $0.1, nodeID: $0.2, address: "fuzz", softwareVersion: "fuzz") }

    init() throws {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm/" : NSTemporaryDirectory()
        directory = base + "junction-fuzz-scheduler-\(getpid())"
        let config = try SchedulerConfiguration.parse(
            [
                "cluster": ["secret": "fuzz-scheduler-secret-0123", "schedulers": [["id": 1, "address": "127.0.0.1:\(try Self.freePort())"]]],
                "scheduler": ["data_dir": directory, "tick_ms": 10, "heartbeat_timeout_ms": 600_000],
            ], id: 1)
        var logger = Logger(label: "fuzz-scheduler")
        logger.logLevel = .critical
        node = try SchedulerNode(config: config, id: 1, logger: logger)
        service = SchedulerService(node: node)
        let node = self.node
        Task.detached { try? await node.run() }
        guard waitForLeadership() else { fatalError("the fuzzed node did not become leader") }
    }

    /// A loopback port nobody listens on now (the node's own listener; nothing dials it here).
    static func freePort() throws -> Int {
        let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
        defer { try? channel.close().wait() }
        return channel.localAddress?.port ?? 0
    }

    func waitForLeadership() -> Bool {
        for _ in 0..<400 {
            if case .statusReply(let status)? = blocking({ try? await self.service.handle(.statusRequest(StatusRequest()), from: Self.peers[4]) }),
                status.raftState == "leader"
            {
                return true
            }
            usleep(5_000)
        }
        return false
    }

    func run(_ body: Envelope.Body, from peer: PeerIdentity) {
        switch body {
        case .raftMessage:
            _ = service.receiveOneWay(body, from: peer)
            // The message was queued onto the node's loop: let it be taken before the next.
            _ = try? node.loop.submit {}.wait()
        case .loadReport(let report):
            // As `serveReports` takes each report of a stream opened for the peer's instance.
            let opened = Envelope.Body.openReportStream(OpenReportStream(instanceID: report.instanceID))
            guard CallPermission.refusal(opened, from: peer) == nil, RequestMessageCheck.problem(body) == nil else { return }
            _ = blocking { try? await self.node.report(report) }
        case .membershipChangeRequest, .subscribeInstances, .subscribeCapacity, .openReportStream:
            return
        case .finishRequest where peer.nodeID.hasSuffix("1"):
            // Gateways send finishes one-way as well as as calls.
            _ = service.receiveOneWay(body, from: peer)
            _ = try? node.loop.submit {}.wait()
        default:
            _ = blocking { try? await self.service.handle(body, from: peer) }
        }
    }
}

/// One value handed from a task to the thread waiting for it.
final class Box<T>: @unchecked Sendable {
    // Written once by the task before it signals, read once after the wait: the semaphore
    // orders the two, so no other synchronisation is needed.
    var value: T?
}

/// Runs `work` to completion from the fuzzer's synchronous callback.
func blocking<T: Sendable>(_ work: @escaping @Sendable () async -> T) -> T {
    let box = Box<T>()
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        box.value = await work()
        done.signal()
    }
    done.wait()
    return box.value!
}

nonisolated(unsafe) var harness: Harness?
nonisolated(unsafe) var inputs = 0

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzScheduler(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard count >= 1, let start, let harness else { return 0 }
    let bytes = UnsafeBufferPointer(start: start, count: count)
    let peer = Harness.peers[Int(bytes[0]) % Harness.peers.count]
    var buffer = ByteBuffer(bytes: bytes.dropFirst())
    var handled = 0
    while handled < 16, let envelope = try? EnvelopeFrameDecoder.decodeFrame(from: &buffer, maxFrameBytes: 1 << 16) {
        if let body = envelope.body { harness.run(body, from: peer) }
        handled += 1
    }
    inputs += 1
    if inputs % 2_000 == 0, !harness.waitForLeadership() {
        fatalError("after \(inputs) inputs the node no longer leads or answers")
    }
    return 0
}

/// SwiftPM names this target's entry point FuzzScheduler_main; libFuzzer's driver takes over from it.
@_cdecl("FuzzScheduler_main")
public func fuzzSchedulerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    // Made before the first input: the node lives for the whole run, and what it allocates
    // starting is not any input's.
    do { harness = try Harness() } catch { fatalError("the fuzzed node did not start: \(error)") }
    // The node's Raft directory goes with the run (libFuzzer ends by exit()).
    atexit { if let directory = harness?.directory { try? FileManager.default.removeItem(atPath: directory) } }
    return LLVMFuzzerRunDriver(&argc, &argv, fuzzScheduler)
}
