import PromText

/// Which LoRA adapters a vLLM engine most likely holds loaded, from `vllm:lora_requests_info`.
///
/// vLLM sets that gauge to the current time at every engine iteration, under labels naming the
/// adapters of its running and waiting requests and its `max_lora` (adapters one batch may use).
/// Each label set stays a series of its own, holding the last time it was set, so the series in
/// time order replay the order in which adapter sets last ran (vLLM 0.32 also sets an empty one
/// when it goes idle: the newest series alone would say nothing is loaded). An engine keeps an
/// adapter in its slot after its requests finish, until another needs the slot (least recently
/// used goes first), so this keeps the adapters seen running, most recent first, at most
/// `max_lora`. Waiting adapters are not counted: a request waits when its adapter has no slot yet.
public struct AdapterResidency: Sendable, Equatable {
    public static let metric = "vllm:lora_requests_info"

    /// Most recently run first, at most `maxLoras` (when known).
    public private(set) var loaded: [String] = []
    public private(set) var maxLoras = 0
    /// The newest series time already taken in: series not newer change nothing.
    private var newestSeen = -Double.infinity

    public init() {}

    public mutating func observe(_ exposition: Exposition) {
        let samples = exposition.samples(named: Self.metric).filter { $0.value.isFinite }.sorted { $0.value < $1.value }
        guard let newest = samples.last else { return }
        if let limit = newest.label("max_lora").flatMap({ Int($0) }), limit >= 0 { maxLoras = limit }
        for sample in samples where sample.value > newestSeen {
            let running = Self.names(sample.label("running_lora_adapters"))
            loaded = running + loaded.filter { !running.contains($0) }
        }
        newestSeen = max(newestSeen, newest.value)
        if maxLoras > 0, loaded.count > maxLoras { loaded.removeLast(loaded.count - maxLoras) }
    }

    /// vLLM joins the names with commas; an empty label means none.
    static func names(_ label: String?) -> [String] {
        var result: [String] = []
        for part in (label ?? "").split(separator: ",") {
            let name = String(part.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
            if !name.isEmpty, !result.contains(name) { result.append(name) }
        }
        return result
    }
}
