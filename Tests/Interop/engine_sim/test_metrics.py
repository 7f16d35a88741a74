"""/metrics in each dialect: accepted by Prometheus' own parsers, and (for vLLM) named, typed and
labelled as a real vLLM 0.32.0 exposition recorded on this kind of machine."""
import pathlib
import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import DIALECTS, ROOT, sample_value

REAL_VLLM = ROOT / "Tests" / "Fixtures" / "vllm-0.32.0-cpu-metrics.txt"


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def exercise(sim):
    api = sim.http
    for i in range(3):
        api.post("/v1/completions", json={"model": "tiny", "prompt": "warm the counters " * 20, "max_tokens": 5})
    api.post("/v1/chat/completions", json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}],
                                           "max_tokens": 3, "stream": True})


@pytest.mark.parametrize("args", [["--dialect", d] for d in DIALECTS] + [["--dialect", "vllm", "--vllm-metrics", "legacy"],
                                                                        ["--dialect", "vllm", "--enable-lora", "--lora-modules", "tiny-lora"]])
def test_exposition_passes_promtool_and_the_python_parser(start_sim, args):
    sim = start_sim(*args)
    exercise(sim)
    text = sim.metrics()
    assert families(text), "parser found no metric families"
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) must be installed by Deploy/dev/install-deps.sh"
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    output = check.stdout + check.stderr
    # Exit 1 with "error while linting" is a parse failure. Exit 3 is lint only: promtool
    # dislikes the ':' in names, which the real engines use (it says the same of the recorded
    # real vLLM exposition), and BladeLLM's gauge `tps_total` for its suffix (the real vLLM's
    # `vllm:iteration_tokens_total` draws the same remark); any other remark fails the test.
    assert check.returncode in (0, 3), output
    assert "error while linting" not in output, output
    inherent = ("should not contain ':'", 'tps_total non-counter metrics should not have "_total" suffix')
    remarks = [line for line in output.splitlines() if line and not any(i in line for i in inherent)]
    assert not remarks, remarks


def test_vllm_names_types_and_labels_match_a_real_vllm(start_sim):
    sim = start_sim("--dialect", "vllm")
    exercise(sim)
    ours = families(sim.metrics())
    real = families(REAL_VLLM.read_text())
    missing = sorted(set(ours) - set(real))
    assert not missing, f"metric families a real vLLM 0.32.0 does not export: {missing}"
    for name, family in ours.items():
        assert family.type == real[name].type, name
        our_labels = {k for s in family.samples for k in s.labels}
        real_labels = {k for s in real[name].samples for k in s.labels}
        assert our_labels <= real_labels, f"{name}: labels {our_labels - real_labels} not in the real exposition"
    for required in ["vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
                     "vllm:prefix_cache_queries", "vllm:prefix_cache_hits", "vllm:prompt_tokens",
                     "vllm:generation_tokens", "vllm:time_to_first_token_seconds",
                     "vllm:inter_token_latency_seconds", "vllm:cache_config_info"]:
        assert required in ours, required


def test_vllm_counts_and_cache_config(start_sim):
    sim = start_sim("--dialect", "vllm", "--kv-blocks", "300")
    exercise(sim)
    text = sim.metrics()
    assert sample_value(text, "vllm:generation_tokens_total") == 3 * 5 + 3
    assert sample_value(text, "vllm:request_success_total", {"finished_reason": "length"}) == 4
    assert sample_value(text, "vllm:time_to_first_token_seconds_count") == 4
    assert sample_value(text, "vllm:inter_token_latency_seconds_count") == 3 * 4 + 2
    info = [s for f in text_string_to_metric_families(text) if f.name == "vllm:cache_config_info" for s in f.samples]
    assert info[0].labels["block_size"] == "16" and info[0].labels["num_gpu_blocks"] == "300"
    # The second and third identical prompts hit the blocks the first left behind.
    assert sample_value(text, "vllm:prefix_cache_hits_total") > 0


def test_legacy_vllm_names(start_sim):
    sim = start_sim("--dialect", "vllm", "--vllm-metrics", "legacy")
    names = families(sim.metrics())
    assert "vllm:gpu_cache_usage_perc" in names and "vllm:kv_cache_usage_perc" not in names
    assert all("engine" not in s.labels for f in names.values() for s in f.samples)


def test_sglang_and_bladellm_names(start_sim):
    sglang = start_sim("--dialect", "sglang")
    exercise(sglang)
    text = sglang.metrics()
    for name in ["sglang:num_running_reqs", "sglang:num_queue_reqs", "sglang:token_usage", "sglang:gen_throughput",
                 "sglang:cache_hit_rate", "sglang:time_to_first_token_seconds_count"]:
        sample_value(text, name, {"model_name": "tiny"})
    assert sample_value(text, "sglang:prompt_tokens_total") > 0
    assert sample_value(text, "sglang:cached_tokens_total") > 0
    assert sample_value(text, "sglang:gen_throughput") > 0, "tokens were generated within the last window"

    blade = start_sim("--dialect", "bladellm")
    exercise(blade)
    text = blade.metrics()
    for name in ["decode_batch_size_mean", "wait_queue_size_mean", "block_usage_gpu_mean", "tps_total", "tps_out"]:
        sample_value(text, name)
    assert sample_value(text, "tps_out") > 0


def restricted_by_prometheus_client(names):
    """What Python's prometheus_client itself serves for `?name[]=…`, on a registry holding a
    gauge, a counter and a histogram of the kinds an engine has."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
    registry = CollectorRegistry()
    Gauge("vllm:num_requests_running", "running", registry=registry).set(2)
    Counter("vllm:prompt_tokens", "prompt tokens", registry=registry).inc(7)
    Histogram("vllm:time_to_first_token_seconds", "ttft", registry=registry).observe(0.1)
    return generate_latest(registry.restricted_registry(names)).decode()


def sample_names(text):
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def test_name_filter_keeps_only_the_samples_asked_for_as_prometheus_client_does(start_sim):
    sim = start_sim("--dialect", "vllm")
    exercise(sim)
    asked = ["vllm:num_requests_running", "vllm:prompt_tokens_total", "vllm:time_to_first_token_seconds_count",
             "vllm:cache_config_info", "no:such_metric"]
    reply = sim.http.get("/metrics", params=[("name[]", n) for n in asked])
    assert reply.status_code == 200
    text = reply.text
    # The samples asked for that exist, and nothing else: no `_created`, `_bucket` or `_sum`.
    expected = {"vllm:num_requests_running", "vllm:prompt_tokens_total", "vllm:time_to_first_token_seconds_count",
                "vllm:cache_config_info"}
    assert sample_names(text) == expected, text
    # prometheus_client restricts the same way: by sample name, so a counter's `_total` without
    # its `_created`, a histogram's `_count` without its buckets.
    library = restricted_by_prometheus_client(asked)
    assert sample_names(library) == {"vllm:num_requests_running", "vllm:prompt_tokens_total",
                                     "vllm:time_to_first_token_seconds_count"}, library
    # Each family kept has its HELP and TYPE; those of families with nothing kept are left out.
    assert text.count("# TYPE ") == 4 and "# TYPE vllm:e2e_request_latency_seconds" not in text
    whole = sim.metrics()
    assert sample_value(text, "vllm:prompt_tokens_total") == sample_value(whole, "vllm:prompt_tokens_total")
    # Percent-encoded keys and values, as urllib and the agent write them, mean the same.
    encoded = sim.http.get("/metrics?name%5B%5D=vllm%3Anum_requests_waiting")
    assert sample_names(encoded.text) == {"vllm:num_requests_waiting"}
    # Names that match nothing: an empty page, as prometheus_client answers.
    nothing = sim.http.get("/metrics", params={"name[]": "no:such_metric"})
    assert nothing.status_code == 200 and nothing.text == ""
    # A malformed escape is kept as it is (as Python's unquote keeps it): a name that matches
    # nothing, answered, not an error; bytes that are not UTF-8 are no name at all.
    for query in ("name%5B%5D=vllm:num_requests_running%", "name%5B%5D=%zz", "name%5B%5D=%ff%fe", "name[]=&name[]", "&&="):
        reply = sim.http.get("/metrics?" + query)
        assert reply.status_code == 200, query
        assert reply.text in ("", whole) or sample_names(reply.text) <= sample_names(whole), query
    assert sim.http.get("/metrics?name%5B%5D=vllm:num_requests_running%").text == ""
    # Other parameters do not filter.
    assert sample_names(sim.http.get("/metrics", params={"foo": "bar"}).text) == sample_names(whole)
