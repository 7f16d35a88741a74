/// Who is on the other end of an authenticated connection, as its Hello said.
public struct PeerIdentity: Sendable, Hashable, CustomStringConvertible {
    public var role: Role
    public var nodeID: String
    public var address: String
    public var softwareVersion: String

    public init(role: Role, nodeID: String, address: String, softwareVersion: String) {
        self.role = role
        self.nodeID = nodeID
        self.address = address
        self.softwareVersion = softwareVersion
    }

    public var description: String { "\(role) \(nodeID.isEmpty ? "?" : nodeID) at \(address)" }
}
