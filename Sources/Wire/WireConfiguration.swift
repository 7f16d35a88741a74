import Crypto

/// The protocol version this build speaks (Hello.protocol_version).
/// Version 2: each side proves a credential of its role and node id, not the root secret.
public let wireProtocolVersion: UInt32 = 2

/// Settings of one side of a connection. The defaults suit a scheduler and its clients on one
/// network; Docs/configuration.md lists them (they are not yet read from the config file).
public struct WireConfiguration: Sendable {
    /// What this process is, sent in Hello.
    public var role: Role { credential.role }
    /// This process's name in Hello: a scheduler's numeric id, an agent's instance id, a gateway name.
    public var nodeID: String { credential.nodeID }
    /// The key this side proves its role and node id with. Never sent on the wire.
    public var credential: Credential
    /// The cluster's root secret, held by schedulers: an accepting side derives from it the key
    /// of the role and node id a peer claims. A side without it accepts no connections.
    public var rootSecret: SymmetricKey?
    /// Mutual TLS (`cluster.tls`); nil: plain TCP. Both sides of a connection must agree.
    public var tls: WireTLS?
    /// Frames longer than this are refused and the connection closed.
    public var maxFrameBytes = 4 * 1024 * 1024
    /// Frames before the handshake completes (the Hellos and the HelloAck, each a few hundred
    /// bytes) may be at most this long: an unauthenticated peer cannot make this side buffer more.
    public var handshakeMaxFrameBytes = 4 * 1024
    /// Time allowed for the TCP connect itself. A host that is cut off answers nothing, so a
    /// dial to it takes all of this (a stopped process on a live host refuses at once).
    public var connectTimeout: Duration = .seconds(2)
    /// Time allowed from TCP connect to a completed handshake.
    public var handshakeTimeout: Duration = .seconds(1)
    /// Connections a listener holds open at once (authenticated or not); one more is answered
    /// with OVERLOADED and closed before any handshake.
    public var maxConnections = 4_096
    /// A Ping is sent after this long without receiving anything.
    public var keepaliveInterval: Duration = .seconds(5)
    /// The connection is closed after this long without receiving anything (Pongs count).
    public var idleTimeout: Duration = .seconds(15)
    /// Timeout of a call that names none.
    public var defaultCallTimeout: Duration = .seconds(5)
    /// Calls and streams the peer may have open on this connection at once; more get OVERLOADED.
    public var maxConcurrentInboundCalls = 1024
    /// Messages held back while the peer reads too slowly; past this, sends fail with OVERLOADED.
    public var maxQueuedWrites = 4096
    /// Items buffered per stream for a slow consumer; past this the stream ends with OVERLOADED.
    public var streamBufferLimit = 1024
    /// The socket write buffer above which the connection stops writing and queues (then refuses).
    public var writeBufferHighWaterMark = 1024 * 1024
    public var writeBufferLowWaterMark = 256 * 1024
    public var softwareVersion = "junction 0.1.0"

    /// A process holding the root secret: it proves its own credential, derived here, and can
    /// accept any peer.
    public init(role: Role, nodeID: String, clusterSecret: [UInt8]) {
        let root = SymmetricKey(data: clusterSecret)
        credential = Credential.derive(root: root, role: role, nodeID: nodeID)
        rootSecret = root
    }

    public init(role: Role, nodeID: String, clusterSecret: String) {
        self.init(role: role, nodeID: nodeID, clusterSecret: Array(clusterSecret.utf8))
    }

    /// A process holding only its own credential: it dials schedulers and accepts nothing.
    public init(credential: Credential) {
        self.credential = credential
        rootSecret = nil
    }
}
