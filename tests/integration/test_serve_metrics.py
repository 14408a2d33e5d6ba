"""`xinf dashboard --once` against a real `xinf serve` after some trading and a WebSocket
subscription: every stage of the pipeline, from the gateway's pre-check to the push a worker
fans out, shows a non-zero count, and so do the WebSocket gauges (runtime/metrics.py,
runtime/metrics_layout.py, tools/dashboard.py)."""
from __future__ import annotations

import json
import re
import time
import urllib.request

import pytest
from websockets.sync.client import connect

from xinfinity.client import ApiError, XinfClient

from tests.integration.serving import Server, free_port, make_key, xinf

pytestmark = pytest.mark.slow

STAGES = ("gateway.request", "gateway.precheck", "gateway.ring", "gateway.ack", "ubscore", "match", "wal",
          "wal.fsync", "settle", "store", "store.write", "push")
DEADLINE_S = 120        # a loaded 2-core machine: the gauges are sampled every 0.05-0.1 s, a frame takes ~1 s


def _counts(frame: str) -> dict[str, int]:
    counts = {}
    for line in frame.splitlines():
        m = re.match(r"^(\S+)\s+(\d+)\s", line)
        if m:
            counts[m.group(1)] = int(m.group(2))
    return counts


def _websocket(frame: str) -> dict[str, int]:
    m = re.search(r"^websocket \(all workers\): (.*)$", frame, re.M)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))} if m else {}


def _frame_when(data, shows) -> str:
    """The first `xinf dashboard --once` frame that shows(frame) holds of (the last one if none did in time)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        r = xinf("dashboard", "--once", "--data-dir", data)
        assert r.returncode == 0, r.stderr
        if shows(r.stdout) or time.monotonic() > deadline:
            print(r.stdout)
            return r.stdout


def _every_stage_counted(frame: str) -> bool:
    counts = _counts(frame)
    ws = _websocket(frame)
    return (all(counts.get(s, 0) > 0 for s in STAGES) and ws.get("connections", 0) >= 1
            and ws.get("subscriptions", 0) >= 1 and ws.get("sent", 0) > 0
            and re.search(r"trades=[1-9]", frame) is not None)


def test_dashboard_once_shows_every_stage_of_a_serving_exchange_with_a_count(tmp_path):
    data = tmp_path / "data"
    r = xinf("dashboard", "--once", "--data-dir", data)
    assert r.returncode == 1 and "no running instance" in r.stderr, r.stdout + r.stderr
    srv = Server(data, free_port())
    try:
        alice, bob = make_key(tmp_path, data, "alice"), make_key(tmp_path, data, "bob")
        for user, asset, amount in (("alice", "USDT", "20000"), ("bob", "BTC", "1.5")):
            r = xinf("deposit", "--user", user, "--asset", asset, "--amount", amount, "--data-dir", data)
            assert r.returncode == 0, r.stderr + r.stdout
        a, b = XinfClient(srv.url, alice), XinfClient(srv.url, bob)

        def trade():
            a.place("BTC_USDT", "BUY", "LIMIT", qty="0.1", price="20000")
            assert b.place("BTC_USDT", "SELL", "LIMIT", qty="0.1", price="19000")["order_status"] == "FILLED"
        for _ in range(3):
            trade()
        with pytest.raises(ApiError):                   # refused by the pre-check
            a.place("BTC_USDT", "BUY", "LIMIT", qty="100", price="20000")
        # One subscriber on a worker (whichever the kernel picks), answered once subscribed; a trade reaches it.
        with connect(f"{srv.ws_url}/ws", open_timeout=DEADLINE_S) as ws:
            assert json.loads(ws.recv(DEADLINE_S))["type"] == "connected"
            ws.send(json.dumps({"op": "subscribe", "args": ["market.trade.BTC_USDT"]}))
            assert json.loads(ws.recv(DEADLINE_S))["type"] == "subscribed"
            trade()
            while json.loads(ws.recv(DEADLINE_S)).get("type") != "public_trade":
                pass
            frame = _frame_when(data, _every_stage_counted)     # the connection still open
        assert _every_stage_counted(frame), frame
        counts = _counts(frame)
        assert counts["ubscore"] >= 10 and counts["match"] >= 8      # two deposits, eight orders at least
        assert counts["gateway.precheck"] >= 8 and counts["gateway.ring"] >= 8    # every order; every command
        assert re.search(r"ubscore pid \d+ core -?\d+ running", frame), frame
        # The Binance routes count in gateway.request as the 0xInfinity ones do.
        for _ in range(3):
            with urllib.request.urlopen(f"{srv.url}/api/v3/depth?symbol=BTCUSDT", timeout=DEADLINE_S) as reply:
                assert reply.status == 200
        frame = _frame_when(data, lambda f: _counts(f).get("gateway.request", 0) >= counts["gateway.request"] + 3)
        assert _counts(frame)["gateway.request"] >= counts["gateway.request"] + 3, frame
    except BaseException:
        print(srv.output())
        raise
    finally:
        assert srv.stop() == 0, srv.output()
    r = xinf("dashboard", "--once", "--data-dir", data)
    assert r.returncode == 1 and "no running instance" in r.stderr
