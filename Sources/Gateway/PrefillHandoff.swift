import AsyncHTTPClient
import Foundation
import GatewayCore
import HTTPTypes
import NIOCore
import Wire

/// pd-split's two hand-off flows (Docs/gateway.md): the client's request is computed on a prefill
/// instance and generated on a decode instance, driven the way each engine family's own proxies
/// drive it. The answer the client gets is the decode instance's.
extension ProxyAttempt {
    func handOff(from prefill: PrefillTarget, to decode: AnswerSource) async throws(BeginFailure) -> Opened {
        let prefillSide = prefillSide(prefill, route: decode.route)
        let opened: Opened
        do {
            switch prefill.flow {
            case .vllm: opened = try await vllmHandOff(prefillSide, to: decode)
            case .sglang: opened = try await sglangHandOff(prefill, prefillSide, to: decode)
            }
        } catch {
            gateway.metrics.handoff(flow: prefill.flow.rawValue, outcome: error.isPrefillFailure ? "prefill_failed" : "decode_failed")
            throw error
        }
        gateway.metrics.handoff(flow: prefill.flow.rawValue, outcome: "ok")
        return opened
    }

    /// The prefill instance of a pair, as an answer's source (for its Finish and its failures).
    func prefillSide(_ prefill: PrefillTarget, route: String) -> AnswerSource {
        AnswerSource(instance: InstanceRef(id: prefill.id, endpointURL: prefill.endpointURL, model: features.model, isUp: true), route: route)
    }

    /// vLLM's sequence (its NixlConnector proxies): the prefill instance computes the prompt and
    /// one token, unstreamed, and answers with `kv_transfer_params`; the decode instance gets the
    /// client's request with those parameters and the same `X-Request-Id`, and streams as asked.
    private func vllmHandOff(_ prefill: AnswerSource, to decode: AnswerSource) async throws(BeginFailure) -> Opened {
        let clientBody = Array(buffer: body)
        var legHeaders = headers
        // Unique per hand-off, as vLLM's own proxies make it: the prefill instance keeps the
        // prompt's blocks under this id until the decode instance reads them.
        legHeaders[HTTPField.Name("X-Request-Id")!] = UUID().uuidString.lowercased()
        let prefillBody: [UInt8]
        do { prefillBody = try HandoffBodies.vllmPrefill(clientBody) } catch {
            finish(prefill, outcome: .unspecified, usage: nil, firstByte: nil)
            throw .cutBeforeFirstByte("\(error)")
        }
        let response: HTTPClientResponse
        let answer: ByteBuffer
        do {
            response = try await gateway.upstream.send(
                method: method, path: path, headers: legHeaders, body: ByteBuffer(bytes: prefillBody), to: prefill.instance.endpointURL,
                dropAuthorization: !gateway.config.apiKeys.isEmpty)
            answer = try await response.body.collect(upTo: 64 << 20)
        } catch {
            throw prefillLegFailed(prefill, decode: decode, why: "\(error)")
        }
        let status = Int(response.status.code)
        if status >= 400 {
            if RetryPolicy.decide(status: status) == .retryElsewhere {
                throw prefillLegFailed(prefill, decode: decode, why: "answered HTTP \(status)")
            }
            // About the request, not the instance: the client gets the prefill instance's answer.
            finish(unprefilled(decode), outcome: .unspecified, usage: nil, firstByte: nil)
            return .whole(response, body: answer, prefill)
        }
        finish(prefill, outcome: .ok, usage: nil, firstByte: nil)
        var decodeBody = body
        if let params = HandoffBodies.kvTransferParams(fromAnswer: Array(buffer: answer)) {
            do { decodeBody = ByteBuffer(bytes: try HandoffBodies.vllmDecode(clientBody, kvTransferParams: params)) } catch {
                throw .cutBeforeFirstByte("\(error)")
            }
        } else {
            gateway.logger.warning(
                "the prefill instance answered without kv_transfer_params: the decode instance computes the prompt",
                metadata: ["prefill": "\(prefill.instance.id)"])
        }
        return try await begin(on: decode, body: decodeBody, headers: legHeaders)
    }

    /// How one leg of SGLang's pair ended.
    private enum Leg: Sendable {
        case prefillDone
        case prefillFailed(String)
        case prefillRefused(HTTPClientResponse, ByteBuffer)
        case decode(Result<Opened, BeginFailure>)
        /// The wait for the other leg is over.
        case patience
    }

    /// SGLang's pair (its mini_lb and router): the same request, with the prefill server's
    /// bootstrap address and a random room, goes to both at once; the decode server receives the
    /// KV through the room and answers. A prefill leg that fails first voids the pair.
    private func sglangHandOff(_ target: PrefillTarget, _ prefill: AnswerSource, to decode: AnswerSource) async throws(BeginFailure) -> Opened {
        let legBody: ByteBuffer
        do {
            legBody = ByteBuffer(
                bytes: try HandoffBodies.sglang(Array(buffer: body), host: target.host, port: target.bootstrapPort, room: HandoffBodies.randomRoom()))
        } catch {
            finish(prefill, outcome: .unspecified, usage: nil, firstByte: nil)
            throw .cutBeforeFirstByte("\(error)")
        }
        let outcome: Result<Opened, BeginFailure> = await withTaskGroup(of: Leg.self) { group in
            group.addTask { await self.sglangPrefillLeg(legBody, prefill) }
            group.addTask {
                do throws(BeginFailure) { return .decode(.success(try await self.begin(on: decode, body: legBody))) } catch {
                    return .decode(.failure(error))
                }
            }
            var opened: Opened?
            var decodeFailure: BeginFailure?
            var prefillDone = false
            // Whether the prefill leg's slot has been released: every way out releases it once.
            var prefillSettled = false
            var result: Result<Opened, BeginFailure>?
            while result == nil, let leg = await group.next() {
                switch leg {
                case .prefillDone:
                    prefillDone = true
                    prefillSettled = true
                    finish(prefill, outcome: .ok, usage: nil, firstByte: nil)
                    if let opened { result = .success(opened) } else if let decodeFailure { result = .failure(decodeFailure) }
                case .prefillFailed(let why):
                    prefillSettled = true
                    if let opened {
                        // The decode side already answers, so it has the KV: the prefill's own answer is not needed.
                        failed(prefill, outcome: .engineError)
                        result = .success(opened)
                    } else {
                        result = .failure(prefillLegFailed(prefill, decode: decode, why: why))
                    }
                case .prefillRefused(let response, let answer):
                    prefillSettled = true
                    if let opened {
                        // The decode side already answers: that answer stands.
                        finish(prefill, outcome: .clientError, usage: nil, firstByte: nil)
                        result = .success(opened)
                    } else {
                        finish(unprefilled(decode), outcome: .unspecified, usage: nil, firstByte: nil)
                        result = .success(.whole(response, body: answer, prefill))
                    }
                case .decode(.success(let begun)):
                    if prefillDone { result = .success(begun) } else {
                        opened = begun
                        group.addTask { await Self.patience() }
                    }
                case .decode(.failure(let failure)):
                    if prefillDone { result = .failure(failure) } else {
                        // It may have failed because the prefill leg did: hear that leg out, briefly.
                        decodeFailure = failure
                        group.addTask { await Self.patience() }
                    }
                case .patience:
                    if let opened {
                        result = .success(opened)
                    } else {
                        result = .failure(decodeFailure ?? .cutBeforeFirstByte("the hand-off ended without an answer"))
                    }
                }
            }
            group.cancelAll()
            if !prefillSettled {
                // The prefill leg was still running when the pair was decided (cancelled now).
                let outcome: FinishOutcome = Task.isCancelled ? .clientCancelled : opened != nil ? .ok : .unspecified
                finish(prefill, outcome: outcome, usage: nil, firstByte: nil)
            }
            return result ?? .failure(.cutBeforeFirstByte("the hand-off ended without an answer"))
        }
        return try outcome.get()
    }

    private static func patience() async -> Leg {
        try? await Task.sleep(for: .seconds(2))
        return .patience
    }

    private func sglangPrefillLeg(_ legBody: ByteBuffer, _ prefill: AnswerSource) async -> Leg {
        do {
            let response = try await gateway.upstream.send(
                method: method, path: path, headers: headers, body: legBody, to: prefill.instance.endpointURL,
                dropAuthorization: !gateway.config.apiKeys.isEmpty)
            let answer = try await response.body.collect(upTo: 64 << 20)
            let status = Int(response.status.code)
            if status >= 400 {
                return RetryPolicy.decide(status: status) == .retryElsewhere
                    ? .prefillFailed("answered HTTP \(status)") : .prefillRefused(response, answer)
            }
            return .prefillDone
        } catch {
            return .prefillFailed("\(error)")
        }
    }

    /// The prefill leg failed before the decode side began: the prefill instance is marked and
    /// both slots released, and the attempt is retried with another prefill instance.
    private func prefillLegFailed(_ prefill: AnswerSource, decode: AnswerSource, why: String) -> BeginFailure {
        if Task.isCancelled {
            // The client went away, which ended the leg: no instance is to blame.
            finish(prefill, outcome: .clientCancelled, usage: nil, firstByte: nil)
            finish(unprefilled(decode), outcome: .clientCancelled, usage: nil, firstByte: nil)
            return .prefillFailed("cancelled")
        }
        gateway.logger.warning("prefill leg failed", metadata: ["prefill": "\(prefill.instance.id)", "error": "\(why)"])
        failed(prefill, outcome: .engineError)
        finish(unprefilled(decode), outcome: .unspecified, usage: nil, firstByte: nil)
        return .prefillFailed(why)
    }

    /// The decode side's slot, released without an answer.
    private func unprefilled(_ decode: AnswerSource) -> AnswerSource {
        var source = decode
        source.prefill = nil
        return source
    }
}

extension ProxyAttempt.BeginFailure {
    var isPrefillFailure: Bool {
        if case .prefillFailed = self { return true }
        return false
    }
}
