"""A scheduler whose disk fills up under load. Each scheduler's data directory is a small tmpfs
this test mounts (as root; skipped otherwise, saying why); once the trio runs, the leader's is
filled. The leader must stop at once, saying which file failed and why, and exit non-zero
(EX_IOERR, 74) instead of answering while it cannot persist; the other two elect a new leader,
the gateway and agents follow it, and no request is lost. Restarted on a disk with room again
(as a supervisor would), the node rejoins from what it had written."""
import concurrent.futures
import os
import subprocess
import tempfile
import threading
import time

import httpx
import pytest

from conftest import API_KEY, Cluster

HEADERS = {"Authorization": f"Bearer {API_KEY}"}


def can_mount_tmpfs():
    if os.geteuid() != 0:
        return "mounting a small filesystem for the schedulers' data needs root"
    probe = tempfile.mkdtemp(prefix="junction-mount-probe-")
    try:
        out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe], capture_output=True, text=True)
        if out.returncode != 0:
            return f"mount -t tmpfs is not permitted here: {out.stderr.strip()}"
        subprocess.run(["umount", probe], check=True)
        return None
    finally:
        os.rmdir(probe)


def fill(directory):
    """Writes a file into `directory` until its filesystem has no room left."""
    chunk = b"\0" * 65536
    # Unbuffered: a buffered file would raise the same error again when it is closed.
    with open(os.path.join(directory, "filler"), "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError:
            pass


@pytest.fixture
def small_disk_cluster():
    reason = can_mount_tmpfs()
    if reason:
        pytest.skip(reason)
    mounted = []

    def mount(cluster):
        for i in (1, 2, 3):
            path = cluster.data_dir(i)
            os.makedirs(path)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", path], check=True)
            mounted.append(path)

    cluster = None
    try:
        cluster = Cluster({"a": ["--dialect", "vllm"], "b": ["--dialect", "vllm"]}, {"max_queue_size": 64}, prepare=mount)
        yield cluster
    finally:
        if cluster:
            cluster.stop()
        for path in mounted:
            subprocess.run(["umount", "-l", path])


def test_a_leader_whose_disk_fills_stops_and_the_trio_goes_on_losing_nothing(small_disk_cluster):
    cluster = small_disk_cluster
    leader_id = cluster.status()["leader_id"]
    leader = cluster.processes[f"scheduler-{leader_id}"]
    results = []
    stop = threading.Event()

    # Prompts of a few unique chunks each, so every affinity batch the leader proposes is new
    # data for its log: the full disk is met within the next page of the WAL.
    def load(worker):
        for n in range(2000):
            if stop.is_set():
                return
            try:
                reply = httpx.post(cluster.url + "/v1/completions", headers=HEADERS, timeout=30,
                                   json={"model": "tiny", "prompt": f"worker {worker} request {n} " + "p" * (700 + n % 50), "max_tokens": 3})
                results.append((reply.status_code, reply.headers.get("x-junction-route"), time.time()))
            except httpx.HTTPError as error:
                results.append((repr(error), None, time.time()))

    def fill_and_watch():
        time.sleep(1.0)
        fill(cluster.data_dir(leader_id))
        filled_at = time.time()
        try:
            leader.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            raise AssertionError("the leader went on running on a full disk:\n" + leader.tail())
        exited_after = time.time() - filled_at
        new_leader = None
        deadline = time.time() + 20
        while time.time() < deadline and new_leader is None:
            status = cluster.status()
            if status and status["leader_id"] not in (0, leader_id):
                new_leader = status["leader_id"]
            time.sleep(0.1)
        new_leader_after = time.time() - filled_at
        time.sleep(3.0)  # requests keep going through the new leader
        return exited_after, new_leader, new_leader_after

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        workers = [pool.submit(load, w) for w in range(4)]
        try:
            exited_after, new_leader, new_leader_after = fill_and_watch()
        finally:
            stop.set()
        for w in workers:
            w.result()

    print(f"leader {leader_id} exited {exited_after:.2f} s after its disk filled; leader {new_leader} known "
          f"{new_leader_after:.2f} s after; {len(results)} requests")
    assert leader.proc.returncode == 74, leader.tail()
    log = open(leader.log_path, errors="replace").read()
    assert "storage failed" in log and "No space left on device" in log and cluster.data_dir(leader_id) in log, leader.tail()
    assert new_leader is not None, cluster.logs()
    failures = [r for r in results if r[0] != 200]
    assert not failures, failures[:5]
    assert results[-1][1] == "scheduled", "routing by the scheduler did not resume"

    # Room again, and restarted as a supervisor would: the node rejoins the new leader's term
    # from what it had written (a record the full disk tore is cut at start-up).
    os.remove(os.path.join(cluster.data_dir(leader_id), "filler"))
    cluster.start_scheduler(leader_id)
    deadline = time.time() + 20
    caught_up = False
    while time.time() < deadline and not caught_up:
        status = cluster.status()
        if status:
            member = {m["id"]: m for m in status["members"]}.get(leader_id)
            caught_up = bool(member) and member["reachable"] and member["match_index"] >= status["commit_index"] - 5
        time.sleep(0.2)
    assert cluster.processes[f"scheduler-{leader_id}"].alive(), cluster.processes[f"scheduler-{leader_id}"].tail()
    assert caught_up, cluster.logs()
