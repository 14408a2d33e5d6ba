"""The Binance protocols over a real granian server (spec/API.md section 2):
raw and combined market streams, and the WebSocket API's user data stream."""
from __future__ import annotations

import asyncio
import json
import random

import websockets

from tests.gateway.ws.conftest import BTC_USDT, ETH_USDT, binance_quiet, connect, recv, recv_until
from tests.gateway.ws.fakes import order_event, wall_ms
from xinfinity.engine import records as R
from xinfinity.engine.money import format_decimal

BTC, USDT = 1, 2


def test_a_raw_stream_named_in_the_path_is_subscribed_at_once(server):
    async def run():
        async with connect(server, "/ws/btcusdt@trade") as ws:
            await server.wait_subscribers(["raw", "btcusdt@trade"], 1)
            now = wall_ms()
            trade = server.trade(BTC_USDT, 30_123_45, 25_000_000, now, buyer_is_maker=True)
            await server.acontrol("market", {"updates": [{"trades": [trade]}]})
            assert await recv(ws) == {"e": "trade", "E": now, "s": "BTCUSDT", "t": trade[0], "p": "30123.45",
                                      "q": "0.25000000", "T": now, "m": True, "M": True}
    asyncio.run(run())


def test_subscribe_list_and_unsubscribe_answer_with_the_request_id(server):
    async def run():
        async with connect(server, "/ws/0") as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade", "ethusdt@kline_1m"],
                                      "id": 7}))
            assert await recv(ws) == {"result": None, "id": 7}
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 8}))
            assert await recv(ws) == {"result": ["btcusdt@aggTrade", "ethusdt@kline_1m"], "id": 8}
            await server.wait_subscribers(["raw", "ethusdt@kline_1m"], 1)
            await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["ethusdt@kline_1m"], "id": "x9"}))
            assert await recv(ws) == {"result": None, "id": "x9"}
            await server.wait_subscribers(["raw", "ethusdt@kline_1m"], 0)
            now = wall_ms()
            trade = server.trade(BTC_USDT, 30_000_00, 10**8, now)
            await server.acontrol("market", {"updates": [{"trades": [trade]}]})
            assert await recv(ws) == {"e": "aggTrade", "E": now, "s": "BTCUSDT", "a": trade[0], "p": "30000.00",
                                      "q": "1.00000000", "f": trade[0], "l": trade[0], "T": now, "m": False,
                                      "M": True}
    asyncio.run(run())


def test_refused_stream_requests_name_what_was_wrong(server):
    cases = [
        ({"method": "SUBSCRIBE", "params": ["BTCUSDT@trade"], "id": 1}, 2, "lowercase"),
        ({"method": "SUBSCRIBE", "params": ["dogeusdt@trade"], "id": 2}, 2, "symbol dogeusdt is unknown"),
        ({"method": "SUBSCRIBE", "params": ["btcusdt@kline_7m"], "id": 3}, 2, "interval 7m"),
        ({"method": "SUBSCRIBE", "params": ["btcusdt@trade", "btcusdt@depth7"], "id": 4}, 2, "btcusdt@depth7"),
        ({"method": "SUBSCRIBE", "params": "btcusdt@trade", "id": 5}, 1, "params must be a list"),
        ({"method": "DANCE", "id": 6}, 2, "method 'DANCE'"),
    ]

    async def run():
        async with connect(server, "/ws/0") as ws:
            for request, code, words in cases:
                await ws.send(json.dumps(request))
                answer = await recv(ws)
                assert answer["id"] == request["id"] and answer["error"]["code"] == code, answer
                assert words in answer["error"]["msg"], answer
            await ws.send("{nope")
            answer = await recv(ws)
            assert answer["error"]["code"] == 3 and answer["id"] is None
            assert await binance_quiet(ws, 99) == []        # the refused SUBSCRIBEs subscribed nothing
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 100}))
            assert await recv(ws) == {"result": [], "id": 100}
        async with connect(server, "/stream?streams=btcusdt@trade/btcusdt@nonsense") as ws:
            answer = await recv(ws)
            assert answer["error"]["code"] == 2 and "btcusdt@nonsense" in answer["error"]["msg"]
            try:
                await recv(ws)
                raise AssertionError("the connection stayed open")
            except websockets.ConnectionClosed:
                pass
        try:
            async with connect(server, "/nowhere"):
                raise AssertionError("an upgrade to /nowhere was accepted")
        except websockets.InvalidStatus as e:
            assert e.response.status_code == 404
    asyncio.run(run())


def test_combined_streams_wrap_each_event_with_its_stream_name(server):
    async def run():
        async with connect(server, "/stream?streams=ethusdt@trade/ethusdt@bookTicker") as ws:
            await server.wait_subscribers(["stream", "ethusdt@bookTicker"], 1)
            now = wall_ms()
            diff = server.diff(ETH_USDT, [(1_999_00, 3 * 10**8)], [(2_001_00, 10**8)], now)
            trade = server.trade(ETH_USDT, 2_000_00, 10**8, now)
            await server.acontrol("market", {"updates": [{"diffs": [diff], "trades": [trade]}]})
            book_ticker = await recv(ws)
            assert book_ticker == {"stream": "ethusdt@bookTicker", "data": {
                "u": diff[2], "s": "ETHUSDT", "b": "1999.00", "B": "3.00000000", "a": "2001.00", "A": "1.00000000"}}
            assert await recv(ws) == {"stream": "ethusdt@trade", "data": {
                "e": "trade", "E": now, "s": "ETHUSDT", "t": trade[0], "p": "2000.00", "q": "1.00000000", "T": now,
                "m": False, "M": True}}
    asyncio.run(run())


def apply(book: dict, levels) -> None:
    for price, qty in levels:
        if float(qty):
            book[price] = qty
        else:
            book.pop(price, None)


def test_depth_windows_merge_diffs_contiguously_and_partial_books_follow(server):
    """The @depth@100ms and @depth streams merge the diffs of a window: U of its first,
    u of its last, each level's final qty. Applied in order they give the book the diffs
    give, and no window splits the updates of one loop turn."""
    seed = random.randrange(2**32)
    print("seed", seed)
    rng = random.Random(seed)
    prices = [29_990_00 + 10 * i for i in range(20)]

    def levels():
        return [(rng.choice(prices), rng.randrange(0, 4) * 10**7) for _ in range(rng.randrange(1, 4))]

    async def run():
        streams = ["btcusdt@depth@100ms", "btcusdt@depth", "btcusdt@depth5@100ms"]
        async with connect(server, "/stream?streams=" + "/".join(streams)) as ws:
            await server.wait_subscribers(["stream", "btcusdt@depth5@100ms"], 1)
            first = server.update_ids[BTC_USDT] + 1
            calls = []
            for _call in range(6):
                calls.append([{"diffs": [server.diff(BTC_USDT, levels(), levels())]} for _ in range(3)])
                await server.acontrol("market", {"updates": calls[-1]})
            last = server.update_ids[BTC_USDT]
            windows = {name: [] for name in streams}
            while not all(windows[n] and windows[n][-1].get("u", windows[n][-1].get("lastUpdateId")) == last
                          for n in streams):
                message = await recv(ws)
                windows[message["stream"]].append(message["data"])
        fed = [u["diffs"][0] for call in calls for u in call]
        starts = {call[0]["diffs"][0][1] for call in calls}
        fed_book = ({}, {})
        for diff in fed:
            apply(fed_book[0], [(format_decimal(p, 2), format_decimal(q, 8)) for p, q in diff[4]])
            apply(fed_book[1], [(format_decimal(p, 2), format_decimal(q, 8)) for p, q in diff[5]])
        for name in ("btcusdt@depth@100ms", "btcusdt@depth"):
            expected_u = first - 1
            book = ({}, {})
            for w in windows[name]:
                assert w["e"] == "depthUpdate" and w["s"] == "BTCUSDT"
                assert w["U"] == expected_u + 1 and w["U"] in starts, (name, w["U"], expected_u)
                covered = [d for d in fed if w["U"] <= d[1] <= w["u"]]
                merged = ({}, {})
                for d in covered:
                    merged[0].update(d[4])
                    merged[1].update(d[5])
                assert w["b"] == [[format_decimal(p, 2), format_decimal(q, 8)] for p, q in merged[0].items()]
                assert w["a"] == [[format_decimal(p, 2), format_decimal(q, 8)] for p, q in merged[1].items()]
                apply(book[0], w["b"])
                apply(book[1], w["a"])
                expected_u = w["u"]
            assert expected_u == last and book == fed_book, name
        top = windows["btcusdt@depth5@100ms"][-1]
        bids = sorted(fed_book[0].items(), key=lambda pq: -float(pq[0]))[:5]
        asks = sorted(fed_book[1].items(), key=lambda pq: float(pq[0]))[:5]
        assert top == {"lastUpdateId": last, "bids": [list(x) for x in bids], "asks": [list(x) for x in asks]}
    asyncio.run(run())


async def ws_api(ws, request_id, method, params=None) -> dict:
    await ws.send(json.dumps({"id": request_id, "method": method, **({"params": params} if params is not None
                                                                      else {})}))
    return await recv_until(ws, lambda m: m.get("id") == request_id)


def test_a_user_data_subscription_is_refused_unless_signed_fresh_and_allowed(server):
    async def run():
        async with connect(server, "/ws-api/v3") as ws:
            now = wall_ms()
            cases = [
                ({**server.signed("bob", now), "signature": "00" * 32}, 400, -1022, "Signature"),
                (server.signed("bob", now - 120_000), 400, -1021, "recvWindow"),
                (server.signed("bob", now + 5_000), 400, -1021, "ahead"),
                (server.signed("carol", now), 401, -2015, "READ"),
                ({**server.signed("bob", now), "apiKey": "AK_0000000000000000"}, 401, -2015, "unknown"),
                (server.signed("bob", now, extra=1), 400, -1104, "'extra'"),
                ({"apiKey": server.keys["bob"]["api_key"]}, 400, -1102, "timestamp"),
            ]
            for i, (params, status, code, words) in enumerate(cases):
                answer = (await ws_api(ws, f"r{i}", "userDataStream.subscribe.signature", params))[-1]
                assert answer["status"] == status and answer["error"]["code"] == code, (i, answer)
                assert words in answer["error"]["msg"], (i, answer)
            good = server.signed("bob", wall_ms())
            assert (await ws_api(ws, "ok", "userDataStream.subscribe.signature", good))[-1] == {
                "id": "ok", "status": 200, "result": {"subscriptionId": 0}}
            replay = (await ws_api(ws, "again", "userDataStream.subscribe.signature", good))[-1]
            assert replay["error"]["code"] == -1021 and "replay" in replay["error"]["msg"], replay
            twice = (await ws_api(ws, "twice", "userDataStream.subscribe.signature",
                                  server.signed("bob", wall_ms() + 1)))[-1]
            assert twice["error"]["code"] == -1130 and "subscription 0" in twice["error"]["msg"], twice
            assert (await ws_api(ws, 5, "session.subscriptions", {}))[-1]["result"] == [{"subscriptionId": 0}]
            unknown = (await ws_api(ws, 6, "order.place", {}))[-1]
            assert unknown["status"] == 400 and unknown["error"]["code"] == -1020
            assert (await ws_api(ws, 7, "userDataStream.unsubscribe", {}))[-1]["result"] == {}
            assert (await ws_api(ws, 8, "session.subscriptions"))[-1]["result"] == []
    asyncio.run(run())


def test_user_data_events_reach_only_the_subscribed_account(server):
    """Alice's resting buy is filled by Bob's sell: Alice's subscription hears her
    executionReports (NEW, then the maker fill with its commission) and her account
    position; Bob's connection, subscribed for Bob, hears only Bob's."""
    alice, bob = server.keys["alice"]["user_id"], server.keys["bob"]["user_id"]

    async def run():
        async with connect(server, "/ws-api/v3") as a, connect(server, "/ws-api/v3") as b:
            for ws, name in ((a, "alice"), (b, "bob")):
                answer = (await ws_api(ws, 1, "userDataStream.subscribe.signature",
                                       server.signed(name, wall_ms())))[-1]
                assert answer["status"] == 200, answer
            s1, s2, s3 = next(server.seqs), next(server.seqs), next(server.seqs)
            buy, sell, trade_id = next(server.order_ids), next(server.order_ids), next(server.trade_ids)
            await server.acontrol("cid", {"user_id": alice, "order_id": buy, "cid": "alice-buy-1"})
            t1, t2, t3 = 1_790_000_000_000, 1_790_000_000_500, 1_790_000_001_000
            await server.acontrol("private", {"ts_ns": {s1: t1 * 10**6, s2: t2 * 10**6, s3: t3 * 10**6}, "orders": [
                order_event(s1, buy, alice, R.SIDE_BUY, R.ST_ACCEPTED),
                order_event(s2, sell, bob, R.SIDE_SELL, R.ST_ACCEPTED),
                order_event(s2, buy, alice, R.SIDE_BUY, R.ST_PARTIALLY_FILLED, 4 * 10**7, 4 * 10**7, trade_id),
                dict(order_event(s2, sell, bob, R.SIDE_SELL, R.ST_FILLED, 4 * 10**7, 4 * 10**7, trade_id),
                     qty=4 * 10**7)],
                "trades": [dict(trade_id=trade_id, seq=s2, price=30_000_00, qty=4 * 10**7, quote_qty=12_000 * 10**6,
                                buyer_order_id=buy, seller_order_id=sell, buyer_user_id=alice, seller_user_id=bob,
                                buyer_fee=40_000, seller_fee=24 * 10**6, symbol=BTC_USDT, taker_side=R.SIDE_SELL)],
                "balances": [
                    dict(seq=s2, user_id=alice, amount=39_960_000, avail=39_960_000, frozen=0, asset=BTC,
                         op=R.OP_CREDIT),
                    dict(seq=s2, user_id=alice, amount=12_000 * 10**6, avail=70_000 * 10**6, frozen=18_000 * 10**6,
                         asset=USDT, op=R.OP_SPEND),
                    dict(seq=s3, user_id=alice, amount=5 * 10**6, avail=70_005 * 10**6, frozen=18_000 * 10**6,
                         asset=USDT, op=R.OP_DEPOSIT)]})
            got_a = await recv_until(a, lambda m: m.get("event", {}).get("e") == "outboundAccountPosition")
            got_b = await recv_until(b, lambda m: m.get("event", {}).get("e") == "executionReport"
                                     and m["event"]["X"] == "FILLED")
            assert await binance_ws_api_quiet(b) == []
        assert all(m["subscriptionId"] == 0 for m in got_a + got_b)
        events = [m["event"] for m in got_a]
        assert [(e["e"], e.get("x"), e.get("X")) for e in events] == [
            ("executionReport", "NEW", "NEW"), ("executionReport", "TRADE", "PARTIALLY_FILLED"),
            ("balanceUpdate", None, None), ("outboundAccountPosition", None, None)]
        new, fill, deposit, position = events
        assert new == {"e": "executionReport", "E": t1, "s": "BTCUSDT", "c": "alice-buy-1", "S": "BUY", "o": "LIMIT",
                       "f": "GTC", "q": "1.00000000", "p": "30000.00", "P": "0.00", "F": "0.00000000", "g": -1,
                       "C": "", "x": "NEW", "X": "NEW", "r": "NONE", "i": buy, "l": "0.00000000",
                       "z": "0.00000000", "L": "0.00", "n": "0", "N": None, "T": t1, "t": -1, "I": s1, "w": True,
                       "m": False, "M": False, "Z": "0.000000", "Y": "0.000000", "Q": "0.000000", "O": t1}
        assert (fill["c"], fill["l"], fill["z"], fill["L"], fill["t"], fill["m"], fill["n"], fill["N"], fill["Z"],
                fill["Y"], fill["w"]) == ("alice-buy-1", "0.40000000", "0.40000000", "30000.00", trade_id, True,
                                          "0.00040000", "BTC", "12000.000000", "12000.000000", True)
        assert deposit == {"e": "balanceUpdate", "E": t3, "a": "USDT", "d": "5.000000", "T": t3}
        assert position == {"e": "outboundAccountPosition", "E": t3, "u": t3, "B": [
            {"a": "BTC", "f": "0.39960000", "l": "0.00000000"}, {"a": "USDT", "f": "70005.000000",
                                                                  "l": "18000.000000"}]}
        assert {m["event"]["i"] for m in got_b} == {sell}
        assert got_b[-1]["event"]["m"] is False and got_b[-1]["event"]["N"] == "USDT"
    asyncio.run(run())


async def binance_ws_api_quiet(ws) -> list[dict]:
    """Everything queued for a WebSocket API connection before now (a ping's answer comes after it)."""
    got = await ws_api(ws, "quiet", "ping", {})
    assert got[-1] == {"id": "quiet", "status": 200, "result": {}}
    return got[:-1]
