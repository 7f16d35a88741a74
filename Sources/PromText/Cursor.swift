/// Reads one line of the exposition byte by byte; every method stops at the line's end.
struct Cursor {
    let bytes: [UInt8]
    var position: Int
    let end: Int
    let line: Int
    let lineStart: Int

    var atEnd: Bool { position >= end }
    /// The current byte, or 0 at the end of the line (0 matches no token).
    var peek: UInt8 { position < end ? bytes[position] : 0 }

    mutating func advance() { position += 1 }

    /// Skips spaces and tabs; true if it skipped any.
    @discardableResult
    mutating func skipBlanks() -> Bool {
        let from = position
        while position < end, bytes[position] == UInt8(ascii: " ") || bytes[position] == UInt8(ascii: "\t") { position += 1 }
        return position > from
    }

    /// Up to the next blank or the end.
    mutating func word() -> String {
        let from = position
        while position < end, bytes[position] != UInt8(ascii: " "), bytes[position] != UInt8(ascii: "\t") { position += 1 }
        return String(decoding: bytes[from..<position], as: UTF8.self)
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`, or a quoted name.
    mutating func metricName() throws(PromTextError) -> String {
        if peek == quote { return try quotedString() }
        return try identifier(allowColon: true, what: "metric name")
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`.
    mutating func labelName() throws(PromTextError) -> String {
        try identifier(allowColon: false, what: "label name")
    }

    private mutating func identifier(allowColon: Bool, what: String) throws(PromTextError) -> String {
        let from = position
        while position < end {
            let byte = bytes[position]
            let letter = (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || byte == UInt8(ascii: "_")
                || (allowColon && byte == UInt8(ascii: ":"))
            let digit = byte >= 0x30 && byte <= 0x39
            guard letter || (digit && position > from) else { break }
            position += 1
        }
        guard position > from else { throw error("expected a \(what)") }
        return String(decoding: bytes[from..<position], as: UTF8.self)
    }

    /// A double-quoted string with `\\`, `\"` and `\n` escapes.
    mutating func quotedString() throws(PromTextError) -> String {
        advance()  // opening quote
        var out: [UInt8] = []
        while position < end {
            let byte = bytes[position]
            position += 1
            if byte == quote { return String(decoding: out, as: UTF8.self) }
            if byte == UInt8(ascii: "\\") {
                guard position < end else { break }
                let escaped = bytes[position]
                position += 1
                switch escaped {
                case UInt8(ascii: "n"): out.append(newline)
                case UInt8(ascii: "\\"), quote: out.append(escaped)
                default:
                    // Prometheus keeps an unknown escape as written.
                    out.append(UInt8(ascii: "\\"))
                    out.append(escaped)
                }
            } else {
                out.append(byte)
            }
        }
        throw error("a quoted string is not closed")
    }

    /// The rest of a `# HELP` line, with `\\` and `\n` unescaped.
    mutating func restUnescapingHelp() -> String {
        var out: [UInt8] = []
        while position < end {
            let byte = bytes[position]
            position += 1
            if byte == UInt8(ascii: "\\"), position < end {
                let escaped = bytes[position]
                if escaped == UInt8(ascii: "n") {
                    out.append(newline)
                    position += 1
                    continue
                }
                if escaped == UInt8(ascii: "\\") {
                    out.append(escaped)
                    position += 1
                    continue
                }
            }
            out.append(byte)
        }
        // A carriage return at the end cannot survive a line ending; drop it, as the line's was.
        while out.last == carriageReturn { out.removeLast() }
        return String(decoding: out, as: UTF8.self)
    }

    /// A float as Prometheus writes them: decimal or exponent form, `NaN`, `+Inf`, `-Inf`, `Inf`.
    /// Timestamps (`finite`) must be ordinary numbers.
    mutating func number(_ what: String, finite: Bool = false) throws(PromTextError) -> Double {
        let from = position
        let token = word()
        if !finite {
            switch token.lowercased() {
            case "nan": return .nan
            case "+inf", "inf": return .infinity
            case "-inf": return -.infinity
            default: break
            }
        }
        // Only the characters of a decimal float: Swift's Double(String) also takes hex and "infinity".
        guard !token.isEmpty, token.utf8.allSatisfy({ Self.floatCharacters.contains($0) }), let value = Double(token),
            !finite || value.isFinite
        else {
            position = from
            throw error("'\(token)' is not a valid \(what)")
        }
        return value
    }

    private static let floatCharacters = Set("0123456789+-.eE".utf8)

    func error(_ reason: String) -> PromTextError {
        PromTextError(line: line, column: position - lineStart + 1, reason: reason)
    }
}
