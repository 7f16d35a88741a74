import Foundation
import GatewayCore
import Logging
import Synchronization
import Wire

/// The gateway's copy of the scheduler's instance table: the newest version it has seen, kept
/// in memory and (when configured) on disk, so a gateway restarted while the scheduler trio is
/// down still knows where the engines are. Read on the request path from any event loop without
/// waiting: the table and its `InstanceRef`s sit behind one lock, swapped whole on each update.
final class InstanceTableStore: Sendable {
    private struct Snapshot {
        var table: InstanceTable?
        var instances: [InstanceRef] = []
    }
    private let snapshot = Mutex(Snapshot())
    /// Serialises disk writes (offers come from one subscription task, but keep it safe).
    private let writing = Mutex(())
    private let path: String?
    private let logger: Logger

    var table: InstanceTable? { snapshot.withLock { $0.table } }
    var instances: [InstanceRef] { snapshot.withLock { $0.instances } }

    init(path: String?, logger: Logger) {
        self.path = path
        self.logger = logger
        if let path, let data = FileManager.default.contents(atPath: path) {
            do {
                let loaded = try InstanceTable(serializedBytes: Array(data))
                snapshot.withLock { $0 = Snapshot(table: loaded, instances: Self.refs(loaded)) }
                logger.notice("loaded the cached instance table", metadata: ["version": "\(loaded.version)", "path": "\(path)"])
            } catch {
                logger.warning("ignoring an unreadable cached instance table", metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
    }

    private static func refs(_ table: InstanceTable) -> [InstanceRef] {
        table.instances.map {
            InstanceRef(
                id: $0.id, endpointURL: $0.endpointURL, model: $0.model, alsoServes: $0.aliases + $0.adapters, isUp: $0.state == .up,
                isPrefillOnly: $0.role == .prefill)
        }
    }

    /// Keeps `new` if it is newer (a restarted trio may number from an older snapshot; a higher
    /// term wins too). Writes it to disk atomically.
    func offer(_ new: InstanceTable) {
        let kept = snapshot.withLock { current -> Bool in
            if let table = current.table, new.version < table.version, new.term <= table.term { return false }
            current = Snapshot(table: new, instances: Self.refs(new))
            return true
        }
        guard kept, let path else { return }
        writing.withLock { _ in
            do {
                try Data(new.serializedBytes()).write(to: URL(fileURLWithPath: path), options: .atomic)
            } catch {
                logger.warning("cannot write the instance table cache", metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
    }
}
