import BenchCore
import Foundation
import Testing

@Suite struct ShareGPTFileTests {
    @Test func readsTurnsAndAnswerLengths() throws {
        let json = """
            [{"id": "a_0", "conversations": [
                {"from": "gpt", "value": "an answer with no question is skipped"},
                {"from": "human", "value": "first"}, {"from": "human", "value": "part two"},
                {"from": "gpt", "value": "\(String(repeating: "x", count: 40))"},
                {"from": "human", "value": "left unanswered"}]},
             {"id": "b", "conversations": [{"from": "system", "value": "be brief"}, {"from": "human", "value": "q"}, {"from": "gpt", "value": "abcde"}]},
             {"id": "empty", "conversations": [{"from": "gpt", "value": "only an answer"}]}]
            """
        let conversations = try ShareGPTFile.parse(Data(json.utf8), defaultAnswerTokens: 7, maxAnswerTokens: 8)
        #expect(conversations.map(\.id) == ["a_0", "b"])
        #expect(conversations[0].turns == [.init(user: "first\npart two", answerTokens: 8), .init(user: "left unanswered", answerTokens: 7)])
        #expect(conversations[1].system == "be brief")
        #expect(conversations[1].turns == [.init(user: "q", answerTokens: 2)])
    }

    @Test func badFilesSayWhatIsWrong() {
        func error(_ text: String) -> String? {
            do { _ = try ShareGPTFile.parse(Data(text.utf8)); return nil } catch { return error.description }
        }
        #expect(error("{\"id\": 1}")?.contains("expected a JSON list") == true)
        #expect(error("not json")?.contains("expected a JSON list") == true)
        #expect(error("[{\"id\": \"x\"}]")?.contains("conversation 0") == true)
        #expect(error("[{\"id\": \"x\", \"conversations\": [{\"from\": \"human\"}]}]")?.contains("conversation x, message 0") == true)
    }

    @Test func whatIsWrittenReadsBackTheSame() throws {
        var workload = SyntheticWorkload()
        workload.conversations = 20
        workload.systemPrompts = 2
        workload.systemPromptTokens = 30
        let conversations = workload.generate()
        let data = ShareGPTFile.render(conversations) { conversation, turn in
            String(repeating: "abc ", count: conversations[conversation].turns[turn].answerTokens - 1) + "abc"
        }
        #expect(try ShareGPTFile.parse(data, maxAnswerTokens: 100_000) == conversations)
    }
}
