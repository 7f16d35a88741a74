"""API keys that name their clients, through a real gateway: the official `openai` client with
each key, the client's name in the access log and in the per-client metrics, and what a wrong
key costs the gateway (no body read, no new metric series)."""
import hashlib
import re
import socket
import time

import httpx
import openai
import pytest

from conftest import Cluster

KEY_A = "sk-team-a-0123456789"
KEY_A_ROTATED = "sk-team-a-rotated-0123"
KEY_B = "sk-team-b-0123456789"


@pytest.fixture(scope="module")
def cluster():
    c = Cluster({"a": ["--dialect", "vllm", "--slowness", "5"]}, gateway_options={
        "api_keys": [
            {"client": "team-a", "key": KEY_A},
            {"client": "team-a", "key": KEY_A_ROTATED},
            # The file may hold the key's digest only.
            {"client": "team-b", "key_sha256": hashlib.sha256(KEY_B.encode()).hexdigest()},
        ],
        "access_log": True,
    })
    yield c
    c.stop()


def series(cluster):
    """The gateway's metric series (name and labels) with their values."""
    found = {}
    for line in httpx.get(cluster.url + "/metrics").text.splitlines():
        if line.startswith("junction_"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def ask(cluster, key, **extra):
    with openai.OpenAI(base_url=cluster.url + "/v1", api_key=key, max_retries=0, timeout=30) as client:
        return client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "who am I"}], max_tokens=4, **extra)


def test_each_key_names_its_client_in_metrics_and_the_access_log(cluster):
    before = series(cluster)
    answers = [ask(cluster, KEY_A), ask(cluster, KEY_A_ROTATED), ask(cluster, KEY_B)]
    after = series(cluster)

    def grew(name):
        return after.get(name, 0) - before.get(name, 0)

    assert grew('junction_gateway_client_requests_total{client="team-a",status="200"}') == 2
    assert grew('junction_gateway_client_requests_total{client="team-b",status="200"}') == 1
    assert grew('junction_gateway_client_tokens_total{client="team-a",kind="completion"}') == sum(
        a.usage.completion_tokens for a in answers[:2])
    assert grew('junction_gateway_client_tokens_total{client="team-b",kind="prompt"}') == answers[2].usage.prompt_tokens

    log = open(cluster.processes["gateway"].log_path, errors="replace").read()
    lines = [line for line in log.splitlines() if "junction.gateway.access" in line]
    assert sum("client=team-a" in line for line in lines) >= 2 and any("client=team-b" in line for line in lines), log[-3000:]
    line = next(line for line in lines if "client=team-b" in line)
    for field in ("status=200", "path=/v1/chat/completions", "model=tiny", "instance=a", "duration_ms=", "ttft_ms=",
                  f"prompt_tokens={answers[2].usage.prompt_tokens}"):
        assert field in line, line
    # Keys never reach the log.
    assert KEY_A not in log and KEY_B not in log


def test_a_wrong_key_is_401_and_adds_no_metric_series(cluster):
    before = series(cluster)
    for attempt in range(30):
        with pytest.raises(openai.AuthenticationError) as caught:
            ask(cluster, f"sk-guess-{attempt}")
        assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"
    # No Authorization header at all.
    bare = httpx.post(cluster.url + "/v1/chat/completions", json={"model": "tiny", "messages": []})
    assert bare.status_code == 401 and bare.json()["error"]["code"] == "invalid_api_key"
    after = series(cluster)
    assert set(after) == set(before), set(after) ^ set(before)
    assert after["junction_gateway_unauthenticated_requests_total"] - before["junction_gateway_unauthenticated_requests_total"] == 31
    log = open(cluster.processes["gateway"].log_path, errors="replace").read()
    assert "sk-guess" not in log


def test_a_refused_request_is_answered_before_its_body_and_the_body_is_never_read(cluster):
    host, port = cluster.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        # A head announcing 1 GiB, far above max_body_bytes, and no body: the 401 must come anyway.
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-wrong\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer or b"invalid_api_key" not in answer:
            chunk = s.recv(65536)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 401") and b"connection: close" in answer.lower()
        # What the client goes on sending is discarded until the gateway closes: no error answer,
        # no reset while the client writes a little more.
        s.sendall(b"x" * 65536)
        rest = b""
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            rest += chunk
        assert rest == b"", rest[:200]
    # The gateway serves the next client as before.
    assert ask(cluster, KEY_B).choices[0].message.content


def test_a_key_file_with_a_wrong_entry_is_refused_at_start(tmp_path):
    import json
    import subprocess
    from conftest import BINARY
    config = {
        "cluster": {"secret": "gateway-test-secret-0123", "schedulers": [{"id": 1, "address": "127.0.0.1:1"}]},
        "llm_gateway": {"api_keys": [{"client": "team a", "key": "k"}]},
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(config))
    out = subprocess.run([BINARY, "gateway", "--config", str(path), "--port", "0"], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "llm_gateway.api_keys[0].client" in out.stderr + out.stdout
