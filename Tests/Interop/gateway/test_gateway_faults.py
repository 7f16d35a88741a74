"""Faults under load through a real gateway: an engine refusing connections, the whole scheduler
trio stopped and restarted, the wait queue full and timing out."""
import concurrent.futures
import json
import re
import socket
import signal
import threading
import time

import httpx

from conftest import API_KEY

HEADERS = {"Authorization": f"Bearer {API_KEY}"}


def complete(cluster, prompt, max_tokens=4, timeout=30):
    return httpx.post(cluster.url + "/v1/completions", headers=HEADERS, timeout=timeout,
                      json={"model": "tiny", "prompt": prompt, "max_tokens": max_tokens})


def test_an_engine_refusing_connections_is_retried_elsewhere(cluster_factory):
    cluster = cluster_factory({"a": ["--dialect", "vllm"], "b": ["--dialect", "sglang"]})
    # Kill b and its agent: with a 60 s heartbeat timeout the scheduler still believes b is up.
    cluster.processes["agent-b"].stop()
    cluster.processes["sim-b"].stop()
    replies = [complete(cluster, f"request {i} " + "y" * (300 + i)) for i in range(12)]
    assert [r.status_code for r in replies] == [200] * 12
    assert {r.headers["x-junction-instance"] for r in replies} == {"a"}
    metrics = httpx.get(cluster.url + "/metrics").text
    assert 'junction_gateway_upstream_errors_total{instance_id="b"}' in metrics
    retries = re.search(r"^junction_gateway_retries_total (\S+)$", metrics, re.M)
    assert retries and float(retries.group(1)) >= 1, "the HELP line alone would not prove a retry happened" 


def test_stopping_the_whole_trio_under_load_loses_nothing_and_restarting_it_ends_fallback(cluster_factory):
    cluster = cluster_factory({"a": ["--dialect", "vllm"], "b": ["--dialect", "vllm"]})
    results = []
    stop = threading.Event()

    def load(worker):
        n = 0
        while not stop.is_set() and n < 400:
            n += 1
            try:
                reply = complete(cluster, f"worker {worker} request {n}", timeout=20)
                results.append((reply.status_code, reply.headers.get("x-junction-route"), time.time()))
            except httpx.HTTPError as error:
                results.append((repr(error), None, time.time()))

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        workers = [pool.submit(load, w) for w in range(3)]
        time.sleep(1.0)
        for i in (1, 2, 3):
            cluster.processes[f"scheduler-{i}"].stop(signal.SIGKILL)
        stopped_at = time.time()
        time.sleep(2.5)
        for i in (1, 2, 3):
            cluster.start_scheduler(i)
        restarted_at = time.time()
        time.sleep(4.0)
        stop.set()
        for w in workers:
            w.result()
    failures = [r for r in results if r[0] != 200]
    assert not failures, failures[:5]
    routes_while_down = {route for status, route, at in results if stopped_at + 0.8 < at < restarted_at}
    assert routes_while_down == {"fallback"}
    assert results[-1][1] == "scheduled", "routing by the scheduler did not resume"
    metrics = httpx.get(cluster.url + "/metrics").text
    assert 'junction_gateway_fallback_transitions_total{to="fallback"}' in metrics
    assert 'junction_gateway_fallback_transitions_total{to="scheduled"}' in metrics


def hold_engine(engine, prompt):
    """A raw streaming request straight to the engine, kept open until the socket is closed
    (which makes the engine abort it)."""
    host, port = engine.removeprefix("http://").split(":")
    body = json.dumps({"model": "tiny", "prompt": prompt, "max_tokens": 1500, "ignore_eos": True, "stream": True}).encode()
    sock = socket.create_connection((host, int(port)))
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: engine\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return sock


def fill_engine(cluster):
    """Saturates the cluster's one engine (started with `--max-num-seqs 1`): the policy takes one
    waiting request for saturated, and two requests held open on the engine keep one waiting,
    which the leader's status shows before this returns. Closing the returned sockets frees it."""
    out = cluster.ctl("set-policy", "prefix-cache", "--param", "saturated_waiting=1", "--param", "saturated_kv_usage=0")
    assert "policy prefix-cache" in out, out
    held = [hold_engine(next(iter(cluster.engines.values())), f"busy {i}") for i in range(2)]
    deadline = time.time() + 10
    waiting = 0
    while time.time() < deadline and waiting < 1:
        status = cluster.status()
        waiting = status["instances"][0].get("load", {}).get("waiting", 0) if status else 0
        time.sleep(0.1)
    assert waiting >= 1, "the engine never showed a waiting request"
    return held


def test_a_full_queue_is_429_and_a_long_wait_is_503_then_capacity_releases_waiters(cluster_factory):
    # One sequence at a time: two requests held open on the engine keep one of them waiting.
    cluster = cluster_factory({"a": ["--dialect", "vllm", "--max-num-seqs", "1", "--slowness", "20"]})
    held = fill_engine(cluster)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        started = time.time()
        replies = list(pool.map(lambda i: complete(cluster, f"wait {i}"), range(3)))
        elapsed = time.time() - started
    codes = sorted(r.status_code for r in replies)
    assert codes == [429, 503, 503], codes
    for reply in replies:
        assert reply.headers["retry-after"] == "1"
        assert reply.json()["error"]["code"] in ("queue_full", "schedule_timeout")
    assert elapsed >= 1.4

    # A waiting request goes through as soon as the engine has room again.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(complete, cluster, "released")
        time.sleep(0.3)
        released_at = time.time()
        for sock in held:
            sock.close()
        reply = waiting.result()
    assert reply.status_code == 200 and time.time() - released_at < 1.2


def test_a_recovered_engine_is_back_in_rotation_within_seconds(cluster_factory):
    cluster = cluster_factory({"a": ["--dialect", "vllm"], "b": ["--dialect", "vllm"]})
    sim = cluster.processes["sim-b"]
    port = cluster.engines["b"].rsplit(":", 1)[1]
    sim.stop()
    # b is marked down by its agent; everything goes to a.
    deadline = time.time() + 5
    while time.time() < deadline:
        status = cluster.status()
        if status and any(i["id"] == "b" and i["state"] == "down" for i in status["instances"]):
            break
        time.sleep(0.1)
    assert {complete(cluster, f"while b is down {i}").headers["x-junction-instance"] for i in range(6)} == {"a"}
    # b comes back: requests reach it again within a few seconds, not after a minute-long breaker.
    from conftest import Process
    cluster.processes["sim-b"] = Process("sim-b2", ["engine-sim", "--port", port, "--dialect", "vllm"], cluster.dir)
    cluster.processes["sim-b"].listening_url()
    back = time.time()
    seen_b = None
    while time.time() - back < 10 and seen_b is None:
        reply = complete(cluster, f"after b is back {time.time()}")
        assert reply.status_code == 200
        if reply.headers["x-junction-instance"] == "b":
            seen_b = time.time() - back
        time.sleep(0.05)
    assert seen_b is not None and seen_b < 3, seen_b


def test_a_stream_cut_before_its_first_chunk_is_retried_elsewhere(cluster_factory):
    # b sends its answer's headers and then drops the connection before any event: nothing has
    # reached the client, so the gateway must try another engine instead of failing the request.
    cluster = cluster_factory({"a": ["--dialect", "vllm"], "b": ["--dialect", "vllm", "--cut-stream-after-tokens", "0"]})
    answered = []
    for i in range(12):
        with httpx.stream("POST", cluster.url + "/v1/completions", headers=HEADERS, timeout=30,
                          json={"model": "tiny", "prompt": f"stream {i} " + "z" * (200 + 7 * i), "max_tokens": 4,
                                "stream": True}) as reply:
            body = reply.read()
            assert reply.status_code == 200, body
            assert body.rstrip().endswith(b"data: [DONE]") and b'"error"' not in body, body
            answered.append(reply.headers["x-junction-instance"])
    assert set(answered) == {"a"}
    metrics = httpx.get(cluster.url + "/metrics").text
    errors = re.search(r'^junction_gateway_upstream_errors_total\{instance_id="b"\} (\S+)$', metrics, re.M)
    assert errors and float(errors.group(1)) >= 1, "b was never tried, so nothing was retried"


def test_a_hung_engine_is_out_of_rotation_within_seconds_and_its_agent_registers_once(cluster_factory):
    # The engine accepts connections and never answers. Its agent's probes time out
    # (scrape_timeout_ms 1000, health_failures 2), while its reports keep flowing: the leader
    # marks the instance down, and the agent does not take its own wait for a lost scheduler.
    cluster = cluster_factory({"a": ["--dialect", "vllm"], "b": ["--dialect", "vllm"]})
    engine = cluster.engines["a"]

    def state(name):
        status = cluster.status() or {"instances": []}
        return next((i["state"] for i in status["instances"] if i["id"] == name), None)

    assert httpx.post(engine + "/admin/faults", json={"hang": True}).status_code == 200
    hung_at = time.time()
    try:
        deadline = time.time() + 15
        while time.time() < deadline and state("a") == "up":
            time.sleep(0.05)
        out_after = time.time() - hung_at
        assert state("a") != "up", cluster.logs()
        print(f"hung engine out of rotation after {out_after:.2f} s")
        replies = [complete(cluster, f"while a hangs {i}") for i in range(6)]
        assert [r.status_code for r in replies] == [200] * 6
        assert {r.headers["x-junction-instance"] for r in replies} == {"b"}
        time.sleep(2.0)  # long enough for the re-registrations the old agent made every second
    finally:
        httpx.delete(engine + "/admin/faults")
    log = open(cluster.processes["agent-a"].log_path, errors="replace").read()
    registrations = [line for line in log.splitlines() if line.endswith("] registered")]
    assert len(registrations) == 1, "\n".join(log.splitlines()[-20:])
    deadline = time.time() + 10
    while time.time() < deadline and state("a") != "up":
        time.sleep(0.05)
    assert state("a") == "up", "the engine did not come back once it answered again"
