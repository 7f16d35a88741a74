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
/// - sent to an idle engine (its fresh report showed nothing running or waiting, and nothing had
///   been sent there since), the request is admitted as it arrives: `arrivalGrace` later;
/// - a report received at least `reportLag` after the request was sent, showing nothing
///   waiting: everything sent before it has been admitted (the engine was read after the request
///   reached it);
/// - the request finished (or was scheduled again: its work there is no longer coming).
/// An engine that keeps a queue shows none of these: a hold then ends `maxHold` after the first
/// request was sent, whatever happened.
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

    /// The longest a hold lasts, from when the first request was sent; 0 holds nothing.
    public var maxHold: Double
    /// Prefix chunks a request must share with a warming request, and a request must compute,
    /// for a hold: a short shared run costs less to compute again than a step's wait.
    public var minChunks: Int
    /// How long a request takes to reach its engine: a follower held this long arrives after it.
    public var arrivalGrace: Double
    /// How long after a request was sent a report must be received to have read the engine
    /// after the request reached it (the agent's scrape and its report's way to the leader).
    public var reportLag: Double
    /// How soon a held request asks again, at most: a report may have ended its hold meanwhile.
    public var pollInterval: Double

    public private(set) var warming: [String: [Entry]] = [:]
    /// Entries kept per instance, newest kept: a bound on what a burst makes the leader hold.
    static let maxEntriesPerInstance = 64

    public init(maxHold: Double, minChunks: Int, arrivalGrace: Double = 0.005, reportLag: Double = 0.02, pollInterval: Double = 0.05) {
        self.maxHold = maxHold
        self.minChunks = max(1, minChunks)
        self.arrivalGrace = arrivalGrace
        self.reportLag = reportLag
        self.pollInterval = pollInterval
    }

    /// `request` was sent to `instance`, where it computes `chain` past its first `cachedChunks`.
    /// `idle`: the instance had nothing running, waiting or sent since its fresh report.
    public mutating func sent(
        _ request: String, to instance: String, chain: [UInt64], cachedChunks: Int, idle: Bool, at now: Double
    ) {
        guard maxHold > 0, !request.isEmpty, chain.count - cachedChunks >= minChunks else { return }
        let entry = Entry(request: request, chain: chain, from: max(0, cachedChunks), sentAt: now, admittedAt: idle ? now + arrivalGrace : nil)
        var entries = (warming[instance] ?? []).filter { $0.sentAt + maxHold > now && $0.request != request }
        entries.append(entry)
        if entries.count > Self.maxEntriesPerInstance { entries.removeFirst(entries.count - Self.maxEntriesPerInstance) }
        warming[instance] = entries
    }

    /// A report from `instance`, received at `now`, with `waiting` requests queued in the engine.
    public mutating func reported(_ instance: String, waiting: Int, at now: Double) {
        guard var entries = warming[instance] else { return }
        entries.removeAll { $0.sentAt + maxHold <= now }
        if waiting == 0 {
            for index in entries.indices where entries[index].admittedAt == nil && entries[index].sentAt + reportLag <= now {
                entries[index].admittedAt = now
            }
        }
        warming[instance] = entries.isEmpty ? nil : entries
    }

    /// `request` finished, or was scheduled again: whatever it was computing has begun, or is
    /// no longer coming.
    public mutating func ended(_ request: String) {
        for (instance, entries) in warming where entries.contains(where: { $0.request == request }) {
            let left = entries.filter { $0.request != request }
            warming[instance] = left.isEmpty ? nil : left
        }
    }

    public mutating func removeInstance(_ instance: String) { warming[instance] = nil }

    /// Whether `request`, bound for `instance` where it is believed to find `chain`'s first
    /// `cachedChunks` cached, should wait: some of those chunks are being computed there by
    /// another request that has not been admitted yet. The hold's answer: how soon to ask again,
    /// and how many of the request's chunks are warming.
    public func hold(_ request: String, on instance: String, chain: [UInt64], cachedChunks: Int, at now: Double)
        -> (retryAfter: Double, warmingChunks: Int)?
    {
        guard maxHold > 0, let entries = warming[instance], cachedChunks >= minChunks else { return nil }
        var hold: (retryAfter: Double, warmingChunks: Int)?
        for entry in entries where entry.request != request && entry.sentAt + maxHold > now {
            if let admitted = entry.admittedAt, admitted <= now { continue }
            let shared = Self.commonPrefix(chain, entry.chain, upTo: cachedChunks) - entry.from
            guard shared >= minChunks else { continue }
            let ends = entry.admittedAt ?? (entry.sentAt + maxHold)
            let retry = max(0.001, min(pollInterval, ends - now))
            if hold.map({ shared > $0.warmingChunks }) ?? true { hold = (retry, shared) }
        }
        return hold
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
