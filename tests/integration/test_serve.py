"""`xinf serve` as a user meets it: the real server on loopback, keys made with
`xinf apikey create`, money moved with `xinf deposit`, orders through the
project's client; then a restart on the same data dir keeps everything."""
from __future__ import annotations

import json
import os

import pytest

from xinfinity.client import ApiError, XinfClient

from tests.integration.serving import Server, free_port, make_key, xinf

pytestmark = pytest.mark.slow


def test_trade_query_restart_and_keep_everything(tmp_path):
    data = tmp_path / "data"
    port = free_port()
    srv = Server(data, port)
    try:
        alice, bob = make_key(tmp_path, data, "alice"), make_key(tmp_path, data, "bob", "--hmac")
        for user, asset, amount in (("alice", "USDT", "20000"), ("bob", "BTC", "1.5")):
            r = xinf("deposit", "--user", user, "--asset", asset, "--amount", amount, "--data-dir", data)
            assert r.returncode == 0, r.stderr + r.stdout
        a, b = XinfClient(srv.url, alice), XinfClient(srv.url, bob)
        assert {x["asset"]: x["available"] for x in a.balances()}["USDT"].startswith("20000.")

        buy = a.place("BTC_USDT", "BUY", "LIMIT", qty="0.5", price="20000", cid="my-first")
        assert buy["order_status"] == "NEW" and buy["seq"] > 0
        # The answer holds: every query reflects it (read your writes).
        assert a.order(buy["order_id"])["status"] == "NEW"
        assert {x["asset"]: x["frozen"] for x in a.balances()}["USDT"].startswith("10000")
        # A retry with the same client order id cannot place it twice.
        with pytest.raises(ApiError) as e:
            a.place("BTC_USDT", "BUY", "LIMIT", qty="0.5", price="20000", cid="my-first")
        assert "Duplicate client order id" in e.value.msg

        sell = b.place("BTC_USDT", "SELL", "LIMIT", qty="0.2", price="19000")
        assert sell["order_status"] == "FILLED"
        assert [(f["price"], f["qty"], f["role"]) for f in sell["fills"]] == [("20000.00", "0.200000", "TAKER")]
        mine = a.order(buy["order_id"])
        assert (mine["status"], mine["filled_qty"]) == ("PARTIALLY_FILLED", "0.200000")
        assert [t["role"] for t in a.trades("BTC_USDT")] == ["MAKER"]
        # Another user's order is not found, and cannot be cancelled.
        with pytest.raises(ApiError) as e:
            b.order(buy["order_id"])
        assert e.value.http_status == 404
        before = (a.orders(status="all"), a.balances())
    finally:
        assert srv.stop() == 0, srv.output()

    srv = Server(data, port)
    try:
        a, b = XinfClient(srv.url, alice), XinfClient(srv.url, bob)
        assert (a.orders(status="all"), a.balances()) == before
        done = a.cancel(buy["order_id"])
        assert done["order_status"] == "CANCELED"
        usdt = {x["asset"]: x for x in a.balances()}["USDT"]
        assert usdt["frozen"].strip("0.") == "" and usdt["available"].startswith("16000.")   # 20000 - 0.2 * 20000
        # The nonce high-water mark survived: a request signed before the restart is refused.
        st, _, body = a.raw("GET", "/api/v1/private/balances/all", ts_nonce=1)
        assert st == 401 and json.loads(body)["code"] in (2004, 2005)
    finally:
        assert srv.stop() == 0, srv.output()
    assert not (data / "serve.json").exists()
    assert os.path.getsize(data / "wal" / "wal.log") > 0
