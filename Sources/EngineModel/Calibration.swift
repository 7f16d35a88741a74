import Seeded

/// A closed-loop, multi-turn chat workload run against `instances` engines in model time, with
/// no clock and no HTTP: what a profile alone predicts for TTFT, TPOT and throughput. Requests
/// are placed round-robin (a router that ignores the cache) or sticky (each conversation stays
/// on one engine: ideal prefix affinity). Used to check profiles against the seed's published
/// figures (`junction engine-sim calibrate`).
public struct CalibrationWorkload: Sendable {
    public enum Placement: String, Sendable, CaseIterable {
        case roundRobin = "round-robin"
        case sticky
    }

    public var instances: Int = 1
    public var placement: Placement = .roundRobin
    public var clients: Int
    public var requests: Int
    public var turnsPerConversation: ClosedRange<Int>
    public var userTokensMedian: Double
    public var userTokensSigma: Double
    public var answerTokensMedian: Double
    public var answerTokensSigma: Double
    public var seed: UInt64

    public init(
        clients: Int, requests: Int, turnsPerConversation: ClosedRange<Int> = 1...4,
        userTokensMedian: Double = 200, userTokensSigma: Double = 0.8,
        answerTokensMedian: Double = 1100, answerTokensSigma: Double = 0.6, seed: UInt64 = 1
    ) {
        self.clients = clients
        self.requests = requests
        self.turnsPerConversation = turnsPerConversation
        self.userTokensMedian = userTokensMedian
        self.userTokensSigma = userTokensSigma
        self.answerTokensMedian = answerTokensMedian
        self.answerTokensSigma = answerTokensSigma
        self.seed = seed
    }
}

public struct CalibrationResult: Sendable {
    public var requests = 0
    public var duration = 0.0
    public var inputTokens = 0
    public var outputTokens = 0
    public var cachedTokens = 0
    public var preemptions = 0
    public var timesToFirstToken: [Double] = []
    public var timesPerOutputToken: [Double] = []
}

public enum Calibration {
    public static func run(profile: EngineProfile, workload: CalibrationWorkload) throws(EngineModelError) -> CalibrationResult {
        var engines: [EngineCore] = []
        for _ in 0..<max(1, workload.instances) { engines.append(try EngineCore(profile: profile)) }
        // Each engine keeps its own clock; the one with work and the earliest clock steps next,
        // so steps of different engines interleave as they would in time.
        var clocks = Array(repeating: 0.0, count: engines.count)
        var rng = SplitMix64(seed: workload.seed)
        var clients = (0..<workload.clients).map { index in Conversation(home: index % engines.count) }
        var owner: [Placed: Int] = [:]
        var result = CalibrationResult()
        var now = 0.0
        var submitted = 0
        var nextEngine = 0

        func logNormal(_ median: Double, _ sigma: Double) -> Int {
            OutputPlan(seed: rng.next(), medianLength: median, sigma: sigma).naturalLength
        }
        func startTurn(_ client: Int) throws(EngineModelError) {
            guard submitted < workload.requests else { return }
            var conversation = clients[client]
            if conversation.turnsLeft == 0 || conversation.history.count > profile.maxModelLength / 2 {
                conversation = Conversation(home: conversation.home)
                conversation.turnsLeft = Int.random(in: workload.turnsPerConversation, using: &rng)
            }
            let userTokens = logNormal(workload.userTokensMedian, workload.userTokensSigma)
            for _ in 0..<userTokens { conversation.history.append(UInt32(rng.next() % 151_000)) }
            let answer = min(
                logNormal(workload.answerTokensMedian, workload.answerTokensSigma),
                profile.maxModelLength - conversation.history.count)
            guard answer >= 1 else {
                conversation.turnsLeft = 0
                clients[client] = conversation
                return try startTurn(client)
            }
            let engine: Int
            switch workload.placement {
            case .roundRobin:
                engine = nextEngine
                nextEngine = (nextEngine + 1) % engines.count
            case .sticky:
                engine = conversation.home
            }
            if !engines[engine].hasWork { clocks[engine] = max(clocks[engine], now) }
            let id = try engines[engine].submit(
                GenerationRequest(promptTokens: conversation.history, maxTokens: answer, ignoreEOS: true, seed: rng.next()))
            conversation.turnsLeft -= 1
            conversation.submittedAt = now
            conversation.firstTokenAt = nil
            conversation.answer = []
            clients[client] = conversation
            owner[Placed(engine: engine, id: id)] = client
            submitted += 1
        }

        for client in clients.indices { try startTurn(client) }
        while let engine = engines.indices.filter({ engines[$0].hasWork }).min(by: { clocks[$0] < clocks[$1] }),
            let step = engines[engine].step()
        {
            clocks[engine] += step.duration
            now = clocks[engine]
            for event in step.events {
                switch event {
                case .scheduled: break
                case .token(let id, let token):
                    guard let client = owner[Placed(engine: engine, id: id)] else { continue }
                    if clients[client].firstTokenAt == nil {
                        clients[client].firstTokenAt = now
                        result.timesToFirstToken.append(now - clients[client].submittedAt)
                    }
                    clients[client].answer.append(token)
                case .finished(let id, _, let usage):
                    guard let client = owner.removeValue(forKey: Placed(engine: engine, id: id)) else { continue }
                    let first = clients[client].firstTokenAt ?? now
                    if usage.completionTokens > 1 {
                        result.timesPerOutputToken.append((now - first) / Double(usage.completionTokens - 1))
                    }
                    result.requests += 1
                    result.inputTokens += usage.promptTokens
                    result.outputTokens += usage.completionTokens
                    result.cachedTokens += usage.cachedTokens
                    clients[client].history += clients[client].answer
                    try startTurn(client)
                }
            }
        }
        result.duration = clocks.max() ?? 0
        result.preemptions = engines.reduce(0) { $0 + $1.counters.preemptions }
        return result
    }

    private struct Placed: Hashable {
        var engine: Int
        var id: EngineRequestID
    }

    private struct Conversation {
        var home: Int
        var history: [UInt32] = []
        var turnsLeft = 0
        var answer: [UInt32] = []
        var submittedAt = 0.0
        var firstTokenAt: Double?
    }
}
