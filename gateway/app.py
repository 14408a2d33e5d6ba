"""Assemble the gateway's HTTP application and serve it with granian.

`build_app` wires the route table (gateway/routes.py) to an `Exchange`
(gateway/model.py), the account store and the token issuer (xinfinity.accounts)
and returns the RSGI application; `make_server` gives the granian server that
runs it in the calling process's asyncio loop (services/gateway.py). Several
processes serving the same port share it: granian binds with SO_REUSEPORT.
`build_ws_app` gives the WebSocket side (gateway/ws/app.py), served by the
`websockets` library on its own port (config gateway.ws_port) in the same
loop, with the HTTP app's checkers, so both follow one set of rules.

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
              market=None) -> App:
    """The RSGI app. `config_gateway` is config.Gateway (max_body_bytes,
    nonce_window_ms, ack_timeout_s, ws_port are read); `now_ms` is the clock of the
    nonce window, tokens and server_time (default: the exchange's); `market` the
    market data the Binance API's market endpoints read (None: they answer 503)."""
    now_ms = now_ms or exchange.now_ms
    authenticator = Authenticator(store, now_ms, config_gateway.nonce_window_ms, tokens)
    binance = BinanceApp(exchange, store, market, now_ms, config_gateway.max_body_bytes, config_gateway.ack_timeout_s)
    return App(routes(Handlers(exchange, store, tokens, now_ms)), authenticator,
               max_body_bytes=config_gateway.max_body_bytes, ack_timeout_s=config_gateway.ack_timeout_s,
               mounts={"/api/v3": binance}, ws_port=config_gateway.ws_port)


def build_ws_app(app: App, exchange: Exchange, hub, now_ms: Callable[[], int] | None = None) -> WsApp:
    """The WebSocket side beside `app` (build_app's): `hub` (gateway/ws/hub.py) is what its
    connections are served from, the feed publishing into it. It takes `app`'s checkers, so a
    WebSocket login follows the same rules (and caches) as a signed request."""
    return WsApp(hub, Catalog(exchange.assets, exchange.symbols), app.auth, app.mounts["/api/v3"].signatures,
                 now_ms or exchange.now_ms)


def make_server(app: App, host: str, port: int, **granian_options):
    """A granian embedded server for `app` (not started); `await server.serve()`
    runs it, `server.stop()` ends it."""
    from granian.constants import Interfaces
    from granian.server.embed import Server
    options = dict(interface=Interfaces.RSGI, websockets=False, log_access=False)
    options.update(granian_options)
    return Server(app, address=host, port=port, **options)
