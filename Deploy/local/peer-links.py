#!/usr/bin/env python3
"""The scheduler-to-scheduler links of the local cluster, as TCP relays the chaos scripts can cut.

Every process of the local cluster shares the loopback interface, so a network partition cannot
be made with routes or firewalls without giving each scheduler an address of its own. Instead,
each scheduler dials each peer through its own relay here (`scheduler.peer_addresses` in that
scheduler's config), while gateways, agents and `ctl` reach every scheduler directly. Cutting the
relays that touch node N partitions N from the other schedulers — both directions, since each
node sends its Raft messages on the connections it dialled — and nothing else.

    peer-links.py --control PORT --link FROM:TO:LISTEN_PORT:TARGET_HOST:TARGET_PORT ...

Control (HTTP on 127.0.0.1:PORT): `POST /cut?node=N` closes every relayed connection to or from
N and refuses new ones; `POST /heal` lets them through again; `GET /` shows the cut nodes.
"""
import argparse
import asyncio
import urllib.parse


class Links:
    def __init__(self):
        self.cut = set()
        self.open = set()  # (from, to, writer) of live relayed connections

    def severed(self, src, dst):
        return src in self.cut or dst in self.cut

    def cut_node(self, node):
        self.cut.add(node)
        for src, dst, writer in list(self.open):
            if self.severed(src, dst):
                writer.transport.abort()


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.transport.abort()


def relay(links, src, dst, host, port):
    async def handle(client_reader, client_writer):
        if links.severed(src, dst):
            client_writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        except OSError:
            client_writer.transport.abort()
            return
        entries = {(src, dst, client_writer), (src, dst, upstream_writer)}
        links.open |= entries
        try:
            await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))
        finally:
            links.open -= entries
    return handle


def control(links):
    async def handle(reader, writer):
        try:
            request = (await reader.readline()).decode().split()
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            method, target = request[0], urllib.parse.urlsplit(request[1])
            query = urllib.parse.parse_qs(target.query)
            if method == "POST" and target.path == "/cut" and query.get("node"):
                links.cut_node(int(query["node"][0]))
            elif method == "POST" and target.path == "/heal":
                links.cut.clear()
            elif not (method == "GET" and target.path == "/"):
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            body = ("cut: " + ",".join(map(str, sorted(links.cut))) + "\n").encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                         % (len(body), body))
        except (IndexError, ValueError):
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        finally:
            await writer.drain()
            writer.close()
    return handle


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--control", type=int, required=True)
    parser.add_argument("--link", action="append", default=[], help="FROM:TO:LISTEN_PORT:TARGET_HOST:TARGET_PORT")
    args = parser.parse_args()
    links = Links()
    servers = [await asyncio.start_server(control(links), "127.0.0.1", args.control)]
    for spec in args.link:
        src, dst, listen, host, port = spec.split(":")
        servers.append(await asyncio.start_server(relay(links, int(src), int(dst), host, int(port)), "127.0.0.1", int(listen)))
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
