import NIOCore

/// Cuts an SSE byte stream into the payloads of its `data:` lines, event by event.
struct SSEEventSplitter {
    private var pending: [UInt8] = []

    mutating func feed(_ chunk: ByteBuffer) -> [String] {
        pending.append(contentsOf: chunk.readableBytesView)
        var payloads: [String] = []
        while let end = Self.eventEnd(in: pending) {
            let event = String(decoding: pending[..<end.start], as: UTF8.self)
            pending.removeFirst(end.next)
            let data = event.split(separator: "\n", omittingEmptySubsequences: false)
                .compactMap { line -> Substring? in
                    let trimmed = line.hasSuffix("\r") ? line.dropLast() : line
                    guard trimmed.hasPrefix("data:") else { return nil }
                    let value = trimmed.dropFirst(5)
                    return value.hasPrefix(" ") ? value.dropFirst() : value
                }
            if !data.isEmpty { payloads.append(data.joined(separator: "\n")) }
        }
        return payloads
    }

    /// Where the first blank line (`\n\n` or `\r\n\r\n`) is: the event's end and where the next starts.
    private static func eventEnd(in bytes: [UInt8]) -> (start: Int, next: Int)? {
        var index = 0
        while index + 1 < bytes.count {
            if bytes[index] == 0x0A, bytes[index + 1] == 0x0A { return (index, index + 2) }
            if index + 3 < bytes.count, bytes[index] == 0x0D, bytes[index + 1] == 0x0A, bytes[index + 2] == 0x0D, bytes[index + 3] == 0x0A {
                return (index, index + 4)
            }
            index += 1
        }
        return nil
    }
}
