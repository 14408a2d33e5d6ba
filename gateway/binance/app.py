"""The Binance-compatible REST API under /api/v3: an RSGI application that
gateway/http.py's App hands every path under /api/v3 to (its `mounts`).

So that CCXT's `binance` class and python-binance, with only their URLs
pointed here, trade on this exchange (spec/API.md section 2). A request goes
through these steps, each refusing with Binance's `{code, msg}` (codes:
gateway/binance/errors.py) before the next one runs:

    route      exact paths: 404 (-1020) no such path, 405 (-1020) not this method
    size       Content-Length above max_body_bytes: 413 (-1000) unread; a body
               without a length is read in chunks and refused once past it
    time unit  an X-MBX-TIME-UNIT other than MILLISECOND: -1194 (times are ms here)
    params     the query string and, for POST/PUT/DELETE, an
               application/x-www-form-urlencoded body (any other body: -1100;
               a GET with a body: -1104); gateway/binance/params.py
    auth       signed endpoints: gateway/binance/auth.py, over the exact query
               and body bytes, before any parameter is read
    handler    gateway/binance/routes.py reads and checks its parameters, then
               calls the exchange; a TimeoutError from the exchange is 503 (-1007,
               outcome unknown), anything unexpected 500 (-1000) with the
               traceback on stderr only.

Invariants:
- Nothing reaches the exchange before the request authenticated and every
  parameter was read and checked; the account store's one write is the
  signature's claim (auth.py).
- Every answer is JSON: the endpoint's shape, or `{code, msg}`.
"""
from __future__ import annotations

import sys
import time
import traceback
from typing import Callable

import msgspec
from granian.rsgi import ProtocolClosed

from ..http import declared_length, read_body
from . import errors as E
from .auth import Signatures
from .errors import BinanceError
from .params import Params, pairs
from .routes import Handlers, Req, routes
from .shapes import Error

JSON_HEADERS = [("content-type", "application/json")]
FORM = "application/x-www-form-urlencoded"


class BinanceApp:
    def __init__(self, exchange, store, market, now_ms: Callable[[], int], max_body_bytes: int = 16384,
                 ack_timeout_s: float = 10.0):
        """`market`: the market data reads (marketdata/types.py's shapes), or None: its endpoints answer 503."""
        self.routes = routes(Handlers(exchange, market))
        self.signatures = Signatures(store, now_ms)
        self.now_ms = now_ms
        self.max_body_bytes = max_body_bytes
        self.ack_timeout_s = ack_timeout_s
        # Called with the ns a request took from its start to its handler (body read, parameters split,
        # auth): the gateway's metrics, as http.App's (services/gateway.py); None: not measured.
        self.observe_decoded: Callable[[int], None] | None = None
        self._encoder = msgspec.json.Encoder()

    async def __rsgi__(self, scope, proto):
        if scope.proto != "http":
            proto.close(404)
            return
        headers = JSON_HEADERS
        try:
            status, body = 200, self._encoder.encode(await self._answer(scope, proto))
        except ProtocolClosed:      # the client left while its body was read: no one to answer
            return
        except BinanceError as e:
            status, body = e.status, self._encoder.encode(Error(e.code, e.msg))
            if e.allow:             # RFC 9110: a 405 names the methods the resource takes
                headers = [*headers, ("allow", ", ".join(e.allow))]
        except TimeoutError:
            status, body = 503, self._encoder.encode(Error(E.TIMEOUT, (
                "Timeout waiting for response from backend server. Send status unknown; execution status unknown: "
                f"not acknowledged within {self.ack_timeout_s:g} s (read the order or the account to learn its "
                "fate).")))
        except Exception:
            print(f"gateway: {scope.method} {scope.path} failed:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            status, body = 500, self._encoder.encode(Error(E.UNKNOWN, "An unknown error occurred while "
                                                                      "processing the request."))
        proto.response_bytes(status, headers, body)

    async def _answer(self, scope, proto):
        t0 = time.perf_counter_ns()
        path, method, headers = scope.path, scope.method, scope.headers
        methods = self.routes.get(path)
        if methods is None:
            raise BinanceError(E.UNSUPPORTED_OPERATION, f"This operation is not supported: no endpoint {path}.",
                               status=404)
        route = methods.get(method)
        if route is None:
            e = BinanceError(E.UNSUPPORTED_OPERATION, f"This operation is not supported: {method} {path}; "
                                                      f"allowed: {', '.join(sorted(methods))}.", status=405)
            e.allow = sorted(methods)
            raise e
        body = await self._read_body(headers, proto)
        unit = headers.get("x-mbx-time-unit")
        if unit is not None and unit.upper() != "MILLISECOND":
            raise BinanceError(E.INVALID_TIME_UNIT, f"X-MBX-TIME-UNIT {unit[:20]!r} is not supported: times are in "
                                                    "milliseconds here (send MILLISECOND or no header).")
        raw_query = scope.query_string.encode()
        form = {}
        if body:
            if method == "GET":
                raise BinanceError(E.UNREAD_PARAMETERS, "Not all sent parameters were read: a GET's body is not "
                                                        "read; send its parameters in the query string.")
            content_type = (headers.get("content-type") or "").partition(";")[0].strip().lower()
            if content_type != FORM:
                raise BinanceError(E.ILLEGAL_CHARS, f"Illegal characters found in the body: Content-Type "
                                                    f"{content_type or '(none)'!r} is not {FORM}.")
            form = pairs(body.decode("utf-8", "replace"), "body")
        params = Params(pairs(scope.query_string, "query string"), form, f"{method} {path}")
        key = None
        if route.permission:
            key = self.signatures.check(headers.get("x-mbx-apikey"), params, raw_query, body, route.permission)
        if self.observe_decoded is not None:
            self.observe_decoded(time.perf_counter_ns() - t0)
        return await route.handler(Req(params, key, self.now_ms()))

    async def _read_body(self, headers, proto) -> bytes:
        cap = self.max_body_bytes

        def refuse(length: str | None):
            if length is not None and not length.isdigit():
                raise BinanceError(E.ILLEGAL_CHARS, f"Content-Length {length[:20]!r} is not a number.")
            raise BinanceError(E.UNKNOWN, f"The body of {length} bytes is above the limit of {cap}." if length
                               else f"The body is above the limit of {cap} bytes.", status=413)
        return await read_body(proto, declared_length(headers, cap, refuse), cap, refuse)