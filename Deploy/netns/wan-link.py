#!/usr/bin/env python3
"""The link between the two zones' switches, as a userspace wire with delay and loss.

`tc netem` is the usual way to add latency and loss to a link; this machine's kernel is built
without `sch_netem` (and without `sch_fq`, which an eBPF delay would need), so the link between
the zones is two TAP devices, one plugged into each zone's bridge, and this process carries
every Ethernet frame from one to the other. Each direction has its own delay and loss:
a frame read at t is written at t + delay (in order: the delay is constant per direction) or
dropped with probability loss. TCP above sees real delay and real loss and retransmits.

    wan-link.py --tap-a wan-a --tap-b wan-b --control PATH

Runs inside the fabric's network namespace (the TAP devices are made there, then plugged into
the bridges by Deploy/netns/up.sh). Control: one JSON object per line on the UNIX socket PATH,
answered with the link's state as one JSON line:
    {"delay_ms": 10}                    both directions
    {"loss": 0.05, "direction": "a-b"}  only frames from zone a to zone b
    {"up": false}                       drop everything (a cut), {"up": true} heals
    {}                                  just the state
"""
import argparse
import fcntl
import heapq
import json
import os
import random
import select
import socket
import struct
import time

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
DIRECTIONS = ("a-b", "b-a")


def open_tap(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


class Link:
    def __init__(self, seed):
        self.delay = {d: 0.0 for d in DIRECTIONS}
        self.loss = {d: 0.0 for d in DIRECTIONS}
        self.up = True
        self.rng = random.Random(seed)
        self.carried = {d: 0 for d in DIRECTIONS}
        self.dropped = {d: 0 for d in DIRECTIONS}

    def apply(self, command):
        which = command.get("direction", "both")
        if which not in (*DIRECTIONS, "both"):
            raise ValueError(f"direction must be a-b, b-a or both, not {which!r}")
        targets = DIRECTIONS if which == "both" else (which,)
        if "delay_ms" in command:
            delay = float(command["delay_ms"])
            if not 0 <= delay <= 10_000:
                raise ValueError("delay_ms must be 0 to 10000")
            for d in targets:
                self.delay[d] = delay / 1000
        if "loss" in command:
            loss = float(command["loss"])
            if not 0 <= loss <= 1:
                raise ValueError("loss must be 0 to 1")
            for d in targets:
                self.loss[d] = loss
        if "up" in command:
            self.up = bool(command["up"])

    def state(self):
        return {"up": self.up, "delay_ms": {d: self.delay[d] * 1000 for d in DIRECTIONS}, "loss": self.loss,
                "carried": self.carried, "dropped": self.dropped}

    def admit(self, direction):
        """Whether a frame read now in `direction` is carried (counted either way)."""
        if not self.up or (self.loss[direction] and self.rng.random() < self.loss[direction]):
            self.dropped[direction] += 1
            return False
        self.carried[direction] += 1
        return True


def serve(tap_a, tap_b, control_path, seed):
    link = Link(seed)
    a, b = open_tap(tap_a), open_tap(tap_b)
    direction = {a: "a-b", b: "b-a"}
    peer = {a: b, b: a}
    if os.path.exists(control_path):
        os.unlink(control_path)
    control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    control.bind(control_path)
    control.listen(8)
    control.setblocking(False)
    clients = {}       # socket -> bytes read so far
    pending = []       # (due, sequence, fd to write, frame)
    sequence = 0
    while True:
        timeout = max(0.0, pending[0][0] - time.monotonic()) if pending else None
        readable, _, _ = select.select([a, b, control, *clients], [], [], timeout)
        now = time.monotonic()
        for source in readable:
            if source in direction:
                # Drain what is there: a burst is read at once, each frame with its own due time.
                for _ in range(256):
                    try:
                        frame = os.read(source, 65536)
                    except BlockingIOError:
                        break
                    if link.admit(direction[source]):
                        sequence += 1
                        heapq.heappush(pending, (now + link.delay[direction[source]], sequence, peer[source], frame))
            elif source is control:
                conn, _ = control.accept()
                conn.setblocking(False)
                clients[conn] = b""
            else:
                try:
                    data = source.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    del clients[source]
                    source.close()
                    continue
                clients[source] += data
                while b"\n" in clients[source]:
                    line, clients[source] = clients[source].split(b"\n", 1)
                    try:
                        link.apply(json.loads(line or b"{}"))
                        answer = link.state()
                    except (ValueError, TypeError, AttributeError) as error:
                        answer = {"error": str(error)}
                    try:
                        source.sendall(json.dumps(answer).encode() + b"\n")
                    except OSError:
                        pass  # the asker left; it is dropped at its next read
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, _, target, frame = heapq.heappop(pending)
            try:
                os.write(target, frame)
            except OSError:
                pass  # the other side's TAP is down (a cut): the frame is lost, as on a wire


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tap-a", required=True)
    parser.add_argument("--tap-b", required=True)
    parser.add_argument("--control", required=True, help="UNIX socket path for commands")
    parser.add_argument("--seed", type=int, default=1, help="seed of the loss draws")
    args = parser.parse_args()
    serve(args.tap_a, args.tap_b, args.control, args.seed)


if __name__ == "__main__":
    main()
