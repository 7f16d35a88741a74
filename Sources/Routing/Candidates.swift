/// The instances of a request's model that could take it, by how far each got: serving the model,
/// up, in an eligible role and not already failed by this request, and not saturated (`open`).
/// The counts make the refusal say why nothing was chosen.
struct Candidates {
    var ofModel = 0
    var up = 0
    /// Indices into the instance list of the eligible instances, saturated or not.
    var eligible: [Int] = []
    /// Of `eligible`, those not saturated.
    var open: [Int] = []

    init(_ request: RoutingRequest, _ instances: [RoutingInstance], saturated: (RoutingInstance) -> Bool = { _ in false },
        role accepts: (RoutingInstance.Role) -> Bool)
    {
        for index in instances.indices {
            let instance = instances[index]
            guard instance.serves(request.model) else { continue }
            ofModel += 1
            guard instance.state == .up else { continue }
            up += 1
            guard accepts(instance.role), !request.exclude.contains(instance.id) else { continue }
            eligible.append(index)
            if !saturated(instance) { open.append(index) }
        }
    }

    /// Why no instance of this pool can be chosen; nil when one can.
    func refusal(_ request: RoutingRequest, configuration: PolicyConfiguration) -> RoutingDecision? {
        guard ofModel > 0 else { return .noInstance(reason: "no instance serves model '\(request.model)'") }
        guard !eligible.isEmpty else {
            return .noInstance(
                reason: up == 0
                    ? "no instance of model '\(request.model)' is up"
                    : "every up instance of model '\(request.model)' already failed this request")
        }
        guard !open.isEmpty else {
            let full = request.headroom == nil ? "are saturated" : "lack the headroom the request's priority class asks for"
            return .wait(
                retryAfterMilliseconds: configuration.retryAfterMilliseconds,
                reason: "all \(eligible.count) instances of model '\(request.model)' \(full)")
        }
        return nil
    }
}
