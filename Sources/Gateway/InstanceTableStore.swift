import Foundation
import GatewayCore
import Logging
import Wire

/// The gateway's copy of the scheduler's instance table: the newest version it has seen, kept
/// in memory and (when configured) on disk, so a gateway restarted while the scheduler trio is
/// down still knows where the engines are.
actor InstanceTableStore {
    private(set) var table: InstanceTable?
    private let path: String?
    private let logger: Logger

    init(path: String?, logger: Logger) {
        self.path = path
        self.logger = logger
        if let path, let data = FileManager.default.contents(atPath: path) {
            do {
                let loaded = try InstanceTable(serializedBytes: Array(data))
                table = loaded
                logger.notice("loaded the cached instance table", metadata: ["version": "\(loaded.version)", "path": "\(path)"])
            } catch {
                logger.warning("ignoring an unreadable cached instance table", metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
    }

    var instances: [InstanceRef] {
        (table?.instances ?? []).map {
            InstanceRef(id: $0.id, endpointURL: $0.endpointURL, model: $0.model, isUp: $0.state == .up, isPrefillOnly: $0.role == .prefill)
        }
    }

    /// Keeps `new` if it is newer (a restarted trio may number from an older snapshot; a higher
    /// term wins too). Writes it to disk atomically.
    func offer(_ new: InstanceTable) {
        if let table, new.version < table.version, new.term <= table.term { return }
        table = new
        guard let path else { return }
        do {
            try Data(new.serializedBytes()).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            logger.warning("cannot write the instance table cache", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }
}
