#!/usr/bin/env python3
"""Network faults under load against the namespaced cluster (Deploy/netns/up.sh), with the load,
the measured times and the report of Deploy/chaos/chaos.py. Run on the client host
(Deploy/netns/chaos.sh does that).

Faults of the network, each healed after 5 s:
  cut-leader-host   the leader's host unplugged from its switch (`ip link set down` on its port)
  cut-zone          zone b (one scheduler, two engines, one gateway) cut off from zone a and
                    the client: the WAN link between the zones drops everything
  one-way-loss      everything the leader's host sends is lost; it still hears everyone
and every process fault of chaos.py but partition-leader (kill-leader, kill-two-schedulers, ...).

Conditions, held for the whole run (`--under`), to measure a fault under them:
  latency   20 ms round trip between the zones (10 ms each way on the WAN link)
  loss      5 % of the packets every host sends are dropped (nftables on each host)

Usage: netchaos.py FAULT [--under latency|loss] [--seed S] [--workers N] [--no-time-targets]
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
os.environ.setdefault("JUNCTION_LOCAL_DIR", os.environ.get("JUNCTION_NETNS_DIR", os.path.join(ROOT, ".run", "netns")))
sys.path.insert(0, os.path.join(ROOT, "Deploy", "chaos"))
import chaos  # noqa: E402

NFT_TABLE = "junction_netchaos"


class Network:
    """The namespaced hosts' network as up.sh made it (topology.json): cables, the WAN link,
    and a firewall table per host for loss."""

    def __init__(self, topology):
        self.topology = topology
        self.fabric = topology["fabric_netns"]

    def netns(self, host):
        return self.topology["hosts"][host]["netns"]

    def scheduler_host(self, node):
        return self.topology["schedulers"][str(node)]["host"]

    def cable(self, host, up):
        """Plugs (up) or unplugs HOST's cable at the switch: its eth0 loses carrier, nothing is
        refused or reset; packets just stop."""
        subprocess.run(["ip", "-n", self.fabric, "link", "set", self.topology["hosts"][host]["port"], "up" if up else "down"], check=True)

    def wan(self, **command):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.topology["wan_control"])
            s.sendall(json.dumps(command).encode() + b"\n")
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
        state = json.loads(answer)
        if "error" in state:
            raise RuntimeError(f"wan-link: {state['error']}")
        return state

    def drop_sent(self, host, percent):
        """Drops PERCENT % of what HOST sends on its eth0 (100: all of it), at random per packet."""
        if not shutil.which("nft"):
            sys.exit("netchaos: nft is missing (nftables; run: make deps)")
        self.clear(host)
        rule = 'oifname "eth0" drop' if percent >= 100 else f'oifname "eth0" numgen random mod 10000 < {int(percent * 100)} drop'
        script = f"table inet {NFT_TABLE} {{\n chain sent {{\n  type filter hook output priority 0; policy accept;\n  {rule}\n }}\n}}\n"
        subprocess.run(["ip", "netns", "exec", self.netns(host), "nft", "-f", "-"], input=script, text=True, check=True)

    def clear(self, host):
        subprocess.run(["ip", "netns", "exec", self.netns(host), "nft", "delete", "table", "inet", NFT_TABLE],
                       capture_output=True)


def cut_leader_host(f, net):
    chaos.isolate_leader(f, "unplug the host of scheduler-{node} (leader, term {term})",
                         cut=lambda node: net.cable(net.scheduler_host(node), False),
                         heal=lambda node: net.cable(net.scheduler_host(node), True))


def one_way_loss(f, net):
    chaos.isolate_leader(f, "drop everything the host of scheduler-{node} (leader, term {term}) sends",
                         cut=lambda node: net.drop_sent(net.scheduler_host(node), 100),
                         heal=lambda node: net.clear(net.scheduler_host(node)))


def cut_zone(f, net, seconds=5):
    """Zone b cut off: its scheduler, engines and gateway reach nothing in zone a, nor the client.
    Zone a keeps a quorum, so routing goes on there; HAProxy takes zone b's gateway out; the
    leader marks zone b's engines down once their agents fall silent. After the heal everything
    must come back, and nothing may be lost: TCP carries what was in flight once the link is back."""
    c = f.cluster
    top = net.topology
    b_nodes = [int(n) for n, s in top["schedulers"].items() if top["hosts"][s["host"]]["zone"] == "b"]
    b_gateways = [int(g) for g, v in top["gateways"].items() if top["hosts"][v["host"]]["zone"] == "b"]
    b_engines = [e for e, v in top["engines"].items() if top["hosts"][v["host"]]["zone"] == "b"]
    leader, term, _ = chaos.require_leader(c)
    f.log(f"  cut zone b off (scheduler-{b_nodes}, gateway-{b_gateways}, engine-{b_engines}) for {seconds:g} s; "
          f"leader scheduler-{leader}, term {term}")
    t0 = time.time()
    net.wan(up=False)
    try:
        if leader in b_nodes:
            def new_leader():
                found = c.leader(c.statuses(skip=b_nodes))
                return found is not None and found[1] > term
            f.time("new leader elected in zone a", chaos.wait_until(new_leader, 10, since=t0), 1.0)
        for g in b_gateways:
            f.time(f"load balancer took gateway-{g} out",
                   chaos.wait_until(lambda: c.balancer_states().get(f"gateway-{g}", "").startswith("DOWN"), 10, 0.05, since=t0))
        for e in b_engines:
            f.time(f"engine-{e} out of rotation (its agent silent)",
                   chaos.wait_until(lambda: c.instance_state(f"engine-{e}") == "down", 10, 0.05, since=t0))
        time.sleep(max(0, t0 + seconds - time.time()))
    finally:
        net.wan(up=True)
    f.log("  healed")
    healed = time.time()
    for e in b_engines:
        f.time(f"engine-{e} back in rotation",
               chaos.wait_until(lambda: c.instance_state(f"engine-{e}") == "up", 15, 0.05, since=healed))
    for g in b_gateways:
        f.time(f"gateway-{g} back in the load balancer",
               chaos.wait_until(lambda: c.balancer_states().get(f"gateway-{g}") == "UP", 15, 0.05, since=healed))
    for n in b_nodes:
        f.time(f"scheduler-{n} caught up", f.wait_rejoined(n))
    f.time("gateways routing by the scheduler after the heal", f.wait_scheduled())


NETWORK_FAULTS = {"cut-leader-host": cut_leader_host, "cut-zone": cut_zone, "one-way-loss": one_way_loss}


class Condition:
    """Latency or loss held for a whole run: set before the load starts, lifted at the end."""

    def __init__(self, name, net):
        self.name, self.net = name, net

    def __enter__(self):
        if self.name == "latency":
            self.net.wan(delay_ms=10)
        elif self.name == "loss":
            for host in self.net.topology["hosts"]:
                self.net.drop_sent(host, 5)
        return self

    def __exit__(self, *_):
        if self.name == "latency":
            self.net.wan(delay_ms=0)
        elif self.name == "loss":
            for host in self.net.topology["hosts"]:
                self.net.clear(host)

    def title(self):
        return {"latency": ", under 20 ms round trip between the zones",
                "loss": ", under 5 % loss of every host's packets", None: ""}[self.name]


def main():
    cluster = chaos.Cluster()
    if not cluster.topology:
        sys.exit(f"netchaos: {chaos.LOCAL_DIR} holds no namespaced cluster (run Deploy/netns/up.sh)")
    net = Network(cluster.topology)
    faults = {k: v for k, v in chaos.FAULTS.items() if k != "partition-leader"}
    faults.update({name: (lambda fn: lambda f: fn(f, net))(fn) for name, fn in NETWORK_FAULTS.items()})
    args = chaos.arguments(faults, __doc__, lambda p: p.add_argument(
        "--under", choices=["latency", "loss"], default=None, help="a network condition held for the whole run"))
    with Condition(args.under, net) as condition:
        passed = chaos.run(args, cluster, faults, title=condition.title())
        if args.under == "latency":
            link = net.wan()
            print(f"WAN link: {link['carried']['a-b']} frames a→b, {link['carried']['b-a']} b→a, "
                  f"delayed {link['delay_ms']['a-b']:g} ms each way", flush=True)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
