import Foundation
import Testing
import Wire

@testable import Scheduler

/// The leader's cluster-wide budgets over the wire: two gateways' leases of one tenant's limit
/// together stay within it, `tenants` shows them, and an ask that makes no sense is refused while
/// the node serves on.
@Suite struct BudgetLeaseTests {
    func ask(_ tenant: String, rpm: UInt32, want: Double, need: Double = 1, unspent: Double = 0) -> TenantLeaseAsk {
        TenantLeaseAsk(tenant: tenant, requestsPerMinute: rpm, unspentRequests: unspent, wantRequests: want, needRequests: need)
    }

    func lease(_ connection: WireConnection, holder: UInt64, _ asks: [TenantLeaseAsk]) async throws -> BudgetLeaseReply {
        let reply = try await connection.call(.budgetLeaseRequest(BudgetLeaseRequest(holder: holder, tenants: asks)))
        guard case .budgetLeaseReply(let answer) = reply else { throw WireError(.internal, "answered \(reply.name)") }
        return answer
    }

    @Test func twoGatewaysLeasesOfOneLimitStayWithinItAndTenantsShowsThem() async throws {
        try await SingleNode.with { node in
            let first = try await node.connect(nodeID: "gw-1")
            let second = try await node.connect(nodeID: "gw-2")
            defer {
                first.close()
                second.close()
            }
            let a = try await lease(first, holder: 1, [ask("jobs", rpm: 10, want: 8)])
            let b = try await lease(second, holder: 2, [ask("jobs", rpm: 10, want: 8)])
            #expect(a.leaseMs == 3_000 && b.gateways == 2)
            #expect(a.grants.map(\.tenant) == ["jobs"])
            // The first wanted 8 of 10. The second wants as much: it gets its half of the 2 left
            // (whole requests), then at least the one it needs while one is left, then nothing.
            #expect(a.grants[0].requests == 8)
            #expect(b.grants[0].requests == 1)
            let last = try await lease(second, holder: 2, [ask("jobs", rpm: 10, want: 8)])
            #expect(last.grants[0].requests == 1)
            let starved = try await lease(second, holder: 2, [ask("jobs", rpm: 10, want: 8)])
            #expect(starved.grants[0].requests == 0 && starved.grants[0].retryAfterMs > 0)
            let operatorConnection = try await node.connect(role: .operator, nodeID: "ctl")
            defer { operatorConnection.close() }
            guard case .tenantsReply(let tenants) = try await operatorConnection.call(.tenantsRequest(TenantsRequest())) else {
                Issue.record("no tenants reply")
                return
            }
            #expect(tenants.gateways == 2 && tenants.tenants.count == 1)
            let jobs = try #require(tenants.tenants.first)
            #expect(jobs.tenant == "jobs" && jobs.requestsPerMinute == 10 && jobs.holders == 2)
            #expect(jobs.requestsUsed == 10 && jobs.requestsAvailable < 1)
        }
    }

    @Test func anAskThatMakesNoSenseIsRefusedAndTheNodeServesOn() async throws {
        try await SingleNode.with { node in
            let gateway = try await node.connect(nodeID: "gw-1")
            defer { gateway.close() }
            let nan = await #expect(throws: WireError.self) { try await lease(gateway, holder: 1, [ask("jobs", rpm: 10, want: .nan)]) }
            #expect(nan?.code == .invalidArgument && nan?.message.contains("want requests") == true)
            let negative = await #expect(throws: WireError.self) { try await lease(gateway, holder: 1, [ask("jobs", rpm: 10, want: 1, need: -1)]) }
            #expect(negative?.code == .invalidArgument)
            let anonymous = await #expect(throws: WireError.self) { try await lease(gateway, holder: 0, []) }
            #expect(anonymous?.message.contains("holder 0") == true)
            let tooMany = (0...RequestMessageCheck.maxLeaseAsks).map { ask("t\($0)", rpm: 1, want: 1) }
            await #expect(throws: WireError.self) { try await lease(gateway, holder: 1, tooMany) }
            // An agent may not lease a tenant's budget.
            let agent = try await node.connect(role: .agent, nodeID: "a")
            defer { agent.close() }
            let refused = await #expect(throws: WireError.self) { try await lease(agent, holder: 9, [ask("jobs", rpm: 10, want: 1)]) }
            #expect(refused?.code == .permissionDenied)
            // The same connection is served on, and nothing of the refused asks was kept.
            let after = try await lease(gateway, holder: 1, [ask("jobs", rpm: 10, want: 4)])
            #expect(after.grants[0].requests == 4)
        }
    }
}
