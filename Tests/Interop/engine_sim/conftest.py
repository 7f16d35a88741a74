"""Starts real `junction engine-sim` processes on 127.0.0.1 for the tests, and stops them."""
import os
import pathlib
import re
import signal
import subprocess
import time

import httpx
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
BINARY = os.environ.get("JUNCTION_BIN", str(ROOT / ".build" / "debug" / "junction"))
DIALECTS = ["vllm", "sglang", "bladellm"]


class Sim:
    def __init__(self, args):
        self.args = args
        self.proc = subprocess.Popen(
            [BINARY, "engine-sim", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if not match:
            self.proc.kill()
            raise RuntimeError(f"engine-sim did not start: {line!r} {self.proc.stderr.read()!r}")
        self.url = match.group(1)
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def metrics(self):
        return self.http.get("/metrics").text

    def faults(self, **faults):
        reply = self.http.post("/admin/faults", json=faults)
        reply.raise_for_status()
        return reply.json()

    def stop(self):
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def start_sim():
    started = []

    def start(*args):
        sim = Sim(list(args))
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


def sample_value(text, name, labels=None):
    """The value of one series in a Prometheus exposition (summed over series matching labels)."""
    from prometheus_client.parser import text_string_to_metric_families
    total, found = 0.0, False
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in (labels or {}).items()):
                total += sample.value
                found = True
    if not found:
        raise KeyError(name)
    return total


def wait_until(predicate, timeout=10.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")
