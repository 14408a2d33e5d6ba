"""`xinf serve` as a user meets it: the real server on loopback, keys made with
`xinf apikey create`, money moved with `xinf deposit`, orders through the
project's client; then a restart on the same data dir keeps everything."""
from __future__ import annotations

import json
import os

import pytest

from xinfinity.client import ApiError, KeyFile, XinfClient

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


def test_register_login_key_and_the_rest_of_the_order_routes(tmp_path):
    data = tmp_path / "data"
    srv = Server(data, free_port())
    try:
        anon = XinfClient(srv.url)
        uid = anon.request("POST", "/api/v1/auth/register", json={"username": "erin", "email": "erin@example.com",
                                                                  "password": "correct horse"}, signed=False)["user_id"]
        token = anon.request("POST", "/api/v1/auth/login", json={"email": "erin@example.com",
                                                                "password": "correct horse"}, signed=False)["token"]
        made = anon.request("POST", "/api/v1/user/apikeys", json={"label": "bot", "kind": "hmac"}, signed=False,
                            headers={"Authorization": f"Bearer {token}"})
        erin = XinfClient(srv.url, KeyFile.from_json({"api_key": made["api_key"], "secret": made["api_secret"],
                                                      "user_id": uid, "kind": "hmac"}))
        # Not funded: the pre-check refuses it and nothing is sequenced.
        wal = data / "wal" / "wal.log"
        size = wal.stat().st_size
        with pytest.raises(ApiError) as e:
            erin.place("ETH_USDT", "BUY", "LIMIT", qty="1", price="100")
        assert (e.value.code, e.value.msg) == (1002, "Insufficient balance") and wal.stat().st_size == size

        r = xinf("deposit", "--user", "erin", "--asset", "USDT", "--amount", "1000", "--data-dir", data)
        assert r.returncode == 0 and "1000" in r.stdout, r.stderr + r.stdout
        r = xinf("withdraw", "--user", str(uid), "--asset", "USDT", "--amount", "100", "--data-dir", data)
        assert r.returncode == 0 and "900" in r.stdout, r.stderr + r.stdout
        o = erin.place("ETH_USDT", "BUY", "LIMIT", qty="2", price="100")
        assert erin.reduce(o["order_id"], "0.5")["order_status"] == "NEW"
        assert erin.move(o["order_id"], "90")["order_status"] == "NEW"
        mine = erin.order(o["order_id"])
        assert (mine["qty"], mine["price"]) == ("1.500000", "90.00")
        usdt = {x["asset"]: x for x in erin.balances()}["USDT"]
        assert (usdt["available"], usdt["frozen"]) == ("765.0000", "135.0000")     # 900 - 1.5 * 90

        seller = make_key(tmp_path, data, "frank")
        assert xinf("deposit", "--user", "frank", "--asset", "ETH", "--amount", "3", "--data-dir", data).returncode == 0
        f = XinfClient(srv.url, seller)
        sold = f.place("ETH_USDT", "SELL", "MARKET", qty="1")
        assert sold["order_status"] == "FILLED" and sold["fills"][0]["price"] == "90.00"
        assert erin.cancel_delete(o["order_id"])["order_status"] == "CANCELED"
        assert [x["status"] for x in erin.orders(status="all")] == ["CANCELED"]
        assert erin.orders(status="open") == []

        # One exchange per data dir, and a taken port is named before anything starts.
        r = xinf("serve", "--data-dir", data, "--port", free_port())
        assert r.returncode == 2 and "is serving it already" in r.stderr, r.stderr
        r = xinf("serve", "--data-dir", tmp_path / "other", "--port", srv.port)
        assert r.returncode == 2 and f"cannot listen on 127.0.0.1:{srv.port}" in r.stderr, r.stderr
    finally:
        assert srv.stop() == 0, srv.output()
