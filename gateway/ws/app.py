"""The gateway's WebSocket server: the `websockets` library's asyncio server, on a
port of its own (config gateway.ws_port), in the worker's event loop beside
granian's HTTP server. Which protocol a path speaks:

    /ws                      0xInfinity (gateway/ws/zxinf.py); ?token=<JWT> logs in
    /ws/<anything>           Binance raw streams (gateway/ws/binance.py)
    /stream?streams=a/b      Binance combined streams
    /ws-api/v3               Binance WebSocket API: the user data stream
    anything else            HTTP 404 to the upgrade

Every worker binds the port with SO_REUSEPORT, as granian does the HTTP one.
Compression is off (the hub shares one frame among the subscribers of a
stream: gateway/ws/hub.py); the transports' write buffer limit is 0, so a
write goes to the kernel at once (uvloop defers it otherwise; the library's
own sends wait for a connection's backlog to drain, as they would past its
default 32 KiB limit); the library sends a ping frame every 20 s on
every connection and closes one whose pong does not come within 60 s; a
client message above MAX_MESSAGE_BYTES closes its connection (1009).

A connection: the hub registers it and everything sent to it goes through
the hub's pending frames; the handler reads the client's messages into its
session until the connection closes (the client left, the hub closed it, the
library did), then its subscriptions go. A session's handler runs on the
event loop and never waits: it only queues replies.
"""
from __future__ import annotations

import sys
import traceback
from http import HTTPStatus
from typing import Callable
from urllib.parse import parse_qs

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from ..api import ApiError
from . import binance, zxinf
from .hub import Hub
from .streams import Catalog

MAX_MESSAGE_BYTES = 65536           # a client message above this closes its connection (1009) unread
INTERNAL_ERROR = 1011


def protocol_of(path: str):
    """The protocol `path` speaks (None: no WebSocket there)."""
    if path == "/ws":
        return zxinf.PROTOCOL
    if path.startswith("/ws/") or path == "/stream":
        return binance.STREAMS
    if path == "/ws-api/v3":
        return binance.API
    return None


class WsApp:
    def __init__(self, hub: Hub, catalog: Catalog, authenticator, signatures, now_ms: Callable[[], int]):
        """authenticator: gateway/auth.py's (0xInfinity logins, tokens); signatures:
        gateway/binance/auth.py's (Binance user data subscriptions); now_ms: the server time."""
        self.hub, self.catalog, self.auth, self.signatures, self.now_ms = (hub, catalog, authenticator, signatures,
                                                                           now_ms)

    def serve(self, host: str, port: int, **options):
        """The server on host:port (called and awaited in the running loop, it listens;
        `.close()` and `await .wait_closed()` stop it). options: more of websockets' serve
        arguments."""
        hub = self.hub
        kwargs = dict(compression=None, reuse_port=True, max_size=MAX_MESSAGE_BYTES, write_limit=0,
                      ping_interval=hub.ping_interval_s, ping_timeout=hub.stall_s, close_timeout=hub.abort_after_s,
                      process_request=_route)
        kwargs.update(options)
        return serve(self.handle, host, port, **kwargs)

    async def handle(self, ws) -> None:
        path, _, query = ws.request.path.partition("?")
        hub = self.hub
        conn = hub.connect(protocol_of(path), ws)
        try:
            session = self._session(conn, path, parse_qs(query))
            async for data in ws:
                session.on_message(data)
        except ConnectionClosed:        # closed without a close frame, or with an error code: the usual end
            pass
        except Exception:
            print(f"gateway ws: {path}: connection {conn.id} failed:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            hub.close(conn, "internal error", INTERNAL_ERROR)
        finally:
            hub.disconnect(conn)

    def _session(self, conn, path: str, query: dict[str, list[str]]):
        hub = self.hub
        if path == "/ws":
            session = zxinf.ZxSession(hub, conn, self.catalog, self.auth, 0)
            if "token" in query:
                try:
                    session.user_id = zxinf.token_user(self.auth, query["token"][0])
                except ApiError as e:
                    session.error(e.code, f"login refused: {e.msg}")
                    hub.end(conn)
                    return session
            session.start()
        elif path == "/ws-api/v3":
            session = binance.ApiSession(hub, conn, self.signatures, self.now_ms)
        else:
            session = binance.StreamSession(hub, conn, self.catalog, combined=path == "/stream")
            if path == "/stream":
                names = [n for n in query.get("streams", [""])[0].split("/") if n]
            else:
                # /ws/<stream> subscribes it; anything else (ccxt.pro's /ws/0, a listen key) nothing.
                name = path[len("/ws/"):]
                names = [name] if "@" in name else []
            session.start(names)
        return session


def _route(connection, request):
    """Refuse an upgrade to a path that speaks no protocol (404) before the handshake."""
    path = request.path.partition("?")[0]
    if protocol_of(path) is None:
        return connection.respond(HTTPStatus.NOT_FOUND, f"no WebSocket at {path}: /ws, /ws/<stream>, "
                                                        "/stream?streams=a/b or /ws-api/v3\n")
    return None
