import Seeded

/// The words the simulated engine generates: 880 made-up words of exactly 4 bytes (" bak",
/// " ten", ...). Whole 4-byte words keep generated text aligned with `StandInTokenizer`'s chunks,
/// so an answer sent back in a later turn hits the KV blocks it was generated into.
public enum Vocabulary {
    public static let words: [String] = {
        let first = Array("bcdfghklmnprstvw")
        let vowels = Array("aeiou")
        let last = Array("bdgklmnprst")
        var words: [String] = []
        for a in first { for v in vowels { for z in last { words.append(" \(a)\(v)\(z)") } } }
        return words
    }()

    public static let tokenIds: [UInt32] = words.map { StandInTokenizer.tokenize($0)[0] }

    private static let textById: [UInt32: String] = {
        var map: [UInt32: String] = [:]
        for (word, id) in zip(words, tokenIds) where map[id] == nil { map[id] = word }
        return map
    }()

    /// The text of a generated token (every id `OutputPlan` produces is in the table).
    public static func text(of token: UInt32) -> String { textById[token] ?? " unk" }
}

/// What one request will generate: a deterministic token sequence for its seed, and its natural
/// length (where the model would stop on its own), drawn from a log-normal distribution.
public struct OutputPlan: Sendable {
    public let naturalLength: Int
    private var rng: SplitMix64

    public init(seed: UInt64, medianLength: Double, sigma: Double) {
        var rng = SplitMix64(seed: seed)
        naturalLength = max(1, Int(rng.nextLogNormal(median: medianLength, sigma: sigma).rounded()))
        self.rng = rng
    }

    public mutating func nextToken() -> UInt32 {
        Vocabulary.tokenIds[Int(rng.next() % UInt64(Vocabulary.tokenIds.count))]
    }
}
