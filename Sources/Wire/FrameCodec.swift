import NIOCore

/// A frame the receiver refuses. The connection answers it with an Error frame carrying `code`
/// and closes; the server goes on serving its other peers.
public struct FrameError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    public var description: String { "\(code): \(message)" }
}

/// Reads frames: a 4-byte big-endian length N, then N bytes of one protobuf Envelope.
/// It never allocates for a frame before checking N against `maxFrameBytes`.
///
/// The first `handshakeFrames` frames (what this side reads before the handshake completes: one
/// Hello for a server, a Hello and a HelloAck for a client) may be at most `handshakeMaxFrameBytes`.
public struct EnvelopeFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = Envelope

    public let maxFrameBytes: Int
    public let handshakeFrames: Int
    public let handshakeMaxFrameBytes: Int
    private var decoded = 0

    public init(maxFrameBytes: Int, handshakeFrames: Int = 0, handshakeMaxFrameBytes: Int = .max) {
        self.maxFrameBytes = maxFrameBytes
        self.handshakeFrames = handshakeFrames
        self.handshakeMaxFrameBytes = handshakeMaxFrameBytes
    }

    /// The limit for the next frame.
    var currentLimit: Int { decoded < handshakeFrames ? min(maxFrameBytes, handshakeMaxFrameBytes) : maxFrameBytes }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let limit = currentLimit
        let envelope: Envelope?
        do {
            envelope = try Self.decodeFrame(from: &buffer, maxFrameBytes: limit)
        } catch let error as FrameError where error.code == .frameTooLarge && limit < maxFrameBytes {
            throw FrameError(code: .frameTooLarge, message: error.message + " before the handshake completed")
        }
        guard let envelope else { return .needMoreData }
        decoded += 1
        context.fireChannelRead(wrapInboundOut(envelope))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 {
            let have = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: have)
            throw FrameError(code: .badFrame, message: "the connection ended inside a frame (\(have) bytes of an unfinished frame)")
        }
        return .needMoreData
    }

    /// Decodes one whole frame from the front of `buffer`, or returns nil (consuming nothing) when
    /// the frame is not complete yet. Shared by the NIO handler and the fuzzer.
    public static func decodeFrame(from buffer: inout ByteBuffer, maxFrameBytes: Int) throws -> Envelope? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        if length == 0 {
            throw FrameError(code: .badFrame, message: "zero-length frame: every frame carries one Envelope")
        }
        if UInt64(length) > UInt64(maxFrameBytes) {
            throw FrameError(code: .frameTooLarge, message: "frame of \(length) bytes exceeds the maximum of \(maxFrameBytes) bytes")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        let payload = buffer.readSlice(length: Int(length))!
        do {
            return try Envelope(buffer: payload)
        } catch {
            throw FrameError(code: .decodeFailed, message: "\(length) bytes that are not a valid junction.v1.Envelope")
        }
    }
}

/// Writes an Envelope as one frame.
public struct EnvelopeFrameEncoder: MessageToByteEncoder {
    public typealias OutboundIn = Envelope

    public init() {}

    public func encode(data: Envelope, out: inout ByteBuffer) throws {
        Self.encodeFrame(data, into: &out)
    }

    public static func encodeFrame(_ envelope: Envelope, into out: inout ByteBuffer) {
        let lengthIndex = out.writerIndex
        out.writeInteger(UInt32(0))
        let written = envelope.serialize(into: &out)
        out.setInteger(UInt32(written), at: lengthIndex)
    }
}
