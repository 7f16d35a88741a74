"""Bad requests get a clear error in the dialect's own shape, and the engine carries on."""
import pytest

from conftest import DIALECTS, sample_value


def error_of(dialect, reply):
    body = reply.json()
    if dialect == "sglang":
        assert body["object"] == "error"
        return body
    return body["error"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_bad_requests(start_sim, dialect):
    sim = start_sim("--dialect", dialect, "--max-body-bytes", "4096")
    post = sim.http.post
    cases = [
        (post("/v1/completions", content=b'{"model": "tiny", "prompt": '), 400, None),
        (post("/v1/completions", content=b'[1, 2]'), 400, None),
        (post("/v1/completions", json={"prompt": "x"}), 400, "model"),
        (post("/v1/completions", json={"model": "gpt-9", "prompt": "x"}), 404, "model"),
        (post("/v1/completions", json={"model": "tiny", "prompt": {"a": 1}}), 400, "prompt"),
        (post("/v1/completions", json={"model": "tiny", "prompt": ["a", "b"]}), 400, "prompt"),
        (post("/v1/completions", json={"model": "tiny", "prompt": "x", "max_tokens": 0}), 400, "max_tokens"),
        (post("/v1/completions", json={"model": "tiny", "prompt": "x", "max_tokens": "5"}), 400, "max_tokens"),
        (post("/v1/completions", json={"model": "tiny", "prompt": "x", "n": 3}), 400, "n"),
        (post("/v1/completions", json={"model": "tiny", "prompt": "x", "stream": "yes"}), 400, "stream"),
        (post("/v1/completions", json={"model": "tiny", "prompt": "x", "stream_options": {"include_usage": True}}), 400, "stream_options"),
        (post("/v1/completions", json={"model": "tiny", "prompt": "x", "max_tokens": 5000}), 400, "prompt"),
        (post("/v1/chat/completions", json={"model": "tiny", "messages": []}), 400, "messages"),
        (post("/v1/chat/completions", json={"model": "tiny", "messages": [{"content": "no role"}]}), 400, "messages"),
        (post("/v1/chat/completions", json={"model": "tiny", "messages": [{"role": "user", "content": 5}]}), 400, "messages"),
        (post("/v1/chat/completions", content=b'{"model": "tiny", "messages": [{"role": "user", "content": "' + b"x" * 5000 + b'"}]}'), 413, None),
    ]
    for reply, status, param in cases:
        assert reply.status_code == status, (reply.request.content[:80], reply.text)
        error = error_of(dialect, reply)
        assert error["code"] == status and error["message"] and error["type"]
        assert error["param"] == param, (error, param)
    too_long = error_of(dialect, cases[11][0])["message"]
    assert "maximum context length is 2048 tokens" in too_long
    # Nothing was lost or left running; the engine still answers.
    ok = post("/v1/completions", json={"model": "tiny", "prompt": "still fine", "max_tokens": 2})
    assert ok.status_code == 200
    assert ok.json()["usage"]["completion_tokens"] == 2


def test_unknown_path_is_404(start_sim):
    sim = start_sim()
    assert sim.http.get("/v1/nothing").status_code == 404


def test_sglang_info_endpoints_and_flush_cache(start_sim):
    sim = start_sim("--dialect", "sglang")
    info = sim.http.get("/get_model_info").json()
    assert info["model_path"] == "tiny" and info["is_generation"] is True
    server = sim.http.get("/get_server_info").json()
    assert server["max_total_num_tokens"] == 256 * 16
    assert "last_gen_throughput" in server["internal_states"][0]
    body = {"model": "tiny", "prompt": "a repeated prompt " * 20, "max_tokens": 2}
    sim.http.post("/v1/completions", json=body)
    assert sim.http.post("/v1/completions", json=body).json()["usage"]["prompt_tokens_details"]["cached_tokens"] > 0
    assert sim.http.post("/flush_cache").status_code == 200
    assert sim.http.post("/v1/completions", json=body).json()["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    assert sim.http.get("/health_generate").status_code == 200


def test_vllm_reset_prefix_cache(start_sim):
    sim = start_sim("--dialect", "vllm")
    body = {"model": "tiny", "prompt": "a repeated prompt " * 20, "max_tokens": 2}
    sim.http.post("/v1/completions", json=body)
    assert sim.http.post("/v1/completions", json=body).json()["usage"]["prompt_tokens_details"]["cached_tokens"] > 0
    assert sim.http.post("/reset_prefix_cache").status_code == 200
    assert sim.http.post("/v1/completions", json=body).json()["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    assert sample_value(sim.metrics(), "vllm:num_requests_running") == 0
