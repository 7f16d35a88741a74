import AsyncHTTPClient
import Foundation
import NIOCore

/// A decode instance's side of the hand-off: asks the prefill instance for a computed prompt's
/// KV over the simulator's own side channel (`POST /junction/kv_pull` on the prefill instance,
/// standing in for NIXL or Mooncake), then the caller waits out the transfer time.
struct KVFetch: Sendable {
    enum Failure: Error, CustomStringConvertible {
        case unreachable(String)
        case notThere(String)
        var description: String {
            switch self {
            case .unreachable(let why): "the prefill instance could not be reached: \(why)"
            case .notThere(let why): "the prefill instance has no KV for this request: \(why)"
            }
        }
    }

    let client: HTTPClient

    /// Fails at once on a refused connection (a dead prefill instance), where the default client
    /// would keep retrying until its connect timeout.
    static func makeClient() -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(1), read: nil)
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    func fetch(host: String, port: Int, transfer: String, wait: Duration) async throws(Failure) -> HandoffLedger.Prefilled {
        var request = HTTPClientRequest(url: "http://\(host):\(port)/junction/kv_pull")
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        let waitMilliseconds = Int(wait / .milliseconds(1))
        request.body = .bytes(ByteBuffer(string: "{\"transfer\":\(JSONText.string(transfer)),\"wait_ms\":\(waitMilliseconds)}"))
        let body: ByteBuffer
        let status: UInt
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64(waitMilliseconds) + 5_000))
            status = response.status.code
            body = try await response.body.collect(upTo: 1 << 16)
        } catch {
            throw .unreachable("\(error)")
        }
        let text = String(buffer: body)
        guard status == 200 else { throw .notThere("HTTP \(status): \(text)") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let blocks = object["blocks"].flatMap(JSONValue.int), let tokens = object["tokens"].flatMap(JSONValue.int)
        else { throw .notThere("unreadable answer: \(text)") }
        return HandoffLedger.Prefilled(blocks: blocks, tokens: tokens)
    }
}
