import BenchCore
import Testing

@Suite struct SyntheticWorkloadTests {
    static var workload: SyntheticWorkload {
        var workload = SyntheticWorkload()
        workload.conversations = 300
        workload.turns = 2...5
        workload.systemPrompts = 3
        workload.systemPromptTokens = 200
        return workload
    }

    @Test func theSameSeedGivesTheSameConversations() {
        var other = Self.workload
        #expect(Self.workload.generate() == Self.workload.generate())
        other.seed = 2
        #expect(other.generate() != Self.workload.generate())
    }

    @Test func shapesFollowTheParameters() {
        let conversations = Self.workload.generate()
        #expect(conversations.allSatisfy { (2...5).contains($0.turns.count) })
        #expect(Set(conversations.map { $0.turns.count }).count == 4)
        let prompts = Set(conversations.compactMap(\.system))
        #expect(prompts.count == 3 && conversations.allSatisfy { $0.system != nil })
        #expect(prompts.allSatisfy { abs(TokenEstimate.tokens($0) - 200) <= 8 })
        // Log-normal lengths: the median lands near the parameter, the spread is real.
        let users = conversations.flatMap(\.turns).map { TokenEstimate.tokens($0.user) }.sorted()
        let answers = conversations.flatMap(\.turns).map(\.answerTokens).sorted()
        #expect(abs(Double(users[users.count / 2]) - 250) < 40)
        #expect(abs(Double(answers[answers.count / 2]) - 1100) < 150)
        #expect(answers.first! < 600 && answers.last! > 2000 && answers.last! <= 4000)
        // No two user turns are the same text.
        #expect(Set(conversations.flatMap(\.turns).map(\.user)).count == conversations.flatMap(\.turns).count)
    }

    @Test func withoutSystemPromptsThereAreNone() {
        var workload = Self.workload
        workload.systemPrompts = 0
        #expect(workload.generate().allSatisfy { $0.system == nil })
    }
}
