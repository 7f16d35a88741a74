import CFuzzDriver
import NIOCore
import Wire

/// libFuzzer entry point: the input is bytes as they might arrive on a wire connection.
/// The oracle is stronger than "does not crash": whatever decodes must re-encode to bytes that
/// decode and re-encode to the very same bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWire(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: start, count: count)

    // As the connection reads: a stream of length-prefixed frames.
    var buffer = ByteBuffer(bytes: bytes)
    while let envelope = try? EnvelopeFrameDecoder.decodeFrame(from: &buffer, maxFrameBytes: 1 << 16) {
        checkStable(envelope)
    }

    // As log entries and snapshots are read: bare messages.
    if let envelope = try? Envelope(serializedBytes: bytes) { checkStable(envelope) }
    if let command = try? SchedulerCommand(serializedBytes: bytes) { checkStable(command) }
    if let snapshot = try? SchedulerSnapshot(serializedBytes: bytes) { checkStable(snapshot) }
    if let raft = try? RaftMessage(serializedBytes: bytes) { checkStable(raft) }
    return 0
}

func checkStable<M: WireMessage>(_ message: M) {
    let encoded = message.serializedBytes()
    guard let again = try? M(serializedBytes: encoded) else {
        fatalError("\(M.self) decoded from fuzz input, but its own encoding does not decode")
    }
    guard again.serializedBytes() == encoded else {
        fatalError("\(M.self) changed in an encode/decode round trip")
    }
}

/// SwiftPM names this target's entry point FuzzWire_main; libFuzzer's driver takes over from it.
@_cdecl("FuzzWire_main")
public func fuzzWireMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, fuzzWire)
}
