"""Depth diffs reconstruct the book of a live `xinf serve` under random traffic:
a client that buffers the `@depth` stream, takes the REST snapshot and
applies every diff after it (Binance's procedure, spec/API.md) holds, at
every step, exactly the book the next REST snapshot shows."""
from __future__ import annotations

import asyncio
import json
import random
import time
import urllib.request

import pytest
import websockets

from xinfinity.client import ApiError, XinfClient

from tests.integration.serving import Server, free_port, make_key, xinf

pytestmark = pytest.mark.slow
TIMEOUT_S = 60


def rest_depth(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/api/v3/depth?symbol=BTCUSDT&limit=5000", timeout=TIMEOUT_S) as r:
        return json.loads(r.read())


def book_of(snapshot: dict) -> tuple[dict, dict]:
    return ({p: q for p, q in snapshot["bids"]}, {p: q for p, q in snapshot["asks"]})


def apply(book: tuple[dict, dict], diff: dict) -> None:
    for side, levels in ((book[0], diff["b"]), (book[1], diff["a"])):
        for p, q in levels:
            if set(q) <= set("0."):     # qty 0 ("0.00000000") deletes the level
                side.pop(p, None)
            else:
                side[p] = q


def test_snapshot_plus_diffs_is_the_next_snapshot_at_every_step_of_random_traffic(tmp_path):
    data = tmp_path / "data"
    srv = Server(data, free_port())
    try:
        keys = [make_key(tmp_path, data, f"trader{k}", "--hmac") for k in range(2)]
        for k in range(2):
            for asset, amount in (("USDT", "1000000"), ("BTC", "100")):
                r = xinf("deposit", "--user", f"trader{k}", "--asset", asset, "--amount", amount, "--data-dir", data)
                assert r.returncode == 0, r.stderr + r.stdout
        clients = [XinfClient(srv.url, key) for key in keys]
        rng = random.Random(7)
        open_orders: list[tuple[int, int]] = []

        def trade_a_little():
            """A few random orders around 30000 (resting, crossing) and cancels."""
            for _ in range(rng.randint(1, 6)):
                k = rng.randrange(2)
                if open_orders and rng.random() < 0.3:
                    who, order_id = open_orders.pop(rng.randrange(len(open_orders)))
                    try:
                        clients[who].cancel(order_id)
                    except ApiError as e:       # filled since: no longer open
                        assert e.code == 4001, e
                    continue
                side = rng.choice(("BUY", "SELL"))
                price = f"{30000 + rng.randint(-5, 5)}.{rng.choice(('00', '50'))}"
                ack = clients[k].place("BTC_USDT", side, "LIMIT", qty=f"0.{rng.randint(1, 9)}", price=price)
                if ack["order_status"] in ("NEW", "PARTIALLY_FILLED"):
                    open_orders.append((k, ack["order_id"]))

        async def follow() -> int:
            async with websockets.connect(f"{srv.ws_url}/ws/btcusdt@depth", open_timeout=TIMEOUT_S) as ws:
                await asyncio.sleep(0.5)            # subscribed before the snapshot is taken
                await asyncio.to_thread(trade_a_little)
                snapshot = await asyncio.to_thread(rest_depth, srv.url)
                book, at, first = book_of(snapshot), snapshot["lastUpdateId"], True
                for step in range(25):
                    await asyncio.to_thread(trade_a_little)
                    nxt = await asyncio.to_thread(rest_depth, srv.url)
                    # No order is placed until the stream's diffs have brought the book to this snapshot.
                    deadline = time.monotonic() + TIMEOUT_S
                    while book != book_of(nxt):
                        assert time.monotonic() < deadline, f"step {step}: the diffs give {book}, REST {nxt}"
                        diff = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S))
                        if diff["u"] <= at:
                            continue                # in the snapshot already: dropped, as Binance says
                        if first:
                            assert diff["U"] <= at + 1 <= diff["u"], (at, diff)
                        else:
                            assert diff["U"] == at + 1, f"a gap: the last diff ended at {at}, this one {diff}"
                        apply(book, diff)
                        at, first = diff["u"], False
                        assert at <= nxt["lastUpdateId"], (diff, nxt["lastUpdateId"])
                return step + 1

        assert asyncio.run(follow()) == 25
    finally:
        assert srv.stop() == 0, srv.output()
