"""Hostile requests against the real server: each is refused with the right
status and code, and changes nothing (the WAL, the user's balances and orders)."""
from __future__ import annotations

import json
import time

import msgspec
import pytest

from xinfinity.client import XinfClient

from tests.integration.serving import Server, free_port, make_key, xinf

pytestmark = pytest.mark.slow
ORDER = "/api/v1/private/order"


def _order(**over) -> bytes:
    body = {"symbol": "BTC_USDT", "side": "BUY", "order_type": "LIMIT", "price": "100", "qty": "0.01"}
    body.update(over)
    return msgspec.json.encode({k: v for k, v in body.items() if v is not None})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    data = tmp / "data"
    srv = Server(data, free_port())
    try:
        keys = {"alice": make_key(tmp, data, "alice"), "bob": make_key(tmp, data, "bob"),
                "reader": make_key(tmp, data, "carol", "--permissions", "read"),
                "revoked": make_key(tmp, data, "dave")}
        r = xinf("apikey", "revoke", "--user", "dave", "--key", keys["revoked"].api_key, "--data-dir", data)
        assert r.returncode == 0, r.stderr
        for user in ("alice", "bob", "carol", "dave"):
            assert xinf("deposit", "--user", user, "--asset", "USDT", "--amount", "1000", "--data-dir", data).returncode == 0
        clients = {k: XinfClient(srv.url, v) for k, v in keys.items()}
        bobs = clients["bob"].place("BTC_USDT", "BUY", "LIMIT", qty="0.01", price="100")["order_id"]
        yield srv, data, clients, keys, bobs
    finally:
        srv.stop()


def _state(data, clients):
    a = clients["alice"]
    return ((data / "wal" / "wal.log").stat().st_size, a.balances(), a.orders(status="all"))


def _now_ms():
    return time.time_ns() // 1_000_000


CASES = {
    # name: (client, method, path, body, raw() options, status, code)
    "missing signature": ("alice", "POST", ORDER, _order(), {"signed": False}, 401, 2001),
    "garbled header": ("alice", "POST", ORDER, _order(), {"headers": {"Authorization": "ZXINF v1.nope"}}, 401, 2002),
    "bad signature": ("alice", "POST", ORDER, _order(),
                      {"headers": {"Authorization": "ZXINF v1.AK_0000000000000000.1.abc"}}, 401, 2003),
    "tampered body": ("alice", "POST", ORDER, _order(qty="5"), {"sign_body": _order()}, 401, 2002),
    "expired nonce": ("alice", "POST", ORDER, _order(), {"ts_nonce": _now_ms() - 120_000}, 401, 2004),
    "future nonce": ("alice", "POST", ORDER, _order(), {"ts_nonce": _now_ms() + 120_000}, 401, 2004),
    "revoked key": ("revoked", "POST", ORDER, _order(), {}, 401, 2003),
    "key without trade permission": ("reader", "POST", ORDER, _order(), {}, 403, 2006),
    "negative qty": ("alice", "POST", ORDER, _order(qty="-1"), {}, 400, 1003),
    "zero price": ("alice", "POST", ORDER, _order(price="0"), {}, 400, 1003),
    "overflowing qty": ("alice", "POST", ORDER, _order(qty="99999999999999"), {}, 400, 1003),
    "over-precise price": ("alice", "POST", ORDER, _order(price="100.001"), {}, 400, 1003),
    "exponent": ("alice", "POST", ORDER, _order(qty="1e3"), {}, 400, 1003),
    "number, not a string": ("alice", "POST", ORDER, b'{"symbol":"BTC_USDT","side":"BUY","order_type":"LIMIT",'
                             b'"price":100.5,"qty":"1"}', {}, 400, 1001),
    "unknown symbol": ("alice", "POST", ORDER, _order(symbol="DOGE_USDT"), {}, 400, 1001),
    "unknown asset": ("alice", "GET", "/api/v1/private/balances?asset=DOGE", b"", {}, 400, 1001),
    "unknown field": ("alice", "POST", ORDER, _order(leverage="100"), {}, 400, 1001),
    "truncated body": ("alice", "POST", ORDER, _order()[:-7], {}, 400, 1001),
    "malformed body": ("alice", "POST", ORDER, b"{symbol: BTC_USDT}", {}, 400, 1001),
    "wrong content type": ("alice", "POST", ORDER, _order(), {"headers": {"Content-Type": "text/plain"}}, 415, 4015),
    "oversized body": ("alice", "POST", ORDER, b'{"symbol":"' + b"A" * 20000 + b'"}', {}, 413, 4013),
}


@pytest.mark.parametrize("name", CASES)
def test_a_hostile_request_is_refused_and_changes_nothing(world, name):
    srv, data, clients, keys, bobs = world
    who, method, path, body, opts, status, code = CASES[name]
    before = _state(data, clients)
    st, _, answer = clients[who].raw(method, path, body=body, **opts)
    assert (st, json.loads(answer)["code"]) == (status, code), answer
    assert _state(data, clients) == before


def test_a_replayed_request_is_refused(world):
    srv, data, clients, keys, bobs = world
    a = clients["alice"]
    nonce = _now_ms()
    body = _order(price="1")
    st, _, answer = a.raw("POST", ORDER, body=body, ts_nonce=nonce)
    assert st == 200, answer
    before = _state(data, clients)
    st, _, answer = a.raw("POST", ORDER, body=body, ts_nonce=nonce)
    assert (st, json.loads(answer)["code"]) == (401, 2005)
    assert _state(data, clients) == before


def test_another_users_order_cannot_be_read_or_cancelled(world):
    srv, data, clients, keys, bobs = world
    a = clients["alice"]
    before = _state(data, clients)
    for method, path, body in (("GET", f"/api/v1/private/order/{bobs}", b""),
                               ("DELETE", f"/api/v1/private/order/{bobs}", b""),
                               ("POST", "/api/v1/private/cancel", msgspec.json.encode({"order_id": bobs}))):
        st, _, answer = a.raw(method, path, body=body)
        assert (st, json.loads(answer)["code"]) == (404, 4001), (method, path, answer)
    assert _state(data, clients) == before
    assert clients["bob"].order(bobs)["status"] == "NEW"
