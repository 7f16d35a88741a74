import Crypto
import Testing
@testable import Wire

/// A credential is one role's and one node id's key under the root, and survives being written
/// into a config file.
@Suite struct CredentialTests {
    let root = SymmetricKey(data: Array("credential-test-root-secret".utf8))

    @Test func eachRoleAndIdHasItsOwnKey() {
        let agent = Credential.derive(root: root, role: .agent, nodeID: "e1")
        #expect(agent == Credential.derive(root: root, role: .agent, nodeID: "e1"))
        #expect(agent.key != Credential.derive(root: root, role: .agent, nodeID: "e2").key)
        #expect(agent.key != Credential.derive(root: root, role: .gateway, nodeID: "e1").key)
        #expect(agent.key != Credential.derive(root: SymmetricKey(data: Array("another-root-secret-0".utf8)), role: .agent, nodeID: "e1").key)
    }

    @Test func aTokenRoundTrips() throws {
        let credential = Credential.derive(root: root, role: .operator, nodeID: "alice")
        #expect(credential.token.hasPrefix("junction-credential-v1:operator:alice:"))
        #expect(credential.token.count == "junction-credential-v1:operator:alice:".count + 64)
        #expect(Credential(token: credential.token) == credential)
    }

    @Test(arguments: [
        "", "junction-credential-v1:agent:e1", "junction-credential-v2:agent:e1:" + String(repeating: "0", count: 64),
        "junction-credential-v1:king:e1:" + String(repeating: "0", count: 64),
        "junction-credential-v1:agent::" + String(repeating: "0", count: 64),
        "junction-credential-v1:agent:e1:" + String(repeating: "0", count: 63),
        "junction-credential-v1:agent:e1:" + String(repeating: "G", count: 64),
        "junction-credential-v1:agent:e 1:" + String(repeating: "0", count: 64),
    ])
    func malformedTokensAreRefused(_ token: String) {
        #expect(Credential(token: token) == nil)
    }

    @Test func nodeIDsAreShortPrintableNames() {
        #expect(Credential.isValidNodeID("vllm-0.engines.svc"))
        #expect(!Credential.isValidNodeID(""))
        #expect(!Credential.isValidNodeID(String(repeating: "a", count: 254)))
        #expect(!Credential.isValidNodeID("a:b"))
        #expect(!Credential.isValidNodeID("é"))
    }
}
