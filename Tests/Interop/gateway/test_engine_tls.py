"""HTTPS to engines, as an option: an engine behind a real HAProxy that terminates TLS with a
certificate of a CA of the test's own (Deploy/tls/make-certs.sh). The agent scrapes it and
registers its https:// URL; the gateway verifies it with `llm_gateway.engine_ca` and relays
answers and streams over TLS. An engine whose certificate does not verify is not used."""
import os
import shutil
import signal
import ssl
import subprocess
import time

import httpx
import pytest

from conftest import API_KEY, MAKE_CERTS, Cluster, free_port

HEADERS = {"Authorization": f"Bearer {API_KEY}"}


class TLSFront:
    """HAProxy terminating TLS in front of one engine."""

    def __init__(self, engine_url, directory, certificate):
        self.port = free_port()
        backend = engine_url.removeprefix("http://")
        config = os.path.join(directory, f"haproxy-{self.port}.cfg")
        with open(config, "w") as f:
            f.write("defaults\n    mode http\n    timeout connect 2s\n    timeout client 60s\n    timeout server 60s\n"
                    f"frontend tls\n    bind 127.0.0.1:{self.port} ssl crt {certificate}\n    default_backend engine\n"
                    f"backend engine\n    server engine {backend}\n")
        self.process = subprocess.Popen(["haproxy", "-f", config, "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"https://127.0.0.1:{self.port}"

    def stop(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


def make_engine_certificate(directory, ca_name="ca"):
    """The CA in `directory` and an engine certificate for localhost and 127.0.0.1, as HAProxy
    reads it (certificate and key in one file)."""
    subprocess.run([MAKE_CERTS, directory, "ca"], check=True, timeout=60)
    subprocess.run([MAKE_CERTS, directory, "engine"], check=True, timeout=60)
    combined = os.path.join(directory, "engine-haproxy.pem")
    with open(combined, "w") as out:
        out.write(open(os.path.join(directory, "engine.pem")).read() + open(os.path.join(directory, "engine.key")).read())
    return os.path.join(directory, "ca.pem"), combined


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is missing (make deps installs it)")
    directory = str(tmp_path_factory.mktemp("engine-tls"))
    ca, certificate = make_engine_certificate(directory)
    fronts = []

    def behind_tls(url):
        front = TLSFront(url, directory, certificate)
        fronts.append(front)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                httpx.get(front.url + "/health", verify=ssl.create_default_context(cafile=ca), timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        return front.url

    # Round-robin: the test sends requests to both engines by the policy's promise. prefix-cache
    # spreads short distinct prompts only by load and random ties, and once in a while sent all
    # eight to one engine.
    c = Cluster({"a": ["--dialect", "vllm"], "b": ["--dialect", "sglang"]}, engine_urls={"a": behind_tls, "b": behind_tls},
                gateway_options={"engine_ca": ca}, agent_options={"engine_ca": ca}, scheduler_options={"policy": "round-robin"})
    yield c
    c.stop()
    for front in fronts:
        front.stop()


def test_answers_and_streams_come_from_https_engines(cluster):
    instances = {i["id"]: i for i in cluster.status()["instances"]}
    assert all(instances[name]["endpoint_url"].startswith("https://") for name in ("a", "b")), instances
    served = set()
    for n in range(8):
        reply = httpx.post(cluster.url + "/v1/chat/completions", headers=HEADERS, timeout=30,
                           json={"model": "tiny", "messages": [{"role": "user", "content": f"over https {n}"}], "max_tokens": 4})
        assert reply.status_code == 200, reply.text
        served.add(reply.headers["x-junction-instance"])
    assert served == {"a", "b"}, served
    with httpx.stream("POST", cluster.url + "/v1/completions", headers=HEADERS, timeout=30,
                      json={"model": "tiny", "prompt": "stream over https", "max_tokens": 6, "stream": True}) as reply:
        body = "".join(reply.iter_text())
    assert reply.status_code == 200 and body.rstrip().endswith("data: [DONE]")


def test_an_engine_whose_certificate_does_not_verify_is_not_used(cluster_factory, tmp_path):
    # The engine's certificate is of another CA than the one the gateway and the agent trust.
    _, certificate = make_engine_certificate(str(tmp_path / "other"))
    trusted = str(tmp_path / "trusted")
    subprocess.run([MAKE_CERTS, trusted, "ca"], check=True, timeout=60)
    fronts = []

    def behind_tls(url):
        front = TLSFront(url, str(tmp_path), certificate)
        fronts.append(front)
        return front.url

    made = []
    try:
        # The agent's scrapes fail verification, so the instance never comes up.
        with pytest.raises(RuntimeError, match="did not come up"):
            cluster_factory({"a": ["--dialect", "vllm"]}, engine_urls={"a": behind_tls}, prepare=made.append, ready_timeout=8,
                            gateway_options={"engine_ca": trusted + "/ca.pem"}, agent_options={"engine_ca": trusted + "/ca.pem"})
    finally:
        for front in fronts:
            front.stop()
    log = open(made[0].processes["agent-a"].log_path, errors="replace").read()
    assert "TLS handshake fails" in log and "CERTIFICATE_VERIFY_FAILED" in log, log[-2000:]
