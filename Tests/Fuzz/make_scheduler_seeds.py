#!/usr/bin/env python3
"""Writes the seed corpus of the scheduler fuzzer (Tests/Fuzz/Sources/FuzzScheduler): each seed is
one byte naming the peer (Harness.peers: 0 scheduler 2, 1 gateway gw-1, 2 agent e1, 3 agent e2,
4 operator, 5 bench, 6 scheduler 1, 7 agent e3) and then length-prefixed frames, made with Google's
protobuf from Proto/junction.proto. Run from the repository root with the test venv's python:
  $JUNCTION_PYTHON Tests/Fuzz/make_scheduler_seeds.py"""
import os, struct, subprocess, sys, tempfile
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
out = tempfile.mkdtemp()
subprocess.run(["protoc", f"--python_out={out}", f"-I{root}/Proto", f"{root}/Proto/junction.proto"], check=True)
sys.path.insert(0, out)
import junction_pb2 as pb


def frames(*envelopes):
    data = b""
    for envelope in envelopes:
        payload = envelope.SerializeToString()
        data += struct.pack(">I", len(payload)) + payload
    return data


def instance(i):
    return pb.Instance(id=i, endpoint_url=f"http://127.0.0.1:9/{i}", model="m", engine=pb.ENGINE_KIND_VLLM, kv_capacity_tokens=4096)


seeds = {
    "agent-registers-and-reports": (2, [pb.Envelope(call_id=1, register_instance=pb.RegisterInstance(instance=instance("e1"))),
                                        pb.Envelope(call_id=3, load_report=pb.LoadReport(instance_id="e1", health=pb.HEALTH_HEALTHY, running=2, kv_usage=0.4))]),
    "second-agent": (3, [pb.Envelope(call_id=1, register_instance=pb.RegisterInstance(instance=instance("e2"))),
                         pb.Envelope(call_id=3, load_report=pb.LoadReport(instance_id="e2", health=pb.HEALTH_UNHEALTHY))]),
    "gateway-schedules-and-finishes": (1, [
        pb.Envelope(call_id=1, schedule_request=pb.ScheduleRequest(request_id="r1", model="m", prefix_hashes=list(range(1, 33)), prompt_tokens=100)),
        pb.Envelope(call_id=3, finish_request=pb.FinishRequest(request_id="r1", instance_id="e1", outcome=pb.FINISH_OUTCOME_OK, prompt_tokens=100)),
        pb.Envelope(call_id=5, schedule_request=pb.ScheduleRequest(request_id="r2", model="m", prefix_hashes=[1, 2, 3], exclude_instances=["e2"],
                                                                 answer_start_chunk=1, answer_end_chunk=3))]),
    "operator": (4, [pb.Envelope(call_id=1, drain_request=pb.DrainRequest(instance_id="e1")),
                     pb.Envelope(call_id=3, drain_request=pb.DrainRequest(instance_id="e1", undrain=True)),
                     pb.Envelope(call_id=5, set_policy_request=pb.SetPolicyRequest(policy=pb.PolicyConfig(
                         name="prefix-cache", params=[pb.PolicyParam(key="balance_abs_threshold", value=8)]))),
                     pb.Envelope(call_id=7, status_request=pb.StatusRequest()),
                     pb.Envelope(call_id=9, deregister_instance=pb.DeregisterInstance(instance_id="e2"))]),
    "peer-raft": (0, [pb.Envelope(raft_message=pb.RaftMessage(**{"from": 2}, to=1, term=1, heartbeat=pb.Heartbeat(commit=1))),
                      pb.Envelope(raft_message=pb.RaftMessage(**{"from": 2}, to=1, term=1, vote_request=pb.VoteRequest(last_log_index=1, last_log_term=1)))]),
}
folder = os.path.join(root, "Tests/Fuzz/corpus/scheduler")
os.makedirs(folder, exist_ok=True)
for name, (peer, envelopes) in seeds.items():
    with open(os.path.join(folder, name), "wb") as f:
        f.write(bytes([peer]) + frames(*envelopes))
print(f"wrote {len(seeds)} seeds to {folder}")
