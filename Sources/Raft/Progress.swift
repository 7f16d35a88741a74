/// What a leader knows about one follower's log, and how it is sending to it.
struct Progress: Sendable {
    enum State: Sendable, Equatable {
        /// One append at a time until a response tells where the logs meet.
        case probe
        /// Appends are pipelined: `next` moves ahead optimistically, bounded by `inflight`.
        case replicate
        /// The follower needs the snapshot at `index`; chunks go out one at a time.
        case snapshot(index: LogIndex)
    }

    /// The highest index known to match the leader's log. Never moves backwards.
    var match: LogIndex = 0
    /// The next index to send.
    var next: LogIndex
    var state: State = .probe
    /// In probe state: an append is out and unanswered, so wait for a response or a heartbeat.
    var probeSent = false
    var inflight: Inflights
    /// Heard from since the last check-quorum round.
    var recentActive = false
    /// The incarnation the follower's last reply came from (for claiming it; 0 = not heard).
    var incarnation: UInt64 = 0
    /// The highest read-index round this follower has acknowledged in the current term.
    var readRoundAcked: UInt64 = 0
    /// Snapshot transfer: the offset of the last chunk sent, and where the follower asked to
    /// resume after refusing a chunk (resent at the next heartbeat, so duplicates cannot multiply).
    var snapshotSentOffset = 0
    var snapshotResumeOffset: Int? = nil

    init(next: LogIndex, maxInflight: Int) {
        self.next = next
        inflight = Inflights(capacity: maxInflight)
    }

    var isPaused: Bool {
        switch state {
        case .probe: probeSent
        case .replicate: inflight.isFull
        case .snapshot: true
        }
    }

    /// A success response: returns true if it moved `match` forward. Stale (reordered) responses
    /// never move progress backwards.
    mutating func acknowledge(through index: LogIndex) -> Bool {
        probeSent = false
        next = max(next, index + 1)
        guard index > match else { return false }
        match = index
        return true
    }

    /// A rejection of an append at `rejected`; `hint` is where the leader's and follower's logs
    /// probably meet. Returns false for a stale rejection that must be ignored.
    mutating func rejected(at rejected: LogIndex, hint: LogIndex) -> Bool {
        if state == .replicate {
            // Something we already know matched cannot be rejected now: the response is stale.
            if rejected <= match { return false }
            next = match + 1
            return true
        }
        // In probe state only the one outstanding probe's rejection counts.
        if next - 1 != rejected { return false }
        next = max(min(rejected, hint + 1), match + 1)
        probeSent = false
        return true
    }

    mutating func becomeProbe() {
        if case .snapshot(let index) = state {
            next = max(match + 1, index + 1)
        } else {
            next = match + 1
        }
        state = .probe
        probeSent = false
        inflight.reset()
    }

    mutating func becomeReplicate() {
        state = .replicate
        next = match + 1
        inflight.reset()
    }

    mutating func becomeSnapshot(index: LogIndex) {
        state = .snapshot(index: index)
        snapshotSentOffset = 0
        snapshotResumeOffset = nil
        inflight.reset()
    }
}

/// The last indexes of appends sent but not acknowledged, oldest first, up to a bound.
struct Inflights: Sendable {
    private var lastIndexes: [LogIndex] = []
    private var head = 0
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    var count: Int { lastIndexes.count - head }
    var isFull: Bool { count >= capacity }

    mutating func add(_ lastIndex: LogIndex) {
        precondition(!isFull, "raft: inflight window overflow")
        lastIndexes.append(lastIndex)
    }

    /// Frees every append whose entries are now acknowledged.
    mutating func free(through index: LogIndex) {
        while head < lastIndexes.count, lastIndexes[head] <= index { head += 1 }
        compactStorage()
    }

    /// Frees the oldest: a heartbeat answered while the window is full means messages were lost.
    mutating func freeFirst() {
        if head < lastIndexes.count { head += 1 }
        compactStorage()
    }

    mutating func reset() {
        lastIndexes.removeAll(keepingCapacity: true)
        head = 0
    }

    private mutating func compactStorage() {
        if head == lastIndexes.count {
            reset()
        } else if head > 64, head * 2 > lastIndexes.count {
            lastIndexes.removeFirst(head)
            head = 0
        }
    }
}
