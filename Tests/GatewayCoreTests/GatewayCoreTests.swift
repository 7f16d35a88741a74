import Foundation
import GatewayCore
import Testing

@Suite struct RequestFeaturesTests {
    private func body(_ json: String) -> [UInt8] { Array(json.utf8) }

    /// Any integer a client sends as `max_tokens` counts without overflow (flow control adds it to
    /// the prompt's tokens); the engine judges whether it is valid.
    @Test func maxTokensIsCountedWithinBounds() throws {
        let huge = try RequestFeatures.read(body(#"{"model":"m","prompt":"p","max_tokens":9223372036854775807}"#), kind: .completion, chunkBytes: 4)
        #expect(huge.maxTokens == RequestFeatures.largestCountedMaxTokens)
        let negative = try RequestFeatures.read(body(#"{"model":"m","prompt":"p","max_tokens":-5}"#), kind: .completion, chunkBytes: 4)
        #expect(negative.maxTokens == 0)
        #expect(huge.promptTokens + huge.maxTokens! < Int.max / 2)
    }

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

    @Test func aLongPromptIsRoutedOnItsFirstChunksOnly() throws {
        let text = Array(String(repeating: "0123456789abcdef", count: 1_000).utf8)  // 1,000 chunks of 16
        let capped = PrefixHasher.chain(text, chunkBytes: 16, maxChunks: 64)
        #expect(capped == Array(PrefixHasher.chain(text, chunkBytes: 16).prefix(64)))
        let body = Array(#"{"model":"m","prompt":"\#(String(decoding: text, as: UTF8.self))"}"#.utf8)
        let features = try RequestFeatures.read(body, kind: .completion, chunkBytes: 16, maxPrefixChunks: 64)
        #expect(features.prefixHashes == PrefixHasher.chain(text, chunkBytes: 16, maxChunks: 64, seed: PrefixHasher.seed(model: "m")))
        #expect(features.promptTokens == 4_000)  // the whole prompt still counts
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

@Suite struct HandoffBodiesTests {
    private func object(_ bytes: [UInt8]) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    private let client = Array(
        #"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":50,"max_completion_tokens":50,"temperature":0}"#.utf8)

    @Test func vllmsPrefillLegAsksForOneUnstreamedTokenAndARemoteDecode() throws {
        let leg = try object(HandoffBodies.vllmPrefill(client))
        #expect(leg["max_tokens"] as? Int == 1 && leg["max_completion_tokens"] as? Int == 1)
        #expect(leg["stream"] as? Bool == false && leg["stream_options"] == nil)
        let params = try #require(leg["kv_transfer_params"] as? [String: Any])
        #expect(Set(params.keys) == ["do_remote_decode", "do_remote_prefill", "remote_engine_id", "remote_block_ids", "remote_host", "remote_port"])
        #expect(params["do_remote_decode"] as? Bool == true && params["do_remote_prefill"] as? Bool == false)
        #expect(["remote_engine_id", "remote_block_ids", "remote_host", "remote_port"].allSatisfy { params[$0] is NSNull })
        #expect((leg["messages"] as? [[String: Any]])?.first?["content"] as? String == "hi")
        // A request without max_completion_tokens does not get one.
        let plain = try object(HandoffBodies.vllmPrefill(Array(#"{"model":"m","prompt":"x"}"#.utf8)))
        #expect(plain["max_completion_tokens"] == nil && plain["max_tokens"] as? Int == 1)
    }

    @Test func vllmsDecodeLegIsTheClientsRequestWithThePrefillsParameters() throws {
        let answer = Array(#"{"id":"x","kv_transfer_params":{"do_remote_prefill":true,"remote_block_ids":[3,4],"remote_port":8100}}"#.utf8)
        let params = try #require(HandoffBodies.kvTransferParams(fromAnswer: answer))
        let leg = try object(HandoffBodies.vllmDecode(client, kvTransferParams: params))
        #expect(leg["stream"] as? Bool == true && leg["max_tokens"] as? Int == 50)
        #expect((leg["stream_options"] as? [String: Any])?["include_usage"] as? Bool == true)
        let passed = try #require(leg["kv_transfer_params"] as? [String: Any])
        #expect(passed["remote_block_ids"] as? [Int] == [3, 4] && passed["remote_port"] as? Int == 8100)
        #expect(HandoffBodies.kvTransferParams(fromAnswer: Array(#"{"kv_transfer_params":null}"#.utf8)) == nil)
        #expect(HandoffBodies.kvTransferParams(fromAnswer: Array("not json".utf8)) == nil)
    }

    @Test func sglangsLegsCarryTheBootstrapAddressAndAnExactRoom() throws {
        let room: UInt64 = (1 << 63) - 3
        let bytes = try HandoffBodies.sglang(client, host: "10.0.0.7", port: 8998, room: room)
        let leg = try object(bytes)
        #expect(leg["bootstrap_host"] as? String == "10.0.0.7" && leg["bootstrap_port"] as? Int == 8998)
        // The room survives as the exact integer (not rounded through a double).
        #expect(String(decoding: bytes, as: UTF8.self).contains("\"bootstrap_room\":\(room)"))
        #expect(leg["stream"] as? Bool == true && leg["max_tokens"] as? Int == 50)
        #expect(Set((0..<50).map { _ in HandoffBodies.randomRoom() }).count == 50)
        #expect(throws: HandoffBodies.Failure.notAnObject) { try HandoffBodies.sglang(Array("[1]".utf8), host: "h", port: 1, room: 1) }
        #expect(PrefillTarget(id: "p", endpointURL: "http://10.0.0.7:30000", flow: .sglang, bootstrapPort: 8998).host == "10.0.0.7")
    }
}

@Suite struct FallbackPrefillTests {
    @Test func fallbackSkipsPrefillOnlyInstancesWhileAnotherKindIsUp() {
        var router = FallbackRouter()
        let table = [
            InstanceRef(id: "p", endpointURL: "http://p", model: "m", isUp: true, isPrefillOnly: true),
            InstanceRef(id: "d", endpointURL: "http://d", model: "m", isUp: true),
        ]
        #expect((0..<6).map { _ in router.choose(model: "m", in: table, exclude: [], now: 0)!.id } == Array(repeating: "d", count: 6))
        #expect(router.choose(model: "m", in: table, exclude: ["d"], now: 0)?.id == "p")
    }
}

@Suite struct LastAnswerChunksTests {
    @Test func theLastAssistantMessageIsLocatedInChunks() throws {
        let history = String(repeating: "h", count: 600)
        let answer = String(repeating: "a", count: 900)
        let body = #"{"model":"m","messages":[{"role":"user","content":"\#(history)"},{"role":"assistant","content":"\#(answer)"},{"role":"user","content":"next?"}]}"#
        let features = try RequestFeatures.read(Array(body.utf8), kind: .chat, chunkBytes: 256)
        // "<|user|>\n" + 600 + "\n" = 610 bytes; the answer's message spans 610..<(610 + 14 + 900 + 1).
        #expect(features.lastAnswerChunks == (610 / 256)..<((610 + 14 + 900 + 1) / 256))
        let first = try RequestFeatures.read(
            Array(#"{"model":"m","messages":[{"role":"user","content":"\#(history)"}]}"#.utf8), kind: .chat, chunkBytes: 256)
        #expect(first.lastAnswerChunks == nil)
        // The turn before held exactly the chunks up to where the answer starts.
        #expect(Array(features.prefixHashes.prefix(first.prefixHashes.count)) == first.prefixHashes)
        #expect(first.prefixHashes.count == features.lastAnswerChunks!.lowerBound)
        let completion = try RequestFeatures.read(Array(#"{"model":"m","prompt":"x"}"#.utf8), kind: .completion, chunkBytes: 256)
        #expect(completion.lastAnswerChunks == nil)
    }

    @Test func onlyOnePromptAndOneChoiceCanBeHandedOff() throws {
        func splittable(_ body: String, _ kind: RequestFeatures.Kind = .completion) throws -> Bool {
            try RequestFeatures.read(Array(body.utf8), kind: kind, chunkBytes: 256).splittable
        }
        #expect(try splittable(#"{"model":"m","prompt":"x"}"#))
        #expect(try splittable(#"{"model":"m","prompt":["x"]}"#))
        #expect(try !splittable(#"{"model":"m","prompt":["x","y"]}"#))
        #expect(try !splittable(#"{"model":"m","prompt":[[1,2],[3]]}"#))
        #expect(try !splittable(#"{"model":"m","prompt":"x","n":2}"#))
        #expect(try !splittable(#"{"model":"m","prompt":"x","best_of":3}"#))
        #expect(try splittable(#"{"model":"m","messages":[{"role":"user","content":"hi"}],"n":1}"#, .chat))
    }
}
