/// The node's log in memory: a snapshot base, the entries after it, and how far each is durable,
/// committed and applied. Storage holds the durable copy; `Ready` tells the shell what to write.
struct RaftLog: Sendable {
    /// The last index and term covered by the snapshot (0, 0 before any snapshot).
    private(set) var snapshotIndex: LogIndex
    private(set) var snapshotTerm: Term
    /// Entries snapshotIndex+1 ... lastIndex.
    private(set) var entries: [Entry]
    /// Entries up to here are known to be in storage exactly as they are here.
    private(set) var stableIndex: LogIndex
    private(set) var committed: LogIndex
    private(set) var applied: LogIndex

    init(snapshot: SnapshotMetadata?, entries: [Entry], committed: LogIndex) {
        snapshotIndex = snapshot?.index ?? 0
        snapshotTerm = snapshot?.term ?? 0
        self.entries = entries.filter { $0.index > (snapshot?.index ?? 0) }
        stableIndex = snapshotIndex + LogIndex(self.entries.count)
        applied = snapshotIndex
        self.committed = min(max(committed, snapshotIndex), stableIndex)
    }

    var firstIndex: LogIndex { snapshotIndex + 1 }
    var lastIndex: LogIndex { snapshotIndex + LogIndex(entries.count) }
    var lastTerm: Term { entries.last?.term ?? snapshotTerm }

    /// The term at `index`, or nil when the index is compacted away or beyond the log.
    func term(at index: LogIndex) -> Term? {
        if index == snapshotIndex { return snapshotTerm }
        guard index > snapshotIndex, index <= lastIndex else { return nil }
        return entries[Int(index - snapshotIndex - 1)].term
    }

    func entry(at index: LogIndex) -> Entry? {
        guard index > snapshotIndex, index <= lastIndex else { return nil }
        return entries[Int(index - snapshotIndex - 1)]
    }

    func matchTerm(_ index: LogIndex, _ term: Term) -> Bool {
        self.term(at: index) == term
    }

    /// §5.4.1: a candidate's log is at least as up to date as ours.
    func isUpToDate(lastIndex candidateIndex: LogIndex, lastTerm candidateTerm: Term) -> Bool {
        candidateTerm > lastTerm || (candidateTerm == lastTerm && candidateIndex >= lastIndex)
    }

    /// Entries from `from` on, at most `maxCount` of them and about `maxBytes` (always at least one).
    func entries(from: LogIndex, maxCount: Int, maxBytes: Int) -> [Entry] {
        guard from > snapshotIndex, from <= lastIndex else { return [] }
        let start = Int(from - snapshotIndex - 1)
        var end = start
        var bytes = 0
        while end < entries.count, end - start < maxCount {
            bytes += entries[end].data.count + 24
            if end > start, bytes > maxBytes { break }
            end += 1
        }
        return Array(entries[start..<end])
    }

    /// The largest index at or below `index` whose term is at most `term` (fast back-off). An index
    /// whose term is compacted away is returned as is: the snapshot covers it.
    func lastIndex(atOrBelow index: LogIndex, withTermAtMost term: Term) -> LogIndex {
        var i = min(index, lastIndex)
        while i > snapshotIndex {
            if let t = self.term(at: i), t <= term { return i }
            i -= 1
        }
        return i
    }

    var unstableEntries: ArraySlice<Entry> {
        guard stableIndex < lastIndex else { return [] }
        return entries[Int(stableIndex - snapshotIndex)...]
    }

    /// Committed entries not yet handed to the state machine.
    var committedUnapplied: ArraySlice<Entry> {
        guard applied < committed else { return [] }
        let lo = Int(applied - snapshotIndex), hi = Int(committed - snapshotIndex)
        return entries[lo..<hi]
    }

    mutating func append(_ entry: Entry) {
        precondition(entry.index == lastIndex + 1, "log append out of order")
        entries.append(entry)
    }

    enum MergeResult: Equatable {
        case unchanged
        case replaced(from: LogIndex)
        /// The append conflicts with a committed entry: only possible if Raft's safety is broken.
        case conflictsWithCommitted(LogIndex)
    }

    /// Appends `new` (consecutive, following a matching prefix), replacing our entries from the
    /// first index whose term differs, and only from there: a stale or duplicated append whose
    /// entries all match changes nothing, so it can never cut off entries received after it.
    mutating func merge(_ new: [Entry], truncateAtFirstEntry: Bool = false) -> MergeResult {
        var firstConflict: Int? = nil
        for (offset, entry) in new.enumerated() {
            // Entries we no longer hold (compacted) are committed, so they match.
            if entry.index <= snapshotIndex { continue }
            // The injected bug truncates at the first uncommitted entry even when it matches.
            let conflicts = truncateAtFirstEntry ? entry.index > committed : !matchTerm(entry.index, entry.term)
            if conflicts { firstConflict = offset; break }
        }
        guard let offset = firstConflict else { return .unchanged }
        let from = new[offset].index
        guard from > committed else { return .conflictsWithCommitted(from) }
        precondition(from <= lastIndex + 1, "raft: append leaves a gap at \(lastIndex + 1)")
        entries.removeLast(Int(lastIndex - (from - 1)))
        entries.append(contentsOf: new[offset...])
        stableIndex = min(stableIndex, from - 1)
        return .replaced(from: from)
    }

    mutating func commit(to index: LogIndex) {
        guard index > committed else { return }
        precondition(index <= lastIndex, "raft: commit \(index) beyond last index \(lastIndex)")
        committed = index
    }

    /// The storage has durably written `written` (one Ready's entries). Only the part the log
    /// still holds counts: if an append from a new leader truncated the log while the write was
    /// in flight, the entries that replaced the written tail share its indexes but not its terms,
    /// and they are not on disk yet. Marking by index alone would call them stable, so they would
    /// never be written and yet be acknowledged.
    mutating func markStable(_ written: [Entry]) {
        guard let last = written.last(where: { $0.index <= snapshotIndex || matchTerm($0.index, $0.term) }) else { return }
        stableIndex = max(stableIndex, min(last.index, lastIndex))
    }

    mutating func markApplied(through index: LogIndex) {
        precondition(index <= committed, "raft: applied \(index) beyond committed \(committed)")
        applied = max(applied, index)
    }

    /// Drops entries up to `index`, which a snapshot now covers.
    mutating func compact(through index: LogIndex) {
        guard index > snapshotIndex else { return }
        precondition(index <= applied, "raft: cannot compact unapplied entries")
        let term = self.term(at: index)!
        entries.removeFirst(Int(index - snapshotIndex))
        snapshotIndex = index
        snapshotTerm = term
    }

    /// Replaces the whole log with a snapshot received from the leader.
    mutating func restore(_ metadata: SnapshotMetadata) {
        snapshotIndex = metadata.index
        snapshotTerm = metadata.term
        entries = []
        stableIndex = metadata.index
        committed = metadata.index
        applied = metadata.index
    }
}
