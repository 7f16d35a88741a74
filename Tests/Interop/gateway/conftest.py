"""A whole Junction cluster of real processes on 127.0.0.1 for the gateway tests: three
schedulers, simulated engines with an agent each, and a gateway, started from the `junction`
binary and stopped (by PID) afterwards."""
import json
import os
import pathlib
import random
import re
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import httpx
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
MAKE_CERTS = str(ROOT / "Deploy" / "tls" / "make-certs.sh")
BINARY = os.environ.get("JUNCTION_BIN", str(ROOT / ".build" / "debug" / "junction"))
API_KEY = "test-key-0123"


_HANDED_OUT = set()


def free_port():
    """A loopback port nobody listens on now, for a process that must be named its port in
    advance (the schedulers list each other's). Taken at random below the kernel's ephemeral
    range, where the kernel's own picks (every outgoing connection's local port, every port 0)
    never land, and handed out once per test run, so a port given to a process that is stopped
    for now (a killed scheduler before its restart) is not given to another."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    for _ in range(200):
        port = random.randrange(10_000, max(10_001, low))
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise OSError("no free loopback port below the ephemeral range")


class Process:
    def __init__(self, name, args, directory):
        self.name = name
        self.args = args
        self.log_path = os.path.join(directory, f"{name}.log")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([BINARY, *args], stdout=self.log, stderr=subprocess.STDOUT)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGKILL, timeout=10):
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def metrics_url(self, timeout=20):
        """Where the process serves /metrics (it was started with --metrics-listen 127.0.0.1:0)."""
        return self._printed_url(rb"metrics listening on (http://127\.0\.0\.1:\d+)", timeout)

    def listening_url(self, timeout=20):
        """The URL the process printed when it started listening (it was given port 0)."""
        return self._printed_url(rb"(?<!metrics )listening on (https?://127\.0\.0\.1:\d+)", timeout)

    def _printed_url(self, pattern, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(self.log_path, "rb") as f:
                match = re.search(pattern, f.read())
            if match:
                return match.group(1).decode()
            if not self.alive():
                break
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start listening:\n{self.tail()}")

    def tail(self, lines=25):
        with open(self.log_path, "rb") as f:
            return f"--- {self.name} ---\n" + "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])


class Cluster:
    """`engines`: name -> engine-sim arguments. `agent_args`: name -> extra agent arguments, in
    which `{port}` stands for that engine's port. `engine_urls`: name -> a function of the
    engine's URL giving the URL its agent registers (a recording proxy in front of it).
    `agent_options`: the config file's `agent` section. `sections`: further top-level sections
    of the config file (`tracing`). `credentials`: only the schedulers read the root secret;
    each agent, the gateway and `ctl` get a config holding just their own credential (printed
    by `junction ctl credential`). `prepare`: called with the cluster before any process
    starts (its directory and ports are known). `tls`: mutual TLS on the wire (a CA and a
    certificate per process, made by Deploy/tls/make-certs.sh with openssl) and HTTPS on the
    gateway's client side; `self.ca` is then the CA clients verify the gateway with."""

    def __init__(self, engines, gateway_options=None, scheduler_options=None, agent_args=None, engine_urls=None,
                 agent_options=None, prepare=None, metrics=False, sections=None, credentials=False, tls=False,
                 ready_timeout=40):
        self.ready_timeout = ready_timeout
        # metrics: schedulers and agents serve /metrics on ports of their own (`metrics_url`).
        self.metrics_args = ["--metrics-listen", "127.0.0.1:0"] if metrics else []
        self.agent_args = agent_args or {}
        self.engine_urls = engine_urls or {}
        self.dir = tempfile.mkdtemp(prefix="junction-gw-")
        self.scheduler_ports = {i: free_port() for i in (1, 2, 3)}
        self.config_path = os.path.join(self.dir, "cluster.json")
        gateway = {
            "api_keys": [API_KEY], "table_cache_path": os.path.join(self.dir, "table.bin"),
            "max_queue_size": 2, "wait_schedule_timeout": 1500, "retry_count": 2, "max_body_bytes": 65536,
        }
        gateway.update(gateway_options or {})
        config = {
            "cluster": {"secret": "gateway-test-secret-0123",
                        "schedulers": [{"id": i, "address": f"127.0.0.1:{p}"} for i, p in self.scheduler_ports.items()]},
            "scheduler": {"data_dir": os.path.join(self.dir, "data-{id}"), "heartbeat_timeout_ms": 60000},
            "llm_gateway": gateway,
            "llm_scheduler": scheduler_options or {},
            "agent": agent_options or {},
        }
        config.update(sections or {})
        self.tls = tls
        self.tls_dir = os.path.join(self.dir, "tls")
        self.ca = os.path.join(self.tls_dir, "ca.pem") if tls else None
        # What clients of the gateway verify it with (httpx's `verify`).
        self.verify = True
        if tls:
            subprocess.run([MAKE_CERTS, self.tls_dir, "ca"], check=True, timeout=60)
            for i in (1, 2, 3):
                subprocess.run([MAKE_CERTS, self.tls_dir, f"scheduler-{i}", f"scheduler:{i}"], check=True, timeout=60)
            config["cluster"]["tls"] = {"ca": self.ca, "certificate": os.path.join(self.tls_dir, "scheduler-{id}.pem"),
                                        "key": os.path.join(self.tls_dir, "scheduler-{id}.key")}
            self.verify = ssl.create_default_context(cafile=self.ca)
        with open(self.config_path, "w") as f:
            json.dump(config, f)
        self.processes = {}
        self.credentials = credentials
        self.ctl_config = self.process_config("operator", "tester" if credentials else "ctl")
        try:
            if prepare:
                prepare(self)
            self._start(engines)
        except BaseException:
            # A cluster that did not come up must not leave its processes behind.
            self.stop()
            raise

    def credential_config(self, role, node_id):
        """A copy of the config with this role's and id's credential in place of the root secret."""
        token = subprocess.run([BINARY, "ctl", "credential", "--config", self.config_path, "--role", role, "--id", node_id],
                               capture_output=True, text=True, timeout=20, check=True).stdout.strip()
        with open(self.config_path) as f:
            config = json.load(f)
        del config["cluster"]["secret"]
        config["cluster"]["credential"] = token
        path = os.path.join(self.dir, f"{role}-{node_id}.json")
        with open(path, "w") as f:
            json.dump(config, f)
        return path

    def process_config(self, role, node_id):
        """The config a process of this role and id runs with: the cluster's, or with
        `credentials` its own credential's, and with `tls` a certificate naming it."""
        if not self.credentials and not self.tls:
            return self.config_path
        path = self.credential_config(role, node_id) if self.credentials else self.config_path
        if not self.tls:
            return path
        name = f"{role}-{node_id}"
        subprocess.run([MAKE_CERTS, self.tls_dir, name, f"{role}:{node_id}"], check=True, timeout=60)
        with open(path) as f:
            config = json.load(f)
        config["cluster"]["tls"] = {"ca": self.ca, "certificate": os.path.join(self.tls_dir, f"{name}.pem"),
                                    "key": os.path.join(self.tls_dir, f"{name}.key")}
        if role == "gateway":
            config["llm_gateway"]["tls"] = {"certificate": os.path.join(self.tls_dir, f"{name}.pem"),
                                            "key": os.path.join(self.tls_dir, f"{name}.key")}
        path = os.path.join(self.dir, f"{name}-tls.json")
        with open(path, "w") as f:
            json.dump(config, f)
        return path

    def _start(self, engines):
        for i in (1, 2, 3):
            self.start_scheduler(i)
        # Engines and the gateway take port 0 and say which port they got: no race with other
        # processes for a port picked in advance.
        self.engines = {}
        for name, args in engines.items():
            sim = Process(f"sim-{name}", ["engine-sim", "--port", "0", *args], self.dir)
            self.processes[f"sim-{name}"] = sim
            self.engines[name] = sim.listening_url()
        self.registered = {name: self.engine_urls.get(name, lambda url: url)(url) for name, url in self.engines.items()}
        for name in engines:
            self.start_agent(name)
        self.url = self.start_gateway("gw-1", key="gateway")
        self.wait_for_instances(len(engines), timeout=self.ready_timeout)

    def start_gateway(self, name, key=None):
        """Starts a gateway of the cluster (another beside the first, for tests of several) and
        returns its URL once it listens."""
        gateway_config = self.process_config("gateway", name)
        named = ["--name", name] if self.tls else []
        gateway = Process(key or f"gateway-{name}", ["gateway", "--config", gateway_config, "--port", "0", "--log-level", "info", *named],
                          self.dir)
        self.processes[key or f"gateway-{name}"] = gateway
        return gateway.listening_url()

    def start_scheduler(self, i):
        self.processes[f"scheduler-{i}"] = Process(
            f"scheduler-{i}", ["scheduler", "--config", self.config_path, "--id", str(i), "--log-level", "info", *self.metrics_args],
            self.dir)

    def start_agent(self, name):
        port = self.engines[name].rsplit(":", 1)[1]
        extra = [arg.replace("{port}", port) for arg in self.agent_args.get(name, [])]
        config = self.process_config("agent", name)
        self.processes[f"agent-{name}"] = Process(
            f"agent-{name}",
            ["agent", "--engine", self.registered[name], "--config", config, "--instance-id", name, *self.metrics_args, *extra],
            self.dir)

    def ctl(self, *args):
        out = subprocess.run([BINARY, "ctl", *args, "--config", self.ctl_config], capture_output=True, text=True, timeout=20)
        return out.stdout

    def status(self):
        out = self.ctl("status", "--json")
        try:
            return json.loads(out)
        except ValueError:
            return None

    def wait_for_instances(self, count, timeout=40):
        deadline = time.time() + timeout
        while time.time() < deadline:
            status = self.status()
            ready = httpx.get(self.url + "/ready", verify=self.verify).status_code if self._gateway_up() else 0
            if status and len([i for i in status["instances"] if i["state"] == "up"]) >= count and ready == 200:
                return
            time.sleep(0.2)
        raise RuntimeError("the cluster did not come up:\n" + self.logs())

    def _gateway_up(self):
        try:
            httpx.get(self.url + "/health", timeout=1, verify=self.verify)
            return True
        except httpx.HTTPError:
            return False

    def logs(self):
        return "\n".join(p.tail() for p in self.processes.values())

    def data_dir(self, i):
        return os.path.join(self.dir, f"data-{i}")

    def stop(self):
        for process in self.processes.values():
            process.stop()


def wait_for(condition, timeout, what):
    """Polls `condition` until it returns something true (which it returns) or `timeout` seconds pass."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest.fixture
def client(cluster):
    """The official openai client on the gateway of the module's `cluster`, without retries."""
    import openai
    with openai.OpenAI(base_url=cluster.url + "/v1", api_key=API_KEY, max_retries=0, timeout=30) as c:
        yield c


@pytest.fixture
def cluster_factory():
    started = []

    def make(engines, gateway_options=None, **options):
        cluster = Cluster(engines, gateway_options, **options)
        started.append(cluster)
        return cluster

    yield make
    for cluster in started:
        cluster.stop()
