#!/usr/bin/env python3
"""Faults under load against the running local cluster (Deploy/local/up.sh).

Each fault runs client load through the load balancer, injects the fault, heals it, and prints a
report: requests sent, completed, failed by reason, streams cut, and the measured times (new
leader, gateways back to scheduled routing, dead engine out of rotation, recovered engine back).
Exit status 1 if any request was lost (no answer, a hang past its deadline, a stream that ended
without its done marker or an error event), any request failed where the fault allows none, or a
time missed its target. `soak` mixes every fault at random under one continuous load.

Usage: chaos.py FAULT [--seed S] [--workers N] [--no-time-targets]
       chaos.py soak --minutes N [--seed S]
"""
import argparse
import collections
import concurrent.futures
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LOCAL_DIR = os.environ.get("JUNCTION_LOCAL_DIR", os.path.join(ROOT, ".run", "local"))


def tls_mode():
    """The local cluster's TLS mode as up.sh recorded it (JUNCTION_TLS overrides): with TLS on,
    the gateways and the balancer speak HTTPS, verified with the cluster's own CA."""
    mode = os.environ.get("JUNCTION_TLS")
    if mode is None:
        try:
            mode = open(os.path.join(LOCAL_DIR, "tls-mode")).read().strip()
        except OSError:
            mode = "0"
    return mode == "1"


TLS = tls_mode()
SCHEME = "https" if TLS else "http"


def verify():
    """httpx's `verify` for the gateways and the balancer."""
    if not TLS:
        return True
    import ssl
    return ssl.create_default_context(cafile=os.path.join(LOCAL_DIR, "tls", "ca.pem"))


# --------------------------------------------------------------------------------------------
# The cluster as Deploy/local left it: PID files, saved command lines, the config.

class Cluster:
    def __init__(self):
        self.dir = LOCAL_DIR
        self.bin = os.environ.get("JUNCTION_BIN", os.path.join(ROOT, ".build", "debug", "junction"))
        self.lb_port = int(os.environ.get("JUNCTION_LB_PORT", "8080"))
        self.base = base = int(os.environ.get("JUNCTION_PORT_BASE", "18100"))
        self.config_path = os.path.join(self.dir, "cluster.json")
        if not os.path.exists(self.config_path):
            sys.exit(f"chaos: no local cluster in {self.dir} (run Deploy/local/up.sh first)")
        config = json.load(open(self.config_path))
        # ctl speaks as an operator with its own credential (Docs/security.md) when up.sh made one.
        ctl_config = os.path.join(self.dir, "ctl.json")
        self.ctl_config = ctl_config if os.path.exists(ctl_config) else self.config_path
        self.schedulers = {m["id"]: m["address"] for m in config["cluster"]["schedulers"]}
        # A cluster across namespaced hosts (Deploy/netns/up.sh) says where everything is; `ctl`
        # then runs on each scheduler's own host, so a host cut off from the rest still answers.
        self.topology = None
        self.on_host = {}
        topology_path = os.path.join(self.dir, "topology.json")
        if os.path.exists(topology_path):
            self.topology = t = json.load(open(topology_path))
            self.on_host = {int(n): ["ip", "netns", "exec", t["hosts"][s["host"]]["netns"]] for n, s in t["schedulers"].items()}
            self.gateways = {int(g): v["url"] for g, v in t["gateways"].items()}
            self.engines = {e: v["url"] for e, v in t["engines"].items()}
            self.stats_url, self.url = t["stats"], t["balancer"]
        else:
            self.gateways = {g: f"{SCHEME}://127.0.0.1:{base + 10 + g}" for g in (1, 2)}
            # The engines up.sh started (four simulated, or two real vLLM servers).
            self.engines = {e: f"http://127.0.0.1:{base + 20 + i}" for i, e in enumerate("abcd", 1)
                            if os.path.exists(os.path.join(self.dir, "cmd", f"engine-{e}"))}
            self.stats_url = f"http://127.0.0.1:{base + 90}/stats;csv"
            self.url = f"{SCHEME}://127.0.0.1:{self.lb_port}"
        self.http = httpx.Client(timeout=2, verify=verify())
        self.last_leader = None

    def pid(self, name):
        try:
            return int(open(os.path.join(self.dir, "pids", f"{name}.pid")).read())
        except (OSError, ValueError):
            return None

    def alive(self, name):
        pid = self.pid(name)
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead, just not reaped
        except OSError:
            return False

    def signal(self, name, sig):
        pid = self.pid(name)
        if pid is None:
            raise RuntimeError(f"{name} has no PID file")
        os.kill(pid, sig)
        if sig == signal.SIGKILL:
            deadline = time.time() + 5
            while self.alive(name) and time.time() < deadline:
                time.sleep(0.01)

    def restart(self, name):
        """Starts NAME again with the command line Deploy/local/up.sh started it with."""
        subprocess.run(["bash", "-c", f'source "{ROOT}/Deploy/local/lib.sh" && relaunch {name}'], check=True,
                       env=dict(os.environ, JUNCTION_LOCAL_DIR=self.dir, JUNCTION_BIN=self.bin))

    def node_status(self, node):
        try:
            out = subprocess.run([*self.on_host.get(node, []), self.bin, "ctl", "status", "--json", "--config", self.ctl_config,
                                  "--scheduler", self.schedulers[node], "--timeout", "0.5"],
                                 capture_output=True, text=True, timeout=3)
            return json.loads(out.stdout)
        except (ValueError, subprocess.TimeoutExpired):
            return None

    def statuses(self, skip=()):
        # All at once: each `ctl status` is a process of its own (~70 ms), and asking in turn
        # would add their sum to every time measured.
        nodes = [n for n in self.schedulers if n not in skip and self.alive(f"scheduler-{n}")]
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
            return {n: s for n, s in zip(nodes, pool.map(self.node_status, nodes)) if s}

    def leader(self, statuses=None):
        """(id, term, status) of the node that says it leads, highest term first, or None."""
        statuses = statuses if statuses is not None else self.statuses()
        leaders = [(s["term"], n, s) for n, s in statuses.items() if s.get("raft_state") == "leader"]
        if not leaders:
            return None
        term, node, status = max(leaders)
        return node, term, status

    def instance_state(self, instance):
        # Ask the node that led last time first: one `ctl status` (~0.1 s) instead of three keeps
        # the measured times close to the real ones.
        status = self.node_status(self.last_leader) if self.last_leader else None
        if not status or status.get("raft_state") != "leader":
            found = self.leader()
            if not found:
                return None
            self.last_leader, status = found[0], found[2]
        for i in status["instances"]:
            if i["id"] == instance:
                return i["state"]
        return None

    def gateway_fallback(self, g):
        try:
            text = self.http.get(self.gateways[g] + "/metrics").text
        except httpx.HTTPError:
            return None
        for line in text.splitlines():
            if line.startswith("junction_gateway_fallback "):
                return float(line.split()[1]) >= 1
        return None

    def balancer_states(self):
        try:
            rows = self.http.get(self.stats_url).text.splitlines()
        except httpx.HTTPError:
            return {}
        states = {}
        for row in rows:
            cells = row.split(",")
            if len(cells) > 17 and cells[0] == "gateways" and cells[1].startswith("gateway-"):
                states[cells[1]] = cells[17]
        return states

    def peer_links(self, action, node=None):
        """Cuts (`cut`, node) or heals (`heal`) the scheduler-to-scheduler relays."""
        url = f"http://127.0.0.1:{self.base + 39}/{action}" + (f"?node={node}" if node is not None else "")
        self.http.post(url).raise_for_status()

    def port_open(self, address):
        host, port = address.rsplit(":", 1)
        try:
            with socket.create_connection((host, int(port)), timeout=0.2):
                return True
        except OSError:
            return False


def wait_until(predicate, timeout, interval=0.02, since=None):
    """Seconds until predicate() held (counted from `since`, default now), or None after timeout."""
    started = time.time()
    since = started if since is None else since
    while time.time() - started < timeout:
        if predicate():
            return time.time() - since
        time.sleep(interval)
    return None


# --------------------------------------------------------------------------------------------
# Client load through the load balancer, with every outcome classified.

SYSTEM_PROMPTS = [
    "You are a helpful assistant for a hardware store. Answer briefly and mention aisle numbers.",
    "You are a travel agent. Suggest destinations and explain the weather in one sentence each.",
    "You are a code reviewer. Point out bugs first, then style issues, and never rewrite the code.",
]


class Result:
    __slots__ = ("started", "ended", "kind", "outcome", "reason", "gateway", "instance", "route", "chunks")

    def __init__(self, kind):
        self.started, self.ended, self.kind = time.time(), None, kind
        self.outcome, self.reason, self.gateway, self.instance, self.route, self.chunks = None, "", None, None, None, 0


class Load:
    """Closed-loop workers, each sending one request after another through the balancer: half
    streamed chats, the rest non-streamed chats and completions, over shared system prompts."""

    def __init__(self, url, workers, deadline, seed, max_tokens=(8, 48)):
        self.url, self.workers, self.deadline, self.max_tokens = url, workers, deadline, max_tokens
        self.rng = random.Random(seed)
        self.results, self.lock = [], threading.Lock()
        self.stop_event = threading.Event()
        self.threads = []

    def start(self):
        for w in range(self.workers):
            t = threading.Thread(target=self._worker, args=(w, self.rng.randrange(1 << 30)), daemon=True)
            t.start()
            self.threads.append(t)

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(self.deadline + 5)

    def _worker(self, index, seed):
        rng = random.Random(seed)
        with httpx.Client(timeout=httpx.Timeout(self.deadline, connect=2), verify=verify()) as client:
            turn = 0
            while not self.stop_event.is_set():
                turn += 1
                result = self.send(client, rng, f"user {index} turn {turn}")
                with self.lock:
                    self.results.append(result)

    def send(self, client, rng, tag, stream=None, max_tokens=None, track=None):
        """One request; `track(result)` is called as soon as the result exists, so a watcher
        can see a stream while it is still running."""
        kind = rng.choice(["stream", "stream", "chat", "completion"]) if stream is None else ("stream" if stream else "chat")
        tokens = max_tokens or rng.randint(*self.max_tokens)
        if kind == "completion":
            path, body = "/v1/completions", {"model": "tiny", "prompt": f"{rng.choice(SYSTEM_PROMPTS)} {tag}", "max_tokens": tokens}
        else:
            path = "/v1/chat/completions"
            body = {"model": "tiny", "max_tokens": tokens, "ignore_eos": True, "messages": [
                {"role": "system", "content": rng.choice(SYSTEM_PROMPTS)}, {"role": "user", "content": f"{tag}: tell me more."}]}
            if kind == "stream":
                body["stream"] = True
        result = Result(kind)
        if track:
            track(result)
        deadline = result.started + self.deadline
        try:
            with client.stream("POST", self.url + path, json=body) as reply:
                result.gateway = reply.headers.get("x-junction-gateway")
                result.instance = reply.headers.get("x-junction-instance")
                result.route = reply.headers.get("x-junction-route")
                if kind != "stream" or reply.status_code != 200:
                    data = reply.read()
                    if reply.status_code == 200:
                        json.loads(data)
                        result.outcome = "ok"
                    else:
                        result.outcome, result.reason = "failed", f"HTTP {reply.status_code}: {data[:160]!r}"
                else:
                    self._read_stream(reply, result, deadline)
        except httpx.TimeoutException:
            result.outcome, result.reason = "lost", "hang past the deadline"
        except (httpx.TransportError, ValueError) as error:
            if result.chunks:
                result.outcome, result.reason = "lost", f"stream cut without an error event ({type(error).__name__})"
            else:
                result.outcome, result.reason = "lost", f"no answer ({type(error).__name__}: {error})"
        result.ended = time.time()
        return result

    @staticmethod
    def _read_stream(reply, result, deadline):
        done = error_event = False
        for line in reply.iter_lines():
            if time.time() > deadline:
                raise httpx.ReadTimeout("deadline")
            if not line.startswith("data: "):
                continue
            payload = line[6:]
            if payload == "[DONE]":
                done = True
                break
            result.chunks += 1
            if '"error"' in payload and json.loads(payload).get("error"):
                error_event = True
        if done and error_event:
            result.outcome, result.reason = "error-event", "stream ended with an error event"
        elif done:
            result.outcome = "ok"
        else:
            result.outcome, result.reason = "lost", "stream ended without [DONE] or an error event"


# --------------------------------------------------------------------------------------------
# The faults. Each injects, measures, heals; returns times (seconds) with their targets and
# which outcomes it allows.

class Fault:
    def __init__(self, cluster, rng, log):
        self.cluster, self.rng, self.log = cluster, rng, log
        self.times = []          # (what, seconds or None, target or None)
        self.allow_error_events = False
        self.excused = lambda result: None  # a reason why a lost request is excused, or None
        self.notes = []
        self.name = ""

    def time(self, what, seconds, target=None):
        self.times.append((what, seconds, target))
        self.log(f"  {what}: " + ("not reached" if seconds is None else f"{seconds:.2f} s") + (f" (target ≤ {target} s)" if target else ""))

    def wait_scheduled(self, timeout=15, hold=0.4):
        """Seconds until both gateways route by the scheduler and keep doing so for `hold` (a
        schedule call begun before the election may still time out and start a fallback)."""
        started, since = time.time(), None
        while time.time() - started < timeout:
            if all(self.cluster.gateway_fallback(g) is False for g in self.cluster.gateways):
                since = since or time.time()
                if time.time() - since >= hold:
                    return since - started
            else:
                since = None
            time.sleep(0.05)
        return None

    def wait_rejoined(self, node, timeout=15):
        def caught_up():
            found = self.cluster.leader()
            mine = self.cluster.node_status(node)
            return bool(found and mine and mine["term"] == found[1] and mine["raft_state"] == "follower"
                        and mine["commit_index"] >= found[2]["commit_index"] - 5)
        return wait_until(caught_up, timeout, 0.05)


def require_leader(cluster):
    found = cluster.leader()
    if not found:
        raise RuntimeError("the trio has no leader before the fault: is the cluster healthy? (Deploy/local/status.sh)")
    return found


def kill_leader(f):
    c = f.cluster
    node, term, _ = require_leader(c)
    f.log(f"  kill -9 scheduler-{node} (leader, term {term})")
    t0 = time.time()
    c.signal(f"scheduler-{node}", signal.SIGKILL)
    elected = wait_until(lambda: (l := c.leader()) is not None and l[0] != node and l[1] > term, 10, since=t0)
    f.time("new leader elected", elected, 1.0)
    waited = time.time()
    scheduled = f.wait_scheduled()
    f.time("gateways routing by the new leader (from the kill)", None if scheduled is None else waited + scheduled - t0)
    c.restart(f"scheduler-{node}")
    f.time("killed node restarted and caught up", f.wait_rejoined(node))


def rolling_restart(f):
    """Each scheduler in turn stopped with SIGTERM and started again once the others have a
    leader; the leader last, as an operator would. A leader asked to stop hands leadership to a
    caught-up follower first, so its going costs a hand-over, not an election timeout."""
    c = f.cluster
    leader, term, _ = require_leader(c)
    for node in [n for n in sorted(c.schedulers) if n != leader] + [leader]:
        found = c.leader()
        was_leader = bool(found) and found[0] == node
        f.log(f"  kill -TERM scheduler-{node}" + (f" (leader, term {found[1]})" if was_leader else ""))
        t0 = time.time()
        c.signal(f"scheduler-{node}", signal.SIGTERM)
        stopped = wait_until(lambda: not c.alive(f"scheduler-{node}"), 10, since=t0)
        f.time(f"scheduler-{node} stopped", stopped)
        if was_leader:
            gap = wait_until(lambda: (l := c.leader()) is not None and l[0] != node, 10, since=t0)
            f.time("another leader, from the SIGTERM", gap, 1.0)
        c.restart(f"scheduler-{node}")
        f.time(f"scheduler-{node} restarted and caught up", f.wait_rejoined(node))
    f.time("gateways routing by the scheduler after the last restart", f.wait_scheduled())


def kill_follower(f):
    c = f.cluster
    leader, term, _ = require_leader(c)
    node = f.rng.choice([n for n in c.schedulers if n != leader])
    f.log(f"  kill -9 scheduler-{node} (follower; leader {leader}, term {term})")
    c.signal(f"scheduler-{node}", signal.SIGKILL)
    time.sleep(2)
    still = c.leader()
    if not still or still[0] != leader or still[1] != term:
        f.notes.append(f"leadership changed while a follower was down: {still and still[:2]}")
    c.restart(f"scheduler-{node}")
    f.time("killed follower restarted and caught up", f.wait_rejoined(node))


def kill_two_schedulers(f):
    c = f.cluster
    leader, term, _ = require_leader(c)
    other = f.rng.choice([n for n in c.schedulers if n != leader])
    f.log(f"  kill -9 scheduler-{leader} (leader) and scheduler-{other}: no quorum")
    t0 = time.time()
    c.signal(f"scheduler-{leader}", signal.SIGKILL)
    c.signal(f"scheduler-{other}", signal.SIGKILL)
    fell_back = wait_until(lambda: all(c.gateway_fallback(g) for g in c.gateways), 10, 0.05, since=t0)
    f.time("both gateways in round-robin fallback", fell_back)
    time.sleep(max(0, 4 - (time.time() - t0)))
    f.log(f"  restart scheduler-{other}: quorum returns")
    c.restart(f"scheduler-{other}")
    # Quorum is back when the restarted node accepts connections.
    if wait_until(lambda: c.port_open(c.schedulers[other]), 10, 0.005) is None:
        f.notes.append(f"scheduler-{other} did not start listening")
    t_quorum = time.time()
    elected = wait_until(lambda: c.leader() is not None, 10)
    f.time("leader elected after quorum returned", None if elected is None else time.time() - t_quorum)
    waited = time.time()
    scheduled = f.wait_scheduled()
    f.time("gateways routing by the scheduler after quorum returned", None if scheduled is None else waited + scheduled - t_quorum, 1.0)
    c.restart(f"scheduler-{leader}")
    f.time("third node restarted and caught up", f.wait_rejoined(leader))


def freeze_leader(f):
    c = f.cluster
    node, term, _ = require_leader(c)
    f.log(f"  SIGSTOP scheduler-{node} (leader, term {term}) for 5 s")
    t0 = time.time()
    c.signal(f"scheduler-{node}", signal.SIGSTOP)
    split = []
    try:
        def new_leader():
            statuses = c.statuses(skip=(node,))
            found = c.leader(statuses)
            return found is not None and found[1] > term
        f.time("new leader elected while the old one is frozen", wait_until(new_leader, 10, since=t0), 1.0)
        time.sleep(max(0, 5 - (time.time() - t0)))
    finally:
        c.signal(f"scheduler-{node}", signal.SIGCONT)
    f.log(f"  SIGCONT scheduler-{node}")

    def stepped_down():
        statuses = c.statuses()
        leaders = collections.Counter(s["term"] for s in statuses.values() if s.get("raft_state") == "leader")
        split.extend(t for t, n in leaders.items() if n > 1)
        mine = statuses.get(node)
        return bool(mine and mine["raft_state"] != "leader" and mine["term"] > term)
    f.time("old leader stepped down after SIGCONT", wait_until(stepped_down, 10, 0.05))
    if split:
        f.notes.append(f"two nodes led the same term: {sorted(set(split))}")
    f.time("old leader caught up", f.wait_rejoined(node))


def partition_leader(f):
    """Cuts the leader's links to the other two schedulers (Deploy/local/peer-links.py) while
    gateways and agents still reach it: it must stop deciding (check-quorum) and the other two
    must elect a leader that everyone follows."""
    c = f.cluster
    isolate_leader(f, "partition scheduler-{node} (leader, term {term}) from the other two",
                   cut=lambda node: c.peer_links("cut", node), heal=lambda node: c.peer_links("heal"))


def isolate_leader(f, what, cut, heal, seconds=5):
    """Cuts the leader off with `cut(node)` for `seconds`, then `heal(node)`: the others must
    elect a leader everyone follows, the cut-off one must stop leading (check-quorum, or a higher
    term it hears), no term may have two leaders, and the node must rejoin after the heal."""
    c = f.cluster
    node, term, _ = require_leader(c)
    f.log(f"  {what.format(node=node, term=term)} for {seconds:g} s")
    t0 = time.time()
    cut(node)
    split = []
    try:
        def new_leader():
            found = c.leader(c.statuses(skip=(node,)))
            return found is not None and found[1] > term
        f.time("new leader elected on the majority side", wait_until(new_leader, 10, since=t0), 1.0)

        def isolated_stepped_down():
            mine = c.node_status(node)
            return bool(mine and mine["raft_state"] != "leader")
        f.time("isolated leader stopped leading", wait_until(isolated_stepped_down, 10, 0.05, since=t0))
        waited = time.time()
        scheduled = f.wait_scheduled()
        f.time("gateways routing by the new leader (from the cut)", None if scheduled is None else waited + scheduled - t0)
        deadline = t0 + seconds
        while time.time() < deadline:
            statuses = c.statuses()
            leaders = collections.Counter(s["term"] for s in statuses.values() if s.get("raft_state") == "leader")
            split.extend(t for t, n in leaders.items() if n > 1)
            time.sleep(0.1)
    finally:
        heal(node)
    f.log("  healed")
    if split:
        f.notes.append(f"two nodes led the same term: {sorted(set(split))}")
    f.time("isolated node rejoined and caught up", f.wait_rejoined(node))


def pick_engine(f):
    return f.rng.choice(list(f.cluster.engines))


def kill_agent(f):
    c = f.cluster
    e = pick_engine(f)
    f.log(f"  kill -9 agent-{e} (its engine keeps serving)")
    t0 = time.time()
    c.signal(f"agent-{e}", signal.SIGKILL)
    f.time(f"engine-{e} out of rotation (agent silent past heartbeat_timeout_ms)",
           wait_until(lambda: c.instance_state(f"engine-{e}") == "down", 10, 0.05, since=t0))
    c.restart(f"agent-{e}")
    f.time(f"engine-{e} back after the agent restarted", wait_until(lambda: c.instance_state(f"engine-{e}") == "up", 15, 0.05))


def kill_engine(f):
    c = f.cluster
    e = pick_engine(f)
    f.allow_error_events = True
    f.log(f"  kill -9 engine-{e}")
    t0 = time.time()
    c.signal(f"engine-{e}", signal.SIGKILL)
    f.time(f"engine-{e} out of rotation", wait_until(lambda: c.instance_state(f"engine-{e}") == "down", 10, 0.02, since=t0), 1.0)
    time.sleep(1)
    restarted = time.time()
    c.restart(f"engine-{e}")
    f.time(f"engine-{e} back in rotation after restart",
           wait_until(lambda: c.instance_state(f"engine-{e}") == "up", 15, 0.02, since=restarted), 3.0)


def kill_engine_mid_stream(f, load):
    c = f.cluster
    f.allow_error_events = True
    # Long streams until one has delivered a few chunks, then kill the engine serving it.
    streams, lock, stop = [], threading.Lock(), threading.Event()

    def track(r):
        with lock:
            streams.append(r)
            load.results.append(r)

    def long_stream(i):
        with httpx.Client(timeout=httpx.Timeout(load.deadline, connect=2), verify=verify()) as client:
            n = 0
            while not stop.is_set():
                n += 1
                load.send(client, random.Random(i * 1000 + n), f"long stream {i}.{n} {time.time()}",
                          stream=True, max_tokens=1800, track=track)
    threads = [threading.Thread(target=long_stream, args=(i,), daemon=True) for i in range(6)]
    for t in threads:
        t.start()

    def running_stream():
        with lock:
            live = [r for r in streams if r.outcome is None and r.chunks >= 3 and r.instance]
        return f.rng.choice(live) if live else None
    if wait_until(lambda: running_stream() is not None, 15, 0.02) is None:
        stop.set()
        f.notes.append("no long stream started within 15 s: nothing mid-stream was tested")
        return
    e = running_stream().instance.removeprefix("engine-")
    with lock:
        under_kill = [r for r in streams if r.outcome is None and r.instance == f"engine-{e}"]
    f.log(f"  kill -9 engine-{e} with {len(under_kill)} stream(s) running on it")
    t0 = time.time()
    c.signal(f"engine-{e}", signal.SIGKILL)
    f.time(f"engine-{e} out of rotation", wait_until(lambda: c.instance_state(f"engine-{e}") == "down", 10, 0.02, since=t0), 1.0)
    stop.set()
    for t in threads:
        t.join(load.deadline + 5)
    cut = [r for r in under_kill if r.outcome == "error-event"]
    f.log(f"  of those, ended with an error event: {len(cut)}; otherwise: "
          + (", ".join(f"{r.outcome} ({r.reason})" for r in under_kill if r.outcome != "error-event") or "none"))
    if not cut:
        f.notes.append("no stream running on the killed engine ended with an error event")
    restarted = time.time()
    c.restart(f"engine-{e}")
    f.time(f"engine-{e} back in rotation after restart",
           wait_until(lambda: c.instance_state(f"engine-{e}") == "up", 15, 0.02, since=restarted), 3.0)


def _engine_running(c, e):
    try:
        text = c.http.get(c.engines[e] + "/metrics").text
    except httpx.HTTPError:
        return 0
    for line in text.splitlines():
        if line.split("{")[0] in ("vllm:num_requests_running", "sglang:num_running_reqs", "llm:num_requests_running"):
            return float(line.rsplit(" ", 1)[1])
    return 0


def kill_gateway(f):
    c = f.cluster
    g = f.rng.choice(list(c.gateways))
    f.log(f"  kill -9 gateway-{g}")
    killed_at = time.time()
    c.signal(f"gateway-{g}", signal.SIGKILL)

    # A stream already flowing through the killed process cannot be saved by anyone but its
    # client: it is reported, and excused, only if it was running there when the kill came.
    def excused(r):
        if r.gateway == f"gateway-{g}" and r.kind == "stream" and r.chunks > 0 and r.started < killed_at <= (r.ended or 0):
            return "stream in flight through the killed gateway"
        return None
    f.excused = excused
    f.time(f"load balancer took gateway-{g} out",
           wait_until(lambda: c.balancer_states().get(f"gateway-{g}", "").startswith("DOWN"), 10, 0.05, since=killed_at))
    time.sleep(1)
    c.restart(f"gateway-{g}")
    f.time(f"gateway-{g} back in the load balancer after restart",
           wait_until(lambda: c.balancer_states().get(f"gateway-{g}") == "UP", 15, 0.05))


FAULTS = {
    "kill-leader": kill_leader,
    "kill-follower": kill_follower,
    "kill-two-schedulers": kill_two_schedulers,
    "freeze-leader": freeze_leader,
    "kill-agent": kill_agent,
    "kill-engine": kill_engine,
    "kill-engine-mid-stream": kill_engine_mid_stream,
    "kill-gateway": kill_gateway,
    "partition-leader": partition_leader,
    "rolling-restart": rolling_restart,
}


def run_fault(name, cluster, rng, load, log, faults=FAULTS):
    f = Fault(cluster, rng, log)
    f.name = name
    log(f"fault {name}")
    started = time.time()
    fn = faults[name]
    if name == "kill-engine-mid-stream":
        fn(f, load)
    else:
        fn(f)
    f.window = (started, time.time())
    return f


# --------------------------------------------------------------------------------------------
# The report.

def report(results, faults, time_targets, log):
    outcomes = collections.Counter(r.outcome for r in results)
    failed = collections.Counter(r.reason for r in results if r.outcome == "failed")
    lost, excused = collections.Counter(), collections.Counter()
    allow_error_events = any(f.allow_error_events for f in faults)
    problems = []
    for r in results:
        if r.outcome != "lost":
            continue
        why = next((w for f in faults if (w := f.excused(r))), None)
        if why:
            excused[why] += 1
        else:
            lost[r.reason] += 1
    routes = collections.Counter(r.route for r in results if r.outcome == "ok")
    log("")
    log(f"requests sent {len(results)}, completed {outcomes['ok']} "
        f"(scheduled {routes.get('scheduled', 0)}, reused {routes.get('reused', 0)}, fallback {routes.get('fallback', 0)})")
    took = sorted(r.ended - r.started for r in results if r.outcome == "ok")
    if took:
        log(f"time per completed request p50 {took[len(took) // 2] * 1000:.0f} ms, "
            f"p99 {took[min(len(took) - 1, len(took) * 99 // 100)] * 1000:.0f} ms, max {took[-1] * 1000:.0f} ms")
    log(f"streams cut with an error event {outcomes['error-event']}")
    log(f"failed {outcomes['failed']}" + "".join(f"\n  {n} × {why}" for why, n in failed.most_common()))
    log(f"lost {sum(lost.values())}" + "".join(f"\n  {n} × {why}" for why, n in lost.most_common()))
    if excused:
        log("cut by the fault itself (reported, not counted as lost):" + "".join(f"\n  {n} × {why}" for why, n in excused.items()))
    if lost:
        problems.append(f"{sum(lost.values())} requests lost")
    if failed:
        problems.append(f"{outcomes['failed']} requests failed")
    if outcomes["error-event"] and not allow_error_events:
        problems.append(f"{outcomes['error-event']} streams ended with an error event where no engine died")
    for f in faults:
        for what, seconds, target in f.times:
            if seconds is None:
                problems.append(f"never reached: {what}")
            elif target and seconds > target and time_targets:
                problems.append(f"{what}: {seconds:.2f} s > target {target} s")
        problems.extend(f.notes)
    log("verdict: " + ("PASS" if not problems else "FAIL\n  " + "\n  ".join(problems)))
    return not problems


def arguments(faults, description=__doc__, extra=None):
    """The command line of a chaos run over `faults`; `extra(parser)` adds options of its own."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("fault", choices=sorted(faults) + ["soak"])
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workers", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--deadline", type=float, default=30, help="seconds a request may take before it counts as hung")
    parser.add_argument("--minutes", type=float, default=10, help="soak: how long")
    parser.add_argument("--no-time-targets", action="store_true", help="report times without failing on targets (CI on a busy machine)")
    if extra:
        extra(parser)
    return parser.parse_args()


def run(args, cluster, faults=FAULTS, log=None, title=""):
    """Load through the balancer, the fault (or a soak of them), the report; True if it passed."""
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    rng = random.Random(seed)
    log = log or (lambda line: print(line, flush=True))
    if cluster.leader() is None or httpx.get(cluster.url + "/ready", timeout=2, verify=verify()).status_code != 200:
        sys.exit("chaos: the cluster is not healthy (no leader, or the balancer is not ready): see its status.sh")
    log(f"chaos {args.fault}{title}, seed {seed}, {args.workers} clients through {cluster.url}")
    load = Load(cluster.url, args.workers, args.deadline, seed)
    load.start()
    done = []
    try:
        time.sleep(2)
        if args.fault == "soak":
            until = time.time() + args.minutes * 60
            while time.time() < until:
                name = rng.choice(sorted(faults))
                done.append(run_fault(name, cluster, rng, load, log, faults))
                time.sleep(rng.uniform(2, 5))
        else:
            done.append(run_fault(args.fault, cluster, rng, load, log, faults))
        time.sleep(2)
    finally:
        load.stop()
    with load.lock:
        results = list(load.results)
    if args.fault == "soak":
        log(f"\nsoak: {len(done)} faults in {args.minutes:g} min: " + ", ".join(
            f"{n} × {k}" for k, n in collections.Counter(f.name for f in done).most_common()))
    return report(results, done, not args.no_time_targets, log)


def main():
    args = arguments(FAULTS)
    sys.exit(0 if run(args, Cluster()) else 1)


if __name__ == "__main__":
    main()
