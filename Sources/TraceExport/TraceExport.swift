import ClusterConfig
import Logging
import OTel
import ServiceLifecycle
import Tracing

/// Makes the tracer a process hands its gateway or scheduler when the config's `tracing` section
/// is there: swift-otel's tracer with a batch span processor and an OTLP/HTTP exporter, and the
/// service that runs them (it exports in the background and flushes what is left at shutdown).
///
/// The tracer is handed over, not installed in `InstrumentationSystem`: no global state, so tests
/// run several in one process and code that does not trace pays nothing.
public enum TraceExport {
    public struct Backend: Sendable {
        public let tracer: any Tracer
        /// Run it in the process's service group, before the services whose spans it exports,
        /// so it stops after them and their last spans are sent.
        public let service: any Service
    }

    /// `service`: `junction-gateway` or `junction-scheduler`; `instance`: the process's name in
    /// the cluster (a gateway's name, a scheduler's id), as `service.instance.id`.
    public static func backend(_ config: TracingConfiguration, service: String, instance: String, logger: Logger) throws -> Backend {
        var otel = OTel.Configuration.default
        otel.serviceName = service
        otel.resourceAttributes = ["service.instance.id": instance, "service.namespace": "junction"]
        otel.diagnosticLogger = .custom(logger)
        otel.diagnosticLogLevel = .warning
        otel.propagators = [.traceContext]
        otel.metrics.enabled = false
        otel.logs.enabled = false
        otel.traces.enabled = true
        otel.traces.exporter = .otlp
        // A client's `traceparent` decides for its own request; the ratio decides for the rest.
        otel.traces.sampler = .parentBasedTraceIDRatio(ratio: config.sampleRatio) ?? .parentBasedAlwaysOn
        otel.traces.otlpExporter.endpoint = config.tracesURL
        otel.traces.otlpExporter.protocol = .httpProtobuf
        otel.traces.otlpExporter.timeout = .milliseconds(config.exportTimeoutMilliseconds)
        otel.traces.otlpExporter.headers = config.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let (tracer, runner) = try OTel.makeTracingBackend(configuration: otel)
        return Backend(tracer: tracer, service: runner)
    }
}
