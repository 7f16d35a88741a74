import Logging
import NIOCore
import NIOPosix

/// A client of the scheduler trio that finds and follows its leader: one reconnecting
/// connection, pointed at the scheduler believed to lead. A `NotLeader` answer with an address
/// moves it there; one without (an election is under way) or a scheduler that does not answer
/// moves it to the next listed scheduler. Agents and gateways use it.
public actor LeaderClient {
    public typealias Target = ReconnectingWireClient.Target

    private let schedulers: [Target]
    private let client: ReconnectingWireClient
    private let logger: Logger
    private var next = 1

    public init(schedulers: [Target], configuration: WireConfiguration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger) {
        precondition(!schedulers.isEmpty, "a LeaderClient needs at least one scheduler")
        self.schedulers = schedulers
        self.logger = logger
        client = ReconnectingWireClient(
            target: schedulers[0], configuration: configuration, backoff: Backoff(base: .milliseconds(20), cap: .milliseconds(500)),
            group: group, logger: logger)
    }

    /// Keeps the connection up until cancelled; run it beside the work that calls.
    public nonisolated func run() async { await client.run() }

    public var target: Target { get async { await client.currentTarget } }

    /// The connection to the scheduler believed to lead, if it is up now (no waiting).
    public nonisolated var liveConnection: WireConnection? { client.liveConnection }

    /// Sends `request` to the leader, following redirects, for at most `deadline`. Each attempt
    /// waits at most `attempt` for its answer. Returns the leader's reply (which may be an
    /// `Error` thrown as `WireError`); throws UNAVAILABLE when no leader answered in time.
    public func call(_ request: Envelope.Body, attempt: Duration = .seconds(1), deadline: Duration = .seconds(5)) async throws
        -> Envelope.Body
    {
        let clock = ContinuousClock()
        let end = clock.now + deadline
        var lastProblem = "no scheduler answered"
        while clock.now < end {
            let connection: WireConnection
            do {
                connection = try await client.connection(within: min(attempt, end - clock.now))
            } catch {
                lastProblem = "\(await client.currentTarget) is unreachable"
                // A dial still under way (a TLS handshake on a loaded machine, a distant network)
                // is left to finish: it fails by itself at the handshake deadline if the scheduler
                // is frozen, and the next call moves on then. Moving now would abandon it, and if
                // every call's budget is shorter than a dial, no dial would ever complete.
                try Task.checkCancellation()
                if await client.isDialling {
                    lastProblem = "\(await client.currentTarget): still connecting"
                    continue
                }
                await moveToNext()
                continue
            }
            let reply: Envelope.Body
            do {
                reply = try await connection.call(request, timeout: attempt)
            } catch let error as WireError where error.code == .unavailable || error.code == .timeout {
                // A retry hint means "this scheduler, a little later" (e.g. just elected), and so
                // does a timeout on a connection the scheduler still answers on (one slow call:
                // moving would close the connection and fail every other call on it). Otherwise
                // the connection failed or the scheduler is silent (stopped, frozen): try the next.
                lastProblem = "\(await client.currentTarget): \(error.message)"
                if error.retryAfterMs == 0, !error.peerResponsive { await moveToNext() }
                try await Task.sleep(for: .milliseconds(Int(max(10, min(error.retryAfterMs, 200)))))
                continue
            }
            guard case .notLeader(let hint) = reply else { return reply }
            await follow(hint)
            lastProblem = hint.leaderAddress.isEmpty ? "no leader elected (term \(hint.term))" : "redirected to \(hint.leaderAddress)"
            if hint.leaderAddress.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
        }
        throw WireError(.unavailable, "no scheduler leader within \(deadline): \(lastProblem)", retryAfterMs: 100)
    }

    /// The live connection to the scheduler believed to lead (for opening streams).
    public func connection(within timeout: Duration) async throws -> WireConnection {
        try await client.connection(within: timeout)
    }

    /// Moves to the leader a `NotLeader` names, or to the next scheduler when it names none.
    public func follow(_ hint: NotLeader) async {
        if let target = Target(address: hint.leaderAddress) {
            if await client.currentTarget != target {
                logger.info("following the scheduler leader", metadata: ["leader": "\(target)", "term": "\(hint.term)"])
                await client.retarget(target)
            }
        } else {
            await moveToNext()
        }
    }

    public func moveToNext() async {
        guard schedulers.count > 1 else { return }
        let target = schedulers[next % schedulers.count]
        next += 1
        await client.retarget(target)
    }
}
