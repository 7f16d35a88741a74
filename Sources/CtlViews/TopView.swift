import Foundation
import PromText
import Wire

/// One frame of `junction ctl top`: what the trio, the engines and the gateways look like now.
/// Built by the command from a status answer and the gateways' pages; rendered here, purely, so
/// every frame is tested without a terminal.
public struct TopSnapshot: Sendable {
    public struct Gateway: Sendable, Equatable {
        public var url: String
        /// nil when the gateway did not answer.
        public var fallback: Bool?
        public var inFlight: Double
        public var pending: Double
        /// Requests per second since the previous frame (nil on the first).
        public var requestsPerSecond: Double?

        public init(url: String, fallback: Bool?, inFlight: Double = 0, pending: Double = 0, requestsPerSecond: Double? = nil) {
            self.url = url
            self.fallback = fallback
            self.inFlight = inFlight
            self.pending = pending
            self.requestsPerSecond = requestsPerSecond
        }
    }

    /// The leader's status (or whichever member answered); nil when none did.
    public var status: StatusReply?
    /// Why no status, when there is none.
    public var statusError: String?
    public var gateways: [Gateway]
    public var takenAt: Date

    public init(status: StatusReply?, statusError: String? = nil, gateways: [Gateway], takenAt: Date) {
        self.status = status
        self.statusError = statusError
        self.gateways = gateways
        self.takenAt = takenAt
    }
}

public enum TopView {
    /// The frame's lines, each at most `width` characters.
    public static func render(_ snapshot: TopSnapshot, width: Int = 120) -> [String] {
        var lines: [String] = []
        let clock = ISO8601DateFormatter().string(from: snapshot.takenAt)
        if let s = snapshot.status {
            let leader = s.leaderID == 0 ? "NO LEADER" : "leader \(s.leaderID)"
            let reachable = s.members.filter(\.reachable).count
            lines.append("junction top  \(clock)  cluster \(s.clusterName)  \(leader)  term \(s.term)  commit \(s.commitIndex)  policy \(s.policy?.name ?? "?")")
            let members = s.members.map { m in
                "\(m.id)\(m.id == s.leaderID ? "*" : "")\(m.learner ? "(learner)" : "")\(m.reachable ? "" : " UNREACHABLE")"
            }
            lines.append("trio: \(reachable)/\(s.members.count) reachable  members \(members.joined(separator: ", "))  (as node \(s.nodeID) sees it)")
        } else {
            lines.append("junction top  \(clock)  NO SCHEDULER ANSWERS: \(snapshot.statusError ?? "no answer")")
        }
        lines.append("")
        lines.append(row(["INSTANCE", "STATE", "MODEL", "ENGINE", "ROLE", "RUN", "WAIT", "KV%", "IN tok/s", "OUT tok/s", "INFLIGHT", "REPORT"]))
        for entry in snapshot.status?.instances ?? [] {
            guard let instance = entry.instance else { continue }
            let report = entry.lastReport
            lines.append(row([
                instance.id, state(instance.state), instance.model, "\(instance.engine)", "\(instance.role)",
                report.map { String($0.running) } ?? "-", report.map { String($0.waiting) } ?? "-",
                report.map { String(format: "%.0f", $0.kvUsage * 100) } ?? "-",
                report.map { String(format: "%.0f", $0.promptTokensPerS) } ?? "-",
                report.map { String(format: "%.0f", $0.generationTokensPerS) } ?? "-",
                String(entry.inFlight), report == nil ? "-" : "\(entry.reportAgeMs) ms",
            ]))
            if instance.state != .up, !instance.stateReason.isEmpty { lines.append("    \(instance.stateReason)") }
        }
        if !snapshot.gateways.isEmpty {
            lines.append("")
            lines.append(row(["GATEWAY", "MODE", "INFLIGHT", "PENDING", "REQ/S"], widths: [34, 12, 10, 10, 10]))
            for g in snapshot.gateways {
                let mode = g.fallback.map { $0 ? "FALLBACK" : "scheduled" } ?? "DOWN"
                lines.append(row([
                    g.url, mode, g.fallback == nil ? "-" : String(format: "%.0f", g.inFlight),
                    g.fallback == nil ? "-" : String(format: "%.0f", g.pending), g.requestsPerSecond.map { String(format: "%.1f", $0) } ?? "-",
                ], widths: [34, 12, 10, 10, 10]))
            }
        }
        return lines.map { $0.count > width ? String($0.prefix(width)) : $0 }
    }

    static func state(_ s: InstanceState) -> String {
        switch s {
        case .up: "up"
        case .draining: "DRAINING"
        case .down: "DOWN"
        case .unspecified: "?"
        }
    }

    static let widths = [18, 9, 12, 9, 8, 5, 5, 5, 10, 10, 9, 8]

    static func row(_ cells: [String], widths: [Int] = widths) -> String {
        zip(cells, widths).map { cell, width in cell.count >= width ? String(cell.prefix(width - 1)) + " " : cell + String(repeating: " ", count: width - cell.count) }
            .joined().trimmingCharacters(in: .whitespaces)
    }

    /// A gateway's row from its `/metrics` page, and its request counter for the next frame's rate.
    public static func gateway(url: String, page: String?, previous: (total: Double, at: Date)?, now: Date) -> (TopSnapshot.Gateway, total: Double?) {
        guard let page, let exposition = try? PromTextParser.parse(page) else { return (TopSnapshot.Gateway(url: url, fallback: nil), nil) }
        func sum(_ name: String) -> Double { exposition.samples(named: name).reduce(0) { $0 + $1.value } }
        let total = sum("junction_gateway_requests_total")
        var rate: Double?
        if let previous, now > previous.at { rate = max(0, total - previous.total) / now.timeIntervalSince(previous.at) }
        return (
            TopSnapshot.Gateway(
                url: url, fallback: sum("junction_gateway_fallback") >= 1, inFlight: sum("junction_gateway_requests_in_flight"),
                pending: sum("junction_gateway_requests_pending"), requestsPerSecond: rate),
            total
        )
    }
}
