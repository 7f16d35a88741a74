import Crypto

/// The cryptography of the Hello handshake (Docs/wire-protocol.md, "Handshake"). The dialling side
/// proves it holds the credential of the role and node id its Hello claims by an HMAC over the
/// accepting side's fresh nonce, so a recorded handshake cannot be replayed; the accepting side,
/// which derived that credential from the root secret, proves the same over the dialler's nonce,
/// so nobody without the root (or that very credential) can pose as a scheduler to it.
enum HandshakeProof {
    static let nonceBytes = 32

    static func makeNonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()  // getrandom(2) on Linux: cryptographically secure
        return (0..<nonceBytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    static func clientProof(secret: SymmetricKey, serverNonce: [UInt8], clientNonce: [UInt8], role: Role, nodeID: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: clientTranscript(serverNonce, clientNonce, role, nodeID), using: secret))
    }

    static func verifyClientProof(_ proof: [UInt8], secret: SymmetricKey, serverNonce: [UInt8], clientNonce: [UInt8], role: Role, nodeID: String) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(proof, authenticating: clientTranscript(serverNonce, clientNonce, role, nodeID), using: secret)
    }

    static func serverProof(secret: SymmetricKey, clientNonce: [UInt8], serverNonce: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: serverTranscript(clientNonce, serverNonce), using: secret))
    }

    static func verifyServerProof(_ proof: [UInt8], secret: SymmetricKey, clientNonce: [UInt8], serverNonce: [UInt8]) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(proof, authenticating: serverTranscript(clientNonce, serverNonce), using: secret)
    }

    private static func clientTranscript(_ serverNonce: [UInt8], _ clientNonce: [UInt8], _ role: Role, _ nodeID: String) -> [UInt8] {
        var bytes = Array("junction-hello-v2/client".utf8)
        bytes += serverNonce
        bytes += clientNonce
        let roleValue = UInt32(bitPattern: role.rawValue)
        bytes += [UInt8(roleValue >> 24), UInt8(truncatingIfNeeded: roleValue >> 16), UInt8(truncatingIfNeeded: roleValue >> 8), UInt8(truncatingIfNeeded: roleValue)]
        bytes += Array(nodeID.utf8)
        return bytes
    }

    private static func serverTranscript(_ clientNonce: [UInt8], _ serverNonce: [UInt8]) -> [UInt8] {
        Array("junction-hello-v2/server".utf8) + clientNonce + serverNonce
    }
}
