"""A prefill instance killed under load, in both hand-off flows. In a module of its own: the
pd-split module's clusters (kept up for its whole module) would otherwise still run beside this
test's cluster on the same cores, and what it checks must not depend on how loaded the machine is."""
import concurrent.futures
import signal
import threading
import time

import httpx
import pytest

from test_gateway_pd_split import PDCluster, long_prompt, streamed_chat


def load_while(pd, during, requests=40, workers=4):
    """Sends `requests` streamed chats from `workers` threads, calling `during` once a quarter are
    answered; returns (headers, error) per request."""
    results, done = [], threading.Event()
    lock = threading.Lock()

    def one(i):
        try:
            with pd.client() as client:
                headers, text, usage = streamed_chat(client, long_prompt(f"load{i}", 300), max_tokens=24)
            outcome = (headers, None if text and usage.completion_tokens >= 1 else "empty answer")
        except Exception as error:  # every failure is a lost request: record it
            outcome = (None, repr(error))
        with lock:
            results.append(outcome)
            if len(results) == requests // 4:
                done.set()
        return outcome

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(one, i) for i in range(requests)]
        assert done.wait(60)
        during()
        for future in futures:
            future.result(timeout=120)
    return results


@pytest.mark.parametrize("flow", ["vllm", "sglang"])
def test_a_prefill_instance_dying_mid_run_loses_no_request(flow):
    pd = PDCluster(flow)
    try:
        killed_at = []

        def kill_p1():
            pd.cluster.processes["sim-p1"].stop(signal.SIGKILL)
            killed_at.append(time.time())

        # What the leader held while the load ran: each instance's state and in-flight count,
        # printed with the outcome (a request served whole names why only through these).
        samples, watching = [], threading.Event()

        def watch():
            while not watching.is_set():
                status = pd.cluster.status() or {}
                samples.append((time.time(), {i["id"]: (i["state"], i["in_flight"]) for i in status.get("instances", [])}))
                watching.wait(0.1)
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            results = load_while(pd, kill_p1)
        finally:
            watching.set()
            watcher.join(10)
        peak = {}
        for _, instances in samples:
            for name, (_, count) in instances.items():
                peak[name] = max(peak.get(name, 0), count)
        print(f"{len(samples)} status samples; peak in-flight per instance: {peak}")
        errors = [error for _, error in results if error]
        assert not errors, errors
        assert len(results) == 40
        # The survivors carried the rest; some requests met the dead instance and were retried.
        used = {headers.get("x-junction-prefill-instance") for headers, _ in results}
        assert "p2" in used
        text = httpx.get(pd.cluster.url + "/metrics").text
        failed = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                     if line.startswith("junction_gateway_pd_handoffs_total") and 'outcome="prefill_failed"' in line)
        ok = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                 if line.startswith("junction_gateway_pd_handoffs_total") and 'outcome="ok"' in line)
        whole = sum(1 for headers, _ in results if "x-junction-prefill-instance" not in headers)
        print("whole:", [(h.get("x-junction-route"), h.get("x-junction-instance")) for h, _ in results if "x-junction-prefill-instance" not in h])
        print(f"{flow}: {ok:.0f} hand-offs ok, {failed:.0f} prefill legs failed and were retried, {whole} served whole")
        # Every leg released its slot: the leader's in-flight counts return to zero.
        in_flight = {}
        deadline = time.time() + 10
        while time.time() < deadline:
            status = pd.cluster.status()
            in_flight = {i["id"]: i["in_flight"] for i in (status or {}).get("instances", [])}
            if in_flight and not any(in_flight.values()):
                break
            time.sleep(0.2)
        assert in_flight and not any(in_flight.values()), in_flight
        # A retry after a failed prefill leg is split again, on the surviving prefill instance.
        assert whole == 0 and ok >= 40
    finally:
        pd.stop()
