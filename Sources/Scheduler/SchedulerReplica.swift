import NIOCore
import NIOPosix
import Raft
import SchedulerCore

/// One member of the scheduler trio: the pure Raft node, its durable storage and the replicated
/// state machine, driven by ticks, incoming messages and proposals. Carries out every `Ready` in
/// the order the core requires (persist, send, apply, advance) before taking the next input.
///
/// Storage writes run on a thread of their own (`StorageWriter`): while a Ready is on the disk,
/// reads of the state (every `schedule` decision) go on being answered, and the Raft inputs that
/// arrive (ticks, messages, proposals, reads) wait in order in `backlog`. When the write is
/// durable the Ready is carried out (its messages sent only then) and the backlog is stepped in
/// one go, so the next write carries everything that arrived meanwhile in one fsync: group
/// commit. The core is never stepped between `ready()` and `advance(_:)`, as it requires.
///
/// A storage fault stops the replica for good (fail-stop): a node that cannot persist must not
/// answer as a leader, acknowledge entries or vote, since what it promised would be lost. It
/// reports the fault once to `onStorageFailure` (the process logs it and exits, and a
/// supervisor restarts it from what is on disk); until then it leads nothing and its tick throws.
///
/// The actor runs on one NIO event loop (`loop`), the one its node's wire server serves every
/// connection on: a `schedule` call is then answered inside the read of its frame, with no task
/// and no thread switch (see `SchedulerService.answerOnLoop`).
public actor SchedulerReplica {
    public struct Status: Sendable, Equatable {
        public var id: NodeID
        public var role: Role
        public var term: Term
        public var leader: NodeID?
        public var commitIndex: LogIndex
        public var appliedIndex: LogIndex
        public var lastIndex: LogIndex
        public var progress: [NodeID: LogIndex]
        /// The applied membership: voters, learners, claimed incarnations, replicated addresses.
        public var membership: Membership
        /// Leader only: the incarnation each member's replies come from.
        public var heardIncarnations: [NodeID: UInt64]
        /// Whether this node holds no Raft state at all (no term, no log, no snapshot).
        public var holdsNothing: Bool
    }

    private var node: RaftNode
    private let writer: StorageWriter
    /// True while a Ready is being made durable; inputs then wait in `backlog`.
    private var persisting = false
    private var backlog: [Input] = []
    /// Inputs that may wait for one write. Beyond it Raft messages and ticks are dropped (Raft
    /// retransmits and re-times) and proposals and reads are refused as `storageBacklog`.
    static let maxBacklog = 16_384
    private let transport: any RaftTransport
    public private(set) var state: SchedulerStateMachine
    /// Compact the log once this many entries, or this many bytes of entries, are applied past
    /// the last snapshot (affinity batches are large: bytes usually decide).
    private let compactEvery: UInt64
    private let compactEveryBytes: Int
    private var bytesSinceSnapshot = 0
    private var proposals: [LogIndex: (term: Term, continuation: CheckedContinuation<ApplyOutcome, any Error>)] = [:]
    private var reads: [UInt64: CheckedContinuation<Void, any Error>] = [:]
    private var nextReadContext: UInt64 = 1
    private var stopped = false
    /// The storage fault that stopped this replica, naming the file and the system's error.
    public private(set) var storageFailure: String?
    private nonisolated let onStorageFailure: @Sendable (String) -> Void
    /// Signals that the state machine changed (entries applied or a snapshot installed). It keeps
    /// only the newest signal: a reader looks at `state` afterwards, so missed signals lose nothing.
    public nonisolated let changes: AsyncStream<Void>
    private let changed: AsyncStream<Void>.Continuation
    /// The event loop this actor (and its node) runs on.
    public nonisolated let loop: any EventLoop
    private nonisolated let executor: any SerialExecutor
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    public init(
        config: RaftConfig, storage: sending any RaftStorage, transport: any RaftTransport, compactEvery: UInt64 = 10_000,
        compactEveryBytes: Int = 64 << 20, loop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next(),
        onStorageFailure: @escaping @Sendable (String) -> Void = { _ in }
    ) throws {
        self.loop = loop
        self.onStorageFailure = onStorageFailure
        executor = loop.executor
        let persisted = try storage.load()
        node = try RaftNode(config: config, persisted: persisted)
        writer = StorageWriter(storage: storage)
        self.transport = transport
        self.compactEvery = compactEvery
        self.compactEveryBytes = compactEveryBytes
        (changes, changed) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        if let snapshot = persisted.snapshot, !snapshot.data.isEmpty {
            snapshotBytes = snapshot.data.count
            state = SchedulerStateMachine(snapshot: try SchedulerCommandCoding.decodeSnapshot(snapshot.data))
        } else {
            state = SchedulerStateMachine()
        }
    }

    public var status: Status {
        var progress: [NodeID: LogIndex] = [:]
        var heard: [NodeID: UInt64] = [:]
        if node.role == .leader {
            for member in node.membership.members where member != node.id {
                progress[member] = node.replicationProgress(of: member)?.match ?? 0
                heard[member] = node.heardIncarnation(of: member)
            }
        }
        return Status(
            id: node.id, role: stopped ? .follower : node.role, term: node.term, leader: node.leader == 0 ? nil : node.leader,
            commitIndex: node.commitIndex, appliedIndex: node.appliedIndex, lastIndex: node.lastIndex, progress: progress,
            membership: node.membership, heardIncarnations: heard,
            holdsNothing: node.term == 0 && node.lastIndex == 0 && node.snapshotMetadata == nil)
    }

    /// What this replica has done since it started, for the metrics page.
    public struct Activity: Sendable, Equatable {
        public var leadersSeen: UInt64
        public var electionsStarted: UInt64
        public var preVotesStarted: UInt64
        public var snapshotsTaken: UInt64
        public var snapshotsInstalled: UInt64
        /// The snapshot this node holds: its last index and its size (0 when none yet).
        public var snapshotIndex: LogIndex
        public var snapshotBytes: Int
        public var undecodableMembershipEntries: Int
        /// Raft inputs waiting for the write under way.
        public var backlog: Int
        public var stopped: Bool
    }

    private var snapshotsTaken: UInt64 = 0
    private var snapshotsInstalled: UInt64 = 0
    private var snapshotBytes = 0

    public var activity: Activity {
        Activity(
            leadersSeen: node.leadersSeen, electionsStarted: node.electionsStarted, preVotesStarted: node.preVotesStarted,
            snapshotsTaken: snapshotsTaken, snapshotsInstalled: snapshotsInstalled, snapshotIndex: node.snapshotMetadata?.index ?? 0,
            snapshotBytes: snapshotBytes, undecodableMembershipEntries: node.undecodableMembershipEntries, backlog: backlog.count,
            stopped: stopped)
    }

    /// The applied membership, without building a whole `status` (read on every apply).
    public var membership: Membership { node.membership }

    /// See `RaftNode.allowVotingBeforeClaim`.
    public func allowVotingBeforeClaim() { node.allowVotingBeforeClaim() }

    public var isLeader: Bool { !stopped && node.role == .leader }

    /// This node's part in the group, read in one hop by every call that only a leader answers.
    public struct Leadership: Sendable, Equatable {
        public var isLeader: Bool
        public var term: Term
        /// A leader whose state is current: it has applied an entry of its own term, so
        /// everything committed under earlier leaders is in `state`. Until then a new leader
        /// could decide with a registry that misses the last changes.
        public var isCurrent: Bool

        /// The rule, apart from the replica. Entries of this term committed but not yet applied
        /// do not make the state stale in that sense: only this leader appended them, and until
        /// their write is durable (the storage thread) they are exactly as if not yet committed.
        /// Requiring `applied == commit` as well sent every `schedule` that arrived during a
        /// write onto the slow path (a task polling every 5 ms): at 64 calls in flight it cost
        /// 40 % of the throughput and multiplied the p99 by five.
        public static func isCurrent(isLeader: Bool, term: Term, appliedTerm: Term?) -> Bool {
            isLeader && appliedTerm == term
        }
    }

    public var leadership: Leadership {
        let isLeader = !stopped && node.role == .leader
        return Leadership(
            isLeader: isLeader, term: node.term,
            isCurrent: Leadership.isCurrent(isLeader: isLeader, term: node.term, appliedTerm: node.term(at: node.appliedIndex)))
    }

    /// What a decision needs, in one hop.
    public var leadershipAndState: (Leadership, SchedulerStateMachine) { (leadership, state) }

    /// One unit of logical time (the shell calls it every tick interval).
    public func tick() throws {
        if let storageFailure { throw ReplicaError.storage(storageFailure) }
        guard !stopped else { return }
        take(.tick)
    }

    /// The connection to a peer has just come up.
    public func peerReconnected(_ peer: NodeID) throws {
        guard !stopped else { return }
        take(.peerReconnected(peer))
    }

    public func receive(_ message: Raft.Message) throws {
        guard !stopped, message.to == node.id else { return }
        take(.message(message))
    }

    /// Proposals waiting for the write under way (for tests and status).
    public var waitingProposals: Int {
        backlog.count { if case .propose = $0 { true } else { false } }
    }

    /// The largest entry this replica proposes. An AppendEntries carries up to 1 MiB of entries
    /// but always at least one, so an entry must fit the wire's 4 MiB frame with room to spare:
    /// one that did not would be refused by every follower, and replication would stop for good.
    public static let maxEntryBytes = 1 << 20

    /// Replicates a command and returns what applying it did, once it is committed and applied here.
    public func propose(_ command: SchedulerCommand) async throws -> ApplyOutcome {
        guard !stopped else { throw ReplicaError.stopped }
        let data = SchedulerCommandCoding.encode(command)
        guard data.count <= Self.maxEntryBytes else { throw ReplicaError.entryTooLarge(bytes: data.count, limit: Self.maxEntryBytes) }
        // Refused at once when this replica does not lead, rather than after the write under way.
        guard node.role == .leader else { throw ReplicaError.notLeader(leader: node.leader == 0 ? nil : node.leader) }
        return try await withCheckedThrowingContinuation { continuation in
            take(.propose(data, continuation))
        }
    }

    /// Proposes a change of the Raft membership; returns once it is committed and applied here.
    public func proposeMembershipChange(_ change: MembershipChange) async throws {
        guard !stopped else { throw ReplicaError.stopped }
        guard node.role == .leader else { throw ReplicaError.notLeader(leader: node.leader == 0 ? nil : node.leader) }
        _ = try await withCheckedThrowingContinuation { continuation in
            take(.changeMembership(change, continuation))
        }
    }

    /// Waits until this replica's state reflects every write committed before the call (a
    /// read index confirmed by a quorum): the state can then be read linearizably.
    public func linearizableBarrier() async throws {
        guard !stopped else { throw ReplicaError.stopped }
        guard node.role == .leader else { throw ReplicaError.notLeader(leader: node.leader == 0 ? nil : node.leader) }
        let context = nextReadContext
        nextReadContext += 1
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            take(.read(context, continuation))
        }
    }

    /// Asks the follower with the most of the log to take over, if this replica leads: the
    /// first step of a graceful stop, so a rolling restart costs one short hand-over instead of
    /// an election timeout of fallback. Returns the follower asked, nil when not leading.
    public func handOverLeadership() throws -> NodeID? {
        guard !stopped, node.role == .leader else { return nil }
        let followers = node.membership.voters.filter { $0 != node.id }.sorted()
        guard let target = followers.max(by: { (node.replicationProgress(of: $0)?.match ?? 0) < (node.replicationProgress(of: $1)?.match ?? 0) })
        else { return nil }
        take(.handOver(target))
        return target
    }

    /// Stops the replica and waits for the write under way, if any, to end (so its storage may
    /// be handed to a successor).
    public func stop() async {
        stopped = true
        changed.finish()
        failAll(ReplicaError.stopped)
        await writer.shutDown()
    }

    // MARK: inputs

    private enum Input {
        case tick
        case message(Raft.Message)
        case peerReconnected(NodeID)
        case propose([UInt8], CheckedContinuation<ApplyOutcome, any Error>)
        case changeMembership(MembershipChange, CheckedContinuation<ApplyOutcome, any Error>)
        case read(UInt64, CheckedContinuation<Void, any Error>)
        case handOver(NodeID)
    }

    /// Steps an input now, or queues it behind the write under way.
    private func take(_ input: Input) {
        guard persisting else {
            step(input)
            drain()
            return
        }
        guard backlog.count < Self.maxBacklog else { return shed(input) }
        backlog.append(input)
    }

    private func step(_ input: Input) {
        switch input {
        case .tick:
            node.tick()
        case .message(let message):
            node.step(message)
        case .peerReconnected(let peer):
            node.peerReconnected(peer)
        case .propose(let data, let continuation):
            do {
                let position = try node.propose(data)
                proposals[position.index] = (position.term, continuation)
            } catch .notLeader(let leader) {
                continuation.resume(throwing: ReplicaError.notLeader(leader: leader))
            } catch {
                continuation.resume(throwing: ReplicaError.leadershipTransferInProgress)
            }
        case .changeMembership(let change, let continuation):
            do {
                let position = try node.proposeMembershipChange(change)
                proposals[position.index] = (position.term, continuation)
            } catch .notLeader(let leader) {
                continuation.resume(throwing: ReplicaError.notLeader(leader: leader))
            } catch {
                continuation.resume(throwing: ReplicaError.membershipChangeRefused(error.description))
            }
        case .read(let context, let continuation):
            do {
                try node.readIndex(context: context)
                reads[context] = continuation
            } catch {
                continuation.resume(throwing: ReplicaError.notLeader(leader: node.leader == 0 ? nil : node.leader))
            }
        case .handOver(let target):
            try? node.transferLeadership(to: target)
        }
    }

    private func shed(_ input: Input) {
        switch input {
        case .tick, .message, .peerReconnected, .handOver: break
        case .propose(_, let continuation), .changeMembership(_, let continuation):
            continuation.resume(throwing: ReplicaError.storageBacklog)
        case .read(_, let continuation): continuation.resume(throwing: ReplicaError.storageBacklog)
        }
    }

    // MARK: carrying out Ready

    /// Carries out Readies until one needs the disk (then `persisted` goes on when it is durable)
    /// or there is nothing left.
    private func drain() {
        guard !persisting, !stopped else { return }
        while node.hasReady {
            let ready = node.ready()
            if ready.needsPersisting {
                persisting = true
                writer.persist(ready, on: loop).whenComplete { [self] result in
                    assumeIsolated { $0.persisted(ready, result) }
                }
                return
            }
            carryOut(ready)
            if stopped { return }
        }
        failStaleProposals()
    }

    /// The write of `ready` ended: on success its messages go out, it is applied, and the inputs
    /// that waited are stepped together before the next Ready.
    private func persisted(_ ready: Ready, _ result: Result<Void, any Error>) {
        persisting = false
        guard !stopped else { return }
        if case .failure(let error) = result {
            // Nothing of this Ready may go out: its messages promise what was not written.
            _ = storageFailed(error)
            return
        }
        carryOut(ready)
        let waiting = backlog
        backlog = []
        for input in waiting where !stopped { step(input) }
        drain()
    }

    /// Steps 2 to 5 of a Ready whose durable part is on disk: send, restore or apply, answer
    /// reads, advance, compact if due.
    private func carryOut(_ ready: Ready) {
        for message in ready.messages { transport.send(message) }
        if let snapshot = ready.snapshot {
            snapshotsInstalled += 1
            snapshotBytes = snapshot.data.count
            do {
                state = SchedulerStateMachine(snapshot: try SchedulerCommandCoding.decodeSnapshot(snapshot.data))
            } catch {
                // A snapshot this version cannot read: stop rather than go on with a wrong state.
                _ = storageFailed(error)
                return
            }
            changed.yield()
        }
        for entry in ready.committedEntries { apply(entry) }
        if !ready.committedEntries.isEmpty { changed.yield() }
        for read in ready.readStates { reads.removeValue(forKey: read.context)?.resume() }
        for context in ready.abandonedReads {
            reads.removeValue(forKey: context)?.resume(throwing: ReplicaError.leadershipLost)
        }
        node.advance(ready)
        compactIfDue()
    }

    /// Proposals of an earlier term that were not applied may never be: tell their callers.
    private func failStaleProposals() {
        guard node.role != .leader else { return }
        for (index, waiter) in proposals where waiter.term < node.term || index > node.lastIndex {
            proposals[index] = nil
            waiter.continuation.resume(throwing: ReplicaError.leadershipLost)
        }
    }

    private func apply(_ entry: Entry) {
        bytesSinceSnapshot += entry.data.count
        var outcome = ApplyOutcome.applied
        if entry.kind == .command {
            do {
                outcome = state.apply(try SchedulerCommandCoding.decodeCommand(entry.data))
            } catch {
                outcome = .rejected(error.description)
            }
        }
        if let waiter = proposals.removeValue(forKey: entry.index) {
            if waiter.term == entry.term {
                waiter.continuation.resume(returning: outcome)
            } else {
                waiter.continuation.resume(throwing: ReplicaError.leadershipLost)
            }
        }
    }

    private func compactIfDue() {
        let since = node.snapshotMetadata?.index ?? 0
        guard node.appliedIndex >= since + compactEvery || bytesSinceSnapshot >= compactEveryBytes else { return }
        bytesSinceSnapshot = 0
        let snapshot: Snapshot
        do {
            snapshot = try node.compact(through: node.appliedIndex, data: SchedulerCommandCoding.encode(state.snapshot))
        } catch {
            return  // nothing applied past the last snapshot: nothing to compact
        }
        snapshotsTaken += 1
        snapshotBytes = snapshot.data.count
        // Queued behind the writes before it; the entries it covers are on disk until it is.
        writer.saveCompactionSnapshot(snapshot, on: loop).whenFailure { [self] error in
            assumeIsolated { _ = $0.storageFailed(error) }
        }
    }

    /// Stops the replica for good and reports the fault, once.
    private func storageFailed(_ error: any Error) -> ReplicaError {
        let why = "\(error)"
        if storageFailure == nil {
            storageFailure = why
            stopped = true
            changed.finish()
            failAll(ReplicaError.storage(why))
            onStorageFailure(why)
        }
        return .storage(storageFailure ?? why)
    }

    private func failAll(_ error: any Error) {
        let waiting = backlog
        backlog = []
        for input in waiting {
            switch input {
            case .propose(_, let continuation), .changeMembership(_, let continuation): continuation.resume(throwing: error)
            case .read(_, let continuation): continuation.resume(throwing: error)
            case .tick, .message, .peerReconnected, .handOver: break
            }
        }
        for (_, waiter) in proposals { waiter.continuation.resume(throwing: error) }
        proposals = [:]
        for (_, continuation) in reads { continuation.resume(throwing: error) }
        reads = [:]
    }
}
