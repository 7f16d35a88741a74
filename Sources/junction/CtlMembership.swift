import ArgumentParser
import Foundation
import Wire

/// `junction ctl add-member`, `remove-member`, `replace-member`: single-server changes of the
/// scheduler group through the Raft log (Docs/scheduler.md, "Membership changes").
struct CtlAddMember: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add-member",
        abstract: "Add a scheduler: as a learner first, promoted to voter once it has caught up and the leader has claimed it.")
    @OptionGroup var target: CtlTarget
    @Option(help: "The new scheduler's id.") var id: UInt64
    @Option(help: "Where it listens (host:port); replicated with the change, so the others need no config change.") var address: String
    @Option(help: "Seconds to wait for it to catch up before giving up (it stays a learner).") var wait = 60.0

    func run() async throws {
        try await MembershipSteps(target: target, wait: wait).add(id: id, address: address)
    }
}

struct CtlRemoveMember: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove-member", abstract: "Remove a scheduler (a leader that removes itself steps down).")
    @OptionGroup var target: CtlTarget
    @Option(help: "The scheduler's id.") var id: UInt64

    func run() async throws {
        try await MembershipSteps(target: target, wait: 10).remove(id: id)
    }
}

struct CtlReplaceMember: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replace-member",
        abstract: "Replace a scheduler: add the new one (learner, then voter), then remove the old. With the same id (a wiped disk), remove first, then add it back as its new incarnation.")
    @OptionGroup var target: CtlTarget
    @Option(help: "The scheduler to replace.") var old: UInt64
    @Option(name: .customLong("new"), help: "The replacement's id (may equal --old).") var new: UInt64
    @Option(help: "Where the replacement listens (host:port).") var address: String
    @Option(help: "Seconds to wait for the replacement to catch up.") var wait = 60.0

    func run() async throws {
        let steps = MembershipSteps(target: target, wait: wait)
        if old == new {
            try await steps.remove(id: old)
            try await steps.add(id: new, address: address)
        } else {
            try await steps.add(id: new, address: address)
            try await steps.remove(id: old)
        }
    }
}

/// The calls behind the commands, each retried while the leader says "not yet" (a change still
/// pending, a learner not caught up or not claimed), up to `wait` seconds.
struct MembershipSteps {
    let target: CtlTarget
    let wait: Double

    func add(id: UInt64, address: String) async throws {
        try await change(.addLearner, id: id, address: address, alreadyDone: "is already a member")
        try await change(.promote, id: id, address: "", alreadyDone: "already votes")
    }

    func remove(id: UInt64) async throws {
        try await change(.remove, id: id, address: "", alreadyDone: "is not a member")
    }

    private func change(_ kind: MembershipChangeKind, id: UInt64, address: String, alreadyDone: String) async throws {
        let deadline = Date().addingTimeInterval(wait)
        var lastWhy = ""
        while true {
            do {
                let reply = try await target.call(
                    .membershipChangeRequest(MembershipChangeRequest(kind: kind, nodeID: id, address: address)), leaderOnly: true)
                switch reply {
                case .ack(let ack):
                    print("\(ack.message): committed (log index \(ack.index))")
                    return
                case .notLeader:
                    lastWhy = "no leader known"
                default:
                    throw ValidationError("unexpected answer: \(reply.name)")
                }
            } catch let error as WireError {
                if error.message.contains(alreadyDone) {
                    print("node \(id) \(alreadyDone): nothing to do")
                    return
                }
                let notYet = ["not caught up", "not claimed", "not applied yet", "retry", "no leader"]
                guard error.code == .unavailable || notYet.contains(where: error.message.contains) else {
                    throw ValidationError(error.message)
                }
                if error.message != lastWhy { print("waiting: \(error.message)") }
                lastWhy = error.message
            }
            guard Date() < deadline else {
                throw ValidationError("gave up after \(Int(wait)) s: \(lastWhy)")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }
}
