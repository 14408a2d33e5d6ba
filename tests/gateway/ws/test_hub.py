"""The hub behind a real server: fan-out encodes once and writes each subscriber
once per round, a slow consumer is closed (1008) without holding anyone up,
ping frames; in-process, the counts the worker's gauges show, a round written
in slices and rounds spaced by what they cost."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import time

import websockets
from websockets.protocol import OPEN

from tests.gateway.ws.conftest import BTC_USDT, SEND_BUFFER_BYTES, TIMEOUT_S, connect, quiet, recv
from xinfinity.gateway.ws.hub import Hub

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
            before = await server.acontrol("stats")
            trades = [server.trade(1, 2_000_00 + i, 10**8, 1_700_000_000_000 + i) for i in range(MESSAGES)]
            started = time.monotonic()
            await server.acontrol("market", {"updates": [{"trades": trades}]})
            got = await asyncio.gather(*(asyncio.gather(*(recv(ws) for _ in range(MESSAGES)))
                                         for ws in connections))
            elapsed = time.monotonic() - started
            after = await server.acontrol("stats")      # once all is written: a round goes in slices
            encodes, flushes = after["encodes"] - before["encodes"], after["flushes"] - before["flushes"]
        finally:
            await asyncio.gather(*(ws.close() for ws in connections))
        print(f"{SUBSCRIBERS} subscribers x {MESSAGES} messages delivered in {elapsed:.2f} s")
        assert encodes == MESSAGES
        assert flushes == SUBSCRIBERS       # one loop turn published them: one round, one write per subscriber
        assert [m["a"] for m in got[0]] == [t[0] for t in trades]
        assert all(messages == got[0] for messages in got)
    asyncio.run(run())


def test_a_slow_consumer_is_closed_and_a_fast_one_keeps_receiving(server):
    """Two subscribers of one topic; one stops reading. Once the kernel's buffers are full and
    the server holds more than SEND_BUFFER_BYTES for it, it is closed, and the other has
    received every message in order. Reading again, the slow one gets what had been written
    to it, then a close frame with code 1008 that says why."""
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
            stats = await server.acontrol("stats", {"key": topic})
            assert stats["subscribers"] == 1         # only the fast one is left on the topic
            for _ in range(3):                       # and it still hears everything
                stats = await server.acontrol("publish", {"key": topic, "message": {"type": "later"}, "count": 1})
                assert (await recv(fast))["type"] == "later"
            backlog = []
            try:
                while True:
                    backlog.append(await recv(slow))
            except websockets.ConnectionClosed as e:
                closed = e
            assert await quiet(fast) == []
        print(f"closed after {sent} messages; the slow consumer had {len(backlog)} of them on their way")
        assert closed.rcvd is not None, "no close frame came"
        assert closed.rcvd.code == 1008
        assert closed.rcvd.reason == f"slow consumer: more than {SEND_BUFFER_BYTES} bytes were waiting to be sent"
        assert [m["i"] for m in backlog] == [i % 8 for i in range(len(backlog))]
        assert all(m["type"] == "bulk" for m in backlog) and len(backlog) < sent
    asyncio.run(run())


async def raw_frames(server, path: str):
    """A bare WebSocket client (no library answering pings for it): (reader, writer) after the
    handshake. Frames are read with read_frame."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.ws_port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT_S)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def read_frame(reader) -> tuple[int, bytes]:
    """(opcode, payload) of the server's next frame (unmasked)."""
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    return b0 & 0x0F, await reader.readexactly(n)


def test_both_protocols_get_ping_frames_and_no_keepalive_messages(server):
    """The server pings every PING_INTERVAL_S (1 s here) with real ping frames, on a 0xInfinity
    and on a Binance connection alike; no text message comes but the protocol's own."""
    async def run():
        for path in ("/ws", "/ws/btcusdt@trade"):
            reader, writer = await raw_frames(server, path)
            try:
                texts = []
                while True:
                    opcode, payload = await asyncio.wait_for(read_frame(reader), TIMEOUT_S)
                    if opcode == 0x9:
                        break
                    assert opcode == 0x1, (path, opcode, payload)
                    texts.append(json.loads(payload))
                assert texts == ([{"type": "connected", "user_id": 0}] if path == "/ws" else []), path
            finally:
                writer.close()
    asyncio.run(run())


def test_clients_pings_are_answered_and_a_binance_connection_gets_only_its_streams(server):
    async def run():
        async with connect(server, "/ws") as zx, connect(server, "/ws/btcusdt@trade") as binance:
            assert (await recv(zx))["type"] == "connected"
            await asyncio.wait_for(await binance.ping(), TIMEOUT_S)
            await asyncio.wait_for(await zx.ping(), TIMEOUT_S)
            await server.wait_subscribers(["raw", "btcusdt@trade"], 1)
            trade = server.trade(BTC_USDT, 30_000_00, 10**8, 1_700_000_000_000)
            await server.acontrol("market", {"updates": [{"trades": [trade]}]})
            assert json.loads(await asyncio.wait_for(binance.recv(), TIMEOUT_S))["e"] == "trade"
    asyncio.run(run())


def test_an_upgrade_to_the_http_port_is_refused_naming_the_websocket_port(server):
    async def run():
        try:
            async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws", open_timeout=TIMEOUT_S):
                raise AssertionError("the HTTP port took a WebSocket")
        except websockets.InvalidStatus as e:
            assert e.response.status_code == 404
            assert f"served on port {server.ws_port}" in e.response.body.decode()
    asyncio.run(run())


class Socket:
    """An open connection's socket that takes every write at once (in `write_s` seconds)."""
    class protocol:
        state = OPEN

    def __init__(self, write_s: float = 0.0):
        self.transport, self.written, self.write_s, self.times = self, [], write_s, []

    def write(self, data: bytes) -> None:
        self.written.append(data)
        self.times.append(time.perf_counter())
        if self.write_s:
            time.sleep(self.write_s)

    def get_write_buffer_size(self) -> int:
        return 0


def test_the_hub_counts_subscriptions_once_each_and_every_message_written():
    """What services/gateway.py shows as ws.subscriptions and ws.sent."""
    async def run():
        hub = Hub()
        a, b = hub.connect("p", Socket()), hub.connect("p", Socket())
        for conn, key in ((a, "t1"), (a, "t1"), (a, "t2"), (b, "t1")):     # a again on t1: still one
            hub.subscribe(conn, key)
        assert hub.subscriptions == 3
        hub.unsubscribe(a, "t2")
        hub.unsubscribe(a, "t2")
        assert hub.subscriptions == 2
        hub.publish("t1", {"trade": 1})
        hub.send(b, {"reply": 2})
        await asyncio.sleep(0)          # the flush at the end of this loop turn
        assert hub.sent == 3 and len(b.ws.written) == 1        # b's two messages in one write
        hub.disconnect(b)
        assert (len(hub.connections), hub.subscriptions) == (1, 1)
    asyncio.run(run())


def frames_of(written: list[bytes]) -> list[dict]:
    """The messages in a Socket's writes (text frames under 126 bytes)."""
    out = []
    for data in written:
        while data:
            n = data[1]
            out.append(json.loads(data[2:2 + n]))
            data = data[2 + n:]
    return out


def test_a_round_goes_in_slices_and_a_message_joins_the_connections_it_has_not_reached():
    """A round writing 16 connections a slice: the loop runs between slices; a message published
    meanwhile goes out with the round to those it has not written yet, and in the next round to
    those it has. Everyone gets every message once, in order."""
    async def run():
        hub = Hub(flush_interval_s=0, flush_slice_s=1e-9)
        conns = [hub.connect("p", Socket()) for _ in range(40)]
        for conn in conns:
            hub.subscribe(conn, "t")
        hub.publish("t", {"m": 1})
        await asyncio.sleep(0)          # the first slice
        written = [len(c.ws.written) for c in conns]
        assert written == [1] * 16 + [0] * 24
        hub.publish("t", {"m": 2})
        while hub._round is not None or hub._dirty:
            await asyncio.sleep(0)
        assert [len(c.ws.written) for c in conns] == [2] * 16 + [1] * 24   # m2 rode along with m1
        assert all(frames_of(c.ws.written) == [{"m": 1}, {"m": 2}] for c in conns)
        assert (hub.rounds, hub.flushes, hub.sent, hub.encodes) == (2, 56, 80, 2)
    asyncio.run(run())


def test_rounds_are_spaced_by_what_they_cost():
    """A round whose writes took C seconds is followed by the next no earlier than C / flush_share
    after it started; the first message after a quiet time goes out in its loop turn."""
    async def run():
        hub = Hub(flush_interval_s=0, flush_share=0.5)
        conns = [hub.connect("p", Socket(write_s=0.002)) for _ in range(10)]     # a round: >= 20 ms
        for conn in conns:
            hub.subscribe(conn, "t")
        hub.publish("t", {"m": 1})
        await asyncio.sleep(0)
        first = conns[0].ws.times[0]
        hub.publish("t", {"m": 2})      # at once: waits for the spacing
        cost = conns[-1].ws.times[0] + 0.002 - first
        while len(conns[-1].ws.written) < 2:
            await asyncio.sleep(0.001)
        assert conns[0].ws.times[1] - first >= cost / 0.5 - 0.002
        await asyncio.sleep(2 * cost)   # quiet: the next one goes at once
        hub.publish("t", {"m": 3})
        published = time.perf_counter()
        await asyncio.sleep(0)
        assert len(conns[0].ws.written) == 3 and conns[0].ws.times[2] - published < cost
        assert all(frames_of(c.ws.written) == [{"m": 1}, {"m": 2}, {"m": 3}] for c in conns)
    asyncio.run(run())
