/// The engine's KV cache: a fixed pool of blocks of `blockSize` tokens with prefix caching in the
/// manner of vLLM's v1 block pool.
///
/// A full block is named by a chained hash (its parent's hash and its own tokens), so a block can
/// be shared by every request whose prompt starts with the same tokens. A block nobody uses any
/// more goes to the tail of a free queue but keeps its hash: it can still be hit until an
/// allocation takes it from the head of that queue (least recently freed first) and evicts it.
public struct KVCache: Sendable {
    public let blockSize: Int
    public let blockCount: Int

    private var refCount: [Int32]
    private var hashOfBlock: [UInt64?]
    private var blockOfHash: [UInt64: Int32] = [:]
    /// The free queue as a doubly linked list over block indices, `sentinel` closing the ring.
    private var previous: [Int32]
    private var following: [Int32]
    private let sentinel: Int32
    public private(set) var freeCount: Int
    public private(set) var evictions: Int = 0

    public init(blockCount: Int, blockSize: Int) {
        precondition(blockCount > 0 && blockSize > 0)
        self.blockSize = blockSize
        self.blockCount = blockCount
        refCount = Array(repeating: 0, count: blockCount)
        hashOfBlock = Array(repeating: nil, count: blockCount)
        sentinel = Int32(blockCount)
        previous = Array(repeating: 0, count: blockCount + 1)
        following = Array(repeating: 0, count: blockCount + 1)
        freeCount = 0
        previous[blockCount] = sentinel
        following[blockCount] = sentinel
        for block in 0..<Int32(blockCount) { append(block) }
    }

    /// Fraction of blocks held by requests; cached blocks nobody holds count as free, as in vLLM.
    public var usage: Double { Double(blockCount - freeCount) / Double(blockCount) }
    public var cachedBlockCount: Int { blockOfHash.count }

    /// The chained hash of a full block of tokens.
    public static func chainHash(parent: UInt64, tokens: ArraySlice<UInt32>) -> UInt64 {
        var hash = parent ^ 0x6A09_E667_F3BC_C908
        for token in tokens {
            hash = (hash ^ UInt64(token)) &* 0x0000_0100_0000_01B3
            hash ^= hash >> 29
        }
        hash = (hash ^ (hash >> 30)) &* 0xBF58_476D_1CE4_E5B9
        hash = (hash ^ (hash >> 27)) &* 0x94D0_49BB_1331_11EB
        return hash ^ (hash >> 31)
    }

    /// The blocks that hold the longest cached run of `hashes`, from the first.
    public func cachedPrefix(of hashes: ArraySlice<UInt64>) -> [Int32] {
        var blocks: [Int32] = []
        for hash in hashes {
            guard let block = blockOfHash[hash] else { break }
            blocks.append(block)
        }
        return blocks
    }

    /// Whether `newBlocks` fresh blocks can be allocated after taking `hits` (which leaves the
    /// free queue if nobody else holds them).
    public func canAllocate(_ newBlocks: Int, afterTaking hits: [Int32] = []) -> Bool {
        let hitsInFreeQueue = hits.reduce(0) { $0 + (refCount[Int($1)] == 0 ? 1 : 0) }
        return newBlocks <= freeCount - hitsInFreeQueue
    }

    /// Takes a reference on cached blocks (a prefix hit).
    public mutating func take(_ blocks: [Int32]) {
        for block in blocks {
            if refCount[Int(block)] == 0 { unlink(block) }
            refCount[Int(block)] += 1
        }
    }

    /// Allocates `count` blocks from the head of the free queue, evicting their cached contents.
    /// Returns nil, changing nothing, when there are not enough free blocks.
    public mutating func allocate(_ count: Int) -> [Int32]? {
        guard count <= freeCount else { return nil }
        var blocks: [Int32] = []
        blocks.reserveCapacity(count)
        for _ in 0..<count {
            let block = following[Int(sentinel)]
            unlink(block)
            if let hash = hashOfBlock[Int(block)] {
                blockOfHash[hash] = nil
                hashOfBlock[Int(block)] = nil
                evictions += 1
            }
            refCount[Int(block)] = 1
            blocks.append(block)
        }
        return blocks
    }

    /// Names a block that has just become full, so later prompts can hit it. A hash already
    /// cached in another block stays with that block (the duplicate is simply not shared).
    public mutating func register(_ block: Int32, hash: UInt64) {
        guard blockOfHash[hash] == nil, hashOfBlock[Int(block)] == nil else { return }
        blockOfHash[hash] = block
        hashOfBlock[Int(block)] = hash
    }

    /// Drops a request's references. Blocks are queued in reverse order, so the tail of a
    /// sequence (least likely to be shared) is evicted before its head.
    public mutating func release(_ blocks: [Int32]) {
        for block in blocks.reversed() {
            refCount[Int(block)] -= 1
            precondition(refCount[Int(block)] >= 0, "KV block released twice")
            if refCount[Int(block)] == 0 { append(block) }
        }
    }

    /// Forgets every cached prefix (vLLM's /reset_prefix_cache, SGLang's /flush_cache).
    public mutating func resetPrefixCache() {
        blockOfHash.removeAll(keepingCapacity: true)
        for index in hashOfBlock.indices { hashOfBlock[index] = nil }
    }

    private mutating func append(_ block: Int32) {
        let last = previous[Int(sentinel)]
        following[Int(last)] = block
        previous[Int(block)] = last
        following[Int(block)] = sentinel
        previous[Int(sentinel)] = block
        freeCount += 1
    }

    private mutating func unlink(_ block: Int32) {
        let before = previous[Int(block)]
        let after = following[Int(block)]
        following[Int(before)] = after
        previous[Int(after)] = before
        freeCount -= 1
    }
}
