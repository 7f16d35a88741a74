"""A conversation's next turn goes where its last one went without the gateway waiting for the
leader, under the leader's grant (prefix-cache's `reuse_ms`), and the leader books it; nothing is
granted when the policy grants none, and a grant whose engine has died costs a retry elsewhere,
not a failed request."""
import httpx
from prometheus_client.parser import text_string_to_metric_families

from conftest import API_KEY, wait_for

HEADERS = {"Authorization": f"Bearer {API_KEY}"}
# Grants are off by default (`reuse_ms` 0); the config turns them on.
GRANTS = {"policy": "prefix-cache", "params": {"reuse_ms": 10000}}
# About 320 tokens: a first turn's prompt work under one typical request's (`queued_request_tokens`
# 512), so the leader grants on it too.
SYSTEM = "You answer questions about rivers, seas and the weather with care and at length. " * 15


def ask(cluster, messages):
    reply = httpx.post(cluster.url + "/v1/chat/completions", headers=HEADERS, timeout=30,
                       json={"model": "tiny", "messages": messages, "max_tokens": 8})
    assert reply.status_code == 200, reply.text
    answer = reply.json()["choices"][0]["message"]["content"]
    return reply.headers["x-junction-route"], reply.headers["x-junction-instance"], answer


def conversation(cluster, topic, turns):
    """Sends `turns` turns of one conversation, each carrying the answers before it; returns
    each turn's (route, instance)."""
    messages = [{"role": "system", "content": SYSTEM}]
    seen = []
    for turn in range(turns):
        messages.append({"role": "user", "content": f"Turn {turn} about {topic}: what else should I know?"})
        route, instance, answer = ask(cluster, messages)
        seen.append((route, instance))
        messages.append({"role": "assistant", "content": answer})
    return seen, messages


def leader_decisions(cluster):
    """The leader's decisions by outcome, summed over the members (whoever decided counts)."""
    counts = {}
    for name, process in cluster.processes.items():
        if not name.startswith("scheduler-"):
            continue
        for family in text_string_to_metric_families(httpx.get(process.metrics_url() + "/metrics").text):
            for sample in family.samples:
                if sample.name == "junction_scheduler_decisions_total":
                    counts[sample.labels["outcome"]] = counts.get(sample.labels["outcome"], 0) + sample.value
    return counts


def test_the_next_turn_goes_where_the_last_went_and_the_leader_books_it(cluster_factory):
    cluster = cluster_factory({"a": ["--slowness", "5"], "b": ["--slowness", "5"]}, metrics=True, scheduler_options=GRANTS)
    # The leader grants only on an engine its agent has reported idle of queues.
    wait_for(lambda: all("load" in i for i in (cluster.status() or {"instances": [{}]})["instances"]), 20, "both engines reported")
    seen, messages = conversation(cluster, "the sea", 6)
    first_instance = seen[0][1]
    assert seen[0][0] == "scheduled"
    # The conversation stays on its engine (idle engines; it holds the conversation cached), and
    # its later turns go there by the grant the turn before earned. The leader grants only while
    # the engine's latest report shows no queue, which an agent's scrape can catch in the instant
    # between a request's arrival and its admission: so not every turn is required to.
    assert all(instance == first_instance for _, instance in seen), seen
    reused = sum(1 for route, _ in seen if route == "reused")
    assert reused >= 3 and {route for route, _ in seen[1:]} <= {"reused", "scheduled"}, seen
    # The leader heard of each (booked a slot, which the turn's finish released).
    decided = wait_for(lambda: (lambda d: d if d.get("reused", 0) + d.get("reused_elsewhere", 0) >= reused else None)(
        leader_decisions(cluster)), 10, "the leader counted every reused turn")
    assert decided.get("reused", 0) + decided.get("reused_elsewhere", 0) == reused, decided
    assert decided.get("reused_refused", 0) == 0, decided
    wait_for(lambda: all(i["in_flight"] == 0 for i in (cluster.status() or {"instances": [{"in_flight": 1}]})["instances"]), 10,
             "every slot released")

    # With reuse_ms 0 (the default) the leader grants nothing: every turn asks.
    cluster.ctl("set-policy", "prefix-cache", "--param", "reuse_ms=0")
    wait_for(lambda: (cluster.status() or {}).get("policy", {}).get("params", {}).get("reuse_ms") == 0, 10, "reuse_ms 0 in force")
    seen, _ = conversation(cluster, "the weather", 3)
    assert [route for route, _ in seen] == ["scheduled"] * 3, seen


def test_a_grant_whose_engine_died_costs_a_retry_not_the_request(cluster_factory):
    cluster = cluster_factory({"a": ["--slowness", "5"], "b": ["--slowness", "5"]}, scheduler_options=GRANTS)
    seen, messages = conversation(cluster, "rivers", 1)
    dead = seen[0][1]
    cluster.processes[f"sim-{dead}"].stop()
    messages.append({"role": "user", "content": "And lakes?"})
    route, instance, _ = ask(cluster, messages)
    # Whether the table already showed the engine down (no grant used) or not (the grant's
    # attempt failed and the retry asked the leader), the turn is answered by the other engine.
    assert instance != dead and route == "scheduled", (route, instance)
