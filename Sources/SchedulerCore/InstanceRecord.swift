import Routing

/// One engine instance as the replicated registry knows it.
public struct InstanceRecord: Sendable, Equatable {
    public enum Engine: String, Sendable, CaseIterable { case unspecified, vllm, sglang, bladellm, simulator }

    public var id: String
    public var endpointURL: String
    /// The base model's name, its other names, and the LoRA adapters served on top of it: a
    /// request for any of these may come here.
    public var model: String
    public var aliases: [String]
    public var adapters: [String]
    public var engine: Engine
    public var role: RoutingInstance.Role
    public var state: RoutingInstance.State
    /// KV-cache size in tokens and tokens per block; nil when the engine does not say.
    public var kvCapacityTokens: Int?
    public var kvBlockSize: Int?
    /// SGLang prefill instances: the bootstrap server's port, where decode instances fetch the KV
    /// cache; nil when not given.
    public var bootstrapPort: Int?
    /// The agent's node id, for operators.
    public var agentNode: String
    /// When and why the state last changed (the leader's clock, carried in the command, so every
    /// member applies the same value).
    public var stateChangedUnixMilliseconds: UInt64
    public var stateReason: String

    public init(
        id: String, endpointURL: String, model: String, aliases: [String] = [], adapters: [String] = [], engine: Engine = .unspecified, role: RoutingInstance.Role = .both,
        state: RoutingInstance.State = .up, kvCapacityTokens: Int? = nil, kvBlockSize: Int? = nil, bootstrapPort: Int? = nil, agentNode: String = "",
        stateChangedUnixMilliseconds: UInt64 = 0, stateReason: String = ""
    ) {
        self.id = id
        self.endpointURL = endpointURL
        self.model = model
        self.aliases = aliases
        self.adapters = adapters
        self.engine = engine
        self.role = role
        self.state = state
        self.kvCapacityTokens = kvCapacityTokens
        self.kvBlockSize = kvBlockSize
        self.bootstrapPort = bootstrapPort
        self.agentNode = agentNode
        self.stateChangedUnixMilliseconds = stateChangedUnixMilliseconds
        self.stateReason = stateReason
    }

    /// Every name a request may ask for this instance by.
    public var servedModels: [String] { [model] + aliases + adapters }

    public func serves(_ name: String) -> Bool { model == name || aliases.contains(name) || adapters.contains(name) }

    /// The same instance, ignoring when and why its state last changed.
    func sameDescription(as other: InstanceRecord) -> Bool {
        var a = self
        var b = other
        a.stateChangedUnixMilliseconds = 0
        a.stateReason = ""
        b.stateChangedUnixMilliseconds = 0
        b.stateReason = ""
        return a == b
    }
}
