/// Prompt prefixes an instance is computing for the first time, so that requests sharing one are
/// held back until that computation has begun, instead of computing it again beside it.
///
/// An engine caches a prompt's KV blocks when the step computing them ends (vLLM does; so does
/// the engine simulator): requests admitted into the same step as the first request of a prefix
/// each compute the shared part again. SGLang's own scheduler defers such requests ("in-batch
/// prefix caching"); vLLM does not. A burst of conversations on a new system prompt then pays for
/// the prompt once per request that lands in that step, and every request in the step waits for
/// it. Held until the first request has been admitted, the others land in a later step and hit.
///
/// The leader cannot see an engine's steps. What it can see that says a request was admitted:
/// - sent to an idle engine (its fresh report showed nothing running or waiting, and the leader
///   had nothing outstanding there), the request is admitted as it arrives: `arrivalGrace` later;
/// - a report whose engine reading was taken at least `arrivalGrace` after the request was sent,
///   showing no more requests waiting than the leader sent there after it (and long enough
///   before the reading to have arrived): an engine admits in arrival order, so were the request
///   still waiting, all of those would wait too, and it would show at least one more;
/// - the request finished (or was scheduled again: its work there is no longer coming).
/// An engine that keeps a queue shows none of these. Each held request is held at most `maxHold`
/// in all, however many warming requests it meets one after another.
///
/// What can go wrong is bounded by what happens without the hold: an engine whose waiting gauge
/// is only updated at its steps (vLLM's) can show "nothing waiting" from before the first request
/// arrived, and its followers then go at once, into the same step, as they would unheld.
///
/// A value with no clock: time comes in as seconds on any monotonic clock.
public struct PrefixWarmup: Sendable {
    public struct Entry: Sendable, Equatable {
        public var request: String
        /// The request's prompt chunks (chained hashes); it computes those from `from` on.
        public var chain: [UInt64]
        public var from: Int
        public var sentAt: Double
        /// From when it counts as admitted; nil until something says so.
        public var admittedAt: Double?
    }

    /// The longest a request is held, in all; 0 holds nothing.
    public var maxHold: Double
    /// Prefix chunks a request must share with a warming request, and a request must compute,
    /// for a hold: a short shared run costs less to compute again than a step's wait.
    public var minChunks: Int
    /// How long a request takes to reach its engine: a follower held this long arrives after it,
    /// and an engine read this long after it was sent has seen it.
    public var arrivalGrace: Double
    /// How soon a held request asks again, at most: a report may have ended its hold meanwhile.
    public var pollInterval: Double

    public private(set) var warming: [String: [Entry]] = [:]
    /// When the leader sent each request of the last `maxHold` to each instance that has warming
    /// requests (in order): what a report's waiting count is compared with.
    private var sends: [String: [Double]] = [:]
    /// Which instance each warming request is on (`ended` without a scan).
    private var owner: [String: String] = [:]
    /// When each request now held was first held.
    public private(set) var heldSince: [String: Double] = [:]
    /// Entries kept per instance, newest kept: a bound on what a burst makes the leader hold.
    static let maxEntriesPerInstance = 64
    /// Held requests tracked at once; past it, new ones are not held (a bound, failing open).
    static let maxHeldRequests = 4_096

    public init(maxHold: Double, minChunks: Int, arrivalGrace: Double = 0.01, pollInterval: Double = 0.05) {
        self.maxHold = maxHold
        self.minChunks = max(1, minChunks)
        self.arrivalGrace = arrivalGrace
        self.pollInterval = pollInterval
    }

    /// `request` was sent to `instance`, where it computes `chain` past its first `cachedChunks`.
    /// `idle`: the instance had nothing running or waiting by its fresh report, and nothing of
    /// the leader's outstanding.
    public mutating func sent(
        _ request: String, to instance: String, chain: [UInt64], cachedChunks: Int, idle: Bool, at now: Double
    ) {
        heldSince[request] = nil
        guard maxHold > 0, !request.isEmpty, chain.count - cachedChunks >= minChunks else { return }
        ended(request)
        let entry = Entry(request: request, chain: chain, from: max(0, cachedChunks), sentAt: now, admittedAt: idle ? now + arrivalGrace : nil)
        var entries = warming[instance] ?? []
        for dead in entries where !live(dead, at: now) { owner[dead.request] = nil }
        entries.removeAll { !live($0, at: now) }
        entries.append(entry)
        owner[request] = instance
        if entries.count > Self.maxEntriesPerInstance {
            for dropped in entries.prefix(entries.count - Self.maxEntriesPerInstance) { owner[dropped.request] = nil }
            entries.removeFirst(entries.count - Self.maxEntriesPerInstance)
        }
        warming[instance] = entries
    }

    /// Any request the leader sent to `instance` at `now` (call before `sent`, for every one).
    public mutating func assigned(to instance: String, at now: Double) {
        if warming[instance] != nil { sends[instance, default: []].append(now) }
    }

    /// A report from `instance`, received at `now`, whose engine reading was taken at `observedAt`,
    /// with `waiting` requests queued in the engine. Also forgets, on every instance, what no
    /// longer holds anyone.
    public mutating func reported(_ instance: String, waiting: Int, observedAt: Double, at now: Double) {
        if var entries = warming[instance] {
            let times = sends[instance] ?? []
            let arrivedBy = observedAt - arrivalGrace
            for index in entries.indices where entries[index].admittedAt == nil && entries[index].sentAt <= arrivedBy {
                let sentAfter = Self.count(times, after: entries[index].sentAt, upTo: arrivedBy)
                if waiting <= sentAfter { entries[index].admittedAt = now }
            }
            warming[instance] = entries
        }
        prune(at: now)
    }

    /// `request` finished, or was scheduled again: whatever it was computing has begun, or is
    /// no longer coming.
    public mutating func ended(_ request: String) {
        heldSince[request] = nil
        guard let instance = owner.removeValue(forKey: request), var entries = warming[instance] else { return }
        entries.removeAll { $0.request == request }
        warming[instance] = entries.isEmpty ? nil : entries
    }

    /// Whether `request`, bound for `instance` where it is believed to find `chain`'s first
    /// `cachedChunks` cached, should wait: some of those chunks are being computed there by
    /// another request that has not been admitted yet, and it has not been held `maxHold` yet,
    /// nor as long as computing those chunks again would take it (`secondsPerChunk`: the
    /// instance's prefill time for one chunk; nil: unknown, `maxHold` alone bounds the hold).
    /// The hold's answer: how soon to ask again, and how many of the request's chunks are warming.
    ///
    /// Why the second bound: the leader learns of an admission only from a report, a scrape
    /// interval (250 ms) after it. On a fast engine the shared prefix takes less than that to
    /// compute; a follower held longer than that loses more than the hold saves it (measured: the
    /// opening of the saturation benchmark on `7b-a100`, Docs/benchmarks.md). Released at that
    /// bound, the follower most likely finds the first request admitted by then, and waits
    /// for its step like any arrival; at worst it computes the prefix again, as with no hold.
    public mutating func hold(
        _ request: String, on instance: String, chain: [UInt64], cachedChunks: Int, secondsPerChunk: Double? = nil, at now: Double
    ) -> (retryAfter: Double, warmingChunks: Int)? {
        guard maxHold > 0, !request.isEmpty, let entries = warming[instance], cachedChunks >= minChunks else { return nil }
        let since = heldSince[request] ?? now
        guard now - since < maxHold else { return nil }
        var hold: (retryAfter: Double, warmingChunks: Int)?
        for entry in entries where entry.request != request && live(entry, at: now) {
            let shared = Self.commonPrefix(chain, entry.chain, upTo: cachedChunks) - entry.from
            guard shared >= minChunks else { continue }
            let longest = min(maxHold, secondsPerChunk.map { Double(shared) * $0 } ?? maxHold)
            guard now - since < longest else { continue }
            let ends = min(entry.admittedAt ?? (entry.sentAt + maxHold), since + longest)
            let retry = max(0.001, min(pollInterval, ends - now))
            if hold.map({ shared > $0.warmingChunks }) ?? true { hold = (retry, shared) }
        }
        guard hold != nil, heldSince[request] != nil || heldSince.count < Self.maxHeldRequests else { return nil }
        heldSince[request] = since
        return hold
    }

    /// Whether `entry` can still hold anyone at `now`.
    private func live(_ entry: Entry, at now: Double) -> Bool {
        entry.sentAt + maxHold > now && (entry.admittedAt.map { $0 > now } ?? true)
    }

    private mutating func prune(at now: Double) {
        for (instance, times) in sends {
            if warming[instance] == nil { sends[instance] = nil } else { sends[instance] = times.filter { $0 > now - maxHold } }
        }
        for (instance, entries) in warming {
            let left = entries.filter { live($0, at: now) }
            if left.count != entries.count {
                for entry in entries where !live(entry, at: now) { owner[entry.request] = nil }
                warming[instance] = left.isEmpty ? nil : left
            }
        }
        heldSince = heldSince.filter { now - $0.value < maxHold }
    }

    /// How many of `times` (ascending: the leader's clock only moves on) lie in `(after, upTo]`.
    static func count(_ times: [Double], after start: Double, upTo end: Double) -> Int {
        guard end > start else { return 0 }
        return firstIndex(in: times, above: end) - firstIndex(in: times, above: start)
    }

    /// The index of the first of `times` (ascending) above `value`; `times.count` if none is.
    private static func firstIndex(in times: [Double], above value: Double) -> Int {
        var low = 0
        var high = times.count
        while low < high {
            let middle = (low + high) / 2
            if times[middle] > value { high = middle } else { low = middle + 1 }
        }
        return low
    }

    /// How many leading chunks `a` and `b` share, counting at most `limit`. The hashes are
    /// chained (each covers every chunk before it), so equal at k means equal up to k: a binary
    /// search finds the first difference.
    static func commonPrefix(_ a: [UInt64], _ b: [UInt64], upTo limit: Int) -> Int {
        var low = 0
        var high = min(limit, a.count, b.count)
        while low < high {
            let middle = (low + high + 1) / 2
            if a[middle - 1] == b[middle - 1] { low = middle } else { high = middle - 1 }
        }
        return low
    }
}
