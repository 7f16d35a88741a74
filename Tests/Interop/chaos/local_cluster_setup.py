"""The local cluster (Deploy/local/up.sh) as a module fixture: brought up on a port block nobody
else uses, with a directory of its own, traced to a receiver of the test's own, and stopped by
Deploy/local/down.sh afterwards with nothing left behind."""
import os
import pathlib
import random
import socket
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "Tests" / "Interop" / "gateway"))
from otlp_receiver import OTLPReceiver  # noqa: E402
BINARY = os.environ.get("JUNCTION_BIN", str(ROOT / ".build" / "debug" / "junction"))


def ports_free(ports):
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def local_cluster(tmp_path_factory, tls=False):
    """A generator for a module fixture: yields `run(*argv)`, which runs a script against the
    cluster and returns its completed process; `run.balancer_url`, `run.prometheus_port`,
    `run.receiver` and, with `tls`, `run.ca` (the cluster CA clients verify with)."""
    # A port block nobody else uses: the scripts take base+1..3, +11..12, +21..24, +30..39 (the
    # schedulers' peer links), +41..43 and +51..54 (schedulers' and agents' metrics), +90, +91
    # (Prometheus) and the balancer's port. Below the kernel's ephemeral range:
    # a port in it can be taken as the local end of any outgoing connection between this check
    # and the bind (seen: HAProxy refused 127.0.0.1:38080, "Address already in use", and the
    # whole chaos module failed to start).
    ephemeral_low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    for _ in range(50):
        base = random.randrange(10000, min(ephemeral_low, 50000) - 100, 100)
        ports = [base + d for d in (1, 2, 3, 11, 12, 21, 22, 23, 24, *range(30, 44), 51, 52, 53, 54, 80, 90, 91)]
        if ports_free(ports):
            break
    # The cluster traces to a receiver of the test's own, so the chaos runs with tracing on.
    receiver = OTLPReceiver()
    local_dir = str(tmp_path_factory.mktemp("local-cluster"))
    env = dict(os.environ, JUNCTION_BIN=BINARY, JUNCTION_LOCAL_DIR=local_dir, JUNCTION_TLS="1" if tls else "0",
               JUNCTION_PORT_BASE=str(base), JUNCTION_LB_PORT=str(base + 80), JUNCTION_OTLP_ENDPOINT=receiver.url)

    def run(*argv, timeout=180):
        out = subprocess.run([str(ROOT / a) if a.startswith("Deploy/") else a for a in argv], env=env,
                             capture_output=True, text=True, timeout=timeout)
        print(f"$ {' '.join(argv)}\n{out.stdout}{out.stderr}")
        return out

    run.balancer_port = base + 80
    run.balancer_url = f"{'https' if tls else 'http'}://127.0.0.1:{base + 80}"
    run.prometheus_port = base + 91
    run.receiver = receiver
    run.directory = local_dir
    run.ca = os.path.join(local_dir, "tls", "ca.pem") if tls else None
    up = run("Deploy/local/up.sh")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield run
    finally:
        run("Deploy/local/down.sh")
        receiver.stop()
        leftover = subprocess.run(["pgrep", "-f", local_dir], capture_output=True, text=True).stdout.split()
        assert not leftover, f"processes left behind: {leftover}"
