/// What a process serves to its peers over the wire. Each method runs in its own task; a thrown
/// `WireError` is sent to the peer as it is, any other error as INTERNAL.
public protocol WireService: Sendable {
    /// Answers one request (a message of request kind with a call id).
    func handle(_ request: Envelope.Body, from peer: PeerIdentity) async throws -> Envelope.Body

    /// Serves one stream the peer opened. Returning ends it with End; throwing ends it with Error.
    func handleStream(_ open: Envelope.Body, stream: WireStream, from peer: PeerIdentity) async throws

    /// Takes a one-way message (call id 0). Called on the connection's event loop in arrival
    /// order: it must not block; hand the message on (e.g. into an AsyncStream) and return.
    /// An error refuses the message: it is sent to the peer and the connection closed (a
    /// one-way message has no call to answer, and a peer that sends a bad one is not trusted on).
    func receiveOneWay(_ message: Envelope.Body, from peer: PeerIdentity) -> WireError?

    /// Answers a request at once, on the connection's event loop as its frame is read, or
    /// returns nil to have `handle` answer it in a task. For calls whose answer needs no wait
    /// (a scheduler's `schedule`): it saves a task and two thread switches a call. It must not block.
    func answerOnLoop(_ request: Envelope.Body, from peer: PeerIdentity) -> Result<Envelope.Body, WireError>?
}

extension WireService {
    public func handleStream(_ open: Envelope.Body, stream: WireStream, from peer: PeerIdentity) async throws {
        throw WireError(.unimplemented, "\(open.name) streams are not served here")
    }

    public func receiveOneWay(_ message: Envelope.Body, from peer: PeerIdentity) -> WireError? {
        WireError(.unimplemented, "\(message.name) is not taken here")
    }

    public func answerOnLoop(_ request: Envelope.Body, from peer: PeerIdentity) -> Result<Envelope.Body, WireError>? { nil }
}
