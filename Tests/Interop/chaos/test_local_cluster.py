"""The README's first command and the chaos scripts, end to end: Deploy/local/up.sh brings up the
whole local cluster (three schedulers, four simulated engines with agents, two gateways, HAProxy),
the demo sends requests through the load balancer, and three faults run under load: the leader
killed, an engine killed, two schedulers killed. Each chaos script exits non-zero if a request was
lost or failed; timing targets are reported, not enforced, on a shared CI machine
(`--no-time-targets`). Everything is stopped by PID afterwards."""
import os
import pathlib
import random
import secrets
import socket
import subprocess
import sys
import time

import httpx
import openai
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "Tests" / "Interop" / "gateway"))
from otlp_receiver import OTLPReceiver  # noqa: E402
BINARY = os.environ.get("JUNCTION_BIN", str(ROOT / ".build" / "debug" / "junction"))


def ports_free(ports):
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    # A port block nobody else uses: the scripts take base+1..3, +11..12, +21..24, +30..39 (the
    # schedulers' peer links), +41..43 and +51..54 (schedulers' and agents' metrics), +90, +91
    # (Prometheus) and the balancer's port. Below the kernel's ephemeral range:
    # a port in it can be taken as the local end of any outgoing connection between this check
    # and the bind (seen: HAProxy refused 127.0.0.1:38080, "Address already in use", and the
    # whole chaos module failed to start).
    ephemeral_low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    for _ in range(50):
        base = random.randrange(10000, min(ephemeral_low, 50000) - 100, 100)
        ports = [base + d for d in (1, 2, 3, 11, 12, 21, 22, 23, 24, *range(30, 44), 51, 52, 53, 54, 80, 90, 91)]
        if ports_free(ports):
            break
    # The cluster traces to a receiver of the test's own, so the chaos runs with tracing on.
    receiver = OTLPReceiver()
    env = dict(os.environ, JUNCTION_BIN=BINARY, JUNCTION_LOCAL_DIR=str(tmp_path_factory.mktemp("local-cluster")),
               JUNCTION_PORT_BASE=str(base), JUNCTION_LB_PORT=str(base + 80), JUNCTION_OTLP_ENDPOINT=receiver.url)

    def run(*argv, timeout=180):
        out = subprocess.run([str(ROOT / a) if a.startswith("Deploy/") else a for a in argv], env=env,
                             capture_output=True, text=True, timeout=timeout)
        print(f"$ {' '.join(argv)}\n{out.stdout}{out.stderr}")
        return out

    run.balancer_port = base + 80
    run.prometheus_port = base + 91
    run.receiver = receiver
    up = run("Deploy/local/up.sh")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield run
    finally:
        run("Deploy/local/down.sh")
        receiver.stop()
        leftover = subprocess.run(["pgrep", "-f", env["JUNCTION_LOCAL_DIR"]], capture_output=True, text=True).stdout.split()
        assert not leftover, f"processes left behind: {leftover}"


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


@pytest.mark.parametrize("fault", ["kill-leader", "kill-engine", "kill-two-schedulers", "partition-leader", "rolling-restart"])
def test_a_fault_under_load_loses_nothing(local, fault):
    result = local(f"Deploy/chaos/{fault}.sh", "--seed", "7", "--workers", "6", "--no-time-targets")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "lost 0" in result.stdout and "failed 0" in result.stdout and "verdict: PASS" in result.stdout
