"""Tenants' limits across gateways: two gateways of one trio admit a tenant its limit between
them, not each (the leader leases slices of each tenant's budget); when no leader answers, each
enforces its share (the limit divided by the gateways the leader last counted). `junction ctl
tenants` shows the leader's budgets."""
import json
import time

import httpx

from conftest import API_KEY, wait_for
from test_flow_control import hold_gateway, metric, post

TENANTS = {
    "api_keys": [API_KEY, {"client": "jobs", "key": "jobs-key"}, {"client": "pair", "key": "pair-key"},
                 {"client": "cut", "key": "cut-key"}],
    "tenants": {
        "jobs": {"requests_per_minute": 6},
        "pair": {"max_concurrent": 2},
        "cut": {"requests_per_minute": 6},
    },
}


def two_gateways(cluster_factory, engine_args=()):
    cluster = cluster_factory({"a": ["--dialect", "vllm", *engine_args]}, TENANTS)
    second = cluster.start_gateway("gw-2")
    wait_for(lambda: httpx.get(second + "/ready").status_code == 200, 20, "the second gateway is ready")
    return cluster, [cluster.url, second]


def test_a_requests_per_minute_limit_holds_across_two_gateways(cluster_factory):
    cluster, gateways = two_gateways(cluster_factory)
    started = time.time()
    replies = [post(gateways[i % 2], "jobs-key", f"job {i}") for i in range(12)]
    # The leader's view, read now: the allowance below counts the time up to here.
    tenants = json.loads(cluster.ctl("tenants", "--json"))
    text = cluster.ctl("tenants")
    elapsed = time.time() - started
    admitted = [r for r in replies if r.status_code == 200]
    refused = [r for r in replies if r.status_code != 200]
    # The limit is 6 a minute, refilling at one every 10 s: a slow run may earn more.
    allowed = 6 + int(elapsed / 10)
    assert len(admitted) <= allowed, [r.status_code for r in replies]
    assert len(admitted) >= 3, [(r.status_code, r.text) for r in replies]
    for reply in refused:
        assert reply.status_code == 429, reply.text
        assert reply.json()["error"]["code"] == "rate_limit_requests", reply.text
        assert int(reply.headers["retry-after"]) >= 1
    by_gateway = [metric(url, "junction_gateway_tenant_requests_total", tenant="jobs", outcome="admitted") for url in gateways]
    assert all(count >= 1 for count in by_gateway), by_gateway
    assert sum(by_gateway) == len(admitted)
    # The leader's view: both gateways hold leases of the budget, and what they were granted
    # and did not give back covers every request admitted.
    jobs = next(t for t in tenants["tenants"] if t["tenant"] == "jobs")
    assert jobs["requests_per_minute"] == 6 and tenants["gateways"] == 2
    assert len(admitted) <= jobs["requests_used"] <= allowed, jobs
    assert "jobs" in text and "left of 6" in text, text


def test_a_concurrency_limit_holds_across_two_gateways_and_moves_to_where_it_is_wanted(cluster_factory):
    # Each token takes 20 ms: a held request runs until the test closes its connection.
    cluster, (first, second) = two_gateways(cluster_factory, ["--slowness", "20"])
    held = [hold_gateway(first, "pair-key", f"long {i}") for i in range(2)]
    wait_for(lambda: metric(first, "junction_gateway_tenant_requests_total", tenant="pair", outcome="admitted") >= 2, 15,
             "both held requests admitted at the first gateway")
    refused = post(second, "pair-key", "a third, elsewhere")
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "rate_limit_concurrency"
    # One held request ends: its slot moves to the gateway that wants it.
    held[0].close()

    def admitted_at_second():
        reply = post(second, "pair-key", "after one ended")
        return reply if reply.status_code == 200 else None

    wait_for(admitted_at_second, 15, "the second gateway admits the tenant once a slot is free")
    held[1].close()


def test_without_a_leader_each_gateway_enforces_its_share(cluster_factory):
    cluster, gateways = two_gateways(cluster_factory)
    # Both learn from the leader that two gateways share the budgets.
    for url in gateways:
        wait_for(lambda url=url: metric(url, "junction_gateway_tenant_limits_gateways") == 2, 15, f"{url} counts two gateways")
    for i in (1, 2, 3):
        cluster.processes[f"scheduler-{i}"].stop()
    # Routing falls back to round-robin; each gateway allows half of 6 a minute.
    replies = {url: [post(url, "cut-key", f"cut {i}") for i in range(5)] for url in gateways}
    for url, answers in replies.items():
        codes = [r.status_code for r in answers]
        assert codes == [200, 200, 200, 429, 429], (url, [(r.status_code, r.text[:200]) for r in answers])
        assert answers[3].json()["error"]["code"] == "rate_limit_requests"
        assert metric(url, "junction_gateway_tenant_limits_local") == 1
