"""Test doubles for the WebSocket side: a market fed by the test, and the world
serve_ws.py serves.

FakeMarket answers what the feed and the Binance REST API ask of
marketdata.book.MarketData (depth, best, ticker, trades, klines) from the
updates the test hands it, in integer units; its book is the diffs applied in
order, so `depth(...).last_update_id` is the u of the last diff.
"""
from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np

from tests.gateway.conftest import FakeAccountStore, FakeExchange, FakeTokenIssuer, Key
from xinfinity.accounts import signing
from xinfinity.accounts.permissions import READ, TRADE
from xinfinity.config import Gateway
from xinfinity.engine import records as R
from xinfinity.gateway.app import build_app, build_ws_app
from xinfinity.gateway.ws.feed import Feed
from xinfinity.gateway.ws.hub import Hub
from xinfinity.marketdata.types import DepthDiff, DepthSnapshot, Kline, MarketUpdate, PublicTrade, Ticker

DAY_MS = 86_400_000


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class FakeMarket:
    def __init__(self, symbols):
        self.books = {s.id: ({}, {}) for s in symbols}          # symbol -> (bids, asks): price -> qty
        self.last_update_id = {s.id: 0 for s in symbols}
        self.tape = {s.id: [] for s in symbols}                 # symbol -> PublicTrade, oldest first

    def apply(self, update: MarketUpdate) -> None:
        for d in update.diffs:
            assert d.first_update_id == self.last_update_id[d.symbol_id] + 1, "a test fed a gap"
            for levels, changes in zip(self.books[d.symbol_id], (d.bids, d.asks)):
                for price, qty in changes:
                    if qty:
                        levels[price] = qty
                    else:
                        levels.pop(price, None)
            self.last_update_id[d.symbol_id] = d.last_update_id
        for t in update.trades:
            self.tape[t.symbol_id].append(t)

    def depth(self, symbol_id: int, limit: int) -> DepthSnapshot:
        bids, asks = self.books[symbol_id]
        return DepthSnapshot(symbol_id, self.last_update_id[symbol_id], sorted(bids.items(), reverse=True)[:limit],
                             sorted(asks.items())[:limit])

    def best(self, symbol_id: int) -> tuple[int, int, int, int]:
        book = self.depth(symbol_id, 1)
        bid = book.bids[0] if book.bids else (0, 0)
        ask = book.asks[0] if book.asks else (0, 0)
        return (*bid, *ask)

    def trades(self, symbol_id: int, limit: int) -> list[PublicTrade]:
        return self.tape[symbol_id][-limit:] if limit > 0 else []

    def klines(self, symbol_id, interval, start_ms, end_ms, limit) -> list[Kline]:
        return []

    def ticker(self, symbol_id: int, now_ms: int) -> Ticker:
        day = [t for t in self.tape[symbol_id] if now_ms - DAY_MS < t.time_ms <= now_ms]
        prices = [t.price for t in day]
        return Ticker(symbol_id, now_ms - DAY_MS, now_ms, prices[0] if day else 0, max(prices, default=0),
                      min(prices, default=0), prices[-1] if day else 0, day[-1].qty if day else 0,
                      sum(t.qty for t in day), sum(t.quote_qty for t in day), len(day),
                      day[0].trade_id if day else -1, day[-1].trade_id if day else -1, *self.best(symbol_id))


def records(dtype: np.dtype, rows: list[dict]) -> np.ndarray:
    """Event records of `dtype` with the fields each row names (the others 0)."""
    out = np.zeros(len(rows), dtype)
    for i, row in enumerate(rows):
        for name, value in row.items():
            out[i][name] = value
    return out


def order_event(seq, order_id, user_id, side, status, filled=0, last_qty=0, trade_id=0, kind=R.CMD_PLACE) -> dict:
    """An ORDER_EVENT's fields: a limit GTC order of 1 BTC at 30000 USDT on BTC_USDT."""
    return dict(seq=seq, order_id=order_id, user_id=user_id, price=30_000_00, qty=10**8, filled_qty=filled,
                avg_price=30_000_00 if filled else 0, last_qty=last_qty, last_price=30_000_00 if last_qty else 0,
                trade_id=trade_id, symbol=0, kind=kind, status=status, side=side, order_type=R.TYPE_LIMIT,
                tif=R.TIF_GTC)


def market_update(update: dict) -> MarketUpdate:
    """A MarketUpdate from JSON: lists of each NamedTuple's fields, in order."""
    diffs = [DepthDiff(sid, first, last, t, [tuple(x) for x in bids], [tuple(x) for x in asks])
             for sid, first, last, t, bids, asks in update.get("diffs", [])]
    return MarketUpdate(diffs, [PublicTrade(*t) for t in update.get("trades", [])],
                        [Kline(*k) for k in update.get("klines", [])])


class WsWorld(NamedTuple):
    exchange: FakeExchange
    store: FakeAccountStore
    tokens: FakeTokenIssuer
    hub: Hub
    market: FakeMarket
    feed: Feed
    app: object         # the HTTP side
    ws_app: object      # the WebSocket side (gateway/ws/app.py's WsApp)
    keys: dict          # name -> Key
    cids: dict          # (user_id, order_id) -> client order id text, what the feed looks up


def make_ws_world(ws_port: int, send_buffer_bytes: int, ping_interval_s: float, abort_after_s: float) -> WsWorld:
    exchange = FakeExchange()
    store = FakeAccountStore(wall_ms)
    tokens = FakeTokenIssuer()
    hub = Hub(send_buffer_bytes=send_buffer_bytes, ping_interval_s=ping_interval_s, abort_after_s=abort_after_s,
              now_ms=wall_ms)
    market = FakeMarket(exchange.symbols)
    cids = {}                                       # (user, order) -> client order id text
    feed = Feed(hub, exchange.assets, exchange.symbols, market, lambda user_id, order_id: cids.get((user_id, order_id)))
    app = build_app(exchange, store, tokens, Gateway(ws_port=ws_port), now_ms=wall_ms, market=market)
    ws_app = build_ws_app(app, exchange, hub, now_ms=wall_ms)
    keys = {}
    for name, kind, permissions in (("alice", "ed25519", READ | TRADE), ("bob", "hmac", READ | TRADE),
                                    ("carol", "ed25519", TRADE)):
        user_id = store.register(name, f"{name}@example.com", "password-" + name)
        new = store.create_api_key(user_id, "", permissions, kind)
        secret = bytes.fromhex(new.secret_hex) if kind == signing.ED25519 else new.secret_hex.encode()
        keys[name] = Key(new.api_key, secret, kind, user_id)
    return WsWorld(exchange, store, tokens, hub, market, feed, app, ws_app, keys, cids)
