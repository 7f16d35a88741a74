import Wire

/// What the messages of agents, gateways and operators must be before a scheduler acts on them,
/// as `RaftMessageCheck` is for its peers': strings that go into the replicated registry, the
/// instance table every gateway holds, or the leader's per-request slots are bounded; numbers the
/// routing compares are finite. Without it one agent could register a 4 MiB model name that
/// every scheduler stores and every gateway receives with each table, and a NaN load report
/// would make every comparison in the policy false. A message that fails is refused with the
/// reason (INVALID_ARGUMENT) and counted as `invalid_message`; the state never sees it.
///
/// The bounds are far beyond any honest value: ids as long as a DNS name, URLs of 2 KiB.
public enum RequestMessageCheck {
    public static let maxIDBytes = Credential.maxNodeIDBytes
    public static let maxModelBytes = 256
    public static let maxURLBytes = 2_048
    public static let maxTextBytes = 1_024
    public static let maxRequestIDBytes = 256
    public static let maxExcludedInstances = 256
    public static let maxPolicyParameters = 64
    public static let maxServedNames = RegistrationLimits.maxServedNames

    /// nil when `body` may be acted on; otherwise what is wrong with it.
    public static func problem(_ body: Envelope.Body) -> String? {
        switch body {
        case .registerInstance(let register):
            guard let instance = register.instance else { return "RegisterInstance needs an instance" }
            return problem(instance)
        case .deregisterInstance(let deregister):
            return id(deregister.instanceID, "instance id") ?? text(deregister.reason, "reason", maxTextBytes)
        case .drainRequest(let drain):
            return id(drain.instanceID, "instance id")
        case .loadReport(let report):
            return problem(report)
        case .openReportStream(let open):
            return id(open.instanceID, "instance id")
        case .scheduleRequest(let schedule):
            if let bad = text(schedule.requestID, "request id", maxRequestIDBytes, required: true) { return bad }
            if let bad = text(schedule.model, "model", maxModelBytes, required: true) { return bad }
            if let bad = text(schedule.sessionKey, "session key", maxRequestIDBytes) { return bad }
            if let bad = text(schedule.reusedInstanceID, "reused instance id", maxIDBytes) { return bad }
            if let headroom = schedule.headroom, !(0...1).contains(headroom.maxKvUsage) {
                return "headroom max_kv_usage \(headroom.maxKvUsage) is not from 0 to 1"
            }
            if schedule.excludeInstances.count > maxExcludedInstances {
                return "\(schedule.excludeInstances.count) excluded instances, more than \(maxExcludedInstances)"
            }
            for excluded in schedule.excludeInstances {
                if let bad = text(excluded, "excluded instance id", maxIDBytes) { return bad }
            }
            return nil
        case .finishRequest(let finish):
            return text(finish.requestID, "request id", maxRequestIDBytes, required: true)
                ?? text(finish.instanceID, "instance id", maxIDBytes)
                ?? text(finish.prefillInstanceID, "prefill instance id", maxIDBytes)
        case .subscribeCapacity(let subscribe):
            return text(subscribe.model, "model", maxModelBytes)
        case .budgetLeaseRequest(let lease):
            return problem(lease)
        case .setPolicyRequest(let set):
            guard let policy = set.policy else { return "SetPolicyRequest needs a policy" }
            if let bad = text(policy.name, "policy name", maxModelBytes, required: true) { return bad }
            if policy.params.count > maxPolicyParameters { return "\(policy.params.count) policy parameters, more than \(maxPolicyParameters)" }
            for parameter in policy.params {
                if let bad = text(parameter.key, "policy parameter", maxModelBytes, required: true) { return bad }
                if !parameter.value.isFinite { return "policy parameter \(parameter.key.prefix(64)) is \(parameter.value)" }
            }
            return nil
        default:
            return nil
        }
    }

    /// More than any gateway's config can name (1,024 tenants and the default).
    public static let maxLeaseAsks = 1_100

    static func problem(_ lease: BudgetLeaseRequest) -> String? {
        if lease.holder == 0 { return "holder 0: a gateway names itself with a number other than 0" }
        if lease.tenants.count > maxLeaseAsks { return "\(lease.tenants.count) tenants in one lease request, more than \(maxLeaseAsks)" }
        for ask in lease.tenants {
            if let bad = text(ask.tenant, "tenant", maxModelBytes, required: true) { return bad }
            for (name, value) in [("unspent requests", ask.unspentRequests), ("unspent tokens", ask.unspentTokens)] where !value.isFinite {
                return "\(name) \(value) of tenant \(ask.tenant.prefix(64)): not a finite number"
            }
            for (name, value) in [
                ("want requests", ask.wantRequests), ("want tokens", ask.wantTokens), ("need requests", ask.needRequests),
                ("need tokens", ask.needTokens),
            ] where !(value.isFinite && value >= 0) {
                return "\(name) \(value) of tenant \(ask.tenant.prefix(64)): not a finite number of at least 0"
            }
        }
        return nil
    }

    static func problem(_ instance: Instance) -> String? {
        if let bad = id(instance.id, "instance id") { return bad }
        if let bad = text(instance.model, "model", maxModelBytes, required: true) { return bad }
        if let bad = text(instance.endpointURL, "endpoint URL", maxURLBytes, required: true) { return bad }
        if !(instance.endpointURL.hasPrefix("http://") || instance.endpointURL.hasPrefix("https://")) {
            return "endpoint URL '\(instance.endpointURL.prefix(64))' is not http:// or https://"
        }
        if let bad = text(instance.agentNode, "agent node", maxIDBytes) ?? text(instance.stateReason, "state reason", maxTextBytes) {
            return bad
        }
        if instance.bootstrapPort > 65_535 { return "bootstrap port \(instance.bootstrapPort) above 65535" }
        let served = instance.aliases.count + instance.adapters.count
        if served > maxServedNames { return "\(served) model aliases and adapters, more than \(maxServedNames)" }
        return names(instance.aliases, "model alias") ?? names(instance.adapters, "adapter")
    }

    /// A list of model names: at most `maxServedNames`, each a valid model name.
    private static func names(_ values: [String], _ what: String) -> String? {
        if values.count > maxServedNames { return "\(values.count) \(what) names, more than \(maxServedNames)" }
        for value in values {
            if let bad = text(value, what, maxModelBytes, required: true) { return bad }
        }
        return nil
    }

    static func problem(_ report: LoadReport) -> String? {
        if !report.instanceID.isEmpty, let bad = id(report.instanceID, "instance id") { return bad }
        for (name, value) in [
            ("kv usage", report.kvUsage), ("prompt tokens per second", report.promptTokensPerS),
            ("generation tokens per second", report.generationTokensPerS), ("prefix cache hit rate", report.prefixCacheHitRate),
        ] where !(value.isFinite && value >= 0) {
            return "\(name) \(value): not a finite number of at least 0"
        }
        return names(report.loadedAdapters, "loaded adapter")
    }

    /// An instance's id names it in the registry, the metrics and every table: a node id's shape.
    private static func id(_ value: String, _ what: String) -> String? {
        Credential.isValidNodeID(value) ? nil : "\(what) '\(value.prefix(64))' is not 1 to \(maxIDBytes) printable characters without spaces or ':'"
    }

    /// At most `limit` UTF-8 bytes, no control characters (they would forge lines in logs).
    private static func text(_ value: String, _ what: String, _ limit: Int, required: Bool = false) -> String? {
        if required, value.isEmpty { return "\(what) is empty" }
        if value.utf8.count > limit { return "\(what) of \(value.utf8.count) bytes, more than \(limit)" }
        if value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) { return "\(what) holds a control character" }
        return nil
    }
}
