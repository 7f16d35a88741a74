"""The simulator's prefill/decode disaggregation: the hand-off fields of vLLM and SGLang, a decode
instance that does not recompute a transferred prompt, a transfer time that grows with the
prompt's blocks, per-role metrics, and what happens when the prefill side is gone."""
import concurrent.futures
import socket
import time

import pytest

from conftest import sample_value

MODEL = "tiny"
VLLM_PREFILL_PARAMS = {"do_remote_decode": True, "do_remote_prefill": False, "remote_engine_id": None,
                       "remote_block_ids": None, "remote_host": None, "remote_port": None}


def prompt(words, salt="a"):
    return " ".join(f"{salt}{i}" for i in range(words))


def vllm_prefill(sim, text, request_id="req-1"):
    reply = sim.http.post("/v1/completions", headers={"X-Request-Id": request_id}, json={
        "model": MODEL, "prompt": text, "max_tokens": 1, "stream": False, "kv_transfer_params": VLLM_PREFILL_PARAMS})
    reply.raise_for_status()
    return reply.json()


def test_vllm_prefill_answers_with_the_parameters_its_decode_needs(start_sim):
    prefill = start_sim("--role", "prefill")
    answer = vllm_prefill(prefill, prompt(300))
    params = answer["kv_transfer_params"]
    assert set(params) == {"do_remote_prefill", "do_remote_decode", "remote_block_ids", "remote_engine_id",
                           "remote_host", "remote_port", "remote_request_id", "tp_size"}
    assert params["do_remote_prefill"] is True and params["do_remote_decode"] is False
    assert params["remote_host"] == "127.0.0.1" and params["remote_port"] == int(prefill.url.rsplit(":", 1)[1])
    assert params["remote_request_id"] == "req-1"
    blocks = answer["usage"]["prompt_tokens"] // 16
    assert len(params["remote_block_ids"]) == blocks and len(set(params["remote_block_ids"])) == blocks
    assert answer["usage"]["completion_tokens"] == 1
    metrics = prefill.metrics()
    assert sample_value(metrics, "junction_sim_role", {"role": "prefill"}) == 1
    assert sample_value(metrics, "junction_sim_kv_handoffs_pending") == 1
    assert sample_value(metrics, "junction_sim_kv_prefills_total") == 1


def test_vllm_decode_takes_the_kv_instead_of_recomputing_the_prompt(start_sim):
    prefill = start_sim("--role", "prefill")
    decode = start_sim("--role", "decode")
    text = prompt(300)
    params = vllm_prefill(prefill, text)["kv_transfer_params"]
    reply = decode.http.post("/v1/completions", headers={"X-Request-Id": "req-1"}, json={
        "model": MODEL, "prompt": text, "max_tokens": 8, "kv_transfer_params": params})
    reply.raise_for_status()
    usage = reply.json()["usage"]
    # Every full block came over; only the last partial block is computed here.
    assert usage["prompt_tokens_details"]["cached_tokens"] == usage["prompt_tokens"] // 16 * 16
    decode_metrics = decode.metrics()
    assert sample_value(decode_metrics, "junction_sim_kv_blocks_total", {"direction": "received"}) == len(params["remote_block_ids"])
    assert sample_value(decode_metrics, "junction_sim_kv_transfers_total") == 1
    prefill_metrics = prefill.metrics()
    assert sample_value(prefill_metrics, "junction_sim_kv_blocks_total", {"direction": "sent"}) == len(params["remote_block_ids"])
    assert sample_value(prefill_metrics, "junction_sim_kv_handoffs_pending") == 0


def test_a_kv_transfer_takes_longer_for_more_blocks(start_sim):
    prefill = start_sim("--role", "prefill", "--kv-transfer-ms-per-block", "4", "--kv-transfer-base-ms", "0")
    decode = start_sim("--role", "decode", "--kv-transfer-ms-per-block", "4", "--kv-transfer-base-ms", "0")
    seconds = []
    for words, salt in ((40, "s"), (600, "l")):
        text = prompt(words, salt)
        params = vllm_prefill(prefill, text, request_id=salt)["kv_transfer_params"]
        before = sample_value(decode.metrics(), "junction_sim_kv_transfer_seconds_total")
        decode.http.post("/v1/completions", json={
            "model": MODEL, "prompt": text, "max_tokens": 2, "kv_transfer_params": params}).raise_for_status()
        seconds.append((len(params["remote_block_ids"]), sample_value(decode.metrics(), "junction_sim_kv_transfer_seconds_total") - before))
    (few, short), (many, long) = seconds
    assert many > 10 * few
    # 4 ms a block: the long prompt's transfer is at least its blocks' worth.
    assert long >= many * 0.004 * 0.9 and long > short


def test_vllm_decode_computes_the_prompt_itself_when_the_kv_is_gone(start_sim):
    prefill = start_sim("--role", "prefill")
    decode = start_sim("--role", "decode")
    text = prompt(200)
    params = vllm_prefill(prefill, text)["kv_transfer_params"]
    prefill.stop()
    reply = decode.http.post("/v1/completions", json={
        "model": MODEL, "prompt": text, "max_tokens": 4, "kv_transfer_params": params})
    assert reply.status_code == 200
    assert reply.json()["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    assert sample_value(decode.metrics(), "junction_sim_kv_fetch_failures_total") == 1


def sglang_body(text, host, port, room, stream=False):
    return {"model": MODEL, "prompt": text, "max_tokens": 6, "stream": stream,
            "bootstrap_host": host, "bootstrap_port": port, "bootstrap_room": room}


def test_sglang_legs_sent_at_once_meet_in_their_bootstrap_room(start_sim):
    prefill = start_sim("--dialect", "sglang", "--role", "prefill")
    decode = start_sim("--dialect", "sglang", "--role", "decode")
    port = int(prefill.url.rsplit(":", 1)[1])
    text = prompt(300)
    room = 2**63 - 5  # rooms are drawn below 2^63: beyond a double's exact integers
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        # The decode leg first: it waits in the room until the prefill has computed the prompt.
        decoded = pool.submit(decode.http.post, "/v1/completions", json=sglang_body(text, "127.0.0.1", port, room, stream=True))
        time.sleep(0.2)
        prefilled = pool.submit(prefill.http.post, "/v1/completions", json=sglang_body(text, "127.0.0.1", port, room))
        prefill_answer, decode_answer = prefilled.result(), decoded.result()
    assert prefill_answer.status_code == 200 and prefill_answer.json()["usage"]["completion_tokens"] == 1
    assert decode_answer.status_code == 200 and decode_answer.text.rstrip().endswith("data: [DONE]")
    received = sample_value(decode.metrics(), "junction_sim_kv_blocks_total", {"direction": "received"})
    assert received == prefill_answer.json()["usage"]["prompt_tokens"] // 16
    assert sample_value(decode.metrics(), "junction_sim_role", {"role": "decode"}) == 1


def test_sglang_decode_fails_the_request_when_its_prefill_server_is_gone(start_sim):
    decode = start_sim("--dialect", "sglang", "--role", "decode")
    # A port nobody listens on: taken and released.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    reply = decode.http.post("/v1/completions", json=sglang_body(prompt(50), "127.0.0.1", port, 7))
    assert reply.status_code == 503 and "KV transfer" in reply.text
    assert sample_value(decode.metrics(), "junction_sim_kv_fetch_failures_total") == 1


def test_a_decode_that_never_gets_its_prefill_gives_up_after_the_hand_off_timeout(start_sim):
    prefill = start_sim("--dialect", "sglang", "--role", "prefill", "--handoff-timeout-seconds", "1")
    decode = start_sim("--dialect", "sglang", "--role", "decode", "--handoff-timeout-seconds", "1")
    port = int(prefill.url.rsplit(":", 1)[1])
    reply = decode.http.post("/v1/completions", json=sglang_body(prompt(50), "127.0.0.1", port, 99))
    assert reply.status_code == 503


@pytest.mark.parametrize("body, param", [
    ({"kv_transfer_params": "yes"}, "kv_transfer_params"),
    ({"kv_transfer_params": {"do_remote_prefill": True, "remote_host": "127.0.0.1"}}, "kv_transfer_params"),
    ({"bootstrap_room": -1, "bootstrap_host": "127.0.0.1"}, "bootstrap_room"),
    ({"bootstrap_room": 5}, "bootstrap_host"),
    ({"bootstrap_room": 5, "bootstrap_host": "127.0.0.1", "bootstrap_port": 70000}, "bootstrap_port"),
])
def test_malformed_hand_off_fields_are_a_clear_400(start_sim, body, param):
    sim = start_sim("--role", "decode")
    reply = sim.http.post("/v1/completions", json={"model": MODEL, "prompt": "hi", "max_tokens": 2, **body})
    assert reply.status_code == 400
    assert param in reply.text
