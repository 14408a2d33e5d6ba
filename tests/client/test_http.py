"""XinfClient against a recording stub: what it signs is exactly what it sends."""
from __future__ import annotations

import socket
import threading
from decimal import Decimal

import msgspec
import pytest

from xinfinity.accounts import signing
from xinfinity.client import ApiError, ConnectionLost, KeyFile, KeyFileError, ServerUnreachable, XinfClient
from xinfinity.client import keys
from tests.client.stub_http import ED_DOC, HMAC_DOC, SEED, StubServer


@pytest.fixture
def stub():
    s = StubServer()
    yield s
    s.stop()


def _verify(seen, key: KeyFile) -> bool:
    api_key, nonce, sig = signing.parse_authorization(seen.headers["authorization"])
    assert api_key == key.api_key
    data = signing.payload(api_key, nonce, seen.method, seen.target, seen.body)
    if key.kind == signing.ED25519:
        return signing.verify_ed25519(signing.public_key_of(SEED), data, sig)
    return signing.verify_hmac(HMAC_DOC["secret"].encode(), data, sig)


def _nonce(seen) -> int:
    return signing.parse_authorization(seen.headers["authorization"])[1]


@pytest.mark.parametrize("doc", [ED_DOC, HMAC_DOC], ids=["ed25519", "hmac"])
def test_every_signed_request_verifies_over_the_exact_bytes_the_server_received(stub, doc):
    key = KeyFile.from_json(doc)
    with XinfClient(stub.url, key) as c:
        c.place("BTC_USDT", "buy", "limit", qty="0.5", price=Decimal("100.25"), cid="c-1")
        c.cancel(12)
        c.cancel_delete(13)
        c.reduce(14, "0.1")
        c.move(15, 101)
        c.order(16)
        c.orders(symbol="BTC_USDT", status="open", limit=5)
        c.trades(limit=3)
        c.balance("USDT")
        c.balances()
        c.account()
        c.deposit(3, "USDT", "1000")
    assert len(stub.seen) == 12
    for seen in stub.seen:
        assert _verify(seen, key), seen
    place = stub.seen[0]
    assert (place.method, place.target) == ("POST", "/api/v1/private/order")
    assert msgspec.json.decode(place.body) == {"symbol": "BTC_USDT", "side": "BUY", "order_type": "LIMIT",
                                               "time_in_force": "GTC", "price": "100.25", "qty": "0.5",
                                               "cid": "c-1"}
    assert place.headers["content-type"] == "application/json"
    assert (stub.seen[2].method, stub.seen[2].target, stub.seen[2].body) == (
        "DELETE", "/api/v1/private/order/13", b"")
    assert stub.seen[6].target == "/api/v1/private/orders?symbol=BTC_USDT&status=open&limit=5"
    assert stub.seen[7].target == "/api/v1/private/trades?limit=3"
    assert msgspec.json.decode(stub.seen[4].body) == {"order_id": 15, "new_price": "101"}


def test_a_body_other_than_the_one_signed_fails_verification(stub):
    key = KeyFile.from_json(ED_DOC)
    with XinfClient(stub.url, key) as c:
        c.raw("POST", "/api/v1/private/order", body=b'{"qty":"9"}', sign_body=b'{"qty":"1"}')
    assert stub.seen[0].body == b'{"qty":"9"}'
    assert not _verify(stub.seen[0], key)


def test_public_routes_are_not_signed(stub):
    with XinfClient(stub.url, KeyFile.from_json(ED_DOC)) as c:
        c.health()
        c.exchange_info()
        c.assets()
        c.symbols()
    assert [s.target for s in stub.seen] == ["/api/v1/health", "/api/v1/public/exchange_info",
                                             "/api/v1/public/assets", "/api/v1/public/symbols"]
    assert all("authorization" not in s.headers for s in stub.seen)


def test_nonces_strictly_increase_when_called_faster_than_one_per_ms():
    api_key = "AK_00000000000000F0"
    got = [keys.next_nonce(api_key) for _ in range(5000)]
    assert all(b > a for a, b in zip(got, got[1:]))
    assert got[-1] - got[0] >= 4999


def test_nonces_stay_unique_and_increasing_per_thread_under_concurrent_callers():
    api_key = "AK_00000000000000F1"
    per_thread: list[list[int]] = [[] for _ in range(4)]

    def take(out):
        for _ in range(2000):
            out.append(keys.next_nonce(api_key))
    threads = [threading.Thread(target=take, args=(out,)) for out in per_thread]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [n for out in per_thread for n in out]
    assert len(set(every)) == len(every)
    assert all(all(b > a for a, b in zip(out, out[1:])) for out in per_thread)


def test_two_clients_on_one_key_send_increasing_nonces_on_the_wire(stub):
    key = KeyFile.from_json(HMAC_DOC)
    with XinfClient(stub.url, key) as a, XinfClient(stub.url, key) as b:
        for _ in range(100):
            a.balances()
            b.balances()
    nonces = [_nonce(s) for s in stub.seen]
    assert all(y > x for x, y in zip(nonces, nonces[1:]))


@pytest.mark.parametrize("call", [
    lambda c: c.place("BTC_USDT", "buy", qty=0.5, price="1"),
    lambda c: c.place("BTC_USDT", "buy", qty="0.5", price=100.0),
    lambda c: c.place("BTC_USDT", "buy", "market", quote_qty=10.0),
    lambda c: c.reduce(1, 0.1),
    lambda c: c.move(1, 99.5),
    lambda c: c.deposit(1, "USDT", 1e3),
    lambda c: c.withdraw(1, "USDT", True),
], ids=["qty", "price", "quote_qty", "reduce", "move", "deposit", "bool"])
def test_float_amounts_are_refused_before_anything_is_sent(stub, call):
    with XinfClient(stub.url, KeyFile.from_json(ED_DOC)) as c:
        with pytest.raises(TypeError):
            call(c)
    assert stub.seen == []


def test_int_and_decimal_amounts_go_out_as_plain_decimal_strings(stub):
    with XinfClient(stub.url, KeyFile.from_json(ED_DOC)) as c:
        c.place("BTC_USDT", "sell", "LIMIT", qty=Decimal("1E+2"), price=3, time_in_force="ioc")
        c.place("BTC_USDT", "buy", "market", quote_qty=Decimal("0.10"))
    first, second = (msgspec.json.decode(s.body) for s in stub.seen)
    assert (first["qty"], first["price"], first["time_in_force"]) == ("100", "3", "IOC")
    assert second == {"symbol": "BTC_USDT", "side": "BUY", "order_type": "MARKET", "quote_qty": "0.10"}


def test_an_error_envelope_raises_api_error_with_status_code_and_message(stub):
    stub.responder = lambda seen: (400, b'{"code":1002,"msg":"insufficient balance"}')
    with XinfClient(stub.url, KeyFile.from_json(ED_DOC)) as c:
        with pytest.raises(ApiError) as e:
            c.place("BTC_USDT", "buy", qty="1", price="1")
    assert (e.value.http_status, e.value.code, e.value.msg) == (400, 1002, "insufficient balance")
    assert str(e.value) == "1002 insufficient balance"


def test_an_answer_that_is_not_an_envelope_raises_api_error_without_a_code(stub):
    stub.responder = lambda seen: (502, b"<html>bad gateway</html>")
    with XinfClient(stub.url) as c:
        with pytest.raises(ApiError) as e:
            c.health()
    assert (e.value.http_status, e.value.code) == (502, None)


def test_numbers_in_answers_decode_as_decimal_never_float(stub):
    stub.responder = lambda seen: (200, b'{"code":0,"msg":"ok","data":{"avail":"1.5","x":0.1,"n":3}}')
    with XinfClient(stub.url) as c:
        assert c.health() == {"avail": "1.5", "x": Decimal("0.1"), "n": 3}


def test_requests_share_one_keep_alive_connection(stub):
    with XinfClient(stub.url, KeyFile.from_json(ED_DOC)) as c:
        for _ in range(5):
            c.balances()
        c.place("BTC_USDT", "buy", qty="1", price="1")
    assert len({s.client_port for s in stub.seen}) == 1


def test_an_idle_connection_the_peer_closed_is_replaced_before_sending(stub):
    stub.close_after_response = True
    with XinfClient(stub.url, KeyFile.from_json(ED_DOC)) as c:
        c.balances()
        assert stub.closed.acquire(timeout=5)    # closed while idle, before the next request
        c.place("BTC_USDT", "buy", qty="1", price="1")
    assert len(stub.seen) == 2 and stub.seen[0].client_port != stub.seen[1].client_port


def test_a_get_dropped_on_a_reused_connection_is_resent_once_with_a_new_nonce(stub):
    with XinfClient(stub.url, KeyFile.from_json(ED_DOC)) as c:
        c.balances()
        stub.drop_next = 1
        assert c.balances() == {"n": 3}
    assert len(stub.seen) == 3
    assert _nonce(stub.seen[2]) > _nonce(stub.seen[1])


def test_a_get_dropped_twice_gives_up(stub):
    with XinfClient(stub.url, KeyFile.from_json(ED_DOC)) as c:
        c.balances()
        stub.drop_next = 2
        with pytest.raises(ConnectionLost) as e:
            c.balances()
    assert not e.value.outcome_unknown
    assert len(stub.seen) == 3


def test_a_post_dropped_after_it_left_is_never_resent_and_its_outcome_is_unknown(stub):
    with XinfClient(stub.url, KeyFile.from_json(ED_DOC)) as c:
        c.balances()
        stub.drop_next = 1
        with pytest.raises(ConnectionLost) as e:
            c.place("BTC_USDT", "buy", qty="1", price="1", cid="once")
        assert e.value.outcome_unknown
        c.balances()                    # and the client still works afterwards
    assert [s.method for s in stub.seen] == ["GET", "POST", "GET"]


def test_a_delete_dropped_is_not_resent_either(stub):
    with XinfClient(stub.url, KeyFile.from_json(ED_DOC)) as c:
        c.balances()
        stub.drop_next = 1
        with pytest.raises(ConnectionLost):
            c.cancel_delete(5)
    assert [s.method for s in stub.seen] == ["GET", "DELETE"]


def test_connection_refused_names_the_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(ServerUnreachable, match=f"no server is running at {url}"):
        XinfClient(url).health()


def test_a_signed_call_without_a_key_is_refused_locally(stub):
    with pytest.raises(ValueError, match="no key"):
        XinfClient(stub.url).balances()
    assert stub.seen == []


# -- key files ---------------------------------------------------------------------

def test_an_ed25519_key_file_parses_with_or_without_kind_and_either_secret_form():
    full = KeyFile.from_json(ED_DOC)
    assert (full.api_key, full.kind, full.secret, full.user_id) == ("AK_00000000000000E1", "ed25519", SEED, 7)
    for drop in (("kind",), ("kind", "secret_hex"), ("kind", "secret_pem")):
        doc = {k: v for k, v in ED_DOC.items() if k not in drop}
        assert KeyFile.from_json(doc) == full


def test_an_hmac_key_file_parses_with_or_without_kind():
    key = KeyFile.from_json(HMAC_DOC)
    assert (key.kind, key.secret, key.user_id) == ("hmac", b"s3cr3t-hmac-key", 8)
    assert KeyFile.from_json({k: v for k, v in HMAC_DOC.items() if k != "kind"}) == key


@pytest.mark.parametrize("doc, message", [
    ({**ED_DOC, "secret_hex": "00" * 32}, "different keys"),
    ({**ED_DOC, "secret_hex": "abc"}, "not hex"),
    ({**ED_DOC, "secret_hex": "00" * 16, "secret_pem": None}, "16 bytes"),
    ({**ED_DOC, "api_key": "ak_123"}, "api_key"),
    ({"api_key": "AK_00000000000000E1"}, "no secret"),
    ({**HMAC_DOC, "kind": "rsa"}, "kind"),
    ({**HMAC_DOC, "secret": ""}, "non-empty"),
    ({**HMAC_DOC, "user_id": "8"}, "user_id"),
    ([1, 2], "object"),
])
def test_a_malformed_key_file_is_refused_naming_what_is_wrong(doc, message):
    if isinstance(doc, dict):
        doc = {k: v for k, v in doc.items() if v is not None}
    with pytest.raises(KeyFileError, match=message):
        KeyFile.from_json(doc)


def test_a_key_file_never_shows_its_secret_in_repr():
    text = repr(KeyFile.from_json(HMAC_DOC)) + repr(KeyFile.from_json(ED_DOC))
    assert "s3cr3t" not in text and repr(SEED) not in text and "<hidden>" in text


def test_loading_a_key_file_names_the_path_when_missing_or_not_json(tmp_path):
    with pytest.raises(KeyFileError, match="nope.json: not found"):
        KeyFile.load(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(KeyFileError, match="bad.json: not JSON"):
        KeyFile.load(tmp_path / "bad.json")
    (tmp_path / "ok.json").write_bytes(msgspec.json.encode(HMAC_DOC))
    assert KeyFile.load(tmp_path / "ok.json") == KeyFile.from_json(HMAC_DOC)
