"""Mutual TLS on the wire and HTTPS on the gateway's client side, through real processes: three
schedulers, agents, simulated engines and a gateway, each with its own certificate of a cluster
CA made by Deploy/tls/make-certs.sh (openssl). The official `openai` and `websockets` clients
speak HTTPS and WSS to the gateway; `junction ctl` speaks TLS to the trio."""
import json
import ssl
import subprocess

import httpx
import openai
import pytest

from conftest import API_KEY, BINARY, MAKE_CERTS, Cluster
from plain_probe import plain_http_answer


@pytest.fixture(scope="module")
def cluster():
    c = Cluster({"a": ["--dialect", "vllm"], "b": ["--dialect", "sglang"]}, tls=True, credentials=True)
    yield c
    c.stop()


def test_the_openai_client_speaks_https_to_a_gateway_whose_wire_is_tls(cluster):
    assert cluster.url.startswith("https://")
    with openai.OpenAI(base_url=cluster.url + "/v1", api_key=API_KEY, max_retries=0, timeout=30,
                       http_client=httpx.Client(verify=cluster.verify)) as client:
        chat = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "over tls"}], max_tokens=6)
        assert chat.choices[0].message.content
        chunks = list(client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "stream over tls"}], max_tokens=6, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    # Routed by the scheduler (over the TLS wire), not by the gateway's fallback.
    reply = httpx.post(cluster.url + "/v1/completions", verify=cluster.verify, headers={"Authorization": f"Bearer {API_KEY}"},
                       json={"model": "tiny", "prompt": "scheduled?", "max_tokens": 2}, timeout=30)
    assert reply.status_code == 200 and reply.headers["x-junction-route"] == "scheduled"
    # Every agent registered over TLS, and ctl reads the trio's status over TLS with its own certificate.
    status = cluster.status()
    assert sorted(i["id"] for i in status["instances"] if i["state"] == "up") == ["a", "b"]


def test_websocket_over_wss(cluster):
    from websockets.sync.client import connect
    context = ssl.create_default_context(cafile=cluster.ca)
    url = cluster.url.replace("https://", "wss://") + "/v1/ws"
    with connect(url, ssl=context, additional_headers={"Authorization": f"Bearer {API_KEY}"}) as ws:
        ws.send(json.dumps({"model": "tiny", "prompt": "wss", "max_tokens": 3}))
        assert json.loads(ws.recv(timeout=30))["object"] == "text_completion" and ws.recv(timeout=30) == "[DONE]"


def test_a_client_that_does_not_trust_the_ca_or_speaks_plain_http_gets_nothing(cluster):
    with pytest.raises(httpx.ConnectError):
        httpx.get(cluster.url + "/health", verify=True, timeout=10)  # the system roots: not our CA
    assert b"HTTP/1.1 200" not in plain_http_answer(cluster.url)
    assert httpx.get(cluster.url + "/health", verify=cluster.verify, timeout=10).status_code == 200


def test_a_process_whose_certificate_names_another_identity_does_not_start(cluster, tmp_path):
    # An agent config with the certificate of agent "a" for an agent that says it is "z".
    config = json.load(open(cluster.process_config("agent", "a")))
    config["cluster"].pop("credential", None)
    config["cluster"]["secret"] = "gateway-test-secret-0123"
    path = tmp_path / "agent-z.json"
    path.write_text(json.dumps(config))
    out = subprocess.run([BINARY, "agent", "--engine", cluster.engines["a"], "--config", str(path), "--instance-id", "z"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "cluster.tls.certificate" in out.stdout + out.stderr and "junction:agent:a" in out.stdout + out.stderr


def test_a_certificate_of_another_ca_is_refused_by_the_trio(cluster, tmp_path):
    other = tmp_path / "other"
    subprocess.run([MAKE_CERTS, str(other), "ca"], check=True, timeout=60)
    subprocess.run([MAKE_CERTS, str(other), "ctl", "operator:tester"], check=True, timeout=60)
    config = json.load(open(cluster.ctl_config))
    config["cluster"]["tls"]["certificate"] = str(other / "ctl.pem")
    config["cluster"]["tls"]["key"] = str(other / "ctl.key")
    path = tmp_path / "ctl-other.json"
    path.write_text(json.dumps(config))
    out = subprocess.run([BINARY, "ctl", "status", "--json", "--config", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0, out.stdout
    assert "TLS" in out.stdout + out.stderr, out.stdout + out.stderr
    # And the trio still answers its own.
    assert cluster.status()["leader_id"] > 0
