import FlowControl
import Testing

@Suite struct FlowControllerTests {
    let configuration = FlowConfiguration(
        tenants: [
            TenantPolicy(name: "chat", classRank: 0, maxConcurrent: 2),
            TenantPolicy(name: "jobs", classRank: 2, requestsPerMinute: 60),
        ],
        queueCapacity: 2)

    func ticket(_ id: UInt64, _ tenant: String?, rank: Int? = nil) -> FlowTicket {
        let index = configuration.tenant(named: tenant)
        return FlowTicket(id: id, tenant: index, classRank: rank ?? configuration.tenants[index].classRank, estimatedTokens: 100)
    }

    @Test func unknownClientsBelongToTheDefaultTenantInTheStandardClass() {
        #expect(configuration.tenants.last?.name == "default")
        #expect(configuration.tenant(named: "nobody") == configuration.defaultTenant)
        #expect(configuration.tenant(named: nil) == configuration.defaultTenant)
        #expect(configuration.tenants[configuration.defaultTenant].classRank == 1)
    }

    @Test func anArrivalWithNothingAheadProceedsAndOneBehindWaitersQueues() {
        var flow = FlowController(configuration: configuration, now: .zero)
        var job = ticket(1, "jobs")
        #expect(flow.arrive(&job, now: .zero) == (.proceed, nil))
        // The scheduler says wait (no engine has batch's headroom): it queues.
        #expect(flow.wait(&job, now: .zero) == nil)
        var other = ticket(2, "jobs")
        #expect(flow.arrive(&other, now: .zero) == (.queued, nil))
        // An interactive request goes straight on.
        var chat = ticket(3, "chat")
        #expect(flow.arrive(&chat, now: .zero) == (.proceed, nil))
    }

    @Test func aFullQueueShedsTheLowestClassAndTheSheddingArrivalIsAnswered() {
        var flow = FlowController(configuration: configuration, now: .zero)
        var a = ticket(1, "jobs"), b = ticket(2, "jobs"), c = ticket(3, nil), d = ticket(4, "jobs")
        _ = flow.arrive(&a, now: .zero)
        _ = flow.wait(&a, now: .zero)
        #expect(flow.arrive(&b, now: .zero) == (.queued, nil))
        // Full (2): a standard arrival waits too and sheds the newest batch request.
        _ = flow.arrive(&c, now: .zero)
        #expect(flow.wait(&c, now: .zero) == 2)
        // A batch arrival now is the one shed.
        #expect(flow.arrive(&d, now: .zero) == (.shed, nil))
        // Ended without reaching an engine, each gives its request back to the budget.
        for t in [b, d] { flow.finished(t, usedTokens: nil, now: .zero) }
        #expect(flow.ledgers[configuration.tenant(named: "jobs")].remaining(now: .zero).requests == 59)
    }

    @Test func aRefusedRequestIsNotAdmittedAndAFinishedOneFreesItsSlot() {
        var flow = FlowController(configuration: configuration, now: .zero)
        var a = ticket(1, "chat"), b = ticket(2, "chat"), c = ticket(3, "chat")
        _ = flow.arrive(&a, now: .zero)
        _ = flow.arrive(&b, now: .zero)
        #expect(flow.arrive(&c, now: .zero).0 == .refused(.concurrency(limit: 2), retryAfter: .seconds(1)))
        #expect(!c.admitted)
        flow.finished(c, usedTokens: nil, now: .zero)
        #expect(flow.ledgers[0].inFlight == 2)
        flow.served(&a)
        flow.finished(a, usedTokens: 80, now: .zero)
        #expect(flow.arrive(&c, now: .zero) == (.proceed, nil))
    }

    @Test func servingChargesTheEstimateAndTheEndCorrectsItToTheUsage() {
        var flow = FlowController(configuration: configuration, now: .zero)
        var a = ticket(1, "jobs")
        _ = flow.arrive(&a, now: .zero)
        flow.served(&a)
        flow.served(&a)
        #expect(flow.queue.counter(of: a.tenant) == 100)
        flow.finished(a, usedTokens: 250, now: .zero)
        #expect(flow.queue.counter(of: a.tenant) == 250)
    }

    @Test func aWokenRequestAsksInTheBandItHasAgedInto() {
        var flow = FlowController(configuration: configuration, now: .zero)
        var job = ticket(1, "jobs")
        _ = flow.arrive(&job, now: .zero)
        _ = flow.wait(&job, now: .zero)
        // Batch ages after half its time to live (30 s by default).
        let entry = FairQueue.Entry(id: 1, tenant: job.tenant, classRank: job.classRank, enqueued: .zero, cost: 0)
        #expect(flow.queue.band(of: entry, now: .seconds(16)) == 1)
        #expect(flow.next(now: .seconds(16)) == 1)
        // Told to wait again, it keeps its first place and age.
        _ = flow.wait(&job, now: .seconds(17))
        #expect(job.enqueued == .zero)
        #expect(flow.queue.band(of: entry, now: .seconds(17)) == 1)
    }

    /// A request woken to ask the scheduler still waits for an engine: it counts as waiting
    /// (overall and for its tenant) until it is back in the queue, sent, gone, or ended.
    @Test func aRequestAskingFromTheQueueStillCountsAsWaitingUntilItLeavesIt() {
        var flow = FlowController(configuration: configuration, now: .zero)
        let jobs = configuration.tenant(named: "jobs"), standard = configuration.defaultTenant
        var a = ticket(1, "jobs"), b = ticket(2, nil), c = ticket(3, "jobs")
        // Each asked first and was told to wait (a standard request goes before a batch one).
        #expect(flow.arrive(&a, now: .zero) == (.proceed, nil))
        _ = flow.wait(&a, now: .zero)
        #expect(flow.arrive(&b, now: .zero) == (.proceed, nil))
        _ = flow.wait(&b, now: .zero)
        #expect(flow.waitingCount == 2 && flow.queue.count == 2)
        // The standard request goes first; woken, it is off the queue but still waiting.
        #expect(flow.next(now: .zero) == 2)
        #expect(flow.queue.count == 1 && flow.waitingCount == 2)
        #expect(flow.waitingByTenant[standard] == 1 && flow.waitingByTenant[jobs] == 1)
        // Told to wait again: back in the queue, counted once.
        #expect(flow.wait(&b, now: .milliseconds(200)) == nil)
        #expect(flow.queue.count == 2 && flow.waitingCount == 2 && flow.asking.isEmpty)
        // Woken and sent: no longer waiting (served, whether or not it left the queue first).
        #expect(flow.next(now: .milliseconds(400)) == 2)
        flow.served(&b)
        #expect(flow.waitingCount == 1 && flow.waitingByTenant[standard] == 0)
        flow.leave(b)
        #expect(flow.waitingCount == 1)
        // Woken, then its client leaves: it ends and counts no more.
        #expect(flow.next(now: .milliseconds(600)) == 1)
        #expect(flow.waitingCount == 1)
        flow.finished(a, usedTokens: nil, now: .milliseconds(700))
        #expect(flow.waitingCount == 0 && flow.waitingByTenant[jobs] == 0)
        // Taken with nobody left to wake: forgotten.
        _ = flow.arrive(&c, now: .seconds(1))
        _ = flow.wait(&c, now: .seconds(1))
        #expect(flow.next(now: .seconds(1)) == 3)
        flow.forget(3)
        #expect(flow.waitingCount == 0)
    }

    /// A request woken to ask keeps its place against newcomers: one of its pool that it would
    /// have gone before queues behind it (before, it went straight on while the woken one asked,
    /// and could take the slot the wake was for); one of a higher class or another pool does not.
    /// If the woken one ends before it is sent, its wake is the next one's.
    @Test func aNewcomerDoesNotPassARequestWokenToAsk() {
        var flow = FlowController(configuration: configuration, now: .zero)
        var waiting = ticket(1, nil)
        #expect(flow.arrive(&waiting, now: .zero) == (.proceed, nil))
        _ = flow.wait(&waiting, now: .zero)
        #expect(flow.next(now: .milliseconds(200)) == 1)
        #expect(flow.queue.count == 0)
        // Same tenant, same class, same pool: behind it.
        var same = ticket(2, nil)
        #expect(flow.arrive(&same, now: .milliseconds(201)) == (.queued, nil))
        // A higher class goes first anyway; another pool never waits for this one.
        var chat = ticket(3, "chat")
        #expect(flow.arrive(&chat, now: .milliseconds(201)) == (.proceed, nil))
        var otherPool = FlowTicket(id: 4, tenant: configuration.defaultTenant, classRank: 1, estimatedTokens: 100, pool: "adapter")
        #expect(flow.arrive(&otherPool, now: .milliseconds(201)) == (.proceed, nil))
        // Sent, as the shell does it: it leaves the queue, still asking until it is counted
        // served; its end then passes nothing on (the shell wakes the next because it was sent).
        flow.leave(waiting)
        #expect(flow.asking[1] != nil)
        flow.served(&waiting)
        #expect(flow.asking.isEmpty)
        let sentPassesOn = flow.finished(waiting, usedTokens: 50, now: .milliseconds(300))
        #expect(!sentPassesOn)
        // The newcomer, woken in turn, ends before it is sent (leaves the queue, then ends): its
        // wake passes on, once.
        #expect(flow.next(now: .milliseconds(300)) == 2)
        flow.leave(same)
        let endedPassesOn = flow.finished(same, usedTokens: nil, now: .milliseconds(301))
        #expect(endedPassesOn)
        // Nothing asks now: a newcomer goes straight on again.
        var later = ticket(5, nil)
        #expect(flow.arrive(&later, now: .milliseconds(302)) == (.proceed, nil))
    }

    /// Held by the scheduler for a warming prefix, a woken request has had its turn: a newcomer
    /// no longer queues behind it; told to wait after the hold, it goes back to its first place.
    @Test func aWokenRequestHeldForAPrefixNoLongerHoldsBackNewcomers() {
        var flow = FlowController(configuration: configuration, now: .zero)
        var waiting = ticket(1, nil)
        _ = flow.arrive(&waiting, now: .zero)
        _ = flow.wait(&waiting, now: .zero)
        #expect(flow.next(now: .milliseconds(200)) == 1)
        let passesOn = flow.held(1)
        #expect(passesOn && flow.waitingCount == 0)
        var newcomer = ticket(2, nil)
        #expect(flow.arrive(&newcomer, now: .milliseconds(201)) == (.proceed, nil))
        // The newcomer was told to wait; the held one, told to wait after its hold, goes first.
        _ = flow.wait(&newcomer, now: .milliseconds(202))
        _ = flow.wait(&waiting, now: .milliseconds(400))
        #expect(waiting.enqueued == .zero)
        #expect(flow.next(now: .milliseconds(600)) == 1)
    }

    /// Fair share counts a woken request as if it had stayed: a tenant that was idle starts
    /// waiting at the counter of the one asking, not below it, so it does not pass it.
    @Test func anIdleTenantDoesNotPassAWokenRequestOnCreditSavedWhileIdle() {
        let twoTenants = FlowConfiguration(
            tenants: [TenantPolicy(name: "heavy", classRank: 1), TenantPolicy(name: "light", classRank: 1)], queueCapacity: 8)
        var flow = FlowController(configuration: twoTenants, now: .zero)
        func ticket(_ id: UInt64, _ name: String) -> FlowTicket {
            FlowTicket(id: id, tenant: twoTenants.tenant(named: name), classRank: 1, estimatedTokens: 100)
        }
        // Heavy has been served 1,000 tokens, light 100 (served last).
        for (id, name, used) in [(UInt64(1), "heavy", 1_000), (2, "light", 100)] {
            var served = ticket(id, name)
            #expect(flow.arrive(&served, now: .zero) == (.proceed, nil))
            flow.served(&served)
            _ = flow.finished(served, usedTokens: used, now: .zero)
        }
        #expect(flow.queue.counter(of: 0) == 1_000 && flow.queue.counter(of: 1) == 100)
        // Heavy's next request waits, and is woken to ask.
        var heavy = ticket(3, "heavy")
        _ = flow.arrive(&heavy, now: .milliseconds(10))
        _ = flow.wait(&heavy, now: .milliseconds(10))
        #expect(flow.next(now: .milliseconds(200)) == 3)
        // Light arrives while it asks. Had heavy stayed queued, light would start waiting at
        // heavy's counter and queue behind it (ties go to the one waiting); so it does now.
        var light = ticket(4, "light")
        #expect(flow.arrive(&light, now: .milliseconds(201)) == (.queued, nil))
    }
}
