"""The gateway's HTTP side: an RSGI application (granian) with a small router.

One route table (gateway/routes.py) serves both dispatch and the OpenAPI
document at /openapi.json; Swagger UI at /docs is served from the
swagger-ui-bundle-v2 package's files (no CDN: /docs works offline). A mounted
app answers every path under its prefix instead (gateway/binance: /api/v3).

A request goes through these steps, each refusing with the envelope
`{code, msg}` (codes: gateway/api.py) before the next one runs:

    route      exact paths by dict, `{order_id}`/`{api_key}` paths by regex:
               404 (4004) no such path, 405 (4005) not this method
    size       Content-Length above max_body_bytes: 413 (4013) unread; a body
               without a length is read in chunks and refused once past it
    type       a route that takes a body needs Content-Type application/json:
               415 (4015)
    auth       signed/admin: gateway/auth.py over the exact body bytes;
               jwt: a Bearer token (401/403, codes 2xxx)
    decode     body and query into the route's Structs: 400 (1001) with
               msgspec's message, which names the field
    handler    gateway/routes.py; its ApiError is answered as is, a
               TimeoutError from the exchange as 503 (5001, outcome unknown),
               anything else as 500 (5000) with the traceback on stderr only.

Invariants:
- Nothing reaches the exchange or the account store's write methods before
  the request authenticated and decoded; a refused request changes nothing
  but, for a genuinely signed one, the key's nonce.
- Every answer is JSON with the envelope, except /docs (HTML and its files).
"""
from __future__ import annotations

import json
import pathlib
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, NamedTuple
from urllib.parse import parse_qsl

import msgspec
from granian.rsgi import ProtocolClosed

from ..accounts.errors import AccountError
from . import api
from .api import ApiError

JSON_HEADERS = [("content-type", "application/json")]
AUTH_KINDS = ("none", "signed", "jwt", "admin")
# A path parameter: the text it matches and how it is converted.
PATH_PARAMS = {
    "order_id": (r"[0-9]{1,18}", int, {"type": "integer", "minimum": 1}),
    "api_key": (r"[A-Za-z0-9_]{1,64}", str, {"type": "string", "pattern": "^AK_[0-9A-F]{16}$"}),
}
_PARAM_RE = re.compile(r"\{(\w+)\}")


class Call(NamedTuple):
    """What a handler gets: the authenticated user (0 on public routes), the
    decoded body and query string (None when the route takes none) and the path
    parameters."""
    user_id: int
    body: Any
    query: Any
    params: dict


@dataclass(frozen=True)
class Route:
    method: str
    path: str                       # e.g. /api/v1/private/order/{order_id}
    handler: Callable[[Call], Awaitable[Any]]
    request: type | None = None     # the body's Struct
    response: Any = None            # the type of `data`, for the OpenAPI document
    auth: str = "none"              # none | signed | jwt | admin
    permission: int = 0             # bits the api key must hold (signed, admin)
    summary: str = ""
    query: type | None = None       # the query string's Struct
    status: int = 200
    tag: str = ""
    param_names: tuple = field(default=(), init=False)

    def __post_init__(self):
        assert self.auth in AUTH_KINDS, self.auth
        assert self.auth in ("signed", "admin") or not self.permission, (self.path, "a permission needs a key")
        assert self.auth != "admin" or self.permission, (self.path, "an admin route names its bit")
        object.__setattr__(self, "param_names", tuple(_PARAM_RE.findall(self.path)))
        for name in self.param_names:
            assert name in PATH_PARAMS, (self.path, name)


class App:
    """The RSGI application: `granian --interface rsgi` or gateway/app.py's make_server."""

    def __init__(self, routes: list[Route], authenticator, max_body_bytes: int = 16384,
                 ack_timeout_s: float = 10.0, title: str = "xinfinity", version: str = "0.1.0",
                 mounts: dict | None = None, ws_port: int = 0):
        """`mounts`: path prefix -> an RSGI app that answers that path and every path under it
        (gateway/binance's /api/v3), in its own shapes; `ws_port`: where the WebSocket streams
        are served (gateway/ws/app.py), named when a WebSocket upgrade comes here (404)."""
        self.mounts = dict(mounts or {})
        self.ws_port = ws_port
        self.routes = list(routes)
        self.auth = authenticator
        self.max_body_bytes = max_body_bytes
        self.ack_timeout_s = ack_timeout_s
        # Called with the ns a request took from its start to its handler (body read, auth, decode):
        # the gateway's metrics (services/gateway.py); None: not measured.
        self.observe_decoded: Callable[[int], None] | None = None
        self._exact: dict[str, dict[str, Route]] = {}
        self._patterns: list[tuple[re.Pattern, dict[str, Route]]] = []
        by_pattern: dict[str, dict[str, Route]] = {}
        for r in self.routes:
            methods = self._exact.setdefault(r.path, {}) if not r.param_names else by_pattern.setdefault(r.path, {})
            assert r.method not in methods, ("route declared twice", r.method, r.path)
            methods[r.method] = r
        for path, methods in by_pattern.items():
            regex = "".join(f"(?P<{part[1:-1]}>{PATH_PARAMS[part[1:-1]][0]})" if part.startswith("{")
                            else re.escape(part) for part in re.split(r"(\{\w+\})", path))
            self._patterns.append((re.compile(regex + r"\Z"), methods))
        self._decoders = {r.request: msgspec.json.Decoder(r.request) for r in self.routes if r.request}
        self._encoder = msgspec.json.Encoder()
        self.openapi = openapi_document(self.routes, title, version)
        self._openapi_bytes = json.dumps(self.openapi).encode()
        self._docs = _SwaggerUI()

    # -- RSGI ------------------------------------------------------------------------
    async def __rsgi__(self, scope, proto):
        if scope.proto != "http":           # granian serves no WebSocket here (make_server)
            proto.close(404)
            return
        if scope.headers.get("upgrade", "").lower() == "websocket":
            body = self._encoder.encode(api.ErrorEnvelope(api.NO_ROUTE, (
                f"no WebSocket on this port: the streams are served on port {self.ws_port} "
                f"(ws://<host>:{self.ws_port}{scope.path})")))
            proto.response_bytes(404, JSON_HEADERS, body)
            return
        for prefix, app in self.mounts.items():
            if scope.path == prefix or scope.path.startswith(prefix + "/"):
                return await app.__rsgi__(scope, proto)
        try:
            status, body, headers = await self._answer(scope, proto)
        except ProtocolClosed:      # the client left while its body was read: no one to answer
            return
        except ApiError as e:
            status, body, headers = e.status, self._encoder.encode(api.ErrorEnvelope(e.code, e.msg)), JSON_HEADERS
            if e.allow:             # RFC 9110: a 405 names the methods the resource takes
                headers = [*headers, ("allow", ", ".join(e.allow))]
        except AccountError as e:   # the account store's and tokens' refusals carry the API's codes
            status, headers = api.http_status_of(e.code), JSON_HEADERS
            body = self._encoder.encode(api.ErrorEnvelope(e.code, e.message))
        except TimeoutError:
            status, headers = 503, JSON_HEADERS
            body = self._encoder.encode(api.ErrorEnvelope(
                api.UNAVAILABLE, f"outcome unknown: not acknowledged within {self.ack_timeout_s:g} s "
                                 "(the command may still complete; read the order or balance to learn its fate)"))
        except Exception:
            print(f"gateway: {scope.method} {scope.path} failed:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            status, headers = 500, JSON_HEADERS
            body = self._encoder.encode(api.ErrorEnvelope(api.INTERNAL, "internal error"))
        if isinstance(body, pathlib.Path):
            proto.response_file(status, headers, str(body))
        else:
            proto.response_bytes(status, headers, body)

    async def _answer(self, scope, proto):
        t0 = time.perf_counter_ns()
        path = scope.path
        methods, params = self._match(path)
        if methods is None:
            if path == "/openapi.json":
                return 200, self._openapi_bytes, JSON_HEADERS
            if path == "/docs" or path.startswith("/docs/"):
                return self._docs.answer(path)
            raise ApiError(api.NO_ROUTE, f"no route {path}")
        route = methods.get(scope.method)
        if route is None:
            allow = sorted(methods)
            e = ApiError(api.METHOD_NOT_ALLOWED, f"{scope.method} is not allowed on {path}; allowed: {', '.join(allow)}")
            e.allow = allow
            raise e
        headers = scope.headers
        body = await self._read_body(headers, proto, route) if route.request or route.auth != "none" else b""
        user_id = 0
        if route.auth in ("signed", "admin"):
            qs = scope.query_string
            user_id = self.auth.signed(headers.get("authorization"), scope.method, f"{path}?{qs}" if qs else path,
                                       body, route.permission)
        elif route.auth == "jwt":
            user_id = self.auth.bearer(headers.get("authorization"))
        call = Call(user_id, self._decode_body(route, body), self._decode_query(route, scope), params)
        if self.observe_decoded is not None:
            self.observe_decoded(time.perf_counter_ns() - t0)
        data = await route.handler(call)
        return route.status, self._encoder.encode(api.Envelope(api.OK, "ok", data)), JSON_HEADERS

    def _match(self, path: str):
        methods = self._exact.get(path)
        if methods is not None:
            return methods, {}
        for regex, methods in self._patterns:
            m = regex.match(path)
            if m:
                return methods, {k: PATH_PARAMS[k][1](v) for k, v in m.groupdict().items()}
        return None, None

    async def _read_body(self, headers, proto, route: Route) -> bytes:
        cap = self.max_body_bytes

        def refuse(length: str | None):
            if length is not None and not length.isdigit():
                raise ApiError(api.INVALID_PARAMETER, f"Content-Length {length!r} is not a number")
            raise ApiError(api.BODY_TOO_LARGE, f"body of {length} bytes is above the limit of {cap}" if length
                           else f"body is above the limit of {cap} bytes")
        length = declared_length(headers, cap, refuse)
        if route.request is not None:
            content_type = headers.get("content-type") or ""
            if content_type.partition(";")[0].strip().lower() != "application/json":
                raise ApiError(api.UNSUPPORTED_MEDIA_TYPE,
                               f"Content-Type {content_type or '(none)'!r}: expected application/json")
        return await read_body(proto, length, cap, refuse)

    def _decode_body(self, route: Route, body: bytes):
        if route.request is None:
            if body:
                raise ApiError(api.INVALID_PARAMETER, f"{route.method} {route.path} takes no body")
            return None
        if not body:
            raise ApiError(api.INVALID_PARAMETER, "the body is empty: expected a JSON object")
        try:
            return self._decoders[route.request].decode(body)
        except msgspec.DecodeError as e:    # ValidationError included
            raise ApiError(api.INVALID_PARAMETER, f"body: {e}") from None

    def _decode_query(self, route: Route, scope):
        qs = scope.query_string
        if route.query is None:
            if qs:
                raise ApiError(api.INVALID_PARAMETER, f"{route.method} {route.path} takes no query parameters")
            return None
        try:
            return msgspec.convert(dict(parse_qsl(qs, keep_blank_values=True)), route.query, strict=False)
        except msgspec.ValidationError as e:
            raise ApiError(api.INVALID_PARAMETER, f"query: {e}") from None


def declared_length(headers, cap: int, refuse) -> int | None:
    """The request's Content-Length, if it sends one, checked before anything is read:
    refuse(text) raises the caller's own error for a length that is not a number or is above cap."""
    length = headers.get("content-length")
    if length is None:
        return None
    if not length.isdigit() or int(length) > cap:
        refuse(length)
    return int(length)


async def read_body(proto, length: int | None, cap: int, refuse) -> bytes:
    """The body of a declared length (declared_length), or without one read in chunks
    and refused (refuse(None)) once past cap."""
    if length is not None:
        return await proto() if length else b""
    chunks, size = [], 0
    async for chunk in proto:
        size += len(chunk)
        if size > cap:
            refuse(None)
        chunks.append(chunk)
    return b"".join(chunks)


# -- OpenAPI -------------------------------------------------------------------------------
SECURITY_SCHEMES = {
    "ZXINF": {"type": "apiKey", "in": "header", "name": "Authorization",
              "description": "ZXINF v1.<api_key>.<ts_nonce>.<signature>: Ed25519 (Base62) or HMAC-SHA256 (hex) "
                             "over api_key + ts_nonce + METHOD + path_with_query + body (spec/API.md)"},
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
               "description": "the token of POST /api/v1/auth/login"},
}


def openapi_document(routes: list[Route], title: str, version: str) -> dict:
    """OpenAPI 3.1 of the route table, schemas from msgspec."""
    types, slots = [], []
    for r in routes:
        for kind in ("request", "query", "response"):
            t = getattr(r, kind)
            if t is not None:
                slots.append((r, kind))
                types.append(t)
    types.append(api.ErrorEnvelope)
    refs, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    schema_of = {(id(r), kind): ref for (r, kind), ref in zip(slots, refs)}
    query_names = {r.query.__name__ for r in routes if r.query is not None}
    paths: dict[str, dict] = {}
    for r in routes:
        operation_id = re.sub(r"\W+", "_", f"{r.method} {r.path}").strip("_").lower()
        op: dict[str, Any] = {"operationId": operation_id, "summary": r.summary, "tags": [r.tag or "api"]}
        params = [{"name": n, "in": "path", "required": True, "schema": PATH_PARAMS[n][2]} for n in r.param_names]
        if r.query is not None:
            q = components[r.query.__name__]
            params += [{"name": n, "in": "query", "required": n in q.get("required", ()), "schema": s}
                       for n, s in q["properties"].items()]
        if params:
            op["parameters"] = params
        if r.request is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": schema_of[(id(r), "request")]}}}
        data = schema_of.get((id(r), "response"), {"type": "null"})
        op["responses"] = {
            str(r.status): {"description": "ok", "content": {"application/json": {"schema": {
                "type": "object", "required": ["code", "msg", "data"],
                "properties": {"code": {"const": 0}, "msg": {"const": "ok"}, "data": data}}}}},
            "default": {"description": "error: {code, msg} (codes in gateway/api.py)",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}},
        }
        if r.auth in ("signed", "admin"):
            op["security"] = [{"ZXINF": []}]
        elif r.auth == "jwt":
            op["security"] = [{"bearer": []}]
        paths.setdefault(r.path, {})[r.method.lower()] = op
    for name in query_names:    # their fields are parameters, not bodies
        components.pop(name, None)
    return {"openapi": "3.1.0", "info": {"title": title, "version": version},
            "paths": paths, "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES}}


class _SwaggerUI:
    """/docs: Swagger UI from the swagger-ui-bundle-v2 package (Swagger UI 5,
    which reads OpenAPI 3.1; the older swagger-ui-bundle ships 4.15, which
    refuses a 3.1 document). Only the few files the page loads are served."""
    FILES = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript",
             "favicon-32x32.png": "image/png", "favicon-16x16.png": "image/png"}
    PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>xinfinity API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"><link rel="icon" href="/docs/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div><script src="/docs/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script>
</body></html>
"""

    def __init__(self):
        from swagger_ui_bundle import swagger_ui_path
        self.root = pathlib.Path(str(swagger_ui_path))

    def answer(self, path: str):
        if path in ("/docs", "/docs/"):
            return 200, self.PAGE, [("content-type", "text/html; charset=utf-8")]
        name = path[len("/docs/"):]
        if name not in self.FILES:
            raise ApiError(api.NO_ROUTE, f"no route {path}")
        return 200, self.root / name, [("content-type", self.FILES[name]), ("cache-control", "max-age=86400")]
