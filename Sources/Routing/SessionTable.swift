/// Which instance served each conversation last, by the session key its requests carry (the
/// OpenAI `user` field or an `x-session-id` header): the leader's memory for session affinity.
///
/// Bounded in two generations: entries go into the newer one; when it holds half the capacity it
/// becomes the older one and the oldest generation is forgotten. A session seen again is written
/// into the newer generation, so active conversations stay; O(1) without a list to maintain.
/// Soft state: a new leader starts empty, and a conversation's next turn goes where the policy
/// sends it anyway.
public struct SessionTable: Sendable {
    public let capacity: Int
    private var newer: [String: String] = [:]
    private var older: [String: String] = [:]

    public init(capacity: Int = 200_000) { self.capacity = max(2, capacity) }

    public func instance(of session: String) -> String? { newer[session] ?? older[session] }

    public var count: Int { newer.count + older.count }

    public mutating func record(_ session: String, on instance: String) {
        guard !session.isEmpty else { return }
        newer[session] = instance
        if newer.count >= capacity / 2 {
            older = newer
            newer = [:]
        }
    }
}
