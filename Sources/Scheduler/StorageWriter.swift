import NIOCore
import NIOPosix
import Raft

/// Carries out a replica's storage writes on a thread of their own, so an fsync never holds up
/// the event loop that answers `schedule` calls. Writes run one at a time, in the order they were
/// submitted (a one-thread pool), and each answers on the replica's loop.
///
/// Group commit comes from the replica, not from here: while one write is on the disk the
/// replica queues what arrives, and the next write carries all of it in one fsync.
final class StorageWriter: @unchecked Sendable {
    // Safe: `storage` is only touched inside jobs run by `pool`, which has exactly one thread,
    // so no two jobs run at once and each sees the previous one's writes (the pool's queue
    // hand-off orders them). `load()` is called once, in `init`, before any job exists.
    private var storage: any RaftStorage
    private let pool: NIOThreadPool

    init(storage: sending any RaftStorage) {
        self.storage = storage
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
    }

    func load() throws -> PersistedState { try storage.load() }

    /// Makes a Ready's durable part durable; the future completes on `loop`.
    func persist(_ ready: Ready, on loop: any EventLoop) -> EventLoopFuture<Void> {
        pool.runIfActive(eventLoop: loop) { [self] in
            try storage.persist(hardState: ready.hardState, entries: ready.entries, snapshot: ready.snapshot)
        }
    }

    /// Stores a compaction snapshot, after every write submitted before it.
    func saveCompactionSnapshot(_ snapshot: Snapshot, on loop: any EventLoop) -> EventLoopFuture<Void> {
        pool.runIfActive(eventLoop: loop) { [self] in
            try storage.saveCompactionSnapshot(snapshot)
        }
    }

    /// Waits for the write under way, if any, and stops the thread; writes not yet started fail.
    func shutDown() async {
        try? await pool.shutdownGracefully()
    }
}
