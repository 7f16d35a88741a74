/// Writes an exposition back as Prometheus text (classic format, with the quoted-name and
/// exemplar extensions when a parsed exposition used them). What it writes parses back to an
/// equal exposition: the fuzzer checks exactly that.
extension Exposition {
    public var text: String {
        var out = ""
        for family in families {
            if let help = family.help {
                out += "# HELP \(Self.name(family.name)) \(Self.escapeHelp(help))\n"
            }
            if family.kind != .untyped || family.help != nil {
                out += "# TYPE \(Self.name(family.name)) \(family.kind.rawValue)\n"
            }
            for sample in family.samples { out += Self.line(sample) + "\n" }
        }
        return out
    }

    static func line(_ sample: Sample) -> String {
        var line: String
        if isIdentifier(sample.name, allowColon: true) {
            line = sample.name
            if !sample.labels.isEmpty { line += "{" + labels(sample.labels) + "}" }
        } else {
            line = "{" + quoted(sample.name) + (sample.labels.isEmpty ? "" : "," + labels(sample.labels)) + "}"
        }
        line += " " + number(sample.value)
        if let timestamp = sample.timestamp { line += " " + number(timestamp) }
        if let exemplar = sample.exemplar {
            line += " # {" + labels(exemplar.labels) + "} " + number(exemplar.value)
            if let timestamp = exemplar.timestamp { line += " " + number(timestamp) }
        }
        return line
    }

    static func name(_ name: String) -> String { isIdentifier(name, allowColon: true) ? name : quoted(name) }

    static func labels(_ labels: [Label]) -> String {
        labels.map { (isIdentifier($0.name, allowColon: false) ? $0.name : quoted($0.name)) + "=" + quoted($0.value) }
            .joined(separator: ",")
    }

    static func quoted(_ text: String) -> String {
        var out = "\""
        for character in text.unicodeScalars {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(character)
            }
        }
        return out + "\""
    }

    static func escapeHelp(_ help: String) -> String {
        var out = ""
        for character in help.unicodeScalars {
            switch character {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }

    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value == .infinity { return "+Inf" }
        if value == -.infinity { return "-Inf" }
        return "\(value)"
    }

    static func isIdentifier(_ text: String, allowColon: Bool) -> Bool {
        guard let first = text.utf8.first, !(first >= 0x30 && first <= 0x39) else { return false }
        return text.utf8.allSatisfy { byte in
            (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x5F
                || (allowColon && byte == 0x3A)
        }
    }
}
