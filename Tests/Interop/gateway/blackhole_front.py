"""A TCP forwarder on 127.0.0.1 in front of one engine that can stop taking new connections the
way a wedged or black-holed host does: its listen backlog is 0, so once it stops accepting and
one connection sits unaccepted, the kernel drops every further SYN and a dialler waits in
SYN-SENT until its own connect timeout. Connections accepted before keep being forwarded."""
import os
import socket
import threading


class BlackholeFront:
    def __init__(self, target):
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepting = threading.Event()
        self.accepting.set()
        self.stopped = False
        self.fillers = []
        # Held while the loop is inside accept(), so stopping can wait until it is not.
        self.lock = threading.Lock()
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self):
        while not self.stopped:
            if not self.accepting.wait(0.05):
                continue
            with self.lock:
                if not self.accepting.is_set():
                    continue
                try:
                    client, _ = self.listener.accept()
                except (TimeoutError, socket.timeout):
                    continue
                except OSError:
                    return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def black_hole(self):
        """Stops accepting and fills the accept queue: from now on a new connection's SYN is
        dropped. Returns once a probe's connect is seen to hang."""
        self.accepting.clear()
        with self.lock:
            pass  # the loop is out of accept() and will not go back in
        filler = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        self.fillers.append(filler)
        probe = socket.socket()
        probe.settimeout(0.2)
        try:
            probe.connect(("127.0.0.1", self.port))
            raise AssertionError("the front still completes connections")
        except (TimeoutError, socket.timeout):
            pass
        finally:
            probe.close()

    def stop(self):
        self.stopped = True
        self.accepting.set()
        for s in self.fillers:
            s.close()
        self.listener.close()


def connecting_sockets(pid, port):
    """How many of process `pid`'s TCP sockets are in SYN-SENT to 127.0.0.1:`port`."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:["):-1])
    count = 0
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            remote, state, inode = fields[2], fields[3], fields[9]
            if state == "02" and int(remote.split(":")[1], 16) == port and inode in inodes:
                count += 1
    return count
