import Raft
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Raft's durable storage on local disk: a write-ahead log in segments plus snapshot files.
///
///     <dir>/wal/<first sequence, 16 hex>.wal   records, CRC-32C each (WALRecord)
///     <dir>/snap/<index, 16 hex>-<term, 16 hex>.snap   CRC-32C (u32 BE), then the encoded snapshot
///
/// Every method returns once what it wrote is fsynced. At start-up a torn last record (the write
/// a crash interrupted) is cut off; damage anywhere else stops start-up with the file and offset.
/// Owned by one task at a time (not Sendable): the shell's storage loop.
public final class FileStorage: RaftStorage {
    public let directory: String
    let walDir: String
    let snapDir: String
    let segmentBytes: Int

    /// A fault for tests and benchmarks: each WAL fsync takes at least this much longer, as on a
    /// slow or contended disk (the machine has no device-mapper `delay` target to make one).
    public var injectedSyncDelay: Duration = .zero

    /// Told of every WAL append once it is durable: bytes written, time in `write`, time in
    /// `fsync` (the scheduler's latency histograms). Called on the writing thread.
    public var onAppend: (@Sendable (_ bytes: Int, _ write: Duration, _ sync: Duration) -> Void)?

    private var segments: [Segment] = []
    private var fd: Int32 = -1
    private var loaded = PersistedState()

    struct Segment {
        var sequence: UInt64
        var path: String
        var size: Int
        /// The highest entry index written in this segment (0 if none).
        var maxEntryIndex: LogIndex
    }

    /// Opens (creating if needed) the storage in `directory`, replaying and checking the WAL.
    public init(directory: String, segmentBytes: Int = 64 << 20) throws {
        self.directory = directory
        walDir = directory + "/wal"
        snapDir = directory + "/snap"
        self.segmentBytes = segmentBytes
        for dir in [directory, walDir, snapDir] { try FileIO.makeDirectory(dir) }
        let snapshot = try loadNewestSnapshot()
        loaded = try replay(snapshot: snapshot)
        try openForAppend()
    }

    deinit { if fd >= 0 { close(fd) } }

    public func load() -> PersistedState { loaded }

    public func persist(hardState: HardState?, entries: [Entry], snapshot: Snapshot?) throws {
        var records: [WALRecord] = []
        if let snapshot {
            try writeSnapshotFile(snapshot)
            records.append(.installed(index: snapshot.metadata.index, term: snapshot.metadata.term))
            loaded.snapshot = snapshot
            loaded.entries = []
        }
        // The hard state goes first: an entry that survives a torn write implies its term did.
        if let hardState {
            records.append(.hardState(hardState))
            loaded.hardState = hardState
        }
        for entry in entries { records.append(.entry(entry)) }
        if let first = entries.first {
            if let last = loaded.entries.last, first.index <= last.index {
                loaded.entries.removeAll { $0.index >= first.index }
            }
            loaded.entries.append(contentsOf: entries)
        }
        guard !records.isEmpty else { return }
        try append(records)
    }

    public func saveCompactionSnapshot(_ snapshot: Snapshot) throws {
        let index = snapshot.metadata.index
        guard index > (loaded.snapshot?.metadata.index ?? 0) else { return }
        try writeSnapshotFile(snapshot)
        try append([.compacted(index: index, term: snapshot.metadata.term)])
        loaded.snapshot = snapshot
        loaded.entries.removeAll { $0.index <= index }
        // Older snapshots and segments holding only compacted entries are no longer needed.
        for name in try FileIO.list(snapDir) where name.hasSuffix(".snap") && name != snapshotName(snapshot.metadata) {
            try FileIO.remove(snapDir + "/" + name)
        }
        while segments.count > 1, segments[0].maxEntryIndex <= index {
            try FileIO.remove(segments[0].path)
            segments.removeFirst()
        }
        try FileIO.syncDirectory(walDir)
    }

    // MARK: Writing

    private func append(_ records: [WALRecord]) throws {
        var bytes: [UInt8] = []
        var maxIndex: LogIndex = 0
        for record in records {
            bytes += record.encoded
            if case .entry(let e) = record { maxIndex = max(maxIndex, e.index) }
        }
        let path = segments[segments.count - 1].path
        let clock = ContinuousClock()
        let started = clock.now
        try FileIO.writeAll(fd, bytes, path: path)
        let written = clock.now
        try FileIO.sync(fd, path: path)
        if injectedSyncDelay > .zero { usleep(UInt32(clamping: Int(injectedSyncDelay / .microseconds(1)))) }
        onAppend?(bytes.count, written - started, clock.now - written)
        segments[segments.count - 1].size += bytes.count
        segments[segments.count - 1].maxEntryIndex = max(segments[segments.count - 1].maxEntryIndex, maxIndex)
        if segments[segments.count - 1].size >= segmentBytes { try roll() }
    }

    /// Starts a new segment that begins with the current hard state and snapshot point, so older
    /// segments can be deleted once compaction covers their entries.
    private func roll() throws {
        close(fd)
        fd = -1
        let sequence = (segments.last?.sequence ?? 0) + 1
        try createSegment(sequence: sequence)
        var header: [WALRecord] = [.hardState(loaded.hardState)]
        if let meta = loaded.snapshot?.metadata { header.append(.compacted(index: meta.index, term: meta.term)) }
        try append(header)
    }

    private func createSegment(sequence: UInt64) throws {
        let path = walDir + "/" + hex(sequence) + ".wal"
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { throw RaftStoreError.io("create", path) }
        try FileIO.syncDirectory(walDir)
        segments.append(Segment(sequence: sequence, path: path, size: 0, maxEntryIndex: 0))
    }

    private func openForAppend() throws {
        guard let last = segments.last else { return try createSegment(sequence: 1) }
        fd = open(last.path, O_WRONLY | O_APPEND)
        guard fd >= 0 else { throw RaftStoreError.io("open", last.path) }
    }

    private func snapshotName(_ meta: SnapshotMetadata) -> String {
        hex(meta.index) + "-" + hex(meta.term) + ".snap"
    }

    private func writeSnapshotFile(_ snapshot: Snapshot) throws {
        let body = SnapshotCodec.encode(snapshot)
        var bytes: [UInt8] = []
        bytes.appendBE32(CRC32C.checksum(body))
        bytes += body
        try FileIO.writeAtomically(bytes, to: snapDir + "/" + snapshotName(snapshot.metadata), dir: snapDir)
    }

    // MARK: Reading

    private func loadNewestSnapshot() throws -> Snapshot? {
        let names = try FileIO.list(snapDir)
        for name in names where name.hasSuffix(".tmp") {
            try FileIO.remove(snapDir + "/" + name) // an interrupted snapshot write
        }
        guard let newest = names.filter({ $0.hasSuffix(".snap") }).last else { return nil }
        let path = snapDir + "/" + newest
        let bytes = try FileIO.readAll(path)
        guard bytes.count >= 4, CRC32C.checksum(bytes[4...]) == bytes.be32(0),
              let snapshot = SnapshotCodec.decode(Array(bytes[4...])) else {
            throw RaftStoreError.corrupt(path, offset: 0, "snapshot checksum or format mismatch")
        }
        return snapshot
    }

    private func replay(snapshot: Snapshot?) throws -> PersistedState {
        var state = PersistedState(snapshot: snapshot)
        var base = snapshot?.metadata.index ?? 0
        let names = try FileIO.list(walDir).filter { $0.hasSuffix(".wal") }
        for (n, name) in names.enumerated() {
            let path = walDir + "/" + name
            guard let sequence = UInt64(name.dropLast(4), radix: 16) else {
                throw RaftStoreError.corrupt(path, offset: 0, "unexpected file name in the WAL folder")
            }
            let bytes = try FileIO.readAll(path)
            let isLast = n == names.count - 1
            var offset = 0
            var maxEntry: LogIndex = 0
            while offset < bytes.count {
                guard let (record, next) = try readRecord(bytes, at: offset, path: path, isLastSegment: isLast) else {
                    // A torn tail: cut it so that new records follow the last good one.
                    try cut(path, at: offset)
                    break
                }
                switch record {
                case .hardState(let hs):
                    state.hardState = hs
                case .entry(let e):
                    if let last = state.entries.last, e.index > last.index + 1 {
                        throw RaftStoreError.corrupt(path, offset: offset, "entry \(e.index) follows \(last.index)")
                    }
                    if let last = state.entries.last, e.index <= last.index {
                        state.entries.removeAll { $0.index >= e.index } // overwritten by a later leader
                    }
                    if e.index > base { state.entries.append(e) }
                    maxEntry = max(maxEntry, e.index)
                case .compacted(let index, _):
                    base = max(base, index)
                    state.entries.removeAll { $0.index <= index }
                case .installed(let index, _):
                    base = index
                    state.entries = []
                }
                offset = next
            }
            segments.append(Segment(sequence: sequence, path: path, size: min(offset, bytes.count), maxEntryIndex: maxEntry))
        }
        let snapIndex = snapshot?.metadata.index ?? 0
        if base > snapIndex {
            throw RaftStoreError.corrupt(walDir, offset: 0, "the WAL refers to a snapshot at \(base) but the newest snapshot file is at \(snapIndex)")
        }
        state.entries.removeAll { $0.index <= snapIndex }
        if let first = state.entries.first, first.index != snapIndex + 1 {
            throw RaftStoreError.corrupt(walDir, offset: 0, "entries start at \(first.index), after a snapshot at \(snapIndex)")
        }
        return state
    }

    /// The record at `offset` and where the next begins; nil for a torn tail (last segment only).
    private func readRecord(_ bytes: [UInt8], at offset: Int, path: String, isLastSegment: Bool) throws -> (WALRecord, Int)? {
        let remaining = bytes.count - offset
        func tornOrCorrupt(_ why: String, endOfRecord: Int) throws -> (WALRecord, Int)? {
            // Only the very last record of the last segment may be torn by a crash.
            if isLastSegment && endOfRecord >= bytes.count { return nil }
            throw RaftStoreError.corrupt(path, offset: offset, why)
        }
        guard remaining >= WALRecord.headerSize else {
            return try tornOrCorrupt("incomplete record header", endOfRecord: bytes.count)
        }
        let length = Int(bytes.be32(offset))
        let end = offset + WALRecord.headerSize + length
        guard end <= bytes.count else {
            return try tornOrCorrupt("record of \(length) bytes runs past the end of the file", endOfRecord: end)
        }
        let type = bytes[offset + 8]
        let payload = bytes[(offset + WALRecord.headerSize)..<end]
        guard CRC32C.checksum(payload, seed: CRC32C.checksum([type])) == bytes.be32(offset + 4) else {
            return try tornOrCorrupt("checksum mismatch", endOfRecord: end)
        }
        guard let record = WALRecord.decode(type: type, payload: payload) else {
            throw RaftStoreError.corrupt(path, offset: offset, "record of unknown type \(type) or wrong size")
        }
        return (record, end)
    }

    private func cut(_ path: String, at offset: Int) throws {
        guard truncate(path, off_t(offset)) == 0 else { throw RaftStoreError.io("truncate", path) }
        let fd = open(path, O_WRONLY)
        guard fd >= 0 else { throw RaftStoreError.io("open", path) }
        defer { close(fd) }
        try FileIO.sync(fd, path: path)
    }

    private func hex(_ v: UInt64) -> String {
        let digits = String(v, radix: 16)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }
}

/// Snapshot files: index, term, voters, learners, then the state machine's bytes. A membership
/// with claimed incarnations or addresses is written instead as a u32 length with the top bit set
/// and the core's `Membership.encoded` (files written before those existed still read: their
/// voter count never has that bit).
enum SnapshotCodec {
    static let encodedMembershipFlag: UInt32 = 0x8000_0000

    static func encode(_ s: Snapshot) -> [UInt8] {
        var out: [UInt8] = []
        out.appendBE(s.metadata.index)
        out.appendBE(s.metadata.term)
        let membership = s.metadata.membership
        if !membership.incarnations.isEmpty || !membership.addresses.isEmpty {
            let encoded = membership.encoded
            out.appendBE32(encodedMembershipFlag | UInt32(encoded.count))
            out += encoded
            out += s.data
            return out
        }
        let voters = membership.voters.sorted(), learners = membership.learners.sorted()
        out.appendBE32(UInt32(voters.count))
        voters.forEach { out.appendBE($0) }
        out.appendBE32(UInt32(learners.count))
        learners.forEach { out.appendBE($0) }
        out += s.data
        return out
    }

    static func decode(_ b: [UInt8]) -> Snapshot? {
        guard b.count >= 20 else { return nil }
        var at = 16
        let first = b.be32(at)
        if first & encodedMembershipFlag != 0 {
            let length = Int(first & ~encodedMembershipFlag)
            guard at + 4 + length <= b.count,
                  let membership = Membership(encoded: Array(b[(at + 4)..<(at + 4 + length)])) else { return nil }
            return Snapshot(metadata: SnapshotMetadata(index: b.be64(0), term: b.be64(8), membership: membership),
                            data: Array(b[(at + 4 + length)...]))
        }
        func ids() -> Set<NodeID>? {
            guard at + 4 <= b.count else { return nil }
            let n = Int(b.be32(at))
            at += 4
            guard at + 8 * n <= b.count else { return nil }
            let set = Set((0..<n).map { b.be64(at + 8 * $0) })
            at += 8 * n
            return set
        }
        guard let voters = ids(), let learners = ids() else { return nil }
        return Snapshot(metadata: SnapshotMetadata(index: b.be64(0), term: b.be64(8),
                                                   membership: Membership(voters: voters, learners: learners)),
                        data: Array(b[at...]))
    }
}
