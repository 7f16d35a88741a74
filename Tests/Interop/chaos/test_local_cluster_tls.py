"""The local cluster with TLS and roles on (`JUNCTION_TLS=1 Deploy/local/up.sh`): mutual TLS on
every wire connection, HTTPS on the gateways and on the balancer (HAProxy verifying the gateways
with the cluster CA), each process with its own credential and certificate. The demo, the status
and top scripts, the official clients over HTTPS and WSS, and the chaos faults under load, each of
which exits non-zero if a request was lost or failed (timing targets reported, not enforced, on a
shared CI machine: `--no-time-targets`)."""
import json
import os
import ssl

import httpx
import openai
import pytest

from local_cluster_setup import local_cluster
from plain_probe import plain_http_answer  # noqa: E402 (Tests/Interop/gateway, on the path local_cluster_setup adds)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    yield from local_cluster(tmp_path_factory, tls=True)


def test_every_process_holds_its_own_certificate_and_credential(local):
    configs = [name for name in os.listdir(local.directory) if name.endswith(".json")]
    for name in configs:
        config = json.load(open(os.path.join(local.directory, name)))
        assert "tls" in config["cluster"], name
        if name.startswith(("agent-", "gateway-", "ctl")):
            assert "secret" not in config["cluster"] and config["cluster"]["credential"], name
    gateway = json.load(open(os.path.join(local.directory, "gateway-1.json")))
    assert gateway["llm_gateway"]["tls"]["certificate"].endswith("gateway-gateway-1.pem")


def test_the_demo_status_and_top_work_over_tls(local):
    demo = local("Deploy/local/demo.sh")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert demo.stdout.count("x-junction-route: scheduled") == 3, demo.stdout
    assert "data: [DONE]" in demo.stdout
    status = local("Deploy/local/status.sh")
    assert "leader" in status.stdout and status.stdout.count(" up tiny ") == 4
    assert status.stdout.count("scheduled routing") == 2 and status.stdout.count("  UP") == 2
    top = local("Deploy/local/top.sh", "--frames", "1")
    assert top.returncode == 0 and "DOWN" not in top.stdout and "https://127.0.0.1" in top.stdout, top.stdout


def test_the_official_clients_through_the_balancer_over_https_and_wss(local):
    context = ssl.create_default_context(cafile=local.ca)
    with openai.OpenAI(base_url=local.balancer_url + "/v1", api_key="none", max_retries=0, timeout=30,
                       http_client=httpx.Client(verify=context)) as client:
        chunks = list(client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "through TLS"}], max_tokens=6, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    from websockets.sync.client import connect
    with connect(local.balancer_url.replace("https://", "wss://") + "/v1/ws", ssl=context, open_timeout=10) as ws:
        ws.send(json.dumps({"model": "tiny", "prompt": "wss through the balancer", "max_tokens": 3}))
        assert json.loads(ws.recv(timeout=30))["object"] == "text_completion" and ws.recv(timeout=30) == "[DONE]"
    # Plain HTTP to the balancer gets no answer.
    assert b"HTTP/1.1 200" not in plain_http_answer(local.balancer_url, "/ready")


@pytest.mark.parametrize("fault", ["kill-leader", "kill-engine", "kill-two-schedulers", "partition-leader", "rolling-restart"])
def test_a_fault_under_load_loses_nothing(local, fault):
    result = local(f"Deploy/chaos/{fault}.sh", "--seed", "7", "--workers", "6", "--no-time-targets")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "lost 0" in result.stdout and "failed 0" in result.stdout and "verdict: PASS" in result.stdout
    assert "https://" in result.stdout, "the load went through the balancer over HTTPS"
