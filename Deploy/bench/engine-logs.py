#!/usr/bin/env python3
"""What each target's requests did inside the engines, from a `compare.py --engine-request-logs` run.

    Deploy/bench/engine-logs.py DIR [--workload saturation] [--opening 2]

For each target of the workload (NAME-windows.json says when each ran; NAME-engine-N.jsonl are the
engines' request logs, Docs/engine-sim.md), after the first --opening seconds:
- how many requests computed more than 1,000 prompt tokens (a system prompt computed again on an
  engine that did not hold it), and their engine-side TTFTs;
- the mean TTFT and what it is made of: the request's own uncached prompt and the prompt tokens of
  other requests computed in the same step (in tokens; × the profile's prefill cost per token for
  milliseconds), running sequences and waiting requests met on arrival;
- the most running sequences any engine had, against the fewest, at the same moments (a hot spot);
- the mean TTFT the client measured (NAME-TARGET.json, `junction bench serve --json`) against the
  mean the engines measured, for the opening and after it: the difference is the time a request
  spends outside the engine (client, router, the network between them).
With --why, each such recomputation with the engines that served its system prompt before
(marked *) and their last arrivals: time, running, waiting, uncached tokens.
"""
import argparse
import glob
import json
import os


def load(directory, workload):
    with open(os.path.join(directory, f"{workload}-windows.json")) as f:
        windows = json.load(f)
    lines = []
    for path in sorted(glob.glob(os.path.join(directory, f"{workload}-engine-*.jsonl"))):
        engine = int(path.rsplit("-", 1)[1].split(".")[0])
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                record["engine"] = engine
                lines.append(record)
    return windows, lines


def uncached(record):
    return record["prompt_tokens"] - record["cached_tokens"]


def outside_engine(directory, workload, target, run, opening):
    """Mean TTFT by the client and by the engines, opening and after it, and their difference."""
    path = os.path.join(directory, f"{workload}-{target}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        records = json.load(f)["records"]
    if not records:
        return None
    first_engine, first_client = run[0]["submitted"], min(r["start"] for r in records)

    def mean(values):
        return sum(values) / max(1, len(values))
    engine = [(r["submitted"] - first_engine, r["ttft_ms"]) for r in run]
    client = [(r["start"] - first_client, (r["firstToken"] - r["start"]) * 1000) for r in records if r.get("firstToken")]
    parts = []
    for label, keep in ((f"first {opening:g} s", lambda t: t <= opening), ("after", lambda t: t > opening), ("all", lambda t: True)):
        e, c = mean([v for t, v in engine if keep(t)]), mean([v for t, v in client if keep(t)])
        parts.append(f"{label} {c:.1f} against {e:.1f}")
    return "mean TTFT, client against engines (ms): " + ", ".join(parts) + f"; outside the engine {mean([v for _, v in client]) - mean([v for _, v in engine]):.1f} ms a request"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory")
    parser.add_argument("--workload", default="saturation")
    parser.add_argument("--opening", type=float, default=2.0, help="seconds at the start left out")
    parser.add_argument("--why", action="store_true", help="show the engines around each recomputation")
    args = parser.parse_args()
    windows, lines = load(args.directory, args.workload)
    for target, (began, ended) in windows.items():
        run = sorted((r for r in lines if began <= r["submitted"] <= ended), key=lambda r: r["submitted"])
        if not run:
            continue
        start = run[0]["submitted"]
        steady = [r for r in run if r["submitted"] - start > args.opening]
        cold = [r for r in steady if uncached(r) > 1000]
        n = max(1, len(steady))
        own = sum(uncached(r) for r in steady) / n
        shared = sum(max(0, r["step_prefill_tokens"] - uncached(r)) for r in steady) / n
        print(f"{target}: {len(steady)} requests after {args.opening:g} s, mean TTFT {sum(r['ttft_ms'] for r in steady) / n:.1f} ms")
        split = outside_engine(args.directory, args.workload, target, run, args.opening)
        if split:
            print("  " + split)
        print(f"  computed more than 1,000 prompt tokens: {len(cold)}"
              + (f" (TTFT {', '.join(str(round(r['ttft_ms'])) for r in cold)} ms)" if cold else ""))
        print(f"  per request: own uncached prompt {own:.0f} tokens, other requests' prompt tokens in its step {shared:.0f}, "
              f"running on arrival {sum(r['running_at_arrival'] for r in steady) / n:.1f}, waiting {sum(r['waiting_at_arrival'] for r in steady) / n:.2f}")
        by_second = {}
        for r in steady:
            by_second.setdefault(int(r["submitted"] - start), {})[r["engine"]] = r["running_at_arrival"]
        spreads = [(max(v.values()), min(v.values())) for v in by_second.values() if len(v) == len({r["engine"] for r in run})]
        if spreads:
            print(f"  running sequences, busiest engine against the idlest in the same second: mean {sum(a for a, _ in spreads) / len(spreads):.0f} "
                  f"against {sum(b for _, b in spreads) / len(spreads):.0f}, at most {max(a for a, _ in spreads)}")
        if args.why:
            for r in cold:
                index = run.index(r)
                holders = sorted({x["engine"] for x in run[:index] if x["prompt_head"] == r["prompt_head"]})
                print(f"  at {r['submitted'] - start:.2f} s on engine {r['engine']}: system prompt served before on {holders}")
                for engine in sorted({x["engine"] for x in run}):
                    near = [x for x in run if x["engine"] == engine and -0.5 < x["submitted"] - r["submitted"] <= 0][-5:]
                    mark = "*" if engine in holders else " "
                    print(f"    engine {engine}{mark} " + " ".join(
                        f"{x['submitted'] - r['submitted']:+.2f}s r{x['running_at_arrival']} w{x['waiting_at_arrival']} {uncached(x)}" for x in near))


if __name__ == "__main__":
    main()
