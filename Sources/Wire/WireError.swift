/// A failed call or connection, local or reported by the peer. `code` follows the protocol's
/// ErrorCode so a remote failure and a local one (a timeout, a closed connection) read the same.
public struct WireError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    public var retryAfterMs: UInt32
    /// For a local timeout: the peer sent other frames while this call waited, so it is slow
    /// to answer this call, not gone. A caller keeps its connection (and its other calls on it)
    /// rather than moving to another peer.
    public var peerResponsive: Bool

    public init(_ code: ErrorCode, _ message: String, retryAfterMs: UInt32 = 0, peerResponsive: Bool = false) {
        self.code = code
        self.message = message
        self.retryAfterMs = retryAfterMs
        self.peerResponsive = peerResponsive
    }

    init(_ body: ErrorMessage) {
        self.init(body.code, body.message, retryAfterMs: body.retryAfterMs)
    }

    var body: ErrorMessage { ErrorMessage(code: code, message: message, retryAfterMs: retryAfterMs) }

    public var description: String { "\(code): \(message)" }

    static func closed(_ why: String = "the connection closed") -> WireError {
        WireError(.unavailable, why)
    }
}
