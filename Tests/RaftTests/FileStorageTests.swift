import Foundation
import Raft
@testable import RaftStore
import XCTest

final class FileStorageTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "junction-raftstore-\(UUID().uuidString)"
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    func entries(_ range: ClosedRange<LogIndex>, term: Term = 1) -> [Entry] {
        range.map { Entry(index: $0, term: term, data: Array("entry \($0)".utf8)) }
    }

    var segmentPaths: [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: dir + "/wal"))?.sorted().map { dir + "/wal/" + $0 } ?? []
    }

    func testRoundTripAndOverwrite() throws {
        do {
            let store = try FileStorage(directory: dir)
            try store.persist(hardState: HardState(term: 1, vote: 2, commit: 0), entries: entries(1...5), snapshot: nil)
            // A new leader overwrites from index 4.
            try store.persist(hardState: HardState(term: 2, vote: 3, commit: 3), entries: entries(4...6, term: 2), snapshot: nil)
        }
        let state = try FileStorage(directory: dir).load()
        XCTAssertEqual(state.hardState, HardState(term: 2, vote: 3, commit: 3))
        XCTAssertEqual(state.entries, entries(1...3) + entries(4...6, term: 2))
    }

    func testCompactionSegmentsAndSnapshotInstall() throws {
        let membership = Membership(voters: [1, 2, 3])
        do {
            let store = try FileStorage(directory: dir, segmentBytes: 200)
            for i in stride(from: LogIndex(1), through: 60, by: 5) {
                try store.persist(hardState: HardState(term: 1, vote: 1, commit: i), entries: entries(i...(i + 4)), snapshot: nil)
            }
            XCTAssertGreaterThan(segmentPaths.count, 5)
            let snap = Snapshot(metadata: SnapshotMetadata(index: 50, term: 1, membership: membership), data: [1, 2, 3])
            try store.saveCompactionSnapshot(snap)
            XCTAssertLessThan(segmentPaths.count, 5, "segments holding only compacted entries are deleted")
        }
        var state = try FileStorage(directory: dir, segmentBytes: 200).load()
        XCTAssertEqual(state.snapshot?.metadata.index, 50)
        XCTAssertEqual(state.snapshot?.data, [1, 2, 3])
        XCTAssertEqual(state.entries, entries(51...60))

        do {
            let store = try FileStorage(directory: dir, segmentBytes: 200)
            // Claimed incarnations and a replicated address: the file's other membership form.
            let identified = Membership(voters: [1, 2, 4], learners: [5], incarnations: [1: 7, 4: 9], addresses: [4: "10.0.0.4:7000"])
            let installed = Snapshot(metadata: SnapshotMetadata(index: 100, term: 3, membership: identified), data: [9])
            try store.persist(hardState: HardState(term: 3, vote: 0, commit: 100), entries: [], snapshot: installed)
            try store.persist(hardState: nil, entries: entries(101...102, term: 3), snapshot: nil)
        }
        state = try FileStorage(directory: dir, segmentBytes: 200).load()
        XCTAssertEqual(state.snapshot?.metadata.index, 100)
        XCTAssertEqual(state.snapshot?.metadata.membership,
                       Membership(voters: [1, 2, 4], learners: [5], incarnations: [1: 7, 4: 9], addresses: [4: "10.0.0.4:7000"]))
        XCTAssertEqual(state.snapshot?.data, [9])
        XCTAssertEqual(state.entries, entries(101...102, term: 3), "an installed snapshot voids the old log")
        XCTAssertEqual(state.hardState.commit, 100)
    }

    /// A crash can cut the last write anywhere: every cut point must load as a prefix of what
    /// was written, with the torn record removed and the file usable for appending.
    func testTornWriteAtEveryOffsetIsCutCleanly() throws {
        do {
            let store = try FileStorage(directory: dir)
            try store.persist(hardState: HardState(term: 1, vote: 1, commit: 0), entries: entries(1...3), snapshot: nil)
        }
        let path = segmentPaths[0]
        let full = try Data(contentsOf: URL(fileURLWithPath: path))
        let lastRecordStart = full.count - WALRecord.entry(entries(3...3)[0]).encoded.count
        for cut in lastRecordStart..<full.count {
            try full.prefix(cut).write(to: URL(fileURLWithPath: path))
            let store = try FileStorage(directory: dir)
            XCTAssertEqual(store.load().entries, entries(1...2), "cut at \(cut)")
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)).count, lastRecordStart)
            try store.persist(hardState: nil, entries: entries(3...3), snapshot: nil)
            XCTAssertEqual(try FileStorage(directory: dir).load().entries, entries(1...3))
        }
        // A full-length last record with a bad checksum (a torn sector) is cut as well.
        var damaged = full
        damaged[damaged.count - 1] ^= 0xFF
        try damaged.write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(try FileStorage(directory: dir).load().entries, entries(1...2))
    }

    func testCorruptionBeforeTheTailStopsStartUpNamingFileAndOffset() throws {
        do {
            let store = try FileStorage(directory: dir)
            try store.persist(hardState: HardState(term: 1, vote: 1, commit: 0), entries: entries(1...3), snapshot: nil)
        }
        let path = segmentPaths[0]
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let secondRecord = WALRecord.hardState(HardState(term: 1, vote: 1, commit: 0)).encoded.count
        bytes[secondRecord + 12] ^= 0x01 // inside entry 1's payload
        try bytes.write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try FileStorage(directory: dir)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(path), text)
            XCTAssertTrue(text.contains("offset \(secondRecord)"), text)
            XCTAssertTrue(text.contains("checksum"), text)
        }
    }

    func testDamageInAnEarlierSegmentIsNeverTreatedAsTorn() throws {
        do {
            let store = try FileStorage(directory: dir, segmentBytes: 100)
            for i in LogIndex(1)...10 { try store.persist(hardState: nil, entries: entries(i...i), snapshot: nil) }
        }
        let first = segmentPaths[0]
        let bytes = try Data(contentsOf: URL(fileURLWithPath: first))
        try bytes.prefix(bytes.count - 3).write(to: URL(fileURLWithPath: first))
        XCTAssertThrowsError(try FileStorage(directory: dir, segmentBytes: 100)) { error in
            XCTAssertTrue("\(error)".contains(first), "\(error)")
        }
    }

    func testCorruptSnapshotStopsStartUp() throws {
        do {
            let store = try FileStorage(directory: dir)
            try store.persist(hardState: HardState(term: 1, vote: 1, commit: 2), entries: entries(1...2), snapshot: nil)
            try store.saveCompactionSnapshot(Snapshot(metadata: SnapshotMetadata(index: 2, term: 1, membership: Membership(voters: [1])), data: [7, 7]))
        }
        let snapDir = dir + "/snap"
        let name = try XCTUnwrap(FileManager.default.contentsOfDirectory(atPath: snapDir).first)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: snapDir + "/" + name))
        bytes[bytes.count - 1] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: snapDir + "/" + name))
        XCTAssertThrowsError(try FileStorage(directory: dir)) { error in
            XCTAssertTrue("\(error)".contains(name), "\(error)")
        }
    }

    /// A whole group on file storage: nodes crash (losing memory, keeping disk) and restart.
    func testRaftGroupOnFileStorageSurvivesRestarts() throws {
        let ids: [NodeID] = [1, 2, 3]
        var stores = try ids.map { try FileStorage(directory: dir + "/node\($0)") }
        func config(_ id: NodeID) -> RaftConfig { var c = RaftConfig(id: id, voters: Set(ids)); c.randomSeed = id; return c }
        var nodes = try ids.map { try RaftNode(config: config($0), persisted: stores[Int($0 - 1)].load()) }
        var inbox: [Message] = []
        func run(ticks: Int) throws {
            for _ in 0..<ticks {
                for i in nodes.indices { nodes[i].tick() }
                for _ in 0..<100 {
                    for i in nodes.indices where nodes[i].hasReady {
                        let ready = nodes[i].ready()
                        try stores[i].persist(hardState: ready.hardState, entries: ready.entries, snapshot: ready.snapshot)
                        inbox += ready.messages
                        nodes[i].advance(ready)
                    }
                    if inbox.isEmpty { break }
                    let batch = inbox
                    inbox = []
                    for m in batch { nodes[Int(m.to - 1)].step(m) }
                }
            }
        }
        try run(ticks: 30)
        var leader = try XCTUnwrap(nodes.firstIndex { $0.role == .leader })
        for i in 0..<10 { try nodes[leader].propose(Array("cmd \(i)".utf8)) }
        try run(ticks: 3)
        let committed = nodes[leader].commitIndex
        // Every node restarts from disk alone.
        stores = try ids.map { try FileStorage(directory: dir + "/node\($0)") }
        nodes = try ids.map { try RaftNode(config: config($0), persisted: stores[Int($0 - 1)].load()) }
        try run(ticks: 40)
        leader = try XCTUnwrap(nodes.firstIndex { $0.role == .leader })
        XCTAssertGreaterThanOrEqual(nodes[leader].commitIndex, committed)
        for i in 0..<10 {
            XCTAssertEqual(nodes[leader].entry(at: LogIndex(i + 2))?.data, Array("cmd \(i)".utf8))
        }
    }
}
