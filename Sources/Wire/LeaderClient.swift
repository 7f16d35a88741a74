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
    private let configuration: WireConfiguration
    private let group: any EventLoopGroup
    private let logger: Logger
    private var next = 1
    /// The discovery under way, which every caller that finds the scheduler silent meanwhile
    /// awaits rather than starting its own (one round of dials, not one per waiting request).
    private var discovery: Task<Target?, Never>?

    public init(schedulers: [Target], configuration: WireConfiguration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger) {
        precondition(!schedulers.isEmpty, "a LeaderClient needs at least one scheduler")
        self.schedulers = schedulers
        self.configuration = configuration
        self.group = group
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
                // every call's budget is shorter than a dial, no dial would ever complete. Unless
                // the others name another leader: a dial to a host that is cut off hangs for the
                // whole connect timeout, and asking everyone finds where to go meanwhile.
                try Task.checkCancellation()
                if await client.isDialling {
                    lastProblem = "\(await client.currentTarget): still connecting"
                    await discoverLeader(within: max(.milliseconds(1), min(attempt, end - clock.now)))
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
                if error.retryAfterMs == 0, !error.peerResponsive, await discoverLeader(within: attempt) == nil { await moveToNext() }
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
            await follow(target, because: "term \(hint.term)")
        } else {
            await moveToNext()
        }
    }

    /// Moves to `target`, a leader found some other way (another client's discovery).
    public func follow(_ target: Target, because reason: String = "found by discovery") async {
        guard await client.currentTarget != target else { return }
        logger.info("following the scheduler leader", metadata: ["leader": "\(target)", "because": "\(reason)"])
        await client.retarget(target)
    }

    /// Asks every listed scheduler for its status at once, for at most `budget`, and follows the
    /// leader the answers name (`LeaderDiscovery`). Returns it, or nil when none is known (then
    /// the client stays where it is). Callers arriving while a discovery runs share it.
    @discardableResult
    public func discoverLeader(within budget: Duration) async -> Target? {
        if let discovery { return await discovery.value }
        let (schedulers, configuration, group, logger) = (schedulers, configuration, group, logger)
        let running = Task { await Self.askEveryone(schedulers, within: budget, configuration: configuration, group: group, logger: logger) }
        discovery = running
        let found = await running.value
        discovery = nil
        if let found { await follow(found, because: "every scheduler asked") }
        return found
    }

    /// One dial and one status call per scheduler, all at once; each is bounded by `budget`
    /// (the connect timeout included), so a silent host costs no more than that, and nothing
    /// once a majority's answers settle who leads (`LeaderDiscovery.settled`): the askers run
    /// as tasks of their own so the answer need not wait for a dial that cannot be cancelled.
    private static func askEveryone(
        _ schedulers: [Target], within budget: Duration, configuration: WireConfiguration, group: any EventLoopGroup, logger: Logger
    ) async -> Target? {
        let (answers, arrive) = AsyncStream.makeStream(of: (asked: Target, status: StatusReply)?.self)
        let askers = schedulers.map { target in
            Task {
                arrive.yield(await ask(target, within: budget, configuration: configuration, group: group, logger: logger))
            }
        }
        defer { askers.forEach { $0.cancel() } }
        var heard: [(asked: Target, status: StatusReply)] = []
        var count = 0
        for await answer in answers {
            count += 1
            if let answer { heard.append(answer) }
            if let leader = LeaderDiscovery.settled(heard, of: schedulers.count) { return leader }
            if count == schedulers.count { break }
        }
        return LeaderDiscovery.leader(from: heard)
    }

    private static func ask(
        _ target: Target, within budget: Duration, configuration: WireConfiguration, group: any EventLoopGroup, logger: Logger
    ) async -> (asked: Target, status: StatusReply)? {
        let clock = ContinuousClock()
        let end = clock.now + budget
        guard let connection = try? await WireClient.connect(
            host: target.host, port: target.port, configuration: configuration, group: group, connectTimeout: budget, logger: logger)
        else { return nil }
        defer { connection.close(reason: "leader discovery done") }
        let left = end - clock.now
        guard left > .zero, case .statusReply(let status)? = try? await connection.call(.statusRequest(StatusRequest()), timeout: left)
        else { return nil }
        return (target, status)
    }

    public func moveToNext() async {
        guard schedulers.count > 1 else { return }
        let target = schedulers[next % schedulers.count]
        next += 1
        await client.retarget(target)
    }
}
