import PromText

/// One engine's load in the common form every engine kind is reported in.
public struct NormalisedLoad: Sendable, Equatable {
    public var running = 0
    public var waiting = 0
    /// 0–1.
    public var kvUsage = 0.0
    public var promptTokensPerSecond = 0.0
    public var generationTokensPerSecond = 0.0
    /// 0–1 over the last interval; 0 when unknown.
    public var prefixCacheHitRate = 0.0
    /// Tokens the KV cache holds; 0 when the engine does not say.
    public var kvCapacityTokens: UInt64 = 0
    public var kvBlockSize: UInt32 = 0
    /// LoRA adapters most likely loaded, newest first, and how many one batch may use (0: unknown).
    public var loadedAdapters: [String] = []
    public var maxLoras = 0

    public init() {}
}

/// Turns successive scrapes of one engine into `NormalisedLoad`s. Gauges are read as they are;
/// counters become rates from the difference to the previous scrape, series by series, so that
/// a counter that went down (the engine restarted) counts from zero instead of going negative.
public struct LoadNormaliser: Sendable {
    public let names: MetricNames
    private var previous: [String: Double] = [:]
    private var previousTime: Double?
    private var adapters = AdapterResidency()

    public init(family: EngineFamily) { names = .of(family) }
    public init(names: MetricNames) { self.names = names }

    /// `time` in seconds on any monotonic clock.
    public mutating func normalise(_ exposition: Exposition, at time: Double) -> NormalisedLoad {
        var load = NormalisedLoad()
        load.running = Int(Self.sum(exposition, names.running).rounded())
        load.waiting = Int(Self.sum(exposition, names.waiting).rounded())
        load.kvUsage = min(1, max(0, Self.mean(exposition, names.kvUsage)))

        var current: [String: Double] = [:]
        let elapsed = previousTime.map { time - $0 } ?? 0
        func increase(_ name: String?) -> Double? {
            guard let name else { return nil }
            let samples = exposition.samples(named: name)
            guard !samples.isEmpty else { return nil }
            var total = 0.0
            for sample in samples where sample.value.isFinite {
                let key = Self.seriesKey(sample)
                current[key] = sample.value
                guard let before = previous[key] else { continue }
                total += sample.value >= before ? sample.value - before : sample.value  // reset: counted from zero
            }
            return total
        }
        let prompt = increase(names.promptTokens.first { !exposition.samples(named: $0).isEmpty })
        let generated = increase(names.generationTokens.first { !exposition.samples(named: $0).isEmpty })
        let hits = increase(names.cacheHits)
        let lookups = names.cacheLookups == names.promptTokens.first ? prompt : increase(names.cacheLookups)
        if elapsed > 0 {
            load.promptTokensPerSecond = (prompt ?? 0) / elapsed
            load.generationTokensPerSecond = (generated ?? 0) / elapsed
        }
        if let hits, let lookups, lookups > 0 {
            load.prefixCacheHitRate = min(1, max(0, hits / lookups))
        } else if let gauge = names.cacheHitRateGauge, !exposition.samples(named: gauge).isEmpty {
            let rate = Self.mean(exposition, [gauge])
            load.prefixCacheHitRate = min(1, max(0, rate > 1 ? rate / 100 : rate))  // some versions report percent
        }
        (load.kvCapacityTokens, load.kvBlockSize) = capacity(exposition)
        if names.loraInfo {
            adapters.observe(exposition)
            (load.loadedAdapters, load.maxLoras) = (adapters.loaded, adapters.maxLoras)
        }
        previous = current
        previousTime = time
        return load
    }

    private func capacity(_ exposition: Exposition) -> (UInt64, UInt32) {
        if let info = names.cacheConfigInfo, let sample = exposition.samples(named: info).first {
            let blockSize = sample.label("block_size").flatMap { UInt32($0) } ?? 0
            let engines = UInt64(max(1, exposition.samples(named: info).count))
            if let tokens = sample.label("kv_cache_size_tokens").flatMap({ UInt64($0) }) { return (tokens * engines, blockSize) }
            if let blocks = sample.label("num_gpu_blocks").flatMap({ UInt64($0) }) { return (blocks * UInt64(blockSize) * engines, blockSize) }
        }
        if let name = names.capacityTokens, exposition.samples(named: name).first != nil {
            return (UInt64(max(0, Self.sum(exposition, [name]))), 0)
        }
        if let blocksName = names.capacityBlocks, let sizeName = names.blockSize,
            let size = exposition.samples(named: sizeName).first?.value, size.isFinite, size > 0
        {
            let blocks = Self.sum(exposition, [blocksName])
            return (UInt64(max(0, blocks * size)), UInt32(size))
        }
        return (0, 0)
    }

    /// The first listed name that is present, summed over its series.
    static func sum(_ exposition: Exposition, _ names: [String]) -> Double {
        for name in names {
            let samples = exposition.samples(named: name).filter { $0.value.isFinite }
            if !samples.isEmpty { return samples.reduce(0) { $0 + $1.value } }
        }
        return 0
    }

    static func mean(_ exposition: Exposition, _ names: [String]) -> Double {
        for name in names {
            let samples = exposition.samples(named: name).filter { $0.value.isFinite }
            if !samples.isEmpty { return samples.reduce(0) { $0 + $1.value } / Double(samples.count) }
        }
        return 0
    }

    static func seriesKey(_ sample: Sample) -> String {
        sample.name + "{" + sample.labels.sorted { $0.name < $1.name }.map { "\($0.name)=\($0.value)" }.joined(separator: ",") + "}"
    }
}
