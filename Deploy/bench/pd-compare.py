#!/usr/bin/env python3
"""pd-split against prefix-cache on the same number of engines: Junction with `pd-split` in front
of a disaggregated pool (prefill and decode simulators), and Junction with `prefix-cache` in front
of as many ordinary (`both`) simulators, under the same workload and seed. Each target gets fresh
engines. Writes one JSON per target, a Markdown table with the change against prefix-cache, and
an SVG of the TTFT distributions, per scenario.

    Deploy/bench/pd-compare.py [--prefill 2 --decode 2] [--flow vllm|sglang] [--scenario seed heavy-reuse long-prompt]

Scenarios: `seed` and `heavy-reuse` are `junction bench serve`'s presets; `long-prompt` is the
seed preset with long user turns and short answers (retrieval-augmented questions), the shape
prefill/decode disaggregation is meant for.

`make bench-pd` runs it with the defaults recorded in Docs/benchmarks.md. Needs a release build.
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
compare = __import__("compare")

SCENARIOS = {
    "seed": ["--scenario", "seed"],
    "heavy-reuse": ["--scenario", "heavy-reuse"],
    "long-prompt": ["--scenario", "seed", "--user-tokens", "2500", "--answer-tokens", "120", "--max-answer-tokens", "400",
                    "--turns", "1-3"],
}
DEFAULT_REQUESTS = {"seed": 500, "heavy-reuse": 1500, "long-prompt": 800}


def start_engines(procs, args, roles, tag):
    """One simulator per role; returns ({url: role}, processes)."""
    engines, started = {}, []
    dialect = "sglang" if args.flow == "sglang" else "vllm"
    for n, role in enumerate(roles):
        port = compare.free_port()
        argv = [compare.BINARY, "engine-sim", "--dialect", dialect, "--port", str(port), "--profile", args.profile,
                "--speed", str(args.speed), "--seed", str(n + 1), "--served-model-name", "tiny", "--role", role]
        if args.kv_blocks:
            argv += ["--kv-blocks", str(args.kv_blocks)]
        started.append(procs.start(f"{tag}-engine-{n}-{role}", argv))
        engines[f"http://127.0.0.1:{port}"] = role
    for engine in engines:
        compare.wait_until(lambda: compare.http(engine + "/health")[0] == 200, 30, f"{engine} healthy")
    return engines, started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", nargs="+", default=["seed", "heavy-reuse", "long-prompt"], choices=list(SCENARIOS))
    parser.add_argument("--prefill", type=int, default=2)
    parser.add_argument("--decode", type=int, default=2)
    parser.add_argument("--flow", default="vllm", choices=["vllm", "sglang"], help="the engines' dialect, and so the hand-off")
    parser.add_argument("--local-prefill-tokens", type=float, default=None, help="pd-split's pd_local_prefill_tokens (default: the policy's)")
    parser.add_argument("--max-prefill-queue", type=float, default=None, help="pd-split's pd_max_prefill_queue (default: the policy's)")
    parser.add_argument("--profile", default="7b-a100")
    parser.add_argument("--speed", type=float, default=2)
    parser.add_argument("--kv-blocks", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=60)
    parser.add_argument("--requests", type=int, default=None, help="requests per target (default: seed 500, heavy-reuse 1500, long-prompt 800)")
    parser.add_argument("--max-seconds", type=float, default=240)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default=str(compare.ROOT / ".build" / "bench-pd"))
    args = parser.parse_args()
    if not os.path.exists(compare.BINARY):
        sys.exit(f"pd-compare: no release build at {compare.BINARY} (swift build -c release --product junction)")
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="junction-pd-compare-")
    procs = compare.Processes(work)
    total = args.prefill + args.decode
    split_roles = ["prefill"] * args.prefill + ["decode"] * args.decode
    params = {key: value for key, value in (("pd_local_prefill_tokens", args.local_prefill_tokens),
                                             ("pd_max_prefill_queue", args.max_prefill_queue)) if value is not None}
    targets = [("prefix-cache", ["both"] * total, None, f"junction prefix-cache, {total} both"),
               ("pd-split", split_roles, params, f"junction pd-split, {args.prefill}P+{args.decode}D")]
    print(f"pd-compare: engine-sim --profile {args.profile} --speed {args.speed:g}, {args.flow} dialect; logs in {work}", flush=True)
    try:
        for scenario in args.scenario:
            files = []
            for policy, roles, params, name in targets:
                engines, engine_procs = start_engines(procs, args, roles, f"{scenario}-{policy}")
                # An SGLang prefill server's bootstrap server is, in the simulator, its HTTP port.
                bootstrap = {e: ["--bootstrap-port", e.rsplit(":", 1)[1]] for e, role in engines.items()
                             if role == "prefill" and args.flow == "sglang"}
                url, started = compare.start_junction(procs, work, list(engines), policy, f"{scenario}-{policy}", roles=engines,
                                                      params=params, agent_args=bootstrap)
                out = os.path.join(args.out, f"{scenario}-{policy}.json")
                compare.serve(url, name, SCENARIOS[scenario], args, args.requests or DEFAULT_REQUESTS[scenario], list(engines), out)
                for engine, role in engines.items():
                    if role != "both":
                        metrics = compare.http(engine + "/metrics")[1].decode()
                        kv = [line for line in metrics.splitlines()
                              if line.startswith(("junction_sim_kv_blocks_total", "junction_sim_kv_transfers_total",
                                                  "junction_sim_kv_prefills_total", "junction_sim_kv_fetch_failures_total"))]
                        print(f"  {role} {engine}: " + "; ".join(kv), flush=True)
                        failures = [line for line in kv if line.startswith("junction_sim_kv_fetch_failures_total")
                                    and float(line.rsplit(" ", 1)[1]) > 0]
                        if failures:
                            print(f"  WARNING: KV fetches failed on {engine}; those requests were not handed off as planned",
                                  flush=True)
                procs.stop(started + engine_procs)
                files.append(out)
            compare.report(files, targets[0][3], args.out, scenario,
                           f"TTFT, scenario {scenario}: {total} × {args.profile} (speed {args.speed:g}), concurrency {args.concurrency}")
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
