import Routing
import SchedulerCore
import Wire

/// The bytes of Raft log entries and snapshots: the state machine's commands and snapshots as
/// the `SchedulerCommand` and `SchedulerSnapshot` messages of Proto/junction.proto, so any
/// protobuf tool can read a scheduler's log.
public enum SchedulerCommandCoding {
    public enum CodingError: Error, Equatable, Sendable, CustomStringConvertible {
        case undecodable(String)
        case emptyCommand
        case unknownPolicy(String)
        case badPolicyParameter(String)
        case unspecifiedState(String)

        public var description: String {
            switch self {
            case .undecodable(let why): "undecodable scheduler command or snapshot: \(why)"
            case .emptyCommand: "a scheduler command with no command set"
            case .unknownPolicy(let name): "unknown policy '\(name)'"
            case .badPolicyParameter(let why): why
            case .unspecifiedState(let id): "instance \(id) has no state"
            }
        }
    }

    public static func encode(_ command: SchedulerCore.SchedulerCommand) -> [UInt8] {
        let wire: Wire.SchedulerCommand.Command
        switch command {
        case .upsertInstance(let record): wire = .upsertInstance(instance(record))
        case .setInstanceState(let id, let state, let reason, let at):
            wire = .setInstanceState(Wire.InstanceStateChange(instanceID: id, state: self.state(state), reason: reason, atUnixMs: at))
        case .removeInstance(let id): wire = .removeInstance(id)
        case .setPolicy(let configuration): wire = .setPolicy(policy(configuration))
        case .affinity(let records):
            wire = .affinity(Wire.AffinityBatch(records: records.map { Wire.AffinityRecord(instanceID: $0.instanceID, hashes: $0.hashes) }))
        }
        return Wire.SchedulerCommand(command: wire).serializedBytes()
    }

    public static func decodeCommand(_ bytes: [UInt8]) throws(CodingError) -> SchedulerCore.SchedulerCommand {
        let message: Wire.SchedulerCommand
        do { message = try Wire.SchedulerCommand(serializedBytes: bytes) } catch { throw .undecodable("\(error)") }
        switch message.command {
        case nil: throw .emptyCommand
        case .upsertInstance(let wire): return .upsertInstance(try record(wire))
        case .setInstanceState(let change):
            guard let state = state(change.state) else { throw .unspecifiedState(change.instanceID) }
            return .setInstanceState(id: change.instanceID, state: state, reason: change.reason, atUnixMilliseconds: change.atUnixMs)
        case .removeInstance(let id): return .removeInstance(id: id)
        case .setPolicy(let wire): return .setPolicy(try policy(wire))
        case .affinity(let batch):
            return .affinity(batch.records.map { SchedulerCore.AffinityRecord(instanceID: $0.instanceID, hashes: $0.hashes) })
        }
    }

    public static func encode(_ snapshot: SchedulerStateMachine.Snapshot) -> [UInt8] {
        Wire.SchedulerSnapshot(
            instances: snapshot.instances.map(instance), policy: snapshot.policy.map(policy),
            affinity: snapshot.affinity.map { Wire.AffinityRecord(instanceID: $0.instanceID, hashes: $0.hashes) },
            registryVersion: snapshot.registryVersion
        ).serializedBytes()
    }

    public static func decodeSnapshot(_ bytes: [UInt8]) throws(CodingError) -> SchedulerStateMachine.Snapshot {
        let message: Wire.SchedulerSnapshot
        do { message = try Wire.SchedulerSnapshot(serializedBytes: bytes) } catch { throw .undecodable("\(error)") }
        var records: [InstanceRecord] = []
        for wire in message.instances { records.append(try record(wire)) }
        return SchedulerStateMachine.Snapshot(
            instances: records, policy: try message.policy.map(policy),
            affinity: message.affinity.map { SchedulerCore.AffinityRecord(instanceID: $0.instanceID, hashes: $0.hashes) },
            registryVersion: message.registryVersion)
    }

    // MARK: pieces

    public static func instance(_ record: InstanceRecord) -> Wire.Instance {
        Wire.Instance(
            id: record.id, endpointURL: record.endpointURL, model: record.model, engine: engine(record.engine),
            role: role(record.role), state: state(record.state), kvCapacityTokens: UInt64(max(0, record.kvCapacityTokens ?? 0)),
            kvBlockSize: UInt32(clamping: max(0, record.kvBlockSize ?? 0)), agentNode: record.agentNode,
            stateChangedUnixMs: record.stateChangedUnixMilliseconds, stateReason: record.stateReason,
            bootstrapPort: UInt32(clamping: max(0, record.bootstrapPort ?? 0)), aliases: record.aliases, adapters: record.adapters)
    }

    public static func record(_ wire: Wire.Instance) throws(CodingError) -> InstanceRecord {
        guard let state = state(wire.state) else { throw .unspecifiedState(wire.id) }
        return InstanceRecord(
            id: wire.id, endpointURL: wire.endpointURL, model: wire.model, aliases: wire.aliases, adapters: wire.adapters,
            engine: engine(wire.engine), role: role(wire.role), state: state, kvCapacityTokens: wire.kvCapacityTokens == 0 ? nil : Int(clamping: wire.kvCapacityTokens),
            kvBlockSize: wire.kvBlockSize == 0 ? nil : Int(wire.kvBlockSize),
            bootstrapPort: wire.bootstrapPort == 0 ? nil : Int(wire.bootstrapPort), agentNode: wire.agentNode,
            stateChangedUnixMilliseconds: wire.stateChangedUnixMs, stateReason: wire.stateReason)
    }

    public static func policy(_ configuration: PolicyConfiguration) -> Wire.PolicyConfig {
        Wire.PolicyConfig(
            name: configuration.name.rawValue,
            params: configuration.parameters.map { Wire.PolicyParam(key: $0.key, value: $0.value) })
    }

    public static func policy(_ wire: Wire.PolicyConfig) throws(CodingError) -> PolicyConfiguration {
        var configuration = PolicyConfiguration()
        guard let name = PolicyConfiguration.Name(rawValue: wire.name) else { throw .unknownPolicy(wire.name) }
        configuration.name = name
        for parameter in wire.params {
            do { try configuration.set(parameter.key, parameter.value) } catch { throw .badPolicyParameter(error.description) }
        }
        return configuration
    }

    static func state(_ state: RoutingInstance.State) -> Wire.InstanceState {
        switch state {
        case .up: .up
        case .draining: .draining
        case .down: .down
        }
    }

    static func state(_ wire: Wire.InstanceState) -> RoutingInstance.State? {
        switch wire {
        case .unspecified: nil
        case .up: .up
        case .draining: .draining
        case .down: .down
        }
    }

    static func role(_ role: RoutingInstance.Role) -> Wire.InstanceRole {
        switch role {
        case .both: .both
        case .prefill: .prefill
        case .decode: .decode
        }
    }

    static func role(_ wire: Wire.InstanceRole) -> RoutingInstance.Role {
        switch wire {
        case .both: .both
        case .prefill: .prefill
        case .decode: .decode
        }
    }

    static func engine(_ engine: InstanceRecord.Engine) -> Wire.EngineKind {
        switch engine {
        case .unspecified: .unspecified
        case .vllm: .vllm
        case .sglang: .sglang
        case .bladellm: .bladellm
        case .simulator: .simulator
        }
    }

    static func engine(_ wire: Wire.EngineKind) -> InstanceRecord.Engine {
        switch wire {
        case .unspecified: .unspecified
        case .vllm: .vllm
        case .sglang: .sglang
        case .bladellm: .bladellm
        case .simulator: .simulator
        }
    }
}
