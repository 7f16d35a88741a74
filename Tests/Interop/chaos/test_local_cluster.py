"""The README's first command end to end: Deploy/local/up.sh brings up the whole local cluster
(three schedulers, four simulated engines with agents, two gateways, HAProxy), the demo sends
requests through the load balancer, a request is one trace, WebSocket works through the
balancer, and every dashboard panel has data under load. The chaos faults run against the same
cluster with TLS on (test_local_cluster_tls.py). Everything is stopped by PID afterwards."""
import secrets
import time

import httpx
import openai
import pytest

from local_cluster_setup import ROOT, local_cluster


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    yield from local_cluster(tmp_path_factory)


def test_the_demo_routes_through_the_balancer(local):
    demo = local("Deploy/local/demo.sh")
    assert demo.returncode == 0
    assert demo.stdout.count("x-junction-route: scheduled") == 3, demo.stdout
    assert "data: [DONE]" in demo.stdout
    status = local("Deploy/local/status.sh")
    assert "leader" in status.stdout and status.stdout.count(" up tiny ") == 4
    assert status.stdout.count("scheduled routing") == 2 and status.stdout.count("  UP") == 2


def test_a_request_through_the_balancer_is_one_trace_across_a_gateway_and_the_leader(local):
    trace_id = secrets.token_hex(16)
    with openai.OpenAI(base_url=f"http://127.0.0.1:{local.balancer_port}/v1", api_key="none", max_retries=0, timeout=30,
                       default_headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}) as client:
        answer = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "trace me"}], max_tokens=4)
    assert answer.choices
    deadline = time.time() + 30
    while time.time() < deadline:
        spans = {(s["service"], s["name"]) for s in local.receiver.snapshot() if s["trace_id"] == trace_id}
        if {("junction-gateway", "POST /v1/chat/completions"), ("junction-gateway", "engine request"),
                ("junction-scheduler", "decide")} <= spans:
            return
        time.sleep(0.2)
    raise AssertionError(f"the trace did not arrive whole: {spans}")


def test_websocket_through_the_balancer_on_reused_connections(local):
    # HAProxy pools its connections to the gateways, so an upgrade arrives on a connection that
    # already carried requests; the gateway must switch protocols there, not redirect.
    import json
    from websockets.sync.client import connect

    url = f"ws://127.0.0.1:{local.balancer_port}/v1/ws"
    for i in range(6):
        with connect(url, open_timeout=10) as ws:
            ws.send(json.dumps({"model": "tiny", "prompt": f"through the balancer {i}", "max_tokens": 3, "stream": True}))
            messages = []
            while (message := ws.recv(timeout=30)) != "[DONE]":
                messages.append(json.loads(message))
            assert messages and messages[0]["object"] == "text_completion"


def prometheus_query(local, expr):
    answer = httpx.get(f"http://127.0.0.1:{local.prometheus_port}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def test_every_dashboard_panel_has_data_under_load(local):
    """Every query of every panel of Deploy/observability/junction-dashboard.json, run against the
    local cluster's Prometheus while requests with a shared prefix stream through the balancer,
    returns at least one series with a number (0 is data; an empty answer or NaN is not)."""
    import json
    import math
    import threading
    import time

    dashboard = json.load(open(ROOT / "Deploy/observability/junction-dashboard.json"))
    queries = [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert len({title for title, _ in queries}) >= 16

    stop = threading.Event()
    errors = []

    def load(worker):
        system = "You are a careful assistant for a routing test; answer briefly and precisely. " * 12
        with openai.OpenAI(base_url=f"http://127.0.0.1:{local.balancer_port}/v1", api_key="any", max_retries=0, timeout=60) as client:
            for i in range(400):
                if stop.is_set():
                    return
                try:
                    # Usage in the stream: the gateway's TPOT needs the answer's token count.
                    stream = client.chat.completions.create(
                        model="tiny", stream=True, max_tokens=24, stream_options={"include_usage": True},
                        messages=[{"role": "system", "content": system}, {"role": "user", "content": f"question {worker}-{i}"}])
                    for _ in stream:
                        pass
                except Exception as error:  # noqa: BLE001 - any failure fails the test below
                    errors.append(repr(error))
                    return

    workers = [threading.Thread(target=load, args=(w,)) for w in range(6)]
    for worker in workers:
        worker.start()
    missing = queries
    try:
        deadline = time.time() + 90
        while missing and time.time() < deadline:
            time.sleep(2)
            missing = [(title, expr) for title, expr in missing
                       if not any(not math.isnan(float(series["value"][1])) for series in prometheus_query(local, expr))]
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=120)
    assert not errors, errors[:3]
    assert not missing, f"panels without data after 90 s of load: {missing}"
