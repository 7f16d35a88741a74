#!/usr/bin/env python3
"""Cross-checks `junction bench serve` against a load generator we did not write: guidellm runs a
fixed-concurrency load of single-turn chats (synthetic prompts, fixed answer length) through a
Junction gateway in front of simulated engines, then `junction bench serve` runs the same load
(same concurrency, request count, prompt length as the engines counted it, answer length) on the
same cluster, and the two rows are printed side by side. Engine caches are reset in between.

    Deploy/bench/guidellm-crosscheck.py [--concurrency 16] [--requests 300]

Installs guidellm 0.8.1 into ~/.cache/junction/guidellm-venv the first time (a few minutes, ~6 GB
with torch; pip must find a CPU torch wheel: this machine's pip config points at one, elsewhere add
`--extra-index-url https://download.pytorch.org/whl/cpu`). guidellm needs a tokenizer folder; one
is trained offline with the `tokenizers` package. Needs a release build.
"""
import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import compare  # noqa: E402  (process handling and the Junction cluster, shared with the comparison)

VENV = os.path.expanduser(os.environ.get("JUNCTION_GUIDELLM_VENV", "~/.cache/junction/guidellm-venv"))

TOKENIZER_SCRIPT = r"""
import sys, glob, os
from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders
from transformers import PreTrainedTokenizerFast
files = [f for f in glob.glob(os.path.join(os.path.dirname(os.__file__), "*.py"))][:200]
tok = Tokenizer(models.BPE(unk_token="<unk>"))
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
tok.train(files, trainers.BpeTrainer(vocab_size=8192, special_tokens=["<unk>", "<s>", "</s>"]))
fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
fast.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"
fast.save_pretrained(sys.argv[1])
"""


def ensure_guidellm():
    guidellm = os.path.join(VENV, "bin", "guidellm")
    if not os.path.exists(guidellm):
        print(f"crosscheck: installing guidellm 0.8.1 into {VENV} (a few minutes)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "-q", "--disable-pip-version-check", "guidellm==0.8.1"], check=True)
    tokenizer = os.path.join(os.path.dirname(VENV), "guidellm-tokenizer")
    if not os.path.exists(os.path.join(tokenizer, "tokenizer.json")):
        subprocess.run([os.path.join(VENV, "bin", "python"), "-c", TOKENIZER_SCRIPT, tokenizer], check=True, capture_output=True)
    return guidellm, tokenizer


def engine_counter(engines, name):
    total = 0.0
    for engine in engines:
        text = urllib.request.urlopen(engine + "/metrics", timeout=5).read().decode()
        total += sum(float(m.group(1)) for m in re.finditer(rf"^{re.escape(name)}\{{[^}}]*\}} (\S+)$", text, re.M))
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--prompt-tokens", type=int, default=512, help="guidellm's synthetic prompt length (its tokenizer)")
    parser.add_argument("--output-tokens", type=int, default=128)
    parser.add_argument("--engines", type=int, default=5)
    parser.add_argument("--speed", type=float, default=2)
    args = parser.parse_args()
    guidellm, tokenizer = ensure_guidellm()
    work = tempfile.mkdtemp(prefix="junction-crosscheck-")
    procs = compare.Processes(work)
    try:
        engines = []
        for n in range(args.engines):
            port = compare.free_port()
            procs.start(f"engine-{n}", [compare.BINARY, "engine-sim", "--dialect", "vllm", "--port", str(port), "--profile", "7b-a100",
                                        "--speed", str(args.speed), "--seed", str(n + 1), "--served-model-name", "tiny"])
            engines.append(f"http://127.0.0.1:{port}")
        for engine in engines:
            compare.wait_until(lambda: compare.http(engine + "/health")[0] == 200, 30, f"{engine} healthy")
        url, _ = compare.start_junction(procs, work, engines, "prefix-cache", "crosscheck")

        before = engine_counter(engines, "vllm:prompt_tokens_total"), engine_counter(engines, "vllm:request_success_total")
        out = os.path.join(work, "guidellm.json")
        command = [guidellm, "run",
                   "--backend", f"kind=openai_http,target={url},model=tiny,request_format=/v1/chat/completions",
                   "--profile", f"kind=concurrent,streams={args.concurrency}",
                   "--constraint", f"kind=max_requests,count={args.requests}",
                   "--data", f"kind=synthetic_text,prompt_tokens={args.prompt_tokens},output_tokens={args.output_tokens}",
                   "--tokenizer", f"kind=huggingface_auto,model={tokenizer}",
                   "--seed", "kind=static,value=1", "--output", f"kind=json,path={out}", "--disable-progress"]
        print("$ " + " ".join(command), flush=True)
        subprocess.run(command, check=True, env=dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"),
                       stdout=open(os.path.join(work, "guidellm.log"), "w"), stderr=subprocess.STDOUT)
        after = engine_counter(engines, "vllm:prompt_tokens_total"), engine_counter(engines, "vllm:request_success_total")
        engine_prompt = (after[0] - before[0]) / max(1, after[1] - before[1])
        metrics = json.load(open(out))["benchmarks"][0]["metrics"]

        def g(name, stat="mean"):
            return metrics[name]["successful"][stat]
        guide = {"requests": int(metrics["request_totals"]["successful"]), "req/s": g("requests_per_second"),
                 "output tok/s": g("output_tokens_per_second"), "mean TTFT": g("time_to_first_token_ms"),
                 "median TTFT": g("time_to_first_token_ms", "median"),
                 "p99 TTFT": metrics["time_to_first_token_ms"]["successful"]["percentiles"]["p99"],
                 "mean TPOT": g("time_per_output_token_ms"), "prompt tokens (engine)": engine_prompt}

        for engine in engines:
            compare.http(engine + "/reset_prefix_cache", "POST")
        ours = os.path.join(work, "junction.json")
        command = [compare.BINARY, "bench", "serve", "--target", url, "--name", "junction bench", "--concurrency", str(args.concurrency),
                   "--requests", str(args.requests), "--conversations", str(args.requests), "--turns", "1-1",
                   "--user-tokens", str(round(engine_prompt) - 8), "--user-sigma", "0", "--answer-tokens", str(args.output_tokens),
                   "--answer-sigma", "0", "--json", ours]
        print("$ " + " ".join(command), flush=True)
        subprocess.run(command, check=True, capture_output=True)
        s = json.load(open(ours))["summary"]
        mine = {"requests": s["successful"], "req/s": s["requestThroughput"], "output tok/s": s["outputThroughput"],
                "mean TTFT": s["ttftMs"]["mean"], "median TTFT": s["ttftMs"]["median"], "p99 TTFT": s["ttftMs"]["p99"],
                "mean TPOT": s["tpotMs"]["mean"], "prompt tokens (engine)": s["inputTokens"] / max(1, s["successful"])}
        print(f"\nSame load through one Junction gateway: concurrency {args.concurrency}, {args.requests} single-turn chats, "
              f"{args.output_tokens}-token answers; {args.engines} × engine-sim 7b-a100 at speed {args.speed:g}. Times in ms.\n")
        print("| | guidellm 0.8.1 | junction bench serve | difference |")
        print("|---|---:|---:|---:|")
        for key in guide:
            a, b = guide[key], mine[key]
            print(f"| {key} | {a:.1f} | {b:.1f} | {(b / a - 1) * 100 if a else 0:+.1f}% |")
        print(f"\nlogs: {work}")
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
