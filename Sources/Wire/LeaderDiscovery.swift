/// Which scheduler leads, from the status answers of the schedulers asked at once.
///
/// A client that finds its scheduler silent (a host cut off, a frozen process) asks every listed
/// scheduler in parallel instead of trying them one after another: on a real network a silent
/// host costs a whole connect timeout per try, and trying in turn can land on it again and
/// again. This is the rule that reads the answers; `LeaderClient.discoverLeader` asks.
public enum LeaderDiscovery {
    public typealias Target = ReconnectingWireClient.Target

    /// The scheduler to follow: the answers' highest term decides. In it, a node that says it
    /// leads is the leader (at the address it was asked at); otherwise the leader an answer of
    /// that term names, at the address its member list gives. Nil when the highest term has no
    /// known leader (an election under way) or nobody answered.
    ///
    /// A leader of an older term is never chosen: a node cut off while leading goes on saying it
    /// leads until it hears the newer term, and following it would keep a client on a node that
    /// cannot decide anything.
    public static func leader(from answers: [(asked: Target, status: StatusReply)]) -> Target? {
        guard let term = answers.map(\.status.term).max() else { return nil }
        let current = answers.filter { $0.status.term == term }
        if let leading = current.first(where: { $0.status.raftState == "leader" }) { return leading.asked }
        for answer in current where answer.status.leaderID != 0 {
            if let member = answer.status.members.first(where: { $0.id == answer.status.leaderID }),
                let target = Target(address: member.address)
            {
                return target
            }
        }
        return nil
    }

    /// The leader, once the answers so far already prove it, so that the asker need not wait
    /// for a silent scheduler's dial to time out: more than half of the `total` schedulers have
    /// answered and one of the highest term says it leads. A scheduler yet to answer cannot lead
    /// a newer term: its election would have needed votes from that majority, which is behind it.
    public static func settled(_ answers: [(asked: Target, status: StatusReply)], of total: Int) -> Target? {
        guard answers.count > total / 2, let term = answers.map(\.status.term).max() else { return nil }
        return answers.first { $0.status.term == term && $0.status.raftState == "leader" }?.asked
    }
}
