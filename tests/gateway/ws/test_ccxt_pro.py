"""ccxt.pro's binance class, unmodified, with its URLs pointed at the test server
(spec/API.md section 2, "Pointing CCXT at a local server"): the market watches
against the market the test feeds, the private ones with a key of the fake
account store (Ed25519 and HMAC)."""
from __future__ import annotations

import asyncio
import time

import ccxt.pro

from tests.gateway.ws.conftest import BTC_USDT, TIMEOUT_S
from tests.gateway.ws.fakes import order_event, wall_ms
from xinfinity.engine import records as R

USDT = 2


def exchange(server, name: str):
    k = server.keys[name]
    ex = ccxt.pro.binance({"apiKey": k["api_key"], "secret": k["ccxt_secret"], "options": {
        "fetchMarkets": {"types": ["spot"]}, "fetchMargins": False, "fetchCurrencies": False}})
    rest = f"http://127.0.0.1:{server.port}/api/v3"
    ex.urls["api"]["public"] = ex.urls["api"]["private"] = rest
    ex.urls["api"]["ws"]["spot"] = f"{server.url}/ws"
    ex.urls["api"]["ws"]["ws-api"]["spot"] = f"{server.url}/ws-api/v3"
    return ex


async def watch(server, key, call, feed):
    """Start the watch `call`, wait until the server has its subscriber, then feed it: `feed()`
    gives fresh data, (what, body) for /_test/<what>, fed again each second until the watch
    returns (ccxt may register its waiter after the first data came)."""
    task = asyncio.ensure_future(call)
    try:
        await server.wait_subscribers(key, 1)
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            await server.acontrol(*feed())
            done, _ = await asyncio.wait({task}, timeout=1.0)
            if done:
                return task.result()
            assert time.monotonic() < deadline, f"{key}: the watch never returned"
    finally:
        task.cancel()


def test_ccxt_pro_watches_the_order_book_trades_ticker_and_candles(server):
    async def run():
        ex = exchange(server, "alice")
        try:
            await ex.load_markets()
            assert {"BTC/USDT", "ETH/USDT"} <= set(ex.markets)
            # The book: a REST snapshot (the Binance API's /depth) merged with the @depth@100ms diffs.
            first = server.diff(BTC_USDT, [(29_000_00, 2 * 10**8), (28_999_00, 10**8)], [(31_000_00, 3 * 10**8)])
            await server.acontrol("market", {"updates": [{"diffs": [first]}]})
            book = await watch(server, ["raw", "btcusdt@depth@100ms"], ex.watch_order_book("BTC/USDT"), lambda: (
                "market", {"updates": [{"diffs": [server.diff(BTC_USDT, [(29_000_00, 0)], [])]}]}))
            deadline = time.monotonic() + TIMEOUT_S
            while book["nonce"] != server.update_ids[BTC_USDT]:     # the snapshot may predate the last diff
                assert time.monotonic() < deadline
                book = await asyncio.wait_for(ex.watch_order_book("BTC/USDT"), TIMEOUT_S)
            # (other tests of the session have their levels on this book too)
            assert [28999.0, 1.0] in book["bids"] and 29000.0 not in [p for p, _ in book["bids"]]
            assert [31000.0, 3.0] in book["asks"]
            next_diff = server.diff(BTC_USDT, [(28_999_00, 0), (29_500_00, 5 * 10**7)], [])
            await server.acontrol("market", {"updates": [{"diffs": [next_diff]}]})
            book = await asyncio.wait_for(ex.watch_order_book("BTC/USDT"), TIMEOUT_S)
            assert book["nonce"] == next_diff[2] and [29500.0, 0.5] in book["bids"]
            assert 28999.0 not in [p for p, _ in book["bids"]]
            rest = await ex.fetch_order_book("BTC/USDT", 1000)      # the Binance API's /depth, now
            assert (rest["nonce"], rest["bids"], rest["asks"]) == (book["nonce"], book["bids"], book["asks"])

            now = wall_ms()
            fed = []

            def trade(price, qty):
                fed.append(server.trade(BTC_USDT, price, qty, now))
                return "market", {"updates": [{"trades": [fed[-1]]}], "now_ms": now}

            trades = await watch(server, ["raw", "btcusdt@trade"], ex.watch_trades("BTC/USDT"),
                                 lambda: trade(29_750_50, 12_500_000))
            assert (trades[-1]["id"], trades[-1]["price"], trades[-1]["amount"], trades[-1]["timestamp"],
                    trades[-1]["side"]) == (str(fed[-1][0]), 29750.5, 0.125, now, "buy")

            ticker = await watch(server, ["raw", "btcusdt@miniTicker"], ex.watch_ticker("BTC/USDT"),
                                 lambda: trade(29_800_00, 10**8))
            assert ticker["symbol"] == "BTC/USDT" and ticker["last"] == 29800.0 and ticker["high"] >= 29800.0

            open_ms = now // 60_000 * 60_000
            kline = [BTC_USDT, "1m", open_ms, open_ms + 59_999, 29_750_50, 29_800_00, 29_750_50, 29_800_00,
                     112_500_000, 33_518_812_500, 2, 0, 0, 1, 2, False]
            candles = await watch(server, ["raw", "btcusdt@kline_1m"], ex.watch_ohlcv("BTC/USDT", "1m"),
                                  lambda: ("market", {"updates": [{"klines": [kline]}], "now_ms": now}))
            assert candles[-1] == [open_ms, 29750.5, 29800.0, 29750.5, 29800.0, 1.125]
        finally:
            await ex.close()
    asyncio.run(run())


def test_ccxt_pro_watches_orders_and_balance_through_the_websocket_api(server):
    """watch_orders and watch_balance subscribe on /ws-api/v3 with userDataStream.subscribe.signature;
    Alice signs with Ed25519 (a PEM secret), Bob with HMAC."""
    async def run():
        for name in ("alice", "bob"):
            user_id = server.keys[name]["user_id"]
            ex = exchange(server, name)
            try:
                await ex.load_markets()
                order_ids = []

                def placed():
                    seq, order_id = next(server.seqs), next(server.order_ids)
                    order_ids.append(order_id)
                    server.control("cid", {"user_id": user_id, "order_id": order_id, "cid": f"{name}-{order_id}"})
                    return "private", {"ts_ns": {seq: time.time_ns()}, "orders": [
                        order_event(seq, order_id, user_id, R.SIDE_BUY, R.ST_ACCEPTED)]}

                orders = await watch(server, ["user", user_id, 0], ex.watch_orders("BTC/USDT"), placed)
                o = orders[-1]
                assert (o["id"], o["clientOrderId"], o["symbol"], o["side"], o["type"], o["status"], o["price"],
                        o["amount"], o["filled"]) == (str(order_ids[-1]), f"{name}-{order_ids[-1]}", "BTC/USDT",
                                                      "buy", "limit", "open", 30000.0, 1.0, 0.0)

                def locked():
                    seq = next(server.seqs)
                    return "private", {"ts_ns": {seq: time.time_ns()}, "balances": [
                        dict(seq=seq, user_id=user_id, amount=10**6, avail=123 * 10**6, frozen=30_000 * 10**6,
                             asset=USDT, op=R.OP_LOCK)]}

                balance = await watch(server, ["user", user_id, 0], ex.watch_balance(), locked)
                assert (balance["USDT"]["free"], balance["USDT"]["used"]) == (123.0, 30000.0)
            finally:
                await ex.close()
    asyncio.run(run())
