import Raft

/// A client's write: set `key` to `value`. Values are unique per attempt, so histories can be
/// checked without ambiguity.
struct PutCommand: Hashable {
    var opID: UInt64
    var key: UInt8
    var value: UInt64

    var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(17)
        out.appendLittleEndian(opID)
        out.append(key)
        out.appendLittleEndian(value)
        return out
    }

    init(opID: UInt64, key: UInt8, value: UInt64) {
        self.opID = opID
        self.key = key
        self.value = value
    }

    init?(bytes: [UInt8]) {
        guard bytes.count == 17 else { return nil }
        opID = bytes.readLittleEndian(at: 0)
        key = bytes[8]
        value = bytes.readLittleEndian(at: 9)
    }
}

/// The replicated key-value map, with a running hash of every entry applied so that two replicas
/// can be compared at any index in constant time.
struct KVStateMachine: Equatable {
    private(set) var values: [UInt8: UInt64] = [:]
    private(set) var applied: LogIndex = 0
    private(set) var hash: UInt64 = 0

    mutating func apply(_ entry: Entry) {
        precondition(entry.index == applied + 1, "state machine: applying \(entry.index) after \(applied)")
        if entry.kind == .command, let put = PutCommand(bytes: entry.data) {
            values[put.key] = put.value
        }
        hash = Self.chain(hash, entry)
        applied = entry.index
    }

    static func chain(_ hash: UInt64, _ entry: Entry) -> UInt64 {
        var h = hash ^ 0xCBF2_9CE4_8422_2325
        func mix(_ x: UInt64) {
            h ^= x
            h = h &* 0x1000_0000_01B3
            h ^= h >> 29
        }
        mix(entry.index)
        mix(entry.term)
        mix(UInt64(entry.kind.rawValue))
        for byte in entry.data { mix(UInt64(byte)) }
        return h
    }

    var serialized: [UInt8] {
        var out = [UInt8]()
        out.appendLittleEndian(applied)
        out.appendLittleEndian(hash)
        for key in values.keys.sorted() {
            out.append(key)
            out.appendLittleEndian(values[key]!)
        }
        return out
    }

    init() {}

    init?(serialized bytes: [UInt8]) {
        guard bytes.count >= 16, (bytes.count - 16) % 9 == 0 else { return nil }
        applied = bytes.readLittleEndian(at: 0)
        hash = bytes.readLittleEndian(at: 8)
        var offset = 16
        while offset < bytes.count {
            values[bytes[offset]] = bytes.readLittleEndian(at: offset + 1)
            offset += 9
        }
    }
}

extension [UInt8] {
    mutating func appendLittleEndian(_ value: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    func readLittleEndian(at offset: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<8 { value |= UInt64(self[offset + i]) << UInt64(8 * i) }
        return value
    }
}
