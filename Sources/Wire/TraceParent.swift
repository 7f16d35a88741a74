/// The W3C `traceparent` form (https://www.w3.org/TR/trace-context/#traceparent-header), checked
/// before a tracer sees one: what a client or a peer sends is validated here, so a malformed
/// value starts no work and is never logged by the tracer (with the headers around it).
public enum TraceParent {
    /// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, lowercase; the ids not all zero;
    /// version `ff` is invalid; a later version may add fields after a `-`.
    public static func isValid(_ value: String) -> Bool {
        let bytes = Array(value.utf8.prefix(56))
        guard bytes.count >= 55, value.utf8.count <= 512 else { return false }
        guard bytes[2] == dash, bytes[35] == dash, bytes[52] == dash else { return false }
        let version = bytes[0..<2], traceID = bytes[3..<35], parentID = bytes[36..<52], flags = bytes[53..<55]
        guard [version, traceID, parentID, flags].allSatisfy({ $0.allSatisfy(isLowerHex) }) else { return false }
        guard version != ArraySlice("ff".utf8) else { return false }
        guard traceID.contains(where: { $0 != zero }), parentID.contains(where: { $0 != zero }) else { return false }
        if version == ArraySlice("00".utf8) { return value.utf8.count == 55 }
        return bytes.count == 55 || bytes[55] == dash
    }

    /// A valid value whose `sampled` flag (bit 0 of the flags) is set.
    public static func isSampled(_ value: String) -> Bool {
        guard isValid(value) else { return false }
        let flags = Array(value.utf8)[53..<55]
        guard let byte = UInt8(String(decoding: flags, as: UTF8.self), radix: 16) else { return false }
        return byte & 1 == 1
    }

    private static let dash = UInt8(ascii: "-")
    private static let zero = UInt8(ascii: "0")

    private static func isLowerHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }
}
