"""The gateway behind a real granian server, in a subprocess, over real HTTP."""
from __future__ import annotations

import http.client
import json
import socket

import pytest

from tests.gateway.conftest import served
from xinfinity.accounts import signing

ORDER = json.dumps({"symbol": "BTC_USDT", "side": "BUY", "order_type": "LIMIT", "price": "30000",
                    "qty": "0.5"}).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    with served("tests.gateway.serve_fake", [port], [port]) as info:
        info["port"] = port
        info["nonce"] = info["clock_ms"]
        yield info


def call(server, method, path, body=b"", key=None, headers=None):
    h = dict(headers or {})
    if body and "content-type" not in h:
        h["content-type"] = "application/json"
    if key is not None:
        k = server["keys"][key]
        server["nonce"] += 1
        h["authorization"] = signing.sign_request(k["kind"], k["api_key"], bytes.fromhex(k["secret"]),
                                                  server["nonce"], method, path, body)
    conn = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=10)
    try:
        conn.request(method, path, body=body or None, headers=h)
        r = conn.getresponse()
        return r.status, r.getheader("content-type"), r.read()
    finally:
        conn.close()


def test_health_and_a_signed_order_over_real_http(server):
    status, ctype, body = call(server, "GET", "/api/v1/health")
    assert (status, ctype) == (200, "application/json")
    assert json.loads(body) == {"code": 0, "msg": "ok", "data": {"timestamp_ms": server["clock_ms"]}}
    status, _, body = call(server, "POST", "/api/v1/private/order", ORDER, key="alice")
    assert status == 200, body
    order_id = json.loads(body)["data"]["order_id"]
    status, _, body = call(server, "GET", "/api/v1/private/orders?symbol=BTC_USDT&status=open", key="alice")
    assert status == 200, body
    assert [o["order_id"] for o in json.loads(body)["data"]] == [order_id]
    status, _, body = call(server, "DELETE", f"/api/v1/private/order/{order_id}", key="alice")
    assert (status, json.loads(body)["data"]["order_status"]) == (200, "CANCELED")


def test_a_tampered_body_is_401_over_real_http(server):
    k = server["keys"]["alice"]
    server["nonce"] += 1
    header = signing.sign_request(k["kind"], k["api_key"], bytes.fromhex(k["secret"]), server["nonce"], "POST",
                                  "/api/v1/private/order", ORDER)
    status, _, body = call(server, "POST", "/api/v1/private/order", ORDER.replace(b"0.5", b"5.0"),
                           headers={"authorization": header})
    assert (status, json.loads(body)["code"]) == (401, 2002)


def test_an_oversized_body_is_413_before_it_is_sent_whole(server):
    with socket.create_connection(("127.0.0.1", server["port"]), timeout=10) as s:
        s.sendall(b"POST /api/v1/private/order HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100000000\r\n\r\n" + b"{" * 1000)
        reply = s.recv(65536)
    assert reply.startswith(b"HTTP/1.1 413"), reply


def test_an_oversized_chunked_body_is_413(server):
    conn = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=10)
    conn.request("POST", "/api/v1/private/order", body=iter([b"{" + b" " * 8000] * 4),
                 headers={"content-type": "application/json"}, encode_chunked=True)
    r = conn.getresponse()
    assert (r.status, json.loads(r.read())["code"]) == (413, 4013)
    conn.close()


def test_openapi_and_docs_over_real_http(server):
    status, ctype, body = call(server, "GET", "/openapi.json")
    assert status == 200 and json.loads(body)["openapi"] == "3.1.0"
    status, ctype, body = call(server, "GET", "/docs")
    assert status == 200 and ctype.startswith("text/html") and b"SwaggerUIBundle" in body
    status, ctype, body = call(server, "GET", "/docs/swagger-ui-bundle.js")
    assert status == 200 and ctype == "text/javascript" and len(body) > 100_000
    status, _, body = call(server, "GET", "/nowhere")
    assert (status, json.loads(body)["code"]) == (404, 4004)
