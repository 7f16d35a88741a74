import FlowControl
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import Gateway

/// The shell of flow control wakes each waiting request once per slot: counted here through the
/// calls `RequestRun` makes, in its order (it leaves the queue, then is counted served or ends).
@Suite struct FlowGateTests {
    /// Which requests were woken, in order.
    final class Wakes: Sendable {
        private let woken = Mutex<[UInt64]>([])
        func handler(_ id: UInt64) -> @Sendable (FlowGate.Wake) -> Void {
            { wake in if case .turn = wake { self.woken.withLock { $0.append(id) } } }
        }
        var ids: [UInt64] { woken.withLock { $0 } }
    }

    let loop = EmbeddedEventLoop()
    let wakes = Wakes()
    let gate = FlowGate(
        configuration: FlowConfiguration(queueCapacity: 16), metrics: GatewayMetrics(), clock: { .seconds(1) })

    /// A request in the queue: the first asked and was told to wait, the others queue behind it.
    func queued(_ id: UInt64) -> FlowTicket {
        let tenant = gate.configuration.defaultTenant
        var ticket = FlowTicket(id: id, tenant: tenant, classRank: gate.configuration.tenants[tenant].classRank, estimatedTokens: 100)
        switch gate.arrive(&ticket, on: loop, wake: wakes.handler(id)) {
        case .proceed: #expect(gate.wait(&ticket, on: loop, wake: wakes.handler(id)))
        case let other: #expect(other == .queued)
        }
        return ticket
    }

    /// Three requests queued and a capacity signal for one: the first is woken.
    func firstOfThreeWoken() -> FlowTicket {
        let first = queued(1)
        _ = (queued(2), queued(3))
        gate.signal(slots: 1, model: "")
        loop.run()
        #expect(wakes.ids == [1])
        return first
    }

    /// Sent after it was woken: the next is woken once, not once for leaving the queue and again
    /// for being sent.
    @Test func aWokenRequestSentWakesTheNextOnce() {
        var a = firstOfThreeWoken()
        gate.leave(a)
        gate.served(&a, wasWoken: true)
        loop.run()
        #expect(wakes.ids == [1, 2])
        gate.finished(a, usedTokens: 150)
        loop.run()
        #expect(wakes.ids == [1, 2])
    }

    /// A woken request that ends before it is sent gives its wake to the next, once.
    @Test func aWokenRequestThatEndsPassesItsWakeOn() {
        let a = firstOfThreeWoken()
        gate.leave(a)
        gate.finished(a, usedTokens: nil)
        loop.run()
        #expect(wakes.ids == [1, 2])
    }

    /// Held by the leader for a warming prefix, a woken request gives the room it was woken for
    /// to the next; sent after the hold (no longer counted as woken), it wakes nobody more.
    @Test func aWokenRequestHeldPassesItsWakeOnAndItsSendWakesNobody() {
        var a = firstOfThreeWoken()
        gate.held(a)
        loop.run()
        #expect(wakes.ids == [1, 2])
        gate.served(&a, wasWoken: false)
        loop.run()
        #expect(wakes.ids == [1, 2])
    }
}
