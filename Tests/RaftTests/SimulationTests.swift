import RaftSim
import XCTest

/// The simulator itself: it passes on the real implementation, and each injected bug makes it fail.
/// (CI also runs 2,000 seeds of the release build: `make test` calls raft-sim.)
final class SimulationTests: XCTestCase {
    func testSeedsPass() async {
        let summary = await SimulationRunner.run(firstSeed: 1, count: 6)
        XCTAssertEqual(summary.failed, 0, summary.description)
        XCTAssertGreaterThan(summary.committed, 300)
        XCTAssertGreaterThan(summary.crashes, 0)
    }

    /// Half the seeds have an operator moving nodes out and back in (remove, add as learner,
    /// promote) while the faults run; those changes must commit and every check still pass.
    func testSeedsWithMembershipChangesPassAndTheChangesCommit() {
        let results = runFirstFour { $0.membershipInterval != .max }
        XCTAssertGreaterThan(results.map(\.membershipChangesCommitted).reduce(0, +), 4, "changes proposed: they must also commit")
    }

    /// Runs the first four seeds of 1...60 that `where` picks; each must pass.
    private func runFirstFour(where picked: (SimParameters) -> Bool, file: StaticString = #filePath, line: UInt = #line) -> [SimResult] {
        let seeds = (1...60).map { SimParameters(seed: $0) }.filter(picked).prefix(4)
        XCTAssertEqual(seeds.count, 4, file: file, line: line)
        return seeds.map { params in
            let result = Simulation(params).run()
            XCTAssertNil(result.failure, "seed \(params.seed): \(result.failure ?? "")", file: file, line: line)
            return result
        }
    }

    /// On a quarter of the seeds crashes sometimes wipe a disk; the wiped node must not vote
    /// until the operator has replaced it, and every check still passes.
    func testSeedsWithWipedDisksPass() {
        let results = runFirstFour { $0.wipeRate > 0 }
        XCTAssertGreaterThan(results.map(\.wipes).reduce(0, +), 0, "some disks must be wiped")
    }

    /// Seeds that once failed, each for a reason now mended (Docs/raft.md): 302, a behind node on
    /// a fast clock restarting the up-to-date one's election timer; 7271, a candidate never told
    /// a higher term; 9399, a snapshot installed while a Ready was written, then undone by that
    /// Ready's older membership entries; 2937, a removed node raising a member's term for ever
    /// without check-quorum; 10718, the operator removing a voter while a wiped one was unclaimed;
    /// 48596, two voters whose restarts gave them the same election timeouts. Since that last fix
    /// changed restarted nodes' timers, 302, 7271 and 2937 no longer replay their old runs; the
    /// rules they found are pinned by unit tests (testRefusingABehindCandidate...,
    /// testAVoteRequestBelowOurTerm..., testMembershipChangesNeedCheckQuorum).
    func testSeedsThatOnceFailedPass() {
        for seed: UInt64 in [302, 7271, 9399, 2937, 10718, 48596] {
            let result = Simulation(SimParameters(seed: seed)).run()
            XCTAssertNil(result.failure, "seed \(seed): \(result.failure ?? "")")
        }
    }

    func testSameSeedReplaysExactly() {
        let a = Simulation(SimParameters(seed: 42)).run()
        let b = Simulation(SimParameters(seed: 42)).run()
        XCTAssertEqual(a.events, b.events)
        XCTAssertEqual(a.committed, b.committed)
        XCTAssertEqual(a.operations, b.operations)
    }

    /// Runs seeds until the checkers report the bug; fails if 60 seeds go by without it.
    func assertCaught(_ bug: InjectedBug, file: StaticString = #filePath, line: UInt = #line) async {
        let summary = await SimulationRunner.run(firstSeed: 1, count: 60, bug: bug, stopAfterFailures: 1)
        XCTAssertGreaterThan(summary.failed, 0, "the simulation missed the injected bug \(bug.rawValue)", file: file, line: line)
    }

    func testCheckerCatchesNodeThatForgetsItsVote() async { await assertCaught(.forgetVote) }
    func testCheckerCatchesAckBeforeSync() async { await assertCaught(.ackBeforeSync) }
    func testCheckerCatchesVotesWithoutUpToDateCheck() async { await assertCaught(.skipUpToDateCheck) }
    func testCheckerCatchesStaleAppendTruncation() async { await assertCaught(.truncateAtFirstEntry) }
    func testCheckerCatchesAWipedDiskVotingAgain() async { await assertCaught(.ignoreIncarnations) }
    // commit-previous-term needs the figure-8 interleaving, which random faults reach too rarely
    // for a fast test; ClassicBugTests.testFigure8PreviousTermEntryIsNotCommittedByCounting builds it.
}

final class LinearizabilityCheckerTests: XCTestCase {
    typealias Op = RegisterOperation

    func testSequentialHistory() {
        XCTAssertEqual(LinearizabilityChecker.check([
            Op(client: 0, kind: .put(1), call: 0, returned: 10),
            Op(client: 1, kind: .get(1), call: 20, returned: 30),
        ]), .linearizable)
    }

    func testStaleReadAfterWriteCompletedIsNotLinearizable() {
        XCTAssertEqual(LinearizabilityChecker.check([
            Op(client: 0, kind: .put(1), call: 0, returned: 10),
            Op(client: 0, kind: .put(2), call: 20, returned: 30),
            Op(client: 1, kind: .get(1), call: 40, returned: 50),
        ]), .notLinearizable)
    }

    func testConcurrentReadMaySeeEitherValue() {
        for seen: UInt64 in [1, 2] {
            XCTAssertEqual(LinearizabilityChecker.check([
                Op(client: 0, kind: .put(1), call: 0, returned: 10),
                Op(client: 0, kind: .put(2), call: 20, returned: 60),
                Op(client: 1, kind: .get(seen), call: 30, returned: 40),
            ]), .linearizable)
        }
    }

    func testUnknownWriteMayTakeEffectLate() {
        XCTAssertEqual(LinearizabilityChecker.check([
            Op(client: 0, kind: .put(1), call: 0, returned: nil),
            Op(client: 1, kind: .get(0), call: 100, returned: 110),
            Op(client: 1, kind: .get(1), call: 200, returned: 210),
        ]), .linearizable)
        // ...but once seen, it cannot be unseen.
        XCTAssertEqual(LinearizabilityChecker.check([
            Op(client: 0, kind: .put(1), call: 0, returned: nil),
            Op(client: 1, kind: .get(1), call: 100, returned: 110),
            Op(client: 1, kind: .get(0), call: 200, returned: 210),
        ]), .notLinearizable)
    }

    func testReadOfValueNeverWritten() {
        XCTAssertEqual(LinearizabilityChecker.check([
            Op(client: 1, kind: .get(7), call: 0, returned: 10),
        ]), .notLinearizable)
    }
}
