"""The bench's subscribers (tools/ws_subscribers.py): a chunk seen on one connection is parsed
once, and every connection still gets its own counts, checks and arrival times."""
from __future__ import annotations

import asyncio
import json

from xinfinity.gateway.ws.hub import text_frame
from xinfinity.tools.ws_subscribers import Run, Subscriber


class Transport:
    def __init__(self):
        self.written = []

    def write(self, data: bytes) -> None:
        self.written.append(data)


def trade(tid: int, t_ms: int) -> bytes:
    return text_frame(json.dumps({"stream": "btcusdt@trade", "data": {
        "e": "trade", "E": t_ms, "s": "BTCUSDT", "t": tid, "p": "1.00", "q": "1", "T": t_ms, "m": False,
        "M": True}}, separators=(",", ":")).encode())


def depth(first: int, last: int, e_ms: int) -> bytes:
    return text_frame(json.dumps({"stream": "btcusdt@depth@100ms", "data": {
        "e": "depthUpdate", "E": e_ms, "s": "BTCUSDT", "U": first, "u": last, "b": [], "a": []}},
        separators=(",", ":")).encode())


def subscribed(run: Run) -> Subscriber:
    sub = Subscriber(run, "/stream?streams=btcusdt@trade/btcusdt@depth@100ms", "h")
    sub.connection_made(Transport())
    sub.data_received(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
    sub.data_received(text_frame(b'{"result":["btcusdt@trade"],"id":1}'))
    assert sub.ready.result() == ["btcusdt@trade"]
    run.subs.append(sub)
    return sub


def test_a_chunk_is_parsed_once_and_counted_on_every_connection():
    async def run_it():
        run = Run()
        a, b, c, d = (subscribed(run) for _ in range(4))
        run.reset()
        chunk1 = trade(1, 1_000) + depth(1, 3, 1_000)
        chunk2 = trade(2, 2_000) + depth(4, 5, 2_000) + trade(3, 2_000)
        for sub in (a, b):
            sub.data_received(chunk1)
        assert list(run.parsed) == [chunk1]         # the first parsed it, the second looked it up
        c.data_received(chunk1[:7])                 # split: parsed as it comes, not kept
        c.data_received(chunk1[7:])
        for sub in (a, b, c):
            sub.data_received(chunk2)
        d.data_received(chunk1)
        d.data_received(trade(3, 2_000))            # trade 2 and diff 4..5 missed
        d.data_received(b"\x89\x02hi")              # a ping: answered, the chunk not kept
        assert d.transport.written[-1] == b"\x8a\x82\0\0\0\0hi"
        assert b"\x89\x02hi" not in run.parsed
        report = run.report()
        assert report["trades_total"] == 3 + 3 + 3 + 2 and report["trades_min"] == 2
        assert report["disorder"] == 0 and report["gaps"] == 0
        assert (report["last_u_min"], report["last_u_max"]) == (3, 5)
        assert report["trade"]["messages"] == 11 and report["depth"]["messages"] == 7
        d.data_received(depth(7, 8, 3_000))         # after 3: a gap
        d.data_received(trade(3, 3_000))            # the same id again: out of order
        report = run.report()
        assert report["gaps"] == 1 and report["disorder"] == 1
    asyncio.run(run_it())
