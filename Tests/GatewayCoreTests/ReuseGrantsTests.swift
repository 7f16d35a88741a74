import GatewayCore
import Testing

@Suite struct ReuseGrantsTests {
    private let engineA = InstanceRef(id: "a", endpointURL: "http://a", model: "m", isUp: true)
    private let engineB = InstanceRef(id: "b", endpointURL: "http://b", model: "m", isUp: true)

    private func chat(_ messages: [(String, String)], model: String = "m") throws -> RequestFeatures {
        let rendered = messages.map { #"{"role":"\#($0.0)","content":"\#($0.1)"}"# }.joined(separator: ",")
        return try RequestFeatures.read(Array(#"{"model":"\#(model)","messages":[\#(rendered)]}"#.utf8), kind: .chat, chunkBytes: 64)
    }

    /// The leader's grant for `features`' request, kept as the gateway keeps it.
    private func grant(_ grants: inout ReuseGrants, _ features: RequestFeatures, to instance: InstanceRef, now: Moment = .zero) throws {
        grants.grant(
            promptKey: try #require(features.promptKey), chunks: features.prefixHashes.count, instance: instance, for: .seconds(10), now: now)
    }

    private func take(_ grants: inout ReuseGrants, _ features: RequestFeatures, at now: Moment) -> String? {
        guard let key = features.previousTurnKey else { return nil }
        return grants.take(previousTurnKey: key, chunks: features.prefixHashes.count, model: features.model, now: now)?.instance.id
    }

    private let system = String(repeating: "You are a careful assistant. ", count: 12)
    private let question = String(repeating: "Tell me about the sea. ", count: 6)
    private let answer = String(repeating: "The sea is large and salty. ", count: 8)

    @Test func aConversationsNextTurnUsesItsGrantOnce() throws {
        let first = try chat([("system", system), ("user", question)])
        let second = try chat([("system", system), ("user", question), ("assistant", answer), ("user", "And rivers?")])
        var grants = ReuseGrants()
        try grant(&grants, first, to: engineA)
        #expect(take(&grants, second, at: .seconds(5)) == "a")
        // Used: the same turn again (a retry, a second copy) asks the leader.
        #expect(take(&grants, second, at: .seconds(5)) == nil)
        #expect(grants.count == 0)
    }

    /// The previous turn's prompt is exactly the text in front of the last answer: the key of one
    /// is the key of the other, whatever chunk boundary it ends at.
    @Test func theTextBeforeTheLastAnswerIsThePreviousTurnsPrompt() throws {
        for pad in 0..<64 {
            let asked = question + String(repeating: "x", count: pad)
            let first = try chat([("system", system), ("user", asked)])
            let second = try chat([("system", system), ("user", asked), ("assistant", "Yes."), ("user", "Ok.")])
            #expect(first.promptKey != nil && first.promptKey == second.previousTurnKey, "pad \(pad)")
            #expect(first.promptKey != second.promptKey)
        }
        // No answer in it, no previous turn; a completion has no turns at all.
        #expect(try chat([("user", "hi")]).previousTurnKey == nil)
        let completion = try RequestFeatures.read(Array(#"{"model":"m","prompt":"hi"}"#.utf8), kind: .completion, chunkBytes: 64)
        #expect(completion.promptKey == nil && completion.previousTurnKey == nil)
    }

    /// Conversations that share a system prompt and open with a short message differ only in the
    /// unhashed tail of their first chunks: their chains are the same, their keys are not.
    @Test func anotherConversationWithTheSameSystemPromptDoesNotUseIt() throws {
        let firstA = try chat([("system", system), ("user", "Hi")])
        let firstB = try chat([("system", system), ("user", "Yo")])
        #expect(firstA.prefixHashes == firstB.prefixHashes)
        let secondB = try chat([("system", system), ("user", "Yo"), ("assistant", "Hello."), ("user", "Tell me more.")])
        var grants = ReuseGrants()
        try grant(&grants, firstA, to: engineA)
        #expect(take(&grants, secondB, at: .seconds(1)) == nil)
        try grant(&grants, firstB, to: engineB)
        #expect(take(&grants, secondB, at: .seconds(1)) == "b")
    }

    @Test func expiredGrantsAndOtherModelsAsk() throws {
        let first = try chat([("system", system), ("user", question)])
        let second = try chat([("system", system), ("user", question), ("assistant", answer), ("user", "And rivers?")])
        var grants = ReuseGrants()
        try grant(&grants, first, to: engineA)
        #expect(take(&grants, second, at: .seconds(10)) == nil)
        // The model seeds the keys: the same conversation asked of another model has other keys.
        try grant(&grants, first, to: engineA)
        let elsewhere = try chat([("system", system), ("user", question), ("assistant", answer), ("user", "And rivers?")], model: "other")
        #expect(take(&grants, elsewhere, at: .seconds(1)) == nil)
        // A grant for an instance of another model (a key that collides) is not used either.
        let key = try #require(second.previousTurnKey)
        grants.grant(promptKey: key, chunks: 8, instance: InstanceRef(id: "x", endpointURL: "http://x", model: "other", isUp: true), for: .seconds(10), now: .zero)
        #expect(take(&grants, second, at: .seconds(1)) == nil)
    }

    @Test func aGrantCoveringLessThanHalfTheRequestIsNotUsed() throws {
        let brief = String(repeating: "Be brief. ", count: 14)
        let first = try chat([("system", brief), ("user", "hi")])
        let long = try chat([("system", brief), ("user", "hi"), ("assistant", answer), ("user", String(repeating: "a long paste ", count: 80))])
        var grants = ReuseGrants()
        try grant(&grants, first, to: engineA)
        #expect(!first.prefixHashes.isEmpty && first.prefixHashes.count * 2 < long.prefixHashes.count)
        #expect(first.promptKey == long.previousTurnKey)
        #expect(take(&grants, long, at: .seconds(1)) == nil)
    }

    @Test func theTableIsBoundedAndEvictsTheOldestFirst() {
        var grants = ReuseGrants(capacity: 3)
        for key in UInt64(1)...5 { grants.grant(promptKey: key, chunks: 1, instance: engineA, for: .seconds(30), now: .zero) }
        #expect(grants.count == 3)
        #expect(grants.take(previousTurnKey: 1, chunks: 2, model: "m", now: .seconds(1)) == nil)
        #expect(grants.take(previousTurnKey: 2, chunks: 2, model: "m", now: .seconds(1)) == nil)
        #expect(grants.take(previousTurnKey: 5, chunks: 2, model: "m", now: .seconds(1))?.instance.id == "a")
        // Regranting a key keeps one entry; many rounds keep the bookkeeping bounded.
        for round in 0..<10_000 { grants.grant(promptKey: UInt64(round % 7), chunks: 1, instance: engineB, for: .seconds(30), now: .zero) }
        #expect(grants.count == 3)
    }
}
