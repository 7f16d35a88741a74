"""The agent asks its engine for only the samples it reads (`/metrics?name[]=…`, as Python's
prometheus_client serves them), and scrapes the whole page when a filtered one lacks what it
needs (prometheus_client in multiprocess mode answers filtered scrapes empty)."""
import urllib.parse

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import wait_for
from recording_proxy import RecordingProxy


def agent_gauge(url, name):
    for family in text_string_to_metric_families(httpx.get(url + "/metrics", timeout=5).text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    return None


def asked_names(path):
    return [value for key, value in urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query) if key == "name[]"]


@pytest.mark.parametrize("empty_filtered_page", [False, True], ids=["honoured", "multiprocess-empty"])
def test_agent_scrapes_the_samples_it_reads_and_falls_back_to_the_whole_page(cluster_factory, empty_filtered_page):
    proxy = []

    def behind_proxy(url):
        proxy.append(RecordingProxy(url, empty_filtered_metrics=empty_filtered_page))
        return proxy[0].url

    try:
        cluster = cluster_factory({"a": ["--dialect", "vllm"]}, engine_urls={"a": behind_proxy}, metrics=True)
        agent = cluster.processes["agent-a"].metrics_url()
        # The KV capacity comes from vllm:cache_config_info's labels: read from whichever page
        # the agent believed.
        wait_for(lambda: (agent_gauge(agent, "junction_agent_engine_kv_capacity_tokens") or 0) > 0, 20,
                 "the agent to read the engine's KV capacity")
        scrapes = wait_for(lambda: (lambda s: s if len(s) >= 6 else None)(proxy[0].scrapes()), 20, "six scrapes")
        # The first scrape reads the whole page: it tells the engine's kind.
        assert scrapes[0] == "/metrics"
        filtered = [path for path in scrapes[1:] if path.startswith("/metrics?")]
        assert filtered, scrapes
        names = asked_names(filtered[0])
        assert {"vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
                "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:cache_config_info"} <= set(names)
        assert not any(name.endswith(("_bucket", "_created")) for name in names)
        if empty_filtered_page:
            # One filtered scrape came back empty: the whole page at once, and never filtered again.
            assert len(filtered) == 1, scrapes
            position = scrapes.index(filtered[0])
            assert all(path == "/metrics" for path in scrapes[position + 1:]), scrapes
            assert agent_gauge(agent, "junction_agent_metrics_filtered") == 0
        else:
            assert all(path.startswith("/metrics?") for path in scrapes[1:]), scrapes
            assert agent_gauge(agent, "junction_agent_metrics_filtered") == 1
        # Either way the leader hears of the engine, up, with its capacity.
        status = cluster.status()
        assert [i["state"] for i in status["instances"]] == ["up"]
    finally:
        for p in proxy:
            p.stop()


def test_filter_metrics_false_scrapes_the_whole_page(cluster_factory):
    proxy = []

    def behind_proxy(url):
        proxy.append(RecordingProxy(url))
        return proxy[0].url

    try:
        cluster = cluster_factory({"a": ["--dialect", "vllm"]}, engine_urls={"a": behind_proxy}, metrics=True,
                                  agent_options={"filter_metrics": False})
        agent = cluster.processes["agent-a"].metrics_url()
        scrapes = wait_for(lambda: (lambda s: s if len(s) >= 4 else None)(proxy[0].scrapes()), 20, "four scrapes")
        assert all(path == "/metrics" for path in scrapes), scrapes
        assert agent_gauge(agent, "junction_agent_metrics_filtered") == 0
    finally:
        for p in proxy:
            p.stop()
