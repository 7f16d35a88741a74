"""Roles through real processes: a cluster whose schedulers alone hold the root secret, while each
agent, the gateway and `junction ctl` hold only their own credential (Docs/security.md). Requests
flow; an agent's credential, spoken by a raw wire client written with Google's protobuf, is
refused whatever is not its own instance's, and passes for nothing else."""
import json
import os
import pathlib
import subprocess
import sys

import openai
import pytest

from conftest import API_KEY, BINARY, Cluster

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "Tests" / "Interop"))
import wire_peer  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    c = Cluster({"e1": ["--dialect", "vllm"], "e2": ["--dialect", "sglang"]}, credentials=True)
    yield c
    c.stop()


@pytest.fixture(scope="module")
def pb():
    return wire_peer.load_pb2(str(ROOT / "Proto" / "junction.proto"))


def token(cluster, role, node_id):
    return subprocess.run([BINARY, "ctl", "credential", "--config", cluster.config_path, "--role", role, "--id", node_id],
                          capture_output=True, text=True, timeout=20, check=True).stdout.strip()


def key_of(token_text):
    return bytes.fromhex(token_text.rsplit(":", 1)[1])


def leader_port(cluster):
    return cluster.scheduler_ports[int(cluster.status()["leader_id"])]


def handshake(pb, port, role, node_id, key):
    """A client handshake with `key` claiming `role` and `node_id`; the peer, or the server's Error."""
    peer = wire_peer.Peer(pb, port)
    hello = peer.recv()
    nonce = os.urandom(32)
    peer.send(pb.Envelope(hello=pb.Hello(
        protocol_version=2, role=role, node_id=node_id, nonce=nonce,
        proof=wire_peer.client_proof(key, hello.hello.nonce, nonce, role, node_id), software_version="python")))
    answer = peer.recv()
    return peer, answer


def test_processes_holding_only_their_credentials_route_requests(cluster):
    for name in ("agent-e1", "agent-e2", "gateway"):
        config = json.load(open(next(a for a in cluster.processes[name].args if a.endswith(".json"))))
        assert "secret" not in config["cluster"] and config["cluster"]["credential"].startswith("junction-credential-v1:")
    with openai.OpenAI(base_url=cluster.url + "/v1", api_key=API_KEY, max_retries=0, timeout=30) as client:
        served = {client.chat.completions.with_raw_response.create(
            model="tiny", messages=[{"role": "user", "content": f"hello {i}"}], max_tokens=4).headers["x-junction-route"]
            for i in range(6)}
    assert served == {"scheduled"}
    # ctl with an operator's credential reads the status, drains and undrains.
    assert {i["id"] for i in cluster.status()["instances"]} == {"e1", "e2"}
    cluster.ctl("drain", "e2")
    assert {i["id"]: i["state"] for i in cluster.status()["instances"]}["e2"] == "draining"
    cluster.ctl("drain", "e2", "--undrain")
    assert {i["id"]: i["state"] for i in cluster.status()["instances"]}["e2"] == "up"


def test_an_agents_credential_is_refused_everything_but_its_own_instance(cluster, pb):
    key = key_of(token(cluster, "agent", "e1"))
    peer, ack = handshake(pb, leader_port(cluster), pb.ROLE_AGENT, "e1", key)
    assert ack.WhichOneof("body") == "hello_ack"
    calls = {
        "register another instance": pb.Envelope(register_instance=pb.RegisterInstance(instance=pb.Instance(
            id="e2", endpoint_url="http://evil.example:80", model="tiny", engine=pb.ENGINE_KIND_VLLM))),
        "set the policy": pb.Envelope(set_policy_request=pb.SetPolicyRequest(policy=pb.PolicyConfig(name="round-robin"))),
        "drain another instance": pb.Envelope(drain_request=pb.DrainRequest(instance_id="e2")),
        "schedule": pb.Envelope(schedule_request=pb.ScheduleRequest(request_id="x", model="tiny")),
        "change membership": pb.Envelope(membership_change_request=pb.MembershipChangeRequest(node_id=9, address="127.0.0.1:1")),
    }
    call_id = 1
    for what, envelope in calls.items():
        envelope.call_id = call_id
        peer.send(envelope)
        answer = peer.recv()
        assert answer.call_id == call_id and answer.WhichOneof("body") == "error", what
        assert answer.error.code == pb.ERROR_CODE_PERMISSION_DENIED, (what, answer.error)
        call_id += 2
    instances = {i["id"]: i for i in cluster.status()["instances"]}
    assert instances["e2"]["endpoint_url"] != "http://evil.example:80"
    assert cluster.status()["policy"]["name"] == "prefix-cache"


@pytest.mark.parametrize("role, node_id", [("gateway", "e1"), ("operator", "e1"), ("agent", "e2"), ("scheduler", "1")])
def test_an_agents_credential_passes_for_nothing_else(cluster, pb, role, node_id):
    key = key_of(token(cluster, "agent", "e1"))
    roles = {"gateway": pb.ROLE_GATEWAY, "operator": pb.ROLE_OPERATOR, "agent": pb.ROLE_AGENT, "scheduler": pb.ROLE_SCHEDULER}
    _, answer = handshake(pb, leader_port(cluster), roles[role], node_id, key)
    assert answer.WhichOneof("body") == "error" and answer.error.code == pb.ERROR_CODE_UNAUTHENTICATED


def test_ctl_with_an_agents_credential_is_told_so(cluster):
    config = next(a for a in cluster.processes["agent-e1"].args if a.endswith(".json"))
    out = subprocess.run([BINARY, "ctl", "drain", "e2", "--config", config], capture_output=True, text=True, timeout=20)
    assert out.returncode != 0
    assert "cluster.credential: the credential is for role agent; this process runs as role operator" in out.stderr, out.stderr
