/// Which engine the simulator impersonates: its `/v1/models` owner, its error bodies, its
/// `/metrics` names and its extra endpoints.
public enum Dialect: String, Sendable, CaseIterable {
    case vllm, sglang, bladellm

    var ownedBy: String { rawValue }
}
