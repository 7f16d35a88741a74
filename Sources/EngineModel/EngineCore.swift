/// The simulated engine itself, as a value with no clock and no I/O: requests go in with
/// `submit`, and each `step()` runs one iteration of continuous batching and returns how long it
/// took (model seconds) and what it produced. The shell sleeps for the duration and then delivers
/// the events, as a real engine delivers a step's tokens when the step ends.
///
/// Scheduling follows vLLM's v1 scheduler: running requests first (decode one token each, or the
/// next chunk of a prefill), within a per-step token budget; then waiting requests in arrival
/// order, each looking up its longest cached prefix first. When a running request cannot get a
/// block, the most recently admitted running request is preempted: its blocks are freed and it
/// returns to the head of the waiting queue to be recomputed.
///
/// Under `SchedulingPolicy.priority` (vLLM's `--scheduling-policy priority`) the waiting queue is
/// ordered by (priority, arrival), lower values first, and the running request preempted for
/// blocks is the one of the highest value, latest arrived: a request of a higher priority goes
/// ahead of those of lower ones waiting, and is the last one preempted. It does not preempt a
/// running request to start (neither does vLLM v1): it waits for blocks like any other.
///
/// LoRA adapters follow vLLM too: one batch uses at most `lora.maxLoras` distinct adapters, so a
/// waiting request whose adapter would exceed that is passed over (later requests may go first);
/// an adapter not in the engine's slots is loaded when its first request is scheduled, which
/// adds `lora.loadSeconds` to that step; slots are reused least recently used first.
public struct EngineCore: Sendable {
    /// vLLM's `--scheduling-policy`.
    public enum SchedulingPolicy: String, Sendable, CaseIterable {
        /// First come, first served; the latest admitted running request is preempted first.
        case fcfs
        /// By the requests' `priority`, lower first; see the type's comment.
        case priority
    }

    public struct LoRAConfig: Sendable {
        /// Adapters one batch may use, and adapter slots kept loaded (vLLM's `--max-loras`).
        public var maxLoras: Int
        /// Model time to load an adapter into a slot.
        public var loadSeconds: Double

        public init(maxLoras: Int = 1, loadSeconds: Double = 0.02) {
            self.maxLoras = maxLoras
            self.loadSeconds = loadSeconds
        }
    }

    public let profile: EngineProfile
    public let lora: LoRAConfig
    public let policy: SchedulingPolicy
    public private(set) var cache: KVCache
    public private(set) var counters = EngineCounters()
    /// Adapters loaded in slots, least recently used first.
    public private(set) var loadedAdapters: [String] = []

    private var sequences: [EngineRequestID: SequenceState] = [:]
    private var running: [EngineRequestID] = []
    private var waiting: [EngineRequestID] = []
    private var nextID: EngineRequestID = 1
    /// Requests with a LoRA adapter, running or waiting: while none, steps skip the adapter stats.
    private var adapterRequests = 0

    public init(profile: EngineProfile, lora: LoRAConfig = LoRAConfig(), policy: SchedulingPolicy = .fcfs) throws(EngineModelError) {
        try profile.validate()
        self.profile = profile
        self.policy = policy
        self.lora = LoRAConfig(maxLoras: max(1, lora.maxLoras), loadSeconds: max(0, lora.loadSeconds))
        cache = KVCache(blockCount: profile.kvBlocks, blockSize: profile.blockSize)
    }

    public var runningCount: Int { running.count }
    public var waitingCount: Int { waiting.count }
    /// The distinct adapters of the running and of the waiting requests, in queue order
    /// (vLLM's `running_lora_adapters` and `waiting_lora_adapters`).
    public var runningAdapters: [String] { adapters(of: running) }
    public var waitingAdapters: [String] { adapters(of: waiting) }

    private func adapters(of ids: [EngineRequestID]) -> [String] {
        var names: [String] = []
        for id in ids { if let name = sequences[id]?.adapter, !names.contains(name) { names.append(name) } }
        return names
    }
    public var hasWork: Bool { !running.isEmpty || !waiting.isEmpty }
    /// Tokens whose KV the running requests hold (SGLang's `num_used_tokens`).
    public var usedTokens: Int { running.reduce(0) { $0 + (sequences[$1]?.computed ?? 0) } }

    /// The most tokens a request may generate after this prompt (what an absent `max_tokens` means).
    public func remainingContext(promptTokens: Int) -> Int { max(0, profile.maxModelLength - promptTokens) }

    /// Queues a request. Rejects prompts that cannot fit the context window with the tokens asked for.
    public mutating func submit(_ request: GenerationRequest) throws(EngineModelError) -> EngineRequestID {
        let promptCount = request.promptTokens.count
        guard promptCount > 0 else { throw .emptyPrompt }
        guard request.maxTokens >= 1, promptCount + request.maxTokens <= profile.maxModelLength else {
            throw .promptTooLong(
                promptTokens: promptCount, maxTokens: request.maxTokens, maxModelLength: profile.maxModelLength)
        }
        let plan = OutputPlan(
            seed: request.seed, medianLength: profile.outputMedianTokens, sigma: profile.outputSigma)
        let stopsByItself = !request.ignoreEOS && plan.naturalLength <= request.maxTokens
        let id = nextID
        nextID += 1
        var tokens = request.promptTokens
        tokens.reserveCapacity(promptCount + (stopsByItself ? plan.naturalLength : request.maxTokens))
        sequences[id] = SequenceState(
            id: id, promptCount: promptCount, tokens: tokens,
            targetOutput: stopsByItself ? plan.naturalLength : request.maxTokens,
            finishReason: stopsByItself ? .stop : .length, plan: plan, adapter: request.adapter,
            priority: policy == .priority ? request.priority : 0,
            hashSeed: request.adapter.map { KVCache.chainHash(parent: 0, tokens: Self.adapterKey($0)[...]) } ?? 0)
        enqueue(id)
        if request.adapter != nil { adapterRequests += 1 }
        counters.requestsReceived += 1
        return id
    }

    /// Stops a request wherever it is (the client went away); frees its blocks.
    public mutating func abort(_ id: EngineRequestID) {
        guard let sequence = sequences.removeValue(forKey: id) else { return }
        if sequence.adapter != nil { adapterRequests -= 1 }
        cache.release(sequence.blocks)
        running.removeAll { $0 == id }
        waiting.removeAll { $0 == id }
        counters.finished[.abort, default: 0] += 1
    }

    /// Puts the KV of the first `blocks` full blocks of `prompt` into the prefix cache without
    /// computing it: a decode instance receiving a prompt's KV from a prefill instance. The
    /// blocks are then cached but unused, like the blocks of a finished request, so the request
    /// submitted next with this prompt finds them as a prefix hit. Blocks already cached are
    /// kept; when no free block is left the import stops there. Returns the tokens now cached.
    @discardableResult
    public mutating func importPrefix(_ prompt: [UInt32], blocks: Int) -> Int {
        let size = profile.blockSize
        let count = min(blocks, prompt.count / size)
        var parent: UInt64 = 0
        var taken: [Int32] = []
        var cachedNow = 0
        for index in 0..<count {
            let hash = KVCache.chainHash(parent: parent, tokens: prompt[(index * size)..<((index + 1) * size)])
            parent = hash
            let hits = cache.cachedPrefix(of: [hash][...])
            if let hit = hits.first {
                cache.take([hit])
                taken.append(hit)
            } else {
                guard let block = cache.allocate(1)?.first else { break }
                cache.register(block, hash: hash)
                taken.append(block)
                counters.importedBlocks += 1
            }
            cachedNow += 1
        }
        cache.release(taken)
        return cachedNow * size
    }

    /// The cache blocks holding the longest cached run of `prompt`'s full blocks, in order: the
    /// block ids a prefill instance hands to its decode instance.
    public func cachedBlockIDs(of prompt: [UInt32]) -> [Int32] {
        let size = profile.blockSize
        var parent: UInt64 = 0
        var hashes: [UInt64] = []
        for index in 0..<(prompt.count / size) {
            parent = KVCache.chainHash(parent: parent, tokens: prompt[(index * size)..<((index + 1) * size)])
            hashes.append(parent)
        }
        return cache.cachedPrefix(of: hashes[...])
    }

    /// Forgets all cached prefixes; blocks in use stay allocated.
    public mutating func resetPrefixCache() { cache.resetPrefixCache() }

    /// Runs one iteration. Nil when there is nothing to do.
    public mutating func step() -> StepResult? {
        guard hasWork else { return nil }
        var budget = profile.stepTokenBudget
        var scheduled: [(id: EngineRequestID, tokens: Int)] = []
        var events: [EngineEvent] = []
        var preempted = false

        var index = 0
        while index < running.count, budget > 0 {
            let id = running[index]
            guard let sequence = sequences[id] else { index += 1; continue }
            let wanted = min(sequence.tokens.count - sequence.computed, budget)
            if wanted <= 0 { index += 1; continue }
            let newBlocks = blocksNeeded(sequence, adding: wanted)
            var fits = cache.canAllocate(newBlocks)
            while !fits, let victim = preemptionVictim() {
                // A victim already given work this step (only under `priority`, where it need
                // not be the last) gives it back, as vLLM's scheduler does.
                if let done = scheduled.firstIndex(where: { $0.id == victim }) {
                    budget += scheduled[done].tokens
                    scheduled.remove(at: done)
                }
                if let position = running.firstIndex(of: victim), position < index { index -= 1 }
                preempt(victim)
                preempted = true
                if victim == id { break }
                fits = cache.canAllocate(newBlocks)
            }
            guard fits else { break }
            if let blocks = cache.allocate(newBlocks) { sequences[id]!.blocks += blocks }
            scheduled.append((id, wanted))
            budget -= wanted
            index += 1
        }

        // The running batch's adapters, gathered at the first waiting request that has one.
        var batchAdapters: Set<String>?
        var adapterLoads = 0
        var position = 0
        while !preempted, budget > 0, running.count < profile.maxRunningSequences, position < waiting.count {
            let id = waiting[position]
            guard var sequence = sequences[id] else { waiting.remove(at: position); continue }
            if let adapter = sequence.adapter {
                let inBatch = batchAdapters ?? Set(running.compactMap { sequences[$0]?.adapter })
                batchAdapters = inBatch
                // No adapter slot free in this batch: pass it over; a later request may fit.
                if !inBatch.contains(adapter), inBatch.count >= lora.maxLoras { position += 1; continue }
            }
            let maxHitBlocks = (sequence.tokens.count - 1) / profile.blockSize
            sequence.hashFullBlocks(blockSize: profile.blockSize, upTo: maxHitBlocks * profile.blockSize)
            let hits = cache.cachedPrefix(of: sequence.blockHashes.prefix(maxHitBlocks))
            let hitTokens = hits.count * profile.blockSize
            let wanted = min(sequence.tokens.count - hitTokens, budget)
            let newBlocks = (hitTokens + wanted + profile.blockSize - 1) / profile.blockSize - hits.count
            guard cache.canAllocate(newBlocks, afterTaking: hits) else { break }
            cache.take(hits)
            sequence.blocks = hits + (cache.allocate(newBlocks) ?? [])
            sequence.computed = hitTokens
            sequence.registeredBlocks = hits.count
            counters.prefixQueriedTokens += sequence.tokens.count
            counters.prefixHitTokens += hitTokens
            if sequence.cachedTokens == nil {
                sequence.cachedTokens = min(hitTokens, sequence.promptCount)
                events.append(.scheduled(id, cachedTokens: sequence.cachedTokens!))
            }
            if let adapter = sequence.adapter {
                batchAdapters?.insert(adapter)
                if useAdapterSlot(adapter, inUse: batchAdapters ?? []) { adapterLoads += 1 }
            }
            sequences[id] = sequence
            waiting.remove(at: position)
            running.append(id)
            scheduled.append((id, wanted))
            budget -= wanted
        }

        let stepAdapters: (running: [String], waiting: [String]) = adapterRequests > 0 ? (adapters(of: running), adapters(of: waiting)) : ([], [])
        var prefillTokens = 0
        var decodeSequences = 0
        var contextTokens = 0
        for (id, count) in scheduled {
            guard var sequence = sequences[id] else { continue }
            let decoding = count == 1 && sequence.computed == sequence.tokens.count - 1 && sequence.outputCount > 0
            if decoding { decodeSequences += 1 } else { prefillTokens += count }
            sequence.computed += count
            contextTokens += sequence.computed
            registerFullBlocks(&sequence)
            if sequence.computed == sequence.tokens.count {
                if !sequence.prefillCounted {
                    sequence.prefillCounted = true
                    counters.promptTokens += sequence.promptCount
                    counters.promptCachedTokens += sequence.cachedTokens ?? 0
                }
                let token = sequence.plan.nextToken()
                sequence.tokens.append(token)
                counters.generationTokens += 1
                events.append(.token(id, token))
            }
            if sequence.isFinished {
                finish(sequence, events: &events)
            } else {
                sequences[id] = sequence
            }
        }
        guard !scheduled.isEmpty else {
            // Under `priority` the first running request may be its own victim: vLLM's step then
            // runs nothing and the next one goes on (nil would tell the shell there is no work).
            return preempted
                ? StepResult(duration: 0, prefillTokens: 0, decodeSequences: 0, sequences: 0, events: events) : nil
        }
        counters.steps += 1
        return StepResult(
            duration: profile.stepDuration(
                prefillTokens: prefillTokens, sequences: scheduled.count, contextTokens: contextTokens)
                + Double(adapterLoads) * lora.loadSeconds,
            prefillTokens: prefillTokens, decodeSequences: decodeSequences, sequences: scheduled.count,
            events: events, runningAdapters: stepAdapters.running, waitingAdapters: stepAdapters.waiting)
    }

    /// Marks `adapter` most recently used; true when it had to be loaded into a slot: the least
    /// recently used one the batch (`inUse`) does not need, when all are taken. The batch uses
    /// at most `maxLoras` adapters, this one among them, so such a slot exists.
    private mutating func useAdapterSlot(_ adapter: String, inUse: Set<String>) -> Bool {
        if let index = loadedAdapters.firstIndex(of: adapter) {
            loadedAdapters.remove(at: index)
            loadedAdapters.append(adapter)
            return false
        }
        if loadedAdapters.count >= lora.maxLoras, let victim = loadedAdapters.firstIndex(where: { !inUse.contains($0) }) {
            loadedAdapters.remove(at: victim)
        }
        loadedAdapters.append(adapter)
        counters.adapterLoads += 1
        return true
    }

    /// An adapter's name as tokens, for the seed of its hash chains.
    static func adapterKey(_ name: String) -> [UInt32] { name.utf8.map { UInt32($0) } + [UInt32.max] }

    private func blocksNeeded(_ sequence: SequenceState, adding tokens: Int) -> Int {
        max(0, (sequence.computed + tokens + profile.blockSize - 1) / profile.blockSize - sequence.blocks.count)
    }

    private mutating func registerFullBlocks(_ sequence: inout SequenceState) {
        sequence.hashFullBlocks(blockSize: profile.blockSize, upTo: sequence.computed)
        let full = min(sequence.blockHashes.count, sequence.computed / profile.blockSize)
        while sequence.registeredBlocks < full {
            let index = sequence.registeredBlocks
            cache.register(sequence.blocks[index], hash: sequence.blockHashes[index])
            sequence.registeredBlocks += 1
        }
    }

    /// The running request to preempt for blocks: the latest admitted (FCFS), or the one of the
    /// highest priority value, latest arrived among those (`priority`).
    private func preemptionVictim() -> EngineRequestID? {
        guard policy == .priority else { return running.last }
        return running.max { order($0) < order($1) }
    }

    /// A request's place in the `priority` order: by priority, then arrival (ids grow with it).
    private func order(_ id: EngineRequestID) -> (Int, Int) { (sequences[id]?.priority ?? 0, id) }

    /// Puts a new request in the waiting queue: at the end (FCFS), or after every request that
    /// comes before it in the `priority` order.
    private mutating func enqueue(_ id: EngineRequestID) {
        guard policy == .priority else { return waiting.append(id) }
        let key = order(id)
        let position = waiting.firstIndex { order($0) > key } ?? waiting.count
        waiting.insert(id, at: position)
    }

    private mutating func preempt(_ id: EngineRequestID) {
        running.removeAll { $0 == id }
        guard var sequence = sequences[id] else { return }
        cache.release(sequence.blocks)
        sequence.blocks = []
        sequence.computed = 0
        sequence.registeredBlocks = 0
        sequences[id] = sequence
        // FCFS: back to the head, to run next. Priority: back in its place by (priority, arrival),
        // as vLLM re-adds it to its priority queue.
        if policy == .priority { enqueue(id) } else { waiting.insert(id, at: 0) }
        counters.preemptions += 1
    }

    private mutating func finish(_ sequence: SequenceState, events: inout [EngineEvent]) {
        if sequence.adapter != nil { adapterRequests -= 1 }
        cache.release(sequence.blocks)
        sequences[sequence.id] = nil
        running.removeAll { $0 == sequence.id }
        counters.finished[sequence.finishReason, default: 0] += 1
        events.append(
            .finished(
                sequence.id, sequence.finishReason,
                usage: TokenUsage(
                    promptTokens: sequence.promptCount, completionTokens: sequence.outputCount,
                    cachedTokens: sequence.cachedTokens ?? 0)))
    }
}

/// Cumulative counts since start, the raw material of every dialect's /metrics.
public struct EngineCounters: Sendable, Equatable {
    public var requestsReceived = 0
    public var steps = 0
    /// Prompt tokens of requests whose prefill completed, and how many of them came from cache.
    public var promptTokens = 0
    public var promptCachedTokens = 0
    public var generationTokens = 0
    /// Prefix-cache lookups in tokens (vLLM's prefix_cache_queries / prefix_cache_hits).
    public var prefixQueriedTokens = 0
    public var prefixHitTokens = 0
    /// Requests preempted (and so recomputed later).
    public var preemptions = 0
    /// KV blocks received from prefill instances (`importPrefix`), not counting those already cached.
    public var importedBlocks = 0
    /// LoRA adapters loaded into a slot (the first use of each, and each reload after eviction).
    public var adapterLoads = 0
    public var finished: [FinishReason: Int] = [:]
}
