"""Many WebSocket subscribers in one process: the receiving end of `xinf bench push`.

    python -m xinfinity.tools.ws_subscribers HOST WS_PORT N PATH

opens N connections to ws://HOST:WS_PORT/PATH (WS_PORT: the server's WebSocket
port, serve.json's ws_url; PATH: a Binance combined-stream path,
e.g. /stream?streams=btcusdt@trade/btcusdt@depth@100ms), checks each is
subscribed (LIST_SUBSCRIPTIONS answered), prints `ready`, then takes commands
on stdin, one per line:

    reset     forget what was received so far (a new phase starts)
    report    print one JSON line: per stream kind the messages received, the
              delivery latencies' percentiles (ms) and the checks below
    quit      close every connection and exit

Delivery latency of a message is its arrival time minus its event time:
`T` for a trade (the entry time of the order that made it, so HTTP, the
pipeline, the WAL, settlement and the fan-out all count) and `E` for a depth
diff (when its 100 ms window closed: the fan-out). Both clocks are this
machine's wall clock (ms resolution in the messages).

Checks: every connection's trade ids increase, and its depth diffs are
contiguous (each U = the previous u + 1); `last_u_min`/`last_u_max` are the
lowest and highest final u over the connections (equal when every
connection got every diff), `trades_min` the fewest trades any connection got.

The client is a bare asyncio Protocol (RFC 6455 frames from the server are
unmasked; only text frames are expected): a thousand `websockets` clients
cost more CPU than the server they measure, on the same two cores. For the
same reason a chunk of whole frames is parsed once: the server writes the
same bytes to every subscriber of the same streams, so a chunk already seen
on another connection is looked up (its messages' ids and event times), and
only each connection's own checks and its arrival time are per connection.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import sys
import time

import numpy as np
import uvloop

_T = re.compile(rb'"T":(\d+)')
_E = re.compile(rb'"E":(\d+)')
_TID = re.compile(rb'"t":(\d+)')
_UU = re.compile(rb'"U":(\d+),"u":(\d+)')
PARSED_KEPT = 4096              # chunks whose parse is kept (a flush's chunk is the same on every connection)


class Subscriber(asyncio.Protocol):
    def __init__(self, run: "Run", path: str, host: str):
        self.run, self.path, self.host = run, path, host
        self.buf = b""
        self.upgraded = False
        self.ready = asyncio.get_running_loop().create_future()
        self.last_tid = 0
        self.last_u = 0
        self.trades = 0
        self.disorder = 0
        self.gaps = 0

    def connection_made(self, transport):
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n".encode())

    def send_text(self, text: str) -> None:
        """A client frame must be masked (RFC 6455 5.3); a zero mask keeps the bytes as they are."""
        data = text.encode()
        assert len(data) < 126
        self.transport.write(bytes([0x81, 0x80 | len(data)]) + b"\0\0\0\0" + data)

    def data_received(self, data):
        now_ms = time.time_ns() / 1e6
        if self.upgraded and not self.buf:
            # The server writes the same frames to every subscriber of the same streams: a chunk
            # seen on another connection is parsed already (what it holds, not when it came).
            events = self.run.parsed.get(data)
            if events is not None:
                self.apply(events, now_ms)
                return
            start_clean = True
        else:
            start_clean = False
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buf.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(ConnectionError(self.buf[:end].decode(errors="replace")))
                return
            self.upgraded, self.buf = True, self.buf[end + 4:]
            self.send_text('{"method":"LIST_SUBSCRIPTIONS","id":1}')
        buf, pos, events, shared = self.buf, 0, [], True
        while len(buf) - pos >= 2:
            opcode, n = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            head = 2
            if n == 126:
                if len(buf) - pos < 4:
                    break
                n, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif n == 127:
                if len(buf) - pos < 10:
                    break
                n, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            if len(buf) - pos < head + n:
                break
            payload = buf[pos + head:pos + head + n]
            pos += head + n
            if opcode == 0x1:
                event = self.parse(payload)
                if event is None:
                    shared = False
                else:
                    events.append(event)
            elif opcode == 0x9:         # ping: pong with the same payload
                shared = False
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
            else:
                shared = False
        self.buf = buf[pos:]
        if start_clean and shared and not self.buf:
            parsed = self.run.parsed
            if len(parsed) >= PARSED_KEPT:
                parsed.clear()
            parsed[data] = events
        self.apply(events, now_ms)

    def parse(self, m: bytes):
        """A stream message as (True, trade id, T) or (False, U, u, E); None: anything else
        (a reply, handled here)."""
        if m.startswith(b'{"stream":"'):
            if b'@trade"' in m[:40]:
                return True, int(_TID.search(m).group(1)), int(_T.search(m).group(1))
            uu = _UU.search(m)
            return False, int(uu.group(1)), int(uu.group(2)), int(_E.search(m).group(1))
        if b'"result"' in m and not self.ready.done():
            self.ready.set_result(json.loads(m)["result"])
        return None

    def apply(self, events: list, now_ms: float) -> None:
        """This connection's checks and latencies for the messages of one chunk, received at now_ms."""
        latency = self.run.latency
        for event in events:
            if event[0]:
                tid = event[1]
                self.disorder += tid <= self.last_tid
                self.last_tid = tid
                self.trades += 1
                latency["trade"].append(now_ms - event[2])
            else:
                self.gaps += bool(self.last_u) and event[1] != self.last_u + 1
                self.last_u = event[2]
                latency["depth"].append(now_ms - event[3])

    def connection_lost(self, exc):
        self.run.lost += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connection lost: {exc}"))


class Run:
    def __init__(self):
        self.subs: list[Subscriber] = []
        self.lost = 0
        self.parsed: dict[bytes, list] = {}     # a chunk of whole frames -> its stream messages, parsed
        self.reset()

    def reset(self) -> None:
        self.latency = {"trade": [], "depth": []}
        for s in self.subs:
            s.trades = s.disorder = s.gaps = 0

    def report(self) -> dict:
        out = {"connections": len(self.subs), "lost": self.lost,
               "trades_min": min((s.trades for s in self.subs), default=0),
               "trades_total": sum(s.trades for s in self.subs),
               "disorder": sum(s.disorder for s in self.subs), "gaps": sum(s.gaps for s in self.subs),
               "last_u_min": min((s.last_u for s in self.subs), default=0),
               "last_u_max": max((s.last_u for s in self.subs), default=0),
               "last_tid": min((s.last_tid for s in self.subs), default=0)}
        for kind, lat in self.latency.items():
            a = np.asarray(lat) if lat else np.zeros(1)
            out[kind] = {"messages": len(lat), "p50_ms": float(np.percentile(a, 50)),
                         "p99_ms": float(np.percentile(a, 99)), "max_ms": float(a.max())}
        both = np.asarray(self.latency["trade"] + self.latency["depth"]) if any(self.latency.values()) \
            else np.zeros(1)
        out["p99_ms"] = float(np.percentile(both, 99))
        return out


async def main(host: str, port: int, n: int, path: str) -> None:
    loop = asyncio.get_running_loop()
    run = Run()
    for _ in range(n):
        _, sub = await loop.create_connection(lambda: Subscriber(run, path, f"{host}:{port}"), host, port)
        run.subs.append(sub)
    subscribed = await asyncio.wait_for(asyncio.gather(*(s.ready for s in run.subs)), 120)
    if any(not streams for streams in subscribed):
        raise SystemExit(f"ws_subscribers: a connection is subscribed to nothing ({path})")
    print("ready", flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        if line == "reset":
            run.reset()
            print("ok", flush=True)
        elif line == "report":
            print(json.dumps(run.report()), flush=True)
        elif line == "quit":
            break
    for s in run.subs:
        s.transport.close()


if __name__ == "__main__":
    h, p, count, stream_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    uvloop.run(main(h, p, count, stream_path))
