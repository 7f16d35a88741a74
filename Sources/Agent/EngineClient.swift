import AgentCore
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import PromText

/// The agent's HTTP view of its engine: `/metrics`, `/health`, `/v1/models`. Every call has a
/// deadline, so a wedged engine reads as unreachable instead of stalling the agent.
struct EngineClient: Sendable {
    let baseURL: String
    let timeout: TimeAmount
    let http: HTTPClient

    enum Failure: Error, CustomStringConvertible {
        /// No answer: refused, reset, timed out.
        case unreachable(String)
        /// An `https` engine whose TLS handshake fails: its certificate does not verify with
        /// `agent.engine_ca` (or the system's roots), or it does not speak TLS. Not transient.
        case tls(String)
        /// An answer other than 200.
        case status(Int)
        case malformed(String)

        var description: String {
            switch self {
            case .unreachable(let why): "unreachable: \(why)"
            case .tls(let why): "TLS handshake failed (check agent.engine_ca and the engine's certificate): \(why)"
            case .status(let code): "answered HTTP \(code)"
            case .malformed(let why): "malformed answer: \(why)"
            }
        }
    }

    func get(_ path: String, limit: Int = 16 << 20) async throws(Failure) -> ByteBuffer {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .GET
        let response: HTTPClientResponse
        do { response = try await http.execute(request, timeout: timeout) } catch {
            if error is NIOSSLError || error is BoringSSLError { throw .tls("\(error)") }
            throw .unreachable("\(error)")
        }
        let body: ByteBuffer
        do { body = try await response.body.collect(upTo: limit) } catch { throw .unreachable("reading the body: \(error)") }
        guard response.status.code == 200 else { throw .status(Int(response.status.code)) }
        return body
    }

    /// `path`: `/metrics`, or the filtered page `MetricsQuery` asks for.
    func scrape(_ path: String = "/metrics") async throws(Failure) -> Exposition {
        let body = try await get(path)
        do { return try PromTextParser.parse(Array(body.readableBytesView)) } catch { throw .malformed(error.description) }
    }

    func scrapeResult(_ path: String = "/metrics") async -> Result<Exposition, Failure> {
        do { return .success(try await scrape(path)) } catch { return .failure(error) }
    }

    /// Whether anything accepts TCP connections at the engine's address. A refusal is certain
    /// and immediate, where an HTTP request to a dead engine waits out its whole deadline (the
    /// HTTP client retries connecting until then).
    func acceptsConnections() async -> Bool {
        guard let url = URL(string: baseURL), let host = url.host else { return false }
        let port = url.port ?? (url.scheme == "https" ? 443 : 80)
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(timeout)
                .connect(host: host, port: port).get()
            try? await channel.close()
            return true
        } catch {
            return false
        }
    }

    func probeHealth() async -> HealthTracker.Probe {
        do {
            _ = try await get("/health", limit: 1 << 16)
            return .ok
        } catch {
            if case .unreachable = error { return .unreachable }
            return .failed
        }
    }

    /// `/v1/models`: each model's id, owner and (vLLM, for a LoRA adapter) parent.
    func models() async throws(Failure) -> [(entry: ServedModels.Entry, ownedBy: String)] {
        let body = try await get("/v1/models", limit: 4 << 20)
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
            let list = object["data"] as? [[String: Any]]
        else { throw .malformed("/v1/models is not an OpenAI model list") }
        return list.compactMap { entry in
            (entry["id"] as? String).map { (ServedModels.Entry(id: $0, parent: entry["parent"] as? String), entry["owned_by"] as? String ?? "") }
        }
    }

    /// SGLang answers `/get_model_info`; the others do not.
    func answersSGLangModelInfo() async -> Bool {
        (try? await get("/get_model_info", limit: 1 << 16)) != nil
    }
}
