"""`junction bench serve`, `sample` and `report` against real engine-sim processes: multi-turn
replay with the engine's own answers in the history, the seed's figures in JSON, the engines'
prefix-cache counters, failures counted (not hidden), ShareGPT files, the comparison table and
the TTFT plot."""
import json
import os
import pathlib
import subprocess

BINARY = os.environ.get("JUNCTION_BIN", str(pathlib.Path(__file__).resolve().parents[3] / ".build" / "debug" / "junction"))

SMALL = ["--conversations", "6", "--turns", "3-3", "--user-tokens", "40", "--answer-tokens", "12", "--answer-sigma", "0.1",
         "--seed", "3", "--model", "tiny"]


def bench(*args, timeout=120):
    out = subprocess.run([BINARY, "bench", *args], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_a_closed_loop_replays_conversations_turn_by_turn(start_sim, tmp_path):
    sim = start_sim("--speed", "50")
    result = tmp_path / "run.json"
    table = bench("serve", "--target", sim.url, "--name", "direct", "--concurrency", "3", "--requests", "18",
                  "--engine-metrics", sim.url + "/metrics", "--json", str(result), *SMALL)
    run = json.loads(result.read_text())
    summary, records = run["summary"], run["records"]
    assert summary["successful"] == 18 and summary["failed"] == 0
    assert "| successful requests | 18 |" in table
    # Each conversation's turns in order, each prompt longer than the last by the answer and the new question.
    by_conversation = {}
    for r in sorted(records, key=lambda r: r["start"]):
        by_conversation.setdefault(r["conversation"], []).append(r)
    assert len(by_conversation) == 6
    for turns in by_conversation.values():
        assert [t["turn"] for t in turns] == [0, 1, 2]
        prompts = [t["promptTokens"] for t in turns]
        assert prompts[0] < prompts[1] < prompts[2], prompts
        assert all(t["outputTokens"] >= 10 for t in turns)
        assert all(t.get("firstToken") is not None and t["start"] < t["firstToken"] <= t["end"] for t in turns)
    assert summary["inputTokens"] == sum(r["promptTokens"] for r in records)
    # Later turns start with the earlier turn's exact prompt and answer, so the engine finds them cached.
    assert 0.2 < summary["prefixCacheHitRate"] < 1, summary["prefixCacheHitRate"]
    assert summary["ttftMs"]["mean"] > 0 and summary["tpotMs"]["mean"] > 0


def test_an_open_loop_sends_at_the_given_rate(start_sim, tmp_path):
    sim = start_sim("--speed", "50")
    result = tmp_path / "run.json"
    bench("serve", "--target", sim.url, "--rate", "20", "--requests", "30", "--json", str(result),
          *SMALL[:-2], "--conversations", "40", "--model", "tiny")
    records = json.loads(result.read_text())["records"]
    assert len(records) == 30 and all(r.get("error") is None for r in records)
    starts = sorted(r["start"] for r in records)
    # 30 Poisson arrivals at 20/s take about 1.5 s; far from all at once, far from serial.
    assert 0.5 < starts[-1] - starts[0] < 5, starts[-1] - starts[0]


def test_failures_are_counted_with_their_reason(start_sim, tmp_path):
    sim = start_sim("--error-rate", "1.0", "--error-status", "503")
    result = tmp_path / "run.json"
    table = bench("serve", "--target", sim.url, "--concurrency", "2", "--requests", "4", "--json", str(result), *SMALL)
    summary = json.loads(result.read_text())["summary"]
    assert summary["successful"] == 0 and summary["failed"] >= 2
    assert any(e.startswith("HTTP 503") for e in summary["errors"]), summary["errors"]
    assert "failures" in table


def test_a_hung_engine_fails_requests_at_their_deadline(start_sim, tmp_path):
    sim = start_sim("--hang")
    result = tmp_path / "run.json"
    bench("serve", "--target", sim.url, "--concurrency", "2", "--requests", "2", "--request-timeout", "1", "--json", str(result), *SMALL,
          timeout=30)
    summary = json.loads(result.read_text())["summary"]
    assert summary["successful"] == 0 and summary["failed"] == 2
    assert summary["errors"][0].startswith("no complete answer within"), summary["errors"]


def test_an_unreachable_target_fails_every_request_clearly(tmp_path):
    result = tmp_path / "run.json"
    bench("serve", "--target", "http://127.0.0.1:9", "--concurrency", "2", "--requests", "4", "--json", str(result), *SMALL)
    summary = json.loads(result.read_text())["summary"]
    assert summary["successful"] == 0 and summary["failed"] >= 2 and summary["errors"]


def test_bad_arguments_are_refused():
    for args in (["--concurrency", "2", "--rate", "3"], [], ["--concurrency", "1", "--sharegpt", "/nonexistent.json"],
                 ["--concurrency", "1", "--turns", "5-2"]):
        out = subprocess.run([BINARY, "bench", "serve", "--target", "http://127.0.0.1:9", *args], capture_output=True, text=True)
        assert out.returncode != 0 and "Error" in out.stderr, (args, out.stderr)


def test_a_sharegpt_sample_replays_and_reports(start_sim, tmp_path):
    sample = tmp_path / "sample.json"
    bench("sample", "--out", str(sample), *SMALL[:-2], "--system-prompts", "2", "--system-prompt-tokens", "30")
    conversations = json.loads(sample.read_text())
    assert len(conversations) == 6
    assert [m["from"] for m in conversations[0]["conversations"]] == ["system", "human", "gpt", "human", "gpt", "human", "gpt"]
    sim = start_sim("--speed", "50")
    files = []
    for name in ("round-robin", "other"):
        files.append(str(tmp_path / f"{name}.json"))
        bench("serve", "--target", sim.url, "--name", name, "--sharegpt", str(sample), "--concurrency", "2", "--requests", "8",
              "--model", "tiny", "--json", files[-1])
    plot = tmp_path / "ttft.svg"
    table = bench("report", "--baseline", "round-robin", "--plot", str(plot), *files)
    assert table.startswith("| metric | round-robin | other |")
    assert "| successful requests | 8 | 8 |" in table
    assert "%)" in table.split("mean TTFT")[1].split("\n")[0]
    svg = plot.read_text()
    assert svg.startswith("<svg") and svg.count("<polyline") == 2
