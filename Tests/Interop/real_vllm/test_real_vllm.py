"""Opt-in (`make test-real-vllm`): the local cluster in front of two real vLLM servers (vLLM's CPU
build on a tiny local model, installed by Deploy/real-vllm/install.sh outside the repository).
The agents detect vLLM, the official `openai` client gets answers through the load balancer, and
a repeated long prompt lands on the same engine and raises that engine's own
`vllm:prefix_cache_hits_total`. Both engines serve LoRA adapters: engine a starts with
`tiny-lora` (made locally by Deploy/real-vllm/make-lora.py), engine b loads one at run time;
requests for an adapter reach only the engine serving it, and the agent reads which adapter
vLLM holds loaded from its own `vllm:lora_requests_info`."""
import json
import os
import pathlib
import re
import subprocess
import threading
import time

import httpx
import openai
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
BINARY = os.environ.get("JUNCTION_BIN", str(ROOT / ".build" / "debug" / "junction"))
BASE = int(os.environ.get("JUNCTION_PORT_BASE", "18400"))
LB = BASE + 80
ENGINES = {f"engine-{e}": f"http://127.0.0.1:{BASE + 20 + i}" for i, e in enumerate("ab", 1)}
LORA_DIR = os.path.join(os.environ.get("JUNCTION_VLLM_HOME", os.path.expanduser("~/.cache/junction/vllm")), "lora")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    env = dict(os.environ, JUNCTION_BIN=BINARY, JUNCTION_ENGINES="real-vllm", JUNCTION_PORT_BASE=str(BASE),
               JUNCTION_LB_PORT=str(LB), JUNCTION_LOCAL_DIR=str(tmp_path_factory.mktemp("real-vllm-cluster")))
    up = subprocess.run([str(ROOT / "Deploy/local/up.sh")], env=env, capture_output=True, text=True, timeout=900)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield env
    finally:
        subprocess.run([str(ROOT / "Deploy/local/down.sh")], env=env, capture_output=True, text=True, timeout=120)


def status(env):
    out = subprocess.run([BINARY, "ctl", "status", "--json", "--config", os.path.join(env["JUNCTION_LOCAL_DIR"], "cluster.json")],
                         capture_output=True, text=True, timeout=20)
    return json.loads(out.stdout)


def prefix_hits(url):
    text = httpx.get(url + "/metrics", timeout=10).text
    return sum(float(m.group(1)) for m in re.finditer(r"^vllm:prefix_cache_hits_total\{[^}]*\} (\S+)$", text, re.M))


def test_agents_detect_vllm_and_the_openai_client_is_answered(cluster):
    instances = status(cluster)["instances"]
    assert len(instances) == 2 and all(i["state"] == "up" for i in instances)
    assert all(i.get("engine") == "vllm" for i in instances), instances
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{LB}/v1", api_key="unused", max_retries=0, timeout=120)
    chat = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hello"}], max_tokens=8)
    assert chat.choices[0].message.content is not None and chat.usage.completion_tokens >= 1
    chunks = list(client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "stream"}],
                                                 max_tokens=8, stream=True))
    assert chunks and chunks[-1].choices[0].finish_reason is not None


def test_a_repeated_long_prompt_lands_on_one_engine_and_hits_its_prefix_cache(cluster):
    engines = {f"engine-{e}": f"http://127.0.0.1:{BASE + 20 + i}" for i, e in enumerate("ab", 1)}
    before = {name: prefix_hits(url) for name, url in engines.items()}
    # About 900 tokens of shared context: several of vLLM's 128-token CPU blocks.
    document = " ".join(f"Section {i}: the router keeps each conversation where its cache is warm." for i in range(60))
    served = []
    with httpx.Client(base_url=f"http://127.0.0.1:{LB}", timeout=120) as http:
        for turn in range(4):
            reply = http.post("/v1/completions", json={"model": "tiny", "prompt": document + f" Question {turn}?", "max_tokens": 4})
            assert reply.status_code == 200, reply.text
            served.append(reply.headers["x-junction-instance"])
    assert len(set(served)) == 1, f"the repeated prompt moved between engines: {served}"
    after = {name: prefix_hits(url) for name, url in engines.items()}
    assert after[served[0]] - before[served[0]] >= 128, (before, after)


def instance(env, name):
    return next(i for i in status(env)["instances"] if i["id"] == name)


def wait_for(condition, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


def test_every_model_vllm_lists_is_registered_and_an_adapter_goes_where_it_is_served(cluster):
    a, b = instance(cluster, "engine-a"), instance(cluster, "engine-b")
    assert (a["model"], a["adapters"], b["adapters"]) == ("tiny", ["tiny-lora"], []), (a, b)
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{LB}/v1", api_key="unused", max_retries=0, timeout=120)
    assert sorted(m.id for m in client.models.list().data) == ["tiny", "tiny-lora"]
    with httpx.Client(base_url=f"http://127.0.0.1:{LB}", timeout=120) as http:
        for turn in range(4):
            reply = http.post("/v1/completions", json={"model": "tiny-lora", "prompt": f"adapter turn {turn}", "max_tokens": 4})
            assert reply.status_code == 200, reply.text
            assert reply.json()["model"] == "tiny-lora" and reply.headers["x-junction-instance"] == "engine-a"


def test_the_agent_reports_the_adapter_vllm_holds_loaded(cluster):
    # A long answer keeps the adapter's request running while the agent scrapes vLLM's
    # vllm:lora_requests_info; it stays reported as loaded afterwards (it keeps its slot).
    def long_request():
        with httpx.Client(timeout=300) as http:
            http.post(ENGINES["engine-a"] + "/v1/completions",
                      json={"model": "tiny-lora", "prompt": "count", "max_tokens": 1500, "ignore_eos": True})
    worker = threading.Thread(target=long_request)
    worker.start()
    try:
        wait_for(lambda: instance(cluster, "engine-a").get("load", {}).get("loaded_adapters") == ["tiny-lora"], 120,
                 "engine-a reported with tiny-lora loaded")
    finally:
        worker.join(300)
    assert instance(cluster, "engine-b").get("load", {}).get("loaded_adapters") == []


def test_an_adapter_loaded_at_run_time_is_registered_routed_and_dropped_when_unloaded(cluster):
    reply = httpx.post(ENGINES["engine-b"] + "/v1/load_lora_adapter", json={"lora_name": "tiny-lora-b", "lora_path": LORA_DIR},
                       timeout=120)
    assert reply.status_code == 200, reply.text
    wait_for(lambda: instance(cluster, "engine-b")["adapters"] == ["tiny-lora-b"], 60, "engine-b registered with tiny-lora-b")
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{LB}/v1", api_key="unused", max_retries=0, timeout=120)
    wait_for(lambda: "tiny-lora-b" in [m.id for m in client.models.list().data], 30, "the gateways list tiny-lora-b")
    with httpx.Client(base_url=f"http://127.0.0.1:{LB}", timeout=120) as http:
        reply = http.post("/v1/completions", json={"model": "tiny-lora-b", "prompt": "hello", "max_tokens": 4})
        assert reply.status_code == 200 and reply.headers["x-junction-instance"] == "engine-b", reply.text
    reply = httpx.post(ENGINES["engine-b"] + "/v1/unload_lora_adapter", json={"lora_name": "tiny-lora-b"}, timeout=60)
    assert reply.status_code == 200, reply.text
    wait_for(lambda: instance(cluster, "engine-b")["adapters"] == [], 60, "engine-b registered without tiny-lora-b")
    wait_for(lambda: "tiny-lora-b" not in [m.id for m in client.models.list().data], 30, "the gateways no longer list it")
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="tiny-lora-b", prompt="hello", max_tokens=4)
