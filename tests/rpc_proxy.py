"""A JSON-RPC proxy in front of a test node that can fail on command: the way to test RPC
outages against a real node (the node keeps running; the link to it breaks)."""

from __future__ import annotations

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

from ledger.node import free_port

Mode = Literal["up", "down", "lose_replies"]


class RpcProxy:
    """`up` forwards; `down` drops every request unanswered; `lose_replies` forwards
    `lose_methods` requests to the node but drops the answer (the node acted, we never heard)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mode: Mode = "up"
        self.lose_methods: set[str] = {"eth_sendRawTransaction"}
        self.seen: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    method = json.loads(body).get("method", "?")
                except (ValueError, AttributeError):
                    method = "?"
                proxy.seen.append(method)
                if proxy.mode == "down":
                    self.close_connection = True
                    return
                request = urllib.request.Request(
                    proxy.upstream, body, {"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=30) as response:
                    reply = response.read()
                if proxy.mode == "lose_replies" and method in proxy.lose_methods:
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
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RpcProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
