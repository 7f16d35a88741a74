"""pd-split end to end: the official `openai` client through a real gateway and scheduler trio in
front of two prefill and two decode simulators, in vLLM's sequential hand-off and SGLang's
concurrent one. Recording proxies in front of the engines show exactly what each leg carried."""
import concurrent.futures
import signal
import threading
import time

import httpx
import openai
import pytest

from conftest import API_KEY, Cluster
from recording_proxy import RecordingProxy

VLLM_PREFILL_PARAMS = {"do_remote_decode": True, "do_remote_prefill": False, "remote_engine_id": None,
                       "remote_block_ids": None, "remote_host": None, "remote_port": None}
PREFILLS, DECODES = ("p1", "p2"), ("d1", "d2")


def sim_metric(pd, name, metric, **labels):
    """One series of a simulator's /metrics, read from the engine itself (not its proxy)."""
    text = httpx.get(pd.cluster.engines[name] + "/metrics").text
    for line in text.splitlines():
        if line.startswith(metric + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(metric)


def long_prompt(salt, words=400):
    return " ".join(f"{salt}-{i}" for i in range(words))


class PDCluster:
    def __init__(self, dialect):
        self.proxies = {}

        def proxied(name):
            def wrap(url):
                self.proxies[name] = RecordingProxy(url)
                return self.proxies[name].url
            return wrap

        engines, agent_args = {}, {}
        for name in PREFILLS + DECODES:
            role = "prefill" if name in PREFILLS else "decode"
            engines[name] = ["--dialect", dialect, "--role", role]
            agent_args[name] = ["--role", role] + (["--bootstrap-port", "{port}"] if role == "prefill" and dialect == "sglang" else [])
        self.cluster = Cluster(
            engines, gateway_options={"max_queue_size": 64, "retry_count": 2},
            scheduler_options={"policy": "pd-split", "params": {"pd_local_prefill_tokens": 128}},
            agent_args=agent_args, engine_urls={name: proxied(name) for name in engines})

    def client(self):
        return openai.OpenAI(base_url=self.cluster.url + "/v1", api_key=API_KEY, max_retries=0, timeout=60)

    def clear(self):
        for proxy in self.proxies.values():
            with proxy.lock:
                proxy.requests.clear()

    def inference(self, name):
        return [r for r in self.proxies[name].recorded() if r["path"].startswith("/v1/")]

    def stop(self):
        self.cluster.stop()
        for proxy in self.proxies.values():
            proxy.stop()


@pytest.fixture(scope="module")
def vllm_pd():
    c = PDCluster("vllm")
    yield c
    c.stop()


@pytest.fixture(scope="module")
def sglang_pd():
    c = PDCluster("sglang")
    yield c
    c.stop()


def streamed_chat(client, content, max_tokens=12):
    raw = client.chat.completions.with_raw_response.create(
        model="tiny", messages=[{"role": "user", "content": content}], max_tokens=max_tokens, stream=True,
        stream_options={"include_usage": True})
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return raw.headers, text, chunks[-1].usage


def test_vllm_flow_prefills_then_streams_from_the_decode_instance(vllm_pd):
    vllm_pd.clear()
    with vllm_pd.client() as client:
        headers, text, usage = streamed_chat(client, long_prompt("vllm"))
    prefill, decode = headers["x-junction-prefill-instance"], headers["x-junction-instance"]
    assert prefill in PREFILLS and decode in DECODES and text
    # The prefill leg: exactly what vLLM's proxies send.
    (first,) = vllm_pd.inference(prefill)
    body = first["body"]
    assert body["max_tokens"] == 1 and body["stream"] is False and "stream_options" not in body
    assert body["kv_transfer_params"] == VLLM_PREFILL_PARAMS
    assert body["messages"] == [{"role": "user", "content": long_prompt("vllm")}]
    request_id = first["headers"]["x-request-id"]
    # The decode leg: the client's request with the prefill's answer's parameters, same request id.
    (second,) = vllm_pd.inference(decode)
    assert second["headers"]["x-request-id"] == request_id
    assert second["body"]["stream"] is True and second["body"]["stream_options"] == {"include_usage": True}
    assert second["body"]["max_tokens"] == 12
    params = second["body"]["kv_transfer_params"]
    assert params["do_remote_prefill"] is True and params["remote_request_id"] == request_id
    assert params["remote_port"] == int(vllm_pd.cluster.engines[prefill].rsplit(":", 1)[1])
    # The decode instance did not compute the transferred prompt again: its KV came over.
    assert usage.prompt_tokens_details.cached_tokens == usage.prompt_tokens // 16 * 16
    assert sim_metric(vllm_pd, decode, "junction_sim_kv_blocks_total", direction="received") == usage.prompt_tokens // 16
    assert sim_metric(vllm_pd, decode, "junction_sim_kv_fetch_failures_total") == 0
    assert not any(vllm_pd.inference(name) for name in PREFILLS + DECODES if name not in (prefill, decode))


def test_vllm_flow_serves_unstreamed_completions(vllm_pd):
    with vllm_pd.client() as client:
        raw = client.completions.with_raw_response.create(model="tiny", prompt=long_prompt("plain"), max_tokens=6)
        completion = raw.parse()
    assert raw.headers["x-junction-prefill-instance"] in PREFILLS
    assert completion.choices[0].text and completion.usage.completion_tokens >= 1


def test_a_follow_up_with_a_short_uncached_remainder_skips_the_prefill(vllm_pd):
    with vllm_pd.client() as client:
        first, _, _ = streamed_chat(client, long_prompt("turn"))
        assert first["x-junction-prefill-instance"] in PREFILLS
        vllm_pd.clear()
        # The same conversation a few words longer: all but about 20 tokens are on the decode instance.
        again, text, usage = streamed_chat(client, long_prompt("turn") + " and then?")
    assert "x-junction-prefill-instance" not in again
    assert again["x-junction-instance"] == first["x-junction-instance"] and text
    assert not any(vllm_pd.inference(name) for name in PREFILLS)
    assert usage.prompt_tokens_details.cached_tokens >= usage.prompt_tokens - 64


def test_sglang_flow_sends_both_legs_at_once_with_one_bootstrap_room(sglang_pd):
    sglang_pd.clear()
    with sglang_pd.client() as client:
        headers, text, usage = streamed_chat(client, long_prompt("sglang"))
    prefill, decode = headers["x-junction-prefill-instance"], headers["x-junction-instance"]
    assert prefill in PREFILLS and decode in DECODES and text and usage.completion_tokens >= 1
    (to_prefill,) = sglang_pd.inference(prefill)
    (to_decode,) = sglang_pd.inference(decode)
    # Both legs carry the same request: the client's, plus the prefill server's bootstrap address
    # and one room.
    assert to_prefill["body"] == to_decode["body"]
    body = to_prefill["body"]
    assert body["bootstrap_host"] == "127.0.0.1"
    assert body["bootstrap_port"] == int(sglang_pd.cluster.engines[prefill].rsplit(":", 1)[1])
    assert isinstance(body["bootstrap_room"], int) and 0 <= body["bootstrap_room"] < 2**63
    assert body["stream"] is True and body["max_tokens"] == 12
    assert "kv_transfer_params" not in body
    # The decode server met its prefill in the room and received the prompt's KV.
    assert sim_metric(sglang_pd, decode, "junction_sim_kv_transfers_total") >= 1
    assert sim_metric(sglang_pd, decode, "junction_sim_kv_fetch_failures_total") == 0
    assert sim_metric(sglang_pd, prefill, "junction_sim_kv_blocks_total", direction="sent") >= usage.prompt_tokens // 16 - 1


def test_a_batch_of_prompts_is_not_split(vllm_pd):
    vllm_pd.clear()
    reply = httpx.post(vllm_pd.cluster.url + "/v1/completions", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30,
                       json={"model": "tiny", "prompt": [long_prompt("batch-a"), long_prompt("batch-b")], "max_tokens": 4})
    # One prefill leg's parameters describe one prompt's KV: the batch goes whole to a decode
    # instance (which, being a simulator, serves one prompt per request and says so).
    assert "x-junction-prefill-instance" not in reply.headers
    assert reply.headers["x-junction-instance"] in DECODES
    assert reply.status_code == 400 and "one prompt per request" in reply.text
    assert not any(vllm_pd.inference(name) for name in PREFILLS)


def test_sglang_rooms_differ_between_requests(sglang_pd):
    sglang_pd.clear()
    with sglang_pd.client() as client:
        for i in range(4):
            streamed_chat(client, long_prompt(f"room{i}"))
    rooms = [r["body"]["bootstrap_room"] for name in DECODES for r in sglang_pd.inference(name)]
    assert len(rooms) == 4 and len(set(rooms)) == 4


def test_an_unknown_hand_off_flow_is_a_config_error_naming_the_key(tmp_path):
    import json
    import subprocess
    from conftest import BINARY
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({
        "cluster": {"secret": "s" * 16, "schedulers": [{"id": 1, "address": "127.0.0.1:1"}]},
        "llm_gateway": {"pd_handoff": "mooncake"}}))
    run = subprocess.run([BINARY, "gateway", "--config", str(config), "--port", "0"], capture_output=True, text=True, timeout=30)
    assert run.returncode != 0
    assert "llm_gateway.pd_handoff" in run.stdout + run.stderr
