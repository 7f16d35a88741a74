"""Flow control through a real gateway: tenants' limits answered 429 with Retry-After, priority
classes served highest first when every engine is busy, the full queue shedding the lowest class,
and a request lowering its own class with `x-junction-priority`."""
import concurrent.futures
import re
import time

import httpx

from conftest import API_KEY
from test_gateway_faults import hold_engine

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


def post(cluster, key, prompt, max_tokens=4, headers=None, timeout=30):
    return httpx.post(cluster.url + "/v1/completions", timeout=timeout,
                      headers={"Authorization": f"Bearer {key}", **(headers or {})},
                      json={"model": "tiny", "prompt": prompt, "max_tokens": max_tokens})


def metric(cluster, name, **labels):
    """The value of one sample of the gateway's /metrics, 0 when absent."""
    text = httpx.get(cluster.url + "/metrics").text
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


def test_a_tenant_at_its_concurrency_limit_is_refused_until_a_request_ends(cluster_factory):
    cluster = cluster_factory({"a": ["--dialect", "vllm", "--slowness", "20"]}, TENANTS)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        long = pool.submit(post, cluster, "solo-key", "a long one", 400)
        # Wait until the gateway has it in flight.
        deadline = time.time() + 10
        while time.time() < deadline and metric(cluster, "junction_gateway_tenant_requests_total", tenant="solo", outcome="admitted") < 1:
            time.sleep(0.05)
        refused = post(cluster, "solo-key", "one more")
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limit_concurrency", refused.text
        assert refused.headers["retry-after"] == "1"
        assert long.result().status_code == 200
    assert post(cluster, "solo-key", "after it ended").status_code == 200


def test_when_engines_are_busy_the_higher_class_goes_first_and_the_full_queue_sheds_the_lowest(cluster_factory):
    # One sequence at a time, and saturated from one waiting request: held requests fill it.
    # The queue's own period is long here: after the interactive request goes, the batch one
    # waits for it (no capacity signal comes), so the interactive one reaches the engine first.
    options = dict(TENANTS, wait_schedule_timeout=30000, wait_schedule_try_period=1000)
    cluster = cluster_factory({"a": ["--dialect", "vllm", "--max-num-seqs", "1", "--slowness", "20"]}, options)
    out = cluster.ctl("set-policy", "prefix-cache", "--param", "saturated_waiting=1", "--param", "saturated_kv_usage=0")
    assert "policy prefix-cache" in out, out
    held = [hold_engine(cluster.engines["a"], f"busy {i}") for i in range(2)]
    deadline = time.time() + 10
    while time.time() < deadline:
        status = cluster.status()
        if status and status["instances"][0].get("load", {}).get("waiting", 0) >= 1:
            break
        time.sleep(0.1)

    def pending():
        return metric(cluster, "junction_gateway_requests_pending")

    def wait_pending(count):
        deadline = time.time() + 10
        while time.time() < deadline and pending() != count:
            time.sleep(0.05)
        assert pending() == count

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


def test_config_mistakes_in_tenants_are_named_by_key(tmp_path):
    import json
    import subprocess
    from conftest import BINARY
    base = {"cluster": {"secret": "flow-test-secret-0123456", "schedulers": [{"id": 1, "address": "127.0.0.1:1"}]}}
    cases = [
        ({"tenants": {"nobody": {"class": "batch"}}}, "llm_gateway.tenants.nobody"),
        ({"api_keys": [{"client": "a", "key": "k"}], "tenants": {"a": {"class": "urgent"}}}, "llm_gateway.tenants.a.class"),
        ({"api_keys": [{"client": "a", "key": "k"}], "tenants": {"a": {"max_concurent": 3}}}, "llm_gateway.tenants.a.max_concurent"),
        ({"priority_classes": [{"name": "low", "headroom": {"max_kv_usage": 1.5}}]}, "llm_gateway.priority_classes[0].headroom.max_kv_usage"),
        ({"priority_classes": []}, "llm_gateway.priority_classes"),
    ]
    for gateway, key in cases:
        path = tmp_path / "config.json"
        path.write_text(json.dumps(dict(base, llm_gateway=gateway)))
        out = subprocess.run([BINARY, "gateway", "--config", str(path), "--port", "0"], capture_output=True, text=True, timeout=20)
        assert out.returncode != 0 and key in out.stdout + out.stderr, (gateway, out.stdout, out.stderr)
