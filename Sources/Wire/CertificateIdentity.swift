import X509

/// The role and node id a wire certificate is issued to: the URI `junction:ROLE:NODE-ID` among
/// its subject alternative names (`openssl ... -addext subjectAltName=URI:junction:agent:engine-1`).
/// The same spelling as a credential's token, and node ids have no ':' (`Credential.isValidNodeID`),
/// so the URI reads one way only.
public struct CertificateIdentity: Sendable, Hashable, CustomStringConvertible {
    public var role: Role
    public var nodeID: String

    public static let scheme = "junction"

    public init(role: Role, nodeID: String) {
        self.role = role
        self.nodeID = nodeID
    }

    public var uri: String { "\(Self.scheme):\(role.name):\(nodeID)" }
    public var description: String { uri }

    /// Parses `junction:ROLE:ID`; nil for any other URI.
    public init?(uri: String) {
        let parts = uri.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == Self.scheme, let role = Role(name: String(parts[1])), role != .unspecified,
            Credential.isValidNodeID(String(parts[2]))
        else { return nil }
        self.init(role: role, nodeID: String(parts[2]))
    }

    /// Every identity a DER certificate names (URIs of other schemes are ignored).
    public static func named(inDER der: [UInt8]) throws -> [CertificateIdentity] {
        let certificate = try Certificate(derEncoded: der)
        guard let names = try certificate.extensions.subjectAlternativeNames else { return [] }
        return names.compactMap { name in
            if case .uniformResourceIdentifier(let uri) = name { CertificateIdentity(uri: uri) } else { nil }
        }
    }
}
