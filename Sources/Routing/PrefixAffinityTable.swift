/// Which instance has recently served which prompt prefix: the scheduler's picture of every
/// engine's prefix cache, kept without asking the engines.
///
/// A request's prefix is a chain of hashes of fixed-size chunks of its prompt, each hash covering
/// everything before it, so "instance I holds hash h_k" means "I has seen this whole prefix up to
/// chunk k". Each instance keeps a bounded LRU set (sized from its KV capacity when known); a
/// recorded chain is touched tail first, so the head of a shared prefix stays newest and eviction
/// takes the ends of long prompts before their shared beginnings, as the engines' own caches do.
///
/// The table is a value with no clock or randomness: the scheduler applies the same records in
/// the same order on every Raft member, so a new leader starts with the old leader's table.
public struct PrefixAffinityTable: Sendable, Equatable {
    /// Entries an instance keeps when its KV capacity is unknown.
    public static let defaultCapacity = 65_536

    private var slots: [String: Int32] = [:]
    private var instances: [InstanceLRU?] = []
    private var freeSlots: [Int32] = []
    /// For every hash, the slots of the instances that hold it (usually one or two).
    private var holders: [UInt64: [Int32]] = [:]

    public init() {}

    public var instanceIDs: [String] { slots.keys.sorted() }
    public func entryCount(of instance: String) -> Int {
        slots[instance].flatMap { instances[Int($0)]?.count } ?? 0
    }
    public func capacity(of instance: String) -> Int? { slots[instance].flatMap { instances[Int($0)]?.capacity } }

    /// Sets how many hashes an instance may hold (evicting the oldest if it shrinks).
    public mutating func setCapacity(_ capacity: Int, for instance: String) {
        let slot = slotFor(instance, capacity: capacity)
        var lru = takeLRU(slot)
        lru.capacity = max(1, capacity)
        while lru.count > lru.capacity, let evicted = lru.evictOldest() { dropHolder(evicted, slot: slot) }
        instances[Int(slot)] = lru
    }

    /// Records that `instance` now holds every prefix of `chain`.
    public mutating func record(_ chain: [UInt64], on instance: String) {
        guard !chain.isEmpty else { return }
        let slot = slotFor(instance, capacity: Self.defaultCapacity)
        var lru = takeLRU(slot)
        for hash in chain.reversed() {
            if lru.touch(hash) == .inserted {
                insertSorted(slot, into: &holders[hash, default: []])
                if lru.count > lru.capacity, let evicted = lru.evictOldest() { dropHolder(evicted, slot: slot) }
            }
        }
        instances[Int(slot)] = lru
    }

    /// For each instance holding at least the first chunk: how many leading chunks of `chain` it holds.
    public func matches(for chain: [UInt64]) -> [String: Int] {
        let found = match(chain)
        var result: [String: Int] = [:]
        for (slot, length) in found.lengthBySlot.enumerated() where length > 0 {
            if let id = instances[slot]?.id { result[id] = length }
        }
        return result
    }

    /// The same as `matches`, in a form that costs no dictionary of strings to build: the router
    /// asks it per candidate instance.
    public func match(_ chain: [UInt64]) -> AffinityMatch {
        guard let first = chain.first, var alive = holders[first] else { return AffinityMatch(table: self, lengthBySlot: []) }
        var lengths = Array(repeating: 0, count: instances.count)
        var index = 1
        var scratch: [Int32] = []
        while index < chain.count, let next = holders[chain[index]] {
            // Both lists are sorted: intersect by merging.
            scratch.removeAll(keepingCapacity: true)
            var i = 0
            var j = 0
            while i < alive.count, j < next.count {
                if alive[i] == next[j] {
                    scratch.append(alive[i])
                    i += 1
                    j += 1
                } else if alive[i] < next[j] {
                    lengths[Int(alive[i])] = index
                    i += 1
                } else {
                    j += 1
                }
            }
            while i < alive.count {
                lengths[Int(alive[i])] = index
                i += 1
            }
            if scratch.isEmpty { return AffinityMatch(table: self, lengthBySlot: lengths) }
            swap(&alive, &scratch)
            index += 1
        }
        for slot in alive { lengths[Int(slot)] = index }
        return AffinityMatch(table: self, lengthBySlot: lengths)
    }

    fileprivate func slot(of instance: String) -> Int32? { slots[instance] }

    /// Forgets an instance entirely (it was removed, or its engine restarted with an empty cache).
    public mutating func remove(_ instance: String) {
        guard let slot = slots.removeValue(forKey: instance), let lru = instances[Int(slot)] else { return }
        for hash in lru.allHashes { dropHolder(hash, slot: slot) }
        instances[Int(slot)] = nil
        freeSlots.append(slot)
    }

    /// Every instance's hashes, oldest first: what a snapshot stores, and enough to rebuild
    /// an equal table with `init(entries:)`.
    public var entries: [(instance: String, capacity: Int, hashesOldestFirst: [UInt64])] {
        instanceIDs.compactMap { id in
            guard let lru = instances[Int(slots[id]!)] else { return nil }
            return (id, lru.capacity, lru.oldestFirst)
        }
    }

    public init(entries: [(instance: String, capacity: Int, hashesOldestFirst: [UInt64])]) {
        self.init()
        for entry in entries {
            setCapacity(entry.capacity, for: entry.instance)
            for hash in entry.hashesOldestFirst { record([hash], on: entry.instance) }
        }
    }

    public static func == (lhs: PrefixAffinityTable, rhs: PrefixAffinityTable) -> Bool {
        lhs.entries.elementsEqual(rhs.entries) { $0.instance == $1.instance && $0.capacity == $1.capacity && $0.hashesOldestFirst == $1.hashesOldestFirst }
    }

    /// Moves an instance's LRU out of the array for mutation (the caller puts it back). Copying
    /// it out while the array still held it would make its first mutation copy the whole LRU.
    private mutating func takeLRU(_ slot: Int32) -> InstanceLRU {
        defer { instances[Int(slot)] = nil }
        return instances[Int(slot)]!
    }

    private mutating func slotFor(_ instance: String, capacity: Int) -> Int32 {
        if let slot = slots[instance] { return slot }
        let lru = InstanceLRU(id: instance, capacity: max(1, capacity))
        let slot: Int32
        if let reused = freeSlots.popLast() {
            slot = reused
            instances[Int(slot)] = lru
        } else {
            slot = Int32(instances.count)
            instances.append(lru)
        }
        slots[instance] = slot
        return slot
    }

    private func insertSorted(_ slot: Int32, into list: inout [Int32]) {
        var position = list.count
        while position > 0, list[position - 1] > slot { position -= 1 }
        list.insert(slot, at: position)
    }

    private mutating func dropHolder(_ hash: UInt64, slot: Int32) {
        guard var list = holders[hash] else { return }
        list.removeAll { $0 == slot }
        holders[hash] = list.isEmpty ? nil : list
    }
}

/// How many leading chunks of one request's chain each instance holds.
public struct AffinityMatch: Sendable {
    fileprivate let table: PrefixAffinityTable
    fileprivate let lengthBySlot: [Int]

    public var isEmpty: Bool { lengthBySlot.isEmpty }

    public func cachedChunks(of instance: String) -> Int {
        guard !lengthBySlot.isEmpty, let slot = table.slot(of: instance), Int(slot) < lengthBySlot.count else { return 0 }
        return lengthBySlot[Int(slot)]
    }
}
