/// A scheduler's id when `--id` is not given: from its host's name, as a StatefulSet names its
/// pods (`junction-scheduler-0`, `-1`, `-2`). Raft ids are positive, ordinals start at 0, so
/// the pod with ordinal N is scheduler N+1: every pod runs the same command, and a pod that is
/// rescheduled keeps its name, so its id and its volume.
public enum SchedulerIDFromHostname {
    /// The id for `hostname` (`NAME-N` → N+1; a fully qualified name counts by its first label),
    /// or nil when it does not end in `-N`.
    public static func id(_ hostname: String) -> UInt64? {
        let label = hostname.split(separator: ".", maxSplits: 1).first ?? ""
        guard let dash = label.lastIndex(of: "-"), dash > label.startIndex else { return nil }
        let digits = label[label.index(after: dash)...]
        guard !digits.isEmpty, digits.count <= 9, digits.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
              let ordinal = UInt64(digits) else { return nil }
        return ordinal + 1
    }
}
