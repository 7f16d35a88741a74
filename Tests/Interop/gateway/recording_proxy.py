"""A reverse proxy on 127.0.0.1 that records every inference request passing through it (path,
headers, JSON body) and forwards it, unchanged, to one engine: it lets a test see exactly what
the gateway sent to each side of a prefill/decode hand-off."""
import http.server
import json
import threading

import httpx


class RecordingProxy:
    """`empty_filtered_metrics`: answer `/metrics?…` (a filtered scrape) with an empty page, as
    prometheus_client in multiprocess mode does, instead of forwarding it."""

    def __init__(self, target, empty_filtered_metrics=False):
        self.target = target
        self.empty_filtered_metrics = empty_filtered_metrics
        # Every GET's path and query, in order (the agent's scrapes and probes).
        self.gets = []
        # One client for every relayed request: a client per request costs some 30 ms of CPU
        # under the GIL (its TLS context), and the agents' scrapes through four proxies then
        # saturated the test process until the scrapes timed out and the engines read as down.
        # httpx.Client is safe to share between the server's threads.
        self.client = httpx.Client(timeout=60, limits=httpx.Limits(max_connections=None, max_keepalive_connections=32))
        self.requests = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def forward(self):
                if self.command == "GET":
                    with proxy.lock:
                        proxy.gets.append(self.path)
                    if proxy.empty_filtered_metrics and self.path.startswith("/metrics?"):
                        self.send_response(200)
                        self.send_header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                        self.send_header("content-length", "0")
                        self.end_headers()
                        return
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path.startswith("/v1/") and body:
                    with proxy.lock:
                        proxy.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                               "body": json.loads(body)})
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
                # Relayed chunk by chunk as the engine writes them, so a streamed answer's first
                # event reaches the gateway when the engine sends it, not when the answer ends.
                try:
                    with proxy.client.stream(self.command, proxy.target + self.path, content=body, headers=headers) as reply:
                        self.send_response(reply.status_code)
                        for name, value in reply.headers.items():
                            if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                                self.send_header(name, value)
                        self.send_header("transfer-encoding", "chunked")
                        self.end_headers()
                        for chunk in reply.iter_raw():
                            if chunk:
                                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                                self.wfile.flush()
                        self.wfile.write(b"0\r\n\r\n")
                except httpx.HTTPError:
                    # The engine is gone (or went mid-answer): so is the connection, as the gateway would see it.
                    self.close_connection = True

            do_GET = forward
            do_POST = forward
            do_DELETE = forward

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client that hangs up (a cancelled leg) is not an error here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def scrapes(self):
        with self.lock:
            return [path for path in self.gets if path.startswith("/metrics")]

    def recorded(self):
        with self.lock:
            return list(self.requests)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.client.close()
