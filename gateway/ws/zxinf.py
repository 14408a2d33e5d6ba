"""The 0xInfinity protocol at /ws (spec/API.md section 1, "WebSocket /ws").

    server, first      {"type":"connected","user_id":N}       (0: anonymous)
    client             {"op":"subscribe","args":[topics]}     -> {"type":"subscribed","topics":[...]}
                       {"op":"unsubscribe","args":[topics]}   -> {"type":"unsubscribed","topics":[...]}
                       {"op":"ping"}                          -> {"type":"pong"}
                       {"op":"login","args":["ZXINF v1.<api_key>.<ts_nonce>.<signature>"]}
                                                              -> {"type":"login","user_id":N}
    any refusal        {"type":"error","code":N,"msg":"..."}  (codes: gateway/api.py)

The server sends a ping frame every 20 s (gateway/ws/app.py); a connection it
closes gets a close frame whose code and reason say why (1008 for a slow
consumer: gateway/ws/hub.py). `{"op":"pong"}` is taken and ignored (older
clients answered a keep-alive message this server no longer sends).

**ours**, the login: the signature is the REST one (accounts/signing.py) of
the request `GET /ws` with an empty body, i.e. over
`api_key + ts_nonce + "GET" + "/ws"`, checked by the REST authenticator
(gateway/auth.py): the same window, the same strictly increasing ts_nonce per
key, the same codes 2002..2006; the key needs READ. `?token=<JWT>` on the
upgrade request logs in as the token's user; a bad token is answered with an
error and the connection ends. A connection logs in once.

Private topics reach only the connections of their user that subscribed to
them; a subscribe or unsubscribe request is applied whole or refused whole,
naming the first topic that is wrong.
"""
from __future__ import annotations

import msgspec

from ...accounts.errors import AccountError
from ...accounts.permissions import READ
from ..api import AUTH_FAILED, INVALID_PARAMETER, MISSING_AUTH, ApiError
from .streams import ZX_PRIVATE, Catalog, StreamError

LOGIN_METHOD, LOGIN_PATH = "GET", "/ws"     # the request a login signs
MAX_TOPICS = 1024                           # subscriptions per connection (Binance's limit)


PROTOCOL = "0xinfinity"                     # the hub's name for a /ws connection's protocol


class ZxSession:
    def __init__(self, hub, conn, catalog: Catalog, authenticator, user_id: int):
        self.hub, self.conn, self.catalog, self.auth = hub, conn, catalog, authenticator
        self.user_id = user_id
        self.topics: dict[str, object] = {}     # topic -> its key, in subscription order

    def start(self) -> None:
        self.hub.send(self.conn, {"type": "connected", "user_id": self.user_id})

    def error(self, code: int, msg: str) -> None:
        self.hub.send(self.conn, {"type": "error", "code": code, "msg": msg})

    def on_message(self, data) -> None:
        try:
            request = msgspec.json.decode(data)
        except msgspec.DecodeError as e:
            return self.error(INVALID_PARAMETER, f"not JSON: {e}")
        op = request.get("op") if isinstance(request, dict) else None
        if op == "ping":
            return self.hub.send(self.conn, {"type": "pong"})
        if op == "pong":        # an answer to the keep-alive message earlier servers sent
            return None
        if op not in ("subscribe", "unsubscribe", "login"):
            return self.error(INVALID_PARAMETER, f"op {op!r} is unknown: expected subscribe, unsubscribe, ping "
                                                 "or login in an object {\"op\": ..., \"args\": [...]}")
        args = request.get("args")
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            return self.error(INVALID_PARAMETER, f"{op}: args must be a list of strings")
        if op == "login":
            return self.login(args)
        if op == "subscribe":
            return self.subscribe(args)
        return self.unsubscribe(args)

    def subscribe(self, topics: list[str]) -> None:
        keys = []
        for topic in topics:
            try:
                keys.append(self.catalog.zx_topic(topic, self.user_id))
            except StreamError as e:
                code = MISSING_AUTH if topic in ZX_PRIVATE else INVALID_PARAMETER
                return self.error(code, f"subscribe refused: {e}")
        new = {t for t in topics if t not in self.topics}
        if len(self.topics) + len(new) > MAX_TOPICS:
            return self.error(INVALID_PARAMETER, f"subscribe refused: at most {MAX_TOPICS} topics per connection")
        for topic, (key, owner) in zip(topics, keys):
            self.topics[topic] = key
            self.hub.subscribe(self.conn, key, owner)
        self.hub.send(self.conn, {"type": "subscribed", "topics": topics})

    def unsubscribe(self, topics: list[str]) -> None:
        for topic in topics:
            if topic not in self.topics:
                return self.error(INVALID_PARAMETER, f"unsubscribe refused: not subscribed to {topic!r}")
        for topic in topics:
            key = self.topics.pop(topic, None)
            if key is not None:
                self.hub.unsubscribe(self.conn, key)
        self.hub.send(self.conn, {"type": "unsubscribed", "topics": topics})

    def login(self, args: list[str]) -> None:
        if len(args) != 1:
            return self.error(INVALID_PARAMETER, "login: args must be [\"ZXINF v1.<api_key>.<ts_nonce>.<signature>\"]")
        if self.user_id:
            return self.error(AUTH_FAILED, f"login refused: this connection is logged in already (user "
                                           f"{self.user_id})")
        try:
            user_id = self.auth.signed(args[0], LOGIN_METHOD, LOGIN_PATH, b"", READ)
        except ApiError as e:
            return self.error(e.code, f"login refused: {e.msg}")
        self.user_id = user_id
        self.hub.send(self.conn, {"type": "login", "user_id": user_id})


def token_user(authenticator, token: str) -> int:
    """The user of a ?token= JWT, or ApiError/AccountError naming why not."""
    if not token:
        raise ApiError(AUTH_FAILED, "token: empty")
    try:
        return authenticator.tokens.verify(token, authenticator.now_ms() // 1000)
    except AccountError as e:
        raise ApiError(e.code, e.message) from None
