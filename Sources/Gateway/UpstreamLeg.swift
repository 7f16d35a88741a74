import GatewayCore
import NIOCore
import NIOHTTP1

/// One engine request of a client request (an attempt's answer leg or prefill leg): gets a
/// connection from the loop's pool, sends, and passes what comes back to its owner. A pooled
/// connection that turns out to be closed before any answer byte is replaced by a fresh one,
/// once, before the failure counts against the engine.
final class UpstreamLeg: UpstreamDelegate {
    let leg: Leg
    private let pool: UpstreamPool
    private let address: EngineAddress
    private let head: HTTPRequestHead
    private let body: ByteBuffer
    private weak var owner: RequestRun?
    private var connection: UpstreamConnection?
    private var dial: UpstreamPool.Dial?
    private var retriedOnFresh = false
    private var over = false

    init(leg: Leg, pool: UpstreamPool, address: EngineAddress, head: HTTPRequestHead, body: ByteBuffer, owner: RequestRun) {
        self.leg = leg
        self.pool = pool
        self.address = address
        self.head = head
        self.body = body
        self.owner = owner
    }

    func start(fresh: Bool = false) {
        dial = pool.acquire(address, fresh: fresh) { [self] result in
            dial = nil
            guard !over else {
                if case .success(let connection) = result { pool.checkIn(connection, reusable: true) }
                return
            }
            switch result {
            case .success(let connection):
                self.connection = connection
                connection.onIdle = { [weak self] connection, reusable in
                    guard let self else { return connection.abandon() }
                    if self.connection === connection { self.connection = nil }
                    self.pool.checkIn(connection, reusable: reusable)
                }
                owner?.legConnected(leg)
                connection.send(head, body: body, to: self)
            case .failure(let error):
                over = true
                owner?.legFailed(leg, .unreachable("cannot connect to \(address): \(error)"))
            }
        }
    }

    /// The owner let go of this leg: the connection closes, and the engine stops.
    func cancel() {
        over = true
        dial?.abandon()
        dial = nil
        connection?.abandon()
        connection = nil
    }

    func resume() { connection?.resume() }

    func upstreamHead(_ head: HTTPResponseHead) { owner?.legHead(leg, head) }
    func upstreamBody(_ buffer: ByteBuffer) { owner?.legBody(leg, buffer) }

    func upstreamEnd() {
        over = true
        owner?.legEnded(leg)
    }

    func upstreamFailed(_ why: String, beforeAnswer: Bool, reused: Bool) {
        connection = nil
        if beforeAnswer, reused, !retriedOnFresh, !over {
            // The engine closed an idle connection as we reused it: not the engine's fault.
            retriedOnFresh = true
            return start(fresh: true)
        }
        over = true
        owner?.legFailed(leg, beforeAnswer ? .unreachable(why) : .cut(why))
    }

    func upstreamWantsMore() -> Bool { owner?.legWantsMore(leg) ?? false }
}
