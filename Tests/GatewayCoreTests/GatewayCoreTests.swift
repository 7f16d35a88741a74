import Foundation
import GatewayCore
import Testing

@Suite struct RequestFeaturesTests {
    private func body(_ json: String) -> [UInt8] { Array(json.utf8) }

    @Test func aLaterTurnExtendsTheEarlierTurnsChain() throws {
        let first = try RequestFeatures.read(
            body(#"{"model":"m","messages":[{"role":"system","content":"\#(String(repeating: "s", count: 600))"},{"role":"user","content":"hi"}]}"#),
            kind: .chat, chunkBytes: 256)
        let second = try RequestFeatures.read(
            body(
                #"{"model":"m","stream":true,"max_tokens":9,"messages":[{"role":"system","content":"\#(String(repeating: "s", count: 600))"},{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"text","text":"hello"}]},{"role":"user","content":"more \#(String(repeating: "x", count: 300))"}]}"#
            ), kind: .chat, chunkBytes: 256)
        #expect(first.model == "m" && !first.stream && second.stream && second.maxTokens == 9)
        #expect(first.prefixHashes.count == 2 && second.prefixHashes.count == 3)
        #expect(Array(second.prefixHashes.prefix(2)) == first.prefixHashes)
        #expect(String(decoding: second.canonicalPrompt, as: UTF8.self).contains("<|assistant|>\nhello\n"))
        #expect(first.promptTokens == (first.canonicalPrompt.count + 3) / 4)
    }

    @Test func completionPromptsInEveryForm() throws {
        let text = try RequestFeatures.read(body(#"{"model":"m","prompt":"abcd"}"#), kind: .completion, chunkBytes: 2)
        #expect(text.prefixHashes.count == 2 && text.promptTokens == 1)
        let ids = try RequestFeatures.read(body(#"{"model":"m","prompt":[1,2,3,4,5]}"#), kind: .completion, chunkBytes: 4)
        #expect(ids.promptTokens == 5 && String(decoding: ids.canonicalPrompt, as: UTF8.self) == "1 2 3 4 5")
        let batch = try RequestFeatures.read(body(#"{"model":"m","prompt":["a","b"]}"#), kind: .completion, chunkBytes: 4)
        #expect(String(decoding: batch.canonicalPrompt, as: UTF8.self) == "a\nb")
    }

    @Test(arguments: [
        ("not json", RequestFeatures.Kind.chat, "The request body is not valid JSON"),
        ("[1,2]", .chat, "The request body must be a JSON object."),
        (#"{"messages":[{"role":"user","content":"x"}]}"#, .chat, "you must provide a model parameter"),
        (#"{"model":"m","messages":[]}"#, .chat, "'messages' must be a non-empty array of message objects"),
        (#"{"model":"m","prompt":{"a":1}}"#, .completion, "'prompt' must be a string, an array of strings, or token ids"),
    ])
    func badBodiesAreInvalidRequests(json: String, kind: RequestFeatures.Kind, message: String) {
        do {
            _ = try RequestFeatures.read(Array(json.utf8), kind: kind, chunkBytes: 256)
            Issue.record("accepted \(json)")
        } catch {
            #expect(error.status == 400 && error.type == "invalid_request_error" && error.message.hasPrefix(message))
        }
    }

    @Test func hashesAreStableAndChained() {
        let a = PrefixHasher.chain(Array("abcdefgh".utf8), chunkBytes: 4)
        let b = PrefixHasher.chain(Array("abcdXXXX".utf8), chunkBytes: 4)
        let c = PrefixHasher.chain(Array("XXXXefgh".utf8), chunkBytes: 4)
        #expect(a.count == 2 && a[0] == b[0] && a[1] != b[1])
        #expect(a[1] != c[1])  // the same second chunk after a different first one is a different prefix
        #expect(a == PrefixHasher.chain(Array("abcdefghij".utf8), chunkBytes: 4))  // a partial chunk is not hashed
        // Fixed values, computed by an independent Python FNV-1a: every gateway, process and
        // machine computes these.
        #expect(a == [0xdcdc_57c7_a804_987d, 0xd074_842a_0a86_35a6])
    }

    @Test func errorsAreShapedLikeOpenAIs() throws {
        let error = OpenAIError.modelNotFound("gpt \"x\"")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(error.json.utf8)) as? [String: Any])
        let inner = try #require(object["error"] as? [String: Any])
        #expect(inner["message"] as? String == "The model 'gpt \"x\"' does not exist or no instance serving it is up.")
        #expect(inner["type"] as? String == "invalid_request_error" && inner["param"] as? String == "model")
        #expect(inner["code"] as? String == "model_not_found" && error.status == 404)
    }
}

@Suite struct FallbackRouterTests {
    let table = [
        InstanceRef(id: "a", endpointURL: "http://a", model: "m", isUp: true),
        InstanceRef(id: "b", endpointURL: "http://b", model: "m", isUp: true),
        InstanceRef(id: "c", endpointURL: "http://c", model: "m", isUp: false),
        InstanceRef(id: "d", endpointURL: "http://d", model: "other", isUp: true),
    ]

    @Test func roundRobinOverUpInstancesSkippingRecentFailures() {
        var router = FallbackRouter(coolOffSeconds: 2)
        let picks = (0..<4).compactMap { _ in router.choose(model: "m", in: table, exclude: [], now: 0)?.id }
        #expect(picks == ["a", "b", "a", "b"])
        router.failed("a", now: 10)
        #expect((0..<3).compactMap { _ in router.choose(model: "m", in: table, exclude: [], now: 11)?.id } == ["b", "b", "b"])
        // Cooled off after two seconds: back in rotation.
        #expect(Set((0..<2).compactMap { _ in router.choose(model: "m", in: table, exclude: [], now: 12.5)?.id }) == ["a", "b"])
        // When every candidate failed recently, still try them rather than fail the request.
        router.failed("a", now: 20)
        router.failed("b", now: 20)
        #expect(router.choose(model: "m", in: table, exclude: [], now: 20.1) != nil)
        #expect(router.choose(model: "m", in: table, exclude: ["a", "b"], now: 20.1) == nil)
        #expect(router.choose(model: "nobody", in: table, exclude: [], now: 0) == nil)
    }

    @Test func retryOnlyWhatTheEngineCouldNotServe() {
        #expect(RetryPolicy.decide(status: nil) == .retryElsewhere)
        #expect(RetryPolicy.decide(status: 503) == .retryElsewhere && RetryPolicy.decide(status: 500) == .retryElsewhere)
        #expect(RetryPolicy.decide(status: 429) == .retryElsewhere)
        #expect(RetryPolicy.decide(status: 400) == .passToClient && RetryPolicy.decide(status: 404) == .passToClient)
    }
}
