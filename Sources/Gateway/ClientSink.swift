import GatewayCore
import NIOCore
import NIOHTTP1

/// Where a request's answer goes: an HTTP response (`HTTPFront`) or WebSocket messages
/// (`WebSocketFront`). The request's shell (`RequestRun`) writes through it; it never decides.
protocol ClientSink: AnyObject {
    /// Whether the client takes more now (back-pressure for a relayed stream).
    var isWritable: Bool { get }
    /// A whole answer.
    func respond(status: HTTPResponseStatus, headers: HTTPHeaders, body: ByteBuffer)
    /// The head of a relayed stream; chunks follow.
    func startStream(status: HTTPResponseStatus, headers: HTTPHeaders)
    /// One chunk of the engine's event stream, as it arrived (flushed by `flush`).
    func streamChunk(_ chunk: ByteBuffer)
    func flush()
    /// The stream's end; with an error, an OpenAI error event and `[DONE]` first.
    func endStream(error: OpenAIError?)
    /// Nothing reached the client: an error answer.
    func answerError(_ error: OpenAIError)
    /// The request is over (the sink may take the next).
    func requestEnded(_ run: RequestRun)
}
