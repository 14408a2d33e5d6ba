"""A stdlib HTTP/1.1 server in a thread that records every request byte for byte (and test key files).

It answers `{"code":0,"msg":"ok","data":{"n": <request number>}}` unless the
test sets `responder(request) -> (status, body bytes)`; `drop_next = k` makes
it read the next k requests and close the connection without answering, and
`close_after_response` closes each connection after answering while the
response still says keep-alive (a peer that drops idle connections).
"""
from __future__ import annotations

import http.server
import threading
from typing import NamedTuple

from xinfinity.accounts import signing

# Key files of both kinds, as `xinf apikey create --json` prints them.
SEED = bytes(range(32))
ED_DOC = {"api_key": "AK_00000000000000E1", "secret_pem": signing.ed25519_pem(SEED), "secret_hex": SEED.hex(),
          "user_id": 7, "kind": "ed25519"}
HMAC_DOC = {"api_key": "AK_00000000000000A1", "secret": "s3cr3t-hmac-key", "user_id": 8, "kind": "hmac"}


class Seen(NamedTuple):
    method: str
    target: str
    headers: dict       # lowercased names
    body: bytes
    client_port: int


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One segment per response: a header write then a body write would wait out
    # Nagle against the client's delayed ACK (40 ms a request).
    wbufsize = -1
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def _any(self):
        srv = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                    self.client_address[1])
        with srv.lock:
            srv.seen.append(seen)
            drop = srv.drop_next > 0
            if drop:
                srv.drop_next -= 1
        if drop:
            self.close_connection = True
            return
        status, out = srv.responder(seen) if srv.responder else (200, b'{"code":0,"msg":"ok","data":{"n":%d}}'
                                                                 % len(srv.seen))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
        if srv.close_after_response:
            self.close_connection = True

    do_GET = do_POST = do_DELETE = do_PUT = _any


class StubServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.seen: list[Seen] = []
        self.responder = None
        self.drop_next = 0
        self.close_after_response = False
        self.closed = threading.Semaphore(0)     # released each time the server closes a connection
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def shutdown_request(self, request):
        super().shutdown_request(request)
        self.closed.release()

    def stop(self):
        self.shutdown()
        self.server_close()
