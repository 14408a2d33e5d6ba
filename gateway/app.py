"""Assemble the gateway's HTTP application and serve it with granian.

`build_app` wires the route table (gateway/routes.py) to an `Exchange`
(gateway/model.py), the account store and the token issuer (xinfinity.accounts)
and returns the RSGI application; `make_server` gives the granian server that
runs it in the calling process's asyncio loop (services/gateway.py). Several
processes serving the same port share it: granian binds with SO_REUSEPORT.

What the gateway asks of `store` (xinfinity.accounts.store.AccountStore):
`register`, `login`, `create_api_key`, `api_keys`, `revoke_api_key`, `key`,
`advance_nonce`, `claim_signature` (gateway/binance's replay guard); of
`tokens` (xinfinity.accounts.tokens.TokenIssuer): `issue`, `verify`. All are
called synchronously on the event loop.
"""
from __future__ import annotations

from typing import Callable

from .auth import Authenticator
from .binance.app import BinanceApp
from .http import App
from .model import Exchange
from .routes import Handlers, routes
from .ws.app import WsApp
from .ws.streams import Catalog


def build_app(exchange: Exchange, store, tokens, config_gateway, now_ms: Callable[[], int] | None = None,
              market=None, hub=None) -> App:
    """The RSGI app. `config_gateway` is config.Gateway (max_body_bytes,
    nonce_window_ms, ack_timeout_s are read); `now_ms` is the clock of the
    nonce window, tokens and server_time (default: the exchange's); `market` the
    market data the Binance API's market endpoints read (None: they answer 503);
    `hub` the WebSocket hub (gateway/ws/hub.py) the WebSocket routes serve, its
    feed publishing into it (None: no WebSocket routes)."""
    now_ms = now_ms or exchange.now_ms
    authenticator = Authenticator(store, now_ms, config_gateway.nonce_window_ms, tokens)
    binance = BinanceApp(exchange, store, market, now_ms, config_gateway.max_body_bytes, config_gateway.ack_timeout_s)
    ws = None
    if hub is not None:
        # The REST checkers, so a WebSocket login follows the same rules as a signed request.
        ws = WsApp(hub, Catalog(exchange.assets, exchange.symbols), authenticator, binance.signatures, now_ms)
    return App(routes(Handlers(exchange, store, tokens, now_ms)), authenticator,
               max_body_bytes=config_gateway.max_body_bytes, ack_timeout_s=config_gateway.ack_timeout_s,
               mounts={"/api/v3": binance}, ws=ws)


def make_server(app: App, host: str, port: int, **granian_options):
    """A granian embedded server for `app` (not started); `await server.serve()`
    runs it, `server.stop()` ends it."""
    from granian.constants import Interfaces
    from granian.server.embed import Server
    options = dict(interface=Interfaces.RSGI, websockets=True, log_access=False)
    options.update(granian_options)
    return Server(app, address=host, port=port, **options)
