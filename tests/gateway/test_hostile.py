"""The hostile table: every refusal answers its HTTP status and code, and
changes nothing. After each case the exchange has recorded no command and no
balance moved; a request refused before its signature verified advanced no
nonce."""
from __future__ import annotations

import copy
from typing import Callable, NamedTuple

import msgspec
import pytest

from xinfinity.accounts import signing
from xinfinity.accounts.permissions import READ

from tests.gateway.conftest import make_world

PRV = "/api/v1/private"
ORDER = {"symbol": "BTC_USDT", "side": "BUY", "order_type": "LIMIT", "price": "30000", "qty": "0.5"}


def order(**changes):
    body = dict(ORDER, **changes)
    return {k: v for k, v in body.items() if v is not None}


def post_order(w, body=None, **kw):
    return w.client.request("POST", f"{PRV}/order", order() if body is None else body, **kw)


class Case(NamedTuple):
    request: Callable        # (world, what setup returned) -> Answer
    status: int
    code: int
    nonce: str               # AUTH_FAILURE: no nonce may advance; AFTER_AUTH: the signature was good
    setup: Callable = lambda w: None    # runs before the state is recorded


def bobs_order(w):
    """An order of bob's (alice must neither see nor touch it)."""
    w.exchange.balance[(w.bob.user_id, 2)] = [10**12, 0]
    r = post_order(w, key=w.bob)
    assert r.status == 200, r.json
    w.exchange.commands.clear()
    return r.data["order_id"]


def alices_order(w):
    r = post_order(w, key=w.alice)
    assert r.status == 200, r.json
    w.exchange.commands.clear()
    return r.data["order_id"]


def first_of_two(w):
    """Send a signed request once, and return its Authorization header for a replay."""
    header = signing.sign_request(w.alice.kind, w.alice.api_key, w.alice.secret, w.exchange.clock_ms, "POST",
                                  f"{PRV}/order", msgspec.json.encode(order()))
    assert post_order(w, headers={"authorization": header}).status == 200
    w.exchange.commands.clear()
    return header


def revoke_alice(w):
    w.store.revoke_api_key(w.alice.user_id, w.alice.api_key, 0)


def oversized(w, _=None):
    body = b'{"symbol":"' + b"X" * 20000 + b'"}'
    return w.client.request("POST", f"{PRV}/order", body, key=w.alice)


def oversized_chunked(w, _):
    return w.client.request("POST", f"{PRV}/order", key=w.alice, chunks=[b"{" + b" " * 9000] * 3)


def alices_token(w):
    return w.tokens.issue(w.alice.user_id, w.exchange.clock_ms // 1000)


OVERFLOW_QTY = "92233720368.54775808"     # 2**63 units of BTC (8 decimals)
AUTH_FAILURE, AFTER_AUTH = "no nonce", "nonce"

CASES = {
    # name: Case(request, status, code, nonce[, setup])
    "missing auth": (lambda w, _: post_order(w), 401, 2001, AUTH_FAILURE),
    "garbled header": (lambda w, _: post_order(w, headers={"authorization": "ZXINF v1.nonsense"}), 401, 2002,
                       AUTH_FAILURE),
    "other scheme": (lambda w, _: post_order(w, headers={"authorization": "Basic YWxpY2U6cHc="}), 401, 2002,
                     AUTH_FAILURE),
    "bad base62": (lambda w, _: post_order(w, headers={
        "authorization": f"ZXINF v1.{w.alice.api_key}.{w.exchange.clock_ms}.not*base62"}), 401, 2002, AUTH_FAILURE),
    "other key's signature": (lambda w, _: post_order(w, key=w.alice._replace(secret=w.admin.secret)), 401, 2002,
                              AUTH_FAILURE),
    "hmac signed with a wrong secret": (lambda w, _: post_order(w, key=w.bob._replace(secret=b"x" * 32)), 401, 2002,
                                        AUTH_FAILURE),
    "tampered body": (lambda w, _: post_order(w, key=w.alice, sign_body=b'{"symbol":"BTC_USDT"}'), 401, 2002,
                      AUTH_FAILURE),
    "tampered query": (lambda w, _: w.client.request("GET", f"{PRV}/orders?symbol=ETH_USDT", key=w.alice,
                                                  sign_path=f"{PRV}/orders?symbol=BTC_USDT"), 401, 2002, AUTH_FAILURE),
    "signed for another path": (lambda w, _: post_order(w, key=w.alice, sign_path=f"{PRV}/cancel"), 401, 2002,
                                AUTH_FAILURE),
    "replayed nonce": Case(lambda w, header: post_order(w, headers={"authorization": header}), 401, 2005,
                           AUTH_FAILURE, first_of_two),
    "expired nonce": (lambda w, _: post_order(w, key=w.alice, ts_nonce=w.exchange.clock_ms - 30001), 401, 2004,
                      AUTH_FAILURE),
    "future nonce": (lambda w, _: post_order(w, key=w.alice, ts_nonce=w.exchange.clock_ms + 30001), 401, 2004,
                     AUTH_FAILURE),
    "unknown key": (lambda w, _: post_order(w, key=w.alice._replace(api_key="AK_0123456789ABCDEF")), 401, 2003,
                    AUTH_FAILURE),
    "revoked key": Case(lambda w, _: post_order(w, key=w.alice), 401, 2003, AUTH_FAILURE, revoke_alice),
    "key without TRADE": Case(lambda w, key: post_order(w, key=key), 403, 2006, AFTER_AUTH,
                              lambda w: w.key(w.alice.user_id, READ)),
    "trade key on an admin route": (lambda w, _: w.client.request("POST", "/api/v1/admin/deposit", {
        "user_id": w.alice.user_id, "asset": "USDT", "amount": "1"}, key=w.alice), 403, 2006, AFTER_AUTH),
    "JWT route without a token": (lambda w, _: w.client.request("GET", "/api/v1/user/apikeys"), 401, 2001,
                                  AUTH_FAILURE),
    "JWT route with a bad token": (lambda w, _: w.client.request("GET", "/api/v1/user/apikeys", token="forged"), 401,
                                   2002, AUTH_FAILURE),
    "a user asks for an admin key": (lambda w, _: w.client.request(
        "POST", "/api/v1/user/apikeys", {"permissions": ["read", "admin"]}, token=alices_token(w)), 403, 2006,
        AUTH_FAILURE),
    "unknown permission name": (lambda w, _: w.client.request(
        "POST", "/api/v1/user/apikeys", {"permissions": ["root"]}, token=alices_token(w)), 400, 1001,
        AUTH_FAILURE),
    # another user's order: never revealed, never touched
    "get another user's order": Case(lambda w, oid: w.client.request("GET", f"{PRV}/order/{oid}", key=w.alice),
                                     404, 4001, AFTER_AUTH, bobs_order),
    "cancel another user's order": Case(lambda w, oid: w.client.request("POST", f"{PRV}/cancel", {"order_id": oid},
                                                                        key=w.alice), 404, 4001, AFTER_AUTH,
                                        bobs_order),
    "delete another user's order": Case(lambda w, oid: w.client.request("DELETE", f"{PRV}/order/{oid}", key=w.alice),
                                        404, 4001, AFTER_AUTH, bobs_order),
    "reduce another user's order": Case(lambda w, oid: w.client.request("POST", f"{PRV}/order/reduce", {
        "order_id": oid, "reduce_qty": "0.1"}, key=w.alice), 404, 4001, AFTER_AUTH, bobs_order),
    "move another user's order": Case(lambda w, oid: w.client.request("POST", f"{PRV}/order/move", {
        "order_id": oid, "new_price": "1"}, key=w.alice), 404, 4001, AFTER_AUTH, bobs_order),
    "order id that never existed": (lambda w, _: w.client.request("GET", f"{PRV}/order/999999", key=w.alice), 404, 4001,
                                    AFTER_AUTH),
    # amounts
    "negative qty": (lambda w, _: post_order(w, order(qty="-1"), key=w.alice), 400, 1003, AFTER_AUTH),
    "zero qty": (lambda w, _: post_order(w, order(qty="0.000"), key=w.alice), 400, 1003, AFTER_AUTH),
    "zero price": (lambda w, _: post_order(w, order(price="0"), key=w.alice), 400, 1003, AFTER_AUTH),
    "overflowing qty": (lambda w, _: post_order(w, order(qty=OVERFLOW_QTY), key=w.alice), 400, 1003, AFTER_AUTH),
    "over-precise qty": (lambda w, _: post_order(w, order(qty="0.123456789"), key=w.alice), 400, 1003, AFTER_AUTH),
    "over-precise price": (lambda w, _: post_order(w, order(price="30000.001"), key=w.alice), 400, 1003, AFTER_AUTH),
    "exponent price": (lambda w, _: post_order(w, order(price="1e3"), key=w.alice), 400, 1003, AFTER_AUTH),
    "float JSON qty": (lambda w, _: post_order(w, order(qty=0.5), key=w.alice), 400, 1001, AFTER_AUTH),
    "integer JSON price": (lambda w, _: post_order(w, order(price=30000), key=w.alice), 400, 1001, AFTER_AUTH),
    "over-precise reduce_qty": Case(lambda w, oid: w.client.request("POST", f"{PRV}/order/reduce", {
        "order_id": oid, "reduce_qty": "0.123456789"}, key=w.alice), 400, 1003, AFTER_AUTH, alices_order),
    "zero reduce_qty": Case(lambda w, oid: w.client.request("POST", f"{PRV}/order/reduce", {
        "order_id": oid, "reduce_qty": "0"}, key=w.alice), 400, 1003, AFTER_AUTH, alices_order),
    "over-precise new_price": Case(lambda w, oid: w.client.request("POST", f"{PRV}/order/move", {
        "order_id": oid, "new_price": "1.001"}, key=w.alice), 400, 1003, AFTER_AUTH, alices_order),
    "negative deposit": (lambda w, _: w.client.request("POST", "/api/v1/admin/deposit", {
        "user_id": 1, "asset": "USDT", "amount": "-5"}, key=w.admin), 400, 1003, AFTER_AUTH),
    "over-precise deposit": (lambda w, _: w.client.request("POST", "/api/v1/admin/deposit", {
        "user_id": 1, "asset": "USDT", "amount": "0.0000001"}, key=w.admin), 400, 1003, AFTER_AUTH),
    # names
    "unknown symbol": (lambda w, _: post_order(w, order(symbol="DOGE_USDT"), key=w.alice), 400, 1001, AFTER_AUTH),
    "unknown symbol in orders": (lambda w, _: w.client.request("GET", f"{PRV}/orders?symbol=DOGE_USDT", key=w.alice),
                                 400, 1001, AFTER_AUTH),
    "unknown symbol in trades": (lambda w, _: w.client.request("GET", f"{PRV}/trades?symbol=btc_usdt", key=w.alice),
                                 400, 1001, AFTER_AUTH),
    "unknown asset in balances": (lambda w, _: w.client.request("GET", f"{PRV}/balances?asset=DOGE", key=w.alice),
                                  400, 1001, AFTER_AUTH),
    "unknown asset_id in balances": (lambda w, _: w.client.request("GET", f"{PRV}/balances?asset_id=99", key=w.alice),
                                     400, 1001, AFTER_AUTH),
    "both asset and asset_id": (lambda w, _: w.client.request("GET", f"{PRV}/balances?asset=BTC&asset_id=1",
                                                           key=w.alice), 400, 1001, AFTER_AUTH),
    "unknown asset to deposit": (lambda w, _: w.client.request("POST", "/api/v1/admin/deposit", {
        "user_id": 1, "asset": "DOGE", "amount": "5"}, key=w.admin), 400, 1001, AFTER_AUTH),
    # the order's shape
    "limit without price": (lambda w, _: post_order(w, order(price=None), key=w.alice), 400, 1001, AFTER_AUTH),
    "limit with quote_qty": (lambda w, _: post_order(w, order(quote_qty="5"), key=w.alice), 400, 1001, AFTER_AUTH),
    "market buy by qty alone": (lambda w, _: post_order(w, order(order_type="MARKET", price=None), key=w.alice), 400,
                                1001, AFTER_AUTH),
    "market sell with a price": (lambda w, _: post_order(w, order(order_type="MARKET", side="SELL"), key=w.alice), 400,
                                 1001, AFTER_AUTH),
    "unknown side": (lambda w, _: post_order(w, order(side="HOLD"), key=w.alice), 400, 1001, AFTER_AUTH),
    "cid with a space": (lambda w, _: post_order(w, order(cid="a b"), key=w.alice), 400, 1001, AFTER_AUTH),
    "cid of 37 characters": (lambda w, _: post_order(w, order(cid="c" * 37), key=w.alice), 400, 1001, AFTER_AUTH),
    "unknown field": (lambda w, _: post_order(w, order(leverage="100"), key=w.alice), 400, 1001, AFTER_AUTH),
    "order_id of zero": (lambda w, _: w.client.request("POST", f"{PRV}/cancel", {"order_id": 0}, key=w.alice), 400,
                         1001, AFTER_AUTH),
    # the body itself
    "oversized body": (oversized, 413, 4013, AUTH_FAILURE),
    "oversized chunked body": (oversized_chunked, 413, 4013, AUTH_FAILURE),
    "truncated JSON": (lambda w, _: post_order(w, b'{"symbol": "BTC_USDT", "side"', key=w.alice), 400, 1001,
                       AFTER_AUTH),
    "malformed JSON": (lambda w, _: post_order(w, b"{symbol: BTC_USDT}", key=w.alice), 400, 1001, AFTER_AUTH),
    "a JSON array": (lambda w, _: post_order(w, b"[]", key=w.alice), 400, 1001, AFTER_AUTH),
    "empty body": (lambda w, _: w.client.request("POST", f"{PRV}/order", key=w.alice, chunks=[b""]), 400, 1001,
                   AFTER_AUTH),
    "wrong content type": (lambda w, _: post_order(w, key=w.alice, content_type="text/plain"), 415, 4015, AUTH_FAILURE),
    "no content type": (lambda w, _: post_order(w, key=w.alice, content_type=None), 415, 4015, AUTH_FAILURE),
    "bad content length": (lambda w, _: post_order(w, key=w.alice, headers={"content-length": "-1"}), 400, 1001,
                           AUTH_FAILURE),
    "a body on a GET": (lambda w, _: w.client.request("GET", f"{PRV}/orders", b"{}", key=w.alice), 400, 1001,
                        AFTER_AUTH),
    # the query string
    "limit of 0": (lambda w, _: w.client.request("GET", f"{PRV}/orders?limit=0", key=w.alice), 400, 1001, AFTER_AUTH),
    "limit above 1000": (lambda w, _: w.client.request("GET", f"{PRV}/trades?limit=1001", key=w.alice), 400, 1001,
                         AFTER_AUTH),
    "limit not a number": (lambda w, _: w.client.request("GET", f"{PRV}/orders?limit=ten", key=w.alice), 400, 1001,
                           AFTER_AUTH),
    "unknown status": (lambda w, _: w.client.request("GET", f"{PRV}/orders?status=closed", key=w.alice), 400, 1001,
                       AFTER_AUTH),
    "unknown query parameter": (lambda w, _: w.client.request("GET", f"{PRV}/orders?sort=asc", key=w.alice), 400, 1001,
                                AFTER_AUTH),
    "query on a route without one": (lambda w, _: w.client.request("GET", f"{PRV}/account?x=1", key=w.alice), 400, 1001,
                                     AFTER_AUTH),
    # routing
    "no such path": (lambda w, _: w.client.request("GET", "/api/v1/private/wallet", key=w.alice), 404, 4004,
                     AUTH_FAILURE),
    "no such method": (lambda w, _: w.client.request("PUT", f"{PRV}/order", order(), key=w.alice), 405, 4005,
                       AUTH_FAILURE),
    "order id not a number": (lambda w, _: w.client.request("GET", f"{PRV}/order/abc", key=w.alice), 404, 4004,
                              AUTH_FAILURE),
}


def _state(w):
    return (copy.deepcopy(w.exchange.balance), dict(w.exchange.orders_by_id), dict(w.store.nonces),
            {k: r.revoked for k, r in w.store.keys.items()})


@pytest.mark.parametrize("name", CASES)
def test_hostile_request_is_refused_and_changes_nothing(name):
    case = Case(*CASES[name])
    w = make_world()
    made = case.setup(w)
    balances, orders, nonces, keys = _state(w)
    r = case.request(w, made)
    assert (r.status, r.json["code"]) == (case.status, case.code), r.json
    assert set(r.json) == {"code", "msg"} and r.json["msg"]
    assert w.exchange.commands == [], "a refused request reached the exchange"
    after = _state(w)
    assert (after[0], after[1], after[3]) == (balances, orders, keys), "a refused request changed state"
    if case.nonce == AUTH_FAILURE:
        assert after[2] == nonces, "a request refused before its signature verified advanced a nonce"


def test_a_failed_signature_does_not_burn_the_nonce_the_genuine_request_then_uses():
    w = make_world()
    ts = w.exchange.clock_ms + 5
    forged = post_order(w, key=w.alice._replace(secret=bytes(32)), ts_nonce=ts)
    assert forged.status == 401
    genuine = post_order(w, key=w.alice, ts_nonce=ts)
    assert genuine.status == 200, genuine.json


def test_an_oversized_body_with_a_length_is_refused_unread():
    w = make_world()
    r = oversized(w)
    assert r.status == 413 and r.proto.read == 0


def test_the_body_limit_is_the_configured_one():
    from xinfinity.config import Gateway
    w = make_world(Gateway(max_body_bytes=64))
    assert post_order(w, key=w.alice).status == 413
    assert w.client.request("POST", f"{PRV}/cancel", {"order_id": 1}, key=w.alice).status == 404
