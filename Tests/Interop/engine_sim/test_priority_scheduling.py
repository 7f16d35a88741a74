"""vLLM's `--scheduling-policy priority` in the simulator: the request `priority` field orders the
waiting queue (lower first), through the official `openai` client's `extra_body` as vLLM's docs
show; an FCFS engine refuses any priority but 0, with vLLM's own message."""
import concurrent.futures
import time

import openai
import pytest

from conftest import sample_value, wait_until


def client(sim):
    return openai.OpenAI(base_url=sim.url + "/v1", api_key="unused", max_retries=0)


def complete(sim, prompt, priority, max_tokens):
    """The request's completion time on the client's clock."""
    client(sim).completions.create(model="tiny", prompt=prompt, max_tokens=max_tokens,
                                   extra_body={"priority": priority, "ignore_eos": True})
    return time.monotonic()


def test_a_higher_priority_request_leaves_the_queue_before_those_waiting_longer(start_sim):
    # One sequence at a time, so requests wait in the engine's queue in the order it keeps.
    sim = start_sim("--profile", "tiny", "--max-num-seqs", "1", "--scheduling-policy", "priority")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        # Each takes over a second (600 steps of 2 ms): the running one is still running when
        # `high` comes, however slow the machine is to send it.
        low = [pool.submit(complete, sim, f"low {i}", 5, 600) for i in range(4)]
        # Every low one has reached the engine: one runs, three wait.
        wait_until(lambda: sample_value(sim.metrics(), "vllm:num_requests_waiting") == 3, timeout=20)
        high = pool.submit(complete, sim, "high", 0, 600).result(timeout=60)
        ends = sorted(f.result(timeout=60) for f in low)
    # It went next: only the low one running when it came finished before it.
    assert sum(1 for end in ends if end < high) == 1, (ends, high)


@pytest.mark.parametrize("priority", [1, -3])
def test_an_fcfs_engine_refuses_a_priority_as_vllm_does(start_sim, priority):
    sim = start_sim("--profile", "tiny")
    with pytest.raises(openai.BadRequestError) as refused:
        client(sim).completions.create(model="tiny", prompt="x", max_tokens=2, extra_body={"priority": priority})
    assert refused.value.body["message"] == f"Got priority {priority} but Priority scheduling is not enabled."
    assert refused.value.body["param"] == "priority"
    # Priority 0 is every request's default, and fine.
    client(sim).completions.create(model="tiny", prompt="x", max_tokens=2, extra_body={"priority": 0})


def test_a_priority_that_is_not_an_integer_is_refused(start_sim):
    sim = start_sim("--profile", "tiny", "--scheduling-policy", "priority")
    reply = sim.http.post("/v1/completions", json={"model": "tiny", "prompt": "x", "max_tokens": 2, "priority": "high"})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "priority"
