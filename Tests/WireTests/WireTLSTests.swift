import ClusterConfig
import Foundation
import ProcessHarness
import Testing

@testable import Wire

/// Mutual TLS on the wire, in process over loopback: a peer gets through only with a certificate
/// of the cluster's CA, still valid, naming the role and node id its Hello claims; a server must
/// be a scheduler. Each refusal leaves the server serving.
@Suite struct WireTLSTests {
    let pki: LocalPKI
    init() throws { pki = try LocalPKI() }

    func configuration(role: Role, nodeID: String, tls: WireTLS?) -> WireConfiguration {
        var configuration = testConfiguration(role: role, nodeID: nodeID)
        configuration.tls = tls
        configuration.handshakeTimeout = .seconds(20)
        return configuration
    }

    var server: WireConfiguration {
        get throws { configuration(role: .scheduler, nodeID: "1", tls: try pki.wireTLS(for: .init(role: .scheduler, nodeID: "1"))) }
    }

    func client(_ identity: CertificateIdentity, claims claimed: CertificateIdentity? = nil, tls: WireTLS? = nil) throws -> WireConfiguration {
        let claimed = claimed ?? identity
        return configuration(role: claimed.role, nodeID: claimed.nodeID, tls: try tls ?? pki.wireTLS(for: identity))
    }

    func expectRefused(_ client: WireConfiguration, by server: WireServer, _ code: ErrorCode? = nil) async throws {
        let error = await #expect(throws: WireError.self) { _ = try await connect(to: server, configuration: client) }
        if let code { #expect(error?.code == code, "\(error?.message ?? "")") }
    }

    /// Status over TLS with a good client: the server still serves.
    func expectServes(_ server: WireServer) async throws {
        let connection = try await connect(to: server, configuration: try client(.init(role: .operator, nodeID: "ctl")))
        defer { connection.close() }
        guard case .statusReply = try await connection.call(.statusRequest(StatusRequest())) else {
            Issue.record("no status over TLS")
            return
        }
    }

    @Test func aPeerWithTheClustersCertificateForWhatItClaimsGetsThrough() async throws {
        try await withServer(configuration: try server) { server in
            try await expectServes(server)
            let gateway = try await connect(to: server, configuration: try client(.init(role: .gateway, nodeID: "gw-1")))
            #expect(try await gateway.handshakeCompleted().nodeID == "1")
            gateway.close()
        }
    }

    @Test func aCertificateOfAnotherCAIsRefused() async throws {
        let other = try LocalPKI(name: "another CA")
        try await withServer(configuration: try server) { server in
            // Its own CA trusted on its side: the server's chain does not verify, nor does its.
            try await expectRefused(try client(.init(role: .operator, nodeID: "ctl"), tls: try other.wireTLS(for: .init(role: .operator, nodeID: "ctl"))), by: server)
            // Our CA trusted, another's certificate presented: the server refuses it.
            try await expectRefused(
                try client(.init(role: .operator, nodeID: "ctl"), tls: try other.wireTLS(for: .init(role: .operator, nodeID: "ctl"), trusting: pki.certificatePEM)),
                by: server)
            try await expectServes(server)
        }
    }

    @Test func anExpiredCertificateIsRefused() async throws {
        try await withServer(configuration: try server) { server in
            let expired = try pki.wireTLS(for: .init(role: .operator, nodeID: "ctl"), notAfter: Date() - 60)
            try await expectRefused(try client(.init(role: .operator, nodeID: "ctl"), tls: expired), by: server)
            try await expectServes(server)
        }
    }

    @Test func aCertificateForAnotherRoleOrIdIsRefused() async throws {
        try await withServer(configuration: try server) { server in
            // An agent's certificate with an operator's credential: the Hello says operator.
            try await expectRefused(try client(.init(role: .agent, nodeID: "e1"), claims: .init(role: .operator, nodeID: "ctl")), by: server, .unauthenticated)
            // The right role, another id.
            try await expectRefused(try client(.init(role: .agent, nodeID: "e1"), claims: .init(role: .agent, nodeID: "e2")), by: server, .unauthenticated)
            try await expectServes(server)
        }
    }

    @Test func aCertificateWithoutItsCredentialIsRefused() async throws {
        try await withServer(configuration: try server) { server in
            // The cluster's certificate for operator "ctl", and a key derived from another root.
            var stolen = testConfiguration(role: .operator, nodeID: "ctl", secret: "another-cluster-secret")
            stolen.tls = try pki.wireTLS(for: .init(role: .operator, nodeID: "ctl"))
            try await expectRefused(stolen, by: server, .unauthenticated)
            try await expectServes(server)
        }
    }

    @Test func aServerWhoseCertificateIsNotAPeerSchedulersIsRefusedByTheClient() async throws {
        // A holder of the root with an agent's certificate listening as scheduler 1.
        let impostor = configuration(role: .scheduler, nodeID: "1", tls: try pki.wireTLS(for: .init(role: .agent, nodeID: "e1")))
        try await withServer(configuration: impostor) { server in
            try await expectRefused(try client(.init(role: .operator, nodeID: "ctl")), by: server, .unauthenticated)
        }
    }

    @Test func plainTCPIsRefusedWhereTLSIsRequiredEitherWay() async throws {
        try await withServer(configuration: try server) { server in
            // A plain client waits for the server's Hello, which a TLS server never sends before
            // a TLS handshake: each side's deadline ends it (the client's here, kept short).
            var plain = testConfiguration(role: .operator, nodeID: "ctl")
            plain.handshakeTimeout = .seconds(1)
            try await expectRefused(plain, by: server)
            try await expectServes(server)
        }
        try await withServer(configuration: testConfiguration(role: .scheduler, nodeID: "1")) { server in
            try await expectRefused(try client(.init(role: .operator, nodeID: "ctl")), by: server)
            try await expectServerStillServes(server)
        }
    }

    @Test func aCertificateNamesOnlyJunctionURIs() throws {
        let issued = try pki.issue(identities: [.init(role: .agent, nodeID: "engine-1"), .init(role: .gateway, nodeID: "gw-1")])
        let tls = try WireTLS(caPEM: Array(pki.certificatePEM.utf8), certificatePEM: Array(issued.certificatePEM.utf8), keyPEM: Array(issued.keyPEM.utf8))
        #expect(tls.ownIdentities == [.init(role: .agent, nodeID: "engine-1"), .init(role: .gateway, nodeID: "gw-1")])
        #expect(CertificateIdentity(uri: "junction:agent:engine-1") == .init(role: .agent, nodeID: "engine-1"))
        for bad in ["junction:agent", "junction:wizard:x", "spiffe://cluster/agent/x", "junction:agent:a:b", "junction:agent:"] {
            #expect(CertificateIdentity(uri: bad) == nil, "\(bad)")
        }
    }

    @Test func aKeyThatIsNotTheCertificatesIsRefusedAtLoad() throws {
        let one = try pki.issue(identities: [.init(role: .agent, nodeID: "a")])
        let two = try pki.issue(identities: [.init(role: .agent, nodeID: "b")])
        #expect(throws: WireTLSError.self) {
            _ = try WireTLS(caPEM: Array(pki.certificatePEM.utf8), certificatePEM: Array(one.certificatePEM.utf8), keyPEM: Array(two.keyPEM.utf8))
        }
        #expect(throws: WireTLSError.self) {
            _ = try WireTLS(caPEM: Array("not pem".utf8), certificatePEM: Array(one.certificatePEM.utf8), keyPEM: Array(one.keyPEM.utf8))
        }
    }

    @Test func aConfigsTLSFilesAreCheckedAtStart() throws {
        let directory = NSTemporaryDirectory() + "wire-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ca = try pki.writeCA(to: directory)
        let agent = try pki.write([.init(role: .agent, nodeID: "e1")], as: "agent", to: directory)
        func configure(_ tls: Any) throws(ConfigError) -> WireConfiguration {
            let cluster = try ClusterConfiguration.parse([
                "cluster": ["secret": "tls-config-secret-0123", "schedulers": [["id": 1, "address": "127.0.0.1:1"]], "tls": tls]
            ])
            return try WireConfiguration.forProcess(cluster, role: .agent, nodeID: "e1")
        }
        func refusal(_ tls: Any) -> ConfigError? {
            do {
                _ = try configure(tls)
                return nil
            } catch {
                return error
            }
        }
        #expect(try configure(["ca": ca, "certificate": agent.certificate, "key": agent.key]).tls?.ownIdentities == [.init(role: .agent, nodeID: "e1")])
        #expect(refusal(["ca": ca, "certificate": agent.certificate])?.key == "cluster.tls.key")
        #expect(refusal(["ca": ca, "certificate": agent.certificate, "key": agent.key, "verify": false])?.key == "cluster.tls.verify")
        #expect(refusal(["ca": directory + "/missing.pem", "certificate": agent.certificate, "key": agent.key])?.key == "cluster.tls.ca")
        let gateway = try pki.write([.init(role: .gateway, nodeID: "gw-1")], as: "gateway", to: directory)
        let wrong = refusal(["ca": ca, "certificate": gateway.certificate, "key": gateway.key])
        #expect(wrong?.key == "cluster.tls.certificate")
        #expect(wrong?.reason.contains("junction:gateway:gw-1") == true && wrong?.reason.contains("junction:agent:e1") == true)
    }

    /// A client moved to another scheduler (a new leader) reaches it at once: closing the old TLS
    /// connection does not wait for the old server's close_notify (NIOSSL's default waits 5 s,
    /// which held gateways off a new leader for that long).
    @Test func aRetargetedTLSClientReachesTheNextServerWithoutWaitingOnTheOld() async throws {
        try await withServer(configuration: try server) { first in
            try await withServer(configuration: try server) { second in
                let client = ReconnectingWireClient(
                    target: .init(host: "127.0.0.1", port: first.port), configuration: try client(.init(role: .gateway, nodeID: "gw-1")))
                let running = Task { await client.run() }
                defer { running.cancel() }
                _ = try await client.connection(within: .seconds(20))
                await client.retarget(.init(host: "127.0.0.1", port: second.port))
                let moved = try await client.connection(within: .seconds(3))
                #expect(try await moved.handshakeCompleted().address.contains(String(second.port)))
            }
        }
    }
}
