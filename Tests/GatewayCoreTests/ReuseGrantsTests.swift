import GatewayCore
import Testing

@Suite struct ReuseGrantsTests {
    private let engineA = InstanceRef(id: "a", endpointURL: "http://a", model: "m", isUp: true)
    private let engineB = InstanceRef(id: "b", endpointURL: "http://b", model: "m", isUp: true)
    private let always: (InstanceRef) -> Bool = { _ in true }

    private func chat(_ messages: [(String, String)]) throws -> RequestFeatures {
        let rendered = messages.map { #"{"role":"\#($0.0)","content":"\#($0.1)"}"# }.joined(separator: ",")
        return try RequestFeatures.read(Array(#"{"model":"m","messages":[\#(rendered)]}"#.utf8), kind: .chat, chunkBytes: 64)
    }

    private func take(_ grants: inout ReuseGrants, _ features: RequestFeatures, at now: Moment, model: String = "m") -> String? {
        grants.take(chain: features.prefixHashes, model: model, answerChunks: features.lastAnswerChunks, now: now, isUsable: always)?.instance.id
    }

    private let system = String(repeating: "You are a careful assistant. ", count: 12)
    private let question = String(repeating: "Tell me about the sea. ", count: 6)
    private let answer = String(repeating: "The sea is large and salty. ", count: 8)

    @Test func aConversationsNextTurnUsesItsGrantOnce() throws {
        let first = try chat([("system", system), ("user", question)])
        let second = try chat([("system", system), ("user", question), ("assistant", answer), ("user", "And rivers?")])
        var grants = ReuseGrants()
        grants.grant(chain: first.prefixHashes, instance: engineA, for: .seconds(30), now: .zero)
        #expect(take(&grants, second, at: .seconds(5)) == "a")
        // Used: the same turn again (a retry, a second copy) asks the leader.
        #expect(take(&grants, second, at: .seconds(5)) == nil)
        #expect(grants.count == 0)
    }

    /// A first turn (no answer in it) sent again is not a continuation.
    @Test func theSameFirstTurnSentAgainAsksTheLeader() throws {
        let first = try chat([("system", system), ("user", question)])
        var grants = ReuseGrants()
        grants.grant(chain: first.prefixHashes, instance: engineA, for: .seconds(30), now: .zero)
        #expect(take(&grants, first, at: .seconds(1)) == nil)
        #expect(grants.count == 1)
    }

    /// A short next turn may fill no new chunk: its chain is the previous turn's, and the answer
    /// between them tells it is a continuation.
    @Test func aNextTurnTooShortToFillAChunkStillUsesTheGrant() throws {
        // The question padded so that the first prompt ends early in a chunk and the short
        // answer and reply do not reach the next.
        let pairs = try (0..<64).map { pad in
            let asked = question + String(repeating: "x", count: pad)
            return (try chat([("system", system), ("user", asked)]), try chat([("system", system), ("user", asked), ("assistant", "Yes."), ("user", "Ok.")]))
        }
        let (first, second) = try #require(pairs.first { $0.0.prefixHashes == $0.1.prefixHashes })
        var grants = ReuseGrants()
        grants.grant(chain: first.prefixHashes, instance: engineA, for: .seconds(30), now: .zero)
        #expect(take(&grants, second, at: .seconds(1)) == "a")
    }

    @Test func anotherConversationWithTheSameSystemPromptDoesNotUseIt() throws {
        let first = try chat([("system", system), ("user", question)])
        let other = try chat([("system", system), ("user", "Something else entirely, at some length: " + question)])
        var grants = ReuseGrants()
        grants.grant(chain: first.prefixHashes, instance: engineA, for: .seconds(30), now: .zero)
        #expect(take(&grants, other, at: .seconds(1)) == nil)
        #expect(grants.count == 1)
    }

    @Test func expiredGrantsAndOtherModelsAsk() throws {
        let first = try chat([("system", system), ("user", question)])
        let second = try chat([("system", system), ("user", question), ("assistant", answer), ("user", "And rivers?")])
        var grants = ReuseGrants()
        grants.grant(chain: first.prefixHashes, instance: engineA, for: .seconds(30), now: .zero)
        #expect(take(&grants, second, at: .seconds(30)) == nil)
        grants.grant(chain: first.prefixHashes, instance: engineA, for: .seconds(30), now: .zero)
        #expect(take(&grants, second, at: .seconds(1), model: "other") == nil)
    }

    @Test func anInstanceNoLongerUsableIsNotUsedAndItsGrantGoes() throws {
        let first = try chat([("system", system), ("user", question)])
        let second = try chat([("system", system), ("user", question), ("assistant", answer), ("user", "And rivers?")])
        var grants = ReuseGrants()
        grants.grant(chain: first.prefixHashes, instance: engineA, for: .seconds(30), now: .zero)
        let down = grants.take(chain: second.prefixHashes, model: "m", answerChunks: second.lastAnswerChunks, now: .seconds(1)) { $0.id != "a" }
        #expect(down == nil && grants.count == 0)
    }

    @Test func aGrantCoveringLessThanHalfTheRequestIsNotUsed() throws {
        let brief = String(repeating: "Be brief. ", count: 14)
        let first = try chat([("system", brief), ("user", "hi")])
        let long = try chat([("system", brief), ("user", "hi"), ("assistant", answer), ("user", String(repeating: "a long paste ", count: 80))])
        var grants = ReuseGrants()
        grants.grant(chain: first.prefixHashes, instance: engineA, for: .seconds(30), now: .zero)
        #expect(!first.prefixHashes.isEmpty && first.prefixHashes.count * 2 < long.prefixHashes.count)
        #expect(take(&grants, long, at: .seconds(1)) == nil)
    }

    @Test func theLongestGrantedTurnWins() throws {
        let first = try chat([("system", system), ("user", question)])
        let second = try chat([("system", system), ("user", question), ("assistant", answer), ("user", question)])
        let third = try chat([("system", system), ("user", question), ("assistant", answer), ("user", question), ("assistant", answer), ("user", "ok")])
        var grants = ReuseGrants()
        grants.grant(chain: first.prefixHashes, instance: engineA, for: .seconds(30), now: .zero)
        grants.grant(chain: second.prefixHashes, instance: engineB, for: .seconds(30), now: .zero)
        #expect(take(&grants, third, at: .seconds(1)) == "b")
    }

    @Test func revokingAnInstanceDropsItsGrants() throws {
        let first = try chat([("system", system), ("user", question)])
        let second = try chat([("system", system), ("user", question), ("assistant", answer), ("user", "And rivers?")])
        var grants = ReuseGrants()
        grants.grant(chain: first.prefixHashes, instance: engineA, for: .seconds(30), now: .zero)
        grants.revoke(instance: "a")
        #expect(take(&grants, second, at: .seconds(1)) == nil)
    }

    @Test func theTableIsBoundedAndEvictsTheOldestFirst() {
        var grants = ReuseGrants(capacity: 3)
        for key in UInt64(1)...5 { grants.grant(chain: [key], instance: engineA, for: .seconds(30), now: .zero) }
        #expect(grants.count == 3)
        #expect(grants.take(chain: [1, 99], model: "m", answerChunks: nil, now: .seconds(1), isUsable: always) == nil)
        #expect(grants.take(chain: [2, 99], model: "m", answerChunks: nil, now: .seconds(1), isUsable: always) == nil)
        #expect(grants.take(chain: [5, 99], model: "m", answerChunks: nil, now: .seconds(1), isUsable: always)?.instance.id == "a")
        // Regranting a key keeps one entry; many rounds keep the bookkeeping bounded.
        for round in 0..<10_000 { grants.grant(chain: [UInt64(round % 7)], instance: engineB, for: .seconds(30), now: .zero) }
        #expect(grants.count == 3)
    }

    @Test func aGrantIsOnlyForTheChainPositionItWasGivenAt() {
        var grants = ReuseGrants()
        grants.grant(chain: [7, 8], instance: engineA, for: .seconds(30), now: .zero)
        // The same hash value at another position is not the same prefix.
        #expect(grants.take(chain: [8, 9, 10], model: "m", answerChunks: nil, now: .seconds(1), isUsable: always) == nil)
        #expect(grants.take(chain: [7, 8, 9], model: "m", answerChunks: nil, now: .seconds(1), isUsable: always)?.instance.id == "a")
    }
}
