"""The WebSocket tests' server (serve_ws.py in a subprocess, one per session:
HTTP on one port, the WebSocket streams on another, as `xinf serve`) and what
drives it.

`Driver` calls the server's /_test/ routes and keeps the sequences the fed
data must follow (the next depth update id of each symbol, trade ids, seqs),
so tests sharing the server never collide. Every wait has a deadline;
nothing sleeps and hopes.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.client
import itertools
import json
import socket
import time

import msgspec
import nacl.signing
import pytest
import websockets

from tests.gateway.conftest import served
from xinfinity.accounts import signing

SEND_BUFFER_BYTES = 256 * 1024  # the server hub's bound on a connection's unsent bytes (small: a test passes it)
PING_INTERVAL_S = 1.0       # the server's ping frames (short: a test waits for them)
ABORT_AFTER_S = 60.0        # a slow consumer's close handshake is cut off after this (long: the test reads its backlog)
TIMEOUT_S = 20.0            # the longest any single wait may take on a loaded machine
BTC_USDT, ETH_USDT = 0, 1
T0_MS = 1_700_000_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Driver:
    def __init__(self, port: int, ws_port: int, info: dict):
        self.port = port                # HTTP: the gateway's routes and /_test/
        self.ws_port = ws_port          # the WebSocket streams
        self.keys = info["keys"]
        self.token = info["token"]
        self.update_ids = {BTC_USDT: 0, ETH_USDT: 0}        # the last u fed, per symbol
        self.trade_ids = itertools.count(1)
        self.seqs = itertools.count(1)
        self.order_ids = itertools.count(1_000_000)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    def control(self, what: str, body: dict | None = None) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT_S)
        try:
            conn.request("POST", f"/_test/{what}", body=json.dumps(body or {}))
            r = conn.getresponse()
            data = r.read()
            assert r.status == 200, data
            return json.loads(data)
        finally:
            conn.close()

    async def acontrol(self, what: str, body: dict | None = None) -> dict:
        return await asyncio.to_thread(self.control, what, body)

    def diff(self, symbol_id: int, bids, asks, time_ms: int = T0_MS) -> list:
        """The next diff of the symbol (one seq), as serve_ws takes it."""
        first = last = self.update_ids[symbol_id] + 1
        self.update_ids[symbol_id] = last
        return [symbol_id, first, last, time_ms, [list(x) for x in bids], [list(x) for x in asks]]

    def trade(self, symbol_id: int, price: int, qty: int, time_ms: int, buyer_is_maker: bool = False) -> list:
        """A PublicTrade's fields (both symbols: price 2 decimals, base 8, quote 6)."""
        trade_id = next(self.trade_ids)
        return [trade_id, symbol_id, price, qty, price * qty // 10**4, time_ms, buyer_is_maker, 0, 0, trade_id]

    def signed(self, name: str, timestamp: int, **params) -> dict:
        """Binance WebSocket API params signed by `name`'s key: over the sorted name=value pairs."""
        k = self.keys[name]
        params = {"apiKey": k["api_key"], "timestamp": timestamp, **params}
        payload = "&".join(f"{n}={params[n]}" for n in sorted(params)).encode()
        secret = bytes.fromhex(k["secret"])
        if k["kind"] == signing.HMAC:
            params["signature"] = hmac.new(secret, payload, hashlib.sha256).hexdigest()
        else:
            params["signature"] = base64.b64encode(nacl.signing.SigningKey(secret).sign(payload).signature).decode()
        return params

    def login(self, name: str, ts_nonce: int, path: str = "/ws") -> str:
        """A 0xInfinity login message's Authorization value, signed by `name`'s key over `GET <path>`."""
        k = self.keys[name]
        return signing.sign_request(k["kind"], k["api_key"], bytes.fromhex(k["secret"]), ts_nonce, "GET", path)

    async def wait_subscribers(self, key, n: int) -> None:
        """Until the server's hub has n subscribers of `key`."""
        deadline = time.monotonic() + TIMEOUT_S
        while (await self.acontrol("stats", {"key": key}))["subscribers"] != n:
            assert time.monotonic() < deadline, f"{key} never had {n} subscribers"
            await asyncio.sleep(0.02)


@pytest.fixture(scope="session")
def server():
    port = ws_port = free_port()
    while ws_port == port:
        ws_port = free_port()
    with served("tests.gateway.ws.serve_ws", [port, ws_port, SEND_BUFFER_BYTES, PING_INTERVAL_S, ABORT_AFTER_S],
                [ws_port, port], TIMEOUT_S) as info:
        yield Driver(port, ws_port, info)


def connect(server: Driver, path: str, **options):
    """`async with connect(server, "/ws") as ws`."""
    return websockets.connect(server.url + path, open_timeout=TIMEOUT_S, **options)


async def recv(ws, timeout: float = TIMEOUT_S) -> dict:
    """The next message."""
    return msgspec.json.decode(await asyncio.wait_for(ws.recv(), timeout))


async def recv_until(ws, predicate, timeout: float = TIMEOUT_S) -> list[dict]:
    """Messages up to and including the first that satisfies `predicate`."""
    deadline = time.monotonic() + timeout
    got = []
    while True:
        got.append(await recv(ws, max(0.01, deadline - time.monotonic())))
        if predicate(got[-1]):
            return got


async def quiet(ws) -> list[dict]:
    """Everything queued for a 0xInfinity connection before now: ping it, read to the pong
    (the hub writes a connection's messages in queue order, so nothing queued earlier is
    still on its way)."""
    await ws.send('{"op":"ping"}')
    got = await recv_until(ws, lambda m: m.get("type") == "pong")
    return got[:-1]


async def binance_quiet(ws, request_id: int) -> list[dict]:
    """The same for a Binance stream connection, with LIST_SUBSCRIPTIONS as the ping."""
    await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": request_id}))
    got = await recv_until(ws, lambda m: m.get("id") == request_id and "result" in m)
    return got[:-1]
