import Testing
import Wire

@testable import Scheduler

/// Which role may send what: the table of Docs/security.md, entry by entry.
@Suite struct CallPermissionTests {
    private func allowed(_ role: Role, _ body: Envelope.Body, id: String = "e1") -> Bool {
        CallPermission.refusal(body, from: PeerIdentity(role: role, nodeID: id, address: "test", softwareVersion: "")) == nil
    }

    private let everyRole: [Role] = [.scheduler, .gateway, .agent, .operator, .bench, .unspecified]

    @Test func onlySchedulersSpeakRaft() {
        let raft = Envelope.Body.raftMessage(RaftMessage(from: 2, to: 1, term: 1, kind: .timeoutNow(TimeoutNow())))
        for role in everyRole { #expect(allowed(role, raft, id: "2") == (role == .scheduler), "\(role)") }
        for body in [Envelope.Body.forwardProposal(ForwardProposal()), .readIndexRequest(ReadIndexRequest())] {
            for role in everyRole { #expect(allowed(role, body, id: "2") == (role == .scheduler), "\(role) \(body.name)") }
        }
    }

    @Test func gatewaysScheduleFinishAndSubscribe() {
        for body in [Envelope.Body.scheduleRequest(ScheduleRequest(model: "m")), .finishRequest(FinishRequest()), .subscribeCapacity(SubscribeCapacity())] {
            for role in everyRole { #expect(allowed(role, body) == [.gateway, .bench].contains(role), "\(role) \(body.name)") }
        }
        for role in everyRole {
            #expect(allowed(role, .subscribeInstances(SubscribeInstances())) == [.gateway, .bench, .operator].contains(role), "\(role)")
            #expect(allowed(role, .statusRequest(StatusRequest())) == [.scheduler, .gateway, .bench, .agent, .operator].contains(role), "\(role)")
        }
    }

    @Test func onlyOperatorsSteerTheCluster() {
        let bodies: [Envelope.Body] = [
            .setPolicyRequest(SetPolicyRequest(policy: PolicyConfig(name: "round-robin"))),
            .membershipChangeRequest(MembershipChangeRequest(nodeID: 4)),
            .drainRequest(DrainRequest(instanceID: "e1")),
            .drainRequest(DrainRequest(instanceID: "e1", undrain: true)),
            .deregisterInstance(DeregisterInstance(instanceID: "e2")),
        ]
        for body in bodies {
            for role in everyRole where role != .agent { #expect(allowed(role, body) == (role == .operator), "\(role) \(body.name)") }
        }
    }

    @Test func anAgentActsOnlyForItsOwnInstance() {
        func instance(_ id: String) -> Instance { Instance(id: id, endpointURL: "http://x", model: "m", engine: .vllm) }
        #expect(allowed(.agent, .registerInstance(RegisterInstance(instance: instance("e1")))))
        #expect(!allowed(.agent, .registerInstance(RegisterInstance(instance: instance("e2")))))
        #expect(allowed(.agent, .registerInstance(RegisterInstance())), "invalid, which the handler says, not forbidden")
        #expect(allowed(.agent, .openReportStream(OpenReportStream(instanceID: "e1"))))
        #expect(!allowed(.agent, .openReportStream(OpenReportStream(instanceID: "e2"))))
        #expect(allowed(.agent, .deregisterInstance(DeregisterInstance(instanceID: "e1"))))
        #expect(!allowed(.agent, .deregisterInstance(DeregisterInstance(instanceID: "e2"))))
        // It drains its own instance as it stops, nothing more: not another's, not an undrain, not an operator's drain.
        #expect(allowed(.agent, .drainRequest(DrainRequest(instanceID: "e1", agentStopping: true))))
        #expect(!allowed(.agent, .drainRequest(DrainRequest(instanceID: "e2", agentStopping: true))))
        #expect(!allowed(.agent, .drainRequest(DrainRequest(instanceID: "e1"))))
        #expect(!allowed(.agent, .drainRequest(DrainRequest(instanceID: "e1", undrain: true, agentStopping: true))))
        // And nothing of the gateways' or operators'.
        #expect(!allowed(.agent, .scheduleRequest(ScheduleRequest(model: "m"))))
        // Agents find the leader by asking every scheduler's status (LeaderClient's discovery).
        #expect(allowed(.agent, .statusRequest(StatusRequest())))
        #expect(!allowed(.agent, .setPolicyRequest(SetPolicyRequest())))
        // Registration is the agents' alone.
        for role in everyRole where role != .agent {
            #expect(!allowed(role, .registerInstance(RegisterInstance(instance: instance("e1")))), "\(role)")
            #expect(!allowed(role, .openReportStream(OpenReportStream(instanceID: "e1"))), "\(role)")
        }
    }
}
