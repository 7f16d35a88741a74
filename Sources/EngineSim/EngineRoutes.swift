import EngineModel
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The simulator's endpoints: the OpenAI API, health and metrics, each dialect's extras, and
/// the fault-injection admin API.
struct EngineRoutes: Sendable {
    let state: ServerState
    var dialect: Dialect { state.config.dialect }

    func add(to router: Router<BasicRequestContext>) {
        router.post("/v1/completions") { request, _ in try await self.inference(request, kind: .completion) }
        router.post("/v1/chat/completions") { request, _ in try await self.inference(request, kind: .chat) }
        router.get("/v1/models") { request, _ in try await self.guarded(request) { self.json(200, self.models()) } }
        router.get("/health") { request, _ in try await self.guarded(request) { self.health() } }
        router.get("/metrics") { request, _ in
            // prometheus_client's filter: `?name[]=A&name[]=B` asks for those samples only.
            let asked = MetricsFilter.names(query: request.uri.query)
            return try await self.guarded(request) { await self.metrics(only: asked) }
        }
        router.get("/version") { request, _ in
            try await self.guarded(request) { self.json(200, "{\"version\":\"junction-engine-sim-0.1.0\"}") }
        }
        switch dialect {
        case .vllm:
            router.post("/reset_prefix_cache") { _, _ in await self.resetCache() }
            if state.config.enableLoRA {
                router.post("/v1/load_lora_adapter") { request, _ in await self.changeAdapters(request, load: true) }
                router.post("/v1/unload_lora_adapter") { request, _ in await self.changeAdapters(request, load: false) }
            }
        case .sglang:
            router.get("/health_generate") { request, _ in try await self.guarded(request) { self.health() } }
            router.get("/get_model_info") { request, _ in try await self.guarded(request) { self.json(200, self.modelInfo()) } }
            router.get("/get_server_info") { request, _ in try await self.guarded(request) { await self.serverInfo() } }
            router.post("/flush_cache") { _, _ in await self.resetCache() }
        case .bladellm:
            break
        }
        router.post("/junction/kv_pull") { request, _ in await self.kvPull(request) }
        router.get("/admin/faults") { _, _ in self.json(200, self.state.faults.current.json) }
        router.post("/admin/faults") { request, _ in await self.setFaults(request) }
        router.delete("/admin/faults") { _, _ in
            let cleared = (try? self.state.faults.update { (faults: inout Faults) throws(RequestError) in faults = Faults() }) ?? Faults()
            return self.json(200, cleared.json)
        }
        router.post("/admin/reset_cache") { _, _ in await self.resetCache() }
        router.post("/admin/crash") { _, _ in
            Task {
                try? await Task.sleep(for: .milliseconds(20))
                FileHandle.standardError.write(Data("engine-sim: /admin/crash: exiting\n".utf8))
                exit(70)
            }
            return self.json(202, "{\"crashing\":true}")
        }
    }

    // MARK: inference

    private func inference(_ request: Request, kind: InferenceRequest.Kind) async throws -> Response {
        var request = request
        if state.faults.current.hang { return try await hang(request) }
        do {
            guard state.isReady else { throw RequestError.unavailable("The engine is starting up.") }
            let body: ByteBuffer
            do {
                body = try await request.collectBody(upTo: state.config.maxBodyBytes)
            } catch is NIOTooManyBytesError {
                throw RequestError.tooLarge(limit: state.config.maxBodyBytes)
            }
            let parsed = try InferenceRequest.parse(Array(buffer: body), kind: kind)
            // vLLM's check, word for word (SGLang without priority scheduling ignores the field).
            if parsed.priority != 0, dialect == .vllm, state.config.schedulingPolicy != .priority {
                throw RequestError.invalid("Got priority \(parsed.priority) but Priority scheduling is not enabled.", param: "priority")
            }
            let adapter = try adapter(for: parsed.model)
            let faults = state.faults.current
            if faults.errorRate > 0, Double.random(in: 0..<1) < faults.errorRate {
                throw RequestError.injected(status: faults.errorStatus)
            }
            let runner = state.runner
            let side = handoffSide(parsed.handoff, headers: request.headers)
            var receivedBlocks = 0
            if case .decode(let host, let port, let key, let wait, let required) = side {
                receivedBlocks = try await receiveKV(parsed.promptTokens, host: host, port: port, key: key, wait: wait, required: required)
            }
            var maxTokens: Int
            if let limit = parsed.maxTokens { maxTokens = limit } else {
                maxTokens = await runner.remainingContext(promptTokens: parsed.promptTokens.count)
            }
            // An SGLang prefill server computes the prompt and its first token only.
            if case .prefill(_, vllm: false) = side { maxTokens = 1 }
            let generation = GenerationRequest(
                promptTokens: parsed.promptTokens, maxTokens: maxTokens, ignoreEOS: parsed.ignoreEOS,
                seed: parsed.seed ?? answerSeed(parsed.promptTokens), adapter: adapter, priority: parsed.priority)
            let submission = try await submit(generation, importing: receivedBlocks, param: kind == .chat ? "messages" : "prompt")
            let id = submission.id
            var events = submission.events
            let renderer = ResponseRenderer(
                dialect: dialect, kind: kind, model: parsed.model, requestNumber: state.nextRequestNumber(),
                created: Int(Date().timeIntervalSince1970))
            var kvTransferParams: String?
            if case .prefill(let key, let vllm) = side {
                let (collected, blocks) = await prefillAndPublish(events, prompt: parsed.promptTokens, key: key)
                events = .replaying(collected)
                if vllm { kvTransferParams = self.kvTransferParams(key: key, blocks: blocks) }
            }
            if parsed.stream {
                return streamResponse(id: id, events: events, request: parsed, renderer: renderer, cutAfter: faults.cutStreamAfterTokens,
                    lingerAfterDone: faults.doneLingerMs.map { .milliseconds($0) })
            }
            guard maxTokens > Self.watchedAnswerTokens else {
                return await fullResponse(id: id, events: events, renderer: renderer, kvTransferParams: kvTransferParams)
            }
            // As vLLM does, a client that goes away while a long answer is computed aborts it.
            // Hummingbird can only watch for that by giving the connection up after the answer,
            // so short answers (the common case of keep-alive clients and benchmarks) are not
            // watched, and watched ones say `Connection: close`.
            let unstreamedEvents = events
            var response = try await request.body.consumeWithCancellationOnInboundClose { _ in
                await withTaskCancellationHandler {
                    await fullResponse(id: id, events: unstreamedEvents, renderer: renderer, kvTransferParams: kvTransferParams)
                } onCancel: {
                    Task { await runner.abort(id) }
                }
            }
            response.headers[.connection] = "close"
            return response
        } catch let error as RequestError {
            return self.error(error)
        }
    }

    private struct Submission: Sendable {
        var id: EngineRequestID
        var events: AsyncStream<StreamEvent>
    }

    private func submit(_ generation: GenerationRequest, importing blocks: Int = 0, param: String) async throws(RequestError) -> Submission {
        let result: Result<(EngineRequestID, AsyncStream<StreamEvent>), EngineModelError> = await state.runner.submitResult(
            generation, importing: blocks)
        switch result {
        case .success(let (id, events)): return Submission(id: id, events: events)
        case .failure(let error): throw .invalid(error.description, param: param)
        }
    }

    /// Answers that depend only on the prompt, as with greedy decoding, unless the request
    /// brings its own seed.
    private func answerSeed(_ tokens: [UInt32]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ state.config.seed
        for token in tokens { hash = (hash ^ UInt64(token)) &* 0x0000_0100_0000_01B3 }
        return hash
    }

    /// Unstreamed answers longer than this are aborted when their client goes away.
    static let watchedAnswerTokens = 64

    private func fullResponse(
        id: EngineRequestID, events: AsyncStream<StreamEvent>, renderer: ResponseRenderer, kvTransferParams: String? = nil
    ) async -> Response {
        var text = ""
        for await event in events {
            switch event {
            case .scheduled: continue
            case .token(let token, let finish):
                text += Vocabulary.text(of: token)
                if let (reason, usage) = finish {
                    return json(200, renderer.full(text: text, reason: reason, usage: usage, kvTransferParams: kvTransferParams))
                }
            case .ended(let reason, let usage):
                return json(200, renderer.full(text: text, reason: reason, usage: usage, kvTransferParams: kvTransferParams))
            }
        }
        return error(.unavailable("The engine dropped the request."))
    }

    private func streamResponse(
        id: EngineRequestID, events: AsyncStream<StreamEvent>, request: InferenceRequest, renderer: ResponseRenderer,
        cutAfter: Int?, lingerAfterDone: Duration?
    ) -> Response {
        let runner = state.runner
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream; charset=utf-8"
        headers[.cacheControl] = "no-cache"
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                do {
                    try await SSEStream.write(
                        events: events, request: request, renderer: renderer, cutAfter: cutAfter, lingerAfterDone: lingerAfterDone,
                        to: &writer)
                } catch {
                    // The client went away or the stream was cut on purpose: stop generating.
                    await runner.abort(id)
                    throw error
                }
            })
    }

    /// Accepts the request and never answers; returns only when the client closes.
    private func hang(_ request: Request) async throws -> Response {
        try await request.body.consumeWithCancellationOnInboundClose { _ in
            while true { try await Task.sleep(for: .seconds(3600)) }
        }
    }

    /// Runs `answer` unless the hang fault is on.
    private func guarded(_ request: Request, _ answer: () async throws -> Response) async throws -> Response {
        if state.faults.current.hang { return try await hang(request) }
        return try await answer()
    }

    // MARK: health, models, metrics, info

    private func health() -> Response {
        guard state.isReady else { return error(.unavailable("The engine is starting up.")) }
        if state.faults.current.healthFailing { return Response(status: .serviceUnavailable) }
        return Response(status: .ok)
    }

    /// vLLM's list: each served name of the base model, then each LoRA adapter with the base
    /// model as its parent.
    private func models() -> String {
        let created = Int(state.startTime)
        let base = JSONText.string(state.config.modelName)
        func entry(_ id: String, root: String, parent: String) -> String {
            "{\"id\":\(JSONText.string(id)),\"object\":\"model\",\"created\":\(created),"
                + "\"owned_by\":\"\(dialect.ownedBy)\",\"root\":\(root),\"parent\":\(parent),"
                + "\"max_model_len\":\(state.config.profile.maxModelLength),\"permission\":[]}"
        }
        let entries = state.config.modelNames.map { entry($0, root: base, parent: "null") }
            + state.adapters.withLock { $0 }.map { entry($0, root: JSONText.string("/adapters/" + $0), parent: base) }
        return "{\"object\":\"list\",\"data\":[" + entries.joined(separator: ",") + "]}"
    }

    /// The LoRA adapter a request for `model` runs with: nil for the base model by any of its
    /// names; an error for a name this engine does not serve.
    private func adapter(for model: String) throws(RequestError) -> String? {
        if state.config.modelNames.contains(model) { return nil }
        guard state.adapters.withLock({ $0.contains(model) }) else { throw .modelNotFound(model) }
        return model
    }

    /// vLLM's run-time adapter API: `{"lora_name": ..., "lora_path": ...}` to load (the path is
    /// not read), `{"lora_name": ...}` to unload. Answers as vLLM does: 400 for a name already
    /// loaded, 404 for one not loaded.
    private func changeAdapters(_ request: Request, load: Bool) async -> Response {
        var request = request
        do {
            let body = try await request.collectBody(upTo: 1 << 16)
            guard let object = try? JSONSerialization.jsonObject(with: Data(Array(buffer: body))) as? [String: Any],
                let name = object["lora_name"] as? String, !name.isEmpty, name.utf8.count <= 256
            else { throw RequestError.invalid("The body must be a JSON object with a lora_name of 1 to 256 bytes.") }
            guard !state.config.modelNames.contains(name) else { throw RequestError.invalid("'\(name)' names the base model.") }
            let changed = state.adapters.withLock { adapters -> Bool in
                if load {
                    guard !adapters.contains(name) else { return false }
                    adapters.append(name)
                } else {
                    guard let index = adapters.firstIndex(of: name) else { return false }
                    adapters.remove(at: index)
                }
                return true
            }
            if load {
                guard changed else { throw RequestError.invalid("The lora adapter '\(name)' has already been loaded.") }
                return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "Success: LoRA adapter '\(name)' added successfully.")))
            }
            guard changed else { throw RequestError.modelNotFound(name) }
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "Success: LoRA adapter '\(name)' removed successfully.")))
        } catch let error as RequestError {
            return self.error(error)
        } catch {
            return self.error(.invalid("Could not read the body: \(error)"))
        }
    }

    private func metrics(only: Set<String>? = nil) async -> Response {
        var snapshot = await state.runner.snapshot()
        snapshot.handoff = await handoffSnapshot()
        snapshot.loraEnabled = state.config.enableLoRA
        snapshot.waiting += snapshot.handoff.awaitingKV
        let renderer = MetricsRenderer(
            dialect: dialect, servedModelName: state.config.modelName, vllmGeneration: state.config.vllmMetrics,
            startTime: state.startTime, only: only)
        let text = renderer.render(snapshot, recent: snapshot.metrics.recent(at: .now))
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    private func modelInfo() -> String {
        let path = JSONText.string(state.config.modelName)
        return "{\"model_path\":\(path),\"tokenizer_path\":\(path),\"is_generation\":true,"
            + "\"preferred_sampling_params\":null,\"weight_version\":\"default\",\"has_image_understanding\":false,"
            + "\"has_audio_understanding\":false,\"model_type\":\"qwen2\",\"architectures\":[\"Qwen2ForCausalLM\"]}"
    }

    private func serverInfo() async -> Response {
        let snapshot = await state.runner.snapshot()
        let recent = snapshot.metrics.recent(at: .now)
        let profile = snapshot.profile
        let path = JSONText.string(state.config.modelName)
        let body = "{\"model_path\":\(path),\"tokenizer_path\":\(path),\"served_model_name\":\(path),"
            + "\"host\":\(JSONText.string(state.config.host)),\"tp_size\":1,\"dp_size\":1,\"page_size\":1,"
            + "\"context_length\":\(profile.maxModelLength),\"max_running_requests\":\(profile.maxRunningSequences),"
            + "\"max_total_num_tokens\":\(profile.kvBlocks * profile.blockSize),"
            + "\"chunked_prefill_size\":\(profile.stepTokenBudget),\"disable_radix_cache\":false,"
            + "\"enable_metrics\":true,\"internal_states\":[{\"last_gen_throughput\":\(recent.generatedPerSecond),"
            + "\"avg_spec_accept_length\":null,\"memory_usage\":{\"token_capacity\":\(profile.kvBlocks * profile.blockSize)}}],"
            + "\"version\":\"junction-engine-sim-0.1.0\"}"
        return json(200, body)
    }

    // MARK: admin

    private func setFaults(_ request: Request) async -> Response {
        var request = request
        do {
            let body = try await request.collectBody(upTo: 1 << 16)
            guard let object = try? JSONSerialization.jsonObject(with: Data(Array(buffer: body))) as? [String: Any] else {
                throw RequestError.invalid("The body must be a JSON object of faults.")
            }
            let faults = try state.faults.update { (faults: inout Faults) throws(RequestError) in try faults.apply(object) }
            return json(200, faults.json)
        } catch let error as RequestError {
            return self.error(error)
        } catch {
            return self.error(.invalid("Could not read the body: \(error)"))
        }
    }

    private func resetCache() async -> Response {
        await state.runner.resetPrefixCache()
        return dialect == .sglang ? Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "Cache flushed.\n"))) : Response(status: .ok)
    }

    // MARK: bodies

    func json(_ status: Int, _ body: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    func error(_ error: RequestError) -> Response {
        json(error.status, ResponseRenderer.error(error, dialect: dialect))
    }
}
