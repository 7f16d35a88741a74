#!/usr/bin/env python3
"""Gateway overhead: latency added and requests per second of a router in front of a simulated
engine, against calling the engine directly, in one run, for Junction's gateway (with a real
scheduler trio and agent) and for smg (the SGLang project's gateway), sglang-router and
vllm-router from PyPI, each in front of the same engine. Load by wrk (POST, keep-alive), non-streaming and streaming, 1 and 32 connections.
Router CPU time per request comes from /proc/PID/stat (steadier than throughput on 2 shared cores);
read and write system calls per request from /proc/PID/io (a count, whatever the machine's speed).

    Deploy/bench/gateway-overhead.py [--seconds 10] [--routers-venv PATH] [--only junction ...] [--perf] [--tracing] [--tls]

`--perf` records the Junction gateway's rows with `perf record -g` and prints its self time by
symbol after the table (needs `perf`); `--only` limits the targets (the engine direct always runs).
`--tracing` adds a second Junction gateway on the same trio that traces requests (the schedulers'
decisions too) to an OTLP/HTTP sink in this script, every request or `--trace-ratio R` of them:
what tracing costs. `--tls` adds a Junction gateway and trio of their own with TLS on
(`cluster.tls` on the wire, HTTPS to wrk, certificates from Deploy/tls/make-certs.sh): what TLS costs.

Needs: a release build (`swift build -c release --product junction`) and wrk (`make deps`). The
routers are installed with pip into --routers-venv (default ~/.cache/junction/routers-venv) when
they are not there; one that cannot be installed is skipped, and said so.
"""
import argparse
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = os.environ.get("JUNCTION_RELEASE_BIN", str(ROOT / ".build" / "release" / "junction"))
HZ = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, path="/health", timeout=30, ca=None):
    import ssl
    import urllib.request
    context = ssl.create_default_context(cafile=ca) if ca else None
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + path, timeout=1, context=context) as r:
                if r.status == 200:
                    return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"{url}{path} did not come up")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def io_syscalls(pid):
    """Read- and write-family system calls the process has made (/proc/PID/io: syscr + syscw):
    a count that does not depend on how fast the machine happens to be."""
    fields = dict(line.split(": ") for line in open(f"/proc/{pid}/io").read().splitlines())
    return int(fields["syscr"]) + int(fields["syscw"])


def wrk(url, path, body, connections, seconds, work):
    script = os.path.join(work, "post.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = {json.dumps(body)}\n")
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "30s", "-s", script, url + path],
                         capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def percentile(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", out, re.M)
        value = float(m.group(1))
        return value / 1000 if m.group(2) == "us" else value * 1000 if m.group(2) == "s" else value

    return {"rps": rps, "requests": total, "p50_ms": percentile(50), "p99_ms": percentile(99),
            "errors": int(errors.group(1)) if errors else 0}


ROUTERS = ("smg", "sglang-router", "vllm-router")


def start_otlp_sink():
    """A collector stand-in that takes every OTLP/HTTP export and answers 200 with an empty
    ExportTraceServiceResponse (an empty protobuf message is empty bytes): it counts exports."""
    import http.server
    import threading

    class Sink(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        exports = 0

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length") or 0))
            Sink.exports += 1
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", Sink


def start_tls_junction(start, work, engine):
    """A trio, an agent and a gateway of their own with TLS on everywhere: the gateway serves
    HTTPS and every wire connection is mutual TLS. Returns the target (its URL and processes)."""
    certs = str(ROOT / "Deploy" / "tls" / "make-certs.sh")
    tls_dir = os.path.join(work, "tls")
    subprocess.run([certs, tls_dir, "ca"], check=True)
    identities = {f"scheduler-{i}": f"scheduler:{i}" for i in (1, 2, 3)}
    identities.update({"agent": "agent:bench-engine", "gateway": "gateway:bench-tls"})
    for name, identity in identities.items():
        subprocess.run([certs, tls_dir, name, identity], check=True)
    ports = {i: free_port() for i in (1, 2, 3)}
    gateway_port = free_port()

    def config(name):
        path = os.path.join(work, f"tls-{name}.json")
        own = {"certificate": os.path.join(tls_dir, f"{name}.pem"), "key": os.path.join(tls_dir, f"{name}.key")}
        gateway = {"listen": f"127.0.0.1:{gateway_port}", "max_queue_size": 4096}
        if name == "gateway":
            gateway["tls"] = own
        json.dump({"cluster": {"secret": "overhead-bench-secret-0123", "tls": dict(own, ca=os.path.join(tls_dir, "ca.pem")),
                               "schedulers": [{"id": i, "address": f"127.0.0.1:{p}"} for i, p in ports.items()]},
                   "scheduler": {"data_dir": os.path.join(work, "tls-data-{id}")}, "llm_gateway": gateway}, open(path, "w"))
        return path

    leaders = [start(f"tls-scheduler-{i}", [BINARY, "scheduler", "--config", config(f"scheduler-{i}"), "--id", str(i)]) for i in ports]
    start("tls-agent", [BINARY, "agent", "--engine", engine, "--config", config("agent"), "--instance-id", "bench-engine"])
    gateway = start("tls-gateway", [BINARY, "gateway", "--config", config("gateway"), "--name", "bench-tls"])
    url = f"https://127.0.0.1:{gateway_port}"
    wait_http(url, "/ready", ca=os.path.join(tls_dir, "ca.pem"))
    return url, [gateway] + leaders


def ensure_routers(venv):
    """The peer routers in a venv of their own (installed once)."""
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    for package in ROUTERS:
        if not os.path.exists(os.path.join(venv, "bin", package)):
            print(f"gateway-overhead: installing {package} into {venv}", flush=True)
            subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", package], capture_output=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--routers-venv", default=os.path.expanduser("~/.cache/junction/routers-venv"))
    parser.add_argument("--only", action="append", default=[],
                        help="run only these targets (repeatable; the engine direct always runs): junction, smg, sglang-router, vllm-router")
    parser.add_argument("--perf", action="store_true",
                        help="record the Junction gateway's rows with `perf record -g -F 2000` and print where its time goes")
    parser.add_argument("--tracing", action="store_true",
                        help="also run a Junction gateway that traces requests to an OTLP/HTTP sink")
    parser.add_argument("--trace-ratio", type=float, default=1.0,
                        help="with --tracing: tracing.sample_ratio of that gateway (default 1: every request)")
    parser.add_argument("--tls", action="store_true",
                        help="also run a Junction gateway on a trio of its own with TLS on: HTTPS from wrk, mutual TLS on the wire")
    args = parser.parse_args()
    wanted = lambda name: not args.only or any(name.startswith(o) for o in args.only)
    ensure_routers(args.routers_venv)
    work = tempfile.mkdtemp(prefix="junction-overhead-")
    procs = []

    def start(name, argv, env=None):
        log = open(os.path.join(work, name + ".log"), "wb")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        procs.append(p)
        return p

    try:
        engine_port = free_port()
        engine = f"http://127.0.0.1:{engine_port}"
        start("engine", [BINARY, "engine-sim", "--port", str(engine_port), "--max-num-seqs", "1024", "--speed", "1000"])
        wait_http(engine)
        targets = {"direct (engine)": (engine, None)}

        # Junction: three schedulers, an agent, a gateway.
        if wanted("junction"):
            ports = {i: free_port() for i in (1, 2, 3)}
            gateway_port = free_port()
            config = os.path.join(work, "cluster.json")
            cluster = {"cluster": {"secret": "overhead-bench-secret-0123",
                                   "schedulers": [{"id": i, "address": f"127.0.0.1:{p}"} for i, p in ports.items()]},
                       "scheduler": {"data_dir": os.path.join(work, "data-{id}")},
                       "llm_gateway": {"listen": f"127.0.0.1:{gateway_port}", "max_queue_size": 4096}}
            json.dump(cluster, open(config, "w"))
            # The traced config: the schedulers read it too, and trace only calls that carry a
            # sampled context, so the untraced gateway's decisions stay untraced.
            traced_config = os.path.join(work, "cluster-traced.json")
            if args.tracing:
                sink_url, sink = start_otlp_sink()
                json.dump(dict(cluster, tracing={"otlp_endpoint": sink_url, "sample_ratio": args.trace_ratio}), open(traced_config, "w"))
            scheduler_config = traced_config if args.tracing else config
            leaders = [start(f"scheduler-{i}", [BINARY, "scheduler", "--config", scheduler_config, "--id", str(i)]) for i in ports]
            start("agent", [BINARY, "agent", "--engine", engine, "--config", config])
            gateway = start("gateway", [BINARY, "gateway", "--config", config])
            wait_http(f"http://127.0.0.1:{gateway_port}", "/ready")
            targets["junction gateway"] = (f"http://127.0.0.1:{gateway_port}", [gateway] + leaders)
            if args.tracing:
                traced_port = free_port()
                traced = start("gateway-traced", [BINARY, "gateway", "--config", traced_config, "--port", str(traced_port)])
                wait_http(f"http://127.0.0.1:{traced_port}", "/ready")
                targets[f"junction gateway, tracing (sample ratio {args.trace_ratio:g})"] = (f"http://127.0.0.1:{traced_port}", [traced] + leaders)

            if args.tls:
                targets["junction gateway, TLS (HTTPS, mutual TLS to the trio)"] = start_tls_junction(start, work, engine)

        bin_dir = os.path.join(args.routers_venv, "bin")
        for name, argv in [
            ("smg", [os.path.join(bin_dir, "smg"), "launch", "--worker-urls", engine, "--policy", "round_robin", "--log-level", "warn"]),
            ("sglang-router", [os.path.join(bin_dir, "sglang-router"), "launch", "--worker-urls", engine, "--policy", "round_robin",
                               "--log-level", "warn"]),
            ("vllm-router", [os.path.join(bin_dir, "vllm-router"), "--worker-urls", engine, "--policy", "round_robin",
                             "--log-level", "warning"]),
        ]:
            if not wanted(name):
                continue
            if not os.path.exists(argv[0]):
                print(f"skipping {name}: not installed in {args.routers_venv}")
                continue
            port = free_port()
            p = start(name, argv + ["--host", "127.0.0.1", "--port", str(port), "--prometheus-host", "127.0.0.1",
                                    "--prometheus-port", str(free_port())])
            try:
                wait_http(f"http://127.0.0.1:{port}", "/health", timeout=60)
            except RuntimeError:
                print(f"skipping {name}: it did not come up (see {work}/{name}.log)")
                continue
            targets[name] = (f"http://127.0.0.1:{port}", [p])

        body = {"model": "tiny", "messages": [{"role": "user", "content": "Say something short."}], "max_tokens": 1}
        stream_body = dict(body, max_tokens=16, stream=True, ignore_eos=True)
        rows = []
        profiles = []
        for label, request in [("non-streaming, 1 token", body), ("streaming, 16 tokens", stream_body)]:
            for connections in (1, 32):
                for name, (url, router_procs) in targets.items():
                    wrk(url, "/v1/chat/completions", json.dumps(request), connections, 2, work)  # warm-up
                    before = [cpu_seconds(p.pid) for p in router_procs or []]
                    calls_before = [io_syscalls(p.pid) for p in router_procs or []]
                    recorder = None
                    if args.perf and name == "junction gateway":
                        data = os.path.join(work, f"perf-{'stream' if request.get('stream') else 'unary'}-{connections}.data")
                        recorder = subprocess.Popen(["perf", "record", "-q", "-g", "-F", "2000", "-o", data, "-p", str(router_procs[0].pid),
                                                     "--", "sleep", str(args.seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    result = wrk(url, "/v1/chat/completions", json.dumps(request), connections, args.seconds, work)
                    after = [cpu_seconds(p.pid) for p in router_procs or []]
                    calls = [(io_syscalls(p.pid) - b) / max(1, result["requests"]) for p, b in zip(router_procs or [], calls_before)]
                    if recorder:
                        recorder.wait()
                        profiles.append((label, connections, data))
                    cpu = [(a - b) / max(1, result["requests"]) * 1e6 for a, b in zip(after, before)]
                    rows.append((label, connections, name, result, cpu, calls))
        print(f"\nGateway overhead, {args.seconds} s per row, wrk with keep-alive, engine: junction engine-sim (tiny, speed 1000)\n")
        print("| request | connections | target | req/s | p50 ms | p99 ms | added p50 ms | router CPU µs/request | read+write syscalls/request | errors |")
        print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for label, connections, name, result, cpu, calls in rows:
            direct = next(r for l, c, n, r, *_ in rows if l == label and c == connections and n == "direct (engine)")
            cpu_text = "" if not cpu else f"{cpu[0]:.0f}" + (f" (+{sum(cpu[1:]):.0f} schedulers)" if len(cpu) > 1 else "")
            calls_text = "" if not calls else f"{calls[0]:.1f}" + (f" (+{sum(calls[1:]):.1f} schedulers)" if len(calls) > 1 else "")
            print(f"| {label} | {connections} | {name} | {result['rps']:.0f} | {result['p50_ms']:.2f} | {result['p99_ms']:.2f} | "
                  f"{result['p50_ms'] - direct['p50_ms']:+.2f} | {cpu_text} | {calls_text} | {result['errors']} |")
        if args.tracing and wanted("junction"):
            print(f"\nOTLP exports received by the sink: {sink.exports}")
        for label, connections, data in profiles:
            # Self time by symbol: where the gateway's own CPU goes, kernel included.
            report = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,symbol", "--percent-limit", "1.5",
                                     "--stdio", "-g", "none"], capture_output=True, text=True).stdout
            print(f"\nJunction gateway, {label}, {connections} connection(s): perf report --no-children ({data})\n")
            print("\n".join(line for line in report.splitlines() if line.strip() and not line.startswith("#")))
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()


if __name__ == "__main__":
    main()
