import ClusterConfig
import Foundation
import NIOSSL

/// HTTPS on the gateway's client side (`llm_gateway.tls`): the server's certificate chain and
/// key, read when the gateway starts. HTTP/1.1 is offered by ALPN (WebSocket upgrades ride on it).
struct FrontTLS: Sendable {
    let context: NIOSSLContext

    init(files: TLSFiles) throws(ConfigError) {
        let key = "llm_gateway.tls"
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(files.certificate)
            guard !chain.isEmpty else { throw ConfigError(key: "\(key).certificate", reason: "\(files.certificate) holds no certificate") }
            let privateKey = try NIOSSLPrivateKey(file: files.key, format: .pem)
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
            configuration.minimumTLSVersion = .tlsv12
            configuration.applicationProtocols = ["http/1.1"]
            // HTTP frames its bodies, so a closed connection is not a truncation risk: a closing
            // connection does not wait NIOSSL's default 5 s for the client's close_notify.
            configuration.shutdownTimeout = .seconds(1)
            context = try NIOSSLContext(configuration: configuration)
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError(key: key, reason: "cannot use \(files.certificate) and \(files.key): \(error)")
        }
    }

    func handler() -> NIOSSLServerHandler { NIOSSLServerHandler(context: context) }
}
