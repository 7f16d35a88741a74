import Foundation
import GatewayCore
import Testing

/// The class's engine priority written into a request body, the client's own replaced.
@Suite struct EnginePriorityBodyTests {
    private func apply(_ body: String, _ priority: Int) -> String? {
        EnginePriorityBody.apply(Array(body.utf8), priority: priority).map { String(decoding: $0, as: UTF8.self) }
    }

    private func object(_ text: String?) throws -> [String: Any] {
        let data = try #require(text.map { Data($0.utf8) })
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func aBodyWithoutPriorityKeepsEveryByteAndGainsTheField() {
        let body = #"{"model":"m","messages":[{"role":"user","content":"1.50 apples"}],"temperature":0.7}"#
        #expect(apply(body, 3) == #"{"priority":3,"model":"m","messages":[{"role":"user","content":"1.50 apples"}],"temperature":0.7}"#)
        #expect(apply("  {\n \"model\": \"m\" }", -2) == "  {\"priority\":-2,\n \"model\": \"m\" }")
        #expect(apply("{}", 1) == #"{"priority":1}"#)
        #expect(apply("{ }", 1) == #"{"priority":1 }"#)
    }

    @Test func theClientsOwnPriorityIsReplacedNotDuplicated() throws {
        let written = apply(#"{"model":"m","priority":-100,"prompt":"x"}"#, 1)
        let parsed = try object(written)
        #expect(parsed["priority"] as? Int == 1)
        #expect(parsed["model"] as? String == "m" && parsed["prompt"] as? String == "x")
        #expect(written?.components(separatedBy: "\"priority\"").count == 2, "one priority key")
    }

    @Test func aBodyThatIsNotAnObjectIsLeftToTheCaller() {
        #expect(apply("[1,2]", 1) == nil)
        #expect(apply("", 1) == nil)
        #expect(apply("{", 1) == nil)
        #expect(apply(#"{"priority": }"#, 1) == nil, "mentions priority but is not JSON")
    }
}
