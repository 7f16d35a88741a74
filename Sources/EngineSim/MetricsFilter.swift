/// `/metrics?name[]=A&name[]=B`: the sample names a scraper asks for, as Python's
/// prometheus_client reads them (the key and the values percent-decoded, `+` a space, as
/// `parse_qs` does). nil when none is asked for: the whole page. Decoded by hand over the bytes:
/// Foundation's `removingPercentEncoding` cost more than rendering the filtered page.
enum MetricsFilter {
    static func names(query: String?) -> Set<String>? {
        guard let query, !query.isEmpty else { return nil }
        var names = Set<String>()
        for pair in query.utf8.split(separator: UInt8(ascii: "&")) {
            guard let equals = pair.firstIndex(of: UInt8(ascii: "=")),
                decode(pair[pair.startIndex..<equals]) == "name[]",
                let value = decode(pair[pair.index(after: equals)...]), !value.isEmpty
            else { continue }
            names.insert(value)
        }
        return names.isEmpty ? nil : names
    }

    /// A `%` not followed by two hex digits stays as it is (as Python's `unquote` leaves it); nil
    /// for bytes that are not UTF-8.
    static func decode(_ bytes: Substring.UTF8View.SubSequence) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            let high = bytes.index(after: index)
            if byte == UInt8(ascii: "%"), high < bytes.endIndex, bytes.index(after: high) < bytes.endIndex,
                let h = hexValue(bytes[high]), let l = hexValue(bytes[bytes.index(after: high)])
            {
                out.append(h << 4 | l)
                index = bytes.index(index, offsetBy: 3)
            } else {
                out.append(byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
                index = bytes.index(after: index)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
