import Testing
import Wire

/// The rule that reads the status answers of every scheduler asked at once.
@Suite struct LeaderDiscoveryTests {
    typealias Target = LeaderDiscovery.Target
    static let nodes = [1, 2, 3].map { Target(host: "10.0.0.\($0)", port: 7100) }
    static let members = (1...3).map { MemberStatus(id: UInt64($0), address: "10.0.0.\($0):7100") }

    static func answer(_ node: Int, _ term: UInt64, _ state: String, _ leader: UInt64) -> (asked: Target, status: StatusReply) {
        (nodes[node - 1], StatusReply(nodeID: UInt64(node), leaderID: leader, term: term, raftState: state, members: members))
    }

    @Test func theNodeThatLeadsTheHighestTermIsFollowed() {
        let answers = [Self.answer(1, 4, "follower", 3), Self.answer(3, 4, "leader", 3)]
        #expect(LeaderDiscovery.leader(from: answers) == Self.nodes[2])
    }

    @Test func aLeaderOfAnOlderTermIsNotFollowed() {
        // Node 1 was cut off while leading term 3: it still says so; nodes 2 and 3 moved on.
        let answers = [Self.answer(1, 3, "leader", 1), Self.answer(2, 4, "leader", 2),
                       Self.answer(3, 4, "follower", 2)]
        #expect(LeaderDiscovery.leader(from: answers) == Self.nodes[1])
    }

    @Test func aLeaderOnlyNamedByAFollowerIsFoundAtItsMemberAddress() {
        // The leader itself did not answer in time; the follower's member list says where it is.
        let answers = [Self.answer(1, 5, "follower", 2), Self.answer(3, 5, "follower", 2)]
        #expect(LeaderDiscovery.leader(from: answers) == Target(host: "10.0.0.2", port: 7100))
    }

    @Test func anElectionUnderWayInTheHighestTermFindsNobody() {
        let answers = [Self.answer(1, 3, "leader", 1), Self.answer(2, 4, "candidate", 0),
                       Self.answer(3, 4, "follower", 0)]
        #expect(LeaderDiscovery.leader(from: answers) == nil)
    }

    @Test func noAnswersFindNobody() {
        #expect(LeaderDiscovery.leader(from: []) == nil)
    }

    @Test func aNamedLeaderMissingFromTheMemberListIsNotGuessed() {
        let lonely = (Self.nodes[0], StatusReply(nodeID: 1, leaderID: 9, term: 2, raftState: "follower", members: Self.members))
        #expect(LeaderDiscovery.leader(from: [lonely]) == nil)
    }
}

/// When a discovery may stop waiting for the schedulers that have not answered yet.
@Suite struct LeaderDiscoverySettledTests {
    typealias Answer = (asked: LeaderDiscovery.Target, status: StatusReply)
    static let answer = LeaderDiscoveryTests.answer

    @Test func aMajorityWithTheLeaderAmongItSettles() {
        let answers: [Answer] = [Self.answer(2, 6, "leader", 2), Self.answer(3, 6, "follower", 2)]
        #expect(LeaderDiscovery.settled(answers, of: 3) == LeaderDiscoveryTests.nodes[1])
    }

    @Test func theLeaderAloneDoesNotSettle() {
        // One of three: a scheduler yet to answer may lead a newer term.
        #expect(LeaderDiscovery.settled([Self.answer(2, 6, "leader", 2)], of: 3) == nil)
    }

    @Test func aMajorityOfFollowersDoesNotSettle() {
        // They name a leader, but it has not answered itself: wait for it (or the budget).
        let answers: [Answer] = [Self.answer(1, 6, "follower", 2), Self.answer(3, 6, "follower", 2)]
        #expect(LeaderDiscovery.settled(answers, of: 3) == nil)
    }

    @Test func aLeaderOfAnOlderTermDoesNotSettle() {
        let answers: [Answer] = [Self.answer(1, 5, "leader", 1), Self.answer(3, 6, "candidate", 0)]
        #expect(LeaderDiscovery.settled(answers, of: 3) == nil)
    }
}
