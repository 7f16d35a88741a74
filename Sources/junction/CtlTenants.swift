import ArgumentParser
import Foundation
import Wire

/// `junction ctl tenants`: the leader's cluster-wide budgets: each limited tenant's limits, what
/// is left in its buckets, the concurrency leased to gateways, and what gateways used since the
/// leader was elected.
struct CtlTenants: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenants", abstract: "Tenants' cluster-wide budgets and their use, from the leader.")
    @OptionGroup var target: CtlTarget
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let reply = try await target.call(.tenantsRequest(TenantsRequest()), leaderOnly: true)
        guard case .tenantsReply(let tenants) = reply else {
            if case .notLeader = reply { throw ValidationError("no leader answered (an election is under way?): try again") }
            throw ValidationError("unexpected answer: \(reply.name)")
        }
        print(json ? Self.json(tenants) : Self.text(tenants))
    }

    static func text(_ reply: TenantsReply) -> String {
        var lines = [
            "leader for \(reply.leaderForMs / 1_000) s; \(reply.gateways) gateway\(reply.gateways == 1 ? "" : "s") holding leases of \(reply.leaseMs) ms"
        ]
        if reply.tenants.isEmpty {
            lines.append("no gateway has asked for a tenant's budget since this leader was elected (no limited tenant sent a request)")
            return lines.joined(separator: "\n")
        }
        let header = ["TENANT", "CONCURRENT", "REQUESTS/MIN", "TOKENS/MIN", "GATEWAYS", "REQUESTS USED", "TOKENS USED"]
        var rows = [header]
        for tenant in reply.tenants {
            rows.append([
                tenant.tenant,
                tenant.maxConcurrent == 0 ? "-" : "\(tenant.inFlight) running, \(tenant.concurrentLeased) leased of \(tenant.maxConcurrent)",
                tenant.requestsPerMinute == 0 ? "-" : "\(whole(tenant.requestsAvailable)) left of \(tenant.requestsPerMinute)",
                tenant.tokensPerMinute == 0 ? "-" : "\(whole(tenant.tokensAvailable)) left of \(tenant.tokensPerMinute)",
                "\(tenant.holders)",
                tenant.requestsPerMinute == 0 ? "-" : whole(tenant.requestsUsed),
                tenant.tokensPerMinute == 0 ? "-" : whole(tenant.tokensUsed),
            ])
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            lines.append(row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  "))
        }
        lines.append("USED: leased to gateways and not given back since this leader was elected (spent, or held unspent now).")
        return lines.joined(separator: "\n")
    }

    private static func whole(_ value: Double) -> String { String(Int(value.rounded(.down))) }

    static func json(_ reply: TenantsReply) -> String {
        let object: [String: Any] = [
            "leader_for_ms": reply.leaderForMs, "gateways": reply.gateways, "lease_ms": reply.leaseMs,
            "tenants": reply.tenants.map { tenant -> [String: Any] in
                [
                    "tenant": tenant.tenant, "max_concurrent": tenant.maxConcurrent, "requests_per_minute": tenant.requestsPerMinute,
                    "tokens_per_minute": tenant.tokensPerMinute, "requests_available": tenant.requestsAvailable,
                    "tokens_available": tenant.tokensAvailable, "concurrent_leased": tenant.concurrentLeased, "in_flight": tenant.inFlight,
                    "gateways": tenant.holders, "requests_used": tenant.requestsUsed, "tokens_used": tenant.tokensUsed,
                ]
            },
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
