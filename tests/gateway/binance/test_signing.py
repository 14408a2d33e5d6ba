"""Signed requests of the Binance API: HMAC and Ed25519 signatures over query + body,
the timestamp window, replays, keys and permissions; a refused request sends nothing."""
from __future__ import annotations

import asyncio
import hashlib
from urllib.parse import urlencode

import msgspec
import pytest

from tests.gateway.binance.conftest import BinanceClient, BKey, FakeMarketData, new_key, seed_market, sign
from tests.gateway.conftest import T0_MS, FakeExchange, FakeHeaders, FakeProto, FakeScope, FakeTokenIssuer
from xinfinity.accounts import signing
from xinfinity.accounts.cli import key_file
from xinfinity.accounts.permissions import READ, TRADE
from xinfinity.accounts.store import AccountStore
from xinfinity.config import Gateway
from xinfinity.gateway.app import build_app

V3 = "/api/v3"
ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.5",
         "price": "29000"}


def account(bw, key, **kw):
    return bw.client.call("GET", V3 + "/account", key=key, **kw)


def refused_sends_nothing(bw, r, status, code, word=""):
    assert (r.status, r.code) == (status, code), r
    assert word in r.json["msg"], r
    assert bw.exchange.commands == []


def test_an_hmac_key_signs_in_hex_with_its_secret_text(bw):
    r = account(bw, bw.hmac_key)
    assert r.status == 200 and r.json["uid"] == bw.hmac_key.user_id


def test_an_ed25519_key_signs_in_base64_percent_encoded(bw):
    r = bw.client.call("POST", V3 + "/order", ORDER, key=bw.ed_key)
    assert r.status == 200, r
    assert bw.exchange.commands[0][0] == "place"


def test_the_payload_is_the_query_followed_by_the_body_without_a_separator(bw):
    query, form = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT"}, {"timeInForce": "GTC", "quantity": "0.5",
                                                                       "price": "29000"}
    r = bw.client.call("POST", V3 + "/order", query=query, form=form, key=bw.hmac_key)
    assert r.status == 200, r
    # The same request signed over query + "&" + body does not verify.
    form_ts = {**form, "timestamp": T0_MS}
    wrong = sign(bw.hmac_key, (urlencode(query) + "&" + urlencode(form_ts)).encode())
    r = bw.client.call("POST", V3 + "/order", query=query, form=form, key=bw.hmac_key, signature=wrong)
    assert r.code == -1022 and len(bw.exchange.commands) == 1


def test_a_tampered_body_is_1022_and_sends_nothing(bw):
    payload = "&".join(f"{k}={v}" for k, v in {**ORDER, "timestamp": T0_MS}.items()).encode()
    signature = sign(bw.hmac_key, payload)
    tampered = payload.replace(b"quantity=0.5", b"quantity=5.0") + b"&signature=" + signature.encode()
    r = bw.client.call("POST", V3 + "/order", body=tampered, headers={"x-mbx-apikey": bw.hmac_key.api_key})
    refused_sends_nothing(bw, r, 400, -1022, "HMAC-SHA256 in hex")
    assert bw.store.signature_claims == []          # a forgery claims nothing


def test_a_wrong_or_malformed_ed25519_signature_is_1022(bw):
    for bad in ("AAAA", "not base64!", sign(bw.ed_key, b"something else")):
        r = bw.client.call("POST", V3 + "/order", ORDER, key=bw.ed_key, signature=bad)
        refused_sends_nothing(bw, r, 400, -1022, "Ed25519 in base64")


@pytest.mark.parametrize("offset_ms,recv_window,ok", [
    (-5000, None, True), (-5001, None, False),            # recvWindow defaults to 5000
    (999, None, True), (1000, None, False),               # at most 1000 ms ahead of the server
    (-59_000, 60000, True), (-2000, 1999, False), (-2000, "2000.000", True)])
def test_the_timestamp_window(bw, offset_ms, recv_window, ok):
    r = account(bw, bw.hmac_key, ts=T0_MS + offset_ms, recv_window=recv_window)
    assert (r.status == 200) == ok, r
    if not ok:
        assert r.code == -1021 and ("recvWindow" in r.json["msg"] or "ahead" in r.json["msg"])


def test_microsecond_timestamps_and_recv_windows(bw):
    assert account(bw, bw.hmac_key, ts=T0_MS * 1000 - 5_000_000).status == 200
    assert account(bw, bw.hmac_key, ts=T0_MS * 1000 - 5_000_001).code == -1021
    assert account(bw, bw.hmac_key, ts=T0_MS * 1000 - 1_500, recv_window="1.5").status == 200
    assert account(bw, bw.hmac_key, ts=T0_MS * 1000 - 1_501, recv_window="1.5").code == -1021


def test_bad_timestamp_and_recv_window_parameters(bw):
    assert account(bw, bw.hmac_key, recv_window=60001).code == -1131
    assert account(bw, bw.hmac_key, recv_window="1.2345").code == -1100
    assert account(bw, bw.hmac_key, ts="soon").code == -1100
    r = bw.client.call("GET", V3 + "/account", headers={"x-mbx-apikey": bw.hmac_key.api_key})
    assert (r.status, r.code) == (400, -1102) and "'timestamp'" in r.json["msg"]
    r = bw.client.call("GET", V3 + "/account", {"timestamp": T0_MS}, headers={"x-mbx-apikey": bw.hmac_key.api_key})
    assert r.code == -1102 and "'signature'" in r.json["msg"]


def test_an_exact_replay_is_refused_and_sends_nothing_more(bw):
    payload = "&".join(f"{k}={v}" for k, v in {**ORDER, "timestamp": T0_MS}.items()).encode()
    body = payload + b"&signature=" + sign(bw.hmac_key, payload).encode()
    headers = {"x-mbx-apikey": bw.hmac_key.api_key}
    assert bw.client.call("POST", V3 + "/order", body=body, headers=headers).status == 200
    r = bw.client.call("POST", V3 + "/order", body=body, headers=headers)
    assert (r.status, r.code) == (400, -1021) and "replay" in r.json["msg"]
    # The same signature in upper case is the same signature.
    upper = payload + b"&signature=" + sign(bw.hmac_key, payload).upper().encode()
    assert bw.client.call("POST", V3 + "/order", body=upper, headers=headers).code == -1021
    assert [c[0] for c in bw.exchange.commands] == ["place"]
    assert [c[3] for c in bw.store.signature_claims] == [True, False, False]


def test_keys_unknown_malformed_or_missing(bw):
    ghost = BKey("AK_0123456789ABCDEF", signing.HMAC, "00" * 32, 1001)
    refused_sends_nothing(bw, account(bw, ghost), 401, -2015, "unknown or revoked")
    refused_sends_nothing(bw, account(bw, ghost._replace(api_key="alice")), 401, -2014, "not AK_")
    r = bw.client.call("GET", V3 + "/account", {"timestamp": T0_MS, "signature": "00"})
    refused_sends_nothing(bw, r, 401, -2014, "no X-MBX-APIKEY")


def test_a_key_of_another_kind_does_not_verify(bw):
    """An HMAC signature sent with an Ed25519 key (and the reverse) is -1022."""
    r = account(bw, bw.ed_key, signature=sign(bw.hmac_key, b"whatever"))
    assert r.code == -1022
    r = account(bw, bw.hmac_key, signature=sign(bw.ed_key, b"whatever"))
    assert r.code == -1022


def test_a_revoked_key_is_refused_at_once_though_kept(bw):
    key = bw.hmac_key
    assert account(bw, key).status == 200       # its record is now kept by the gateway
    bw.store.revoke_api_key(key.user_id, key.api_key, T0_MS)
    r = account(bw, key, ts=T0_MS - 1)
    assert (r.status, r.code) == (401, -2015)
    assert account(bw, key, ts=T0_MS - 2).code == -2015       # forgotten: refused before the signature now


def test_a_read_key_reads_but_cannot_trade(bw):
    assert account(bw, bw.read_key).json["canTrade"] is False
    r = bw.client.call("POST", V3 + "/order", ORDER, key=bw.read_key)
    refused_sends_nothing(bw, r, 401, -2015, "lacks the TRADE permission")
    r = bw.client.call("DELETE", V3 + "/order", {"symbol": "BTCUSDT", "orderId": 1}, key=bw.read_key)
    refused_sends_nothing(bw, r, 401, -2015, "TRADE")
    trade_only = new_key(bw.world, bw.read_key.user_id, TRADE, signing.ED25519)
    assert account(bw, trade_only).code == -2015


def test_a_signature_in_both_query_and_body_is_1101(bw):
    r = bw.client.call("POST", V3 + "/order", query={"signature": "ab"}, form=ORDER, key=bw.hmac_key)
    refused_sends_nothing(bw, r, 400, -1101, "'signature'")


def test_public_endpoints_ignore_a_key_header(bw):
    r = bw.client.call("GET", V3 + "/time", headers={"x-mbx-apikey": "anything"})
    assert r.status == 200


# -- with the real account store -----------------------------------------------------------------------
@pytest.fixture
def real(tmp_path):
    """The Binance API over a real AccountStore file, keys made as `xinf apikey create --json` prints them."""
    def app_on(path):
        exchange = FakeExchange()
        market = seed_market(FakeMarketData(exchange.symbols), T0_MS)
        store = AccountStore(path)
        app = build_app(exchange, store, FakeTokenIssuer(), Gateway(), market=market)
        return store, BinanceClient(app, lambda: T0_MS)
    path = tmp_path / "accounts.db"
    store, client = app_on(path)
    user_id = store.create_user("alice")
    hmac_file = key_file(store.create_api_key(user_id, kind=signing.HMAC, permissions=READ | TRADE), user_id)
    ed_file = key_file(store.create_api_key(user_id, kind=signing.ED25519), user_id)
    return {"store": store, "client": client, "app_on": lambda: app_on(path),
            "hmac": BKey(hmac_file["api_key"], signing.HMAC, hmac_file["secret"], user_id),
            "ed": BKey(ed_file["api_key"], signing.ED25519, signing.seed_of_pem(ed_file["secret_pem"]), user_id)}


def test_the_secret_xinf_apikey_create_prints_signs_hmac_requests(real):
    r = real["client"].call("GET", V3 + "/account", key=real["hmac"])
    assert r.status == 200 and r.json["uid"] == real["hmac"].user_id
    r = real["client"].call("GET", V3 + "/account", key=real["ed"])
    assert r.status == 200


def test_a_replay_is_refused_by_another_process_and_after_a_restart(real):
    client, key = real["client"], real["hmac"]
    query = f"timestamp={T0_MS}"
    signed = f"{query}&signature={sign(key, query.encode())}"
    headers = {"x-mbx-apikey": key.api_key}

    def send(c):
        proto = FakeProto([b""])
        asyncio.run(c.app.__rsgi__(FakeScope("GET", V3 + "/account", signed, FakeHeaders(headers)), proto))
        return msgspec.json.decode(proto.body)

    assert "uid" in send(client)
    assert send(client)["code"] == -1021
    _, other = real["app_on"]()            # another gateway process on the same file, or the same one restarted
    assert send(other)["code"] == -1021


def test_claim_signature_accepts_once_per_key_and_forgets_old_claims(tmp_path):
    store = AccountStore(tmp_path / "a.db")
    user_id = store.create_user("bob")
    k1, k2 = (store.create_api_key(user_id, kind=signing.HMAC).api_key for _ in range(2))
    d = hashlib.sha256(b"sig").digest()
    assert store.claim_signature(k1, d, 1000, 0)
    assert not store.claim_signature(k1, d, 1000, 0)
    assert store.claim_signature(k2, d, 1000, 0)                # per key
    assert store.claim_signature(k1, d, 5000, 1001)             # the old claim was forgotten first
    assert not store.claim_signature("AK_0000000000000000", hashlib.sha256(b"x").digest(), 5000, 0)
    store.revoke_api_key(user_id, k2)
    assert not store.claim_signature(k2, hashlib.sha256(b"new").digest(), 5000, 0)
    other = AccountStore(tmp_path / "a.db")                     # another process's connection
    assert not other.claim_signature(k1, d, 5000, 1001)
