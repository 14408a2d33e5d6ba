"""The hub behind a real granian server: fan-out encodes once, a slow consumer
is closed without holding anyone up, keep-alives."""
from __future__ import annotations

import asyncio
import json
import time

import websockets

from tests.gateway.ws.conftest import BTC_USDT, SEND_QUEUE, TIMEOUT_S, connect, quiet, recv, recv_until

SUBSCRIBERS = 1000
MESSAGES = 5


def test_a_thousand_subscribers_each_receive_every_message_encoded_once(server):
    async def run():
        name = "ethusdt@aggTrade"
        connections = []
        try:
            for _batch in range(SUBSCRIBERS // 100):
                connections += await asyncio.gather(*(connect(server, f"/ws/{name}", max_queue=MESSAGES + 1)
                                                      for _ in range(100)))
            await server.wait_subscribers(["raw", name], SUBSCRIBERS)
            before = (await server.acontrol("stats"))["encodes"]
            trades = [server.trade(1, 2_000_00 + i, 10**8, 1_700_000_000_000 + i) for i in range(MESSAGES)]
            started = time.monotonic()
            await server.acontrol("market", {"updates": [{"trades": trades}]})
            encodes = (await server.acontrol("stats"))["encodes"] - before
            got = await asyncio.gather(*(asyncio.gather(*(recv(ws) for _ in range(MESSAGES)))
                                         for ws in connections))
            elapsed = time.monotonic() - started
        finally:
            await asyncio.gather(*(ws.close() for ws in connections))
        print(f"{SUBSCRIBERS} subscribers x {MESSAGES} messages delivered in {elapsed:.2f} s")
        assert encodes == MESSAGES
        assert [m["a"] for m in got[0]] == [t[0] for t in trades]
        assert all(messages == got[0] for messages in got)
    asyncio.run(run())


def test_a_slow_consumer_is_closed_and_a_fast_one_keeps_receiving(server):
    """Two subscribers of one topic; one stops reading. Once the kernel's buffers and its
    send queue are full it is closed, and the other has received every message in order.
    Reading again, the slow one gets what had been sent to it, then why it was closed."""
    topic = "market.trade.ETH_USDT"
    pad = "x" * 65536

    async def run():
        async with connect(server, "/ws") as fast, connect(server, "/ws", max_queue=1) as slow:
            for ws in (fast, slow):
                await recv(ws)
                await ws.send(json.dumps({"op": "subscribe", "args": [topic]}))
                assert (await recv(ws))["type"] == "subscribed"
            before = (await server.acontrol("stats"))["slow_consumers"]
            sent, deadline = 0, time.monotonic() + 120
            while True:
                stats = await server.acontrol("publish", {"key": topic, "message": {"type": "bulk", "pad": pad},
                                                          "count": 8})
                for i in range(8):
                    message = await recv(fast)
                    assert message["type"] == "bulk" and message["i"] == i
                sent += 8
                if stats["slow_consumers"] > before:
                    break
                assert time.monotonic() < deadline, f"{sent} messages and no slow consumer"
            assert stats["subscribers"] == 1         # only the fast one is left on the topic
            for _ in range(3):                       # and it still hears everything
                stats = await server.acontrol("publish", {"key": topic, "message": {"type": "later"}, "count": 1})
                assert (await recv(fast))["type"] == "later"
            backlog = await recv_until(slow, lambda m: m["type"] == "close", timeout=TIMEOUT_S)
            try:
                await asyncio.wait_for(slow.recv(), TIMEOUT_S)
                raise AssertionError("the slow consumer's connection stayed open")
            except websockets.ConnectionClosed:
                pass
            assert await quiet(fast) == []
        *bulk, close = backlog
        print(f"closed after {sent} messages; the slow consumer had {len(bulk)} of them on their way")
        assert close == {"type": "close", "reason": f"slow consumer: {SEND_QUEUE} messages were waiting to be sent"}
        assert [m["i"] for m in bulk] == [i % 8 for i in range(len(bulk))]
        assert len(bulk) < sent
    asyncio.run(run())


def test_0xinfinity_connections_get_a_keepalive_and_binance_ones_do_not(server):
    async def run():
        async with connect(server, "/ws") as zx, connect(server, "/ws/btcusdt@trade") as binance:
            assert (await recv(zx))["type"] == "connected"
            ping = json.loads(await asyncio.wait_for(zx.recv(), TIMEOUT_S))
            assert ping["type"] == "ping" and isinstance(ping["time"], int)
            # a client's ping frame is answered (by the server's WebSocket layer)
            await asyncio.wait_for(await binance.ping(), TIMEOUT_S)
            await asyncio.wait_for(await zx.ping(), TIMEOUT_S)
            await server.wait_subscribers(["raw", "btcusdt@trade"], 1)
            trade = server.trade(BTC_USDT, 30_000_00, 10**8, 1_700_000_000_000)
            await server.acontrol("market", {"updates": [{"trades": [trade]}]})
            # its first message: no keep-alive came before, though one has come to the 0xInfinity connection
            assert json.loads(await asyncio.wait_for(binance.recv(), TIMEOUT_S))["e"] == "trade"
    asyncio.run(run())
