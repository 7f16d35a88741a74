"""Every process's /metrics, read by the real tools an operator points at them: promtool's
linter and prometheus_client's parser. A whole cluster of real processes, with traffic through
the gateway first so that every family has samples."""
import shutil
import subprocess

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import API_KEY, Cluster


@pytest.fixture(scope="module")
def cluster():
    c = Cluster({
        "a": ["--dialect", "vllm", "--slowness", "5"],
        "b": ["--dialect", "sglang", "--slowness", "5"],
    }, metrics=True)
    yield c
    c.stop()


def pages(cluster):
    """Name -> metrics URL, for every scheduler, agent and the gateway."""
    urls = {name: process.metrics_url() for name, process in cluster.processes.items()
            if name.startswith(("scheduler-", "agent-"))}
    urls["gateway"] = cluster.url
    return urls


def families(text):
    return {family.name: family for family in text_string_to_metric_families(text)}


def drive(cluster):
    with openai.OpenAI(base_url=cluster.url + "/v1", api_key=API_KEY, max_retries=0, timeout=30) as client:
        for i in range(6):
            client.completions.create(model="tiny", prompt="a shared prefix for routing " * 8 + str(i % 2), max_tokens=4)


def test_every_page_passes_promtool_without_a_remark(cluster):
    drive(cluster)
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) must be installed by Deploy/dev/install-deps.sh"
    urls = pages(cluster)
    assert len(urls) == 3 + 2 + 1
    for name, url in urls.items():
        text = httpx.get(url + "/metrics").text
        check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
        assert check.returncode == 0, f"{name}: {check.stdout}{check.stderr}"
        assert families(text), f"{name}: the parser found no families"


def test_the_leader_shows_each_engine_and_its_decisions(cluster):
    import time

    drive(cluster)
    urls = pages(cluster)
    schedulers = {name: url for name, url in urls.items() if name.startswith("scheduler-")}

    def snapshot():
        return {name: families(httpx.get(url + "/metrics").text) for name, url in schedulers.items()}

    def leads(page):
        return any(s.labels["role"] == "leader" and s.value == 1 for s in page["junction_scheduler_raft_role"].samples)

    def engines(page):
        return {s.labels["instance_id"] for s in page["junction_scheduler_instance_running"].samples}

    # A leader has every engine's load once their agents have reported to it (a new leader
    # starts without); only a page that says it leads may show any.
    deadline = time.time() + 20
    while True:
        pages_now = snapshot()
        leaders = [page for page in pages_now.values() if leads(page)]
        for page in pages_now.values():
            if not leads(page):
                assert not engines(page), "a follower shows engine load"
                assert {s.labels["instance_id"] for s in page["junction_scheduler_instance_up"].samples} == {"a", "b"}
        if len(leaders) == 1 and engines(leaders[0]) == {"a", "b"}:
            break
        assert time.time() < deadline, f"no leader showing both engines: {[engines(p) for p in leaders]}"
        time.sleep(0.2)
    info = {s.labels["instance_id"]: s.labels["engine"] for s in leaders[0]["junction_scheduler_instance_info"].samples}
    assert info == {"a": "vllm", "b": "sglang"}
    # Decisions are counted where they were made: summed over the members, whoever led.
    decided = sum(s.value for page in pages_now.values() for s in getattr(page.get("junction_scheduler_decisions"), "samples", [])
                  if s.name == "junction_scheduler_decisions_total" and s.labels["outcome"] == "assigned")
    assert decided >= 6
    for name in ("agent-a", "agent-b"):
        # Ready while registered with a leader: after a leader change, once it has registered again.
        deadline = time.time() + 20
        while httpx.get(urls[name] + "/readyz").status_code != 200:
            assert time.time() < deadline, f"{name} not ready: {httpx.get(urls[name] + '/readyz').text}"
            time.sleep(0.2)
        assert httpx.get(urls[name] + "/healthz").status_code == 200
        assert httpx.post(urls[name] + "/metrics").status_code == 405


def test_ctl_top_runs_live_in_a_terminal(cluster):
    """`junction ctl top` in a real terminal (tmux): it shows the trio, both engines and the
    gateway, follows a drain within a few frames, and stops on Ctrl-C."""
    import os
    import time

    from conftest import BINARY

    tmux = shutil.which("tmux")
    assert tmux, "tmux must be installed by Deploy/dev/install-deps.sh"
    socket_name = f"junction-top-{os.getpid()}"

    def run(*args):
        return subprocess.run([tmux, "-L", socket_name, *args], capture_output=True, text=True, timeout=10)

    def screen():
        return run("capture-pane", "-p", "-t", "top").stdout

    def wait_for(condition, what, within=20):
        deadline = time.time() + within
        while time.time() < deadline:
            text = screen()
            if condition(text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"ctl top never showed {what}:\n{screen()}")

    def row(text, instance):
        return next((line.split() for line in text.splitlines() if line.split()[:1] == [instance]), [])

    command = f"{BINARY} ctl top --config {cluster.config_path} --gateway {cluster.url} --interval 0.3"
    started = run("new-session", "-d", "-s", "top", "-x", "160", "-y", "40", command)
    assert started.returncode == 0, started.stderr
    try:
        text = wait_for(
            lambda t: row(t, "a")[1:2] == ["up"] and row(t, "b")[1:2] == ["up"] and "scheduled" in t
            and " leader " in t.splitlines()[0] and "3/3 reachable" in t, "the trio with a leader and both engines up")
        assert row(text, "a")[2:4] == ["tiny", "vllm"] and row(text, "b")[2:4] == ["tiny", "sglang"]
        assert cluster.ctl("drain", "a") is not None
        wait_for(lambda t: row(t, "a")[1:2] == ["DRAINING"], "the drain")
        cluster.ctl("drain", "a", "--undrain")
        wait_for(lambda t: row(t, "a")[1:2] == ["up"], "the engine back")
        run("send-keys", "-t", "top", "C-c")
        deadline = time.time() + 10
        while run("has-session", "-t", "top").returncode == 0 and time.time() < deadline:
            time.sleep(0.1)
        assert run("has-session", "-t", "top").returncode != 0, "ctl top did not stop on Ctrl-C"
    finally:
        run("kill-server")
