"""Serve the gateway with its WebSocket side over fakes, for the WebSocket tests:
`python -m tests.gateway.ws.serve_ws PORT WS_PORT SEND_BUFFER_BYTES PING_INTERVAL_S ABORT_AFTER_S`.

Prints one JSON line (the users' keys, a login token of alice's) once the app
is built, then serves HTTP on PORT (granian) and the WebSocket streams on
WS_PORT (gateway/ws/app.py), as a gateway worker does, until SIGTERM or
SIGINT. Besides the gateway's routes, POST /_test/<what> on PORT drives the
server from the test (a JSON body, a JSON answer):

    market     {"updates": [MarketUpdate as lists], "now_ms"}: FakeMarket.apply, then Feed.market,
               for each update in turn (one loop turn: all in one depth window)
    private    {"orders", "trades", "balances": [event fields], "ts_ns": {seq: ns}}: Feed.private
    publish    {"key", "message", "count"}: Hub.publish `count` times, message + {"i": n}
    stats      {"key"}: the key's subscribers, the hub's connections, encodes, slow consumers, flushes
    cid        {"user_id", "order_id", "cid"}: the client order id the feed's lookup answers
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

from tests.gateway.serve_fake import serve_forever
from tests.gateway.ws.fakes import make_ws_world, market_update, records, wall_ms
from xinfinity.accounts import signing
from xinfinity.engine import records as R

JSON = [("content-type", "application/json")]


def key_of(value):
    """A hub key from JSON: a list is a tuple key."""
    return tuple(value) if isinstance(value, list) else value


class Control:
    """The gateway's app, plus the /_test/ routes."""

    def __init__(self, world):
        self.w = world

    async def __rsgi__(self, scope, proto):
        if scope.proto != "http" or not scope.path.startswith("/_test/"):
            return await self.w.app.__rsgi__(scope, proto)
        body = json.loads(await proto() or b"{}")
        answer = getattr(self, scope.path[len("/_test/"):])(body)
        proto.response_bytes(200, JSON, json.dumps(answer).encode())

    def market(self, body):
        for raw in body["updates"]:
            update = market_update(raw)
            self.w.market.apply(update)
            self.w.feed.market(update, body.get("now_ms", wall_ms()))
        return {}

    def private(self, body):
        ts_ns = {int(seq): ns for seq, ns in body["ts_ns"].items()}
        self.w.feed.private(records(R.ORDER_EVENT, body.get("orders", [])),
                            records(R.TRADE_EVENT, body.get("trades", [])),
                            records(R.BALANCE_EVENT, body.get("balances", [])), ts_ns)
        return {}

    def publish(self, body):
        key = key_of(body["key"])
        return {"queued": [self.w.hub.publish(key, {**body["message"], "i": i}) for i in range(body["count"])],
                **self.stats(body)}

    def stats(self, body):
        hub = self.w.hub
        return {"subscribers": hub.subscribers(key_of(body.get("key", ""))), "connections": len(hub.connections),
                "encodes": hub.encodes, "slow_consumers": hub.slow_consumers, "flushes": hub.flushes}

    def cid(self, body):
        self.w.cids[(body["user_id"], body["order_id"])] = body["cid"]
        return {}


async def main(port: int, ws_port: int, send_buffer_bytes: int, ping_interval_s: float, abort_after_s: float):
    w = make_ws_world(ws_port, send_buffer_bytes, ping_interval_s, abort_after_s)
    keys = {}
    for name, k in w.keys.items():
        keys[name] = {"api_key": k.api_key, "secret": k.secret.hex(), "kind": k.kind, "user_id": k.user_id,
                      # what CCXT takes as the secret: the PEM of an Ed25519 seed, an HMAC key's text
                      "ccxt_secret": signing.ed25519_pem(k.secret) if k.kind == signing.ED25519 else k.secret.decode()}
    token = w.tokens.issue(w.keys["alice"].user_id, wall_ms() // 1000)
    print(json.dumps({"keys": keys, "token": token}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ws_server = await w.ws_app.serve("127.0.0.1", ws_port)
    try:
        await serve_forever(Control(w), "127.0.0.1", port, stop=stop, log_enabled=False)
    finally:
        ws_server.close()
        await ws_server.wait_closed()
    print("stopped", flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])))
    # As serve_fake.py: granian's threads may abort the interpreter's finalization; leave at once.
    sys.stdout.flush()
    os._exit(0)
