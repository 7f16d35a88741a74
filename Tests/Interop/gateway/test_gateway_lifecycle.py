"""A request's lifecycle through a real gateway, at the stages where it used to leak: an engine
that stops sending after its headers, and a client that goes away while its request is queued,
being scheduled, connecting to an engine, awaiting an unstreamed answer, or streaming, over HTTP
and over WebSocket. The simulators' own /metrics say
whether the engine kept working for a client that left."""
import contextlib
import json
import re
import socket
import time

import httpx
import pytest

from blackhole_front import BlackholeFront, connecting_sockets
from conftest import API_KEY, Cluster
from test_gateway_faults import hold_engine

HEADERS = {"Authorization": f"Bearer {API_KEY}"}


def engine_gauge(engine, name):
    text = httpx.get(engine + "/metrics").text
    return float(re.search(rf'^vllm:{name}\{{[^}}]*\}} (\S+)$', text, re.M).group(1))


def gateway_metric(cluster, name):
    text = httpx.get(cluster.url + "/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " ") or line.startswith(name + "{"))


def wait_for(condition, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def raw_request(cluster, body):
    """A request on a raw socket, so the test can leave at a moment of its choosing."""
    host, port = cluster.url.removeprefix("http://").split(":")
    data = json.dumps(body).encode()
    sock = socket.create_connection((host, int(port)))
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
                 + f"Authorization: Bearer {API_KEY}\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
    return sock


@contextlib.contextmanager
def request_over(cluster, transport, body):
    """A request over HTTP (a raw socket) or a WebSocket: leaving the block is the client leaving."""
    if transport == "http":
        sock = raw_request(cluster, body)
        try:
            yield
        finally:
            sock.close()
        return
    from websockets.sync.client import connect
    with connect(cluster.url.replace("http://", "ws://") + "/v1/ws", additional_headers=HEADERS) as ws:
        ws.send(json.dumps(body))
        yield


@pytest.fixture(scope="module")
def cluster():
    c = Cluster({"a": ["--dialect", "vllm", "--slowness", "5"]}, {"stream_idle_timeout_ms": 1500, "max_body_bytes": 2 << 20})
    yield c
    c.stop()


LONG = {"model": "tiny", "prompt": "a long answer please", "max_tokens": 1500, "ignore_eos": True}


def test_an_engine_that_hangs_after_its_headers_ends_the_stream_after_the_idle_timeout(cluster):
    engine = cluster.engines["a"]
    lines = []
    try:
        with httpx.stream("POST", cluster.url + "/v1/completions", headers=HEADERS, json={**LONG, "stream": True}, timeout=30) as reply:
            stream = reply.iter_lines()
            lines.append(next(stream))
            assert httpx.post(engine + "/admin/faults", json={"hang": True}).status_code == 200
            hung_at = time.time()
            for line in stream:
                if line:
                    lines.append(line)
            ended_after = time.time() - hung_at
    finally:
        httpx.delete(engine + "/admin/faults")
        lifted = time.time()

        # The hang stalls the engine's /health and /metrics too, so the agent's probes begun
        # before the fault was lifted fail at their 1 s timeout and may mark the engine down
        # after this test has ended. The next test needs it up on a report made after every
        # such probe was over (a later test here once got 404, "no instance serving it is up").
        def recovered():
            for i in (cluster.status() or {}).get("instances", []):
                age = i.get("load", {}).get("age_ms")
                if i["state"] == "up" and age is not None and time.time() - age / 1000 > lifted + 2:
                    return True
            return False
        wait_for(recovered, 20, "the engine up on a report made after the hang")
    assert lines[-1] == "data: [DONE]"
    error = json.loads(lines[-2].removeprefix("data: "))
    assert "stream_idle_timeout_ms" in error["error"]["message"], error
    # 1.5 s of silence, then the end: well before any client's own timeout.
    assert 1.4 <= ended_after < 10, ended_after
    wait_for(lambda: gateway_metric(cluster, "junction_gateway_requests_in_flight") == 0, 5, "the gateway's in-flight gauge back to 0")


@contextlib.contextmanager
def engine_fault(engine, **faults):
    assert httpx.post(engine + "/admin/faults", json=faults).status_code == 200
    try:
        yield
    finally:
        httpx.delete(engine + "/admin/faults")


def test_a_client_that_closes_at_done_before_the_engine_ends_its_response_was_served_not_cancelled(cluster):
    # The openai client stops reading at `data: [DONE]` and closes its connection. An engine (or
    # a proxy in front of it) may end its response later: here 1 s later, so the close always
    # comes first. The client has the whole answer: nothing was cancelled, and the request ends
    # with the close, not with the engine's response.
    import openai
    cancelled = gateway_metric(cluster, "junction_gateway_client_cancelled_total")
    with engine_fault(cluster.engines["a"], done_linger_ms=1000):
        client = openai.OpenAI(base_url=cluster.url + "/v1", api_key=API_KEY, max_retries=0, timeout=30)
        chunks = list(client.completions.create(model="tiny", prompt="close at done", max_tokens=4, stream=True))
        assert chunks and chunks[-1].choices[0].finish_reason == "length"
        wait_for(lambda: gateway_metric(cluster, "junction_gateway_requests_in_flight") == 0, 5, "the gateway's in-flight gauge back to 0")
        wait_for(lambda: no_slot_taken(cluster), 5, "the scheduler's slot released")
    assert gateway_metric(cluster, "junction_gateway_client_cancelled_total") == cancelled


def test_an_engine_that_never_ends_its_response_after_done_adds_no_error_after_done(cluster):
    # The engine holds its response open past the gateway's idle timeout (1.5 s) after `[DONE]`:
    # the client has its whole answer, so the gateway ends the stream cleanly.
    with engine_fault(cluster.engines["a"], done_linger_ms=4000):
        with httpx.stream("POST", cluster.url + "/v1/completions", headers=HEADERS, timeout=30,
                          json={"model": "tiny", "prompt": "linger after done", "max_tokens": 4, "stream": True}) as reply:
            body = reply.read()
    # A fresh-clone run once got 404 here ("no instance serving it is up"): say what the
    # gateway answered and what the leader held, should it happen again.
    assert reply.status_code == 200, (reply.status_code, reply.headers.get("x-junction-route"), body[:300], cluster.status())
    assert body.rstrip().endswith(b"data: [DONE]") and b'"error"' not in body, body
    assert body.count(b"data: [DONE]") == 1, body


def test_a_client_that_leaves_an_unstreamed_request_cancels_it_on_the_engine(cluster):
    engine = cluster.engines["a"]
    sock = raw_request(cluster, LONG)
    wait_for(lambda: engine_gauge(engine, "num_requests_running") >= 1, 10, "the engine running the request")
    sock.close()
    wait_for(lambda: engine_gauge(engine, "num_requests_running") == 0, 3, "the engine stopping the request of a client that left")
    wait_for(lambda: gateway_metric(cluster, "junction_gateway_requests_in_flight") == 0, 5, "the gateway's in-flight gauge back to 0")


def test_a_client_that_leaves_a_websocket_stream_cancels_it_on_the_engine(cluster):
    from websockets.sync.client import connect

    engine = cluster.engines["a"]
    url = cluster.url.replace("http://", "ws://") + "/v1/ws"
    with connect(url, additional_headers=HEADERS) as ws:
        ws.send(json.dumps({**LONG, "stream": True}))
        assert json.loads(ws.recv(timeout=30))["object"] == "text_completion"
        assert engine_gauge(engine, "num_requests_running") >= 1
    wait_for(lambda: engine_gauge(engine, "num_requests_running") == 0, 3, "the engine stopping the stream of a WebSocket client that left")


def test_a_client_that_leaves_an_unstreamed_websocket_request_cancels_it_on_the_engine(cluster):
    from websockets.sync.client import connect

    engine = cluster.engines["a"]
    url = cluster.url.replace("http://", "ws://") + "/v1/ws"
    with connect(url, additional_headers=HEADERS) as ws:
        ws.send(json.dumps(LONG))
        wait_for(lambda: engine_gauge(engine, "num_requests_running") >= 1, 10, "the engine running the request")
    wait_for(lambda: engine_gauge(engine, "num_requests_running") == 0, 3, "the engine stopping the request of a WebSocket client that left")


def test_a_one_mib_websocket_request_is_served(cluster):
    from websockets.sync.client import connect

    url = cluster.url.replace("http://", "ws://") + "/v1/ws"
    # 1 MiB of request (max_body_bytes is 2 MiB here); the bulk is a field the engine ignores,
    # so the prompt still fits the tiny model's context.
    message = json.dumps({"model": "tiny", "prompt": "one mebibyte", "max_tokens": 2, "x_padding": "p" * (1 << 20)})
    with connect(url, additional_headers=HEADERS, max_size=None) as ws:
        ws.send(message)
        answer = json.loads(ws.recv(timeout=30))
        assert answer.get("object") == "text_completion", answer
        assert ws.recv(timeout=30) == "[DONE]"


@pytest.mark.parametrize("transport", ["http", "websocket"])
def test_a_client_that_leaves_while_queued_never_reaches_the_engine(cluster_factory, transport):
    cluster = cluster_factory({"a": ["--dialect", "vllm", "--max-num-seqs", "1", "--slowness", "20"]},
                              {"wait_schedule_timeout": 20000})
    out = cluster.ctl("set-policy", "prefix-cache", "--param", "saturated_waiting=1", "--param", "saturated_kv_usage=0")
    assert "policy prefix-cache" in out, out
    engine = cluster.engines["a"]
    held = [hold_engine(engine, f"busy {i}") for i in range(2)]
    wait_for(lambda: (cluster.status() or {"instances": [{}]})["instances"][0].get("load", {}).get("waiting", 0) >= 1, 5,
             "the engine saturated")
    with request_over(cluster, transport, LONG):
        wait_for(lambda: gateway_metric(cluster, "junction_gateway_requests_pending") >= 1, 5, "the request waiting in the gateway's queue")
    wait_for(lambda: gateway_metric(cluster, "junction_gateway_requests_pending") == 0, 3, "the queue place given back")
    for s in held:
        s.close()
    wait_for(lambda: engine_gauge(engine, "num_requests_running") == 0, 5, "the held requests aborted")
    # Room again: a request still queued for the client that left would now start on the engine.
    time.sleep(1.5)
    assert engine_gauge(engine, "num_requests_running") == 0 and engine_gauge(engine, "num_requests_waiting") == 0
    assert gateway_metric(cluster, "junction_gateway_requests_in_flight") == 0


def test_a_client_that_leaves_while_its_request_is_scheduled_leaves_no_slot_taken(cluster_factory):
    # The leader is frozen for a moment while a request asks it; the client leaves; the leader,
    # thawed, assigns the request after all. That late assignment must be given back at once,
    # and the engine must never see the request.
    import signal as signals
    cluster = cluster_factory({"a": ["--dialect", "vllm", "--slowness", "5"]})
    engine = cluster.engines["a"]
    status = cluster.status()
    leader = cluster.processes[f"scheduler-{status['leader_id']}"]
    prompts_before = engine_counter(engine, "prompt_tokens_total")
    leader.proc.send_signal(signals.SIGSTOP)
    try:
        sock = raw_request(cluster, {**LONG, "prompt": "scheduled while the leader is frozen"})
        time.sleep(0.1)
        sock.close()
    finally:
        time.sleep(0.1)
        leader.proc.send_signal(signals.SIGCONT)
    wait_for(lambda: gateway_metric(cluster, "junction_gateway_requests_in_flight") == 0, 5, "the gateway's in-flight gauge back to 0")

    def no_slot_taken():
        status = cluster.status()
        return bool(status) and all(i["in_flight"] == 0 for i in status["instances"])

    wait_for(no_slot_taken, 5, "the leader's in-flight count back to 0")
    time.sleep(0.5)
    assert engine_gauge(engine, "num_requests_running") == 0
    assert engine_counter(engine, "prompt_tokens_total") == prompts_before, "the engine computed a prompt for a client that left"


def engine_counter(engine, name):
    text = httpx.get(engine + "/metrics").text
    match = re.search(rf'^vllm:{name}\{{[^}}]*\}} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def no_slot_taken(cluster):
    status = cluster.status()
    return bool(status) and all(i["in_flight"] == 0 for i in status["instances"])


def black_holed_cluster(cluster_factory):
    """One engine behind a front that, once black-holed, lets no new connection complete; the
    gateway's connect timeout is long, so only the client leaving can end a dial quickly."""
    fronts = {}

    def front(url):
        fronts["a"] = BlackholeFront(url)
        return fronts["a"].url

    # The agent dials its engine on every sample and reads a hung dial as the engine gone once
    # its scrape timeout passes: a long one keeps the instance routable while the test runs.
    cluster = cluster_factory({"a": ["--dialect", "vllm", "--slowness", "5"]}, {"upstream_connect_timeout_ms": 30000},
                              engine_urls={"a": front}, agent_options={"scrape_timeout_ms": 30000})
    return cluster, fronts["a"]


@pytest.mark.parametrize("transport", ["http", "websocket"])
def test_a_client_that_leaves_while_its_request_connects_abandons_the_dial(cluster_factory, transport):
    cluster, front = black_holed_cluster(cluster_factory)
    gateway = cluster.processes["gateway"].proc.pid
    try:
        front.black_hole()
        with request_over(cluster, transport, {**LONG, "prompt": f"dialled over {transport} while the engine takes no connections"}):
            wait_for(lambda: connecting_sockets(gateway, front.port) >= 1, 10, "the gateway dialling the engine")
            assert gateway_metric(cluster, "junction_gateway_requests_in_flight") == 1
        # The connect timeout is 30 s: only the client leaving can end the dial this soon.
        wait_for(lambda: connecting_sockets(gateway, front.port) == 0, 3, "the dial abandoned")
        wait_for(lambda: gateway_metric(cluster, "junction_gateway_requests_in_flight") == 0, 3, "the gateway's in-flight gauge back to 0")
        wait_for(lambda: no_slot_taken(cluster), 5, "the leader's in-flight count back to 0")
        assert gateway_metric(cluster, "junction_gateway_retries_total") == 0, "the client leaving was taken for an engine failure"
    finally:
        front.stop()


def test_a_websocket_client_that_leaves_while_its_request_is_scheduled_leaves_no_slot_taken(cluster_factory):
    # As over HTTP: the leader frozen while it is asked, the client gone before it answers.
    import signal as signals
    from websockets.sync.client import connect

    cluster = cluster_factory({"a": ["--dialect", "vllm", "--slowness", "5"]})
    engine = cluster.engines["a"]
    leader = cluster.processes[f"scheduler-{cluster.status()['leader_id']}"]
    prompts_before = engine_counter(engine, "prompt_tokens_total")
    url = cluster.url.replace("http://", "ws://") + "/v1/ws"
    with connect(url, additional_headers=HEADERS) as ws:
        leader.proc.send_signal(signals.SIGSTOP)
        try:
            ws.send(json.dumps({**LONG, "prompt": "scheduled over a WebSocket while the leader is frozen"}))
            time.sleep(0.1)
        except BaseException:
            leader.proc.send_signal(signals.SIGCONT)
            raise
    time.sleep(0.1)
    leader.proc.send_signal(signals.SIGCONT)
    wait_for(lambda: gateway_metric(cluster, "junction_gateway_requests_in_flight") == 0, 5, "the gateway's in-flight gauge back to 0")
    wait_for(lambda: no_slot_taken(cluster), 5, "the leader's in-flight count back to 0")
    time.sleep(0.5)
    assert engine_gauge(engine, "num_requests_running") == 0
    assert engine_counter(engine, "prompt_tokens_total") == prompts_before, "the engine computed a prompt for a client that left"


def test_a_gateway_killed_mid_request_leaks_no_slot_for_long(cluster_factory):
    # The gateway dies with a request running: its `finish` never comes. The engine aborts the
    # request when the connection drops, the agent reports it idle, and the leader gives the
    # slot back once its grace has passed (a lost `finish` heals within a few reports).
    import signal as signals
    cluster = cluster_factory({"a": ["--dialect", "vllm", "--slowness", "5"]})
    engine = cluster.engines["a"]
    sock = raw_request(cluster, {**LONG, "prompt": "a request whose gateway dies"})
    wait_for(lambda: engine_gauge(engine, "num_requests_running") >= 1, 10, "the engine running the request")
    wait_for(lambda: not no_slot_taken(cluster), 5, "the leader counting the request")
    cluster.processes["gateway"].proc.send_signal(signals.SIGKILL)
    sock.close()
    wait_for(lambda: engine_gauge(engine, "num_requests_running") == 0, 5, "the engine aborting the orphaned request")
    # The grace is 2 s, then two reports (250 ms apart) must agree.
    wait_for(lambda: no_slot_taken(cluster), 10, "the leader's in-flight count healed to 0")
