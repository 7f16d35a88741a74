import Raft

/// One record of the write-ahead log. On disk: payload length (u32 BE), CRC-32C of type and
/// payload (u32 BE), type (u8), payload. Integers in payloads are big-endian.
enum WALRecord: Equatable {
    case hardState(HardState)
    case entry(Entry)
    /// A compaction snapshot is durable: entries up to `index` are no longer needed.
    case compacted(index: LogIndex, term: Term)
    /// A snapshot from the leader was installed: every earlier entry is void.
    case installed(index: LogIndex, term: Term)

    static let headerSize = 9

    var encoded: [UInt8] {
        var payload: [UInt8] = []
        let type: UInt8
        switch self {
        case .hardState(let hs):
            type = 1
            payload.appendBE(hs.term); payload.appendBE(hs.vote); payload.appendBE(hs.commit)
        case .entry(let e):
            type = 2
            payload.reserveCapacity(17 + e.data.count)
            payload.appendBE(e.index); payload.appendBE(e.term); payload.append(e.kind.rawValue)
            payload.append(contentsOf: e.data)
        case .compacted(let index, let term):
            type = 3
            payload.appendBE(index); payload.appendBE(term)
        case .installed(let index, let term):
            type = 4
            payload.appendBE(index); payload.appendBE(term)
        }
        var out: [UInt8] = []
        out.reserveCapacity(Self.headerSize + payload.count)
        out.appendBE32(UInt32(payload.count))
        out.appendBE32(CRC32C.checksum(payload, seed: CRC32C.checksum([type])))
        out.append(type)
        out.append(contentsOf: payload)
        return out
    }

    /// Decodes a record whose checksum has been verified; nil if its contents make no sense.
    static func decode(type: UInt8, payload: ArraySlice<UInt8>) -> WALRecord? {
        let p = Array(payload)
        switch type {
        case 1 where p.count == 24:
            return .hardState(HardState(term: p.be64(0), vote: p.be64(8), commit: p.be64(16)))
        case 2 where p.count >= 17:
            guard let kind = EntryKind(rawValue: p[16]) else { return nil }
            return .entry(Entry(index: p.be64(0), term: p.be64(8), kind: kind, data: Array(p[17...])))
        case 3 where p.count == 16:
            return .compacted(index: p.be64(0), term: p.be64(8))
        case 4 where p.count == 16:
            return .installed(index: p.be64(0), term: p.be64(8))
        default:
            return nil
        }
    }
}

extension [UInt8] {
    mutating func appendBE(_ v: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
    }

    mutating func appendBE32(_ v: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) }
    }

    func be64(_ at: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(self[at + i]) }
        return v
    }

    func be32(_ at: Int) -> UInt32 {
        var v: UInt32 = 0
        for i in 0..<4 { v = v << 8 | UInt32(self[at + i]) }
        return v
    }
}
