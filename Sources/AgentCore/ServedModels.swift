/// The names an engine answers to, from its `/v1/models`: the base model (the configured name, or
/// the first entry without a parent), its other names (vLLM lists each `--served-model-name`),
/// and the LoRA adapters served on top of it (vLLM lists each with `parent` set to the base).
/// The agent registers all of them, so a request for any reaches this instance.
public struct ServedModels: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var id: String
        /// vLLM: the base model a LoRA adapter applies to; nil for a base model.
        public var parent: String?

        public init(id: String, parent: String? = nil) {
            self.id = id
            self.parent = parent
        }
    }

    public var model: String
    public var aliases: [String]
    public var adapters: [String]

    public init(model: String, aliases: [String] = [], adapters: [String] = []) {
        self.model = model
        self.aliases = aliases
        self.adapters = adapters
    }

    /// nil when the list is empty and no model is configured (the engine serves nothing yet).
    /// At most `limit` names besides the model are kept (the scheduler refuses more), base names
    /// first; `dropped` says how many were not.
    public static func from(_ entries: [Entry], configured: String?, limit: Int) -> (served: ServedModels, dropped: Int)? {
        let entries = entries.filter { !$0.id.isEmpty }
        guard let model = configured ?? (entries.first { $0.parent == nil } ?? entries.first)?.id, !model.isEmpty else { return nil }
        var seen: Set<String> = [model]
        var aliases: [String] = []
        var adapters: [String] = []
        for entry in entries where seen.insert(entry.id).inserted {
            if entry.parent == nil { aliases.append(entry.id) } else { adapters.append(entry.id) }
        }
        let keptAliases = Array(aliases.prefix(limit))
        let keptAdapters = Array(adapters.prefix(max(0, limit - keptAliases.count)))
        let dropped = aliases.count + adapters.count - keptAliases.count - keptAdapters.count
        return (ServedModels(model: model, aliases: keptAliases, adapters: keptAdapters), dropped)
    }
}
