import Foundation
import ProcessHarness
import Testing
import Wire

/// The scheduler trio as three real processes with mutual TLS on (`cluster.tls`): peers replicate
/// over TLS, every role gets through with its own certificate, `junction ctl` works with its own,
/// and a certificate of another CA, an expired one, one naming another role, and plain TCP are
/// all refused without moving the leader.
@Suite(.serialized, .timeLimit(.minutes(2))) struct TLSTrioTests {
    @Test func aTrioOnTLSServesItsRolesAndRefusesEveryoneElse() async throws {
        let trio = try LocalSchedulerTrio(binary: builtJunctionBinary(), pki: try LocalPKI())
        do {
            try await run(trio)
        } catch {
            Issue.record("\(error)\n\(await trio.logs())")
        }
        await trio.stopAll()
    }

    private func run(_ trio: LocalSchedulerTrio) async throws {
        guard let pki = trio.pki else { return }
        for id: UInt64 in 1...3 { try await trio.start(id) }
        // Peers found each other over TLS: a leader that the others follow.
        let leader = try await trio.waitForLeader(among: [1, 2, 3])
        let term = try #require(await trio.status(leader)).term

        try await trio.register("e1", at: leader)
        let gateway = try await trio.connect(leader, role: .gateway, nodeID: "gw-1")
        let reply = try await gateway.call(.scheduleRequest(ScheduleRequest(requestID: "r1", model: "m", prefixHashes: [1, 2], promptTokens: 10)))
        guard case .scheduleReply(let answer) = reply, case .assigned(let assignment)? = answer.outcome else {
            Issue.record("no assignment over TLS: \(reply.name)")
            return
        }
        #expect(assignment.instanceID == "e1")
        gateway.close()
        let status = try await trio.ctlSucceeding(["status", "--json"])
        #expect(status.contains("\"e1\""), "junction ctl over TLS with its own certificate")

        let port = trio.ports[leader]!
        func refused(_ configuration: WireConfiguration) async -> WireError? {
            do {
                let connection = try await WireClient.connect(host: "127.0.0.1", port: port, configuration: configuration, connectTimeout: .seconds(2))
                connection.close()
                return nil
            } catch let error as WireError {
                return error
            } catch {
                return WireError(.internal, "\(error)")
            }
        }
        func operatorConfiguration(_ tls: WireTLS?) -> WireConfiguration {
            var configuration = WireConfiguration(role: .operator, nodeID: "ctl", clusterSecret: trio.secret)
            configuration.tls = tls
            return configuration
        }
        let other = try LocalPKI(name: "another CA")
        let otherCA = await refused(operatorConfiguration(try other.wireTLS(for: .init(role: .operator, nodeID: "ctl"), trusting: pki.certificatePEM)))
        #expect(otherCA != nil, "a certificate of another CA")
        let expired = await refused(operatorConfiguration(try pki.wireTLS(for: .init(role: .operator, nodeID: "ctl"), notAfter: Date() - 60)))
        #expect(expired != nil, "an expired certificate")
        let wrongRole = await refused(operatorConfiguration(try pki.wireTLS(for: .init(role: .agent, nodeID: "e1"))))
        #expect(wrongRole?.code == .unauthenticated, "an agent's certificate under an operator's Hello: \(wrongRole?.message ?? "accepted")")
        #expect(wrongRole?.message.contains("junction:agent:e1") == true)
        let plain = await refused(operatorConfiguration(nil))
        #expect(plain != nil, "plain TCP")

        // The trio serves as before, under the same leader and term.
        let after = try #require(await trio.status(leader))
        #expect(after.raftState == "leader" && after.term == term)
        let log = (try? String(contentsOfFile: trio.directory + "/scheduler-\(leader).log", encoding: .utf8)) ?? ""
        #expect(log.contains("wire TLS handshake failed"), "a refused handshake is logged")
    }
}
