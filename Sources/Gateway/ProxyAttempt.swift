import AsyncHTTPClient
import Foundation
import GatewayCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization
import Wire

/// One client request on its way through the gateway: where it may go, what failed, and the
/// answer it ends with. Tries up to `1 + retry_count` instances; an instance that cannot serve
/// (no connection, 5xx, 429) before any byte reached the client is excluded and the next one
/// asked for; a 4xx goes to the client as the engine wrote it.
struct ProxyAttempt {
    let gateway: GatewayState
    let method: HTTPRequest.Method
    /// Path and query, as the client asked.
    let path: String
    let headers: HTTPFields
    let body: ByteBuffer
    let features: RequestFeatures
    let requestID: String
    let started = ContinuousClock.now

    /// The answer for an HTTP client. Counts the request in flight from here until its answer's
    /// last byte (or its error).
    func run() async throws(OpenAIError) -> Response {
        gateway.metrics.requestStarted()
        let opened: Opened
        do { opened = try await open() } catch {
            gateway.metrics.requestEnded()
            throw error
        }
        switch opened {
        case .whole(let response, let body, let source):
            defer { gateway.metrics.requestEnded() }
            return whole(response, body: body, from: source)
        case .stream(let response, let first, let rest, let source):
            return relay(response, first: first, rest: rest, from: source)
        }
    }

    /// Where an answer comes from: the instance answering, how it was chosen, and (pd-split) the
    /// prefill instance that computed its prompt.
    struct AnswerSource: Sendable {
        var instance: InstanceRef
        var route: String
        var prefill: String? = nil
    }

    /// An engine's answer that has begun: nothing of it has reached the client yet.
    enum Opened: Sendable {
        /// A non-streaming answer, read whole.
        case whole(HTTPClientResponse, body: ByteBuffer, AnswerSource)
        /// An event stream whose first chunk has arrived (nil: the engine ended it at once).
        case stream(HTTPClientResponse, first: ByteBuffer?, rest: Handover<HTTPClientResponse.Body.AsyncIterator>, AnswerSource)
    }

    /// The first engine answer worth giving the client, after retries. An engine that fails
    /// before the first byte of its answer could reach the client (no connection, 5xx, 429, a
    /// non-streaming body cut short, a stream cut before its first chunk) is excluded and the
    /// request goes to another: the client sees one answer, never a failed start.
    func open() async throws(OpenAIError) -> Opened {
        var excluded: Set<String> = []
        var lastProblem = "no instance was tried"
        for attempt in 0...gateway.config.retryCount {
            if attempt > 0 { gateway.metrics.retried() }
            let asked = ContinuousClock.now
            let (instance, route, assignedPrefill) = try await choose(excluding: excluded)
            var prefill = assignedPrefill
            gateway.metrics.scheduled(in: ContinuousClock.now - asked, route: route)
            if let pair = prefill, !features.splittable {
                // One prefill leg cannot carry a batch of prompts or several choices (the engines'
                // hand-off parameters are per prompt): the decode instance computes it whole.
                finish(prefillSide(pair, route: route), outcome: .unspecified, usage: nil, firstByte: nil)
                prefill = nil
            }
            let source = AnswerSource(instance: instance, route: route, prefill: prefill?.id)
            do {
                let opened = if let prefill { try await handOff(from: prefill, to: source) } else { try await begin(on: source) }
                gateway.succeeded(instance)
                return opened
            } catch .prefillFailed(let why) {
                // Only the prefill leg failed (both slots are released): another prefill instance
                // may serve, with any decode.
                if Task.isCancelled { throw .upstream("cancelled", status: 499) }
                lastProblem = "prefill \(prefill?.id ?? "") \(why)"
                excluded.insert(prefill?.id ?? "")
            } catch {
                if Task.isCancelled {
                    // The client went away: no instance is to blame.
                    finish(source, outcome: .clientCancelled, usage: nil, firstByte: nil)
                    throw .upstream("cancelled", status: 499)
                }
                lastProblem = "\(instance.id) \(error)"
                failed(source, outcome: .engineError)
                excluded.insert(instance.id)
            }
        }
        gateway.metrics.upstreamGaveUp()
        throw .upstream("No engine could serve the request after \(gateway.config.retryCount + 1) attempts; last: \(lastProblem)")
    }

    /// Why one instance could not begin an answer.
    enum BeginFailure: Error, CustomStringConvertible {
        case unreachable(Upstream.Failure)
        case refused(status: Int)
        case cutBeforeFirstByte(String)
        /// pd-split: the prefill leg failed (its Finish is sent, the decode slot released).
        case prefillFailed(String)
        var description: String {
            switch self {
            case .unreachable(let failure): "\(failure)"
            case .refused(let status): "answered HTTP \(status)"
            case .cutBeforeFirstByte(let why): "failed before its answer began: \(why)"
            case .prefillFailed(let why): why
            }
        }
    }

    /// Sends the request to one instance and waits until its answer has really begun.
    func begin(on source: AnswerSource, body: ByteBuffer? = nil, headers: HTTPFields? = nil) async throws(BeginFailure) -> Opened {
        let response: HTTPClientResponse
        do {
            response = try await gateway.upstream.send(
                method: method, path: path, headers: headers ?? self.headers, body: body ?? self.body, to: source.instance.endpointURL,
                dropAuthorization: !gateway.config.apiKeys.isEmpty)
        } catch { throw .unreachable(error) }
        let status = Int(response.status.code)
        if status >= 400, RetryPolicy.decide(status: status) == .retryElsewhere { throw .refused(status: status) }
        if Upstream.isEventStream(response) {
            var chunks = response.body.makeAsyncIterator()
            do {
                let first = try await chunks.next()
                return .stream(response, first: first, rest: Handover(chunks), source)
            } catch { throw .cutBeforeFirstByte("\(error)") }
        }
        do {
            return .whole(response, body: try await response.body.collect(upTo: 64 << 20), source)
        } catch { throw .cutBeforeFirstByte("\(error)") }
    }

    /// The scheduler's choice, waiting in the queue while it says wait; round-robin over the
    /// cached table when it does not answer.
    private func choose(excluding excluded: Set<String>) async throws(OpenAIError) -> (InstanceRef, String, PrefillTarget?) {
        let deadline = ContinuousClock.now + .milliseconds(gateway.config.waitScheduleTimeoutMilliseconds)
        var queued = false
        let queue = gateway.queue
        let metrics = gateway.metrics
        defer {
            if queued {
                queue.leave()
                metrics.pending(queue.waiting)
            }
        }
        while true {
            switch await gateway.link.schedule(features, requestID: requestID, exclude: excluded) {
            case .assigned(let instance, _, let prefill):
                return (instance, "scheduled", prefill)
            case .noInstance(let why):
                if excluded.isEmpty { throw .modelNotFound(features.model) }
                throw .upstream("No other instance can take the request: \(why)")
            case .unavailable:
                guard let instance = await gateway.fallbackChoice(model: features.model, excluding: excluded) else {
                    if excluded.isEmpty, await !gateway.tableKnowsModel(features.model) { throw .modelNotFound(features.model) }
                    throw .upstream("The scheduler does not answer and no cached instance of '\(features.model)' is left to try.", status: 503)
                }
                return (instance, "fallback", nil)
            case .wait(let retryAfter):
                if !queued {
                    guard gateway.queue.admit() else {
                        gateway.metrics.rejectedQueueFull()
                        throw .queueFull(size: gateway.config.maxQueueSize)
                    }
                    queued = true
                    metrics.pending(gateway.queue.waiting)
                }
                guard ContinuousClock.now < deadline else {
                    throw .waitTimedOut(seconds: Double(gateway.config.waitScheduleTimeoutMilliseconds) / 1000)
                }
                let period = min(gateway.config.waitScheduleTryPeriodMilliseconds, max(retryAfter, 1))
                await gateway.queue.waitForTurn(period: .milliseconds(period))
                if Task.isCancelled { throw .upstream("cancelled", status: 499) }
            }
        }
    }

    func failed(_ source: AnswerSource, outcome: FinishOutcome) {
        gateway.metrics.upstreamError(source.instance.id)
        gateway.failed(source.instance)
        if source.route == "scheduled" { finish(source, outcome: outcome, usage: nil, firstByte: nil) }
    }

    /// A non-streaming answer, read whole and sent in one piece with its length: fewer writes and
    /// thread switches than relaying it chunk by chunk, and an engine that fails half-way is
    /// retried elsewhere instead of reaching the client.
    private func whole(_ response: HTTPClientResponse, body: ByteBuffer, from source: AnswerSource) -> Response {
        var meter = StreamMeter(started: started)
        meter.saw(body)
        let usage = meter.usage
        let status = Int(response.status.code)
        gateway.metrics.completed(status: status, meter: meter, usage: usage)
        finish(source, outcome: status < 400 ? .ok : .clientError, usage: usage, firstByte: meter.firstByte)
        return Response(
            status: HTTPResponse.Status(code: status), headers: answerHeaders(response, source), body: ResponseBody(byteBuffer: body))
    }

    /// A streaming answer, relayed chunk by chunk.
    private func relay(
        _ response: HTTPClientResponse, first: ByteBuffer?, rest: Handover<HTTPClientResponse.Body.AsyncIterator>, from source: AnswerSource
    ) -> Response {
        let headers = answerHeaders(response, source)
        let instance = source.instance
        let status = HTTPResponse.Status(code: Int(response.status.code))
        let attempt = self
        let ending = RelayEnding { relayed in
            attempt.gateway.metrics.requestEnded()
            if !relayed { attempt.finish(source, outcome: .clientCancelled, usage: nil, firstByte: nil) }
        }
        return Response(
            status: status, headers: headers,
            body: ResponseBody { writer in
                defer { ending.relayed() }
                var meter = StreamMeter(started: attempt.started)
                guard var chunks = rest.take() else { return }
                var pending = first
                while true {
                    let next: ByteBuffer?
                    do {
                        if let first = pending {
                            pending = nil
                            next = first
                        } else {
                            next = try await chunks.next()
                        }
                    } catch {
                        // The engine died mid-answer: say so, and end the stream cleanly.
                        attempt.gateway.metrics.upstreamError(instance.id)
                        attempt.gateway.logger.warning(
                            "engine failed mid-answer", metadata: ["instance": "\(instance.id)", "error": "\(error)"])
                        let failure = OpenAIError.upstream("The engine \(instance.id) failed while answering: \(error)")
                        try await writer.write(ByteBuffer(string: "data: \(failure.json)\n\ndata: [DONE]\n\n"))
                        attempt.finish(source, outcome: .engineError, usage: meter.usage, firstByte: meter.firstByte)
                        try await writer.finish(nil)
                        return
                    }
                    guard let chunk = next else { break }
                    meter.saw(chunk)
                    do { try await writer.write(chunk) } catch {
                        // The client went away. Returning drops the engine's body, which ends the
                        // request there, so the engine stops spending on it.
                        attempt.gateway.metrics.clientCancelled()
                        attempt.finish(source, outcome: .clientCancelled, usage: meter.usage, firstByte: meter.firstByte)
                        throw error
                    }
                }
                let usage = meter.usage
                attempt.gateway.metrics.completed(status: Int(status.code), meter: meter, usage: usage)
                attempt.finish(source, outcome: status.code < 400 ? .ok : .clientError, usage: usage, firstByte: meter.firstByte)
                try await writer.finish(nil)
            })
    }

    /// The engine's headers worth passing on, and which instance answered by which route.
    private func answerHeaders(_ response: HTTPClientResponse, _ source: AnswerSource) -> HTTPFields {
        var headers = Upstream.responseFields(response.headers)
        headers[HTTPField.Name("X-Junction-Instance")!] = source.instance.id
        headers[HTTPField.Name("X-Junction-Route")!] = source.route
        if let prefill = source.prefill { headers[HTTPField.Name("X-Junction-Prefill-Instance")!] = prefill }
        headers[HTTPField.Name("X-Junction-Gateway")!] = gateway.name
        return headers
    }

    /// Releases the answering instance's slot at the scheduler (each pd-split leg releases its own).
    func finish(_ source: AnswerSource, outcome: FinishOutcome, usage: StreamMeter.Usage?, firstByte: Duration?) {
        let total = ContinuousClock.now - started
        gateway.link.finish(
            FinishRequest(
                requestID: requestID, instanceID: source.instance.id, outcome: outcome, promptTokens: UInt32(clamping: usage?.prompt ?? 0),
                completionTokens: UInt32(clamping: usage?.completion ?? 0), cachedTokens: UInt32(clamping: usage?.cached ?? 0),
                ttftMs: UInt32(clamping: firstByte.map { Int($0 / .milliseconds(1)) } ?? 0), totalMs: UInt32(clamping: Int(total / .milliseconds(1))),
                prefillInstanceID: source.prefill ?? ""))
    }
}

