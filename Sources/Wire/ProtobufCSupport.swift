import CJunctionProto
import CProtobufC

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A Swift message that converts to and from its protobuf-c struct. The conformances are generated
/// (Proto/gen_swift.py); this file holds the hand-written half they rely on.
protocol ProtobufCConvertible {
    associatedtype CMessage
    init(c pointer: UnsafePointer<CMessage>) throws
    func makeC(_ arena: CArena) -> UnsafeMutablePointer<CMessage>
    static func cUnpack(_ length: Int, _ bytes: UnsafePointer<UInt8>) -> UnsafeMutablePointer<CMessage>?
    static func cFree(_ pointer: UnsafeMutablePointer<CMessage>)
    static func cPackedSize(_ pointer: UnsafePointer<CMessage>) -> Int
    static func cPack(_ pointer: UnsafePointer<CMessage>, _ out: UnsafeMutablePointer<UInt8>) -> Int
}

/// Owns every C allocation made while building one message tree for packing, and frees them all
/// at once when the packing is done. Never escapes the encode call that creates it.
final class CArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    init() {
        blocks.reserveCapacity(8)
    }

    deinit {
        for block in blocks { free(block) }
    }

    func allocate<T>(_ type: T.Type, count: Int = 1) -> UnsafeMutablePointer<T> {
        let bytes = MemoryLayout<T>.stride * max(count, 1)
        guard let raw = malloc(bytes) else { fatalError("out of memory allocating \(bytes) bytes") }
        blocks.append(raw)
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    func cString(_ string: String) -> UnsafeMutablePointer<CChar>? {
        // proto3 omits empty strings; protobuf-c treats NULL as empty.
        if string.isEmpty { return nil }
        var utf8 = string.utf8CString
        let pointer = allocate(CChar.self, count: utf8.count)
        utf8.withUnsafeMutableBufferPointer { source in
            pointer.initialize(from: source.baseAddress!, count: source.count)
        }
        return pointer
    }

    func binary(_ bytes: [UInt8]) -> ProtobufCBinaryData {
        if bytes.isEmpty { return ProtobufCBinaryData(len: 0, data: nil) }
        let pointer = allocate(UInt8.self, count: bytes.count)
        bytes.withUnsafeBufferPointer { pointer.initialize(from: $0.baseAddress!, count: $0.count) }
        return ProtobufCBinaryData(len: bytes.count, data: pointer)
    }

    func scalars<T>(_ values: [T]) -> (Int, UnsafeMutablePointer<T>?) {
        if values.isEmpty { return (0, nil) }
        let pointer = allocate(T.self, count: values.count)
        values.withUnsafeBufferPointer { pointer.initialize(from: $0.baseAddress!, count: $0.count) }
        return (values.count, pointer)
    }

    func cStrings(_ values: [String]) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) {
        if values.isEmpty { return (0, nil) }
        let pointer = allocate(UnsafeMutablePointer<CChar>?.self, count: values.count)
        for (i, value) in values.enumerated() {
            // Unlike a singular field, an element must not be NULL: protobuf-c dereferences it.
            pointer[i] = cString(value) ?? emptyCString()
        }
        return (values.count, pointer)
    }

    func messages<M: ProtobufCConvertible>(_ values: [M]) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<M.CMessage>?>?) {
        if values.isEmpty { return (0, nil) }
        let pointer = allocate(UnsafeMutablePointer<M.CMessage>?.self, count: values.count)
        for (i, value) in values.enumerated() { pointer[i] = value.makeC(self) }
        return (values.count, pointer)
    }

    private func emptyCString() -> UnsafeMutablePointer<CChar> {
        let pointer = allocate(CChar.self)
        pointer.pointee = 0
        return pointer
    }
}

/// A proto3 string must be valid UTF-8. Google's implementations refuse to parse one that is not;
/// protobuf-c 1.4 does not check, so the check is made here and the whole message refused.
struct InvalidUTF8: Error {}

func cString(_ pointer: UnsafeMutablePointer<CChar>?) throws -> String {
    guard let pointer else { return "" }
    let bytes = UnsafeRawBufferPointer(start: pointer, count: strlen(pointer))
    guard let string = String(validating: bytes, as: UTF8.self) else { throw InvalidUTF8() }
    return string
}

func cBytes(_ data: ProtobufCBinaryData) -> [UInt8] {
    guard data.len > 0, let base = data.data else { return [] }
    return Array(UnsafeBufferPointer(start: base, count: data.len))
}

func cScalars<T>(_ pointer: UnsafeMutablePointer<T>?, _ count: Int) -> [T] {
    guard count > 0, let pointer else { return [] }
    return Array(UnsafeBufferPointer(start: pointer, count: count))
}

func cStrings(_ pointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ count: Int) throws -> [String] {
    guard count > 0, let pointer else { return [] }
    return try (0..<count).map { try cString(pointer[$0]) }
}

func cMessages<T>(_ pointer: UnsafeMutablePointer<UnsafeMutablePointer<T>?>?, _ count: Int) -> [UnsafePointer<T>] {
    guard count > 0, let pointer else { return [] }
    return (0..<count).compactMap { pointer[$0].map { UnsafePointer($0) } }
}
