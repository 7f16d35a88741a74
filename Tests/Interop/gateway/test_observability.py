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


def leader_url(cluster, urls):
    for name, url in urls.items():
        if name.startswith("scheduler-"):
            page = families(httpx.get(url + "/metrics").text)
            role = page["junction_scheduler_raft_role"]
            if any(s.labels["role"] == "leader" and s.value == 1 for s in role.samples):
                return url
    raise AssertionError("no scheduler says it leads")


def test_the_leader_shows_each_engine_and_its_decisions(cluster):
    drive(cluster)
    urls = pages(cluster)
    page = families(httpx.get(leader_url(cluster, urls) + "/metrics").text)
    info = {s.labels["instance_id"]: s.labels["engine"] for s in page["junction_scheduler_instance_info"].samples}
    assert info == {"a": "vllm", "b": "sglang"}
    running = {s.labels["instance_id"] for s in page["junction_scheduler_instance_running"].samples}
    assert running == {"a", "b"}
    decided = sum(s.value for s in page["junction_scheduler_decisions"].samples
                  if s.name == "junction_scheduler_decisions_total" and s.labels["outcome"] == "assigned")
    assert decided >= 6
    # Followers know the registry and the leader, not the engines' load.
    for name, url in urls.items():
        if name.startswith("scheduler-") and url != leader_url(cluster, urls):
            follower = families(httpx.get(url + "/metrics").text)
            assert not follower["junction_scheduler_instance_running"].samples
            assert {s.labels["instance_id"] for s in follower["junction_scheduler_instance_up"].samples} == {"a", "b"}
    for name in ("agent-a", "agent-b"):
        assert httpx.get(urls[name] + "/readyz").status_code == 200
        assert httpx.get(urls[name] + "/healthz").status_code == 200
        assert httpx.post(urls[name] + "/metrics").status_code == 405
