"""CCXT's binance class and ccxt.pro, unmodified, against a real `xinf serve`:
markets, book, trades, candles, ticker, orders, balances and own trades over
REST; book, trades and the user's orders over WebSocket; everything they read
checked against what the orders made; then a restart rebuilds the market data
as it was."""
from __future__ import annotations

import asyncio
import json
import time

import ccxt
import ccxt.pro
import pytest

from tests.integration.serving import Server, free_port, xinf

pytestmark = pytest.mark.slow
TIMEOUT_S = 60
OPTIONS = {"fetchMarkets": {"types": ["spot"]}, "fetchMargins": False, "fetchCurrencies": False}


def key_json(data, user, *extra) -> dict:
    r = xinf("apikey", "create", "--user", user, "--json", "--data-dir", data, *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def point(ex, srv):
    """REST at the server's HTTP port, ccxt.pro's WebSocket URLs at its WebSocket port."""
    rest = f"{srv.url}/api/v3"
    ex.urls["api"]["public"] = ex.urls["api"]["private"] = rest
    if "ws" not in ex.urls["api"]:      # the REST class
        return ex
    ex.urls["api"]["ws"]["spot"] = f"{srv.ws_url}/ws"
    ex.urls["api"]["ws"]["ws-api"]["spot"] = f"{srv.ws_url}/ws-api/v3"
    return ex


def rest_client(srv, key: dict):
    secret = key.get("secret") or key["secret_pem"]
    return point(ccxt.binance({"apiKey": key["api_key"], "secret": secret, "options": dict(OPTIONS)}), srv)


def pro_client(srv, key: dict):
    secret = key.get("secret") or key["secret_pem"]
    return point(ccxt.pro.binance({"apiKey": key["api_key"], "secret": secret, "options": dict(OPTIONS)}), srv)


async def until(call, done, what: str):
    """Await `call()` again until `done(result)`: a watch returns on every update."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        result = await asyncio.wait_for(call(), TIMEOUT_S)
        if done(result):
            return result
        assert time.monotonic() < deadline, f"{what}: last seen {result}"


def test_ccxt_and_ccxt_pro_trade_end_to_end_and_a_restart_keeps_the_market(tmp_path):
    data = tmp_path / "data"
    port = free_port()
    srv = Server(data, port)
    try:
        alice, bob = key_json(data, "alice"), key_json(data, "bob", "--hmac")
        for user, asset, amount in (("alice", "USDT", "20000"), ("bob", "BTC", "1.5")):
            r = xinf("deposit", "--user", user, "--asset", asset, "--amount", amount, "--data-dir", data)
            assert r.returncode == 0, r.stderr + r.stdout
        a, b = rest_client(srv, alice), rest_client(srv, bob)
        markets = a.load_markets()
        assert {"BTC/USDT", "ETH/USDT"} <= set(markets)
        assert a.fetch_balance()["USDT"]["free"] == 20000.0

        buy = a.create_order("BTC/USDT", "limit", "buy", 0.5, 20000)
        assert buy["status"] == "open"
        book = a.fetch_order_book("BTC/USDT")
        assert book["bids"] == [[20000.0, 0.5]] and book["asks"] == []

        async def watch_the_trade():
            pa, pb = pro_client(srv, alice), pro_client(srv, bob)
            try:
                await pa.load_markets()
                await pb.load_markets()
                book_task = asyncio.ensure_future(until(
                    lambda: pa.watch_order_book("BTC/USDT"), lambda ob: ob["bids"][:1] == [[20000.0, 0.3]],
                    "book after the trade"))
                trades_task = asyncio.ensure_future(pa.watch_trades("BTC/USDT"))
                orders_task = asyncio.ensure_future(until(
                    lambda: pb.watch_orders("BTC/USDT"), lambda os: any(o["status"] == "closed" for o in os),
                    "bob's order filled"))
                await asyncio.sleep(2)          # the subscriptions reach the server before the trade
                sell = await asyncio.to_thread(b.create_order, "BTC/USDT", "limit", "sell", 0.2, 19000)
                assert sell["status"] == "closed" and sell["filled"] == 0.2
                book, trades, orders = await asyncio.wait_for(
                    asyncio.gather(book_task, trades_task, orders_task), TIMEOUT_S)
                return sell, book, trades, orders
            finally:
                await pa.close()
                await pb.close()

        sell, pro_book, pro_trades, pro_orders = asyncio.run(watch_the_trade())
        assert [(t["price"], t["amount"], t["side"]) for t in pro_trades] == [(20000.0, 0.2, "sell")]
        assert [o["id"] for o in pro_orders if o["status"] == "closed"] == [sell["id"]]

        trades = a.fetch_trades("BTC/USDT")
        assert [(t["price"], t["amount"], t["side"]) for t in trades] == [(20000.0, 0.2, "sell")]
        (candle,) = a.fetch_ohlcv("BTC/USDT", "1m")
        assert candle[1:] == [20000.0, 20000.0, 20000.0, 20000.0, 0.2]
        ticker = a.fetch_ticker("BTC/USDT")
        assert (ticker["last"], ticker["baseVolume"], ticker["bid"]) == (20000.0, 0.2, 20000.0)
        assert a.fetch_order_book("BTC/USDT")["bids"] == [[20000.0, 0.3]] == pro_book["bids"][:1]
        mine = a.fetch_my_trades("BTC/USDT")
        assert [(t["price"], t["amount"], t["takerOrMaker"]) for t in mine] == [(20000.0, 0.2, "maker")]
        order = a.fetch_order(buy["id"], "BTC/USDT")
        assert (order["status"], order["filled"], order["remaining"]) == ("open", 0.2, 0.3)
        # Alice paid 4000 USDT for 0.2 BTC less the 0.1% maker fee, 0.3 BTC's worth still locked.
        bal = a.fetch_balance()
        assert (bal["BTC"]["free"], bal["USDT"]["free"], bal["USDT"]["used"]) == (0.1998, 10000.0, 6000.0)
        before = (a.fetch_order_book("BTC/USDT"), trades, a.fetch_ohlcv("BTC/USDT", "1m"))
    finally:
        assert srv.stop() == 0, srv.output()

    srv = Server(data, port)
    try:
        a = rest_client(srv, alice)
        a.load_markets()
        after = (a.fetch_order_book("BTC/USDT"), a.fetch_trades("BTC/USDT"), a.fetch_ohlcv("BTC/USDT", "1m"))
        assert [after[0]["bids"], after[0]["asks"], after[1], after[2]] == \
            [before[0]["bids"], before[0]["asks"], before[1], before[2]]
        assert after[0]["nonce"] >= before[0]["nonce"]
        a.cancel_order(buy["id"], "BTC/USDT")
        assert a.fetch_order_book("BTC/USDT")["bids"] == []
    finally:
        assert srv.stop() == 0, srv.output()
