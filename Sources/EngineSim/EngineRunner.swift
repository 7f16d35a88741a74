import EngineModel
import Foundation

/// Runs the engine core against the wall clock: one step after another, each lasting its model
/// duration divided by the speed factor (times the slowness fault), delivering each step's
/// events to the requests' streams when the step ends, and keeping what /metrics reports.
actor EngineRunner {
    private var core: EngineCore
    private let speed: Double
    private let faults: FaultSwitch
    private var streams: [EngineRequestID: AsyncStream<StreamEvent>.Continuation] = [:]
    private var timings: [EngineRequestID: RequestTiming] = [:]
    private var idle: CheckedContinuation<Void, Never>?
    private(set) var metrics: EngineMetrics
    /// Set when a stream reached `crash_after_tokens`: the process exits once that step's
    /// tokens are on their way to the clients.
    private var crashPending = false
    /// vLLM's `vllm:lora_requests_info`: set at every step to the step's adapters, and once more
    /// with none when the engine goes idle, each label set keeping the last time it was set.
    private var loraInfo = LoRAInfo()
    private let requestLog: RequestLog?

    init(core: EngineCore, speed: Double, faults: FaultSwitch, requestLog: RequestLog? = nil) {
        self.core = core
        self.speed = speed
        self.faults = faults
        self.requestLog = requestLog
        metrics = EngineMetrics(maxModelLength: core.profile.maxModelLength)
    }

    var profile: EngineProfile { core.profile }

    /// Queues a request. `importing` blocks of its prompt's KV, received from a prefill instance,
    /// are cached first, in the same step-free moment, so no step can evict them in between.
    func submit(_ request: GenerationRequest, importing blocks: Int = 0) throws(EngineModelError) -> (EngineRequestID, AsyncStream<StreamEvent>) {
        if blocks > 0 { core.importPrefix(request.promptTokens, blocks: blocks) }
        let id = try core.submit(request)
        let (stream, continuation) = AsyncStream<StreamEvent>.makeStream()
        streams[id] = continuation
        timings[id] = RequestTiming(
            submitted: .now, maxTokens: request.maxTokens, promptTokens: request.promptTokens.count,
            promptHead: requestLog == nil ? "" : RequestLog.head(of: request.promptTokens),
            submittedWall: Date().timeIntervalSince1970, waitingAtArrival: core.waitingCount - 1, runningAtArrival: core.runningCount)
        if let idle {
            self.idle = nil
            idle.resume()
        }
        return (id, stream)
    }

    func submitResult(_ request: GenerationRequest, importing blocks: Int = 0) -> Result<(EngineRequestID, AsyncStream<StreamEvent>), EngineModelError> {
        do throws(EngineModelError) { return .success(try submit(request, importing: blocks)) } catch { return .failure(error) }
    }

    func remainingContext(promptTokens: Int) -> Int { core.remainingContext(promptTokens: promptTokens) }

    /// The client went away, or the stream was cut: stop spending on the request.
    func abort(_ id: EngineRequestID) {
        guard streams.removeValue(forKey: id) != nil else { return }
        core.abort(id)
        timings[id] = nil
        metrics.recordAbort()
    }

    func resetPrefixCache() { core.resetPrefixCache() }

    func cachedBlockIDs(of prompt: [UInt32]) -> [Int32] { core.cachedBlockIDs(of: prompt) }


    func snapshot() -> EngineSnapshot {
        EngineSnapshot(
            profile: core.profile, counters: core.counters, running: core.runningCount,
            waiting: core.waitingCount, kvUsage: core.cache.usage, usedTokens: core.usedTokens,
            cachedBlocks: core.cache.cachedBlockCount, metrics: metrics, lora: loraInfo, maxLoras: core.lora.maxLoras)
    }

    /// The step loop; returns when the task is cancelled.
    func run() async {
        let clock = ContinuousClock()
        var deadline = clock.now
        while !Task.isCancelled {
            // A hung engine stops stepping: in-flight streams stall with it.
            if faults.current.hang {
                try? await Task.sleep(for: .milliseconds(50))
                deadline = clock.now
                continue
            }
            guard let step = core.step() else {
                loraInfo.set(running: [], waiting: [], at: Date().timeIntervalSince1970)
                await withCheckedContinuation { idle = $0 }
                deadline = clock.now
                continue
            }
            let seconds = step.duration / speed * faults.current.slowness
            deadline = deadline.advanced(by: .seconds(seconds))
            // Running late (a long pause, a loaded machine): start again from now rather than
            // firing a burst of catch-up steps.
            if deadline < clock.now.advanced(by: .milliseconds(-50)) { deadline = clock.now }
            try? await Task.sleep(until: deadline, clock: clock)
            deliver(step, at: clock.now)
            if crashPending {
                try? await Task.sleep(for: .milliseconds(20))
                FileHandle.standardError.write(Data("engine-sim: crash_after_tokens fault: exiting\n".utf8))
                exit(70)
            }
        }
    }

    func stopWaiting() {
        idle?.resume()
        idle = nil
    }

    private func deliver(_ step: StepResult, at now: ContinuousClock.Instant) {
        loraInfo.set(running: step.runningAdapters, waiting: step.waitingAdapters, at: Date().timeIntervalSince1970)
        metrics.recordStep(step, running: core.runningCount, waiting: core.waitingCount, kvUsage: core.cache.usage, at: now)
        let crashAfter = faults.current.crashAfterTokens
        for event in step.events {
            switch event {
            case .scheduled(let id, let cached):
                if var timing = timings[id] {
                    metrics.queueTime.observe((now - timing.submitted) / .seconds(1))
                    (timing.scheduled, timing.cachedTokens) = (now, cached)
                    timings[id] = timing
                }
            case .token(let id, _):
                guard var timing = timings[id] else { continue }
                if let last = timing.lastToken {
                    metrics.interTokenLatency.observe((now - last) / .seconds(1))
                } else {
                    metrics.timeToFirstToken.observe((now - timing.submitted) / .seconds(1))
                    requestLog?.write(timing.logLine(firstTokenAt: now, step: step))
                }
                timing.lastToken = now
                timing.tokens += 1
                timings[id] = timing
                if let crashAfter, timing.tokens >= crashAfter { crashPending = true }
            case .finished(let id, let reason, let usage):
                if let timing = timings.removeValue(forKey: id) {
                    metrics.recordFinish(timing, reason: reason, usage: usage, at: now)
                }
            }
        }
        var index = 0
        let events = step.events
        while index < events.count {
            let event = events[index]
            index += 1
            guard let continuation = streams[event.requestID] else { continue }
            switch event {
            case .scheduled(_, let cached):
                continuation.yield(.scheduled(cachedTokens: cached))
            case .token(let id, let token):
                if index < events.count, case .finished(id, let reason, let usage) = events[index] {
                    index += 1
                    continuation.yield(.token(token, finish: (reason, usage)))
                    continuation.finish()
                    streams[id] = nil
                } else {
                    continuation.yield(.token(token, finish: nil))
                }
            case .finished(let id, let reason, let usage):
                continuation.yield(.ended(reason, usage))
                continuation.finish()
                streams[id] = nil
            }
        }
    }
}

struct RequestTiming: Sendable {
    var submitted: ContinuousClock.Instant
    var maxTokens: Int
    var promptTokens = 0
    var promptHead = ""
    var submittedWall = 0.0
    var waitingAtArrival = 0
    var runningAtArrival = 0
    var scheduled: ContinuousClock.Instant?
    var cachedTokens = 0
    var lastToken: ContinuousClock.Instant?
    var tokens = 0

    func logLine(firstTokenAt now: ContinuousClock.Instant, step: StepResult) -> RequestLog.Line {
        let milliseconds = { (d: Duration) in Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) * 1e-15 }
        return RequestLog.Line(
            submitted: submittedWall, promptTokens: promptTokens, promptHead: promptHead, cachedTokens: cachedTokens, waitingAtArrival: waitingAtArrival,
            runningAtArrival: runningAtArrival, queueMs: milliseconds((scheduled ?? now) - submitted), ttftMs: milliseconds(now - submitted),
            stepPrefillTokens: step.prefillTokens, stepSequences: step.sequences)
    }
}


extension EngineEvent {
    var requestID: EngineRequestID {
        switch self {
        case .scheduled(let id, _), .token(let id, _), .finished(let id, _, _): id
        }
    }
}
