"""Flow control through a real gateway: tenants' limits answered 429 with Retry-After, priority
classes served highest first when every engine is busy, the full queue shedding the lowest class,
and a request lowering its own class with `x-junction-priority`."""
import concurrent.futures
import json
import socket
import time

import httpx

from conftest import API_KEY
from test_gateway_faults import fill_engine

TENANTS = {
    "api_keys": [API_KEY, {"client": "chat", "key": "chat-key"}, {"client": "jobs", "key": "jobs-key"},
                 {"client": "tokens", "key": "tokens-key"}, {"client": "solo", "key": "solo-key"}],
    "tenants": {
        "chat": {"class": "interactive"},
        "jobs": {"class": "batch", "requests_per_minute": 2},
        "tokens": {"tokens_per_minute": 100},
        "solo": {"max_concurrent": 1},
    },
}


def url_of(target):
    """A gateway's URL: a cluster's (its first gateway) or the URL itself."""
    return getattr(target, "url", target)


def post(target, key, prompt, max_tokens=4, headers=None, timeout=30):
    # ignore_eos: the engine generates max_tokens, so a request's usage does not hang on its text.
    return httpx.post(url_of(target) + "/v1/completions", timeout=timeout,
                      headers={"Authorization": f"Bearer {key}", **(headers or {})},
                      json={"model": "tiny", "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True})


def metric(target, name, **labels):
    """The value of one sample of the gateway's /metrics, 0 when absent."""
    text = httpx.get(url_of(target) + "/metrics").text
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_each_tenants_limits_answer_429_with_retry_after_and_spare_the_others(cluster_factory):
    cluster = cluster_factory({"a": ["--dialect", "vllm"]}, TENANTS)
    # Requests per minute: 2 a minute, so the third waits for the bucket's next one, 30 s away.
    replies = [post(cluster, "jobs-key", f"job {i}") for i in range(3)]
    assert [r.status_code for r in replies] == [200, 200, 429], [r.text for r in replies]
    refused = replies[2].json()["error"]
    assert refused["code"] == "rate_limit_requests" and refused["type"] == "rate_limit_error"
    assert "'jobs'" in refused["message"] and "2 requests per minute" in refused["message"]
    assert 20 <= int(replies[2].headers["retry-after"]) <= 30
    # Tokens per minute: the estimate (prompt + max_tokens) is taken at admission.
    first = post(cluster, "tokens-key", "count", max_tokens=80)
    second = post(cluster, "tokens-key", "count again", max_tokens=80)
    assert first.status_code == 200 and second.status_code == 429, second.text
    assert second.json()["error"]["code"] == "rate_limit_tokens"
    # The default tenant and the other tenants are not limited by them.
    assert post(cluster, API_KEY, "anyone").status_code == 200
    assert post(cluster, "chat-key", "chat").status_code == 200
    assert metric(cluster, "junction_gateway_tenant_requests_total", tenant="jobs", outcome="refused_requests") == 1
    assert metric(cluster, "junction_gateway_tenant_requests_total", tenant="jobs", outcome="admitted") == 2
    assert metric(cluster, "junction_gateway_tenant_requests_total", tenant="tokens", outcome="refused_tokens") == 1
    assert metric(cluster, "junction_gateway_tenant_tokens_total", tenant="jobs", kind="completion") > 0


def hold_gateway(target, key, prompt):
    """A raw streaming request through the gateway, in flight until the socket is closed (the
    client leaving ends it)."""
    host, port = url_of(target).removeprefix("http://").split(":")
    body = json.dumps({"model": "tiny", "prompt": prompt, "max_tokens": 1500, "ignore_eos": True, "stream": True}).encode()
    sock = socket.create_connection((host, int(port)))
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
                 + f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    return sock


def test_a_tenant_at_its_concurrency_limit_is_refused_until_a_request_ends(cluster_factory):
    # Each token takes 20 ms: the held request runs until the test closes its connection.
    cluster = cluster_factory({"a": ["--dialect", "vllm", "--slowness", "20"]}, TENANTS)
    held = hold_gateway(cluster, "solo-key", "a long one")
    deadline = time.time() + 10
    while time.time() < deadline and metric(cluster, "junction_gateway_tenant_requests_total", tenant="solo", outcome="admitted") < 1:
        time.sleep(0.05)
    refused = post(cluster, "solo-key", "one more")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limit_concurrency", refused.text
    assert refused.headers["retry-after"] == "1"
    # Its client leaves: the request ends and frees the tenant's slot.
    held.close()
    deadline = time.time() + 10
    while time.time() < deadline:
        reply = post(cluster, "solo-key", "after it ended")
        if reply.status_code != 429:
            break
        time.sleep(0.1)
    assert reply.status_code == 200, reply.text


def test_when_engines_are_busy_the_higher_class_goes_first_and_the_full_queue_sheds_the_lowest(cluster_factory):
    # One sequence at a time, and saturated from one waiting request: held requests fill it.
    # Batch here runs only on an engine with nothing else running: once the interactive request is
    # sent, the batch one is told to wait until a report shows the engine free again.
    classes = [{"name": "interactive"}, {"name": "standard"}, {"name": "batch", "headroom": {"max_waiting": 0, "max_running": 1}}]
    options = dict(TENANTS, wait_schedule_timeout=30000, priority_classes=classes)
    cluster = cluster_factory({"a": ["--dialect", "vllm", "--max-num-seqs", "1", "--slowness", "20"]}, options)
    held = fill_engine(cluster)

    def pending():
        return metric(cluster, "junction_gateway_requests_pending")

    def wait_pending(count):
        # Read once a round, and the last read is the one judged: the count is steady once
        # reached (a request woken to ask the leader again still counts as pending).
        deadline = time.time() + 10
        seen = pending()
        while time.time() < deadline and seen != count:
            time.sleep(0.05)
            seen = pending()
        assert seen == count, (seen, "fallback routes", metric(cluster, "junction_gateway_routing_decisions_total", route="fallback"),
                               cluster.status(), finished)

    finished = {}

    def timed(name, key, **kw):
        reply = post(cluster, key, name, **kw)
        finished[name] = time.time()
        return reply

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        first_job = pool.submit(timed, "first job", "jobs-key")
        wait_pending(1)
        second_job = pool.submit(timed, "second job", "jobs-key")
        wait_pending(2)
        # The queue (2) is full: an interactive request takes the newest batch request's place.
        chat = pool.submit(timed, "chat", "chat-key")
        shed = second_job.result(timeout=10)
        assert shed.status_code == 429 and shed.json()["error"]["code"] == "request_shed", shed.text
        assert shed.headers["retry-after"] == "1"
        wait_pending(2)
        # A batch request arriving at a full queue of higher or equal claims is itself refused.
        late = post(cluster, "jobs-key", "late job")
        assert late.status_code == 429, late.text
        # Room again: the interactive request goes before the batch one that waited longer.
        for sock in held:
            sock.close()
        assert chat.result(timeout=30).status_code == 200
        assert first_job.result(timeout=30).status_code == 200
    assert finished["chat"] < finished["first job"]
    assert metric(cluster, "junction_gateway_tenant_requests_total", tenant="jobs", outcome="shed") == 2
    assert metric(cluster, "junction_gateway_tenant_queued", tenant="jobs") == 0
    waits = metric(cluster, "junction_gateway_tenant_queue_wait_seconds_count", tenant="chat")
    assert waits == 1


def test_a_request_may_lower_its_class_but_not_raise_it_and_an_unknown_class_is_400(cluster_factory):
    cluster = cluster_factory({"a": ["--dialect", "vllm"]}, TENANTS)
    assert post(cluster, "chat-key", "lowered", headers={"x-junction-priority": "batch"}).status_code == 200
    assert post(cluster, API_KEY, "raised?", headers={"x-junction-priority": "interactive"}).status_code == 200
    assert metric(cluster, "junction_gateway_tenant_requests_total", tenant="chat", **{"class": "batch"}) == 1
    # The default tenant is standard: asking for interactive keeps it standard.
    assert metric(cluster, "junction_gateway_tenant_requests_total", tenant="default", **{"class": "standard"}) == 1
    assert metric(cluster, "junction_gateway_tenant_requests_total", tenant="default", **{"class": "interactive"}) == 0
    bad = post(cluster, "chat-key", "urgent", headers={"x-junction-priority": "urgent"})
    assert bad.status_code == 400 and "interactive, standard, batch" in bad.json()["error"]["message"], bad.text


def post_body(target, key, body, headers=None):
    return httpx.post(url_of(target) + "/v1/completions", timeout=30, headers={"Authorization": f"Bearer {key}", **(headers or {})},
                      json={"model": "tiny", "max_tokens": 2, **body})


def test_a_classes_engine_priority_reaches_the_engine_in_place_of_the_clients(cluster_factory):
    # The engine schedules first come, first served, and so refuses any priority but 0 with
    # vLLM's own message: what it answers shows what the gateway sent it.
    classes = [{"name": "interactive"}, {"name": "standard"}, {"name": "batch", "engine_priority": 7}]
    cluster = cluster_factory({"a": ["--dialect", "vllm"]}, dict(TENANTS, priority_classes=classes))
    batch = post_body(cluster, "jobs-key", {"prompt": "a batch job"})
    assert batch.status_code == 400 and batch.json()["error"]["message"] == "Got priority 7 but Priority scheduling is not enabled.", batch.text
    lowered = post_body(cluster, "chat-key", {"prompt": "lowered"}, headers={"x-junction-priority": "batch"})
    assert lowered.status_code == 400 and "Got priority 7" in lowered.text
    # A client's own priority is replaced by its class's (0 for the classes that set none): it
    # cannot put itself ahead of anyone inside the engines.
    for key in ("chat-key", API_KEY):
        asked = post_body(cluster, key, {"prompt": "me first", "priority": -100})
        assert asked.status_code == 200, asked.text


def test_a_body_whose_priority_cannot_be_replaced_is_refused_by_the_gateway(cluster_factory):
    # With an engine priority configured, the gateway writes every request's `priority` itself. A
    # body whose own `priority` is a number it cannot write again (1e400 overflows a double) is
    # refused with the gateway's 400, not sent on with the client's value, and nothing else breaks.
    classes = [{"name": "interactive"}, {"name": "standard"}, {"name": "batch", "engine_priority": 7}]
    cluster = cluster_factory({"a": ["--dialect", "vllm"]}, dict(TENANTS, priority_classes=classes))
    raw = b'{"model": "tiny", "max_tokens": 2, "prompt": "unmarkable", "priority": 1e400}'
    refused = httpx.post(url_of(cluster) + "/v1/completions", timeout=30, content=raw,
                         headers={"Authorization": "Bearer chat-key", "Content-Type": "application/json"})
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert "names 'priority'" in error["message"] and "Got priority" not in error["message"], refused.text
    # The same client's next request is marked (priority 0, its class's) and served.
    assert post_body(cluster, "chat-key", {"prompt": "after it", "priority": 3}).status_code == 200


def test_config_mistakes_in_tenants_are_named_by_key(tmp_path):
    import subprocess
    from conftest import BINARY
    base = {"cluster": {"secret": "flow-test-secret-0123456", "schedulers": [{"id": 1, "address": "127.0.0.1:1"}]}}
    cases = [
        ({"tenants": {"nobody": {"class": "batch"}}}, "llm_gateway.tenants.nobody"),
        ({"api_keys": [{"client": "a", "key": "k"}], "tenants": {"a": {"class": "urgent"}}}, "llm_gateway.tenants.a.class"),
        ({"api_keys": [{"client": "a", "key": "k"}], "tenants": {"a": {"max_concurent": 3}}}, "llm_gateway.tenants.a.max_concurent"),
        ({"priority_classes": [{"name": "low", "headroom": {"max_kv_usage": 1.5}}]}, "llm_gateway.priority_classes[0].headroom.max_kv_usage"),
        ({"priority_classes": []}, "llm_gateway.priority_classes"),
        ({"priority_classes": [{"name": "low", "engine_priority": 0.5}]}, "llm_gateway.priority_classes[0].engine_priority"),
    ]
    for gateway, key in cases:
        path = tmp_path / "config.json"
        path.write_text(json.dumps(dict(base, llm_gateway=gateway)))
        out = subprocess.run([BINARY, "gateway", "--config", str(path), "--port", "0"], capture_output=True, text=True, timeout=20)
        assert out.returncode != 0 and key in out.stdout + out.stderr, (gateway, out.stdout, out.stderr)
