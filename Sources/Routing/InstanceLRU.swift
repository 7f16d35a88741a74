/// One instance's bounded set of prefix hashes in least-recently-used order: a dictionary into
/// a doubly linked list over a node pool, so touch, insert and evict are O(1).
struct InstanceLRU: Sendable {
    enum Touch { case inserted, refreshed }

    let id: String
    var capacity: Int
    private var index: [UInt64: Int32] = [:]
    private var hashes: [UInt64] = []
    private var newer: [Int32] = []
    private var older: [Int32] = []
    private var freeNodes: [Int32] = []
    /// Oldest and newest nodes; -1 when empty.
    private var oldest: Int32 = -1
    private var newest: Int32 = -1

    init(id: String, capacity: Int) {
        self.id = id
        self.capacity = capacity
    }

    var count: Int { index.count }

    mutating func touch(_ hash: UInt64) -> Touch {
        if let node = index[hash] {
            unlink(node)
            pushNewest(node)
            return .refreshed
        }
        let node: Int32
        if let reused = freeNodes.popLast() {
            node = reused
            hashes[Int(node)] = hash
        } else {
            node = Int32(hashes.count)
            hashes.append(hash)
            newer.append(-1)
            older.append(-1)
        }
        index[hash] = node
        pushNewest(node)
        return .inserted
    }

    mutating func evictOldest() -> UInt64? {
        guard oldest >= 0 else { return nil }
        let node = oldest
        let hash = hashes[Int(node)]
        unlink(node)
        index[hash] = nil
        freeNodes.append(node)
        return hash
    }

    var allHashes: Dictionary<UInt64, Int32>.Keys { index.keys }

    var oldestFirst: [UInt64] {
        var result: [UInt64] = []
        result.reserveCapacity(count)
        var node = oldest
        while node >= 0 {
            result.append(hashes[Int(node)])
            node = newer[Int(node)]
        }
        return result
    }

    private mutating func pushNewest(_ node: Int32) {
        older[Int(node)] = newest
        newer[Int(node)] = -1
        if newest >= 0 { newer[Int(newest)] = node } else { oldest = node }
        newest = node
    }

    private mutating func unlink(_ node: Int32) {
        let before = older[Int(node)]
        let after = newer[Int(node)]
        if before >= 0 { newer[Int(before)] = after } else { oldest = after }
        if after >= 0 { older[Int(after)] = before } else { newest = before }
    }
}
