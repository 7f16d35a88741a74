import Raft
import Wire

/// Converts between the Raft core's messages and their wire form (`RaftMessage` in
/// Proto/junction.proto). The two have the same shape; names differ where the wire is explicit
/// (a snapshot's `lastIncludedIndex` is the core's `metadata.index`).
public enum RaftWireMapping {
    public enum MappingError: Error, Equatable, Sendable {
        case missingKind
        case missingMembership
        case invalidMembership
        case valueTooLarge(String)
    }

    public static func wire(_ message: Raft.Message) -> Wire.RaftMessage {
        let kind: Wire.RaftMessage.Kind
        switch message.body {
        case .voteRequest(let r):
            kind = .voteRequest(
                Wire.VoteRequest(preVote: r.preVote, lastLogIndex: r.lastLogIndex, lastLogTerm: r.lastLogTerm, leadershipTransfer: r.leadershipTransfer))
        case .voteResponse(let r):
            kind = .voteResponse(Wire.VoteResponse(preVote: r.preVote, granted: r.granted))
        case .append(let r):
            kind = .appendRequest(
                Wire.AppendRequest(
                    prevLogIndex: r.prevLogIndex, prevLogTerm: r.prevLogTerm, entries: r.entries.map(wire),
                    leaderCommit: r.leaderCommit))
        case .appendResponse(let r):
            kind = .appendResponse(
                Wire.AppendResponse(
                    success: r.success, matchIndex: r.matchIndex, rejectIndex: r.rejectIndex, hintIndex: r.hintIndex,
                    hintTerm: r.hintTerm))
        case .heartbeat(let r):
            kind = .heartbeat(Wire.Heartbeat(commit: r.commit, readRound: r.readRound))
        case .heartbeatResponse(let r):
            kind = .heartbeatResponse(Wire.HeartbeatResponse(readRound: r.readRound))
        case .snapshotChunk(let r):
            kind = .snapshotChunk(
                Wire.SnapshotChunk(
                    lastIncludedIndex: r.metadata.index, lastIncludedTerm: r.metadata.term,
                    membership: wire(r.metadata.membership), offset: UInt64(r.offset), data: r.data, done: r.done,
                    totalSize: UInt64(r.totalSize)))
        case .snapshotResponse(let r):
            kind = .snapshotResponse(
                Wire.SnapshotResponse(
                    lastIncludedIndex: r.snapshotIndex, nextOffset: UInt64(r.nextOffset), success: r.accepted, done: r.installed))
        case .timeoutNow:
            kind = .timeoutNow(Wire.TimeoutNow())
        }
        return Wire.RaftMessage(from: message.from, to: message.to, term: message.term, incarnation: message.incarnation, kind: kind)
    }

    public static func core(_ message: Wire.RaftMessage) throws(MappingError) -> Raft.Message {
        let body: Raft.Message.Body
        switch message.kind {
        case nil:
            throw .missingKind
        case .voteRequest(let r):
            body = .voteRequest(
                Raft.VoteRequest(preVote: r.preVote, lastLogIndex: r.lastLogIndex, lastLogTerm: r.lastLogTerm, leadershipTransfer: r.leadershipTransfer))
        case .voteResponse(let r):
            body = .voteResponse(Raft.VoteResponse(preVote: r.preVote, granted: r.granted))
        case .appendRequest(let r):
            var entries: [Raft.Entry] = []
            entries.reserveCapacity(r.entries.count)
            for entry in r.entries { entries.append(try core(entry)) }
            body = .append(
                Raft.AppendRequest(prevLogIndex: r.prevLogIndex, prevLogTerm: r.prevLogTerm, entries: entries, leaderCommit: r.leaderCommit))
        case .appendResponse(let r):
            body = .appendResponse(
                Raft.AppendResponse(
                    success: r.success, matchIndex: r.matchIndex, rejectIndex: r.rejectIndex, hintIndex: r.hintIndex, hintTerm: r.hintTerm))
        case .heartbeat(let r):
            body = .heartbeat(Raft.Heartbeat(commit: r.commit, readRound: r.readRound))
        case .heartbeatResponse(let r):
            body = .heartbeatResponse(Raft.HeartbeatResponse(readRound: r.readRound))
        case .snapshotChunk(let r):
            guard let membership = r.membership else { throw .missingMembership }
            guard r.offset <= UInt64(Int.max), r.totalSize <= UInt64(Int.max) else { throw .valueTooLarge("snapshot offset") }
            body = .snapshotChunk(
                Raft.SnapshotChunk(
                    metadata: SnapshotMetadata(index: r.lastIncludedIndex, term: r.lastIncludedTerm, membership: try core(membership)),
                    offset: Int(r.offset), totalSize: Int(r.totalSize), data: r.data, done: r.done))
        case .snapshotResponse(let r):
            guard r.nextOffset <= UInt64(Int.max) else { throw .valueTooLarge("snapshot offset") }
            body = .snapshotResponse(
                Raft.SnapshotResponse(snapshotIndex: r.lastIncludedIndex, nextOffset: Int(r.nextOffset), accepted: r.success, installed: r.done))
        case .timeoutNow:
            body = .timeoutNow
        }
        return Raft.Message(from: message.from, to: message.to, term: message.term, body: body, incarnation: message.incarnation)
    }

    static func wire(_ entry: Raft.Entry) -> Wire.LogEntry {
        let type: Wire.EntryType
        switch entry.kind {
        case .command: type = .command
        case .noop: type = .noop
        case .membership: type = .membership
        }
        return Wire.LogEntry(index: entry.index, term: entry.term, type: type, data: entry.data)
    }

    static func core(_ entry: Wire.LogEntry) throws(MappingError) -> Raft.Entry {
        let kind: EntryKind
        switch entry.type {
        case .command: kind = .command
        case .noop: kind = .noop
        case .membership: kind = .membership
        }
        return Raft.Entry(index: entry.index, term: entry.term, kind: kind, data: entry.data)
    }

    static func wire(_ membership: Raft.Membership) -> Wire.Membership {
        let identified = Set(membership.incarnations.keys).union(membership.addresses.keys).sorted()
        return Wire.Membership(
            voters: membership.voters.sorted(), learners: membership.learners.sorted(),
            identities: identified.map {
                MemberIdentity(id: $0, incarnation: membership.incarnations[$0] ?? 0, address: membership.addresses[$0] ?? "")
            })
    }

    /// A peer's membership, checked as strictly as one read from the log: the core's encoding
    /// refuses what no leader writes (no voters, a voter that is also a learner, a claim or an
    /// address of a non-member, an address too long), so a bad one is a refused message.
    static func core(_ membership: Wire.Membership) throws(MappingError) -> Raft.Membership {
        var result = Raft.Membership(voters: Set(membership.voters), learners: Set(membership.learners))
        for identity in membership.identities {
            guard result.incarnations[identity.id] == nil, result.addresses[identity.id] == nil else { throw .invalidMembership }
            if identity.incarnation != 0 { result.incarnations[identity.id] = identity.incarnation }
            if !identity.address.isEmpty { result.addresses[identity.id] = identity.address }
        }
        guard membership.voters.count == result.voters.count, membership.learners.count == result.learners.count,
              Raft.Membership(encoded: result.encoded) == result else { throw .invalidMembership }
        return result
    }
}
