import Crypto
import Foundation
import SwiftASN1
import Wire
import X509

/// A certificate authority made on the spot, for tests and benchmarks that run the wire with TLS:
/// it issues certificates naming a wire identity (`junction:ROLE:ID`), with whatever validity a
/// test needs (an expired one), and writes them as PEM files a config can point at.
public struct LocalPKI: Sendable {
    public let name: String
    public let certificatePEM: String
    private let key: P256.Signing.PrivateKey
    private let subject: DistinguishedName

    public init(name: String = "junction test CA") throws {
        self.name = name
        key = P256.Signing.PrivateKey()
        subject = try DistinguishedName { CommonName(name) }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: now - 3_600, notValidAfter: now + 7 * 86_400, issuer: subject, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(key))
        certificatePEM = try certificate.serializeAsPEM().pemString
    }

    public struct Issued: Sendable {
        public let certificatePEM: String
        public let keyPEM: String
    }

    /// A leaf certificate naming `identities` (and 127.0.0.1 / localhost, for HTTPS on loopback),
    /// valid from `notBefore` to `notAfter` (by default an hour ago to a week on).
    public func issue(
        identities: [CertificateIdentity], commonName: String? = nil, dnsNames: [String] = ["localhost"],
        notBefore: Date = Date() - 3_600, notAfter: Date = Date() + 7 * 86_400
    ) throws -> Issued {
        let leafKey = P256.Signing.PrivateKey()
        var names: [GeneralName] = identities.map { .uniformResourceIdentifier($0.uri) }
        names += dnsNames.map { .dnsName($0) }
        names.append(.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])))
        let leafName = try DistinguishedName { CommonName(commonName ?? identities.first?.uri ?? "junction") }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(leafKey.publicKey),
            notValidBefore: notBefore, notValidAfter: notAfter, issuer: subject, subject: leafName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                SubjectAlternativeNames(names)
            },
            issuerPrivateKey: .init(key))
        return Issued(certificatePEM: try certificate.serializeAsPEM().pemString, keyPEM: leafKey.pemRepresentation)
    }

    /// A `WireTLS` for `identity` under this CA (or another's `trusting` roots).
    public func wireTLS(for identity: CertificateIdentity, notAfter: Date = Date() + 7 * 86_400, trusting roots: String? = nil) throws -> WireTLS {
        let issued = try issue(identities: [identity], notAfter: notAfter)
        return try WireTLS(
            caPEM: Array((roots ?? certificatePEM).utf8), certificatePEM: Array(issued.certificatePEM.utf8), keyPEM: Array(issued.keyPEM.utf8))
    }

    /// Writes the CA certificate to `directory/ca.pem` and returns its path.
    @discardableResult
    public func writeCA(to directory: String) throws -> String {
        let path = directory + "/ca.pem"
        try certificatePEM.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Issues and writes `directory/NAME.pem` and `NAME.key`; returns their paths.
    @discardableResult
    public func write(_ identities: [CertificateIdentity], as name: String, to directory: String) throws -> (certificate: String, key: String) {
        let issued = try issue(identities: identities)
        let paths = (certificate: directory + "/\(name).pem", key: directory + "/\(name).key")
        try issued.certificatePEM.write(toFile: paths.certificate, atomically: true, encoding: .utf8)
        try issued.keyPEM.write(toFile: paths.key, atomically: true, encoding: .utf8)
        return paths
    }
}
