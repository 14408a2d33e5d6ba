"""The WebSocket side of the gateway's RSGI app: which protocol a path speaks,
and one connection's life.

    /ws                      0xInfinity (gateway/ws/zxinf.py); ?token=<JWT> logs in
    /ws/<anything>           Binance raw streams (gateway/ws/binance.py)
    /stream?streams=a/b      Binance combined streams
    /ws-api/v3               Binance WebSocket API: the user data stream
    anything else            HTTP 404 to the upgrade

A connection: the upgrade is accepted, the hub registers it, one task writes
its send queue (the only sender) and one reads the client's messages into
its session; when either ends (the client left, the hub closed it, a send
failed) both end, its subscriptions go, and the socket closes. A session's
handler runs on the event loop and never waits: it only queues replies.
"""
from __future__ import annotations

import asyncio
import sys
import traceback
from typing import Callable
from urllib.parse import parse_qs

from granian.rsgi import ProtocolClosed, ProtocolError, WebsocketMessageType

from ..api import ApiError
from . import binance, zxinf
from .hub import Hub
from .streams import Catalog

MAX_MESSAGE_BYTES = 65536           # a client message above this is refused unread (the connection ends)


class WsApp:
    def __init__(self, hub: Hub, catalog: Catalog, authenticator, signatures, now_ms: Callable[[], int]):
        """authenticator: gateway/auth.py's (0xInfinity logins, tokens); signatures:
        gateway/binance/auth.py's (Binance user data subscriptions); now_ms: the server time."""
        self.hub, self.catalog, self.auth, self.signatures, self.now_ms = (hub, catalog, authenticator, signatures,
                                                                           now_ms)

    async def __call__(self, scope, proto) -> None:
        path = scope.path
        if path == "/ws":
            protocol = zxinf.PROTOCOL
        elif path.startswith("/ws/") or path == "/stream":
            protocol = binance.STREAMS
        elif path == "/ws-api/v3":
            protocol = binance.API
        else:
            proto.close(404)
            return
        try:
            transport = await proto.accept()
        except (ProtocolClosed, ProtocolError):     # the client left during the handshake
            return
        hub = self.hub
        conn = hub.connect(protocol)
        conn.writer = asyncio.ensure_future(conn.write(transport))
        tasks = [conn.writer]
        try:
            session = self._session(conn, path, parse_qs(scope.query_string))
            tasks.append(asyncio.ensure_future(self._read(transport, session)))
            # The socket closes when the last reference to the transport goes: the tasks hold it.
            del transport
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hub.disconnect(conn)
            for task in tasks:
                task.cancel()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            conn.writer = None          # the task held its connection, which held the task
            proto.close()
        for error in outcomes:
            # A send to a client that has gone fails with ProtocolClosed: the usual end, not a fault.
            if isinstance(error, Exception) and not isinstance(error, (ProtocolClosed, ProtocolError)):
                print(f"gateway ws: {path}: connection {conn.id} failed:", file=sys.stderr)
                traceback.print_exception(error, file=sys.stderr)

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

    async def _read(self, transport, session) -> None:
        """The client's messages into its session, until it closes."""
        while True:
            try:
                message = await transport.receive()
            except (ProtocolClosed, ProtocolError):
                return
            if message.kind == WebsocketMessageType.close:
                return
            data = message.data
            size = len(data) if isinstance(data, bytes) else len(data.encode())
            if size > MAX_MESSAGE_BYTES:
                session.hub.close(session.conn, f"a message of {size} bytes is above the limit of "
                                                f"{MAX_MESSAGE_BYTES}")
                return
            session.on_message(data)
