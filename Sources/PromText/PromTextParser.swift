/// A parser for the Prometheus text exposition format (0.0.4) and the parts of OpenMetrics 1.0
/// engines emit: `# HELP` with escapes, `# TYPE` of every kind, `# UNIT` and `# EOF`, labels with
/// escaped values and trailing commas, quoted UTF-8 metric and label names (Prometheus 3),
/// NaN and ±Inf, timestamps, and exemplars after `#`. Samples attach to the family their TYPE
/// or HELP declared, under the exact name or with the suffix a counter, histogram or summary
/// adds (`_total`, `_created`, `_bucket`, `_count`, `_sum`, …); others form untyped families.
/// Pure, works on bytes, and never traps on any input (it is fuzzed).
public enum PromTextParser {
    public static func parse(_ text: String) throws(PromTextError) -> Exposition {
        try parse(Array(text.utf8))
    }

    public static func parse(_ bytes: [UInt8]) throws(PromTextError) -> Exposition {
        var builder = FamilyBuilder()
        var lineNumber = 0
        var start = 0
        while start <= bytes.count {
            lineNumber += 1
            var end = start
            while end < bytes.count, bytes[end] != newline { end += 1 }
            var lineEnd = end
            if lineEnd > start, bytes[lineEnd - 1] == carriageReturn { lineEnd -= 1 }
            var cursor = Cursor(bytes: bytes, position: start, end: lineEnd, line: lineNumber, lineStart: start)
            cursor.skipBlanks()
            if !cursor.atEnd {
                if cursor.peek == hash {
                    if try parseComment(&cursor, into: &builder) { break }  // # EOF
                } else {
                    builder.add(try parseSample(&cursor))
                }
            }
            start = end + 1
        }
        return Exposition(families: builder.families)
    }

    /// Returns true at `# EOF`.
    private static func parseComment(_ cursor: inout Cursor, into builder: inout FamilyBuilder) throws(PromTextError) -> Bool {
        cursor.advance()  // '#'
        cursor.skipBlanks()
        let keyword = cursor.word()
        switch keyword {
        case "HELP", "TYPE", "UNIT":
            guard cursor.skipBlanks() else { throw cursor.error("expected a metric name after # \(keyword)") }
            let name = try cursor.metricName()
            if keyword == "UNIT" { return false }
            if keyword == "HELP" {
                cursor.skipBlanks()
                builder.declare(name, help: cursor.restUnescapingHelp())
            } else {
                guard cursor.skipBlanks() else { throw cursor.error("expected a type after # TYPE \(name)") }
                let word = cursor.word()
                guard let kind = MetricFamily.Kind(rawValue: word.lowercased()) else {
                    throw cursor.error("unknown metric type '\(word)'")
                }
                cursor.skipBlanks()
                guard cursor.atEnd else { throw cursor.error("unexpected text after the type") }
                try builder.declare(name, kind: kind, at: cursor)
            }
            return false
        case "EOF":
            return true
        default:
            return false  // any other comment
        }
    }

    private static func parseSample(_ cursor: inout Cursor) throws(PromTextError) -> Sample {
        var name: String
        var labels: [Label] = []
        var separated = false
        if cursor.peek == openBrace {
            // Prometheus 3: {"metric.name", label="value"}
            cursor.advance()
            cursor.skipBlanks()
            guard cursor.peek == quote else { throw cursor.error("expected a quoted metric name after '{'") }
            name = try cursor.quotedString()
            cursor.skipBlanks()
            if cursor.peek == comma {
                cursor.advance()
                labels = try parseLabels(&cursor)
            } else {
                guard cursor.peek == closeBrace else { throw cursor.error("expected ',' or '}' after the metric name") }
                cursor.advance()
            }
        } else {
            name = try cursor.metricName()
            separated = cursor.skipBlanks()
            if cursor.peek == openBrace {
                cursor.advance()
                labels = try parseLabels(&cursor)
                separated = false
            }
        }
        if !separated { separated = cursor.skipBlanks() }
        guard separated || cursor.atEnd else { throw cursor.error("expected a space before the value") }
        guard !cursor.atEnd else { throw cursor.error("expected a value for '\(name)'") }
        let value = try cursor.number("value")
        var sample = Sample(name: name, labels: labels, value: value)
        cursor.skipBlanks()
        if !cursor.atEnd, cursor.peek != hash {
            sample.timestamp = try cursor.number("timestamp", finite: true)
            cursor.skipBlanks()
        }
        if !cursor.atEnd, cursor.peek == hash {
            cursor.advance()
            cursor.skipBlanks()
            guard cursor.peek == openBrace else { throw cursor.error("expected '{' to open an exemplar's labels") }
            cursor.advance()
            let exemplarLabels = try parseLabels(&cursor)
            guard cursor.skipBlanks() else { throw cursor.error("expected an exemplar value") }
            let exemplarValue = try cursor.number("exemplar value")
            var timestamp: Double?
            cursor.skipBlanks()
            if !cursor.atEnd {
                timestamp = try cursor.number("exemplar timestamp", finite: true)
                cursor.skipBlanks()
            }
            sample.exemplar = Exemplar(labels: exemplarLabels, value: exemplarValue, timestamp: timestamp)
        }
        guard cursor.atEnd else { throw cursor.error("unexpected text after the sample") }
        return sample
    }

    /// After '{': `name="value"` pairs separated by commas (a trailing comma allowed), then '}'.
    private static func parseLabels(_ cursor: inout Cursor) throws(PromTextError) -> [Label] {
        var labels: [Label] = []
        while true {
            cursor.skipBlanks()
            if cursor.peek == closeBrace {
                cursor.advance()
                return labels
            }
            let name = cursor.peek == quote ? try cursor.quotedString() : try cursor.labelName()
            cursor.skipBlanks()
            guard cursor.peek == equals else { throw cursor.error("expected '=' after label '\(name)'") }
            cursor.advance()
            cursor.skipBlanks()
            guard cursor.peek == quote else { throw cursor.error("expected a quoted value for label '\(name)'") }
            let value = try cursor.quotedString()
            guard !labels.contains(where: { $0.name == name }) else { throw cursor.error("label '\(name)' appears twice") }
            labels.append(Label(name, value))
            cursor.skipBlanks()
            if cursor.peek == comma {
                cursor.advance()
            } else if cursor.peek != closeBrace {
                throw cursor.error(cursor.atEnd ? "the label set is not closed with '}'" : "expected ',' or '}' in the label set")
            }
        }
    }
}

let newline = UInt8(ascii: "\n")
let carriageReturn = UInt8(ascii: "\r")
let hash = UInt8(ascii: "#")
let openBrace = UInt8(ascii: "{")
let closeBrace = UInt8(ascii: "}")
let quote = UInt8(ascii: "\"")
let comma = UInt8(ascii: ",")
let equals = UInt8(ascii: "=")
