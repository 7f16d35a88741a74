import Foundation

/// The part of the config every process needs: the cluster secret and the three schedulers.
public struct ClusterConfiguration: Sendable, Equatable {
    public struct Member: Sendable, Equatable {
        public var id: UInt64
        public var host: String
        public var port: Int
        public init(id: UInt64, host: String, port: Int) {
            self.id = id
            self.host = host
            self.port = port
        }
        public var address: String { "\(host):\(port)" }
    }

    /// `cluster.name`: written into each scheduler's data directory, so a directory of another
    /// cluster is refused at start, and compared with its peers' when a directory is new.
    public var name = "junction"
    /// `cluster.secret`: the root secret. Schedulers need it; any process holding it can act in
    /// any role, so other processes should hold a `credential` instead (Docs/security.md).
    public var secret: String?
    /// `cluster.credential`: one role's and node id's key (`junction ctl credential` prints it),
    /// for a process that must not hold the root.
    public var credential: String?
    public var members: [Member]
    /// `cluster.tls`: mutual TLS on the wire. Every process of the cluster needs it when any has
    /// it: a TLS side and a plain side cannot talk.
    public var tls: TLSFiles?
    /// Keys of the file that Junction accepts but does not use (the seed's deployment keys):
    /// each process says so once at start-up.
    public var unusedKeys: [String] = []

    /// `cluster.credential_file`: the credential kept in a file of its own (a Kubernetes Secret
    /// mounted per pod, `/etc/junction-agents/${POD_NAME}`), surrounding whitespace ignored.
    private static func readCredential(_ path: Any) throws(ConfigError) -> String {
        guard let path = path as? String, !path.isEmpty else { throw ConfigError(key: "cluster.credential_file", reason: "a file path") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(key: "cluster.credential_file", reason: "cannot read '\(path)'")
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public init(secret: String?, members: [Member], credential: String? = nil) {
        self.secret = secret
        self.credential = credential
        self.members = members
    }

    /// Checks the whole file against `ConfigSchema` first: every process refuses a file with an
    /// unknown key, whichever section it is in.
    public static func parse(_ root: [String: Any]) throws(ConfigError) -> ClusterConfiguration {
        let unused = try ConfigSchema.validate(root)
        let cluster = try ConfigFile.object(root, "cluster", required: true)!
        let secret = cluster["secret"]
        if let secret, !((secret as? String).map { $0.count >= 16 } ?? false) {
            throw ConfigError(key: "cluster.secret", reason: "a string of at least 16 characters")
        }
        var credential = cluster["credential"]
        if let path = cluster["credential_file"] {
            guard credential == nil else {
                throw ConfigError(key: "cluster.credential_file", reason: "either cluster.credential or cluster.credential_file, not both")
            }
            credential = try readCredential(path)
        }
        if let credential, !((credential as? String)?.hasPrefix("junction-credential-v1:") ?? false) {
            throw ConfigError(
                key: cluster["credential_file"] == nil ? "cluster.credential" : "cluster.credential_file",
                reason: "a credential from `junction ctl credential`: junction-credential-v1:ROLE:ID:KEY")
        }
        guard secret != nil || credential != nil else {
            throw ConfigError(key: "cluster.secret", reason: "required (or cluster.credential): the root secret, a string of at least 16 characters")
        }
        guard let list = cluster["schedulers"] as? [[String: Any]], !list.isEmpty else {
            throw ConfigError(key: "cluster.schedulers", reason: "required: a list of {\"id\": N, \"address\": \"host:port\"}")
        }
        var members: [Member] = []
        for (index, entry) in list.enumerated() {
            let key = "cluster.schedulers[\(index)]"
            guard let memberID = (entry["id"] as? Int).flatMap({ $0 > 0 ? UInt64($0) : nil }) else {
                throw ConfigError(key: key + ".id", reason: "required: a positive integer")
            }
            guard let address = entry["address"] as? String, let (host, port) = ConfigFile.splitAddress(address) else {
                throw ConfigError(key: key + ".address", reason: "required: \"host:port\"")
            }
            guard !members.contains(where: { $0.id == memberID }) else {
                throw ConfigError(key: key + ".id", reason: "id \(memberID) appears twice")
            }
            members.append(Member(id: memberID, host: host, port: port))
        }
        var parsed = ClusterConfiguration(secret: secret as? String, members: members, credential: credential as? String)
        if let name = cluster["name"] {
            guard let name = name as? String, (1...64).contains(name.utf8.count),
                  name.utf8.allSatisfy({ $0.isASCIIAlphanumeric || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }) else {
                throw ConfigError(key: "cluster.name", reason: "1 to 64 letters, digits, '-', '_' or '.'")
            }
            parsed.name = name
        }
        if let tls = cluster["tls"] { parsed.tls = try TLSFiles.parse(tls, key: "cluster.tls", needsCA: true) }
        parsed.unusedKeys = unused
        return parsed
    }

    public func member(_ id: UInt64) -> Member? { members.first { $0.id == id } }
}

extension UInt8 {
    var isASCIIAlphanumeric: Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self)
    }
}
