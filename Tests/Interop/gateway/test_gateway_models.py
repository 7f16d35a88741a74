"""Every model an engine serves is routed: the base model by each of its names and each LoRA
adapter (vLLM lists adapters in /v1/models with the base as their parent), with the official
`openai` client through a real gateway, scheduler trio, agents and simulated vLLM engines. An
adapter request goes where the adapter is served, and to the instance holding it loaded when
the instances are otherwise alike; adapters loaded and unloaded at run time are followed."""
import re
import uuid

import httpx
import openai
import pytest

from conftest import API_KEY, Cluster, wait_for


@pytest.fixture(scope="module")
def cluster():
    c = Cluster({
        "p": ["--dialect", "vllm", "--served-model-name", "base", "base-chat", "--enable-lora", "--lora-modules", "sql=/a/sql", "poet",
              "--max-loras", "1"],
        "q": ["--dialect", "vllm", "--served-model-name", "base", "--enable-lora", "--lora-modules", "sql", "--max-loras", "1"],
        "r": ["--dialect", "vllm", "--served-model-name", "other"],
    })
    yield c
    c.stop()


def served_requests(cluster, name):
    """Requests the simulated engine `name` finished, from its own /metrics."""
    text = httpx.get(cluster.engines[name] + "/metrics").text
    return sum(float(v) for v in re.findall(r'^vllm:request_success_total\{[^}]*\} (\S+)$', text, re.M))


def instance(cluster, name):
    return next(i for i in cluster.status()["instances"] if i["id"] == name)


def complete(client, model):
    return client.completions.create(model=model, prompt=f"{uuid.uuid4()} tell me", max_tokens=3)


def test_every_name_of_every_engine_is_listed_and_routed_where_it_is_served(cluster, client):
    listed = sorted(m.id for m in client.models.list().data)
    assert listed == ["base", "base-chat", "other", "poet", "sql"]
    p = instance(cluster, "p")
    assert (p["model"], p["aliases"], p["adapters"]) == ("base", ["base-chat"], ["sql", "poet"])
    for model, servers in [("base", {"p", "q"}), ("base-chat", {"p"}), ("sql", {"p", "q"}), ("poet", {"p"}), ("other", {"r"})]:
        before = {name: served_requests(cluster, name) for name in "pqr"}
        answer = complete(client, model)
        assert answer.model == model
        after = {name: served_requests(cluster, name) for name in "pqr"}
        answered = {name for name in "pqr" if after[name] > before[name]}
        assert len(answered) == 1 and answered <= servers, f"{model}: answered by {answered}, served by {servers}"
    with pytest.raises(openai.NotFoundError):
        complete(client, "nope")


def test_an_adapter_request_goes_to_the_instance_that_holds_it_loaded(cluster, client):
    # Load `sql` on q by asking q directly (the scheduler does not see it), and `poet` on p, so
    # that p's single adapter slot holds poet: only q holds sql.
    for engine, model in (("q", "sql"), ("p", "poet")):
        reply = httpx.post(cluster.engines[engine] + "/v1/completions",
                           json={"model": model, "prompt": f"{uuid.uuid4()} warm", "max_tokens": 2}, timeout=30)
        assert reply.status_code == 200, reply.text

    def settled():
        p, q = instance(cluster, "p"), instance(cluster, "q")
        return all(i.get("load", {}).get("running", 1) == 0 and i["in_flight"] == 0 for i in (p, q)) \
            and p["load"]["loaded_adapters"] == ["poet"] and q["load"]["loaded_adapters"] == ["sql"]
    wait_for(settled, 20, "the leader's reports show poet loaded on p and sql on q, both idle")
    before = served_requests(cluster, "q")
    complete(client, "sql")
    assert served_requests(cluster, "q") == before + 1, "the sql request did not go to q, which holds sql loaded"


def test_adapters_loaded_and_unloaded_at_run_time_are_followed(cluster, client):
    reply = httpx.post(cluster.engines["q"] + "/v1/load_lora_adapter", json={"lora_name": "haiku", "lora_path": "/a/haiku"})
    assert reply.status_code == 200, reply.text
    # The agent reads /v1/models every 2 s and registers the change; the gateway's table follows.
    wait_for(lambda: "haiku" in [m.id for m in client.models.list().data], 30, "the gateway lists haiku")
    before = served_requests(cluster, "q")
    assert complete(client, "haiku").model == "haiku"
    assert served_requests(cluster, "q") == before + 1

    reply = httpx.post(cluster.engines["q"] + "/v1/unload_lora_adapter", json={"lora_name": "haiku"})
    assert reply.status_code == 200, reply.text
    wait_for(lambda: "haiku" not in [m.id for m in client.models.list().data], 30, "the gateway no longer lists haiku")
    with pytest.raises(openai.NotFoundError):
        complete(client, "haiku")
    assert instance(cluster, "q")["adapters"] == ["sql"]


def test_a_sessions_short_turns_stay_on_one_instance(cluster, client):
    """Prompts shorter than one chunk give prefix affinity nothing; the session key (an
    `x-session-id` header, or the `user` field) keeps the conversation on one instance while the
    instances are otherwise alike (here: idle, as their reports show before each turn)."""
    def idle():
        return all(instance(cluster, name).get("load", {}).get("running", 1) == 0 and instance(cluster, name)["in_flight"] == 0
                   for name in "pq")
    for how in ("header", "user"):
        served = []
        for turn in range(6):
            wait_for(idle, 20, "p and q idle")
            body = {"model": "base", "prompt": f"turn {turn}", "max_tokens": 2}
            headers = {"Authorization": f"Bearer {API_KEY}"}
            if how == "header":
                headers["x-session-id"] = "conversation-h"
            else:
                body["user"] = "conversation-u"
            reply = httpx.post(cluster.url + "/v1/completions", json=body, headers=headers, timeout=30)
            assert reply.status_code == 200, reply.text
            served.append(reply.headers["x-junction-instance"])
        assert len(set(served)) == 1, f"{how}: the session moved between instances: {served}"


def test_a_served_model_with_no_instance_up_gets_a_retryable_503_and_an_unknown_one_404(cluster, client):
    """Last in this module: it stops r, the only engine of `other`. The model is still
    registered, so its requests get 503 with Retry-After (the openai client retries those), not
    the 404 that tells a client the model does not exist."""
    cluster.processes["sim-r"].stop()
    wait_for(lambda: instance(cluster, "r")["state"] != "up", 30, "the leader taking r down once its agent finds the engine gone")
    with pytest.raises(openai.InternalServerError) as caught:
        complete(client, "other")
    assert caught.value.status_code == 503 and caught.value.code == "no_instance_up", caught.value
    assert caught.value.response.headers["retry-after"] == "1"
    with pytest.raises(openai.NotFoundError) as unknown:
        complete(client, "nope")
    assert unknown.value.code == "model_not_found"
    # The other models are served as before.
    assert complete(client, "base").model == "base"
