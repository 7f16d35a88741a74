#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a scheduler's data directory says about the node that owns it, in `<dir>/identity`:
///
///     cluster=<cluster.name>
///     incarnation=<16 hex digits>
///     first_start=true|false
///
/// The incarnation is a random number made with the directory, so a wiped disk comes back as
/// another incarnation, which the Raft membership (once a leader has claimed this node) does not
/// let vote. `firstStart` says whether the node took part in the group's first start, which lets
/// it vote before it is claimed; a directory made after the group started (`false`) waits for a
/// leader to claim it. Written once, atomically, before the node's first Raft message.
public struct NodeIdentity: Sendable, Equatable, CustomStringConvertible {
    public var clusterName: String
    public var incarnation: UInt64
    public var firstStart: Bool

    public static let fileName = "identity"

    public init(clusterName: String, incarnation: UInt64, firstStart: Bool) {
        self.clusterName = clusterName
        self.incarnation = incarnation
        self.firstStart = firstStart
    }

    /// A new identity for a directory made now.
    public static func fresh(clusterName: String, firstStart: Bool) -> NodeIdentity {
        NodeIdentity(clusterName: clusterName, incarnation: UInt64.random(in: 1...UInt64.max), firstStart: firstStart)
    }

    public var description: String {
        "cluster \(clusterName), incarnation \(Self.hex(incarnation))\(firstStart ? ", first start" : "")"
    }

    public var encoded: [UInt8] {
        Array("cluster=\(clusterName)\nincarnation=\(Self.hex(incarnation))\nfirst_start=\(firstStart)\n".utf8)
    }

    /// Reads `encoded`; nil for anything else (a torn or foreign file is refused, not guessed at).
    public init?(encoded bytes: [UInt8]) {
        guard let text = String(validating: bytes, as: UTF8.self) else { return nil }
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { return nil }
            fields[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        guard fields.count == 3, let cluster = fields["cluster"], !cluster.isEmpty,
              let hex = fields["incarnation"], hex.count == 16, let incarnation = UInt64(hex, radix: 16), incarnation != 0,
              let first = fields["first_start"].flatMap(Bool.init) else { return nil }
        self.init(clusterName: cluster, incarnation: incarnation, firstStart: first)
    }

    /// The identity in `directory`, or nil if it has none yet.
    public static func load(directory: String) throws -> NodeIdentity? {
        let path = directory + "/" + fileName
        guard access(path, F_OK) == 0 else { return nil }
        let bytes = try FileIO.readAll(path)
        guard let identity = NodeIdentity(encoded: bytes) else {
            throw RaftStoreError(description: "raft storage: \(path) is not an identity file; refusing to start (restore this node's data directory, or wipe it and replace the node)")
        }
        return identity
    }

    public func save(directory: String) throws {
        try FileIO.makeDirectory(directory)
        try FileIO.writeAtomically(encoded, to: directory + "/" + Self.fileName, dir: directory)
    }

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }
}
