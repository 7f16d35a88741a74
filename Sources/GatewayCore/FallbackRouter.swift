/// An engine instance as the gateway's cached instance table knows it.
public struct InstanceRef: Sendable, Equatable {
    public var id: String
    public var endpointURL: String
    /// The base model's name; `alsoServes` lists the instance's other names (aliases, LoRA adapters).
    public var model: String
    public var alsoServes: [String]
    public var isUp: Bool
    /// A pd-split prefill instance: takes whole requests only when no other instance of the model can.
    public var isPrefillOnly: Bool

    public init(id: String, endpointURL: String, model: String, alsoServes: [String] = [], isUp: Bool, isPrefillOnly: Bool = false) {
        self.id = id
        self.endpointURL = endpointURL
        self.model = model
        self.alsoServes = alsoServes
        self.isUp = isUp
        self.isPrefillOnly = isPrefillOnly
    }

    public func serves(_ name: String) -> Bool { model == name || alsoServes.contains(name) }
}

/// How the gateway routes while no scheduler answers: round-robin over the up instances of the
/// model in its cached table, skipping for a short cool-off those that just failed here (a few
/// seconds, so a recovered engine is back in rotation almost at once, unlike a minute-long
/// circuit breaker). Pure: the caller passes the time.
public struct FallbackRouter: Sendable {
    public var coolOffSeconds: Double
    private var cursor = 0
    private var failedUntil: [String: Double] = [:]

    public init(coolOffSeconds: Double = 2) { self.coolOffSeconds = coolOffSeconds }

    /// The next instance for `model`, not in `exclude`; instances cooling off only when no other
    /// is left, prefill-only instances only when no other kind is. nil when the table has no up
    /// instance of the model outside `exclude`.
    public mutating func choose(model: String, in table: [InstanceRef], exclude: Set<String>, now: Double) -> InstanceRef? {
        let usable = table.filter { $0.isUp && $0.serves(model) && !exclude.contains($0.id) }
        let whole = usable.filter { !$0.isPrefillOnly }
        let candidates = whole.isEmpty ? usable : whole
        guard !candidates.isEmpty else { return nil }
        let fresh = candidates.filter { !isCoolingOff($0.id, now: now) }
        let pool = fresh.isEmpty ? candidates : fresh
        let chosen = pool[cursor % pool.count]
        cursor &+= 1
        return chosen
    }

    public mutating func failed(_ id: String, now: Double) { failedUntil[id] = now + coolOffSeconds }
    public mutating func succeeded(_ id: String) { failedUntil[id] = nil }
    public func isCoolingOff(_ id: String, now: Double) -> Bool { (failedUntil[id] ?? 0) > now }
}

/// What to do after an attempt on an engine failed before any byte reached the client.
public enum RetryDecision: Sendable, Equatable {
    /// Try another instance (the engine could not or would not serve: connection failure, 5xx, 429).
    case retryElsewhere
    /// Give the client the engine's own answer (a 4xx is about the request, not the engine).
    case passToClient
}

public enum RetryPolicy {
    /// `status` nil means no HTTP answer at all (refused, reset, timed out).
    public static func decide(status: Int?) -> RetryDecision {
        guard let status else { return .retryElsewhere }
        if status == 429 || status >= 500 { return .retryElsewhere }
        return .passToClient
    }
}
