"""A synchronous client of the 0xInfinity-shaped REST API (spec/API.md section 1).

One `XinfClient` holds one keep-alive HTTP/1.1 connection (stdlib http.client)
and is meant for one thread at a time. Every answer is the envelope
`{"code", "msg", "data"}`: `request` returns `data` when code is 0 and the
HTTP status is 2xx, and raises `ApiError(http_status, code, msg)` otherwise.

Invariants:
- Amounts, prices and quantities go out as decimal strings and come back as
  the server's strings. A float argument is refused with TypeError (it cannot
  carry an exact decimal); str, int and decimal.Decimal are taken. Responses
  are decoded with any fractional JSON number as a Decimal, never a float.
- A signed request covers api_key + ts_nonce + METHOD + path_with_query + the
  exact body bytes sent; ts_nonce comes from `keys.next_nonce`, strictly
  increasing per key in this process.
- A request is resent only if it is a GET that went out on a reused
  connection the peer had dropped, and only once, re-signed with a new nonce.
  A POST or DELETE is never resent: if the connection drops after it left,
  the server may have executed it, and a second copy could place an order
  twice. The caller gets `ConnectionLost(outcome_unknown=True)` and decides;
  a `cid` on the order is what lets it find out which happened. Before
  reusing an idle connection the client checks whether the peer has already
  closed it (nothing sent yet, so reconnecting then is safe for any method).
"""
from __future__ import annotations

import http.client
import select
import urllib.parse
from decimal import Decimal

import msgspec

from . import keys
from .keys import KeyFile

_DROPPED = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)
_IDEMPOTENT = frozenset(("GET", "HEAD"))
_encode = msgspec.json.encode
_decode_json = msgspec.json.Decoder(float_hook=Decimal).decode


class ApiError(Exception):
    """The server answered with an error envelope (or with something that is not an envelope: code None)."""

    def __init__(self, http_status: int, code: int | None, msg: str):
        super().__init__(http_status, code, msg)
        self.http_status, self.code, self.msg = http_status, code, msg

    def __str__(self) -> str:
        return f"{self.code} {self.msg}" if self.code is not None else f"HTTP {self.http_status}: {self.msg}"


class ServerUnreachable(ConnectionError):
    """No connection could be opened (nothing was sent)."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"no server is running at {url} ({reason})")
        self.url, self.reason = url, reason


class ConnectionLost(ConnectionError):
    """The connection dropped or timed out after the request left; for a POST/DELETE the outcome is unknown."""

    def __init__(self, message: str, outcome_unknown: bool):
        super().__init__(message)
        self.outcome_unknown = outcome_unknown


def decimal_text(value, what: str) -> str:
    """An amount as the decimal string the API takes: str as is, int and Decimal rendered, float refused."""
    if isinstance(value, float):
        raise TypeError(f"{what}: a float cannot carry an exact decimal; pass a str, int or decimal.Decimal "
                        f"(got {value!r})")
    if isinstance(value, bool):
        raise TypeError(f"{what}: expected a decimal amount, got a bool")
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{what}: {value} is not a finite amount")
        return format(value, "f")
    raise TypeError(f"{what}: expected a str, int or decimal.Decimal, got {type(value).__name__}")


def _order_id(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"order_id: expected an int, got {type(value).__name__}")
    if isinstance(value, str):
        if not value.isdigit():
            raise ValueError(f"order_id {value!r} is not a number")
        value = int(value)
    return value


def _upper(value: str, what: str, allowed: tuple[str, ...]) -> str:
    text = str(value).upper()
    if text not in allowed:
        raise ValueError(f"{what} {value!r}: expected one of {', '.join(allowed)}")
    return text


def decode_envelope(http_status: int, body: bytes):
    """`data` of a success envelope; ApiError for an error envelope or a body that is not one."""
    try:
        doc = _decode_json(body)
    except msgspec.DecodeError:
        raise ApiError(http_status, None, f"the answer is not JSON: {body[:200]!r}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("code"), int):
        raise ApiError(http_status, None, f"the answer is not an envelope: {body[:200]!r}")
    code = doc["code"]
    if code != 0:
        raise ApiError(http_status, code, str(doc.get("msg", "")))
    if not 200 <= http_status < 300:
        raise ApiError(http_status, None, f"code 0 with HTTP status {http_status}")
    return doc.get("data")


class XinfClient:
    def __init__(self, url: str, key: KeyFile | None = None, timeout: float = 10):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url {url!r}: expected http://host:port")
        self.url = url.rstrip("/")
        self.key = key
        self.timeout = timeout
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._prefix = parts.path.rstrip("/")
        self._conn: http.client.HTTPConnection | None = None

    # -- transport --------------------------------------------------------------

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.timeout)
        try:
            conn.connect()
        except ConnectionRefusedError:
            raise ServerUnreachable(self.url, "connection refused") from None
        except OSError as e:
            raise ServerUnreachable(self.url, e.strerror or type(e).__name__) from None
        self._conn = conn
        return conn

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """(connection, reused). A kept connection whose peer has closed it (readable while idle) is replaced."""
        conn = self._conn
        if conn is not None and conn.sock is not None:
            readable, _, _ = select.select([conn.sock], [], [], 0)
            if not readable:
                return conn, True
        self.close()
        return self._connect(), False

    def target(self, path: str, query=None) -> str:
        """The request target (path_with_query, as signed and sent) of `path` and the query parameters."""
        if query:
            pairs = query.items() if isinstance(query, dict) else query
            pairs = [(k, str(v)) for k, v in pairs if v is not None]
            if pairs:
                path = f"{path}?{urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)}"
        return self._prefix + path

    def raw(self, method: str, path: str, query=None, body: bytes = b"", headers: dict | None = None,
            signed: bool = True, ts_nonce: int | None = None, sign_body: bytes | None = None
            ) -> tuple[int, dict[str, str], bytes]:
        """Send one request and return (HTTP status, headers lowercased, body bytes), whatever they are.

        For tests that send hostile input: `headers` override the defaults (a
        None value removes one, e.g. Content-Type), `ts_nonce` replaces the next
        nonce (bypassing the counter: a stale or replayed nonce), `sign_body`
        is signed in place of the body sent (a tampered body).
        """
        method = method.upper()
        target = self.target(path, query)
        base = {"Accept": "application/json"}
        if body:
            base["Content-Type"] = "application/json"
        base.update(headers or {})
        if signed and self.key is None:
            raise ValueError(f"{method} {path} is signed and this client has no key")

        def headers_now() -> dict:
            h = dict(base)
            if signed and "Authorization" not in h:
                nonce = ts_nonce if ts_nonce is not None else keys.next_nonce(self.key.api_key)
                h["Authorization"] = self.key.authorization(nonce, method, target,
                                                            body if sign_body is None else sign_body)
            return {k: v for k, v in h.items() if v is not None}

        send_body = body if body or method not in _IDEMPOTENT else None
        for attempt in (0, 1):
            conn, reused = self._connection()
            try:
                conn.request(method, target, body=send_body, headers=headers_now())
                resp = conn.getresponse()
                data = resp.read()
            except _DROPPED as e:
                self.close()
                if method in _IDEMPOTENT and reused and attempt == 0:
                    continue
                raise ConnectionLost(f"{method} {target}: the connection dropped ({type(e).__name__})"
                                     + ("" if method in _IDEMPOTENT else "; the outcome is unknown"),
                                     outcome_unknown=method not in _IDEMPOTENT) from None
            except TimeoutError:
                self.close()
                raise ConnectionLost(f"{method} {target}: no answer within {self.timeout} s"
                                     + ("" if method in _IDEMPOTENT else "; the outcome is unknown"),
                                     outcome_unknown=method not in _IDEMPOTENT) from None
            if resp.will_close:
                self.close()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        raise AssertionError("unreachable: the loop returns or raises")

    def request(self, method: str, path: str, query=None, json=None, raw_body: bytes | None = None,
                headers: dict | None = None, signed: bool = True):
        """The `data` of the envelope the server answers; ApiError if it is an error."""
        body = raw_body if raw_body is not None else (_encode(json) if json is not None else b"")
        status, _, data = self.raw(method, path, query, body, headers, signed)
        return decode_envelope(status, data)

    # -- public -----------------------------------------------------------------

    def health(self):
        return self.request("GET", "/api/v1/health", signed=False)

    def exchange_info(self):
        return self.request("GET", "/api/v1/public/exchange_info", signed=False)

    def assets(self):
        return self.request("GET", "/api/v1/public/assets", signed=False)

    def symbols(self):
        return self.request("GET", "/api/v1/public/symbols", signed=False)

    # -- trading ----------------------------------------------------------------

    def place(self, symbol: str, side: str, order_type: str = "LIMIT", qty=None, price=None,
              time_in_force: str = "GTC", quote_qty=None, cid: str | None = None):
        """Place an order. time_in_force is sent for LIMIT orders, and for MARKET ones only when not GTC."""
        order_type = _upper(order_type, "order_type", ("LIMIT", "MARKET"))
        tif = _upper(time_in_force, "time_in_force", ("GTC", "IOC"))
        body = {"symbol": symbol, "side": _upper(side, "side", ("BUY", "SELL")), "order_type": order_type}
        if order_type == "LIMIT" or tif != "GTC":
            body["time_in_force"] = tif
        if price is not None:
            body["price"] = decimal_text(price, "price")
        if qty is not None:
            body["qty"] = decimal_text(qty, "qty")
        if quote_qty is not None:
            body["quote_qty"] = decimal_text(quote_qty, "quote_qty")
        if cid is not None:
            body["cid"] = cid
        return self.request("POST", "/api/v1/private/order", json=body)

    def cancel(self, order_id):
        return self.request("POST", "/api/v1/private/cancel", json={"order_id": _order_id(order_id)})

    def cancel_delete(self, order_id):
        return self.request("DELETE", f"/api/v1/private/order/{_order_id(order_id)}")

    def reduce(self, order_id, reduce_qty):
        return self.request("POST", "/api/v1/private/order/reduce",
                            json={"order_id": _order_id(order_id),
                                  "reduce_qty": decimal_text(reduce_qty, "reduce_qty")})

    def move(self, order_id, new_price):
        return self.request("POST", "/api/v1/private/order/move",
                            json={"order_id": _order_id(order_id),
                                  "new_price": decimal_text(new_price, "new_price")})

    # -- queries ----------------------------------------------------------------

    def order(self, order_id):
        return self.request("GET", f"/api/v1/private/order/{_order_id(order_id)}")

    def orders(self, symbol: str | None = None, status: str | None = None, limit: int | None = None):
        return self.request("GET", "/api/v1/private/orders",
                            query={"symbol": symbol, "status": status, "limit": limit})

    def trades(self, symbol: str | None = None, limit: int | None = None):
        return self.request("GET", "/api/v1/private/trades", query={"symbol": symbol, "limit": limit})

    def balance(self, asset: str):
        return self.request("GET", "/api/v1/private/balances", query={"asset": asset})

    def balances(self):
        return self.request("GET", "/api/v1/private/balances/all")

    def account(self):
        return self.request("GET", "/api/v1/private/account")

    # -- operator ---------------------------------------------------------------

    def deposit(self, user_id: int, asset: str, amount):
        """Credit a user (operator key). data: {user_id, asset, seq, avail, frozen}."""
        return self.request("POST", "/api/v1/admin/deposit",
                            json={"user_id": user_id, "asset": asset, "amount": decimal_text(amount, "amount")})

    def withdraw(self, user_id: int, asset: str, amount):
        """Debit a user (operator key). data: {user_id, asset, seq, avail, frozen}."""
        return self.request("POST", "/api/v1/admin/withdraw",
                            json={"user_id": user_id, "asset": asset, "amount": decimal_text(amount, "amount")})


__all__ = ["XinfClient", "ApiError", "ServerUnreachable", "ConnectionLost", "decimal_text", "decode_envelope",
           "KeyFile"]
