import Crypto

/// What one process proves on the wire: a key for exactly one role and node id, derived from the
/// cluster's root secret (HMAC-SHA256 over the role and the id). Schedulers hold the root and
/// derive the key of whatever a peer claims to be; every other process can hold just its own
/// credential, so an agent host that is taken over can speak as that agent, for that instance,
/// and nothing else (Docs/security.md).
///
/// As a string (config files, Kubernetes Secrets):
/// `junction-credential-v1:<role>:<node id>:<64 hex digits>`, printed by `junction ctl credential`.
public struct Credential: Sendable, Equatable, CustomStringConvertible {
    public let role: Role
    public let nodeID: String
    public let key: SymmetricKey

    public static let prefix = "junction-credential-v1"
    /// Node ids are names, not payloads: long enough for a pod name or a UUID, no longer.
    public static let maxNodeIDBytes = 253

    public init(role: Role, nodeID: String, key: SymmetricKey) {
        self.role = role
        self.nodeID = nodeID
        self.key = key
    }

    /// The credential of `role` and `nodeID` under `root`.
    public static func derive(root: SymmetricKey, role: Role, nodeID: String) -> Credential {
        var message = Array("\(prefix)\u{0}".utf8)
        message += Array(role.name.utf8) + [0] + Array(nodeID.utf8)
        let key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: message, using: root)))
        return Credential(role: role, nodeID: nodeID, key: key)
    }

    public var token: String {
        let digits = Array("0123456789abcdef".utf8)
        let hex = key.withUnsafeBytes { bytes in String(decoding: bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }, as: UTF8.self) }
        return "\(Self.prefix):\(role.name):\(nodeID):\(hex)"
    }

    /// Parses `token`; nil when it is not one.
    public init?(token: String) {
        let parts = token.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 4, parts[0] == Self.prefix, let role = Role(name: parts[1]),
            Self.isValidNodeID(parts[2]), parts[3].utf8.count == 64
        else { return nil }
        guard let bytes = Self.bytes(hex: parts[3]) else { return nil }
        self.init(role: role, nodeID: parts[2], key: SymmetricKey(data: bytes))
    }

    /// Printable ASCII without ':' or spaces, 1 to 253 bytes.
    public static func isValidNodeID(_ id: String) -> Bool {
        (1...maxNodeIDBytes).contains(id.utf8.count) && id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }
    }

    public var description: String { "\(role.name) '\(nodeID)'" }

    public static func == (lhs: Credential, rhs: Credential) -> Bool {
        lhs.role == rhs.role && lhs.nodeID == rhs.nodeID && lhs.key == rhs.key
    }

    /// The bytes `hex` spells (lowercase digits, two per byte); nil if it spells none.
    public static func bytes(hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        for pair in stride(from: 0, to: digits.count, by: 2) {
            guard let high = hexValue(digits[pair]), let low = hexValue(digits[pair + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}

extension Role {
    /// The role's name in credentials and logs.
    public var name: String {
        switch self {
        case .scheduler: "scheduler"
        case .gateway: "gateway"
        case .agent: "agent"
        case .operator: "operator"
        case .bench: "bench"
        case .unspecified: "unspecified"
        }
    }

    public init?(name: String) {
        switch name {
        case "scheduler": self = .scheduler
        case "gateway": self = .gateway
        case "agent": self = .agent
        case "operator": self = .operator
        case "bench": self = .bench
        default: return nil
        }
    }
}
