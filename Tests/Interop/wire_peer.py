#!/usr/bin/env python3
"""A Junction wire peer written with Google's protobuf for Python, using code that protoc generates
from Proto/junction.proto. It connects to a Junction wire server, completes the HMAC handshake and
exercises calls, errors, streams and one-way messages, checking every frame Junction writes and
writing frames Junction must decode. The Swift test InteropTests starts the server and this script,
and checks what the server received. Exit status 0 means every check passed.
"""
import argparse
import hashlib
import hmac
import importlib
import os
import socket
import struct
import subprocess
import sys
import tempfile

CHECKS = 0


def check(condition, what):
    global CHECKS
    if not condition:
        raise SystemExit(f"interop check failed: {what}")
    CHECKS += 1


def load_pb2(proto):
    out = tempfile.mkdtemp(prefix="junction-pb2-")
    subprocess.run(["protoc", f"--python_out={out}", f"-I{os.path.dirname(proto)}", proto], check=True)
    sys.path.insert(0, out)
    return importlib.import_module("junction_pb2")


class Peer:
    def __init__(self, pb, port):
        self.pb = pb
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def send(self, envelope):
        payload = envelope.SerializeToString()
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)

    def recv(self):
        while len(self.buf) < 4:
            self._fill()
        (length,) = struct.unpack(">I", self.buf[:4])
        check(0 < length <= 4 << 20, f"frame length {length} within limits")
        while len(self.buf) < 4 + length:
            self._fill()
        payload, self.buf = self.buf[4:4 + length], self.buf[4 + length:]
        envelope = self.pb.Envelope()
        envelope.ParseFromString(payload)  # raises on bytes that are not standard protobuf
        return envelope

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise SystemExit("interop check failed: Junction closed the connection unexpectedly")
        self.buf += chunk


ROLE_NAMES = {1: "scheduler", 2: "gateway", 3: "agent", 4: "operator", 5: "bench"}


def credential_key(root, role, node_id):
    """The key of one role and node id under the root secret (Sources/Wire/Credential.swift)."""
    message = b"junction-credential-v1\0" + ROLE_NAMES[role].encode() + b"\0" + node_id.encode()
    return hmac.new(root, message, hashlib.sha256).digest()


def client_proof(key, server_nonce, client_nonce, role, node_id):
    transcript = b"junction-hello-v2/client" + server_nonce + client_nonce + struct.pack(">I", role) + node_id.encode()
    return hmac.new(key, transcript, hashlib.sha256).digest()


def server_proof(key, client_nonce, server_nonce):
    return hmac.new(key, b"junction-hello-v2/server" + client_nonce + server_nonce, hashlib.sha256).digest()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--proto", required=True)
    args = parser.parse_args()
    pb = load_pb2(args.proto)
    secret = args.secret.encode()
    peer = Peer(pb, args.port)

    # Handshake: the server speaks first.
    hello = peer.recv()
    check(hello.WhichOneof("body") == "hello", "first frame is Hello")
    check(hello.hello.protocol_version == 2, "protocol version 2")
    check(hello.hello.role == pb.ROLE_SCHEDULER, "server role is scheduler")
    check(hello.hello.node_id == "1", "server node id")
    check(len(hello.hello.nonce) == 32, "32-byte nonce")
    check(hello.hello.software_version.startswith("junction"), "software version")
    nonce = os.urandom(32)
    key = credential_key(secret, pb.ROLE_BENCH, "python-peer")
    mine = pb.Envelope(hello=pb.Hello(
        protocol_version=2, role=pb.ROLE_BENCH, node_id="python-peer", nonce=nonce,
        proof=client_proof(key, hello.hello.nonce, nonce, pb.ROLE_BENCH, "python-peer"),
        software_version="python-protobuf"))
    peer.send(mine)
    ack = peer.recv()
    check(ack.WhichOneof("body") == "hello_ack", "HelloAck")
    check(hmac.compare_digest(ack.hello_ack.proof, server_proof(key, nonce, hello.hello.nonce)), "server proof verifies")

    # A unary call with every kind of field Junction's schedule request has.
    request = pb.ScheduleRequest(
        request_id="py-1", model="qwen-7b", prefix_hashes=[0, 1, 2**63, 2**64 - 1], prompt_tokens=1790,
        max_tokens=1320, exclude_instances=["engine-b", "engine-ü"], session_key="conv-9", chunk_chars=256)
    peer.send(pb.Envelope(call_id=1, schedule_request=request))
    reply = peer.recv()
    check(reply.call_id == 1, "reply echoes call id 1")
    check(reply.WhichOneof("body") == "schedule_reply", "schedule reply")
    assigned = reply.schedule_reply.assigned
    check(reply.schedule_reply.WhichOneof("outcome") == "assigned", "assigned outcome")
    check(assigned.instance_id == "i-qwen-7b", "instance id")
    check(assigned.endpoint_url == "http://127.0.0.1:9/py-1", "endpoint url")
    check(assigned.engine == pb.ENGINE_KIND_VLLM, "engine enum")
    check(assigned.cached_chunks == 4, "cached chunks counts the 4 hashes")

    # An error reply.
    peer.send(pb.Envelope(call_id=3, schedule_request=pb.ScheduleRequest(model="unknown")))
    error = peer.recv()
    check(error.call_id == 3 and error.WhichOneof("body") == "error", "error reply for call 3")
    check(error.error.code == pb.ERROR_CODE_NOT_FOUND, "NOT_FOUND code")
    check("unknown" in error.error.message, "error message names the model")

    # A reply with nested and repeated messages.
    peer.send(pb.Envelope(call_id=5, status_request=pb.StatusRequest()))
    status = peer.recv()
    check(status.call_id == 5 and status.status_reply.term == 7 and status.status_reply.raft_state == "leader", "status reply")

    # A one-way Raft message with nested entries and bytes.
    command = pb.SchedulerCommand(remove_instance="engine-z").SerializeToString()
    peer.send(pb.Envelope(call_id=0, raft_message=pb.RaftMessage(
        **{"from": 2}, to=1, term=12, append_request=pb.AppendRequest(
            prev_log_index=41, prev_log_term=11, leader_commit=40,
            entries=[pb.LogEntry(index=42, term=12, type=pb.ENTRY_TYPE_NOOP),
                     pb.LogEntry(index=43, term=12, type=pb.ENTRY_TYPE_COMMAND, data=command)]))))

    # A server stream: three tables, then End.
    peer.send(pb.Envelope(call_id=7, subscribe_instances=pb.SubscribeInstances(known_version=10)))
    versions = []
    while True:
        item = peer.recv()
        check(item.call_id == 7, "stream items carry call id 7")
        if item.WhichOneof("body") == "end":
            break
        check(item.WhichOneof("body") == "instance_table", "instance table item")
        table = item.instance_table
        check(table.instances[0].engine == pb.ENGINE_KIND_SGLANG and table.instances[0].state == pb.INSTANCE_STATE_UP, "instance enums")
        versions.append(table.version)
    check(versions == [11, 12, 13], f"table versions {versions}")

    # A client stream: reports with doubles, then End from our side; the server answers End.
    peer.send(pb.Envelope(call_id=9, open_report_stream=pb.OpenReportStream(instance_id="engine-a")))
    for seq in (1, 2, 3):
        peer.send(pb.Envelope(call_id=9, load_report=pb.LoadReport(
            instance_id="engine-a", sequence=seq, health=pb.HEALTH_HEALTHY, running=seq, waiting=2 * seq,
            kv_usage=0.125 * seq, prompt_tokens_per_s=1000.5, generation_tokens_per_s=250.25, prefix_cache_hit_rate=0.5)))
    peer.send(pb.Envelope(call_id=9, end=pb.End()))
    done = peer.recv()
    check(done.call_id == 9 and done.WhichOneof("body") == "end", "report stream ended with End")

    # Keepalive.
    peer.send(pb.Envelope(ping=pb.Ping(nonce=2**64 - 1)))
    pong = peer.recv()
    check(pong.WhichOneof("body") == "pong" and pong.pong.nonce == 2**64 - 1, "pong echoes nonce")

    # A reply to a call nobody made is a protocol error: Junction says so and closes.
    peer.send(pb.Envelope(call_id=1001, ack=pb.Ack(index=1)))
    fatal = peer.recv()
    check(fatal.call_id == 0 and fatal.error.code == pb.ERROR_CODE_UNKNOWN_CALL, "UNKNOWN_CALL for a stray reply")
    check(peer.sock.recv(1) == b"", "connection closed after the error")
    print(f"interop: {CHECKS} checks passed")


if __name__ == "__main__":
    main()
