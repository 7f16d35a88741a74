import EngineModel
import Testing

@Suite struct TokenizerTests {
    @Test func aboutFourCharactersPerTokenAndNewlinesAlone() {
        #expect(StandInTokenizer.tokenize("abcdefgh").count == 2)
        #expect(StandInTokenizer.tokenize("abcdefghi").count == 3)
        #expect(StandInTokenizer.tokenize("ab\ncd").count == 3)
        #expect(StandInTokenizer.tokenize("").isEmpty)
        let text = String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 40)
        let ratio = Double(text.utf8.count) / Double(StandInTokenizer.tokenize(text).count)
        #expect(ratio > 3.9 && ratio <= 4.0)
    }

    @Test func countAgreesWithTokenize() {
        for text in ["", "a", "abcd", "abcd\n", "\n\n", "héllo wörld\nsecond line", String(repeating: "xyz\n", count: 9)] {
            #expect(StandInTokenizer.count(text) == StandInTokenizer.tokenize(text).count, "\(text)")
        }
    }

    @Test func sameTextSameTokensAndDifferentTextDiffers() {
        #expect(StandInTokenizer.tokenize("hello world") == StandInTokenizer.tokenize("hello world"))
        #expect(StandInTokenizer.tokenize("hello world") != StandInTokenizer.tokenize("hello worle"))
    }

    /// A generated answer sent back in a chat history must tokenize into the tokens generated,
    /// or multi-turn prefix caching could never reach into previous answers.
    @Test func generatedTextRetokenizesToTheSameTokensInsideAChatHistory() {
        var plan = OutputPlan(seed: 42, medianLength: 50, sigma: 0)
        let answerTokens = (0..<50).map { _ in plan.nextToken() }
        let answer = answerTokens.map(Vocabulary.text(of:)).joined()
        let history = ChatTemplate.render([
            .init(role: "user", content: "hi there"), .init(role: "assistant", content: answer),
            .init(role: "user", content: "go on"),
        ])
        let prefix = StandInTokenizer.tokenize(
            ChatTemplate.render([.init(role: "user", content: "hi there")]))
        let all = StandInTokenizer.tokenize(history)
        #expect(Array(all[prefix.count..<(prefix.count + 50)]) == answerTokens)
    }

    @Test func vocabularyWordsAreFourBytesAndOneTokenEach() {
        #expect(Vocabulary.words.count == 880)
        for word in Vocabulary.words { #expect(word.utf8.count == 4) }
        // Distinct ids for nearly all words, and each id renders back to its own word.
        #expect(Set(Vocabulary.tokenIds).count > 870)
        let roundTrips = zip(Vocabulary.words, Vocabulary.tokenIds).filter { Vocabulary.text(of: $1) == $0 }.count
        #expect(roundTrips == Set(Vocabulary.tokenIds).count)
    }
}
