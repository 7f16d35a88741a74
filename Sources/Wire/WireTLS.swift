import NIOCore
import NIOSSL

/// Mutual TLS on the wire (`cluster.tls`): every connection is encrypted, both sides present a
/// certificate of the cluster's CA, and the identity a certificate names (the URI
/// `junction:ROLE:NODE-ID` among its subject alternative names, `CertificateIdentity`) must be
/// the role and node id its holder's Hello claims. Host names are not checked: a peer is known
/// by the identity its certificate names, not by the address it is reached at (pods move, and
/// the local cluster's peers are reached through relays).
///
/// TLS does not replace the credential handshake: both must pass, so a stolen certificate
/// without its credential, or a credential without a certificate, gets nowhere.
public struct WireTLS: Sendable {
    let server: NIOSSLContext
    let client: NIOSSLContext
    /// What this process's own certificate names.
    public let ownIdentities: [CertificateIdentity]

    /// `ca`: the cluster CA's certificate(s); `certificate`: this process's chain, its own first.
    public init(caPEM: [UInt8], certificatePEM: [UInt8], keyPEM: [UInt8]) throws(WireTLSError) {
        let roots: [NIOSSLCertificate]
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do { roots = try NIOSSLCertificate.fromPEMBytes(caPEM) } catch { throw WireTLSError("the CA is not a PEM certificate: \(error)") }
        do { chain = try NIOSSLCertificate.fromPEMBytes(certificatePEM) } catch { throw WireTLSError("the certificate is not PEM: \(error)") }
        do { key = try NIOSSLPrivateKey(bytes: keyPEM, format: .pem) } catch { throw WireTLSError("the key is not a PEM private key: \(error)") }
        guard !roots.isEmpty else { throw WireTLSError("the CA file holds no certificate") }
        guard let own = chain.first else { throw WireTLSError("the certificate file holds no certificate") }
        ownIdentities = (try? CertificateIdentity.named(inDER: own.toDERBytes())) ?? []

        var serverSide = TLSConfiguration.makeServerConfigurationWithMTLS(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key), trustRoots: .certificates(roots))
        serverSide.minimumTLSVersion = .tlsv13
        // Frames are length-prefixed, so a connection's end needs no close_notify round trip to
        // be safe; waiting NIOSSL's default 5 s for one held a client retargeted to a new leader.
        serverSide.shutdownTimeout = Self.shutdownTimeout
        var clientSide = TLSConfiguration.makeClientConfiguration()
        clientSide.certificateChain = chain.map { .certificate($0) }
        clientSide.privateKey = .privateKey(key)
        clientSide.trustRoots = .certificates(roots)
        clientSide.certificateVerification = .noHostnameVerification
        clientSide.minimumTLSVersion = .tlsv13
        clientSide.shutdownTimeout = Self.shutdownTimeout
        do {
            server = try NIOSSLContext(configuration: serverSide)
            client = try NIOSSLContext(configuration: clientSide)
        } catch {
            throw WireTLSError("the certificate and key do not make a TLS context (does the key belong to the certificate?): \(error)")
        }
    }

    static let shutdownTimeout = TimeAmount.milliseconds(100)

    /// The TLS handler that goes first in a connection's pipeline.
    func handler(side: WireConnectionHandler.Side) throws -> NIOSSLHandler {
        switch side {
        case .server: NIOSSLServerHandler(context: server)
        case .client: try NIOSSLClientHandler(context: client, serverHostname: nil)
        }
    }

    /// What the verified peer certificate on this pipeline names; nil when there is none.
    static func peerIdentities(_ pipeline: ChannelPipeline.SynchronousOperations) -> [CertificateIdentity]? {
        guard let certificate = try? pipeline.nioSSL_peerCertificate(), let der = try? certificate.toDERBytes() else { return nil }
        return (try? CertificateIdentity.named(inDER: der)) ?? []
    }
}

public struct WireTLSError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
