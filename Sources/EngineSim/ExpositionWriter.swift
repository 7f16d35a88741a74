/// Writes the Prometheus text format (version 0.0.4) the way Python's prometheus_client does,
/// which is what vLLM and SGLang serve: HELP and TYPE lines, labels sorted by name, floats
/// with a decimal point, histograms as cumulative `_bucket` lines then `_count` and `_sum`.
struct ExpositionWriter {
    private(set) var text = ""
    /// Labels every series carries (vLLM: engine and model_name; SGLang: model_name).
    let common: [(String, String)]
    /// Counters and histograms get a `<name>_created` gauge family when set, as vLLM's do.
    let createdTimestamp: Double?
    /// `/metrics?name[]=…`: only samples of these names are written, each family's HELP and TYPE
    /// only when one of its samples is (prometheus_client's restricted registry); nil: all.
    let only: Set<String>?
    /// A family's HELP and TYPE, held back until one of its samples passes `only`.
    private var pendingHeader: String?

    init(common: [(String, String)], createdTimestamp: Double?, only: Set<String>? = nil) {
        self.common = common
        self.createdTimestamp = createdTimestamp
        self.only = only
        text.reserveCapacity(only == nil ? 16_384 : 1_024)
    }

    mutating func gauge(_ name: String, _ help: String, _ value: Double, labels: [(String, String)] = []) {
        header(name, help, "gauge")
        sample(name, labels, value)
    }

    /// One gauge family with a series per label value.
    mutating func gauges(_ name: String, _ help: String, _ series: [([(String, String)], Double)]) {
        header(name, help, "gauge")
        for (labels, value) in series { sample(name, labels, value) }
    }

    /// `name` ends in `_total`.
    mutating func counter(_ name: String, _ help: String, _ series: [([(String, String)], Double)]) {
        header(name, help, "counter")
        for (labels, value) in series { sample(name, labels, value) }
        if let createdTimestamp {
            let created = String(name.dropLast("_total".count)) + "_created"
            header(created, help, "gauge")
            for (labels, _) in series { sample(created, labels, createdTimestamp) }
        }
    }

    mutating func counter(_ name: String, _ help: String, _ value: Double) {
        counter(name, help, [([], value)])
    }

    mutating func histogram(_ name: String, _ help: String, _ histogram: LatencyHistogram) {
        // Its bucket labels are formatted before a sample is looked at: skip the family at once.
        if let only, !["_bucket", "_count", "_sum", "_created"].contains(where: { only.contains(name + $0) }) { return }
        header(name, help, "histogram")
        for (bound, count) in zip(histogram.bounds, histogram.counts) {
            sample(name + "_bucket", [("le", format(bound))], Double(count))
        }
        sample(name + "_bucket", [("le", "+Inf")], Double(histogram.count))
        sample(name + "_count", [], Double(histogram.count))
        sample(name + "_sum", [], histogram.sum)
        if let createdTimestamp {
            header(name + "_created", help, "gauge")
            sample(name + "_created", [], createdTimestamp)
        }
    }

    private mutating func header(_ name: String, _ help: String, _ type: String) {
        let lines = "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        if only == nil { text += lines } else { pendingHeader = lines }
    }

    private mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
        if let only {
            // Skipped before any formatting: that is what a filtered scrape saves.
            guard only.contains(name) else { return }
            if let header = pendingHeader {
                text += header
                pendingHeader = nil
            }
        }
        text += name
        let all = (common + labels).sorted { $0.0 < $1.0 }
        if !all.isEmpty {
            text += "{"
            for (index, (key, value)) in all.enumerated() {
                if index > 0 { text += "," }
                text += key + "=\"" + escape(value) + "\""
            }
            text += "}"
        }
        text += " " + format(value) + "\n"
    }

    private func escape(_ value: String) -> String {
        // Label values rarely hold anything to escape: then they are written as they are.
        guard value.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\n") }) else {
            return value
        }
        var out = ""
        for character in value {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    /// Python's float repr as prometheus_client prints it: "4.0", "0.25", "1.795e+09", "+Inf".
    func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e16 { return String(Int64(value)) + ".0" }
        return "\(value)"
    }
}
