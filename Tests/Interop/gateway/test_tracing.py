"""Traces, end to end: the gateway and the schedulers export OpenTelemetry spans over OTLP/HTTP
to a real receiver (OpenTelemetry's protobuf messages), the client's W3C `traceparent` joins
them to the client's trace, and the engine (behind a recording proxy) is sent the context of
the gateway's span for it. Docs/observability.md, "Traces"."""
import secrets
import signal
import socket
import time

import httpx
import openai
import pytest

from conftest import API_KEY, Cluster
from otlp_receiver import OTLPReceiver
from recording_proxy import RecordingProxy

GATEWAY_SPANS = {"POST /v1/chat/completions", "schedule", "engine request", "connect", "time to first token", "stream"}


class TracedCluster:
    def __init__(self, tracing):
        self.proxy = None

        def proxied(url):
            self.proxy = RecordingProxy(url)
            return self.proxy.url

        self.cluster = Cluster({"e1": ["--dialect", "vllm"]}, sections={"tracing": tracing} if tracing else None,
                               engine_urls={"e1": proxied})

    def client(self, headers=None):
        return openai.OpenAI(base_url=self.cluster.url + "/v1", api_key=API_KEY, max_retries=0, timeout=30,
                             default_headers=headers or {})

    def engine_saw(self, marker):
        """The headers of the inference request whose prompt holds `marker`."""
        for request in self.proxy.recorded():
            if marker in str(request["body"]):
                return request["headers"]
        raise AssertionError(f"the engine never saw the request {marker}")

    def stop(self):
        self.cluster.stop()
        if self.proxy:
            self.proxy.stop()


@pytest.fixture(scope="module")
def receiver():
    r = OTLPReceiver()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def traced(receiver):
    c = TracedCluster({"otlp_endpoint": receiver.url, "sample_ratio": 1.0})
    yield c
    c.stop()


def new_ids():
    return secrets.token_hex(16), secrets.token_hex(8)


def spans_of(receiver, trace_id, want, timeout=30):
    """The trace's spans once every name in `want` arrived (the exporters send in batches,
    every few seconds)."""
    deadline = time.time() + timeout
    while True:
        spans = [s for s in receiver.snapshot() if s["trace_id"] == trace_id]
        if want <= {s["name"] for s in spans} or time.time() > deadline:
            return spans
        time.sleep(0.2)


def ask(client, marker, stream):
    messages = [{"role": "user", "content": f"trace me {marker} " + "with some words " * 20}]
    if stream:
        chunks = list(client.chat.completions.create(model="tiny", messages=messages, max_tokens=8, stream=True))
        assert chunks
    else:
        client.chat.completions.create(model="tiny", messages=messages, max_tokens=8)


def test_a_streamed_request_is_one_trace_from_the_client_through_the_scheduler_to_the_engine(traced, receiver):
    trace_id, client_span = new_ids()
    marker = secrets.token_hex(4)
    # The engine holds its response open after `[DONE]`, and the openai client closes at `[DONE]`:
    # the client leaving after the whole answer is not an error in the trace.
    engine = traced.cluster.engines["e1"]
    assert httpx.post(engine + "/admin/faults", json={"done_linger_ms": 1000}).status_code == 200
    try:
        with traced.client({"traceparent": f"00-{trace_id}-{client_span}-01", "tracestate": "vendor=abc"}) as client:
            ask(client, marker, stream=True)
    finally:
        httpx.delete(engine + "/admin/faults")
    spans = spans_of(receiver, trace_id, GATEWAY_SPANS | {"decide"})
    names = {s["name"] for s in spans}
    assert GATEWAY_SPANS | {"decide"} <= names, names
    by_name = {s["name"]: s for s in spans}
    root = by_name["POST /v1/chat/completions"]
    # The gateway's span is the child of the client's, and every other span hangs under it.
    assert root["parent_span_id"] == client_span
    assert root["kind"] == "server" and root["service"] == "junction-gateway"
    assert root["attributes"]["http.response.status_code"] == 200
    assert root["attributes"]["gen_ai.request.model"] == "tiny"
    assert root["attributes"]["junction.instance_id"] == "e1"
    assert root["attributes"]["junction.route"] == "scheduled"
    for name in ("schedule", "engine request"):
        assert by_name[name]["parent_span_id"] == root["span_id"], name
    engine = by_name["engine request"]
    for name in ("connect", "time to first token", "stream"):
        assert by_name[name]["parent_span_id"] == engine["span_id"], name
    # The leader's decision joins the gateway's schedule call.
    decide = by_name["decide"]
    assert decide["service"] == "junction-scheduler"
    assert decide["parent_span_id"] == by_name["schedule"]["span_id"]
    assert decide["attributes"]["junction.decision"] == "assigned"
    assert decide["attributes"]["junction.instance_id"] == "e1"
    # Phases in order, inside the request's span.
    assert root["start"] <= by_name["schedule"]["start"] <= by_name["schedule"]["end"] <= engine["start"]
    assert by_name["connect"]["end"] <= by_name["time to first token"]["end"] <= by_name["stream"]["end"] <= root["end"]
    # Named with their attributes, so a failure here says which span and why.
    assert not any(s["error"] for s in spans), [(s["name"], s["attributes"]) for s in spans if s["error"]]
    # The engine was sent the same trace, with the gateway's engine span as its parent.
    seen = traced.engine_saw(marker)
    assert seen["traceparent"] == f"00-{trace_id}-{engine['span_id']}-01"
    assert seen["tracestate"] == "vendor=abc"


def test_a_request_without_a_traceparent_starts_a_trace_the_engine_joins(traced, receiver):
    marker = secrets.token_hex(4)
    with traced.client() as client:
        ask(client, marker, stream=False)
    seen = traced.engine_saw(marker)["traceparent"]
    _, trace_id, parent, flags = seen.split("-")
    assert flags == "01"
    spans = spans_of(receiver, trace_id, {"POST /v1/chat/completions", "engine request", "time to first token"})
    by_name = {s["name"]: s for s in spans}
    assert by_name["POST /v1/chat/completions"]["parent_span_id"] == ""
    assert by_name["engine request"]["span_id"] == parent
    # An unstreamed answer has no stream span: its first token is its whole answer.
    assert "stream" not in by_name


def test_a_client_that_does_not_sample_is_not_traced_but_its_context_goes_on(traced, receiver):
    trace_id, client_span = new_ids()
    marker = secrets.token_hex(4)
    with traced.client({"traceparent": f"00-{trace_id}-{client_span}-00"}) as client:
        ask(client, marker, stream=True)
    seen = traced.engine_saw(marker)["traceparent"]
    assert seen.startswith(f"00-{trace_id}-") and seen.endswith("-00")
    # A sampled request sent after it has been exported, so an unsampled one's spans would be too.
    later, _ = new_ids()
    with traced.client({"traceparent": f"00-{later}-{secrets.token_hex(8)}-01"}) as client:
        ask(client, secrets.token_hex(4), stream=False)
    assert spans_of(receiver, later, {"POST /v1/chat/completions", "decide"})
    assert [s for s in receiver.snapshot() if s["trace_id"] == trace_id] == []


MALFORMED = [
    "00-00000000000000000000000000000000-0123456789abcdef-01",  # all-zero trace id
    "00-0123456789abcdef0123456789abcdef-0000000000000000-01",  # all-zero parent id
    "00-0123456789ABCDEF0123456789ABCDEF-0123456789abcdef-01",  # uppercase
    "ff-0123456789abcdef0123456789abcdef-0123456789abcdef-01",  # version ff
    "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01-extra",  # version 00 with more
    "00-0123456789abcdef0123456789abcdef-0123456789abcdef",  # no flags
    "garbage",
]


def test_a_malformed_traceparent_starts_a_new_trace(traced, receiver):
    started = []
    with traced.client() as client:
        for bad in MALFORMED:
            marker = secrets.token_hex(4)
            messages = [{"role": "user", "content": f"trace me {marker}"}]
            client.chat.completions.create(model="tiny", messages=messages, max_tokens=4,
                                           extra_headers={"traceparent": bad, "tracestate": "vendor=stale"})
            seen = traced.engine_saw(marker)
            _, trace_id, _, flags = seen["traceparent"].split("-")
            assert trace_id not in bad and flags == "01", bad
            # The state of a context that was dropped is dropped with it.
            assert "tracestate" not in seen, bad
            started.append(trace_id)
    for trace_id in started:
        spans = spans_of(receiver, trace_id, {"POST /v1/chat/completions"})
        assert [s["parent_span_id"] for s in spans if s["name"] == "POST /v1/chat/completions"] == [""]


def test_without_a_tracing_section_the_clients_context_reaches_the_engine_unchanged():
    c = TracedCluster(None)
    try:
        parent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
        marker = secrets.token_hex(4)
        with c.client({"traceparent": parent, "tracestate": "vendor=abc"}) as client:
            ask(client, marker, stream=True)
        seen = c.engine_saw(marker)
        assert (seen["traceparent"], seen["tracestate"]) == (parent, "vendor=abc")
    finally:
        c.stop()


def test_a_gateway_stopped_by_sigterm_sends_its_last_spans_first():
    # Spans go in batches every 5 s; a request answered just before SIGTERM is in no batch yet.
    receiver = OTLPReceiver()
    c = TracedCluster({"otlp_endpoint": receiver.url})
    try:
        trace_id = secrets.token_hex(16)
        with c.client({"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}) as client:
            ask(client, secrets.token_hex(4), stream=True)
        gateway = c.cluster.processes["gateway"]
        gateway.stop(sig=signal.SIGTERM, timeout=30)
        assert gateway.proc.returncode == 0, c.cluster.logs()
        names = {s["name"] for s in receiver.snapshot() if s["trace_id"] == trace_id and s["service"] == "junction-gateway"}
        assert GATEWAY_SPANS <= names, names
    finally:
        c.stop()
        receiver.stop()


def test_requests_are_answered_while_the_collector_is_down():
    # A port nothing listens on: every export fails, and no request may notice.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    c = TracedCluster({"otlp_endpoint": f"http://127.0.0.1:{dead}", "export_timeout_ms": 500})
    try:
        with c.client() as client:
            for i in range(20):
                ask(client, f"down-{i}", stream=i % 2 == 0)
        assert c.cluster.processes["gateway"].alive()
        assert all(p.alive() for name, p in c.cluster.processes.items() if name.startswith("scheduler-"))
        # The operator hears of it in the gateway's log.
        deadline = time.time() + 20
        while "export" not in open(c.cluster.processes["gateway"].log_path).read().lower() and time.time() < deadline:
            time.sleep(0.2)
        assert "export" in open(c.cluster.processes["gateway"].log_path).read().lower(), c.cluster.processes["gateway"].tail()
    finally:
        c.stop()
