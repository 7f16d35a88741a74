import ClusterConfig
import Testing

@testable import Gateway

/// API keys name clients; a key is found by its digest, compared in full against every entry.
@Suite struct ClientKeysTests {
    func keys(_ list: [Any]) throws(ConfigError) -> ClientKeys { try GatewayConfiguration.parseClientKeys(list) }

    func refusal(_ list: Any) -> ConfigError? {
        do {
            _ = try GatewayConfiguration.parseClientKeys(list)
            return nil
        } catch {
            return error
        }
    }

    @Test func aKeyNamesItsClientWhicheverFormTheConfigHoldsItIn() throws {
        // sha256("key-of-b") as `sha256sum` prints it.
        let digestOfB = ClientKeys.digest(ofKey: "key-of-b").map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        let keys = try keys([
            ["client": "team-a", "key": "key-of-a"],
            ["client": "team-b", "key_sha256": digestOfB.uppercased()],
            ["client": "team-a", "key": "second-key-of-a"],
            "bare-key",
        ])
        #expect(keys.identify(authorization: "Bearer key-of-a") == .client("team-a"))
        #expect(keys.identify(authorization: "Bearer second-key-of-a") == .client("team-a"))
        #expect(keys.identify(authorization: "Bearer key-of-b") == .client("team-b"))
        #expect(keys.identify(authorization: "key-of-b") == .client("team-b"), "the seed's bare form")
        #expect(keys.identify(authorization: "Bearer  key-of-b ") == .client("team-b"))
        #expect(keys.identify(authorization: "Bearer bare-key") == .client("key-4"))
    }

    @Test func anythingElseIsRefused() throws {
        let keys = try keys([["client": "team-a", "key": "key-of-a"]])
        for presented in [nil, "", "Bearer ", "Bearer key-of-", "Bearer key-of-aa", "Bearer KEY-OF-A", "Basic key-of-a", String(repeating: "k", count: 10_000)] {
            #expect(keys.identify(authorization: presented) == .refused, "\(presented ?? "nil")")
        }
    }

    @Test func noKeysMeansOpen() {
        #expect(ClientKeys().identify(authorization: nil) == .open)
        #expect(ClientKeys().identify(authorization: "Bearer anything") == .open)
    }

    @Test func aWrongEntryIsNamed() {
        #expect(refusal("key")?.key == "llm_gateway.api_keys")
        #expect(refusal([""])?.key == "llm_gateway.api_keys[0]")
        #expect(refusal([["client": "a b", "key": "k"]])?.key == "llm_gateway.api_keys[0].client")
        #expect(refusal([["key": "k"]])?.key == "llm_gateway.api_keys[0].client")
        #expect(refusal([["client": "a", "key": "k", "key_sha256": String(repeating: "0", count: 64)]])?.key == "llm_gateway.api_keys[0]")
        #expect(refusal([["client": "a"]])?.key == "llm_gateway.api_keys[0]")
        #expect(refusal([["client": "a", "key_sha256": "abc"]])?.key == "llm_gateway.api_keys[0].key_sha256")
        #expect(refusal([["client": "a", "secret": "k"]])?.key == "llm_gateway.api_keys[0].secret")
        #expect(refusal([["client": "a", "key": "k"], ["client": "b", "key": "k"]])?.reason.contains("twice") == true)
        #expect(refusal(Array(repeating: "k", count: ClientKeys.maxEntries + 1))?.key == "llm_gateway.api_keys")
    }
}
