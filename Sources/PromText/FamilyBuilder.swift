/// Collects samples into families while the parser reads.
struct FamilyBuilder {
    private(set) var families: [MetricFamily] = []
    private var index: [String: Int] = [:]
    /// Families named by a TYPE or HELP line, which samples with a suffix may join.
    private var declared: Set<String> = []
    private var typed: [String: MetricFamily.Kind] = [:]

    mutating func declare(_ name: String, help: String) {
        families[slot(name)].help = help
        declared.insert(name)
    }

    mutating func declare(_ name: String, kind: MetricFamily.Kind, at cursor: Cursor) throws(PromTextError) {
        if let earlier = typed[name], earlier != kind { throw cursor.error("'\(name)' was declared \(earlier.rawValue) before") }
        typed[name] = kind
        families[slot(name)].kind = kind
        declared.insert(name)
    }

    mutating func add(_ sample: Sample) {
        families[slot(familyName(of: sample.name))].samples.append(sample)
    }

    /// The declared family a sample belongs to: its own name, or its name without the suffix its
    /// family's type adds; else its own name as a new untyped family.
    private func familyName(of sample: String) -> String {
        if declared.contains(sample) { return sample }
        for suffix in Self.suffixes where sample.hasSuffix(suffix) {
            let base = String(sample.dropLast(suffix.count))
            if declared.contains(base) { return base }
        }
        return sample
    }

    private static let suffixes = ["_bucket", "_count", "_sum", "_total", "_created", "_gcount", "_gsum", "_info"]

    private mutating func slot(_ name: String) -> Int {
        if let slot = index[name] { return slot }
        families.append(MetricFamily(name: name))
        index[name] = families.count - 1
        return families.count - 1
    }
}
