#!/usr/bin/env python3
"""Writes the checked-in seed corpus for the wire fuzzer: one frame per file, made with Google's
protobuf from Proto/junction.proto. Run from the repository root with the test venv's python:
  $JUNCTION_PYTHON Tests/Fuzz/make_seeds.py"""
import os, struct, subprocess, sys, tempfile
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
out = tempfile.mkdtemp()
subprocess.run(["protoc", f"--python_out={out}", f"-I{root}/Proto", f"{root}/Proto/junction.proto"], check=True)
sys.path.insert(0, out)
import junction_pb2 as pb

seeds = {
    "hello": pb.Envelope(hello=pb.Hello(protocol_version=1, role=pb.ROLE_AGENT, node_id="a", nonce=bytes(32), proof=bytes(32))),
    "schedule": pb.Envelope(call_id=1, schedule_request=pb.ScheduleRequest(request_id="r", model="m", prefix_hashes=list(range(1, 65)), prompt_tokens=100, exclude_instances=["x"])),
    "reply": pb.Envelope(call_id=1, schedule_reply=pb.ScheduleReply(assigned=pb.Assignment(instance_id="i", endpoint_url="http://h:1", engine=pb.ENGINE_KIND_VLLM))),
    "report": pb.Envelope(call_id=3, load_report=pb.LoadReport(instance_id="i", sequence=1, running=3, kv_usage=0.5, prompt_tokens_per_s=1.5)),
    "table": pb.Envelope(call_id=5, instance_table=pb.InstanceTable(version=2, instances=[pb.Instance(id="i", model="m", state=pb.INSTANCE_STATE_UP)])),
    "raft": pb.Envelope(raft_message=pb.RaftMessage(**{"from": 1}, to=2, term=3, append_request=pb.AppendRequest(prev_log_index=1, entries=[pb.LogEntry(index=2, term=3, data=b"xyz")]))),
    "status": pb.Envelope(call_id=7, status_reply=pb.StatusReply(node_id=1, members=[pb.MemberStatus(id=2, reachable=True)], policy=pb.PolicyConfig(name="p", params=[pb.PolicyParam(key="k", value=1.0)]))),
    "error": pb.Envelope(error=pb.Error(code=pb.ERROR_CODE_BAD_FRAME, message="bad")),
}
folder = os.path.join(root, "Tests/Fuzz/corpus/wire")
os.makedirs(folder, exist_ok=True)
for name, envelope in seeds.items():
    payload = envelope.SerializeToString()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(struct.pack(">I", len(payload)) + payload)
# Two frames back to back, as a connection reads them.
with open(os.path.join(folder, "two-frames"), "wb") as f:
    for name in ("schedule", "reply"):
        payload = seeds[name].SerializeToString()
        f.write(struct.pack(">I", len(payload)) + payload)
print(f"wrote {len(seeds) + 1} seeds to {folder}")
