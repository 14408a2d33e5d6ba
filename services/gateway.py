"""A gateway worker process: HTTP and WebSocket in, commands into its ring, answers and streams out.

A thin shell: an asyncio loop running an embedded granian server for HTTP
and the `websockets` library's server for the streams on their own port
(gateway/ws/app.py); every worker binds the same two ports, the kernel
spreading connections over them by SO_REUSEPORT. The routes
(gateway/routes.py) talk to the pipeline through gateway/link.py.
Settlement's push stream feeds the worker's market data and its WebSocket
feed (gateway/push.py). Each step runs the loop for a slice and beats the
heartbeat between slices. On the supervisor's stop it stops taking
connections (WebSocket ones are closed, 1001 going away), answers what is
in flight, closes its command ring (UBSCore drains and the close travels
down the pipeline), and ends once settlement has closed its ack ring.
Its metrics rows and WebSocket gauges (docs/METRICS.md) are its own: one
writer each; the gauges are set from the hub's counts once a slice.
"""
from __future__ import annotations

import asyncio
import pathlib

import uvloop

from ..accounts.cli import accounts_db
from ..accounts.store import AccountStore
from ..accounts.tokens import TokenIssuer, load_or_create_secret
from ..config import Config
from ..gateway.app import build_app, build_ws_app, make_server
from ..gateway.link import Link
from ..gateway.push import PushStream
from ..gateway.ws.feed import Feed
from ..gateway.ws.hub import Hub
from ..marketdata.book import MarketData
from ..marketdata.history import WithHistory
from ..runtime.control import STOP
from ..runtime.wiring import Wiring
from ..storage.audit import open_audit_store
from ..storage.order_store import OrderStore

SLICE_S = 0.05          # the loop runs this long per step (the heartbeat's period)
JWT_SECRET = "jwt.secret"


def symbol_assets(cfg: Config) -> dict[int, tuple[int, int]]:
    return {s.id: (s.base_asset_id, s.quote_asset_id) for s in cfg.symbols}


class GatewayWorker:
    def __init__(self, wiring: Wiring, name: str, index: int, cfg: Config, data_dir: pathlib.Path,
                 orders_db: pathlib.Path, board=None):
        self.wiring = wiring
        self.loop = uvloop.new_event_loop()
        asyncio.set_event_loop(self.loop)
        g = cfg.gateway
        store = OrderStore(orders_db, symbol_assets(cfg), checkpoints=False)
        self.link = Link(wiring, name, index, store, cfg.assets, cfg.symbols, g.ack_timeout_s, board, cfg.capacity)
        accounts = AccountStore(accounts_db(data_dir), checkpoints=False)
        tokens = TokenIssuer(load_or_create_secret(data_dir / JWT_SECRET), g.jwt_ttl_s)
        market, hub = MarketData(cfg.symbols), Hub()
        feed = Feed(hub, cfg.assets, cfg.symbols, market, client_order_id=lambda user_id, order_id: (
            store.cid_text(user_id, row.cid_hash) if (row := store.order(order_id)) is not None else None))
        self.push = PushStream(store, market, feed)
        self.link.on_push = self.push.take
        app = build_app(self.link, accounts, tokens, g, market=WithHistory(market, open_audit_store(cfg, data_dir)))
        self.name, self.hub, self.metrics = name, hub, wiring.metrics
        self._observe(app)
        self.server = make_server(app, g.host, g.port, log_enabled=False)
        self.ws_app = build_ws_app(app, self.link, hub)
        self.ws_address = (g.host, g.ws_port)
        self.ws_server = None
        self.ws_closed = None               # the WebSocket server's wait_closed, once stopping
        self.serving = None
        self.stopping = False
        self.done = False

    def _observe(self, app) -> None:
        """Record into this worker's metrics rows (runtime/metrics_layout.py): a request's decoding on
        both REST surfaces (one row), the pushes' age once applied (the link records the rest)."""
        metrics, name = self.metrics, self.name
        if not metrics.on:
            return
        row = metrics.row("gateway.request", name)
        if row >= 0:
            app.observe_decoded = app.mounts["/api/v3"].observe_decoded = lambda ns: metrics.value(row, ns)
        row_push = metrics.row("push", name)
        if row_push >= 0:
            self.push.observe_applied = lambda ts: metrics.since(row_push, ts)

    def _set_ws_gauges(self) -> None:
        """The hub's figures as this worker's gauges (runtime/metrics_layout.WS_GAUGES), once a slice."""
        hub = self.hub
        for gauge, v in (("ws.connections", len(hub.connections)), ("ws.subscriptions", hub.subscriptions),
                         ("ws.drops", hub.slow_consumers), ("ws.sent", hub.sent)):
            self.metrics.set(f"{gauge}@{self.name}", v)

    async def _listen_ws(self):
        return await self.ws_app.serve(*self.ws_address)

    def step(self) -> bool:
        if self.serving is None:            # the go: serve
            self.push.load()
            self.link.start(self.loop)
            # Listening at once (a port taken fails here, saying so), as granian does below.
            self.ws_server = self.loop.run_until_complete(self._listen_ws())
            self.serving = self.loop.create_task(self.server.serve())
        self.loop.run_until_complete(asyncio.sleep(SLICE_S))
        self._set_ws_gauges()
        if self.serving.done() and not self.stopping:
            self.serving.result()           # the server failed (port taken...): say why
            raise RuntimeError("the HTTP server ended on its own")
        if not self.stopping and self.wiring.control.get(STOP):
            self.stopping = True
            self.server.stop()
            self.ws_server.close()
            self.ws_closed = self.loop.create_task(self.ws_server.wait_closed())
        if self.stopping and self.serving.done() and self.ws_closed.done() and not self.link.pending:
            self.link.close()
        if self.link.closed and self.link.answered_all:
            self.loop.close()
            self.done = True
        return False
