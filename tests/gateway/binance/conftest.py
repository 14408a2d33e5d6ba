"""Test doubles for the Binance-compatible API: FakeMarketData, deterministic
seeds (shared with serve_binance.py, so a test in another process knows what
the server holds), and a client that signs Binance requests and drives the
RSGI app in-process.

FakeMarketData answers marketdata.book.MarketData's reads with its semantics
(trades oldest first, the newest `limit`; klines Binance's selection; ticker
the rolling 24 h of the trades) over lists a test fills, and records calls.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from typing import NamedTuple
from urllib.parse import quote, urlencode

import msgspec
import nacl.signing
import pytest

from xinfinity.accounts import signing
from xinfinity.accounts.permissions import READ, TRADE
from xinfinity.config import DEFAULT_SYMBOLS
from xinfinity.gateway import model
from xinfinity.marketdata.types import DepthSnapshot, Kline, PublicTrade, Ticker
from tests.gateway.conftest import (BTC, BTC_USDT, T0_MS, USDT, FakeHeaders, FakeProto, FakeScope, World,
                                    make_world)

DAY_MS = 86_400_000
BTC_UNIT, USDT_UNIT, PRICE_UNIT = 10**8, 10**6, 10**2


class FakeMarketData:
    def __init__(self, symbols):
        self.books = {s.id: ([], []) for s in symbols}      # bids best first, asks best first: (price, qty)
        self.tapes = {s.id: [] for s in symbols}            # PublicTrade, oldest first
        self.candles: dict[tuple[int, str], list[Kline]] = {}
        self.update_id = 0
        self.calls: list[tuple] = []

    def depth(self, symbol_id, limit):
        self.calls.append(("depth", symbol_id, limit))
        bids, asks = self.books[symbol_id]
        return DepthSnapshot(symbol_id, self.update_id, bids[:limit], asks[:limit])

    def trades(self, symbol_id, limit):
        self.calls.append(("trades", symbol_id, limit))
        return self.tapes[symbol_id][-limit:]

    def klines(self, symbol_id, interval, start_ms, end_ms, limit):
        self.calls.append(("klines", symbol_id, interval, start_ms, end_ms, limit))
        chosen = [k for k in self.candles.get((symbol_id, interval), [])
                  if (start_ms is None or k.open_time_ms >= start_ms) and (end_ms is None or k.open_time_ms <= end_ms)]
        return chosen[:limit] if start_ms is not None else chosen[-limit:]

    def ticker(self, symbol_id, now_ms):
        self.calls.append(("ticker", symbol_id, now_ms))
        day = [t for t in self.tapes[symbol_id] if now_ms - DAY_MS < t.time_ms <= now_ms]
        best = self.best(symbol_id)
        if not day:
            return Ticker(symbol_id, now_ms - DAY_MS, now_ms, 0, 0, 0, 0, 0, 0, 0, 0, -1, -1, *best)
        return Ticker(symbol_id, now_ms - DAY_MS, now_ms, day[0].price, max(t.price for t in day),
                      min(t.price for t in day), day[-1].price, day[-1].qty, sum(t.qty for t in day),
                      sum(t.quote_qty for t in day), len(day), day[0].trade_id, day[-1].trade_id, *best)

    def best(self, symbol_id):
        bids, asks = self.books[symbol_id]
        return (*(bids[0] if bids else (0, 0)), *(asks[0] if asks else (0, 0)))


def cost(price: int, qty: int) -> int:
    """BTC_USDT's quote units of qty at price (price_decimals 2, BTC 8, USDT 6)."""
    return price * qty * USDT_UNIT // (PRICE_UNIT * BTC_UNIT)


def seed_market(market: FakeMarketData, t0_ms: int) -> FakeMarketData:
    """A BTC_USDT book, five trades in the last hour before t0_ms and their 1m candles; ETH_USDT stays empty."""
    market.update_id = 4242
    market.books[BTC_USDT] = ([(2_999_000, 50_000_000), (2_998_000, 120_000_000)],
                              [(3_001_000, 40_000_000), (3_002_000, 200_000_000), (3_010_000, 10**9)])
    minute = t0_ms // 60_000 * 60_000
    rows = [(3_000_000, 10_000_000, True), (3_000_500, 2_500_000, False), (2_999_900, 1_000_000, True),
            (3_001_000, 30_000_000, False), (3_000_100, 123_456, True)]
    market.tapes[BTC_USDT] = [PublicTrade(100 + i, BTC_USDT, p, q, cost(p, q), minute - (5 - i) * 60_000 + 7_000 * i,
                                          maker, 900 + i, 800 + i, 70 + i) for i, (p, q, maker) in enumerate(rows)]
    market.candles[(BTC_USDT, "1m")] = [
        Kline(BTC_USDT, "1m", t.time_ms // 60_000 * 60_000, t.time_ms // 60_000 * 60_000 + 59_999, t.price, t.price,
              t.price, t.price, t.qty, t.quote_qty, 1, 0 if t.buyer_is_maker else t.qty,
              0 if t.buyer_is_maker else t.quote_qty, t.trade_id, t.trade_id, True)
        for t in market.tapes[BTC_USDT]]
    return market


def seed_user_trades(exchange, user_id: int, t0_ms: int) -> None:
    """Three trades of `user_id` on BTC_USDT (order 7: two fills as maker; order 8: a taker sell)."""
    fee = 1000      # 0.00001 BTC / USDT units, whatever the asset: the test reads it back
    exchange.trade_list += [
        model.Trade(11, 7, user_id, BTC_USDT, "BUY", 2_990_000, 20_000_000, cost(2_990_000, 20_000_000), fee, BTC,
                    "MAKER", t0_ms - 30_000, 50),
        model.Trade(12, 7, user_id, BTC_USDT, "BUY", 2_990_000, 5_000_000, cost(2_990_000, 5_000_000), fee, BTC,
                    "MAKER", t0_ms - 20_000, 51),
        model.Trade(13, 8, user_id, BTC_USDT, "SELL", 3_001_000, 1_000_000, cost(3_001_000, 1_000_000), fee, USDT,
                    "TAKER", t0_ms - 10_000, 52),
    ]


# -- a Binance client over the in-process app ------------------------------------------------
class BKey(NamedTuple):
    """A key as a Binance client holds it: an HMAC key's secret text (hex), or the Ed25519 seed."""
    api_key: str
    kind: str
    secret: str | bytes
    user_id: int


def sign(key: BKey, payload: bytes) -> str:
    """The signature parameter's value, percent-encoded as clients send it."""
    if key.kind == signing.HMAC:
        return hmac.new(key.secret.encode(), payload, hashlib.sha256).hexdigest()
    return quote(base64.b64encode(nacl.signing.SigningKey(key.secret).sign(payload).signature).decode(), safe="")


class Reply(NamedTuple):
    status: int
    json: object
    headers: list

    @property
    def code(self):
        return self.json["code"]


class BinanceClient:
    """Calls the app as granian would. `query` and `form` are the parameters of the
    query string and of the form body (default: a GET's or DELETE's go in the query,
    a POST's in the body). `key=` adds timestamp and recvWindow to the form if there
    is one, else to the query, and appends the signature over query + body to the
    same part, as CCXT does. The timestamp, unless `ts` is given, is the server's
    clock less a counter: each signed request is a new one, not a replay, while
    the fakes' clock stands still."""

    def __init__(self, app, clock):
        self.app = app
        self.clock = clock          # () -> ms, what the server's clock reads
        self.signed = 0

    def call(self, method, path, params=None, *, query=None, form=None, key: BKey | None = None, ts=None,
             recv_window=None, headers=None, body: bytes | None = None,
             content_type="application/x-www-form-urlencoded", signature: str | None = None) -> Reply:
        if params is not None:
            if method in ("GET", "DELETE"):
                query = {**params, **(query or {})}
            else:
                form = {**params, **(form or {})}
        query, form = dict(query or {}), (None if form is None else dict(form))
        if key is not None:
            signed = form if form is not None else query
            if recv_window is not None:
                signed["recvWindow"] = recv_window
            self.signed += 1
            signed["timestamp"] = self.clock() - self.signed % 4000 if ts is None else ts
        query_text = urlencode(query)
        raw = body if body is not None else urlencode(form).encode() if form is not None else b""
        h = {}
        if key is not None:
            h["x-mbx-apikey"] = key.api_key
            sig = signature if signature is not None else sign(key, query_text.encode() + raw)
            if form:
                raw += b"&signature=" + sig.encode()
            else:
                query_text = f"{query_text}&signature={sig}" if query_text else f"signature={sig}"
        if raw:
            h["content-type"] = content_type
            h["content-length"] = str(len(raw))
        h.update(headers or {})
        proto = FakeProto([raw])
        asyncio.run(self.app.__rsgi__(FakeScope(method, path, query_text, FakeHeaders(h)), proto))
        return Reply(proto.status, msgspec.json.decode(proto.body), proto.headers)


class BWorld(NamedTuple):
    world: World
    market: FakeMarketData
    client: BinanceClient
    hmac_key: BKey          # alice's, READ|TRADE
    ed_key: BKey            # alice's, READ|TRADE
    read_key: BKey          # alice's, READ only (HMAC)

    @property
    def exchange(self):
        return self.world.exchange

    @property
    def store(self):
        return self.world.store


def new_key(world: World, user_id: int, permissions: int, kind: str) -> BKey:
    new = world.store.create_api_key(user_id, "", permissions, kind)
    secret = new.secret_hex if kind == signing.HMAC else signing.seed_of_pem(new.secret_pem)
    return BKey(new.api_key, kind, secret, user_id)


def make_bworld(with_market: bool = True) -> BWorld:
    """A world whose Binance API reads a seeded FakeMarketData (with_market False: none)."""
    market = seed_market(FakeMarketData(DEFAULT_SYMBOLS), T0_MS) if with_market else None
    w = make_world(market=market)
    alice = w.alice.user_id
    return BWorld(w, market, BinanceClient(w.app, lambda: w.exchange.clock_ms),
                  new_key(w, alice, READ | TRADE, signing.HMAC), new_key(w, alice, READ | TRADE, signing.ED25519),
                  new_key(w, alice, READ, signing.HMAC))


@pytest.fixture
def bw() -> BWorld:
    return make_bworld()

