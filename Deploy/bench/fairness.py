#!/usr/bin/env python3
"""Flow control against today's FIFO, on one pool of simulated engines (`make bench-fairness`).

    Deploy/bench/fairness.py [--engines 2] [--profile 32b-l20x2] [--speed 1] [--seconds 90] [--out DIR]

The defaults are slow engines at real time: on two cores a faster pool measures the client's and
the gateway's CPU, not the engines' capacity.

Two tenants share the pool. `flood` sends in an open loop at five times its share (its share:
half the pool's capacity, so 2.5 × the capacity measured first); `chat` sends at a steady rate
(a quarter of the capacity, half its share). Each run starts a Junction of its own (three
schedulers, an agent per engine, one gateway) in front of engines of its own, started afresh:

- `alone`: chat by itself, with flow control configured: the TTFT to keep;
- `fifo`: both, with no tenants configured: one queue for everyone (today's behaviour without
  tenants: the engines' own queues fill first);
- `flow control`: both, `chat` in class `interactive` and `flood` in class `batch` (the default
  classes: batch is sent only while an engine has nothing waiting, KV at most 90 % and less than
  100 ms of prompt work queued), the queue shedding `flood` when full (429).

The engines schedule by the requests' `priority` (vLLM's `--scheduling-policy priority`), and the
flow-control runs give `batch` `engine_priority: 1`, so inside an engine chat goes ahead of the
flood waiting there and the flood is preempted first (`--no-engine-priority`: FCFS engines, as
before the thirteenth session). In `fifo` every request has priority 0: first come, first served.
Each open loop has conversations for its whole run, so the flood floods until the end.

It prints, for each run, chat's TTFT p50 and p99 and its ratio to `alone`, and the pool's output
tokens a second (both tenants) and its ratio to `fifo`, flood's output and its refused requests.
Goal (issue 22): chat's p99 within 25 % of `alone`, the pool's output within 5 % of `fifo`'s.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import BINARY, Processes, free_port, http, wait_until  # noqa: E402

# Single-turn requests of a few hundred tokens each way: the flood and chat differ only in text.
WORKLOAD = ["--scenario", "seed", "--turns", "1-1", "--user-tokens", "300", "--answer-tokens", "100", "--max-answer-tokens", "200"]


def start_engines(procs, args, tag="capacity"):
    """Fresh engines for one run: nothing left queued in them by the run before (a request whose
    client left is dropped by the simulator only when its turn comes to be computed)."""
    engines, started = [], []
    for n in range(args.engines):
        port = free_port()
        logs = ["--request-log", os.path.join(args.out, f"{tag}-engine-{n}.jsonl")] if args.engine_request_logs else []
        started.append(procs.start(f"{tag}-engine-{n}", [BINARY, "engine-sim", "--dialect", "vllm", "--port", str(port), "--profile", args.profile,
                                    "--speed", str(args.speed), "--seed", str(n + 1), "--served-model-name", "tiny",
                                    "--scheduling-policy", "priority" if args.engine_priority else "fcfs", *logs]))
        engines.append(f"http://127.0.0.1:{port}")
    for engine in engines:
        wait_until(lambda: http(engine + "/health")[0] == 200, 30, f"{engine} healthy")
    return engines, started


def start_junction(procs, work, engines, tag, gateway, run_seconds, params=None):
    ports = {i: free_port() for i in (1, 2, 3)}
    gateway_port = free_port()
    config = os.path.join(work, f"junction-{tag}.json")
    # A stream may wait silent in an engine's queue as long as its client waits: with the default
    # (60 s) the gateway would cut FIFO's long-queued requests, which the simulator then computes
    # for nothing when their turn comes (vLLM drops a waiting request when its client leaves).
    section = {"listen": f"127.0.0.1:{gateway_port}", "max_queue_size": 512, "wait_schedule_timeout": 60000,
               "stream_idle_timeout_ms": int(1000 * (run_seconds + 60)),
               "api_keys": [{"client": "chat", "key": "chat-key"}, {"client": "flood", "key": "flood-key"}]}
    section.update(gateway)
    with open(config, "w") as f:
        json.dump({"cluster": {"secret": "fairness-bench-secret-0123",
                               "schedulers": [{"id": i, "address": f"127.0.0.1:{p}"} for i, p in ports.items()]},
                   "scheduler": {"data_dir": os.path.join(work, f"data-{tag}-{{id}}")},
                   "llm_scheduler": {"policy": "prefix-cache", "params": params or {}},
                   "llm_gateway": section}, f)
    started = [procs.start(f"{tag}-scheduler-{i}", [BINARY, "scheduler", "--config", config, "--id", str(i), "--log-level", "warning"])
               for i in ports]
    for n, engine in enumerate(engines):
        started.append(procs.start(f"{tag}-agent-{n}", [BINARY, "agent", "--engine", engine, "--config", config,
                                                        "--instance-id", f"engine-{n}", "--log-level", "warning"]))
    started.append(procs.start(f"{tag}-gateway", [BINARY, "gateway", "--config", config, "--log-level", "warning"]))
    url = f"http://127.0.0.1:{gateway_port}"

    def all_up():
        out = subprocess.run([BINARY, "ctl", "status", "--json", "--config", config], capture_output=True, text=True, timeout=5)
        return sum(1 for i in json.loads(out.stdout)["instances"] if i["state"] == "up") == len(engines) and http(url + "/ready")[0] == 200
    wait_until(all_up, 60, f"junction ({tag}) up")
    return url, started


def bench(url, key, name, seed, loop, value, args, out, requests=100_000, timeout=None):
    """A `junction bench serve` process (not waited for). An open loop gets conversations (one
    request each) for the whole run: it must not run dry before `--seconds` end."""
    conversations = max(1000, int(value * args.seconds * 1.3) + 100) if loop == "--rate" else 1000
    command = [BINARY, "bench", "serve", "--target", url, "--name", name, *WORKLOAD, "--conversations", str(conversations),
               "--seed", str(seed), "--api-key", key,
               loop, f"{value:g}", "--requests", str(requests), "--max-seconds", str(args.seconds), "--json", out,
               "--request-timeout", str(timeout or args.seconds)]
    print(f"$ {' '.join(command)}", flush=True)
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def load(path):
    with open(path) as f:
        return json.load(f)


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def chat_ttft(path):
    done = [r for r in load(path)["records"] if r.get("firstToken") is not None and r.get("end") is not None]
    ttft = [1000 * (r["firstToken"] - r["start"]) for r in done]
    return percentile(ttft, 0.5), percentile(ttft, 0.99), len(done)


def output_tokens(path):
    records = load(path)["records"]
    done = [r for r in records if r.get("end") is not None and r.get("firstToken") is not None]
    return sum(r.get("outputTokens", 0) for r in done), len(records) - len(done)


def measure_capacity(procs, work, engines, args):
    """Requests a second the pool completes with far more users than it can serve at once, through
    Junction, over the middle half of the completions."""
    url, started = start_junction(procs, work, engines, "capacity", {}, args.seconds)
    out = os.path.join(args.out, "capacity.json")
    p = bench(url, "flood-key", "capacity", 11, "--concurrency", 4 * 64 * args.engines // 4, args, out, requests=600)
    p.wait()
    procs.stop(started)
    ends = sorted(r["end"] for r in load(out)["records"] if r.get("end") is not None and r.get("firstToken") is not None)
    first, last = len(ends) // 4, (3 * len(ends)) // 4
    rate = (last - first) / max(1e-9, ends[last] - ends[first])
    print(f"fairness: capacity {rate:.2f} requests/s over the middle half of {len(ends)} completions", flush=True)
    return rate


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", type=int, default=2)
    parser.add_argument("--profile", default="32b-l20x2")
    parser.add_argument("--speed", type=float, default=1)
    parser.add_argument("--seconds", type=float, default=90, help="how long each run sends")
    parser.add_argument("--flood-times-share", type=float, default=5)
    parser.add_argument("--chat-fraction", type=float, default=0.25, help="chat's rate, a fraction of the capacity")
    parser.add_argument("--capacity", type=float, help="requests a second the pool serves (default: measured first)")
    parser.add_argument("--batch-headroom", help="the batch class's headroom (JSON) instead of the default's, for the flow-control run")
    parser.add_argument("--also-batch-headroom", action="append", default=[], metavar="JSON",
                        help="one more flow-control run with this batch headroom (repeatable): the trade-off between chat's TTFT and the pool's output")
    parser.add_argument("--prefill-tokens-per-second", type=float, default=1667,
                        help="the scheduler's prefill rate to start from (policy parameter prefill_tokens_per_second): the "
                             "engines' real rate (default: 32b-l20x2's), which headroom's max_prefill_ms is measured in until the leader learns it")
    parser.add_argument("--engine-priority", action=argparse.BooleanOptionalAction, default=True,
                        help="engines schedule by the request's priority (vLLM's --scheduling-policy priority) and flow control "
                             "sends batch with engine_priority 1 (default); --no-engine-priority: FCFS engines")
    parser.add_argument("--engine-request-logs", action="store_true",
                        help="the engines write a line per request at its first token to OUT/engine-N.jsonl (Deploy/bench/engine-logs.py reads them)")
    parser.add_argument("--runs", default="alone,fifo,flow",
                        help="which of the runs to make, comma-separated (alone, fifo, flow); the ratios need alone and fifo")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    args.out = args.out or tempfile.mkdtemp(prefix="junction-fairness-")
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="junction-fairness-work-")
    procs = Processes(work)
    try:
        if args.capacity:
            capacity = args.capacity
        else:
            engines, names = start_engines(procs, args)
            capacity = measure_capacity(procs, work, engines, args)
            procs.stop(names)
        flood_rate = args.flood_times_share * capacity / 2
        chat_rate = args.chat_fraction * capacity
        print(f"fairness: {args.engines} × {args.profile} (speed {args.speed:g}); flood {flood_rate:.2f}/s, chat {chat_rate:.2f}/s, "
              f"{args.seconds:g} s each run", flush=True)
        def flow_with(headroom):
            flow = {"tenants": {"chat": {"class": "interactive"}, "flood": {"class": "batch"}}}
            if headroom or args.engine_priority:
                # The default classes' aging (a third and a half of wait_schedule_timeout, 60 s here)
                # and batch's default headroom, unless replaced.
                batch = {"name": "batch", "aging_ms": 30000,
                         "headroom": json.loads(headroom or '{"max_waiting":0,"max_kv_usage":0.9,"max_prefill_ms":100}')}
                if args.engine_priority:
                    batch["engine_priority"] = 1
                flow["priority_classes"] = [{"name": "interactive"}, {"name": "standard", "aging_ms": 20000}, batch]
            return flow
        flow = flow_with(args.batch_headroom)
        wanted = set(args.runs.split(","))
        runs = [("alone", flow, False)] * ("alone" in wanted) + [("fifo", {}, True)] * ("fifo" in wanted)
        runs += [("flow control", flow, True)] * ("flow" in wanted)
        runs += [(f"flow control {headroom}", flow_with(headroom), True) for headroom in args.also_batch_headroom]
        results = {}
        for name, gateway, flood in runs:
            tag = "".join(c if c.isalnum() else "-" for c in name)
            engines, engine_names = start_engines(procs, args, tag)
            params = {"prefill_tokens_per_second": args.prefill_tokens_per_second} if args.prefill_tokens_per_second else {}
            url, started = start_junction(procs, work, engines, tag, gateway, args.seconds, params)
            chat_out, flood_out = os.path.join(args.out, f"{tag}-chat.json"), os.path.join(args.out, f"{tag}-flood.json")
            began = time.time()
            clients = [bench(url, "chat-key", f"chat ({name})", 1, "--rate", chat_rate, args, chat_out)]
            if flood:
                clients.append(bench(url, "flood-key", f"flood ({name})", 2, "--rate", flood_rate, args, flood_out))
            for client in clients:
                client.wait()
            elapsed = time.time() - began
            with open(os.path.join(args.out, f"{tag}-gateway-metrics.txt"), "wb") as f:
                f.write(http(url + "/metrics")[1])
            procs.stop(started)
            procs.stop(engine_names)
            p50, p99, served = chat_ttft(chat_out)
            chat_tokens, chat_failed = output_tokens(chat_out)
            flood_tokens, flood_failed = output_tokens(flood_out) if flood else (0, 0)
            results[name] = dict(p50=p50, p99=p99, served=served, chat_failed=chat_failed, pool=(chat_tokens + flood_tokens) / elapsed,
                                 flood=flood_tokens / elapsed, flood_failed=flood_failed, seconds=elapsed, began=began)
            print(f"fairness: {name}: chat TTFT p50 {p50:.0f} ms, p99 {p99:.0f} ms ({served} served, {chat_failed} failed); "
                  f"pool {results[name]['pool']:.0f} tok/s, flood {results[name]['flood']:.0f} tok/s, "
                  f"{flood_failed} flood requests not served; {elapsed:.0f} s", flush=True)
        nan = dict(p99=float("nan"), pool=float("nan"))
        alone, fifo = results.get("alone", nan), results.get("fifo", nan)
        lines = ["| run | chat TTFT p50 (ms) | chat TTFT p99 (ms) | p99 against alone | chat failed | pool output tok/s | against fifo | flood tok/s | flood not served |",
                 "|---|---|---|---|---|---|---|---|---|"]
        for name, r in results.items():
            lines.append(f"| {name} | {r['p50']:.0f} | {r['p99']:.0f} | {r['p99'] / alone['p99'] - 1:+.0%} | {r['chat_failed']} | "
                         f"{r['pool']:.0f} | {(r['pool'] / fifo['pool'] - 1) if name != 'alone' else float('nan'):+.1%} | "
                         f"{r['flood']:.0f} | {r['flood_failed']} |")
        table = "\n".join(lines) + "\n"
        print("\n" + table, flush=True)
        with open(os.path.join(args.out, "fairness.md"), "w") as f:
            f.write(table)
        with open(os.path.join(args.out, "runs.json"), "w") as f:
            json.dump(results, f, indent=1)
        print(f"written: {args.out}/fairness.md", flush=True)
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
