"""The Binance protocols (spec/API.md section 2): market streams and the
WebSocket API's user data stream.

Streams, at `/ws/<anything>` (raw: each event as is; `<anything>`, if it is a
stream name, is subscribed at once) and `/stream?streams=a/b` (combined:
`{"stream": name, "data": event}`):

    {"method":"SUBSCRIBE","params":[names],"id":N}     -> {"result":null,"id":N}
    {"method":"UNSUBSCRIBE","params":[names],"id":N}   -> {"result":null,"id":N}
    {"method":"LIST_SUBSCRIPTIONS","id":N}             -> {"result":[names],"id":N}
    a refusal                                          -> {"error":{"code":2,"msg":"..."},"id":N}
    (Binance's codes: 0 unknown property, 1 invalid value type, 2 invalid request, 3 invalid JSON)

The WebSocket API at `/ws-api/v3` (where ccxt.pro's `urls.api.ws["ws-api"].spot`
points; it sends watch_orders' and watch_balance's subscription there):

    {"id":X,"method":"userDataStream.subscribe.signature","params":{apiKey,timestamp,signature[,recvWindow]}}
                            -> {"id":X,"status":200,"result":{"subscriptionId":S}}
    then the user's events  {"subscriptionId":S,"event":{executionReport|outboundAccountPosition|balanceUpdate}}
    {"id":X,"method":"userDataStream.unsubscribe","params":{[subscriptionId]}}, "session.subscriptions",
    "ping", "time"
    a refusal               -> {"id":X,"status":4xx,"error":{"code":-NNNN,"msg":"..."}}

The signature is Binance's: over the parameters other than `signature`,
sorted by name, as `name=value` joined by '&' (what ccxt.pro's sign_params
sends), HMAC-SHA256 in hex under the secret text, or Ed25519 in base64. The
REST API's checker (gateway/binance/auth.py) judges it, so the rules and the
codes are the REST ones: recvWindow, the timestamp's window, a replay refused,
the key known, active and holding READ; a parameter other than apiKey,
timestamp, recvWindow and signature is refused (-1104). One subscription per
account per connection; ids count from 0 on each connection.

The server sends a ping frame every 20 s and answers clients' pings
(gateway/ws/app.py); a connection it closes gets a close frame whose code and
reason say why (1008 for a slow consumer: gateway/ws/hub.py).
"""
from __future__ import annotations

import msgspec

from ...accounts.permissions import READ
from ..binance import errors as E
from ..binance.errors import BinanceError
from ..binance.params import Params
from .streams import COMBINED, RAW, USER, Catalog, StreamError

MAX_STREAMS = 1024                  # streams per connection (Binance's limit)
# Binance's stream error codes (0 unknown property is not used: a request names no property)
INVALID_VALUE_TYPE, INVALID_REQUEST, INVALID_JSON = 1, 2, 3


# The hub's names for the protocols of the connections.
STREAMS, API = "binance-streams", "binance-api"


class StreamSession:
    """A `/ws/...` (combined=False) or `/stream` (combined=True) connection."""

    def __init__(self, hub, conn, catalog: Catalog, combined: bool):
        self.hub, self.conn, self.catalog = hub, conn, catalog
        self.kind = COMBINED if combined else RAW
        self.names: dict[str, None] = {}        # the streams subscribed, in order

    def start(self, names: list[str]) -> None:
        """Subscribe the streams of the URL; a refusal ends the connection."""
        error = self._add(names)
        if error:
            self.hub.send(self.conn, {"error": {"code": INVALID_REQUEST, "msg": error}, "id": None})
            self.hub.end(self.conn)

    def _add(self, names: list[str]) -> str:
        """Subscribe all of `names`, or none: "" or why not."""
        for name in names:
            try:
                self.catalog.binance_stream(name)
            except StreamError as e:
                return f"Invalid request: {e}"
        if len(self.names) + len([n for n in names if n not in self.names]) > MAX_STREAMS:
            return f"Invalid request: at most {MAX_STREAMS} streams per connection"
        for name in names:
            self.names[name] = None
            self.hub.subscribe(self.conn, (self.kind, name))
        return ""

    def on_message(self, data) -> None:
        try:
            request = msgspec.json.decode(data)
        except msgspec.DecodeError as e:
            return self._error(INVALID_JSON, f"Invalid JSON: {e}", None)
        if not isinstance(request, dict):
            return self._error(INVALID_REQUEST, "Invalid request: expected an object {\"method\", \"params\", "
                                                "\"id\"}", None)
        request_id = request.get("id")
        if isinstance(request_id, (dict, list, float, bool)):
            return self._error(INVALID_VALUE_TYPE, "Invalid value type: id must be an integer, a string or null",
                               None)
        method = request.get("method")
        if method == "LIST_SUBSCRIPTIONS":
            return self.hub.send(self.conn, {"result": list(self.names), "id": request_id})
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            return self._error(INVALID_REQUEST, f"Invalid request: method {method!r} is not SUBSCRIBE, UNSUBSCRIBE "
                                                "or LIST_SUBSCRIPTIONS", request_id)
        params = request.get("params")
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            return self._error(INVALID_VALUE_TYPE, f"Invalid value type: {method} params must be a list of stream "
                                                   "names", request_id)
        if method == "SUBSCRIBE":
            error = self._add(params)
            if error:
                return self._error(INVALID_REQUEST, error, request_id)
        else:
            for name in params:
                if name in self.names:
                    del self.names[name]
                    self.hub.unsubscribe(self.conn, (self.kind, name))
        self.hub.send(self.conn, {"result": None, "id": request_id})

    def _error(self, code: int, msg: str, request_id) -> None:
        self.hub.send(self.conn, {"error": {"code": code, "msg": msg}, "id": request_id})




class ApiSession:
    """A `/ws-api/v3` connection: user data stream subscriptions."""

    def __init__(self, hub, conn, signatures, now_ms):
        """signatures: gateway/binance/auth.py's Signatures (the REST API's, so one set of rules)."""
        self.hub, self.conn, self.signatures, self.now_ms = hub, conn, signatures, now_ms
        self.subscriptions: dict[int, int] = {}     # subscriptionId -> user
        self.next_id = 0

    def on_message(self, data) -> None:
        try:
            request = msgspec.json.decode(data)
        except msgspec.DecodeError as e:
            return self._refuse(None, BinanceError(E.ILLEGAL_CHARS, f"Malformed request: not JSON: {e}"))
        if not isinstance(request, dict):
            return self._refuse(None, BinanceError(E.ILLEGAL_CHARS, "Malformed request: expected an object "
                                                                    "{\"id\", \"method\", \"params\"}"))
        request_id = request.get("id")
        try:
            result = self._answer(request.get("method"), request.get("params", {}))
        except BinanceError as e:
            return self._refuse(request_id, e)
        self.hub.send(self.conn, {"id": request_id, "status": 200, "result": result})

    def _refuse(self, request_id, e: BinanceError) -> None:
        self.hub.send(self.conn, {"id": request_id, "status": e.status, "error": {"code": e.code, "msg": e.msg}})

    def _answer(self, method, params):
        if not isinstance(params, dict):
            raise BinanceError(E.ILLEGAL_CHARS, "Malformed request: params must be an object")
        if method == "ping":
            return {}
        if method == "time":
            return {"serverTime": self.now_ms()}
        if method == "session.subscriptions":
            return [{"subscriptionId": sid} for sid in self.subscriptions]
        if method == "userDataStream.subscribe.signature":
            return self._subscribe(params)
        if method == "userDataStream.unsubscribe":
            return self._unsubscribe(params)
        raise BinanceError(E.UNSUPPORTED_OPERATION, f"Method {method!r} is not supported here: userDataStream."
                                                    "subscribe.signature, userDataStream.unsubscribe, "
                                                    "session.subscriptions, ping, time")

    def _subscribe(self, params: dict) -> dict:
        texts = {}
        for name, value in params.items():
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise BinanceError(E.ILLEGAL_CHARS, f"Illegal value in parameter '{name}': expected a string or "
                                                    "an integer")
            texts[name] = str(value)
        signed = Params(texts, {}, "userDataStream.subscribe.signature")
        api_key = signed.need("apiKey")
        # Binance's signed text: every parameter but the signature, sorted by name, name=value joined by '&'.
        payload = "&".join(f"{n}={texts[n]}" for n in sorted(texts) if n != "signature").encode()
        user_id = self.signatures.check(api_key, signed, payload, b"", READ).user_id
        signed.done()
        for sid, user in self.subscriptions.items():
            if user == user_id:
                raise BinanceError(E.INVALID_PARAMETER, f"This connection has subscription {sid} for this account "
                                                        "already (one per account per connection).")
        sid, self.next_id = self.next_id, self.next_id + 1
        self.subscriptions[sid] = user_id
        self.hub.subscribe(self.conn, (USER, user_id, sid), user_id)
        return {"subscriptionId": sid}

    def _unsubscribe(self, params: dict) -> dict:
        sid = params.get("subscriptionId")
        if sid is None:
            sids = list(self.subscriptions)
        elif isinstance(sid, int) and not isinstance(sid, bool) and sid in self.subscriptions:
            sids = [sid]
        else:
            raise BinanceError(E.INVALID_PARAMETER, f"subscriptionId {sid!r} is not one of this connection's: "
                                                    f"{list(self.subscriptions)}")
        for sid in sids:
            self.hub.unsubscribe(self.conn, (USER, self.subscriptions.pop(sid), sid))
        return {}
