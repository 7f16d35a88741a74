/// Chained hashes of fixed-size chunks of a prompt's canonical text: hash k covers chunks 0…k,
/// so two prompts share hash k exactly when they share their first k+1 chunks. Only full
/// chunks are hashed (engines cache only full blocks). FNV-1a 64: stable across processes and
/// machines (Swift's `Hasher` is seeded per process), so every gateway computes the same chain.
///
/// The chain starts from a seed: the gateway seeds it with the requested model's name, because
/// an engine caches a prompt per model (vLLM keys each block by its LoRA adapter too), so the
/// same text asked of two adapters must not look cached for one where the other ran.
public enum PrefixHasher {
    /// At most `maxChunks` hashes: the text beyond is not routed on.
    public static func chain(_ text: [UInt8], chunkBytes: Int, maxChunks: Int = .max, seed: UInt64 = 0) -> [UInt64] {
        guard chunkBytes > 0, maxChunks > 0 else { return [] }
        var hashes: [UInt64] = []
        hashes.reserveCapacity(min(maxChunks, text.count / chunkBytes))
        var previous = seed
        var start = 0
        while start + chunkBytes <= text.count, hashes.count < maxChunks {
            let hash = step(previous: previous, text[start..<(start + chunkBytes)])
            hashes.append(hash)
            previous = hash
            start += chunkBytes
        }
        return hashes
    }

    /// A hash of exactly the first `length` bytes of `text`, whose chain is `chain`: the chain's
    /// hash of the full chunks in front, carried over the bytes after them as one more (partial)
    /// chunk. Two texts get the same key when their first `length` bytes are the same (and the
    /// model, by the seed), whatever follows; nil when those chunks lie beyond the chain's cap.
    public static func key(of text: [UInt8], length: Int, chain: [UInt64], chunkBytes: Int, seed: UInt64) -> UInt64? {
        guard chunkBytes > 0, length >= 0, length <= text.count else { return nil }
        let full = length / chunkBytes
        guard full <= chain.count else { return nil }
        let previous = full == 0 ? seed : chain[full - 1]
        // The length too: a key never equals a chain hash of a text that happens to end on a chunk.
        return mix(step(previous: previous, text[(full * chunkBytes)..<length]), UInt64(length))
    }

    /// One link of the chain: FNV-1a 64 over the previous hash's eight bytes, then the chunk's.
    private static func step(previous: UInt64, _ chunk: ArraySlice<UInt8>) -> UInt64 {
        var hash = mix(0xcbf2_9ce4_8422_2325, previous)
        for byte in chunk { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return hash
    }

    /// FNV-1a 64 carried over `value`'s eight bytes, low byte first.
    private static func mix(_ hash: UInt64, _ value: UInt64) -> UInt64 {
        var hash = hash
        for shift in stride(from: 0, to: 64, by: 8) { hash = (hash ^ ((value >> UInt64(shift)) & 0xff)) &* 0x0000_0100_0000_01b3 }
        return hash
    }

    /// A chain's seed for requests to `model`: FNV-1a 64 of its name.
    public static func seed(model: String) -> UInt64 { fnv1a(model.utf8) }

    /// FNV-1a 64 of `bytes`.
    public static func fnv1a(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return hash
    }
}
