import ArgumentParser
import AsyncHTTPClient
import NIOSSL
import CtlViews
import Foundation
import Wire

#if canImport(Glibc)
import Glibc
#endif

/// `junction ctl top`: the trio, every engine's load and the gateways' modes, redrawn every
/// interval until Ctrl-C (or `--frames`). Each frame asks the trio for its status (the leader's
/// view) and each `--gateway` for its `/metrics`; what it shows is `TopView`'s.
struct CtlTop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top", abstract: "A live view of the trio, the engines' load and the gateways, refreshed until Ctrl-C.")
    @OptionGroup var target: CtlTarget
    @Option(name: .customLong("gateway"), help: "A gateway's base URL, e.g. http://127.0.0.1:8081 (repeatable): its mode and load.")
    var gateways: [String] = []
    @Option(name: .customLong("gateway-ca"), help: "A CA file (PEM) to verify https:// gateways with, instead of the system's roots.")
    var gatewayCA: String?
    @Option(help: "Seconds between frames.") var interval = 1.0
    @Option(help: "Draw this many frames, then exit (0: until Ctrl-C).") var frames = 0

    func validate() throws {
        guard interval >= 0.1 else { throw ValidationError("--interval must be at least 0.1 seconds") }
        guard frames >= 0 else { throw ValidationError("--frames must be 0 or more") }
        for url in gateways where URL(string: url)?.host == nil { throw ValidationError("--gateway '\(url)' is not a URL") }
    }

    func run() async throws {
        let client = try Self.httpClient(trusting: gatewayCA)
        let onTerminal = isatty(STDOUT_FILENO) != 0
        var previous: [String: (total: Double, at: Date)] = [:]
        var drawn = 0
        while frames == 0 || drawn < frames {
            let snapshot = await take(&previous, client: client)
            let lines = TopView.render(snapshot, width: onTerminal ? Self.terminalWidth() : 200)
            // On a terminal each frame replaces the last; into a file or pipe they follow each other.
            let frame = (onTerminal ? "\u{1B}[H\u{1B}[2J" : (drawn > 0 ? "\n" : "")) + lines.joined(separator: "\n") + "\n"
            FileHandle.standardOutput.write(Data(frame.utf8))
            drawn += 1
            if frames == 0 || drawn < frames { try await Task.sleep(for: .milliseconds(Int(interval * 1000))) }
        }
        if gatewayCA != nil { try? await client.shutdown() }
    }

    private func take(_ previous: inout [String: (total: Double, at: Date)], client: HTTPClient) async -> TopSnapshot {
        var status: StatusReply?
        var statusError: String?
        do { status = try await target.leaderStatus() } catch { statusError = "\(error)" }
        var rows: [TopSnapshot.Gateway] = []
        for url in gateways {
            let now = Date()
            let page = await Self.fetch(url + "/metrics", timeout: target.timeout, client: client)
            let (row, total) = TopView.gateway(url: url, page: page, previous: previous[url], now: now)
            if let total { previous[url] = (total, now) } else { previous[url] = nil }
            rows.append(row)
        }
        return TopSnapshot(status: status, statusError: statusError, gateways: rows, takenAt: Date())
    }

    /// The shared client, or with a CA file one that trusts it (the local cluster's, with TLS on).
    private static func httpClient(trusting caFile: String?) throws -> HTTPClient {
        guard let caFile else { return HTTPClient.shared }
        var tls = TLSConfiguration.makeClientConfiguration()
        do { tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile)) } catch {
            throw ValidationError("--gateway-ca \(caFile): not a PEM certificate: \(error)")
        }
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
    }

    private static func fetch(_ url: String, timeout: Double, client: HTTPClient) async -> String? {
        do {
            let response = try await client.execute(HTTPClientRequest(url: url), timeout: .milliseconds(Int64(timeout * 1000)))
            guard response.status == .ok else { return nil }
            return String(buffer: try await response.body.collect(upTo: 16 << 20))
        } catch {
            return nil
        }
    }

    private static func terminalWidth() -> Int {
        var size = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 20 else { return 120 }
        return Int(size.ws_col)
    }
}
