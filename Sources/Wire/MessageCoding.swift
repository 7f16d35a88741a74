import CJunctionProto
import NIOCore

/// Raised when bytes do not decode as the expected protobuf message.
public struct MessageDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    public var messageType: String
    public var byteCount: Int
    public var description: String { "\(byteCount) bytes are not a valid \(messageType) message" }
}

/// Protobuf encoding and decoding of the generated message types, through libprotobuf-c.
public protocol WireMessage: Sendable {
    /// The standard protobuf encoding of this message.
    func serializedBytes() -> [UInt8]
    /// Appends the standard protobuf encoding of this message to `buffer`; returns the byte count.
    @discardableResult
    func serialize(into buffer: inout ByteBuffer) -> Int
    /// Decodes one message from its protobuf encoding.
    init(serializedBytes bytes: some Collection<UInt8>) throws
    /// Decodes one message from all readable bytes of `buffer`, without consuming them.
    init(buffer: ByteBuffer) throws
}

// The generated conformances forward to these helpers (Proto/gen_swift.py).

func protobufCSerializedBytes<M: ProtobufCConvertible>(_ message: M) -> [UInt8] {
    let arena = CArena()
    let c = message.makeC(arena)
    let size = M.cPackedSize(c)
    return [UInt8](unsafeUninitializedCapacity: size) { out, count in
        count = size == 0 ? 0 : M.cPack(c, out.baseAddress!)
    }
}

func protobufCSerialize<M: ProtobufCConvertible>(_ message: M, into buffer: inout ByteBuffer) -> Int {
    let arena = CArena()
    let c = message.makeC(arena)
    let size = M.cPackedSize(c)
    guard size > 0 else { return 0 }
    return buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
        M.cPack(c, out.baseAddress!.assumingMemoryBound(to: UInt8.self))
    }
}

func protobufCDecode<M: ProtobufCConvertible>(_ type: M.Type, bytes: some Collection<UInt8>) throws -> M {
    let decoded: M?? = bytes.withContiguousStorageIfAvailable { protobufCDecode(M.self, $0) }
    let result = decoded ?? Array(bytes).withUnsafeBufferPointer { protobufCDecode(M.self, $0) }
    guard let result else { throw MessageDecodingError(messageType: "\(M.self)", byteCount: bytes.count) }
    return result
}

func protobufCDecode<M: ProtobufCConvertible>(_ type: M.Type, buffer: ByteBuffer) throws -> M {
    let decoded = buffer.withUnsafeReadableBytes { protobufCDecode(M.self, $0.assumingMemoryBound(to: UInt8.self)) }
    guard let decoded else { throw MessageDecodingError(messageType: "\(M.self)", byteCount: buffer.readableBytes) }
    return decoded
}

private func protobufCDecode<M: ProtobufCConvertible>(_ type: M.Type, _ bytes: UnsafeBufferPointer<UInt8>) -> M? {
    if let base = bytes.baseAddress { return protobufCDecode(M.self, count: bytes.count, base) }
    // An empty collection may have no storage; protobuf-c still wants a valid pointer.
    var empty: UInt8 = 0
    return withUnsafePointer(to: &empty) { protobufCDecode(M.self, count: 0, $0) }
}

private func protobufCDecode<M: ProtobufCConvertible>(_ type: M.Type, count: Int, _ base: UnsafePointer<UInt8>) -> M? {
    guard let c = M.cUnpack(count, base) else { return nil }
    defer { M.cFree(c) }
    return try? M(c: c)
}
