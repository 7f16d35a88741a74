#!/usr/bin/env python3
"""Routers side by side on the same simulated engines, in one run: Junction with each policy,
round-robin (the baseline), and smg, sglang-router and vllm-router from PyPI with their default
`cache_aware` policy. For each workload it starts the engines (its profile), then for each
target in turn resets the engines' prefix caches, starts the router, replays the same seeded
workload through it with `junction bench serve`, and stops it; then writes one JSON per target,
a Markdown table with the change against round-robin, and an SVG of the TTFT distributions.

    Deploy/bench/compare.py [--workload seed heavy-reuse pressure-closed pressure-open saturation queueing]
                            [--targets ...] [--out DIR]
    Deploy/bench/compare.py --scenario seed --rate 4     # an ad-hoc workload: open loop, 4 turns/s
    Deploy/bench/compare.py --scenario heavy-reuse --name rag --rate 20 \
        --shape "--turns 1-1 --conversations 3000 --system-prompts 16"   # another shape of workload
    Deploy/bench/compare.py --workload heavy-reuse --targets prefix-cache smg --repeat 3   # mean and range of 3 rounds

Workloads (WORKLOADS below): the project's two scenarios in closed loop; KV-cache pressure (the
heavy-reuse conversations on `32b-l20x2` engines, whose caches hold 65k tokens) in closed and
open loop; saturation, open loop at 90 % of the pool's capacity, which the script first
measures (prefix-cache, closed loop at four times the usual users, engines at real time); and
queueing, the same with each engine's batch capped at 16 sequences, so that requests wait for a
slot. `make bench-compare` runs
them all (Docs/benchmarks.md). Needs a release build (`swift build -c release --product
junction`). The routers are installed with pip into --routers-venv (default
~/.cache/junction/routers-venv) if they are not there; a router that does not install or start
is reported and skipped.

After each target it prints the CPU seconds its processes (Junction: gateway, schedulers and
agents apart) and the engines used during the run: on a machine the routers share with the
engines and the client, a router's CPU is time taken from them. For Junction targets it keeps the
gateway's /metrics at the end as NAME-TARGET-gateway-metrics.txt (the `schedule` round trip's
histogram among them).

Against engines you run yourself, use the load generator alone:
    junction bench serve --target http://ROUTER --model NAME --concurrency 50 --engine-metrics http://ENGINE/metrics ...
"""
import argparse
import json
import os
import pathlib
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = os.environ.get("JUNCTION_RELEASE_BIN", str(ROOT / ".build" / "release" / "junction"))
JUNCTION_POLICIES = ["expected-ttft", "prefix-cache", "llm-metrics", "least-request", "round-robin"]
# Pinned so that a comparison is repeatable; smg is the SGLang project's gateway today.
EXTERNAL = {"smg": "smg==1.13.0", "sglang-router": "sglang-router==0.3.2", "vllm-router": "vllm-router==0.1.17"}

# name: (bench scenario, engine profile, loop, requests[, engine speed[, max running sequences]]).
# loop: ("closed", users), ("open", turns/s), or ("saturation", fraction of the measured capacity).
# Saturation runs the engines at real time: at twice real time two cores could not offer the pool
# enough work to queue. Even so `saturation` never queues for long on `7b-a100` engines, whose
# batch (256 sequences, 896k tokens of KV) grows with the load: continuous batching trades time per
# output token for admission. `queueing` caps each engine's batch at 16 sequences (vLLM's
# `--max-num-seqs`, as deployments that bound time per output token do), so that near capacity
# requests wait for a slot and a pick that ignores the queue costs a whole answer's time.
WORKLOADS = {
    "seed": ("seed", "7b-a100", ("closed", 60), 500),
    "heavy-reuse": ("heavy-reuse", "7b-a100", ("closed", 60), 1500),
    "pressure-closed": ("heavy-reuse", "32b-l20x2", ("closed", 60), 1000),
    "pressure-open": ("heavy-reuse", "32b-l20x2", ("open", 10), 1000),
    "saturation": ("heavy-reuse", "7b-a100", ("saturation", 0.9), 1500, 1),
    "queueing": ("heavy-reuse", "7b-a100", ("saturation", 0.9), 1500, 1, 16),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url, method="GET", timeout=2):
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        return reply.status, reply.read()


def wait_until(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not happen within {timeout} s")


class Processes:
    """Children with a log each, stopped by PID (SIGTERM, then SIGKILL)."""

    def __init__(self, work):
        self.work, self.running = work, []

    def start(self, name, argv):
        log = open(os.path.join(self.work, name + ".log"), "ab")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.running.append(p)
        return p

    def stop(self, processes):
        for p in processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in processes:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                # Every Junction process stops on SIGTERM; one that does not is a defect to see.
                print(f"compare: {' '.join(map(str, p.args[:3]))} (pid {p.pid}) did not exit within 10 s of SIGTERM; killed",
                      flush=True)
                p.kill()
                p.wait()
            if p in self.running:
                self.running.remove(p)

    def stop_all(self):
        self.stop(list(reversed(self.running)))


def ensure_routers(venv, wanted):
    """The external routers of `wanted`, each its pinned version, in a venv of their own;
    returns the ones available."""
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    available = []
    for name in wanted:
        requirement = EXTERNAL[name]
        installed = subprocess.run([python, "-m", "pip", "show", name], capture_output=True, text=True).stdout
        if f"Version: {requirement.split('==')[1]}" not in installed:
            print(f"compare: installing {requirement} into {venv}", flush=True)
            subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", requirement], capture_output=True)
        if os.path.exists(os.path.join(venv, "bin", name)):
            available.append(name)
        else:
            print(f"compare: {name} is not available (pip install failed); skipped", flush=True)
    return available


def start_junction(procs, work, engines, policy, tag, roles=None, params=None, agent_args=None):
    """Three schedulers with `policy` (and its `params`), an agent per engine (registering the
    engine's role from `roles`, default both, with any `agent_args` of that engine), one
    gateway; returns (url, processes)."""
    ports = {i: free_port() for i in (1, 2, 3)}
    gateway_port = free_port()
    config = os.path.join(work, f"junction-{tag}.json")
    json.dump({"cluster": {"secret": "compare-bench-secret-0123456",
                           "schedulers": [{"id": i, "address": f"127.0.0.1:{p}"} for i, p in ports.items()]},
               "scheduler": {"data_dir": os.path.join(work, f"data-{tag}-{{id}}")},
               "llm_scheduler": {"policy": policy, "params": params or {}},
               "llm_gateway": {"listen": f"127.0.0.1:{gateway_port}", "max_queue_size": 4096}}, open(config, "w"))
    started = [procs.start(f"{tag}-scheduler-{i}", [BINARY, "scheduler", "--config", config, "--id", str(i), "--log-level", "warning"])
               for i in ports]
    for n, engine in enumerate(engines):
        role = (roles or {}).get(engine, "both")
        started.append(procs.start(f"{tag}-agent-{n}", [BINARY, "agent", "--engine", engine, "--config", config,
                                                        "--instance-id", f"engine-{n}", "--role", role, "--log-level", "warning",
                                                        *(agent_args or {}).get(engine, [])]))
    started.append(procs.start(f"{tag}-gateway", [BINARY, "gateway", "--config", config, "--log-level", "warning"]))
    url = f"http://127.0.0.1:{gateway_port}"

    def all_up():
        out = subprocess.run([BINARY, "ctl", "status", "--json", "--config", config], capture_output=True, text=True, timeout=5)
        status = json.loads(out.stdout)
        return sum(1 for i in status["instances"] if i["state"] == "up") == len(engines) and http(url + "/ready")[0] == 200
    wait_until(all_up, 60, f"junction ({policy}) with {len(engines)} engines up")
    return url, started


def start_external(procs, venv, name, engines):
    port, metrics_port = free_port(), free_port()
    launcher = name in ("smg", "sglang-router")  # both take `launch` and say "warn"
    argv = [os.path.join(venv, "bin", name), *(["launch"] if launcher else []), "--worker-urls", *engines,
            "--policy", "cache_aware", "--host", "127.0.0.1", "--port", str(port),
            "--prometheus-host", "127.0.0.1", "--prometheus-port", str(metrics_port),
            "--log-level", "warn" if launcher else "warning"]
    p = procs.start(name, argv)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: http(url + "/health")[0] == 200, 90, f"{name} healthy")
    return url, [p]


def cpu_seconds(process):
    """User plus system CPU time a live child has used, from /proc (0 once it has exited)."""
    try:
        with open(f"/proc/{process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_by_role(started, tag):
    """CPU seconds of a target's processes so far, summed by role (the word after the tag)."""
    roles = {}
    for process in started:
        name = os.path.basename(process.args[0]) if isinstance(process.args, list) else "router"
        role = next((word for word in ("scheduler", "agent", "gateway") if word in " ".join(process.args[:2])), name)
        roles[role] = roles.get(role, 0.0) + cpu_seconds(process)
    return roles


def serve(url, name, workload, args, requests, engines, out, loop=None):
    """`junction bench serve` against `url` with `workload` (the scenario and its overrides) and
    the run's seed and time limit, in `loop` (("closed", users) or ("open", turns a second);
    default: the run's --concurrency); every request's record into `out`."""
    kind, value = loop or ("closed", args.concurrency)
    command = [BINARY, "bench", "serve", "--target", url, "--name", name, *workload,
               "--seed", str(args.seed), "--concurrency" if kind == "closed" else "--rate", f"{value:g}", "--requests", str(requests),
               "--max-seconds", str(args.max_seconds), "--json", out,
               *[a for e in engines for a in ("--engine-metrics", e + "/metrics")]]
    print(f"\n$ {' '.join(command)}", flush=True)
    started_at = time.time()
    subprocess.run(command, check=True)
    print(f"({time.time() - started_at:.0f} s)", flush=True)


def report(files, baseline, out_dir, scenario, title, users=None):
    """One scenario's table (change against `baseline`) and TTFT plot, printed and written; for a
    closed loop of `users`, the opening burst apart."""
    table = subprocess.run([BINARY, "bench", "report", "--baseline", baseline, "--plot",
                            os.path.join(out_dir, f"{scenario}-ttft.svg"), "--title", title, *files],
                           capture_output=True, text=True, check=True).stdout
    if users:
        table += "\n" + opening_split(files, users)
    with open(os.path.join(out_dir, f"{scenario}.md"), "w") as f:
        f.write(table)
    print(f"\n## Scenario {scenario}\n\n{table}\nwritten: {out_dir}/{scenario}.md, {scenario}-ttft.svg", flush=True)


def burst_and_rest(records, users):
    """The TTFTs (ms) of a closed loop's opening burst (the first `users` requests started) and of
    the requests after it, in start order."""
    done = sorted((r for r in records if r.get("firstToken") is not None), key=lambda r: r["start"])
    ttft = [1000 * (r["firstToken"] - r["start"]) for r in done]
    return ttft[:users], ttft[users:]


def opening_split(files, users):
    """A closed loop starts with every user's first turn at once: a burst the rest of the run never
    sees again, which can set the mean. This table shows that burst (the first `users` requests
    started) apart from the rest of the run."""
    rows = {"opening burst: requests": [], "opening burst: mean TTFT (ms)": [], "opening burst: max TTFT (ms)": [],
            "after it: mean TTFT (ms)": [], "after it: median TTFT (ms)": [], "after it: P99 TTFT (ms)": []}
    names = []
    for path in files:
        with open(path) as f:
            data = json.load(f)
        names.append(data["summary"]["target"])
        burst, rest = burst_and_rest(data["records"], users)
        rest = sorted(rest)
        rows["opening burst: requests"].append(f"{len(burst)}")
        rows["opening burst: mean TTFT (ms)"].append(f"{sum(burst) / max(1, len(burst)):.0f}")
        rows["opening burst: max TTFT (ms)"].append(f"{max(burst, default=0):.0f}")
        rows["after it: mean TTFT (ms)"].append(f"{sum(rest) / max(1, len(rest)):.1f}")
        rows["after it: median TTFT (ms)"].append(f"{rest[len(rest) // 2] if rest else 0:.1f}")
        rows["after it: P99 TTFT (ms)"].append(f"{rest[min(len(rest) - 1, int(0.99 * len(rest)))] if rest else 0:.0f}")
    lines = ["| TTFT split | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(values) + " |" for label, values in rows.items()]
    return "\n".join(lines) + "\n"


def start_engines(procs, args, profile, speed, name, max_num_seqs=None):
    engines, started = [], []
    for n in range(args.engines):
        port = free_port()
        argv = [BINARY, "engine-sim", "--dialect", "vllm", "--port", str(port), "--profile", profile,
                "--speed", str(speed), "--seed", str(n + 1), "--served-model-name", "tiny"]
        if args.kv_blocks:
            argv += ["--kv-blocks", str(args.kv_blocks)]
        if max_num_seqs:
            argv += ["--max-num-seqs", str(max_num_seqs)]
        if args.engine_request_logs:
            argv += ["--request-log", os.path.join(args.out, f"{name}-engine-{n}.jsonl")]
        started.append(procs.start(f"engine-{profile}-{n}", argv))
        engines.append(f"http://127.0.0.1:{port}")
    for engine in engines:
        wait_until(lambda: http(engine + "/health")[0] == 200, 30, f"{engine} healthy")
    capped = f" --max-num-seqs {max_num_seqs}" if max_num_seqs else ""
    print(f"compare: {args.engines} × engine-sim --profile {profile} --speed {speed:g}{capped}", flush=True)
    return engines, started


def shaped(scenario, args):
    """The generator's arguments: the scenario, then --shape's overrides of its distributions."""
    return ["--scenario", scenario, *shlex.split(args.shape or "")]


def reset(engines):
    for engine in engines:
        http(engine + "/reset_prefix_cache", "POST")


def measure_capacity(procs, work, args, engines, scenario, tag):
    """Turns a second the pool completes with four times the usual users, routed by Junction's
    prefix-cache (the pool's capacity when its caches are used well; round-robin's is lower, and
    at a fraction of that no cache-aware router would queue), over the middle half of the run's
    completions (the opening burst and the drain at the end would understate it): the rate a
    saturation run takes a fraction of."""
    reset(engines)
    url, started = start_junction(procs, work, engines, "prefix-cache", f"{tag}-capacity")
    out = os.path.join(args.out, f"{tag}-capacity.json")
    serve(url, "capacity", shaped(scenario, args), args, 2400, engines, out, loop=("closed", 4 * args.concurrency))
    procs.stop(started)
    with open(out) as f:
        ends = sorted(r["end"] for r in json.load(f)["records"] if r.get("end") is not None and r.get("firstToken") is not None)
    first, last = len(ends) // 4, (3 * len(ends)) // 4
    rate = (last - first) / max(1e-9, ends[last] - ends[first])
    print(f"compare: capacity {rate:.2f} turns/s (prefix-cache, {4 * args.concurrency} users, middle half of "
          f"{len(ends)} completions)", flush=True)
    return rate


def junction_target(target):
    """A Junction target: a policy name, optionally with parameters, `prefix-cache:load_weight=0.5,kv_pressure=0.8`."""
    policy, _, rest = target.partition(":")
    if policy not in JUNCTION_POLICIES:
        raise SystemExit(f"compare: unknown target {target!r}: a Junction policy ({', '.join(JUNCTION_POLICIES)}) or {', '.join(EXTERNAL)}")
    params = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        params[key] = float(value)
    return policy, params


def run_workload(procs, work, args, name, scenario, profile, loop, requests, speed, max_num_seqs, external):
    engines, engine_procs = start_engines(procs, args, profile, speed, name, max_num_seqs)
    windows = {}
    try:
        if loop[0] == "saturation":
            loop = ("open", round(loop[1] * measure_capacity(procs, work, args, engines, scenario, name), 2))
        rounds = []
        for round_index in range(args.repeat):
            # Each round starts one target later, so no target always runs first (or last) on
            # engines that have run for longer.
            shift = round_index % len(args.targets)
            order = args.targets[shift:] + args.targets[:shift]
            suffix = f"-r{round_index + 1}" if args.repeat > 1 else ""
            rounds.append(run_targets(procs, work, args, name, scenario, loop, requests, engines, engine_procs, order, suffix,
                                      external, windows))
        how = f"{loop[1]:g} users" if loop[0] == "closed" else f"open loop {loop[1]:g} turns/s"
        users = int(loop[1]) if loop[0] == "closed" else None
        for files, suffix in rounds:
            report(files, "round-robin", args.out, name + suffix,
                   f"TTFT, {name} ({scenario}): {args.engines} × {profile} (speed {speed:g}), {how}", users=users)
        if args.repeat > 1:
            repeats_table([files for files, _ in rounds], args.out, name, users)
        if args.engine_request_logs:
            with open(os.path.join(args.out, f"{name}-windows.json"), "w") as f:
                json.dump(windows, f)
    finally:
        procs.stop(engine_procs)


def run_targets(procs, work, args, name, scenario, loop, requests, engines, engine_procs, order, suffix, external, windows):
    """One round: each target of `order` in turn on the engines (caches reset before each), its
    records into NAME-TARGET`suffix`.json. Returns the files written and the suffix."""
    files = []
    for target in order:
        if target in EXTERNAL and target not in external:
            continue
        reset(engines)
        label = target if target in EXTERNAL else ("round-robin" if target == "round-robin" else f"junction {target}")
        try:
            if target in EXTERNAL:
                url, started = start_external(procs, args.routers_venv, target, engines)
            else:
                policy, params = junction_target(target)
                # Each round's trio starts from empty data directories: one that restored the
                # last round's affinity would believe the engines hold what their reset dropped.
                url, started = start_junction(procs, work, engines, policy, f"{name}-{target}{suffix}", params=params)
        except RuntimeError as error:
            print(f"compare: {target} skipped: {error} (logs in {work})", flush=True)
            procs.stop([p for p in procs.running if p not in engine_procs])
            continue
        out = os.path.join(args.out, f"{name}-{target}{suffix}.json")
        cpu_before = cpu_by_role(started, target)
        engine_cpu_before = sum(cpu_seconds(p) for p in engine_procs)
        began = time.time()
        serve(url, label, shaped(scenario, args), args, requests, engines, out, loop=loop)
        windows[target + suffix] = [began, time.time()]
        # What the router's processes and the engines spent during the run: on two shared
        # cores, a router's CPU is taken from the engines and the client.
        cpu = {role: round(seconds - cpu_before.get(role, 0.0), 2) for role, seconds in cpu_by_role(started, target).items()}
        engine_cpu = round(sum(cpu_seconds(p) for p in engine_procs) - engine_cpu_before, 2)
        print(f"CPU seconds during the run: router {cpu}, engines {engine_cpu}", flush=True)
        if target not in EXTERNAL:
            status, body = http(url + "/metrics")
            if status == 200:
                with open(os.path.join(args.out, f"{name}-{target}{suffix}-gateway-metrics.txt"), "wb") as f:
                    f.write(body)
        procs.stop(started)
        files.append(out)
    return files, suffix


def repeats_table(rounds, out_dir, scenario, users):
    """The rounds of a repeated workload side by side: for each target, each metric's mean over
    the rounds with its range, and the change of the means against the first external router
    run (else round-robin). One run of a closed loop's mean moves by 10 % or more with where its
    opening burst happens to land; the range says how far one run can be trusted."""
    runs = {}
    for files in rounds:
        for path in files:
            with open(path) as f:
                data = json.load(f)
            summary = data["summary"]
            metrics = {"mean TTFT (ms)": summary["ttftMs"]["mean"], "P99 TTFT (ms)": summary["ttftMs"]["p99"],
                       "output tokens/s": summary["outputThroughput"]}
            if users:
                burst, rest = burst_and_rest(data["records"], users)
                metrics["opening burst: mean TTFT (ms)"] = sum(burst) / max(1, len(burst))
                metrics["after it: mean TTFT (ms)"] = sum(rest) / max(1, len(rest))
            runs.setdefault(summary["target"], []).append(metrics)
    names = list(runs)
    if not names:
        return
    reference = next((n for n in names if n in EXTERNAL), "round-robin" if "round-robin" in names else None)
    lines = [f"| {len(rounds)} rounds: mean (min–max) | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for metric in runs[names[0]][0]:
        cells = []
        for n in names:
            values = [m[metric] for m in runs[n]]
            mean = sum(values) / len(values)
            cell = f"{mean:,.1f} ({min(values):,.1f}–{max(values):,.1f})"
            if reference and n != reference:
                ref = [m[metric] for m in runs[reference]]
                ref_mean = sum(ref) / len(ref)
                cell += f", {100 * (mean - ref_mean) / ref_mean:+.1f} %" if ref_mean else ""
            cells.append(cell)
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    note = f"\n(change of the means against {reference})\n" if reference else "\n"
    table = "\n".join(lines) + "\n" + note
    with open(os.path.join(out_dir, f"{scenario}-repeats.md"), "w") as f:
        f.write(table)
    print(f"\n## Scenario {scenario}, {len(rounds)} rounds\n\n{table}\nwritten: {out_dir}/{scenario}-repeats.md", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", nargs="+", choices=list(WORKLOADS),
                        help="preset workloads (default: all, unless --scenario is given)")
    parser.add_argument("--scenario", nargs="+", choices=["seed", "heavy-reuse"],
                        help="ad-hoc workloads: these scenarios on --profile, closed loop at --concurrency or open at --rate")
    parser.add_argument("--targets", nargs="+", default=["expected-ttft", "prefix-cache", "least-request", "round-robin", "smg", "vllm-router"],
                        help=f"Junction policies ({', '.join(JUNCTION_POLICIES)}), each optionally with parameters "
                             f"(prefix-cache:load_weight=0.5), and external routers ({', '.join(EXTERNAL)})")
    parser.add_argument("--engines", type=int, default=5)
    parser.add_argument("--profile", default="7b-a100", help="engine profile of ad-hoc workloads")
    parser.add_argument("--speed", type=float, default=2, help="simulated engines run this many times faster than real time")
    parser.add_argument("--kv-blocks", type=int, default=None, help="KV blocks per engine (default: the profile's)")
    parser.add_argument("--max-num-seqs", type=int, default=None,
                        help="ad-hoc workloads: running sequences per engine (default: the profile's, 256)")
    parser.add_argument("--engine-request-logs", action="store_true",
                        help="engines write a line per request into --out (NAME-engine-N.jsonl; NAME-windows.json says when each target ran)")
    parser.add_argument("--shape", default=None,
                        help="overrides of the generator's distributions, passed to `junction bench serve` after the "
                             "scenario (\"--turns 1-1 --system-prompts 16 --conversations 3000\"); with --name")
    parser.add_argument("--name", default=None, help="ad-hoc workloads: the run's name in --out (default: the scenario's)")
    parser.add_argument("--concurrency", type=int, default=60, help="closed loop: users")
    parser.add_argument("--rate", type=float, default=None, help="ad-hoc workloads: open loop at this many turns a second")
    parser.add_argument("--saturation", type=float, default=None,
                        help="ad-hoc workloads: open loop at this fraction of the capacity measured first (as the "
                             "saturation workload; pass --speed 1 for engines at real time as it does)")
    parser.add_argument("--requests", type=int, default=None, help="requests per target (default: the workload's)")
    parser.add_argument("--max-seconds", type=float, default=240)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of every target per workload (each round starts one target later); with more than "
                             "one, NAME-repeats.md gives each metric's mean and range over the rounds")
    parser.add_argument("--routers-venv", default=os.path.expanduser("~/.cache/junction/routers-venv"))
    parser.add_argument("--out", default=str(ROOT / ".build" / "bench-compare"))
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.name and (args.workload or len(args.scenario or []) != 1):
        parser.error("--name names one ad-hoc workload: give exactly one --scenario and no --workload")
    if args.rate and args.saturation:
        parser.error("--rate and --saturation are two open loops: give one")
    if not os.path.exists(BINARY):
        sys.exit(f"compare: no release build at {BINARY} (swift build -c release --product junction)")
    os.makedirs(args.out, exist_ok=True)
    runs = []
    for scenario in args.scenario or []:
        if args.saturation:
            loop, default_name = ("saturation", args.saturation), f"{scenario}-saturation"
        elif args.rate:
            loop, default_name = ("open", args.rate), f"{scenario}-open"
        else:
            loop, default_name = ("closed", args.concurrency), scenario
        name = args.name or default_name
        runs.append((name, scenario, args.profile, loop, args.requests or {"seed": 500, "heavy-reuse": 1500}[scenario],
                     args.speed, args.max_num_seqs))
    for name in args.workload or ([] if args.scenario else list(WORKLOADS)):
        scenario, profile, loop, requests, *rest = WORKLOADS[name]
        speed = rest[0] if rest else args.speed
        max_num_seqs = rest[1] if len(rest) > 1 else None
        runs.append((name, scenario, profile, loop, args.requests or requests, speed, max_num_seqs))
    work = tempfile.mkdtemp(prefix="junction-compare-")
    print(f"compare: logs in {work}", flush=True)
    procs = Processes(work)
    wanted = [t for t in args.targets if t in EXTERNAL]
    external = ensure_routers(args.routers_venv, wanted) if wanted else []
    try:
        for run in runs:
            run_workload(procs, work, args, *run, external)
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
