/// One scraped `/metrics` page, parsed: the metric families in the order they appeared, each
/// with its declared type, help text and samples.
public struct Exposition: Sendable, Equatable {
    public var families: [MetricFamily]

    public init(families: [MetricFamily] = []) { self.families = families }

    /// Every sample whose name is exactly `name` (e.g. `vllm:prompt_tokens_total`), from any family.
    public func samples(named name: String) -> [Sample] {
        families.flatMap { family in family.samples.filter { $0.name == name } }
    }

    public func family(_ name: String) -> MetricFamily? { families.first { $0.name == name } }
}

public struct MetricFamily: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        case counter, gauge, histogram, summary, untyped, info, stateset, gaugehistogram, unknown
    }

    public var name: String
    public var kind: Kind
    public var help: String?
    public var samples: [Sample]

    public init(name: String, kind: Kind = .untyped, help: String? = nil, samples: [Sample] = []) {
        self.name = name
        self.kind = kind
        self.help = help
        self.samples = samples
    }
}

public struct Sample: Sendable, Equatable {
    public var name: String
    public var labels: [Label]
    public var value: Double
    /// Milliseconds since the epoch in the classic format; seconds (possibly fractional) in OpenMetrics.
    public var timestamp: Double?
    public var exemplar: Exemplar?

    public init(name: String, labels: [Label] = [], value: Double, timestamp: Double? = nil, exemplar: Exemplar? = nil) {
        self.name = name
        self.labels = labels
        self.value = value
        self.timestamp = timestamp
        self.exemplar = exemplar
    }

    public func label(_ name: String) -> String? { labels.first { $0.name == name }?.value }

    /// NaN == NaN here, so that parsed expositions compare as the text they came from.
    public static func == (lhs: Sample, rhs: Sample) -> Bool {
        lhs.name == rhs.name && lhs.labels == rhs.labels && sameNumber(lhs.value, rhs.value)
            && lhs.timestamp == rhs.timestamp && lhs.exemplar == rhs.exemplar
    }
}

public struct Label: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

public struct Exemplar: Sendable, Equatable {
    public var labels: [Label]
    public var value: Double
    public var timestamp: Double?

    public init(labels: [Label], value: Double, timestamp: Double? = nil) {
        self.labels = labels
        self.value = value
        self.timestamp = timestamp
    }

    public static func == (lhs: Exemplar, rhs: Exemplar) -> Bool {
        lhs.labels == rhs.labels && sameNumber(lhs.value, rhs.value) && lhs.timestamp == rhs.timestamp
    }
}

func sameNumber(_ a: Double, _ b: Double) -> Bool { a == b || (a.isNaN && b.isNaN) }

/// What was wrong, and where (1-based line and column of the byte that could not be read).
public struct PromTextError: Error, Equatable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var reason: String
    public var description: String { "metrics text line \(line), column \(column): \(reason)" }
}
