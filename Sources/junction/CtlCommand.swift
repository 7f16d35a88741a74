import ArgumentParser
import ClusterConfig
import Foundation
import Wire

struct CtlCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctl",
        abstract: "Operator commands to the scheduler trio over the wire.",
        subcommands: [
            CtlStatus.self, CtlTop.self, CtlTenants.self, CtlSetPolicy.self, CtlDrain.self, CtlAddMember.self, CtlRemoveMember.self, CtlReplaceMember.self,
            CtlCredential.self,
        ]
    )
}

struct CtlTarget: ParsableArguments {
    @Option(help: "The cluster config file (for the secret and the schedulers' addresses).") var config: String
    @Option(help: "Ask this scheduler (host:port) instead of trying each from the config.") var scheduler: String?
    @Option(help: "Seconds to wait for an answer.") var timeout = 3.0

    /// Sends `request` to the given scheduler, or to each configured one until one answers;
    /// follows a NotLeader answer to the leader when `leaderOnly`.
    func call(_ request: Envelope.Body, leaderOnly: Bool) async throws -> Envelope.Body {
        let cluster: ClusterConfiguration
        do { cluster = try ClusterConfiguration.parse(try ConfigFile.load(path: config)) } catch { throw ValidationError(error.description) }
        var targets = cluster.members.map { "\($0.host):\($0.port)" }
        if let scheduler { targets = [scheduler] }
        var wire: WireConfiguration
        do { wire = try WireConfiguration.forProcess(cluster, role: .operator, nodeID: "ctl") } catch { throw ValidationError(error.description) }
        // --timeout bounds each scheduler's whole answer: a stopped (SIGSTOP) process accepts the
        // TCP connection in the kernel and then never completes the handshake.
        let perScheduler = Duration.milliseconds(Int(timeout * 1000))
        wire.handshakeTimeout = perScheduler
        var lastError: (any Error)?
        var tried = Set<String>()
        while let target = targets.first {
            targets.removeFirst()
            guard tried.insert(target).inserted, let address = ReconnectingWireClient.Target(address: target) else { continue }
            do {
                let connection = try await WireClient.connect(
                    host: address.host, port: address.port, configuration: wire, connectTimeout: perScheduler)
                defer { connection.close() }
                let reply = try await connection.call(request, timeout: .milliseconds(Int(timeout * 1000)))
                if leaderOnly, case .notLeader(let hint) = reply, !hint.leaderAddress.isEmpty, scheduler == nil || targets.isEmpty {
                    targets.insert(hint.leaderAddress, at: 0)
                    continue
                }
                return reply
            } catch {
                lastError = error
            }
        }
        throw lastError ?? ValidationError("no scheduler answered")
    }
}

struct CtlStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Leader, term, indexes, members and instances.")
    @OptionGroup var target: CtlTarget
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let status = try await target.leaderStatus()
        print(json ? StatusFormatting.json(status) : StatusFormatting.text(status))
    }
}

extension CtlTarget {
    /// The status, from the leader when one is known. Only the leader knows how far each
    /// member's log has got and each instance's live load: unless a node was named, the leader's
    /// view is fetched when the node that answered names one.
    func leaderStatus() async throws -> StatusReply {
        let reply = try await call(.statusRequest(StatusRequest()), leaderOnly: false)
        guard case .statusReply(var status) = reply else { throw ValidationError("unexpected answer: \(reply.name)") }
        if scheduler == nil, status.raftState != "leader", status.leaderID != 0,
            let address = status.members.first(where: { $0.id == status.leaderID })?.address
        {
            var leader = self
            leader.scheduler = address
            if case .statusReply(let leaderStatus)? = try? await leader.call(.statusRequest(StatusRequest()), leaderOnly: false) {
                status = leaderStatus
            }
        }
        return status
    }
}

struct CtlSetPolicy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "set-policy", abstract: "Change the policy (through the Raft log).")
    @OptionGroup var target: CtlTarget
    @Argument(help: "expected-ttft, prefix-cache, llm-metrics, least-request, round-robin or pd-split") var policy: String
    @Option(name: .customLong("param"), help: "key=value, repeatable (Docs/scheduler.md lists the keys).") var params: [String] = []

    func run() async throws {
        var parameters: [PolicyParam] = []
        for param in params {
            let parts = param.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let value = Double(parts[1]) else { throw ValidationError("--param \(param): expected key=number") }
            parameters.append(PolicyParam(key: String(parts[0]), value: value))
        }
        let reply = try await target.call(.setPolicyRequest(SetPolicyRequest(policy: PolicyConfig(name: policy, params: parameters))), leaderOnly: true)
        guard case .ack(let ack) = reply else { throw ValidationError("unexpected answer: \(reply.name)") }
        print("\(ack.message) (log index \(ack.index))")
    }
}

struct CtlDrain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "drain", abstract: "Stop sending new requests to an instance.")
    @OptionGroup var target: CtlTarget
    @Argument(help: "The instance id.") var instance: String
    @Flag(help: "Return the instance to service instead.") var undrain = false

    func run() async throws {
        let reply = try await target.call(.drainRequest(DrainRequest(instanceID: instance, undrain: undrain)), leaderOnly: true)
        guard case .ack(let ack) = reply else { throw ValidationError("unexpected answer: \(reply.name)") }
        print("\(instance): \(ack.message) (log index \(ack.index))")
    }
}
