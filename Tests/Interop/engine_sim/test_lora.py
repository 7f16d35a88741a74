"""LoRA adapters in the vLLM dialect (`--enable-lora`), against what a real vLLM 0.32.0 does
(its /v1/models and /metrics, recorded in Tests/Fixtures): adapters listed with the base as
their parent, served by name with a cache of their own, loaded and unloaded at run time with
vLLM's codes, and `vllm:lora_requests_info` with vLLM's labels."""
import json

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import ROOT

REAL_MODELS = ROOT / "Tests" / "Fixtures" / "vllm-0.32.0-cpu-lora-models.json"
REAL_METRICS = ROOT / "Tests" / "Fixtures" / "vllm-0.32.0-cpu-lora-metrics.txt"


def lora_series(text):
    family = next(f for f in text_string_to_metric_families(text) if f.name == "vllm:lora_requests_info")
    return sorted(family.samples, key=lambda s: s.value)


@pytest.fixture
def sim(start_sim):
    return start_sim("--dialect", "vllm", "--served-model-name", "tiny", "tiny-chat", "--enable-lora",
                     "--lora-modules", "sql=/adapters/sql", "poet", "--max-loras", "1")


def test_models_list_the_base_names_then_the_adapters_with_their_parent_as_vllm_does(sim):
    data = sim.http.get("/v1/models").json()["data"]
    assert [(m["id"], m["parent"]) for m in data] == [("tiny", None), ("tiny-chat", None), ("sql", "tiny"), ("poet", "tiny")]
    real = json.loads(REAL_MODELS.read_text())["data"]
    assert {k for m in real for k in m} <= {k for m in data for k in m}, "fields a real vLLM lists that the simulator does not"
    assert [m["parent"] for m in real] == [None, "tiny"]


def test_an_adapter_is_served_by_its_name_with_a_cache_of_its_own(sim):
    client = openai.OpenAI(base_url=sim.url + "/v1", api_key="unused", max_retries=0)
    prompt = "a shared document about routers " * 40
    cached = []
    for model in ("sql", "sql", "poet", "tiny-chat"):
        answer = client.completions.create(model=model, prompt=prompt, max_tokens=2)
        assert answer.model == model
        cached.append(answer.usage.prompt_tokens_details.cached_tokens)
    # Only the second sql request finds the prompt cached: poet, and the base model by its other
    # name, keep their blocks apart.
    assert cached[0] == 0 and cached[1] > 0 and cached[2:] == [0, 0], cached
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nope", prompt="x", max_tokens=1)


def test_lora_requests_info_has_vllms_labels_and_keeps_the_adapter_that_ran(sim):
    sim.http.post("/v1/completions", json={"model": "sql", "prompt": "hello", "max_tokens": 2}).raise_for_status()
    series = lora_series(sim.metrics())
    real = lora_series(REAL_METRICS.read_text())
    assert {k for s in series for k in s.labels} == {k for s in real for k in s.labels} == {
        "max_lora", "running_lora_adapters", "waiting_lora_adapters"}
    assert any(s.labels["running_lora_adapters"] == "sql" for s in series)
    # Idle again: the newest series names no adapter, as a real vLLM's does.
    assert series[-1].labels["running_lora_adapters"] == "" and real[-1].labels["running_lora_adapters"] == ""
    assert all(s.labels["max_lora"] == "1" for s in series)


def test_adapters_load_and_unload_at_run_time_with_vllms_answers(sim):
    assert sim.http.post("/v1/load_lora_adapter", json={"lora_name": "haiku", "lora_path": "/adapters/haiku"}).status_code == 200
    assert sim.http.post("/v1/load_lora_adapter", json={"lora_name": "haiku", "lora_path": "/x"}).status_code == 400
    assert sim.http.post("/v1/load_lora_adapter", json={"lora_path": "/x"}).status_code == 400
    assert sim.http.post("/v1/load_lora_adapter", content=b"not json").status_code == 400
    assert "haiku" in [m["id"] for m in sim.http.get("/v1/models").json()["data"]]
    assert sim.http.post("/v1/completions", json={"model": "haiku", "prompt": "x", "max_tokens": 1}).status_code == 200
    assert sim.http.post("/v1/unload_lora_adapter", json={"lora_name": "haiku"}).status_code == 200
    assert sim.http.post("/v1/unload_lora_adapter", json={"lora_name": "haiku"}).status_code == 404
    assert sim.http.post("/v1/completions", json={"model": "haiku", "prompt": "x", "max_tokens": 1}).status_code == 404


def test_lora_options_are_checked(start_sim):
    with pytest.raises(RuntimeError, match="needs --enable-lora"):
        start_sim("--dialect", "vllm", "--lora-modules", "sql")
    with pytest.raises(RuntimeError, match="vllm dialect"):
        start_sim("--dialect", "sglang", "--enable-lora")
