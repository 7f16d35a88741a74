/// Tenants, classes and the queue's size, as the config gives them.
public struct FlowConfiguration: Sendable, Equatable {
    /// Highest first.
    public var classes: [PriorityClass]
    /// Every configured tenant and, last, the default tenant (`defaultTenant`).
    public private(set) var tenants: [TenantPolicy]
    /// Tenants by name, made once: every request looks its tenant up.
    private var tenantIndex: [String: Int]
    /// How many requests may wait at once (the seed's `max_queue_size`).
    public var queueCapacity: Int
    /// Tokens a request is assumed to generate when it sets no `max_tokens`, for the token budget
    /// and fair share until its real usage is known.
    public var assumedCompletionTokens: Int
    /// Tenant limits hold across every gateway, through leases of the scheduler leader's budgets
    /// (`ClusterBudgets`); false: each gateway enforces every limit alone.
    public var clusterBudgets: Bool

    public static let defaultTenantName = "default"

    public init(
        classes: [PriorityClass] = PriorityClass.defaults(ttl: .seconds(30)), tenants: [TenantPolicy] = [], queueCapacity: Int,
        assumedCompletionTokens: Int = 256, clusterBudgets: Bool = false
    ) {
        self.clusterBudgets = clusterBudgets
        self.classes = classes.isEmpty ? PriorityClass.defaults(ttl: .seconds(30)) : classes
        var all = tenants.filter { $0.name != Self.defaultTenantName }
        let standard = self.classes.firstIndex { $0.name == "standard" } ?? min(1, self.classes.count - 1)
        all.append(tenants.first { $0.name == Self.defaultTenantName } ?? TenantPolicy(name: Self.defaultTenantName, classRank: standard))
        self.tenants = all
        tenantIndex = Dictionary(all.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.queueCapacity = queueCapacity
        self.assumedCompletionTokens = assumedCompletionTokens
    }

    public var defaultTenant: Int { tenants.count - 1 }

    /// The tenant an authenticated client belongs to (its API key's client name), or the default.
    public func tenant(named name: String?) -> Int {
        guard let name else { return defaultTenant }
        return tenantIndex[name] ?? defaultTenant
    }

    public func classRank(named name: String) -> Int? { classes.firstIndex { $0.name == name } }

    /// The engine `priority` a request of class `rank` is sent with; nil when no class sets one
    /// (bodies are then forwarded untouched).
    public func enginePriority(ofClass rank: Int) -> Int? {
        guard classes.contains(where: { $0.enginePriority != nil }) else { return nil }
        return classes[rank].enginePriority ?? 0
    }
}
