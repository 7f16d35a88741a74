"""A small OTLP/HTTP trace receiver on 127.0.0.1, as a collector would be: it takes
`POST /v1/traces` (protobuf-encoded, `application/x-protobuf`), decodes each body with
OpenTelemetry's own protobuf messages (PyPI `opentelemetry-proto`) and keeps the spans, so a
test can check what a process exported. Anything else gets the status a collector would send."""
import http.server
import threading

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse

KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def _value(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


class OTLPReceiver:
    def __init__(self):
        self.spans = []
        self.requests = 0
        self.content_types = set()
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, body=b"", content_type="application/x-protobuf"):
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.path != "/v1/traces":
                    return self.reply(404)
                content_type = (self.headers.get("content-type") or "").split(";")[0].strip()
                request = ExportTraceServiceRequest()
                try:
                    if content_type != "application/x-protobuf":
                        return self.reply(415)
                    request.ParseFromString(body)
                except Exception:  # noqa: BLE001 - a body that does not decode is the sender's bug: 400, as a collector answers
                    return self.reply(400)
                with receiver.lock:
                    receiver.requests += 1
                    receiver.content_types.add(content_type)
                    receiver.spans.extend(receiver._flatten(request))
                response = ExportTraceServiceResponse().SerializeToString()
                self.reply(200, response)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def _flatten(request):
        spans = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append({
                        "service": resource.get("service.name"),
                        "instance": resource.get("service.instance.id"),
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "name": span.name,
                        "kind": KINDS.get(span.kind, str(span.kind)),
                        "start": span.start_time_unix_nano,
                        "end": span.end_time_unix_nano,
                        "attributes": {a.key: _value(a.value) for a in span.attributes},
                        "error": span.status.code == 2,
                        "status_message": span.status.message,
                    })
        return spans

    def snapshot(self):
        with self.lock:
            return list(self.spans)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
