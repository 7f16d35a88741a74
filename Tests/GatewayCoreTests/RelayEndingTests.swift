import GatewayCore
import Synchronization
import Testing

@Suite struct RelayEndingTests {
    @Test func aRelayedBodyEndsOnceAsRelayed() {
        let ends = Mutex<[Bool]>([])
        do {
            let ending = RelayEnding { relayed in ends.withLock { $0.append(relayed) } }
            ending.relayed()
            ending.relayed()
        }
        #expect(ends.withLock { $0 } == [true])
    }

    @Test func aBodyDroppedWithoutRunningStillEndsTheRequest() {
        let ends = Mutex<[Bool]>([])
        do {
            let ending = RelayEnding({ relayed in ends.withLock { $0.append(relayed) } })
            let body: @Sendable () -> Void = { ending.relayed() }
            _ = body  // never run, as when the server drops the response body
        }
        #expect(ends.withLock { $0 } == [false])
    }
}
