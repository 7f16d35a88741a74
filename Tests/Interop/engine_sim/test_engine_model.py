"""The performance model seen from outside: prefix caching changes TTFT while the prefix is
cached, and too many requests for the KV cache queue up."""
import concurrent.futures
import json
import time

from conftest import sample_value

LONG_PROMPT = " ".join(f"word{i:05d}" for i in range(440))  # 4,400 characters: 1,100 tokens


def stream_ttft(sim, prompt, max_tokens=4):
    """Client-side time to first token, and the usage the final chunk reports."""
    body = {"model": sim.model, "prompt": prompt, "max_tokens": max_tokens, "stream": True,
            "stream_options": {"include_usage": True}, "ignore_eos": True}
    start = time.perf_counter()
    first, usage = None, None
    with sim.http.stream("POST", "/v1/completions", json=body) as reply:
        assert reply.status_code == 200
        for line in reply.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk["choices"] and first is None:
                first = time.perf_counter() - start
            if chunk.get("usage"):
                usage = chunk["usage"]
    return first, usage


def test_repeated_long_prompt_is_faster_while_cached_and_slow_again_once_evicted(start_sim):
    # 7B on an L20 (prefill 0.25 ms a token), 10x real time, only 256 KV blocks (4,096 tokens).
    sim = start_sim("--profile", "7b-l20", "--kv-blocks", "256", "--speed", "10")
    sim.model = "DeepSeek-R1-Distill-Qwen-7B"
    cold, usage = stream_ttft(sim, LONG_PROMPT)
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    warm_ttfts = []
    for _ in range(3):
        ttft, usage = stream_ttft(sim, LONG_PROMPT)
        assert usage["prompt_tokens_details"]["cached_tokens"] == (usage["prompt_tokens"] - 1) // 16 * 16
        warm_ttfts.append(ttft)
    warm = min(warm_ttfts)
    assert warm < cold / 3, (cold, warm_ttfts)

    # Other long prompts fill the cache; the freed blocks of the first prompt are reused.
    for i in range(5):
        stream_ttft(sim, LONG_PROMPT.replace("word", f"other{i}"))
    evicted, usage = stream_ttft(sim, LONG_PROMPT)
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert evicted > warm * 3, (cold, warm, evicted)
    text = sim.metrics()
    assert sample_value(text, "vllm:prefix_cache_hits_total") > 0


def test_more_requests_than_kv_blocks_queue_and_wait_longer(start_sim):
    # 64 blocks = 1,024 tokens; each request holds ~ 300 prompt + 100 output tokens.
    sim = start_sim("--profile", "tiny", "--kv-blocks", "64")
    sim.model = "tiny"
    prompts = [f"request {i} " + "filler text " * 100 for i in range(16)]
    peak_waiting = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(stream_ttft, sim, p, 100) for p in prompts]
        while not all(f.done() for f in futures):
            peak_waiting = max(peak_waiting, sample_value(sim.metrics(), "vllm:num_requests_waiting"))
            time.sleep(0.01)
        ttfts = sorted(f.result()[0] for f in futures)
    assert peak_waiting >= 4, peak_waiting
    assert ttfts[-1] > ttfts[0] * 5, ttfts
    assert sample_value(sim.metrics(), "vllm:num_requests_waiting") == 0


def test_the_request_log_has_a_line_per_request_with_what_its_first_token_waited_for(start_sim, tmp_path):
    log = tmp_path / "requests.jsonl"
    sim = start_sim("--profile", "7b-l20", "--kv-blocks", "256", "--speed", "10", "--request-log", str(log))
    sim.model = "DeepSeek-R1-Distill-Qwen-7B"
    before = time.time()
    _, cold = stream_ttft(sim, LONG_PROMPT)
    _, warm = stream_ttft(sim, LONG_PROMPT)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(lines) == 2, lines
    first, second = lines
    assert first["prompt_tokens"] == cold["prompt_tokens"] and first["cached_tokens"] == 0
    assert first["prompt_head"] == second["prompt_head"] != ""
    assert second["cached_tokens"] == warm["prompt_tokens_details"]["cached_tokens"] > 0
    # The first computed its whole prompt in the step that gave its first token; the second
    # only what was not cached.
    assert first["step_prefill_tokens"] == first["prompt_tokens"] and first["step_sequences"] == 1
    assert second["step_prefill_tokens"] == second["prompt_tokens"] - second["cached_tokens"]
    assert first["waiting_at_arrival"] == 0 and first["running_at_arrival"] == 0
    assert before <= first["submitted"] <= second["submitted"] <= time.time()
    assert 0 < second["ttft_ms"] < first["ttft_ms"] and first["queue_ms"] <= first["ttft_ms"]


def test_an_unwritable_request_log_stops_the_engine_with_a_clear_error(tmp_path):
    import subprocess
    from conftest import BINARY
    done = subprocess.run([BINARY, "engine-sim", "--port", "0", "--request-log", str(tmp_path / "missing" / "log.jsonl")],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "log.jsonl" in done.stderr, done.stderr
