"""A JSON-RPC proxy in front of a test node that can fail on command: the way to test RPC
outages against a real node (the node keeps running; the link to it breaks)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

from chain.node import free_port

Mode = Literal["up", "down", "lose_replies", "flaky"]


class RpcProxy:
    """`up` forwards; `down` drops every request unanswered (a dead link); `lose_replies`
    forwards `lose_methods` requests to the node but drops the answer (the node acted, we
    never heard); `flaky` drops every 3rd request before forwarding it and the reply of every
    5th after forwarding it."""

    def __init__(self, upstream: str, mode: Mode = "up") -> None:
        self.upstream = upstream
        self.mode: Mode = mode
        self.lose_methods: set[str] = {"eth_sendRawTransaction"}
        self.seen: list[str] = []
        self.forwarded = 0
        self.dropped_before = 0
        self.dropped_after = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    method = json.loads(body).get("method", "?")
                except (ValueError, AttributeError):
                    method = "?"
                proxy.seen.append(method)
                n = len(proxy.seen)
                if proxy.mode == "down" or (proxy.mode == "flaky" and n % 3 == 1):
                    proxy.dropped_before += 1
                    self.close_connection = True
                    return
                request = urllib.request.Request(
                    proxy.upstream, body, {"Content-Type": "application/json"}
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        reply = response.read()
                except urllib.error.URLError:
                    self.close_connection = True
                    return
                proxy.forwarded += 1
                lose = proxy.mode == "lose_replies" and method in proxy.lose_methods
                if lose or (proxy.mode == "flaky" and n % 5 == 2):
                    proxy.dropped_after += 1
                    self.close_connection = True
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RpcProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
