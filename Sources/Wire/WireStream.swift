/// One open stream, seen from either end: the items the peer sends, and a way to send items back.
/// The side that opened it may `finish()` its own sending or `cancel` the whole stream.
public struct WireStream: Sendable {
    public let callID: UInt64
    /// The peer's items in order. Ends when the peer ends its side; throws `WireError` when the
    /// stream fails (the peer's Error, a closed connection, or this consumer falling too far behind).
    public let inbound: AsyncThrowingStream<Envelope.Body, any Error>
    let connection: WireConnection
    let isOpener: Bool

    /// Sends one item. Suspends until the frame is handed to the socket, so a fast sender is held
    /// to the peer's pace; fails with OVERLOADED when too much is queued already.
    public func send(_ item: Envelope.Body) async throws {
        try await connection.sendStreamItem(callID: callID, item)
    }

    /// The opener has nothing more to send; the peer may still answer.
    public func finish() {
        guard isOpener else { return }
        connection.endOutboundStream(callID: callID, cancelReason: nil)
    }

    /// The opener abandons the stream.
    public func cancel(reason: String = "cancelled") {
        guard isOpener else { return }
        connection.endOutboundStream(callID: callID, cancelReason: reason)
    }
}
