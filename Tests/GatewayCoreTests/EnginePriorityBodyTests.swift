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

    @Test func aBodyWithoutPriorityKeepsEveryByteAndGainsTheFieldLast() {
        let body = #"{"model":"m","messages":[{"role":"user","content":"1.50 apples"}],"temperature":0.7}"#
        #expect(apply(body, 3) == #"{"model":"m","messages":[{"role":"user","content":"1.50 apples"}],"temperature":0.7,"priority":3}"#)
        #expect(apply("  {\n \"model\": \"m\" }\n", -2) == "  {\n \"model\": \"m\" ,\"priority\":-2}\n")
        #expect(apply("{}", 1) == #"{"priority":1}"#)
        #expect(apply("{ }", 1) == #"{ "priority":1}"#)
    }

    @Test func aKeySpeltWithEscapesIsOutvotedByOursComingLast() throws {
        // Python's json (vLLM's, SGLang's) keeps the last of duplicate keys.
        let written = try #require(apply(#"{"\u0070riority":-100,"model":"m"}"#, 1))
        #expect(written.hasSuffix(#","priority":1}"#))
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", "import json,sys; print(json.loads(sys.argv[1])['priority'])", written]
        let pipe = Pipe()
        python.standardOutput = pipe
        try python.run()
        python.waitUntilExit()
        #expect(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) == "1\n")
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
        #expect(apply(#"{"priority":1,"x":1e400}"#, 1) == nil, "names priority, and cannot be written again")
    }
}
