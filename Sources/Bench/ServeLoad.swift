import AsyncHTTPClient
import BenchCore
import Foundation
import NIOCore
import NIOHTTP1
import Seeded

/// Replays conversations as streamed OpenAI chat requests against a target (a router or an
/// engine) and records what the client sees of each: `junction bench serve`. Each turn sends
/// the whole history, with the answers the engine actually gave, so every turn's prompt starts
/// with exactly what the engine saw the turn before.
public struct ServeLoad: Sendable {
    public enum Mode: Sendable, Equatable {
        /// `concurrency` users, each playing one conversation after another, turn after turn.
        case closed(concurrency: Int)
        /// Turns arrive as a Poisson process at `rate` a second; each takes the next turn of a
        /// conversation whose previous turn has finished, or starts a new conversation.
        case open(rate: Double)
    }

    public var target: String
    public var model: String
    public var mode: Mode
    /// Stop starting requests after this many, or after `maxDuration`, whichever comes first.
    public var requests: Int
    public var maxDuration: Duration
    public var requestTimeout: Duration
    /// A conversation ends when its history would pass this many (estimated) tokens.
    public var maxContextTokens: Int
    /// Ask the engine to generate exactly the answer's length (`ignore_eos`), as the seed did.
    public var ignoreEOS = true
    public var apiKey: String?
    public var seed: UInt64 = 1

    public init(target: String, model: String, mode: Mode, requests: Int, maxDuration: Duration, requestTimeout: Duration, maxContextTokens: Int) {
        self.target = target.hasSuffix("/") ? String(target.dropLast()) : target
        self.model = model
        self.mode = mode
        self.requests = requests
        self.maxDuration = maxDuration
        self.requestTimeout = requestTimeout
        self.maxContextTokens = maxContextTokens
    }

    public func run(_ conversations: [Conversation]) async throws -> [RequestRecord] {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5), read: nil)
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 4_096
        configuration.decompression = .disabled
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let state = LoadState(conversations: conversations, budget: requests, deadline: ContinuousClock.now + maxDuration)
        do {
            switch mode {
            case .closed(let concurrency):
                await withTaskGroup(of: Void.self) { group in
                    for _ in 0..<max(1, concurrency) {
                        group.addTask { await self.user(state: state, client: client) }
                    }
                }
            case .open(let rate):
                try await openLoop(rate: rate, state: state, client: client)
            }
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
        return await state.records
    }

    private func user(state: LoadState, client: HTTPClient) async {
        while var playing = await state.nextConversation() {
            while await state.takeRequest() {
                let (record, answer) = await send(playing, client: client, state: state)
                await state.record(record)
                guard record.succeeded, playing.advance(answer: answer, maxContextTokens: maxContextTokens) else { break }
            }
            if await state.exhausted { return }
        }
    }

    private func openLoop(rate: Double, state: LoadState, client: HTTPClient) async throws {
        var rng = SplitMix64(seed: seed)
        try await withThrowingTaskGroup(of: Void.self) { group in
            while await state.takeRequest() {
                guard let playing = await state.readyOrNewConversation() else { break }
                group.addTask {
                    var playing = playing
                    let (record, answer) = await self.send(playing, client: client, state: state)
                    await state.record(record)
                    if record.succeeded, playing.advance(answer: answer, maxContextTokens: self.maxContextTokens) {
                        await state.ready(playing)
                    }
                }
                // Exponential gaps: a Poisson process of the given rate.
                let gap = -log(max(rng.nextUnit(), 1e-12)) / rate
                try await Task.sleep(for: .seconds(gap))
            }
            try await group.waitForAll()
        }
    }

    /// One streamed request: its record and the answer's text.
    private func send(_ playing: PlayingConversation, client: HTTPClient, state: LoadState) async -> (RequestRecord, String) {
        let turn = playing.conversation.turns[playing.turn]
        var body: [String: Any] = [
            "model": model, "messages": playing.messages(), "max_tokens": turn.answerTokens, "stream": true,
            "stream_options": ["include_usage": true], "temperature": 0,
        ]
        if ignoreEOS { body["ignore_eos"] = true }
        var request = HTTPClientRequest(url: target + "/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        request.body = .bytes(ByteBuffer(bytes: (try? JSONSerialization.data(withJSONObject: body)) ?? Data()))

        let prepared = request
        let start = state.now()
        let reader: StreamReader
        let failure: String?
        do {
            // A deadline for the whole exchange, body included: a stream that stalls counts as failed.
            (reader, failure) = try await withDeadline(requestTimeout) { try await Self.exchange(prepared, client: client, state: state) }
        } catch is DeadlineExceeded {
            (reader, failure) = (StreamReader(), "no complete answer within \(requestTimeout)")
        } catch {
            (reader, failure) = (StreamReader(), "\(error)")
        }
        let record = RequestRecord(
            conversation: playing.conversation.id, turn: playing.turn, start: start, firstToken: reader.firstToken, end: state.now(),
            promptTokens: reader.promptTokens ?? TokenEstimate.tokens(playing.historyText), outputTokens: reader.completionTokens ?? reader.chunks,
            error: failure)
        return (record, reader.answer)
    }

    /// Sends the request and reads the whole answer.
    private static func exchange(_ request: HTTPClientRequest, client: HTTPClient, state: LoadState) async throws -> (StreamReader, String?) {
        var reader = StreamReader()
        let response = try await client.execute(request, timeout: .hours(24))
        guard response.status == .ok else {
            let text = try await response.body.collect(upTo: 1 << 16)
            return (reader, "HTTP \(response.status.code): \(String(buffer: text).prefix(200))")
        }
        for try await chunk in response.body {
            reader.feed(chunk, at: state.now())
            if reader.finished { break }
        }
        return (reader, reader.failure ?? (reader.finished ? nil : "stream ended without [DONE]"))
    }
}

struct DeadlineExceeded: Error {}

/// Runs `body`, cancelling it and throwing `DeadlineExceeded` after `duration`.
func withDeadline<T: Sendable>(_ duration: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: duration)
            throw DeadlineExceeded()
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

/// A conversation being played: which turn is next and the answers given so far.
struct PlayingConversation: Sendable {
    let conversation: Conversation
    var turn = 0
    var answers: [String] = []
    var historyText: String

    init(_ conversation: Conversation) {
        self.conversation = conversation
        historyText = (conversation.system ?? "") + (conversation.turns.first?.user ?? "")
    }

    func messages() -> [[String: String]] {
        var messages: [[String: String]] = []
        if let system = conversation.system { messages.append(["role": "system", "content": system]) }
        for index in 0...turn {
            messages.append(["role": "user", "content": conversation.turns[index].user])
            if index < answers.count { messages.append(["role": "assistant", "content": answers[index]]) }
        }
        return messages
    }

    /// Records the answer; false when the conversation is over (no turns left, or too long).
    mutating func advance(answer: String, maxContextTokens: Int) -> Bool {
        answers.append(answer)
        turn += 1
        guard turn < conversation.turns.count else { return false }
        historyText += answer + conversation.turns[turn].user
        return TokenEstimate.tokens(historyText) + conversation.turns[turn].answerTokens <= maxContextTokens
    }
}

/// Shared by the users of one run: the conversations not yet started, the request budget, the
/// open loop's ready conversations, and the records.
actor LoadState {
    private var pending: [Conversation]
    private var next = 0
    private var budget: Int
    private let deadline: ContinuousClock.Instant
    private let started = ContinuousClock.now
    private var readyQueue: [PlayingConversation] = []
    private(set) var records: [RequestRecord] = []

    init(conversations: [Conversation], budget: Int, deadline: ContinuousClock.Instant) {
        pending = conversations
        self.budget = budget
        self.deadline = deadline
    }

    nonisolated func now() -> Double { (ContinuousClock.now - started) / .seconds(1) }

    var exhausted: Bool { budget <= 0 || ContinuousClock.now >= deadline }

    func takeRequest() -> Bool {
        guard !exhausted else { return false }
        budget -= 1
        return true
    }

    func nextConversation() -> PlayingConversation? {
        guard next < pending.count else { return nil }
        defer { next += 1 }
        return PlayingConversation(pending[next])
    }

    func readyOrNewConversation() -> PlayingConversation? {
        if !readyQueue.isEmpty { return readyQueue.removeFirst() }
        return nextConversation()
    }

    func ready(_ playing: PlayingConversation) { readyQueue.append(playing) }

    func record(_ record: RequestRecord) { records.append(record) }
}

/// Reads an OpenAI chat stream (SSE): the first token's time, the answer, the usage, an error.
struct StreamReader {
    private var pending: [UInt8] = []
    private(set) var firstToken: Double?
    private(set) var answer = ""
    private(set) var chunks = 0
    private(set) var promptTokens: Int?
    private(set) var completionTokens: Int?
    private(set) var failure: String?
    private(set) var finished = false

    mutating func feed(_ buffer: ByteBuffer, at time: Double) {
        pending.append(contentsOf: buffer.readableBytesView)
        while let newline = pending.firstIndex(of: 0x0A) {
            let line = pending[..<newline]
            pending.removeSubrange(...newline)
            handle(line: line, at: time)
        }
    }

    private mutating func handle(line: ArraySlice<UInt8>, at time: Double) {
        var line = line
        if line.last == 0x0D { line = line.dropLast() }
        // SSE: "data:" and an optional space, then the payload.
        guard line.starts(with: "data:".utf8) else { return }
        var payload = line.dropFirst(5)
        if payload.first == 0x20 { payload = payload.dropFirst() }
        if payload.elementsEqual("[DONE]".utf8) {
            finished = true
            return
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any] else {
            failure = "malformed stream event"
            return
        }
        if let error = object["error"] {
            failure = "error event: \((error as? [String: Any])?["message"] ?? error)"
        }
        if let usage = object["usage"] as? [String: Any] {
            promptTokens = usage["prompt_tokens"] as? Int ?? promptTokens
            completionTokens = usage["completion_tokens"] as? Int ?? completionTokens
        }
        guard let choices = object["choices"] as? [[String: Any]], let delta = choices.first?["delta"] as? [String: Any],
            let content = delta["content"] as? String, !content.isEmpty
        else { return }
        if firstToken == nil { firstToken = time }
        answer += content
        chunks += 1
    }
}
