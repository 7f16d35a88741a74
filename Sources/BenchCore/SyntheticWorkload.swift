import Foundation
import Seeded

/// Seeded conversations shaped like ShareGPT multi-turn chat. Documented in Docs/benchmarks.md:
///
/// - turns per conversation: uniform in `turns`;
/// - user turn and answer lengths: log-normal (median, σ), capped;
/// - shared system prompts: `systemPrompts` distinct prompts of `systemPromptTokens` tokens, each
///   conversation taking one at random (uniform); none when `systemPrompts` is 0.
///
/// Text is made of three-letter words and spaces: four bytes a word, one token by
/// `TokenEstimate` and by the simulator's tokenizer, about one to two for real BPE tokenizers.
public struct SyntheticWorkload: Sendable, Equatable {
    public var conversations = 200
    public var turns: ClosedRange<Int> = 1...4
    public var userTokensMedian = 250.0
    public var userTokensSigma = 0.8
    public var answerTokensMedian = 1100.0
    public var answerTokensSigma = 0.6
    public var maxUserTokens = 4000
    public var maxAnswerTokens = 4000
    public var systemPrompts = 0
    public var systemPromptTokens = 0
    public var seed: UInt64 = 1

    public init() {}

    public func generate() -> [Conversation] {
        var rng = SplitMix64(seed: seed)
        let prompts = (0..<systemPrompts).map { index in
            "You are assistant \(index). " + Self.words(max(1, systemPromptTokens - 4), using: &rng)
        }
        return (0..<conversations).map { index in
            let count = Int.random(in: turns, using: &rng)
            let system = prompts.isEmpty ? nil : prompts[Int(rng.next() % UInt64(prompts.count))]
            let items = (0..<count).map { turn in
                let user = Self.logNormal(median: userTokensMedian, sigma: userTokensSigma, cap: maxUserTokens, using: &rng)
                let answer = Self.logNormal(median: answerTokensMedian, sigma: answerTokensSigma, cap: maxAnswerTokens, using: &rng)
                // The turn's own tag makes every user message distinct, so no two conversations
                // share more than their system prompt.
                return Conversation.Turn(user: "c\(index)t\(turn) " + Self.words(max(1, user - 2), using: &rng), answerTokens: answer)
            }
            return Conversation(id: "synthetic-\(seed)-\(index)", system: system, turns: items)
        }
    }

    /// `count` pseudo-words of three lowercase letters, space-separated.
    public static func words(_ count: Int, using rng: inout SplitMix64) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count * 4)
        for index in 0..<count {
            if index > 0 { bytes.append(0x20) }
            let r = rng.next()
            for shift in [0, 8, 16] as [UInt64] { bytes.append(0x61 + UInt8((r >> shift) % 26)) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A log-normal draw rounded to a whole number in 1...cap.
    static func logNormal(median: Double, sigma: Double, cap: Int, using rng: inout SplitMix64) -> Int {
        min(cap, max(1, Int(rng.nextLogNormal(median: median, sigma: sigma).rounded())))
    }
}
