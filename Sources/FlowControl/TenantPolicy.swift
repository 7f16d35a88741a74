/// What a tenant may do: its priority class (an index into the configured classes), its weight
/// in fair sharing, and its limits (nil: none). Each API key names a tenant; requests without a
/// key, or whose key names no configured tenant, belong to the default tenant.
public struct TenantPolicy: Sendable, Equatable {
    public var name: String
    public var classRank: Int
    /// A tenant of weight 2 gets twice the engine time of a tenant of weight 1 when both wait.
    public var weight: Double
    public var maxConcurrent: Int?
    public var requestsPerMinute: Int?
    /// Prompt and completion tokens together: estimated at admission, corrected at the end from
    /// the engine's usage.
    public var tokensPerMinute: Int?

    public init(
        name: String, classRank: Int, weight: Double = 1, maxConcurrent: Int? = nil, requestsPerMinute: Int? = nil,
        tokensPerMinute: Int? = nil
    ) {
        self.name = name
        self.classRank = classRank
        self.weight = weight
        self.maxConcurrent = maxConcurrent
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
    }

    public var hasLimits: Bool { maxConcurrent != nil || requestsPerMinute != nil || tokensPerMinute != nil }
}
