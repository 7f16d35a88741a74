import Foundation
import GatewayCore
import Testing

@Suite struct ServedNamesTests {
    @Test func theFallbackRoutesAnAdapterOnlyToInstancesServingIt() {
        let table = [
            InstanceRef(id: "a", endpointURL: "http://a", model: "base", isUp: true),
            InstanceRef(id: "b", endpointURL: "http://b", model: "base", alsoServes: ["sql"], isUp: true),
            InstanceRef(id: "c", endpointURL: "http://c", model: "base", alsoServes: ["sql"], isUp: false),
        ]
        var fallback = FallbackRouter()
        for _ in 0..<4 { #expect(fallback.choose(model: "sql", in: table, exclude: [], now: 0)?.id == "b") }
        #expect(Set((0..<4).compactMap { _ in fallback.choose(model: "base", in: table, exclude: [], now: 0)?.id }) == ["a", "b"])
        #expect(fallback.choose(model: "sql", in: table, exclude: ["b"], now: 0) == nil)
    }

    @Test func theSamePromptHashesDifferentlyForEachModel() throws {
        let body = Array(#"{"model":"sql","prompt":"\#(String(repeating: "x", count: 600))"}"#.utf8)
        let sql = try RequestFeatures.read(body, kind: .completion, chunkBytes: 256, maxPrefixChunks: 64)
        let other = try RequestFeatures.read(
            Array(String(decoding: body, as: UTF8.self).replacingOccurrences(of: "\"sql\"", with: "\"poet\"").utf8),
            kind: .completion, chunkBytes: 256, maxPrefixChunks: 64)
        #expect(sql.prefixHashes.count == 2 && other.prefixHashes.count == 2)
        #expect(Set(sql.prefixHashes).isDisjoint(with: other.prefixHashes))
        #expect(sql.prefixHashes == PrefixHasher.chain(sql.canonicalPrompt, chunkBytes: 256, seed: PrefixHasher.seed(model: "sql")))
    }

    @Test func aRequestsSessionIsItsUserFieldAndOddKeysAreHashed() throws {
        let body = Array(#"{"model":"m","prompt":"hi","user":"conversation-7"}"#.utf8)
        #expect(try RequestFeatures.read(body, kind: .completion, chunkBytes: 256).sessionKey == "conversation-7")
        #expect(try RequestFeatures.read(Array(#"{"model":"m","prompt":"hi"}"#.utf8), kind: .completion, chunkBytes: 256).sessionKey == nil)
        let long = String(repeating: "x", count: 300)
        #expect(RequestFeatures.sessionKey(long)?.hasPrefix("fnv64:") == true)
        #expect(RequestFeatures.sessionKey(long) == RequestFeatures.sessionKey(long))
        #expect(RequestFeatures.sessionKey("a\nb")?.hasPrefix("fnv64:") == true)
        #expect(RequestFeatures.sessionKey("") == nil)
    }
}
