"""The 0xInfinity protocol at /ws over a real granian server (spec/API.md section 1)."""
from __future__ import annotations

import asyncio
import json
import random
import time

import websockets

from tests.gateway.ws.conftest import BTC_USDT, connect, quiet, recv, recv_until
from tests.gateway.ws.fakes import order_event, wall_ms
from xinfinity.engine import records as R
from xinfinity.engine.money import format_decimal

BTC, USDT = 1, 2


async def subscribe(ws, topics: list[str]) -> dict:
    await ws.send(json.dumps({"op": "subscribe", "args": topics}))
    return await recv(ws)


def test_a_connection_is_told_connected_then_subscribes_pings_and_unsubscribes(server):
    async def run():
        async with connect(server, "/ws") as ws:
            assert await recv(ws) == {"type": "connected", "user_id": 0}
            topics = ["market.depth.BTC_USDT", "market.kline.1m.BTC_USDT", "market.ticker.ETH_USDT"]
            assert await subscribe(ws, topics) == {"type": "subscribed", "topics": topics}
            await server.wait_subscribers("market.kline.1m.BTC_USDT", 1)
            await ws.send('{"op":"ping"}')
            assert await recv(ws) == {"type": "pong"}
            await ws.send(json.dumps({"op": "unsubscribe", "args": ["market.kline.1m.BTC_USDT"]}))
            assert await recv(ws) == {"type": "unsubscribed", "topics": ["market.kline.1m.BTC_USDT"]}
            await server.wait_subscribers("market.kline.1m.BTC_USDT", 0)
            assert (await server.acontrol("stats", {"key": "market.depth.BTC_USDT"}))["subscribers"] == 1
        await server.wait_subscribers("market.depth.BTC_USDT", 0)
    asyncio.run(run())


def test_every_refused_request_is_answered_with_an_error_naming_what_was_wrong(server):
    cases = [
        ({"op": "subscribe", "args": ["market.depth.DOGE_USDT"]}, 1001, "symbol DOGE_USDT is unknown"),
        ({"op": "subscribe", "args": ["market.kline.7m.BTC_USDT"]}, 1001, "interval"),
        ({"op": "subscribe", "args": ["market.depth.BTC_USDT", "nonsense"]}, 1001, "'nonsense' is unknown"),
        ({"op": "subscribe", "args": ["order.update"]}, 2001, "log in first"),
        ({"op": "subscribe", "args": "market.depth.BTC_USDT"}, 1001, "args must be a list"),
        ({"op": "unsubscribe", "args": ["market.trade.BTC_USDT"]}, 1001, "not subscribed"),
        ({"op": "dance"}, 1001, "op 'dance' is unknown"),
        ({"op": "login", "args": ["ZXINF v1.nope"]}, 2002, "login refused"),
    ]

    async def run():
        async with connect(server, "/ws") as ws:
            await recv(ws)
            for request, code, words in cases:
                await ws.send(json.dumps(request))
                answer = await recv(ws)
                assert answer["type"] == "error" and answer["code"] == code and words in answer["msg"], (request,
                                                                                                         answer)
            await ws.send("{not json")
            answer = await recv(ws)
            assert answer["code"] == 1001 and "not JSON" in answer["msg"]
            # A refused subscribe subscribed nothing, not even its valid topics.
            assert await quiet(ws) == []
            assert (await server.acontrol("stats", {"key": "market.depth.BTC_USDT"}))["subscribers"] == 0
    asyncio.run(run())


def test_depth_diffs_arrive_contiguous_and_equal_to_what_was_fed(server):
    seed = random.randrange(2**32)
    print("seed", seed)
    rng = random.Random(seed)

    def levels():
        return [(rng.randrange(29_000_00, 31_000_00), rng.randrange(0, 500) * 100) for _ in range(rng.randrange(4))]

    async def run():
        async with connect(server, "/ws") as ws:
            await recv(ws)
            await subscribe(ws, ["market.depth.BTC_USDT"])
            fed = []
            for _call in range(4):
                updates = [{"diffs": [server.diff(BTC_USDT, levels(), levels(), 1_700_000_000_000 + len(fed))]}
                           for _ in range(5)]
                fed += [u["diffs"][0] for u in updates]
                await server.acontrol("market", {"updates": updates})
            got = [await recv(ws) for _ in fed]
        previous_u = fed[0][1] - 1
        for diff, message in zip(fed, got):
            _symbol, first, last, time_ms, bids, asks = diff
            assert message == {"type": "depthUpdate", "s": "BTC_USDT", "U": first, "u": last, "E": time_ms,
                               "b": [[format_decimal(p, 2), format_decimal(q, 8, 6)] for p, q in bids],
                               "a": [[format_decimal(p, 2), format_decimal(q, 8, 6)] for p, q in asks]}
            assert message["U"] == previous_u + 1
            previous_u = message["u"]
    asyncio.run(run())


def test_a_token_logs_in_at_the_upgrade_and_a_bad_one_is_refused_and_closed(server):
    async def run():
        alice = server.keys["alice"]["user_id"]
        async with connect(server, f"/ws?token={server.token}") as ws:
            assert await recv(ws) == {"type": "connected", "user_id": alice}
            assert (await subscribe(ws, ["order.update"]))["type"] == "subscribed"
            await server.wait_subscribers(["zx", "order.update", alice], 1)
        async with connect(server, "/ws?token=tok_forged") as ws:
            answer = await recv(ws)
            assert answer["type"] == "error" and answer["code"] == 2002 and "login refused" in answer["msg"]
            try:
                await recv(ws)
                raise AssertionError("the connection stayed open")
            except websockets.ConnectionClosed:
                pass
    asyncio.run(run())


def test_a_signed_login_follows_the_rest_nonce_rules(server):
    async def login(auth: str) -> dict:
        async with connect(server, "/ws") as ws:
            await recv(ws)
            await ws.send(json.dumps({"op": "login", "args": [auth]}))
            return await recv(ws)

    async def run():
        bob = server.keys["bob"]["user_id"]
        now = wall_ms()
        good = server.login("bob", now)
        assert await login(good) == {"type": "login", "user_id": bob}
        replayed = await login(good)
        assert replayed["code"] == 2005 and "not above" in replayed["msg"], replayed
        stale = await login(server.login("bob", now - 120_000))
        assert stale["code"] == 2004 and "ts_nonce" in stale["msg"], stale
        forged = await login(server.login("bob", now + 1, path="/wsx"))     # signed over another request
        assert forged["code"] == 2002 and "does not verify" in forged["msg"], forged
        no_read = await login(server.login("carol", now + 2))                # a TRADE-only key
        assert no_read["code"] == 2006, no_read
        async with connect(server, "/ws") as ws:
            await recv(ws)
            await ws.send(json.dumps({"op": "login", "args": [server.login("alice", now + 3)]}))
            assert (await recv(ws))["type"] == "login"
            await ws.send(json.dumps({"op": "login", "args": [server.login("alice", now + 4)]}))
            again = await recv(ws)
            assert again["code"] == 2002 and "logged in already" in again["msg"]
    asyncio.run(run())


def test_private_messages_reach_only_their_users_subscribed_connections(server):
    """Alice's resting sell is hit by Bob's buy: each hears of their own order, both of the
    trade (Alice as maker), each of their own balances; an anonymous subscriber of the
    public trades, and Alice's connection without those topics, hear nothing private."""
    alice, bob = server.keys["alice"]["user_id"], server.keys["bob"]["user_id"]

    async def run():
        async with connect(server, f"/ws?token={server.token}") as a1, connect(server, "/ws") as a2, \
                connect(server, "/ws") as b, connect(server, "/ws") as anonymous:
            for ws in (a1, a2, b, anonymous):
                await recv(ws)
            for ws, name in ((a2, "alice"), (b, "bob")):
                await ws.send(json.dumps({"op": "login", "args": [server.login(name, wall_ms())]}))
                assert (await recv(ws))["type"] == "login"
            private = ["order.update", "trade", "balance.update"]
            await subscribe(a1, private)
            await subscribe(a2, ["balance.update"])
            await subscribe(b, private)
            await subscribe(anonymous, ["market.trade.BTC_USDT"])
            s1, s2, s3 = next(server.seqs), next(server.seqs), next(server.seqs)
            sell, buy, trade_id = next(server.order_ids), next(server.order_ids), next(server.trade_ids)
            ts = time.time_ns()
            await server.acontrol("private", {"ts_ns": {s1: ts, s2: ts, s3: ts}, "orders": [
                order_event(s1, sell, alice, R.SIDE_SELL, R.ST_ACCEPTED),
                order_event(s2, buy, bob, R.SIDE_BUY, R.ST_ACCEPTED),
                order_event(s2, sell, alice, R.SIDE_SELL, R.ST_FILLED, 10**8, 10**8, trade_id),
                order_event(s2, buy, bob, R.SIDE_BUY, R.ST_FILLED, 10**8, 10**8, trade_id),
                # A refused cancel of Alice's (the order has gone): no order changed, nothing is sent.
                order_event(s3, sell, alice, R.SIDE_SELL, R.ST_REJECTED, kind=R.CMD_CANCEL),
            ], "trades": [dict(trade_id=trade_id, seq=s2, price=30_000_00, qty=10**8, quote_qty=30_000 * 10**6,
                               buyer_order_id=buy, seller_order_id=sell, buyer_user_id=bob, seller_user_id=alice,
                               buyer_fee=2 * 10**5, seller_fee=30 * 10**6, symbol=BTC_USDT, taker_side=R.SIDE_BUY)],
                "balances": [
                    dict(seq=s1, user_id=alice, amount=10**8, avail=9 * 10**8, frozen=10**8, asset=BTC, op=R.OP_LOCK),
                    dict(seq=s2, user_id=alice, amount=10**8, avail=9 * 10**8, frozen=0, asset=BTC, op=R.OP_SPEND),
                    dict(seq=s2, user_id=alice, amount=29_970 * 10**6, avail=29_970 * 10**6, frozen=0, asset=USDT,
                         op=R.OP_CREDIT),
                    dict(seq=s2, user_id=bob, amount=99_800_000, avail=99_800_000, frozen=0, asset=BTC,
                         op=R.OP_CREDIT)]})
            got = {name: await quiet(ws) for name, ws in (("a1", a1), ("a2", a2), ("b", b), ("anon", anonymous))}
        assert got["a1"] == [
            {"type": "trade", "trade_id": trade_id, "order_id": sell, "symbol": "BTC_USDT", "side": "SELL",
             "price": "30000.00", "qty": "1.000000", "fee": "30.0000", "fee_asset": "USDT", "role": "MAKER"},
            {"type": "order.update", "order_id": sell, "symbol": "BTC_USDT", "status": "NEW",
             "filled_qty": "0.000000", "avg_price": None},
            {"type": "order.update", "order_id": sell, "symbol": "BTC_USDT", "status": "FILLED",
             "filled_qty": "1.000000", "avg_price": "30000.00"},
            {"type": "balance.update", "asset": "BTC", "avail": "9.000000", "frozen": "0.000000"},
            {"type": "balance.update", "asset": "USDT", "avail": "29970.0000", "frozen": "0.0000"}]
        assert got["a2"] == got["a1"][-2:]
        assert got["b"] == [
            {"type": "trade", "trade_id": trade_id, "order_id": buy, "symbol": "BTC_USDT", "side": "BUY",
             "price": "30000.00", "qty": "1.000000", "fee": "0.002000", "fee_asset": "BTC", "role": "TAKER"},
            {"type": "order.update", "order_id": buy, "symbol": "BTC_USDT", "status": "NEW",
             "filled_qty": "0.000000", "avg_price": None},
            {"type": "order.update", "order_id": buy, "symbol": "BTC_USDT", "status": "FILLED",
             "filled_qty": "1.000000", "avg_price": "30000.00"},
            {"type": "balance.update", "asset": "BTC", "avail": "0.998000", "frozen": "0.000000"}]
        assert got["anon"] == []
    asyncio.run(run())


def test_public_trades_klines_and_tickers_reach_their_subscribers(server):
    async def run():
        async with connect(server, "/ws") as ws:
            await recv(ws)
            await subscribe(ws, ["market.trade.ETH_USDT", "market.kline.1m.ETH_USDT", "market.ticker.ETH_USDT"])
            now = wall_ms()
            trade = server.trade(1, 2_000_00, 5 * 10**7, now, buyer_is_maker=True)
            open_ms = now // 60_000 * 60_000
            kline = [1, "1m", open_ms, open_ms + 59_999, 2_000_00, 2_000_00, 2_000_00, 2_000_00, 5 * 10**7,
                     1000 * 10**6, 1, 0, 0, trade[0], trade[0], False]
            await server.acontrol("market", {"updates": [{"trades": [trade], "klines": [kline]}], "now_ms": now})
            got = await recv_until(ws, lambda m: m["type"] == "ticker")
        assert got[0] == {"type": "public_trade", "symbol": "ETH_USDT", "trade_id": trade[0], "price": "2000.00",
                          "qty": "0.500000", "quote_qty": "1000.0000", "time": now, "is_buyer_maker": True}
        assert got[1] == {"type": "kline", "symbol": "ETH_USDT", "interval": "1m", "open_time": open_ms,
                          "close_time": open_ms + 59_999, "open": "2000.00", "high": "2000.00", "low": "2000.00",
                          "close": "2000.00", "volume": "0.500000", "quote_volume": "1000.0000", "trade_count": 1,
                          "closed": False}
        ticker = got[-1]
        assert ticker["symbol"] == "ETH_USDT" and ticker["last_price"] == "2000.00" and ticker["close_time"] == now
    asyncio.run(run())
