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


class PrometheusClientEngine:
    """An engine whose /metrics is Python's prometheus_client itself (its WSGI app, which
    handles `name[]` as the ASGI app in front of vLLM does), with vLLM's names; /v1/models and
    /health answered by hand. Records each /metrics query string."""

    def __init__(self, running, waiting):
        import threading
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
        self.registry = CollectorRegistry()
        labels = {"engine": "0", "model_name": "tiny"}
        Gauge("vllm:num_requests_running", "running", list(labels), registry=self.registry).labels(**labels).set(running)
        Gauge("vllm:num_requests_waiting", "waiting", list(labels), registry=self.registry).labels(**labels).set(waiting)
        Gauge("vllm:kv_cache_usage_perc", "kv", list(labels), registry=self.registry).labels(**labels).set(0.25)
        Counter("vllm:prompt_tokens", "prompt", list(labels), registry=self.registry).labels(**labels).inc(100)
        Counter("vllm:generation_tokens", "generated", list(labels), registry=self.registry).labels(**labels).inc(50)
        info = ["block_size", "num_gpu_blocks", "engine"]
        Gauge("vllm:cache_config_info", "cache config", info, registry=self.registry).labels(
            block_size="16", num_gpu_blocks="1000", engine="0").set(1)
        Histogram("vllm:time_to_first_token_seconds", "ttft", list(labels), registry=self.registry).labels(**labels).observe(0.1)
        metrics_app = make_wsgi_app(self.registry)
        self.queries = []

        def app(environ, start_response):
            path = environ.get("PATH_INFO", "")
            if path == "/metrics":
                self.queries.append(environ.get("QUERY_STRING", ""))
                return metrics_app(environ, start_response)
            if path == "/v1/models":
                start_response("200 OK", [("content-type", "application/json")])
                return [b'{"object":"list","data":[{"id":"tiny","object":"model","owned_by":"vllm"}]}']
            start_response("200 OK", [("content-type", "text/plain")])
            return [b""]

        class Quiet(WSGIRequestHandler):
            def log_message(self, *args):
                pass

        self.server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_agent_reads_a_page_prometheus_client_restricts(cluster_factory):
    engine = PrometheusClientEngine(running=3, waiting=2)
    try:
        cluster = cluster_factory({"a": ["--dialect", "vllm"]}, engine_urls={"a": lambda url: engine.url}, metrics=True)
        agent = cluster.processes["agent-a"].metrics_url()
        wait_for(lambda: len([q for q in engine.queries if "name" in q]) >= 3, 20, "three filtered scrapes")
        # prometheus_client answered the filtered scrapes with what the agent needs: it reads
        # the gauges and the capacity from them, and keeps filtering.
        wait_for(lambda: agent_gauge(agent, "junction_agent_engine_running") == 3, 10, "running 3 from the filtered page")
        assert agent_gauge(agent, "junction_agent_engine_waiting") == 2
        assert agent_gauge(agent, "junction_agent_engine_kv_capacity_tokens") == 16_000
        assert agent_gauge(agent, "junction_agent_metrics_filtered") == 1
        assert engine.queries[0] == ""
        assert all("name" in q for q in engine.queries[1:])
    finally:
        engine.stop()
