import Raft
import RaftStore
import Scheduler
import Foundation
import Testing

/// A directory made empty at start: first start of the group, or a newcomer or wiped disk?
@Suite struct FirstStartDecisionTests {
    typealias D = FirstStartDecision

    @Test func onlyEveryConfiguredSchedulerFreshIsAFirstStart() {
        #expect(D.decide(me: 1, voters: [1, 2, 3], answers: [2: .fresh, 3: .fresh]) == .firstStart)
        #expect(D.decide(me: 1, voters: [1], answers: [:]) == .firstStart, "a group of one")
        // Two fresh of three is also two wiped disks while the third, holding the data, is down.
        #expect(D.decide(me: 1, voters: [1, 2, 3], answers: [2: .fresh]) == .wait)
        #expect(D.decide(me: 1, voters: [1, 2, 3, 4, 5], answers: [2: .fresh, 5: .fresh]) == .wait)
    }

    @Test func anyPeerHoldingDataMeansTheGroupExists() {
        #expect(D.decide(me: 1, voters: [1, 2, 3], answers: [2: .fresh, 3: .holdsData]) == .join(because: 3))
        #expect(D.decide(me: 3, voters: [1, 2, 3], answers: [1: .holdsData]) == .join(because: 1))
    }

    @Test func withoutEnoughAnswersItWaits() {
        #expect(D.decide(me: 1, voters: [1, 2, 3], answers: [:]) == .wait)
        #expect(D.decide(me: 1, voters: [1, 2, 3], answers: [9: .fresh]) == .wait, "an answer from outside the voters")
    }
}

@Suite struct NodeIdentityTests {
    @Test func theFileRoundTripsAndABadOneIsRefused() throws {
        let directory = NSTemporaryDirectory() + "junction-identity-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(try NodeIdentity.load(directory: directory) == nil)
        let identity = NodeIdentity(clusterName: "prod-eu", incarnation: 0x0123_4567_89ab_cdef, firstStart: true)
        try identity.save(directory: directory)
        #expect(try NodeIdentity.load(directory: directory) == identity)
        let text = try String(contentsOfFile: directory + "/identity", encoding: .utf8)
        #expect(text == "cluster=prod-eu\nincarnation=0123456789abcdef\nfirst_start=true\n")

        for bad in ["", "cluster=x\n", "cluster=x\nincarnation=0000000000000000\nfirst_start=true\n",
                    "cluster=x\nincarnation=12\nfirst_start=true\n", "cluster=x\nincarnation=0123456789abcdef\nfirst_start=maybe\n",
                    "cluster=x\nincarnation=0123456789abcdef\nfirst_start=true\nextra=1\n"] {
            #expect(NodeIdentity(encoded: Array(bad.utf8)) == nil, "\(bad)")
        }
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: directory + "/identity"))
        #expect(throws: RaftStoreError.self) { try NodeIdentity.load(directory: directory) }
    }
}
