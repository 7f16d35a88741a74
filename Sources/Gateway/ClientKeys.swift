import Crypto

/// The gateway's API keys, each naming a client (`llm_gateway.api_keys`). A presented key is
/// hashed (SHA-256) and its digest compared with every configured digest in constant time: how
/// long a key is, how many of its bytes are right, or which entry it matches do not show in the
/// time of the answer. A config may hold a key's digest instead of the key.
struct ClientKeys: Sendable {
    struct Entry: Sendable, Equatable {
        var client: String
        var digest: [UInt8]
    }

    enum Outcome: Equatable {
        /// No keys are configured: every request is served, with no client name.
        case open
        case client(String)
        case refused
    }

    let entries: [Entry]
    /// A linear, constant-time scan must stay cheap on the request path.
    static let maxEntries = 1_024
    static let maxKeyBytes = 512

    init(_ entries: [Entry] = []) { self.entries = entries }

    var isEmpty: Bool { entries.isEmpty }

    /// `Authorization: Bearer KEY`, or the bare key as in the seed's example.
    func identify(authorization: String?) -> Outcome {
        guard !entries.isEmpty else { return .open }
        guard let authorization else { return .refused }
        var key = authorization.hasPrefix("Bearer ") ? authorization.utf8.dropFirst(7) : authorization.utf8[...]
        while key.first == UInt8(ascii: " ") { key = key.dropFirst() }
        while key.last == UInt8(ascii: " ") { key = key.dropLast() }
        guard !key.isEmpty, key.count <= Self.maxKeyBytes else { return .refused }
        let presented = Array(SHA256.hash(data: Array(key)))
        var found = -1
        // Every entry is compared, all 32 bytes each, whatever matched before.
        for (index, entry) in entries.enumerated() {
            var difference: UInt8 = 0
            for byte in 0..<32 { difference |= entry.digest[byte] ^ presented[byte] }
            let match = Int(difference == 0 ? 1 : 0)
            found = match * index + (1 - match) * found
        }
        return found >= 0 ? .client(entries[found].client) : .refused
    }

    static func digest(ofKey key: String) -> [UInt8] { Array(SHA256.hash(data: Array(key.utf8))) }

    /// Client names go into logs and metric labels: short, plain, no quoting needed.
    static func isValidClientName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count)
            && name.utf8.allSatisfy { $0.isASCIIAlnum || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }
    }
}

extension UInt8 {
    fileprivate var isASCIIAlnum: Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self)
    }
}
