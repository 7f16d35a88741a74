/// A priority class: requests of a higher class are served before those of a lower one whenever
/// both wait. Classes are ordered, highest first (`rank` 0); the defaults are `interactive`,
/// `standard` and `batch`, and a config may name its own.
public struct PriorityClass: Sendable, Equatable {
    public var name: String
    /// How long a request of this class may wait in the gateway's queue before it is answered
    /// with an error instead (its time to live).
    public var ttl: Duration
    /// After waiting this long, a request is served as one class higher, and again after each
    /// further period, so a lower class is never starved for ever by the queue's order. Its
    /// headroom stays its own class's: aging does not let it take room its class may not. nil: it
    /// never ages.
    public var agingAfter: Duration?
    /// What the engines must have free before a request of this class is sent to one. nil: any
    /// engine that is not saturated takes it (the leader's own rule).
    public var headroom: Headroom?
    /// The `priority` the gateway sets in this class's request bodies, for engines that schedule
    /// by it (vLLM's `--scheduling-policy priority`: lower first, preempted last). nil: 0 when
    /// another class sets one, and the body untouched when none does.
    public var enginePriority: Int?

    public init(name: String, ttl: Duration, agingAfter: Duration? = nil, headroom: Headroom? = nil, enginePriority: Int? = nil) {
        self.enginePriority = enginePriority
        self.name = name
        self.ttl = ttl
        self.agingAfter = agingAfter
        self.headroom = headroom
    }

    /// The classes a config that names none gets, each with time to live `ttl` (the gateway's
    /// `wait_schedule_timeout`): `standard` treated as `interactive` after waiting a third of it,
    /// and `batch` sent only while an engine has room to spare (nothing waiting in it, KV at most
    /// 90 %, less than 100 ms of prompt work queued) and treated as `standard` after waiting half
    /// of it.
    public static func defaults(ttl: Duration) -> [PriorityClass] {
        [
            PriorityClass(name: "interactive", ttl: ttl),
            PriorityClass(name: "standard", ttl: ttl, agingAfter: ttl / 3),
            PriorityClass(name: "batch", ttl: ttl, agingAfter: ttl / 2, headroom: Headroom(maxWaiting: 0, maxKVUsage: 0.9, maxPrefillMilliseconds: 100)),
        ]
    }
}

/// Room an engine must have for a class's request: at most `maxWaiting` requests waiting in it,
/// KV usage at most `maxKVUsage`, (when non-zero) at most `maxRunning` sequences running, and
/// (when non-zero) less than `maxPrefillMilliseconds` of prompt work sent to it and not yet
/// computed. The leader applies it with its fresh reports and its own estimate of the prompt
/// work; the gateway sends it with each request.
public struct Headroom: Sendable, Equatable {
    public var maxWaiting: Int
    public var maxKVUsage: Double
    /// 0: no bound on running sequences.
    public var maxRunning: Int
    /// 0: no bound on the prompt work queued ahead. This is what an interactive request arriving
    /// next would wait behind: a bound here keeps spare-room classes from delaying it.
    public var maxPrefillMilliseconds: Int

    public init(maxWaiting: Int, maxKVUsage: Double, maxRunning: Int = 0, maxPrefillMilliseconds: Int = 0) {
        self.maxWaiting = maxWaiting
        self.maxKVUsage = maxKVUsage
        self.maxRunning = maxRunning
        self.maxPrefillMilliseconds = maxPrefillMilliseconds
    }
}
